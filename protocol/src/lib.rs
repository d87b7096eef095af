//! shoal's wire protocol: message types, length-prefixed frames over QUIC streams, the
//! handshake that checks protocol version and cluster, and the cluster identities (a CA per
//! cluster, mutual TLS for every connection). It carries no I/O policy: daemons decide what
//! to serve; this crate decides only how bytes look and who may speak.
//!
//! - [`frame`]: length-prefixed postcard frames, with size limits and clean errors for hostile
//!   bytes.
//! - [`msg`]: the versioned message types and the handshake ([`msg::Hello`]).
//! - [`raft`]: raft's messages, log entries and snapshots as serde types, so that protobuf
//!   stays off the wire.
//! - [`identity`]: the cluster CA, member credentials and reading a peer's identity.
//! - [`tls`]: rustls and quinn configurations for mutual TLS.
//! - [`rpc`]: connecting with the handshake, and one stream per request.

pub mod frame;
pub mod identity;
pub mod msg;
pub mod raft;
pub mod rpc;
pub mod tls;

pub use identity::ClusterId;
