//! Connections and requests: the handshake on a new connection, then one bidirectional stream
//! per request.
//!
//! ```text
//!  connecting peer                        accepting peer
//!  ---------------                        --------------
//!  TLS 1.3 (both sides present a certificate of the cluster CA)
//!  open_bi:  Hello ───────────────────────>  check_hello
//!            <────────────── HelloReply      (a Refusal closes the connection)
//!  open_bi:  Request [Upload...] ─────────>
//!            <──────── Response [Response...] finish
//!  open_bi:  ...                             (streams are independent and may overlap)
//! ```
//!
//! This module only moves frames; what a peer serves is the daemon's business.

use std::net::SocketAddr;
use std::time::Duration;

use crate::frame::{self, FrameError, MAX_FRAME};
use crate::identity::{PeerIdentity, SERVER_NAME};
use crate::msg::{Failure, Hello, HelloReply, PROTOCOL_VERSION, Refusal, Request, Response, Role, check_hello};
use crate::{ClusterId, tls};

/// How long a connection attempt and its handshake may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a connection or a request failed.
#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    /// The QUIC endpoint could not be set up.
    #[error("endpoint: {0}")]
    Endpoint(#[source] std::io::Error),
    /// The connection could not be made (no one there, TLS refused).
    #[error("cannot connect to {addr}: {reason}")]
    Connect { addr: SocketAddr, reason: String },
    /// The peer refused our handshake.
    #[error("refused by {addr}: {refusal}")]
    Refused {
        addr: SocketAddr,
        #[source]
        refusal: Refusal,
    },
    /// The connection or stream broke.
    #[error("connection lost: {0}")]
    Connection(#[from] quinn::ConnectionError),
    /// A frame was bad or the stream failed.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// The stream ended before an answer.
    #[error("the peer closed the stream without an answer")]
    NoAnswer,
    /// The request failed at the peer.
    #[error(transparent)]
    Failed(#[from] Failure),
    /// The handshake or a request took too long.
    #[error("timed out")]
    Timeout,
    /// The peer's certificate names no shoal identity.
    #[error(transparent)]
    Identity(#[from] crate::identity::IdentityError),
}

impl From<quinn::WriteError> for RpcError {
    fn from(e: quinn::WriteError) -> RpcError {
        RpcError::Frame(FrameError::Io(e.into()))
    }
}

impl From<quinn::ClosedStream> for RpcError {
    fn from(e: quinn::ClosedStream) -> RpcError {
        RpcError::Frame(FrameError::Io(e.into()))
    }
}

/// A QUIC endpoint that dials out only (a client, a node's heartbeats), with the cluster's
/// client configuration.
///
/// # Errors
///
/// The credentials are unusable or no UDP socket could be bound.
pub fn client_endpoint(creds: &crate::identity::Credentials) -> Result<quinn::Endpoint, RpcError> {
    let config = tls::client_config(creds).map_err(|e| RpcError::Endpoint(std::io::Error::other(e)))?;
    let mut endpoint = quinn::Endpoint::client(SocketAddr::from(([0, 0, 0, 0], 0))).map_err(RpcError::Endpoint)?;
    endpoint.set_default_client_config(config);
    Ok(endpoint)
}

/// A QUIC endpoint that serves on `addr` and dials out with the same credentials.
///
/// # Errors
///
/// The credentials are unusable or `addr` cannot be bound.
pub fn server_endpoint(creds: &crate::identity::Credentials, addr: SocketAddr) -> Result<quinn::Endpoint, RpcError> {
    let server = tls::server_config(creds).map_err(|e| RpcError::Endpoint(std::io::Error::other(e)))?;
    let client = tls::client_config(creds).map_err(|e| RpcError::Endpoint(std::io::Error::other(e)))?;
    let mut endpoint = quinn::Endpoint::server(server, addr).map_err(RpcError::Endpoint)?;
    endpoint.set_default_client_config(client);
    Ok(endpoint)
}

/// Connects to `addr` and shakes hands as `role` of `cluster`.
///
/// # Errors
///
/// The peer cannot be reached, TLS fails, or the peer refuses the handshake.
pub async fn connect(
    endpoint: &quinn::Endpoint,
    addr: SocketAddr,
    cluster: ClusterId,
    role: Role,
) -> Result<quinn::Connection, RpcError> {
    let attempt = async {
        let connecting =
            endpoint.connect(addr, SERVER_NAME).map_err(|e| RpcError::Connect { addr, reason: e.to_string() })?;
        let conn = connecting.await.map_err(|e| RpcError::Connect { addr, reason: e.to_string() })?;
        let (mut send, mut recv) = conn.open_bi().await?;
        frame::write(&mut send, &Hello { version: PROTOCOL_VERSION, cluster, role }).await?;
        send.finish()?;
        match frame::read::<_, HelloReply>(&mut recv, MAX_FRAME).await? {
            Some(HelloReply::Welcome(_)) => Ok(conn),
            Some(HelloReply::Refused(r)) => Err(RpcError::Refused { addr, refusal: r }),
            None => Err(RpcError::NoAnswer),
        }
    };
    tokio::time::timeout(CONNECT_TIMEOUT, attempt).await.map_err(|_| RpcError::Timeout)?
}

/// Accepts an incoming connection for a peer of role `us` in `cluster` that lets `allowed`
/// roles connect: completes TLS, reads the peer's identity and answers its handshake. A
/// refused peer is told why and its connection closed.
///
/// # Errors
///
/// TLS failed, the handshake was refused or malformed, or it took too long.
pub async fn accept(
    incoming: quinn::Incoming,
    cluster: ClusterId,
    us: Role,
    allowed: &[Role],
) -> Result<(quinn::Connection, PeerIdentity), RpcError> {
    let addr = incoming.remote_address();
    let attempt = async {
        let conn = incoming.await.map_err(|e| RpcError::Connect { addr, reason: e.to_string() })?;
        let peer = tls::peer_identity(&conn)?;
        let (mut send, mut recv) = conn.accept_bi().await?;
        let hello = match frame::read::<_, Hello>(&mut recv, MAX_FRAME).await {
            Ok(Some(hello)) => hello,
            Ok(None) => return Err(RpcError::NoAnswer),
            Err(e) => {
                conn.close(CLOSE_PROTOCOL, b"bad handshake");
                return Err(e.into());
            }
        };
        let certified = peer.role.unwrap_or(Role::Client);
        let check = if peer.cluster == cluster {
            check_hello(&hello, cluster, us, certified, allowed)
        } else {
            Err(Refusal::Cluster { ours: cluster, theirs: peer.cluster })
        };
        match check {
            Ok(welcome) => {
                frame::write(&mut send, &HelloReply::Welcome(welcome)).await?;
                send.finish()?;
                Ok((conn, peer))
            }
            Err(refusal) => {
                let _ = frame::write(&mut send, &HelloReply::Refused(refusal.clone())).await;
                let _ = send.finish();
                // Let the refusal reach the peer before the connection goes.
                let _ = tokio::time::timeout(Duration::from_millis(200), send.stopped()).await;
                conn.close(CLOSE_REFUSED, b"refused");
                Err(RpcError::Refused { addr, refusal })
            }
        }
    };
    tokio::time::timeout(CONNECT_TIMEOUT, attempt).await.map_err(|_| RpcError::Timeout)?
}

/// The QUIC application error code for a connection closed over a bad frame.
pub const CLOSE_PROTOCOL: quinn::VarInt = quinn::VarInt::from_u32(1);
/// The QUIC application error code for a refused handshake.
pub const CLOSE_REFUSED: quinn::VarInt = quinn::VarInt::from_u32(2);
/// The QUIC application error code for a daemon shutting down.
pub const CLOSE_SHUTDOWN: quinn::VarInt = quinn::VarInt::from_u32(3);

/// Opens a stream and sends `request` on it; the answer is read from the returned stream.
///
/// # Errors
///
/// The connection is gone or the request cannot be encoded.
pub async fn open(
    conn: &quinn::Connection,
    request: &Request,
) -> Result<(quinn::SendStream, quinn::RecvStream), RpcError> {
    let (mut send, recv) = conn.open_bi().await?;
    frame::write(&mut send, request).await?;
    Ok((send, recv))
}

/// Sends `request` and reads its one answer; a [`Response::Failed`] answer is an error.
///
/// # Errors
///
/// The connection broke, the answer was malformed, or the request failed at the peer.
pub async fn call(conn: &quinn::Connection, request: &Request, max: u32) -> Result<Response, RpcError> {
    let (mut send, mut recv) = open(conn, request).await?;
    send.finish()?;
    answer(&mut recv, max).await
}

/// Reads one answer from a request's stream; a [`Response::Failed`] answer is an error.
///
/// # Errors
///
/// The stream broke or ended, the answer was malformed, or the request failed at the peer.
pub async fn answer(recv: &mut quinn::RecvStream, max: u32) -> Result<Response, RpcError> {
    match frame::read::<_, Response>(recv, max).await? {
        Some(Response::Failed(f)) => Err(RpcError::Failed(f)),
        Some(r) => Ok(r),
        None => Err(RpcError::NoAnswer),
    }
}
