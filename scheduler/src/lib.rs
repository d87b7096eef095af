//! Node-local vCPU scheduling for shoal.
//!
//! This crate holds what a node needs to decide where work runs: the CPU/NUMA topology
//! ([`topology`]) and the work-stealing scheduler whose workers steal by it ([`pool`]). Migration
//! policies and the policy simulator will live here too. It knows nothing of QUIC or
//! raft: it schedules runnable vCPUs and decides placements from numbers it is given
//! ([`placement`]).

pub mod placement;
pub mod pool;
mod state;
mod sync;
pub mod topology;

pub use pool::{Config, Context, Scheduler, Stats, Step, Task, TaskHandle, WakeHook};
pub use topology::Topology;
