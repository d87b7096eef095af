//! The raft-replicated shoal coordinator: cluster membership, the guest registry and placement
//! decisions. Its state changes only through the raft log.
//!
//! Nothing is implemented here yet.
