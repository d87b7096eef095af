//! Wire types for shoal: message types, framing over QUIC streams, TLS identity helpers and
//! protocol versioning. It carries no I/O policy.
//!
//! Nothing is implemented here yet.
