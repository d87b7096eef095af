//! The raft-replicated shoal coordinator: cluster membership, the guest registry and placement
//! decisions. Its state changes only through the raft log.
//!
//! - [`state`]: the replicated state machine (nodes, guests, placement at apply time).
//! - [`replica`]: the thread that drives raft-rs (`tick`/`step`/`ready`/`advance`) over
//!   [`storage`], the durable log, and applies committed commands.
//! - [`wire`]: raft-rs's protobuf types to and from our own serde types
//!   ([`shoal_protocol::raft`]), so protobuf never reaches the wire or the disk.
//! - [`server`]: the daemon: a QUIC endpoint answering clients, nodes and the other members.
//! - [`client`]: the cluster as a client sees it (leader discovery, uploads, output by offset).
//! - [`config`]: the daemon's configuration file.

pub mod client;
pub mod config;
mod log;
pub mod replica;
pub mod server;
pub mod state;
pub mod storage;
pub mod wire;
