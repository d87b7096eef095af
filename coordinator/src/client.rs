//! The cluster as a client sees it: requests go to the leader, wherever it is now.
//!
//! A client knows the coordinators' addresses. It keeps one connection to the member it
//! believes leads; a [`Failure::NotLeader`] answer names the leader to try next, and an
//! unreachable member or an [`Failure::Unavailable`] answer (an election under way) sends it
//! round the members again, until the request's deadline. A submit carries a request id chosen
//! once, so a submit retried after a lost answer is the same guest.
//!
//! Guest output comes from the guest's node, not the coordinators: [`Client::output`] asks the
//! leader where the guest runs and reads from that node by offset, resuming at the same
//! offsets after any break, so no byte is lost or repeated.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use shoal_protocol::ClusterId;
use shoal_protocol::frame;
use shoal_protocol::identity::Credentials;
use shoal_protocol::msg::{
    CHUNK, Digest, Failure, GuestId, GuestInfo, GuestSpec, GuestState, MAX_PROGRAM, MemberStatus, NodeInfo, Request,
    Response, Role, Upload,
};
use shoal_protocol::rpc::{self, RpcError};

/// How long a request keeps trying members before it fails.
pub const DEADLINE: Duration = Duration::from_secs(20);
/// How long one attempt at a request may take (a connection to a member that died is given
/// up after this, not after the transport's idle timeout).
const CALL_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a member may take to say whether it leads.
const DISCOVER_TIMEOUT: Duration = Duration::from_secs(1);

/// What a client needs to find a cluster: `DIR/cluster.toml`.
///
/// ```toml
/// cluster = "3f0c...e1"                         # the cluster id, 32 hex digits
/// coordinators = ["127.0.0.1:7101", "127.0.0.1:7102", "127.0.0.1:7103"]
/// credentials = "credentials"                   # relative to DIR: client.pem, client.key, ca.pem
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterFile {
    pub cluster: String,
    pub coordinators: Vec<SocketAddr>,
    pub credentials: PathBuf,
}

impl ClusterFile {
    /// The file's name in a cluster directory.
    pub const NAME: &'static str = "cluster.toml";
}

/// Why a client request failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{path}: {reason}")]
    Config { path: PathBuf, reason: String },
    #[error(transparent)]
    Rpc(#[from] RpcError),
    #[error(transparent)]
    Failed(#[from] Failure),
    #[error("no coordinator answered within {0:?} (last error: {1})")]
    NoLeader(Duration, String),
    #[error("the answer does not fit the request: {0}")]
    Unexpected(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// A connection to a cluster.
#[derive(Debug)]
pub struct Client {
    endpoint: quinn::Endpoint,
    cluster: ClusterId,
    /// The role our certificate names: a user's CLI, or a node.
    role: Role,
    coordinators: Vec<SocketAddr>,
    leader: Mutex<Option<(SocketAddr, quinn::Connection)>>,
}

impl Client {
    /// A client of the cluster described in directory `dir` (see [`ClusterFile`]). Must be
    /// called inside a tokio runtime.
    ///
    /// # Errors
    ///
    /// The directory holds no usable cluster file or credentials.
    pub fn open(dir: &Path) -> Result<Client, ClientError> {
        let path = dir.join(ClusterFile::NAME);
        let config_error = |reason: String| ClientError::Config { path: path.clone(), reason };
        let text = std::fs::read_to_string(&path).map_err(|e| config_error(e.to_string()))?;
        let file: ClusterFile = toml::from_str(&text).map_err(|e| config_error(e.to_string()))?;
        let cluster = ClusterId::parse(&file.cluster).ok_or_else(|| config_error("bad cluster id".into()))?;
        let creds = Credentials::load(&dir.join(&file.credentials), "client")
            .map_err(|e| config_error(format!("credentials: {e}")))?;
        Client::new(&creds, cluster, file.coordinators)
    }

    /// A client with these credentials of `cluster`, whose coordinators are at `coordinators`.
    ///
    /// # Errors
    ///
    /// The credentials are unusable.
    pub fn new(creds: &Credentials, cluster: ClusterId, coordinators: Vec<SocketAddr>) -> Result<Client, ClientError> {
        let endpoint = rpc::client_endpoint(creds)?;
        let role = creds.identity().map_err(RpcError::from)?.role.unwrap_or(Role::Client);
        Ok(Client { endpoint, cluster, role, coordinators, leader: Mutex::new(None) })
    }

    /// The coordinators' addresses.
    pub fn coordinators(&self) -> &[SocketAddr] {
        &self.coordinators
    }

    async fn connect(&self, addr: SocketAddr) -> Result<quinn::Connection, RpcError> {
        let cached = self.leader.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        if let Some((a, conn)) = cached
            && a == addr
            && conn.close_reason().is_none()
        {
            return Ok(conn);
        }
        let conn = rpc::connect(&self.endpoint, addr, self.cluster, self.role).await?;
        *self.leader.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some((addr, conn.clone()));
        Ok(conn)
    }

    fn forget_leader(&self) {
        *self.leader.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = None;
    }

    /// Asks every coordinator at once who leads. A dead member costs nothing here unless no
    /// one leads (then the short timeout).
    async fn discover(&self) -> Option<SocketAddr> {
        let mut asks = tokio::task::JoinSet::new();
        for &addr in &self.coordinators {
            let (endpoint, cluster, role) = (self.endpoint.clone(), self.cluster, self.role);
            asks.spawn(async move {
                let ask = async {
                    let conn = rpc::connect(&endpoint, addr, cluster, role).await?;
                    match rpc::call(&conn, &Request::Status, frame::MAX_FRAME).await? {
                        Response::Status(s) => Ok((s, conn)),
                        other => Err(RpcError::Failed(Failure::BadRequest(format!("{other:?}")))),
                    }
                };
                (addr, tokio::time::timeout(DISCOVER_TIMEOUT, ask).await)
            });
        }
        // The first member that says it leads is taken: with check-quorum on, a deposed leader
        // stops saying so within an election timeout, and a wrong guess only costs a redirect.
        while let Some(Ok((addr, answer))) = asks.join_next().await {
            if let Ok(Ok((status, conn))) = answer
                && status.role == "leader"
            {
                asks.detach_all();
                *self.leader.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some((addr, conn));
                return Some(addr);
            }
        }
        None
    }

    /// Runs `attempt` against the leader, following redirects and retrying elsewhere until
    /// [`DEADLINE`]; one attempt may take `limit`.
    async fn with_leader<T, F, Fut>(&self, limit: Duration, mut attempt: F) -> Result<T, ClientError>
    where
        F: FnMut(quinn::Connection) -> Fut,
        Fut: std::future::Future<Output = Result<T, RpcError>>,
    {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        let mut next: Option<SocketAddr> =
            self.leader.lock().unwrap_or_else(std::sync::PoisonError::into_inner).as_ref().map(|(a, _)| *a);
        let mut last = String::from("none answered");
        loop {
            if tokio::time::Instant::now() >= deadline {
                return Err(ClientError::NoLeader(DEADLINE, last));
            }
            let addr = match next.take() {
                Some(addr) => addr,
                None => match self.discover().await {
                    Some(addr) => addr,
                    None => {
                        last = "no coordinator says it leads (an election may be under way)".into();
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
            };
            let result = tokio::time::timeout(limit, async {
                let conn = self.connect(addr).await?;
                attempt(conn).await
            })
            .await
            .unwrap_or(Err(RpcError::Timeout));
            match result {
                Ok(v) => return Ok(v),
                Err(RpcError::Failed(Failure::NotLeader { leader })) => {
                    last = format!("{addr} is not the leader");
                    self.forget_leader();
                    next = leader.and_then(|l| l.parse().ok()).filter(|l| *l != addr);
                }
                Err(RpcError::Failed(Failure::Unavailable(why))) => {
                    last = format!("{addr}: {why}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    next = Some(addr);
                }
                Err(RpcError::Failed(f)) => return Err(ClientError::Failed(f)),
                Err(e) => {
                    last = format!("{addr}: {e}");
                    self.forget_leader();
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
    }

    /// Sends `request` to the leader and returns its answer.
    ///
    /// # Errors
    ///
    /// The request failed at the leader, or no leader answered in time.
    pub async fn call(&self, request: &Request) -> Result<Response, ClientError> {
        self.with_leader(CALL_TIMEOUT, |conn| async move { rpc::call(&conn, request, frame::MAX_FRAME).await }).await
    }

    /// Stores a program on the cluster (unless it is there already) and returns its digest.
    ///
    /// # Errors
    ///
    /// The program is too large, or the upload failed.
    pub async fn upload(&self, bytes: &[u8]) -> Result<Digest, ClientError> {
        if bytes.len() as u64 > MAX_PROGRAM {
            return Err(ClientError::Failed(Failure::BadRequest(format!("programs are at most {MAX_PROGRAM} bytes"))));
        }
        let digest = Digest::of(bytes);
        if let Response::HasProgram(true) = self.call(&Request::HasProgram(digest)).await? {
            return Ok(digest);
        }
        let size = bytes.len() as u64;
        self.with_leader(Duration::from_secs(120), |conn| async move {
            let (mut send, mut recv) = rpc::open(&conn, &Request::PutProgram { digest, size }).await?;
            for chunk in bytes.chunks(CHUNK) {
                frame::write(&mut send, &Upload(chunk.to_vec())).await?;
            }
            frame::write(&mut send, &Upload(Vec::new())).await?;
            send.finish()?;
            rpc::answer(&mut recv, frame::MAX_FRAME).await
        })
        .await?;
        Ok(digest)
    }

    /// Submits a guest whose program was uploaded. `request` identifies this submit: retrying
    /// it with the same id yields the same guest.
    ///
    /// # Errors
    ///
    /// The submit was refused or no leader answered.
    pub async fn submit(&self, spec: GuestSpec, request: u128) -> Result<GuestId, ClientError> {
        match self.call(&Request::Submit { spec, request }).await? {
            Response::Submitted(id) => Ok(id),
            other => Err(ClientError::Unexpected(format!("{other:?}"))),
        }
    }

    /// Every guest, as of now (linearizable).
    ///
    /// # Errors
    ///
    /// No leader answered.
    pub async fn guests(&self) -> Result<Vec<GuestInfo>, ClientError> {
        match self.call(&Request::Guests).await? {
            Response::Guests(g) => Ok(g),
            other => Err(ClientError::Unexpected(format!("{other:?}"))),
        }
    }

    /// One guest, as of now (linearizable).
    ///
    /// # Errors
    ///
    /// No such guest, or no leader answered.
    pub async fn guest(&self, id: GuestId) -> Result<GuestInfo, ClientError> {
        match self.call(&Request::Guest(id)).await? {
            Response::Guest(g) => Ok(*g),
            other => Err(ClientError::Unexpected(format!("{other:?}"))),
        }
    }

    /// Every node.
    ///
    /// # Errors
    ///
    /// No leader answered.
    pub async fn nodes(&self) -> Result<Vec<NodeInfo>, ClientError> {
        match self.call(&Request::Nodes).await? {
            Response::Nodes(n) => Ok(n),
            other => Err(ClientError::Unexpected(format!("{other:?}"))),
        }
    }

    /// Kills a guest.
    ///
    /// # Errors
    ///
    /// No such guest, or no leader answered.
    pub async fn kill(&self, id: GuestId) -> Result<(), ClientError> {
        self.call(&Request::Kill(id)).await.map(drop)
    }

    /// A program's bytes, from whichever member has them (the leader first), checked against
    /// its digest.
    ///
    /// # Errors
    ///
    /// No member has the program.
    pub async fn program(&self, digest: Digest) -> Result<Vec<u8>, ClientError> {
        let leader = self.leader.lock().unwrap_or_else(std::sync::PoisonError::into_inner).as_ref().map(|(a, _)| *a);
        let mut last = ClientError::Failed(Failure::NotFound(format!("program {}", digest.hex())));
        for addr in leader.into_iter().chain(self.coordinators.iter().copied()) {
            let attempt = async {
                // The leader's connection is reused; another member's is not kept as the leader's.
                let conn = if Some(addr) == leader {
                    self.connect(addr).await?
                } else {
                    rpc::connect(&self.endpoint, addr, self.cluster, self.role).await?
                };
                let (mut send, mut recv) = rpc::open(&conn, &Request::GetProgram(digest)).await?;
                send.finish().map_err(RpcError::from)?;
                let mut bytes = Vec::new();
                let max = u32::try_from(CHUNK + 64).unwrap_or(frame::MAX_FRAME);
                loop {
                    match rpc::answer(&mut recv, max).await? {
                        Response::Chunk(c) if c.is_empty() => return Ok::<_, ClientError>(bytes),
                        Response::Chunk(c) => {
                            if bytes.len() + c.len() > usize::try_from(MAX_PROGRAM).unwrap_or(usize::MAX) {
                                return Err(ClientError::Unexpected("program too large".into()));
                            }
                            bytes.extend_from_slice(&c);
                        }
                        other => return Err(ClientError::Unexpected(format!("{other:?}"))),
                    }
                }
            };
            match tokio::time::timeout(Duration::from_secs(60), attempt).await {
                Ok(Ok(bytes)) if Digest::of(&bytes) == digest => return Ok(bytes),
                Ok(Ok(_)) => {
                    last = ClientError::Unexpected(format!("{addr} sent a program that is not {}", digest.hex()))
                }
                Ok(Err(e)) => last = e,
                Err(_) => last = ClientError::Rpc(RpcError::Timeout),
            }
        }
        Err(last)
    }

    /// One member's view of the raft group, asked of that member directly.
    ///
    /// # Errors
    ///
    /// The member did not answer.
    pub async fn member_status(&self, addr: SocketAddr) -> Result<MemberStatus, ClientError> {
        let ask = async {
            let conn = rpc::connect(&self.endpoint, addr, self.cluster, self.role).await?;
            let answer = rpc::call(&conn, &Request::Status, frame::MAX_FRAME).await?;
            Ok::<_, RpcError>((conn, answer))
        };
        let (conn, answer) = tokio::time::timeout(2 * DISCOVER_TIMEOUT, ask).await.map_err(|_| RpcError::Timeout)??;
        conn.close(rpc::CLOSE_SHUTDOWN, b"done");
        match answer {
            Response::Status(s) => Ok(s),
            other => Err(ClientError::Unexpected(format!("{other:?}"))),
        }
    }

    /// Reads a guest's output from `offsets` (stdout, stderr) and hands each piece to `sink`
    /// (1 for stdout, 2 for stderr); with `follow`, until the guest ends. Returns the guest's
    /// final state when it is known (with `follow`, always).
    ///
    /// # Errors
    ///
    /// The guest does not exist, `sink` failed, or the cluster stopped answering.
    pub async fn output(
        &self,
        guest: GuestId,
        offsets: &mut [u64; 2],
        follow: bool,
        sink: &mut (dyn FnMut(u8, &[u8]) -> std::io::Result<()> + Send),
    ) -> Result<Option<GuestState>, ClientError> {
        let mut wait = Duration::from_millis(20);
        let mut failures = 0;
        loop {
            let info = self.guest(guest).await?;
            let Some((_, _, addr)) = info.node.clone() else {
                if info.state.is_final() || !follow {
                    return Ok(info.state.is_final().then_some(info.state));
                }
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_millis(500));
                continue;
            };
            match self.output_from(&addr, guest, offsets, follow, sink).await {
                Ok(Some(end)) => {
                    // The node's word on how the run ended; the coordinator's may be final
                    // first (a kill), and is the one to report when it differs.
                    let info = self.guest(guest).await.unwrap_or(info);
                    return Ok(Some(if info.state.is_final() { info.state } else { end }));
                }
                Ok(None) if !follow => return Ok(None),
                Ok(None) => {}
                Err(ClientError::Io(e)) => return Err(ClientError::Io(e)),
                Err(e) => {
                    tracing::debug!(%guest, "output stream broke, resuming: {e}");
                    let info = self.guest(guest).await?;
                    // A guest that is done and whose node has nothing (or cannot be reached, a
                    // few tries on) has no more output to give.
                    let nothing_there = matches!(
                        e,
                        ClientError::Failed(Failure::NotFound(_))
                            | ClientError::Rpc(RpcError::Failed(Failure::NotFound(_)))
                    );
                    failures += 1;
                    if info.state.is_final() && (nothing_there || failures >= 5) {
                        return Ok(Some(info.state));
                    }
                }
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_millis(500));
        }
    }

    /// One attempt at [`Client::output`] from the node at `addr`: `Some(state)` when the node
    /// says the run ended.
    async fn output_from(
        &self,
        addr: &str,
        guest: GuestId,
        offsets: &mut [u64; 2],
        follow: bool,
        sink: &mut (dyn FnMut(u8, &[u8]) -> std::io::Result<()> + Send),
    ) -> Result<Option<GuestState>, ClientError> {
        let addr: SocketAddr = addr.parse().map_err(|_| ClientError::Unexpected(format!("node address {addr}")))?;
        let conn = rpc::connect(&self.endpoint, addr, self.cluster, Role::Client).await?;
        let request = Request::Output { guest, offsets: *offsets, follow };
        let (mut send, mut recv) = rpc::open(&conn, &request).await?;
        send.finish().map_err(RpcError::from)?;
        let max = u32::try_from(CHUNK + 64).unwrap_or(frame::MAX_FRAME);
        loop {
            match rpc::answer(&mut recv, max).await? {
                Response::Output { stream, offset, data } => {
                    let Some(slot) = offsets.get_mut(usize::from(stream).wrapping_sub(1)) else {
                        return Err(ClientError::Unexpected(format!("output stream {stream}")));
                    };
                    // Skip what was already delivered; a gap would be a node bug.
                    let end = offset + data.len() as u64;
                    if offset > *slot {
                        return Err(ClientError::Unexpected(format!("output gap at {} (have {slot})", offset)));
                    }
                    if end > *slot {
                        let skip = usize::try_from(*slot - offset).unwrap_or(usize::MAX);
                        sink(stream, &data[skip..])?;
                        *slot = end;
                    }
                }
                Response::End(end) => {
                    conn.close(rpc::CLOSE_SHUTDOWN, b"done");
                    return Ok(end);
                }
                other => return Err(ClientError::Unexpected(format!("{other:?}"))),
            }
        }
    }
}

/// A fresh id for a submit.
pub fn request_id() -> u128 {
    let mut bytes = [0; 16];
    if shoal_protocol::identity::random_bytes(&mut bytes).is_err() {
        // No random source: time and pid are unique enough for one client's submits.
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        return t.as_nanos() ^ (u128::from(std::process::id()) << 96);
    }
    u128::from_le_bytes(bytes)
}

/// The final state of a guest as a shell status: its exit code, 128 + a signal, 137 for a
/// kill, 1 for a guest that failed or was lost.
pub fn exit_code(state: &GuestState) -> i32 {
    match state {
        GuestState::Exited(status) => status.code(),
        GuestState::Killed => 128 + 9,
        _ => 1,
    }
}
