//! Guest execution for shoal.
//!
//! A guest is a Linux user-mode process VM: an RV64GC ELF program with its own sandboxed address
//! space, its threads (vCPUs), file descriptors and signals. This crate knows nothing of the network
//! or the cluster.

pub mod rv64;
