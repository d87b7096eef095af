//! The shoal worker daemon: hosts guests, serves and fetches shared translation blocks, sends and
//! receives live migrations.
//!
//! Nothing is implemented here yet.
