//! The `shoal` command line.

fn main() {}
