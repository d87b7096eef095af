//! Mutual TLS over QUIC on loopback: members of the cluster connect and shake hands; peers
//! without a certificate from the cluster CA are refused at the TLS handshake; hostile frames
//! end their connection and the server goes on serving.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use shoal_protocol::frame::{self, MAX_FRAME};
use shoal_protocol::identity::{ClusterCa, Credentials, SERVER_NAME};
use shoal_protocol::msg::{Hello, HelloReply, PROTOCOL_VERSION, Role, check_hello};
use shoal_protocol::{ClusterId, tls};

const LIMIT: Duration = Duration::from_secs(10);

/// A coordinator-like server on loopback: welcomes clients and nodes, answers each stream's
/// Hello, and counts the streams it refused as hostile.
async fn serve(ca: &ClusterCa) -> (SocketAddr, Arc<std::sync::atomic::AtomicUsize>) {
    let creds = ca.issue(Role::Coordinator, "c1").unwrap();
    let endpoint =
        quinn::Endpoint::server(tls::server_config(&creds).unwrap(), "127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = endpoint.local_addr().unwrap();
    let hostile = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let cluster = ca.cluster();
    let count = hostile.clone();
    tokio::spawn(async move {
        while let Some(incoming) = endpoint.accept().await {
            let count = count.clone();
            tokio::spawn(async move {
                let Ok(conn) = incoming.await else { return };
                let Ok(peer) = tls::peer_identity(&conn) else { return };
                while let Ok((mut send, mut recv)) = conn.accept_bi().await {
                    match frame::read::<_, Hello>(&mut recv, MAX_FRAME).await {
                        Ok(Some(hello)) => {
                            let certified = peer.role.unwrap_or(Role::Client);
                            let reply = match check_hello(
                                &hello,
                                cluster,
                                Role::Coordinator,
                                certified,
                                &[Role::Client, Role::Node],
                            ) {
                                Ok(w) => HelloReply::Welcome(w),
                                Err(r) => HelloReply::Refused(r),
                            };
                            let _ = frame::write(&mut send, &reply).await;
                            let _ = send.finish();
                        }
                        Ok(None) => {}
                        Err(_) => {
                            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                            conn.close(1u32.into(), b"bad frame");
                            return;
                        }
                    }
                }
            });
        }
    });
    (addr, hostile)
}

async fn connect(creds: &Credentials, addr: SocketAddr) -> Result<quinn::Connection, String> {
    connect_with(tls::client_config(creds).unwrap(), addr).await
}

async fn connect_with(config: quinn::ClientConfig, addr: SocketAddr) -> Result<quinn::Connection, String> {
    let endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    let connecting = endpoint.connect_with(config, addr, SERVER_NAME).map_err(|e| e.to_string())?;
    let conn = tokio::time::timeout(LIMIT, connecting)
        .await
        .map_err(|_| "timed out".to_string())?
        .map_err(|e| e.to_string())?;
    // A server that refuses the client's certificate closes the connection right after the
    // handshake; opening a stream and waiting for its answer shows it.
    Ok(conn)
}

async fn shake(conn: &quinn::Connection, hello: &Hello) -> Result<HelloReply, String> {
    let (mut send, mut recv) = conn.open_bi().await.map_err(|e| e.to_string())?;
    frame::write(&mut send, hello).await.map_err(|e| e.to_string())?;
    send.finish().map_err(|e| e.to_string())?;
    let reply = tokio::time::timeout(LIMIT, frame::read::<_, HelloReply>(&mut recv, MAX_FRAME))
        .await
        .map_err(|_| "timed out".to_string())?
        .map_err(|e| e.to_string())?;
    reply.ok_or_else(|| "no reply".to_string())
}

fn hello(cluster: ClusterId, role: Role) -> Hello {
    Hello { version: PROTOCOL_VERSION, cluster, role }
}

#[tokio::test]
async fn members_shake_hands_and_roles_come_from_certificates() {
    let ca = ClusterCa::generate().unwrap();
    let (addr, _) = serve(&ca).await;
    let client = ca.issue(Role::Client, "alice").unwrap();
    let conn = connect(&client, addr).await.unwrap();
    let peer = tls::peer_identity(&conn).unwrap();
    assert_eq!((peer.role, peer.name.as_str()), (Some(Role::Coordinator), "c1"));
    let reply = shake(&conn, &hello(ca.cluster(), Role::Client)).await.unwrap();
    assert!(matches!(&reply, HelloReply::Welcome(w) if w.role == Role::Coordinator), "{reply:?}");
    // The same client may not pose as a node.
    let reply = shake(&conn, &hello(ca.cluster(), Role::Node)).await.unwrap();
    assert!(matches!(reply, HelloReply::Refused(_)), "{reply:?}");
}

#[tokio::test]
async fn peers_of_another_cluster_or_without_a_certificate_are_refused() {
    let ca = ClusterCa::generate().unwrap();
    let (addr, _) = serve(&ca).await;
    // A certificate from another CA: the server refuses it in the TLS handshake.
    let stranger = ClusterCa::generate().unwrap().issue(Role::Client, "mallory").unwrap();
    let mut creds = stranger.clone();
    creds.ca_pem = ca.cert_pem().to_string();
    let refused = match connect(&creds, addr).await {
        Err(_) => true,
        Ok(conn) => shake(&conn, &hello(ca.cluster(), Role::Client)).await.is_err(),
    };
    assert!(refused, "a certificate from another CA was accepted");
    // No client certificate at all.
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(ca.cert_pem().as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    use rustls::pki_types::pem::PemObject;
    let mut bare = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    bare.alpn_protocols = vec![tls::ALPN.to_vec()];
    let quic = quinn::crypto::rustls::QuicClientConfig::try_from(bare).unwrap();
    let refused = match connect_with(quinn::ClientConfig::new(Arc::new(quic)), addr).await {
        Err(_) => true,
        Ok(conn) => shake(&conn, &hello(ca.cluster(), Role::Client)).await.is_err(),
    };
    assert!(refused, "a client without a certificate was accepted");
    // The server still serves members.
    let conn = connect(&ca.issue(Role::Node, "n1").unwrap(), addr).await.unwrap();
    assert!(matches!(shake(&conn, &hello(ca.cluster(), Role::Node)).await.unwrap(), HelloReply::Welcome(_)));
}

#[tokio::test]
async fn hostile_frames_close_their_connection_and_the_server_goes_on() {
    let ca = ClusterCa::generate().unwrap();
    let (addr, hostile) = serve(&ca).await;
    let creds = ca.issue(Role::Client, "fuzzer").unwrap();
    let cases: [&[u8]; 3] = [
        &u32::MAX.to_le_bytes(),                     // announces 4 GiB
        &[5, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff], // garbage payload
        &[9, 0, 0, 0, 1, 2],                         // truncated
    ];
    for (i, bytes) in cases.iter().enumerate() {
        let conn = connect(&creds, addr).await.unwrap();
        let (mut send, mut recv) = conn.open_bi().await.unwrap();
        send.write_all(bytes).await.unwrap();
        send.finish().unwrap();
        let r = tokio::time::timeout(LIMIT, frame::read::<_, HelloReply>(&mut recv, MAX_FRAME)).await.unwrap();
        assert!(!matches!(r, Ok(Some(_))), "case {i}: the server answered");
        let closed = tokio::time::timeout(LIMIT, conn.closed()).await.unwrap();
        assert!(matches!(closed, quinn::ConnectionError::ApplicationClosed(_)), "case {i}: {closed}");
    }
    assert_eq!(hostile.load(std::sync::atomic::Ordering::SeqCst), cases.len());
    let conn = connect(&creds, addr).await.unwrap();
    assert!(matches!(shake(&conn, &hello(ca.cluster(), Role::Client)).await.unwrap(), HelloReply::Welcome(_)));
}
