//! The synchronization primitives the scheduler's own lock-free code uses: std's normally, loom's
//! when built with `--cfg loom` (`RUSTFLAGS="--cfg loom" cargo test -p shoal-scheduler --release
//! loom`), so that loom can check every interleaving of that code.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicU8, Ordering};
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicU8, Ordering};
