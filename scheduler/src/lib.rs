//! Node-local vCPU scheduling for shoal.
//!
//! This crate will hold the work-stealing vCPU scheduler, the CPU/NUMA topology reader, placement
//! and migration policies, and the policy simulator. It knows nothing of QUIC or raft: it schedules
//! runnable vCPUs and decides placements from numbers it is given.
//!
//! Nothing is implemented here yet; `shoal run` drives guest threads directly (see the engine).
