//! Node-local vCPU scheduling for shoal.
//!
//! This crate holds what a node needs to decide where work runs: so far the CPU/NUMA topology
//! ([`topology`]) that workers steal by. The work-stealing vCPU scheduler, placement and
//! migration policies and the policy simulator will live here too. It knows nothing of QUIC or
//! raft: it schedules runnable vCPUs and decides placements from numbers it is given.

pub mod topology;

pub use topology::Topology;
