//! shoal's wire protocol: message types, length-prefixed frames over QUIC streams, the
//! handshake that checks protocol version and cluster, and the cluster identities (a CA per
//! cluster, mutual TLS for every connection). It carries no I/O policy: daemons decide what
//! to serve; this crate decides only how bytes look and who may speak.
//!
//! - [`frame`]: length-prefixed postcard frames, with size limits and clean errors for hostile
//!   bytes.
//! - [`msg`]: the versioned message types and the handshake ([`msg::Hello`]).
//! - [`identity`]: the cluster CA, member credentials and reading a peer's identity.
//! - [`tls`]: rustls and quinn configurations for mutual TLS.

pub mod frame;
pub mod identity;
pub mod msg;
pub mod tls;

pub use identity::ClusterId;
