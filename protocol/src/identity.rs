//! Cluster identities: a certificate authority per cluster and the certificates it issues.
//!
//! Every member of a cluster (coordinator, node, client) holds a certificate signed by the
//! cluster's CA, and every connection is mutual TLS against that CA alone ([`crate::tls`]).
//! A certificate says who its holder is in one subject alternative name URI,
//!
//! ```text
//! shoal://<cluster id, 32 hex digits>/<role>/<name>
//! ```
//!
//! and carries the DNS name [`SERVER_NAME`], which every peer dials, so that any coordinator or
//! node can serve any connection. After the handshake a peer reads the other's identity from
//! its certificate ([`PeerIdentity::from_der`]) and decides what it may ask by its role.
//!
//! On disk ([`ClusterCa::save`], [`Credentials::save`]) the CA is `ca.pem` (certificate) and
//! `ca.key` (key, mode 0600), and a member's credentials are `NAME.pem` and `NAME.key`. The CA's
//! key is needed only to issue certificates; members need `ca.pem` and their own pair.

use std::fmt;
use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use serde::{Deserialize, Serialize};

use crate::msg::Role;

/// The DNS name in every member's certificate, and the server name every connection asks for.
pub const SERVER_NAME: &str = "cluster.shoal.invalid";

/// A cluster's identity: 16 random bytes, shown as 32 hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ClusterId(pub [u8; 16]);

impl ClusterId {
    /// A fresh random id.
    ///
    /// # Errors
    ///
    /// The host's random source failed.
    pub fn random() -> Result<ClusterId, IdentityError> {
        let mut id = [0; 16];
        random_bytes(&mut id)?;
        Ok(ClusterId(id))
    }

    /// The id written as 32 hex digits.
    pub fn parse(hex: &str) -> Option<ClusterId> {
        let hex = hex.trim();
        if hex.len() != 32 || !hex.is_ascii() {
            return None;
        }
        let mut id = [0; 16];
        for (i, byte) in id.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
        }
        Some(ClusterId(id))
    }
}

impl fmt::Display for ClusterId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for ClusterId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ClusterId({self})")
    }
}

/// Fills `buf` from the kernel's random source.
/// Fills `buf` from the host's random source.
///
/// # Errors
///
/// The random source could not be read.
pub fn random_bytes(buf: &mut [u8]) -> Result<(), IdentityError> {
    use std::io::Read;
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(buf))
        .map_err(|e| IdentityError::Io { path: "/dev/urandom".into(), source: e })
}

/// Why an identity could not be made, stored, loaded or read.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// Certificate generation or parsing failed.
    #[error("certificate error: {0}")]
    Certificate(#[from] rcgen::Error),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io { path: std::path::PathBuf, source: std::io::Error },
    /// A peer's certificate does not name a shoal identity.
    #[error("the certificate names no shoal identity ({0})")]
    NotShoal(String),
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> IdentityError + '_ {
    move |source| IdentityError::Io { path: path.to_path_buf(), source }
}

/// A cluster's certificate authority: its id, certificate and signing key.
pub struct ClusterCa {
    cluster: ClusterId,
    cert_pem: String,
    key: KeyPair,
}

impl fmt::Debug for ClusterCa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClusterCa").field("cluster", &self.cluster).finish_non_exhaustive()
    }
}

impl ClusterCa {
    /// A new CA for a new cluster with a random id.
    ///
    /// # Errors
    ///
    /// Key generation or signing failed.
    pub fn generate() -> Result<ClusterCa, IdentityError> {
        let cluster = ClusterId::random()?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, format!("shoal cluster {cluster} CA"));
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.subject_alt_names = vec![SanType::URI(format!("shoal://{cluster}/ca/ca").try_into()?)];
        let key = KeyPair::generate()?;
        let cert = params.self_signed(&key)?;
        Ok(ClusterCa { cluster, cert_pem: cert.pem(), key })
    }

    /// The cluster this CA speaks for.
    pub fn cluster(&self) -> ClusterId {
        self.cluster
    }

    /// The CA certificate, PEM: what every member trusts.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// Issues credentials for member `name` of role `role`.
    ///
    /// # Errors
    ///
    /// `name` is not a usable name (empty, or not URI-safe: letters, digits, `-`, `_`, `.`),
    /// or key generation or signing failed.
    pub fn issue(&self, role: Role, name: &str) -> Result<Credentials, IdentityError> {
        let safe = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
        if name.is_empty() || !name.chars().all(safe) {
            return Err(IdentityError::NotShoal(format!("'{name}' is not a member name")));
        }
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, format!("{role} {name}"));
        params.distinguished_name = dn;
        params.subject_alt_names = vec![
            SanType::DnsName(SERVER_NAME.try_into()?),
            SanType::URI(format!("shoal://{}/{role}/{name}", self.cluster).try_into()?),
        ];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
        let key = KeyPair::generate()?;
        let issuer = Issuer::from_ca_cert_pem(&self.cert_pem, &self.key)?;
        let cert = params.signed_by(&key, &issuer)?;
        Ok(Credentials { cert_pem: cert.pem(), key_pem: key.serialize_pem(), ca_pem: self.cert_pem.clone() })
    }

    /// Writes `ca.pem` and `ca.key` (mode 0600) into `dir`, which must exist.
    ///
    /// # Errors
    ///
    /// A file could not be written.
    pub fn save(&self, dir: &Path) -> Result<(), IdentityError> {
        write_file(&dir.join("ca.pem"), self.cert_pem.as_bytes(), 0o644)?;
        write_file(&dir.join("ca.key"), self.key.serialize_pem().as_bytes(), 0o600)
    }

    /// Reads the CA that [`Self::save`] wrote into `dir`.
    ///
    /// # Errors
    ///
    /// A file is missing or unreadable, or does not hold a shoal CA.
    pub fn load(dir: &Path) -> Result<ClusterCa, IdentityError> {
        let cert_path = dir.join("ca.pem");
        let key_path = dir.join("ca.key");
        let cert_pem = std::fs::read_to_string(&cert_path).map_err(io_error(&cert_path))?;
        let key_pem = std::fs::read_to_string(&key_path).map_err(io_error(&key_path))?;
        let key = KeyPair::from_pem(&key_pem)?;
        let der = pem_der(&cert_pem).ok_or_else(|| IdentityError::NotShoal(format!("{}", cert_path.display())))?;
        let id = PeerIdentity::from_der(&der)?;
        Ok(ClusterCa { cluster: id.cluster, cert_pem, key })
    }
}

/// A member's certificate and key, with the CA certificate it trusts.
#[derive(Clone)]
pub struct Credentials {
    /// The member's certificate, PEM.
    pub cert_pem: String,
    /// The member's private key, PEM.
    pub key_pem: String,
    /// The cluster CA's certificate, PEM.
    pub ca_pem: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials").finish_non_exhaustive()
    }
}

impl Credentials {
    /// Writes `NAME.pem` and `NAME.key` (mode 0600) into `dir`.
    ///
    /// # Errors
    ///
    /// A file could not be written.
    pub fn save(&self, dir: &Path, name: &str) -> Result<(), IdentityError> {
        write_file(&dir.join(format!("{name}.pem")), self.cert_pem.as_bytes(), 0o644)?;
        write_file(&dir.join(format!("{name}.key")), self.key_pem.as_bytes(), 0o600)
    }

    /// Reads `NAME.pem`, `NAME.key` and `ca.pem` from `dir`.
    ///
    /// # Errors
    ///
    /// A file is missing or unreadable.
    pub fn load(dir: &Path, name: &str) -> Result<Credentials, IdentityError> {
        let read = |file: String| {
            let path = dir.join(file);
            std::fs::read_to_string(&path).map_err(io_error(&path))
        };
        Ok(Credentials {
            cert_pem: read(format!("{name}.pem"))?,
            key_pem: read(format!("{name}.key"))?,
            ca_pem: read("ca.pem".into())?,
        })
    }

    /// Who these credentials say their holder is.
    ///
    /// # Errors
    ///
    /// The certificate is not a shoal member's.
    pub fn identity(&self) -> Result<PeerIdentity, IdentityError> {
        let der = pem_der(&self.cert_pem).ok_or_else(|| IdentityError::NotShoal("no PEM certificate".into()))?;
        PeerIdentity::from_der(&der)
    }
}

/// Writes `bytes` to `path` atomically (a temporary file renamed over it) with `mode`.
fn write_file(path: &Path, bytes: &[u8], mode: u32) -> Result<(), IdentityError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .map_err(io_error(&tmp))?;
    f.write_all(bytes).and_then(|()| f.sync_all()).map_err(io_error(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io_error(path))
}

/// The certificates in `pem`, DER-encoded (malformed sections are skipped).
pub(crate) fn pem_certs(pem: &str) -> Vec<rustls::pki_types::CertificateDer<'static>> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    CertificateDer::pem_slice_iter(pem.as_bytes()).filter_map(Result::ok).collect()
}

/// The DER bytes of the first certificate in `pem`.
fn pem_der(pem: &str) -> Option<Vec<u8>> {
    pem_certs(pem).into_iter().next().map(|c| c.to_vec())
}

/// Who a certificate says its holder is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerIdentity {
    /// The cluster that issued it.
    pub cluster: ClusterId,
    /// The holder's role (`None` for the CA itself).
    pub role: Option<Role>,
    /// The holder's name.
    pub name: String,
}

impl PeerIdentity {
    /// Reads the identity from a DER certificate's `shoal://` URI. It does not verify the
    /// certificate: TLS did, against the cluster CA, before anyone asks.
    ///
    /// # Errors
    ///
    /// [`IdentityError::NotShoal`] for bytes that are not a certificate or name no shoal
    /// identity.
    pub fn from_der(der: &[u8]) -> Result<PeerIdentity, IdentityError> {
        use x509_parser::extensions::GeneralName;
        let (_, cert) = x509_parser::parse_x509_certificate(der)
            .map_err(|e| IdentityError::NotShoal(format!("unparsable certificate: {e}")))?;
        let san = cert
            .subject_alternative_name()
            .map_err(|e| IdentityError::NotShoal(format!("bad subject alternative names: {e}")))?
            .ok_or_else(|| IdentityError::NotShoal("no subject alternative names".into()))?;
        for name in &san.value.general_names {
            if let GeneralName::URI(uri) = name
                && let Some(id) = Self::from_uri(uri)
            {
                return Ok(id);
            }
        }
        Err(IdentityError::NotShoal("no shoal:// name".into()))
    }

    fn from_uri(uri: &str) -> Option<PeerIdentity> {
        let mut parts = uri.strip_prefix("shoal://")?.split('/');
        let (cluster, role, name) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || name.is_empty() {
            return None;
        }
        let role = if role == "ca" { None } else { Some(Role::from_name(role)?) };
        Some(PeerIdentity { cluster: ClusterId::parse(cluster)?, role, name: name.to_string() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_certificates_name_their_holder() {
        let ca = ClusterCa::generate().unwrap();
        let creds = ca.issue(Role::Node, "node-1").unwrap();
        let id = creds.identity().unwrap();
        assert_eq!(id, PeerIdentity { cluster: ca.cluster(), role: Some(Role::Node), name: "node-1".into() });
        assert!(ca.issue(Role::Client, "a/b").is_err(), "names are URI-safe");
        assert!(ca.issue(Role::Client, "").is_err());
    }

    #[test]
    fn a_saved_ca_loads_and_keeps_issuing_for_its_cluster() {
        let dir = std::env::temp_dir().join(format!("shoal-identity-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ca = ClusterCa::generate().unwrap();
        ca.save(&dir).unwrap();
        let again = ClusterCa::load(&dir).unwrap();
        assert_eq!(again.cluster(), ca.cluster());
        let creds = again.issue(Role::Client, "alice").unwrap();
        creds.save(&dir, "alice").unwrap();
        let loaded = Credentials::load(&dir, "alice").unwrap();
        assert_eq!(loaded.identity().unwrap().role, Some(Role::Client));
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join("ca.key")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the CA key is private");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn cluster_ids_print_and_parse() {
        let id = ClusterId::random().unwrap();
        assert_eq!(ClusterId::parse(&id.to_string()), Some(id));
        assert_eq!(ClusterId::parse("xyz"), None);
        assert_eq!(ClusterId::parse(&"g".repeat(32)), None);
    }

    #[test]
    fn garbage_is_not_an_identity() {
        assert!(PeerIdentity::from_der(b"not a certificate").is_err());
        assert!(PeerIdentity::from_uri("shoal://00/node/x").is_none());
        assert!(PeerIdentity::from_uri("https://example.invalid/").is_none());
    }
}
