//! TLS and QUIC configuration: mutual TLS 1.3 against the cluster CA only.
//!
//! Both sides present a certificate issued by the cluster CA ([`crate::identity`]) and accept
//! only certificates issued by it: a peer without one, or with one from another CA, fails the
//! TLS handshake and never reaches the protocol. Connections ask for the server name
//! [`SERVER_NAME`](crate::identity::SERVER_NAME) and the ALPN protocol [`ALPN`]. The crypto
//! provider is ring, for every connection.

use std::sync::Arc;

use rustls::RootCertStore;
use rustls::pki_types::PrivateKeyDer;
use rustls::pki_types::pem::PemObject;
use rustls::server::WebPkiClientVerifier;

use crate::identity::{Credentials, IdentityError, PeerIdentity, pem_certs};

/// The ALPN protocol id of shoal's wire protocol.
pub const ALPN: &[u8] = b"shoal/1";

/// Why a TLS configuration could not be made.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The credentials hold no certificate, no CA or no usable key.
    #[error("unusable credentials: {0}")]
    Credentials(String),
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    /// The configuration is not usable for QUIC.
    #[error("QUIC configuration: {0}")]
    Quic(String),
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn roots(creds: &Credentials) -> Result<Arc<RootCertStore>, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in pem_certs(&creds.ca_pem) {
        roots.add(cert)?;
    }
    if roots.is_empty() {
        return Err(TlsError::Credentials("no CA certificate".into()));
    }
    Ok(Arc::new(roots))
}

type Chain = (Vec<rustls::pki_types::CertificateDer<'static>>, PrivateKeyDer<'static>);

fn chain(creds: &Credentials) -> Result<Chain, TlsError> {
    let certs = pem_certs(&creds.cert_pem);
    if certs.is_empty() {
        return Err(TlsError::Credentials("no certificate".into()));
    }
    let key = PrivateKeyDer::from_pem_slice(creds.key_pem.as_bytes())
        .map_err(|e| TlsError::Credentials(format!("key: {e}")))?;
    Ok((certs, key))
}

/// The QUIC server configuration of a coordinator or node holding `creds`: clients must
/// present a certificate from the same CA.
///
/// # Errors
///
/// The credentials are unusable.
pub fn server_config(creds: &Credentials) -> Result<quinn::ServerConfig, TlsError> {
    let verifier = WebPkiClientVerifier::builder_with_provider(roots(creds)?, provider())
        .build()
        .map_err(|e| TlsError::Credentials(format!("client verifier: {e}")))?;
    let (certs, key) = chain(creds)?;
    let mut tls = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)?;
    tls.alpn_protocols = vec![ALPN.to_vec()];
    let quic = quinn::crypto::rustls::QuicServerConfig::try_from(tls).map_err(|e| TlsError::Quic(e.to_string()))?;
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(quic));
    config.transport_config(transport());
    Ok(config)
}

/// The QUIC client configuration of any member holding `creds`: servers must present a
/// certificate from the same CA for [`SERVER_NAME`](crate::identity::SERVER_NAME).
///
/// # Errors
///
/// The credentials are unusable.
pub fn client_config(creds: &Credentials) -> Result<quinn::ClientConfig, TlsError> {
    let (certs, key) = chain(creds)?;
    let mut tls = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_root_certificates(roots(creds)?)
        .with_client_auth_cert(certs, key)?;
    tls.alpn_protocols = vec![ALPN.to_vec()];
    let quic = quinn::crypto::rustls::QuicClientConfig::try_from(tls).map_err(|e| TlsError::Quic(e.to_string()))?;
    let mut config = quinn::ClientConfig::new(Arc::new(quic));
    config.transport_config(transport());
    Ok(config)
}

/// How long a connection may hear nothing before it is given up (a peer that died without
/// closing it: a killed process, a cut link).
pub const IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Transport settings for every connection: keep-alives well inside [`IDLE_TIMEOUT`], so a
/// live but quiet connection stays up and a dead peer is noticed within it.
fn transport() -> Arc<quinn::TransportConfig> {
    let mut t = quinn::TransportConfig::default();
    t.keep_alive_interval(Some(IDLE_TIMEOUT / 5));
    t.max_idle_timeout(quinn::IdleTimeout::try_from(IDLE_TIMEOUT).ok());
    Arc::new(t)
}

/// The identity in the certificate the peer of `conn` presented.
///
/// # Errors
///
/// The peer presented no certificate (impossible once the handshake completed under these
/// configurations) or one that names no shoal identity.
pub fn peer_identity(conn: &quinn::Connection) -> Result<PeerIdentity, IdentityError> {
    let certs = conn
        .peer_identity()
        .and_then(|any| any.downcast::<Vec<rustls::pki_types::CertificateDer<'static>>>().ok())
        .ok_or_else(|| IdentityError::NotShoal("the peer presented no certificate".into()))?;
    let first = certs.first().ok_or_else(|| IdentityError::NotShoal("empty certificate chain".into()))?;
    PeerIdentity::from_der(first)
}
