//! The coordinator daemon: the QUIC endpoint in front of a [`replica`](crate::replica).
//!
//! One endpoint serves everyone. Each request is checked against the role its certificate
//! names (a client cannot heartbeat, a node cannot submit, only members speak raft), then:
//!
//! - writes (submit, kill, a node's register and reports) are proposed to raft and answered
//!   when applied; a follower answers [`Failure::NotLeader`] with the leader's address;
//! - reads (`ps`, `nodes`, one guest) wait for raft's ReadIndex on the leader, so they see
//!   every write acknowledged before them;
//! - programs are files named by their blake3 digest under `DATA/programs`; an upload through
//!   the leader is answered once a majority of members store it, so the program of an
//!   acknowledged submit survives the leader.
//!
//! The leader also watches heartbeats: a node silent for `node_timeout_ms` is proposed lost.
//! That clock is the leader's own and restarts with each new leader, so a new leader gives
//! every node the full timeout before it judges.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use shoal_protocol::frame::{self, FrameError, MAX_FRAME};
use shoal_protocol::identity::{Credentials, PeerIdentity};
use shoal_protocol::msg::{
    Assignment, CHUNK, Digest, Failure, Heartbeat, HeartbeatReply, MAX_PROGRAM, NodeId, Request, Response, Role, Upload,
};
use shoal_protocol::raft::RaftMessage;
use shoal_protocol::rpc::{self, RpcError};
use shoal_protocol::{ClusterId, identity};
use tokio::sync::oneshot;

use crate::config::Config;
use crate::replica::{self, Input, Shared, read};
use crate::state::{Command, Outcome};

/// The largest frame a member accepts from another member (raft snapshots are large).
pub const MAX_PEER_FRAME: u32 = 64 << 20;
/// How long a write may wait for its commit before the client is told to retry.
const COMMIT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the leader holds a heartbeat that has nothing to answer yet, so that a placement
/// reaches its node as soon as it is committed (a long poll) rather than at the next beat.
const HOLD: Duration = Duration::from_millis(500);
/// How often the leader checks for silent nodes and refreshes the metrics.
const WATCH_EVERY: Duration = Duration::from_millis(500);

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("credentials: {0}")]
    Identity(#[from] identity::IdentityError),
    #[error(transparent)]
    Rpc(#[from] RpcError),
    #[error(transparent)]
    Replica(#[from] replica::ReplicaError),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("metrics: {0}")]
    Metrics(String),
}

/// What a node said in its last heartbeat, and when (the leader's memory only).
#[derive(Debug, Clone, Copy)]
struct Heard {
    at: Instant,
    runnable: u32,
}

/// The running daemon.
#[derive(Debug)]
pub struct Server {
    config: Config,
    cluster: ClusterId,
    endpoint: quinn::Endpoint,
    replica: mpsc::Sender<Input>,
    shared: Arc<Shared>,
    programs: PathBuf,
    heard: Mutex<(u64, HashMap<NodeId, Heard>)>,
    links: Mutex<HashMap<u64, quinn::Connection>>,
}

/// Runs a coordinator until `shutdown` resolves. Must be called inside a tokio runtime.
///
/// # Errors
///
/// The credentials, the data directory or the listening address are unusable.
pub async fn run(config: Config, shutdown: impl std::future::Future<Output = ()>) -> Result<(), ServerError> {
    let server = start(config).await?;
    shutdown.await;
    server.endpoint.close(rpc::CLOSE_SHUTDOWN, b"shutting down");
    Ok(())
}

/// Starts a coordinator in the current tokio runtime and returns it.
///
/// # Errors
///
/// As [`run`].
pub async fn start(config: Config) -> Result<Arc<Server>, ServerError> {
    let creds = Credentials::load(&config.credentials, &config.name)?;
    let cluster = creds.identity()?.cluster;
    let programs = config.data_dir.join("programs");
    std::fs::create_dir_all(&programs).map_err(|source| ServerError::Io { path: programs.clone(), source })?;
    if let Some(addr) = config.metrics {
        metrics_exporter_prometheus::PrometheusBuilder::new()
            .with_http_listener(addr)
            .install()
            .map_err(|e| ServerError::Metrics(e.to_string()))?;
    }
    let endpoint = rpc::server_endpoint(&creds, config.listen)?;
    let mut links = HashMap::new();
    for member in config.members.iter().filter(|m| m.id != config.id) {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        links.insert(member.id, tx);
        tokio::spawn(raft_link(endpoint.clone(), member.addr, cluster, rx));
    }
    let send = Box::new(move |to: u64, batch: Vec<RaftMessage>| {
        if let Some(link) = links.get(&to) {
            let _ = link.send(batch);
        }
    });
    let replica_config = replica::ReplicaConfig {
        id: config.id,
        name: config.name.clone(),
        voters: config.members.iter().map(|m| m.id).collect(),
        dir: config.data_dir.join("raft"),
    };
    let (replica, shared) = replica::start(&replica_config, send)?;
    let server = Arc::new(Server {
        config,
        cluster,
        endpoint: endpoint.clone(),
        replica,
        shared,
        programs,
        heard: Mutex::new((0, HashMap::new())),
        links: Mutex::new(HashMap::new()),
    });
    tokio::spawn(server.clone().accept_loop());
    tokio::spawn(server.clone().watch());
    tracing::info!(id = server.config.id, listen = %server.config.listen, "coordinator started");
    Ok(server)
}

/// Carries raft messages to one member, in order, one batch per stream. Messages that cannot
/// be delivered are dropped: raft sends again what matters.
async fn raft_link(
    endpoint: quinn::Endpoint,
    addr: SocketAddr,
    cluster: ClusterId,
    mut rx: tokio::sync::mpsc::UnboundedReceiver<Vec<RaftMessage>>,
) {
    let mut conn: Option<quinn::Connection> = None;
    let mut backoff = Duration::from_millis(50);
    while let Some(mut batch) = rx.recv().await {
        while batch.len() < 4096 {
            match rx.try_recv() {
                Ok(more) => batch.extend(more),
                Err(_) => break,
            }
        }
        if conn.as_ref().is_none_or(|c| c.close_reason().is_some()) {
            match rpc::connect(&endpoint, addr, cluster, Role::Coordinator).await {
                Ok(c) => {
                    conn = Some(c);
                    backoff = Duration::from_millis(50);
                }
                Err(e) => {
                    tracing::debug!(%addr, "raft peer unreachable: {e}");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                    while rx.try_recv().is_ok() {}
                    continue;
                }
            }
        }
        let Some(c) = conn.as_ref() else { continue };
        let request = Request::Raft(batch);
        match tokio::time::timeout(Duration::from_secs(2), rpc::call(c, &request, MAX_FRAME)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                tracing::debug!(%addr, "raft send failed: {e}");
                conn = None;
            }
            Err(_) => conn = None,
        }
    }
}

fn now_ms() -> u64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
}

/// Whether a peer of `role` may make `request`.
fn allowed(role: Role, request: &Request) -> bool {
    match request {
        Request::Status => true,
        Request::Raft(_) => role == Role::Coordinator,
        Request::Register(_) | Request::Heartbeat(_) => role == Role::Node,
        Request::Submit { .. } | Request::Guests | Request::Guest(_) | Request::Kill(_) | Request::Nodes => {
            role == Role::Client
        }
        Request::HasProgram(_) | Request::PutProgram { .. } => matches!(role, Role::Client | Role::Coordinator),
        Request::GetProgram(_) => matches!(role, Role::Node | Role::Coordinator),
        Request::Output { .. } => false,
    }
}

impl Server {
    /// The address clients, nodes and members reach this coordinator at.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.endpoint.local_addr()
    }

    /// This member's view of the raft group.
    pub fn status(&self) -> shoal_protocol::msg::MemberStatus {
        read(&self.shared.status).clone()
    }

    /// Stops serving (the replica thread ends with the process).
    pub fn close(&self) {
        self.endpoint.close(rpc::CLOSE_SHUTDOWN, b"shutting down");
    }

    async fn accept_loop(self: Arc<Self>) {
        while let Some(incoming) = self.endpoint.accept().await {
            let server = self.clone();
            tokio::spawn(async move {
                let all = [Role::Coordinator, Role::Node, Role::Client];
                match rpc::accept(incoming, server.cluster, Role::Coordinator, &all).await {
                    Ok((conn, peer)) => server.serve_connection(conn, peer).await,
                    Err(e) => {
                        metrics::counter!("shoal_connections_refused_total").increment(1);
                        tracing::info!("connection refused: {e}");
                    }
                }
            });
        }
    }

    async fn serve_connection(self: Arc<Self>, conn: quinn::Connection, peer: PeerIdentity) {
        while let Ok((send, recv)) = conn.accept_bi().await {
            let (server, conn, peer) = (self.clone(), conn.clone(), peer.clone());
            tokio::spawn(async move {
                if let Err(e) = server.serve_stream(&peer, send, recv).await {
                    if matches!(e, RpcError::Frame(FrameError::Decode(_) | FrameError::Oversized { .. })) {
                        tracing::warn!(peer = %peer.name, "closing the connection of a peer that sent a bad frame: {e}");
                        metrics::counter!("shoal_bad_frames_total").increment(1);
                        conn.close(rpc::CLOSE_PROTOCOL, b"bad frame");
                    } else {
                        tracing::debug!(peer = %peer.name, "stream failed: {e}");
                    }
                }
            });
        }
    }

    async fn serve_stream(
        &self,
        peer: &PeerIdentity,
        mut send: quinn::SendStream,
        mut recv: quinn::RecvStream,
    ) -> Result<(), RpcError> {
        let role = peer.role.unwrap_or(Role::Client);
        let max = if role == Role::Coordinator { MAX_PEER_FRAME } else { MAX_FRAME };
        let Some(request) = frame::read::<_, Request>(&mut recv, max).await? else { return Ok(()) };
        let response = if !allowed(role, &request) {
            Response::Failed(Failure::BadRequest(format!("a {role} may not make this request of a coordinator")))
        } else {
            match request {
                Request::GetProgram(digest) => return self.send_program(digest, &mut send).await,
                Request::PutProgram { digest, size } => {
                    self.put_program(role, digest, size, &mut recv).await.unwrap_or_else(Response::Failed)
                }
                request => self.answer(peer, request).await.unwrap_or_else(Response::Failed),
            }
        };
        frame::write(&mut send, &response).await?;
        send.finish()?;
        Ok(())
    }

    async fn answer(&self, peer: &PeerIdentity, request: Request) -> Result<Response, Failure> {
        match request {
            Request::Status => Ok(Response::Status(self.status())),
            Request::Raft(messages) => {
                let _ = self.replica.send(Input::Step(messages));
                Ok(Response::Done)
            }
            Request::Guests => {
                self.read_barrier().await?;
                let state = read(&self.shared.state);
                Ok(Response::Guests(state.guests().filter_map(|(id, _)| state.guest_info(id)).collect()))
            }
            Request::Guest(id) => {
                self.read_barrier().await?;
                let info = read(&self.shared.state).guest_info(id);
                info.map(|i| Response::Guest(Box::new(i))).ok_or_else(|| Failure::NotFound(format!("guest {id}")))
            }
            Request::Nodes => {
                self.read_barrier().await?;
                let heard = self.heard_now();
                let state = read(&self.shared.state);
                let runnable = |id| heard.get(&id).map_or(0, |h| h.runnable);
                Ok(Response::Nodes(state.nodes().filter_map(|(id, _)| state.node_info(id, runnable(id))).collect()))
            }
            Request::HasProgram(digest) => Ok(Response::HasProgram(self.program_path(digest).exists())),
            Request::Submit { spec, request } => {
                if !self.program_path(spec.program).exists() {
                    return Err(Failure::NotFound(format!("program {}", spec.program.hex())));
                }
                match self.propose(Command::Submit { spec, request, at_ms: now_ms() }).await? {
                    Outcome::Submitted(id) => Ok(Response::Submitted(id)),
                    other => Err(Failure::Unavailable(format!("unexpected outcome {other:?}"))),
                }
            }
            Request::Kill(guest) => match self.propose(Command::Kill { guest, at_ms: now_ms() }).await? {
                Outcome::NotFound(what) => Err(Failure::NotFound(what)),
                _ => Ok(Response::Done),
            },
            Request::Register(registration) => {
                let command = Command::Register { name: peer.name.clone(), registration, at_ms: now_ms() };
                match self.propose(command).await? {
                    Outcome::Registered { node, incarnation } => {
                        self.hear(node, 0);
                        tracing::info!(node = %peer.name, id = %node, incarnation, "node registered");
                        Ok(Response::Registered { node, incarnation })
                    }
                    other => Err(Failure::Unavailable(format!("unexpected outcome {other:?}"))),
                }
            }
            Request::Heartbeat(hb) => self.heartbeat(&peer.name, hb).await.map(Response::Heartbeat),
            Request::GetProgram(_) | Request::PutProgram { .. } | Request::Output { .. } => {
                Err(Failure::BadRequest("not served here".into()))
            }
        }
    }

    /// Turns a replica's failure into what a client can act on (a leader's address).
    fn translate(&self, failure: Failure) -> Failure {
        match failure {
            Failure::NotLeader { leader } => Failure::NotLeader {
                leader: leader
                    .and_then(|id| id.parse().ok())
                    .and_then(|id| self.config.member_addr(id))
                    .map(|a| a.to_string()),
            },
            f => f,
        }
    }

    async fn propose(&self, command: Command) -> Result<Outcome, Failure> {
        let (reply, rx) = oneshot::channel();
        self.replica
            .send(Input::Propose { command, reply })
            .map_err(|_| Failure::Unavailable("the replica has stopped".into()))?;
        match tokio::time::timeout(COMMIT_TIMEOUT, rx).await {
            Ok(Ok(result)) => result.map_err(|f| self.translate(f)),
            Ok(Err(_)) => Err(Failure::Unavailable("the replica has stopped".into())),
            Err(_) => Err(Failure::Unavailable("timed out waiting for the commit; retry".into())),
        }
    }

    /// Waits until the state reflects every write acknowledged before now.
    async fn read_barrier(&self) -> Result<(), Failure> {
        let (reply, rx) = oneshot::channel();
        self.replica.send(Input::Read { reply }).map_err(|_| Failure::Unavailable("the replica has stopped".into()))?;
        match tokio::time::timeout(COMMIT_TIMEOUT, rx).await {
            Ok(Ok(result)) => result.map_err(|f| self.translate(f)),
            Ok(Err(_)) => Err(Failure::Unavailable("the replica has stopped".into())),
            Err(_) => Err(Failure::Unavailable("timed out confirming the leadership; retry".into())),
        }
    }

    fn require_leader(&self) -> Result<(), Failure> {
        let status = self.status();
        if status.role == "leader" {
            Ok(())
        } else {
            Err(self.translate(Failure::NotLeader { leader: (status.leader != 0).then(|| status.leader.to_string()) }))
        }
    }

    /// The heartbeat table of this term, emptied when the term changes (a new leader's clock
    /// starts afresh).
    fn heard(&self) -> std::sync::MutexGuard<'_, (u64, HashMap<NodeId, Heard>)> {
        let term = self.status().term;
        let mut heard = self.heard.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if heard.0 != term {
            *heard = (term, HashMap::new());
        }
        heard
    }

    fn heard_now(&self) -> HashMap<NodeId, Heard> {
        self.heard().1.clone()
    }

    fn hear(&self, node: NodeId, runnable: u32) {
        self.heard().1.insert(node, Heard { at: Instant::now(), runnable });
    }

    async fn heartbeat(&self, name: &str, hb: Heartbeat) -> Result<HeartbeatReply, Failure> {
        self.require_leader()?;
        let mut commands = Vec::new();
        {
            let state = read(&self.shared.state);
            let Some(node) = state.node(hb.node) else { return Err(Failure::Reregister) };
            if node.name != name {
                return Err(Failure::BadRequest(format!("{name} may not heartbeat for {}", node.name)));
            }
            if node.incarnation != hb.incarnation || !node.live {
                return Err(Failure::Reregister);
            }
            for &(guest, epoch) in &hb.running {
                if let Some(g) = state.guest(guest)
                    && g.epoch == epoch
                    && g.node == Some(hb.node)
                    && g.state == shoal_protocol::msg::GuestState::Assigned
                {
                    commands.push(Command::Started { guest, epoch, at_ms: now_ms() });
                }
            }
        }
        self.hear(hb.node, hb.runnable);
        metrics::counter!("shoal_heartbeats_total").increment(1);
        for exit in &hb.exits {
            commands.push(Command::Ended {
                guest: exit.guest,
                epoch: exit.epoch,
                state: exit.state.clone(),
                at_ms: now_ms(),
            });
        }
        if !commands.is_empty() {
            self.propose(Command::Batch(commands)).await?;
        }
        let mut reply = HeartbeatReply {
            assign: Vec::new(),
            stop: Vec::new(),
            acked: hb.exits.iter().map(|x| (x.guest, x.epoch)).collect(),
        };
        let reported: HashSet<_> =
            hb.running.iter().chain(&hb.starting).copied().chain(reply.acked.iter().copied()).collect();
        let pending = |reply: &mut HeartbeatReply| {
            let state = read(&self.shared.state);
            reply.assign = state
                .guests()
                .filter(|(id, g)| {
                    g.node == Some(hb.node)
                        && g.state == shoal_protocol::msg::GuestState::Assigned
                        && !reported.contains(&(*id, g.epoch))
                })
                .map(|(guest, g)| Assignment { guest, epoch: g.epoch, spec: g.spec.clone() })
                .collect();
            reply.stop = hb
                .running
                .iter()
                .chain(&hb.starting)
                .filter(|(guest, epoch)| {
                    state
                        .guest(*guest)
                        .is_none_or(|g| g.epoch != *epoch || g.node != Some(hb.node) || g.state.is_final())
                })
                .copied()
                .collect();
        };
        let mut applied = self.shared.applied.subscribe();
        pending(&mut reply);
        let held = tokio::time::Instant::now() + HOLD;
        while reply.assign.is_empty() && reply.stop.is_empty() && reply.acked.is_empty() {
            if !matches!(tokio::time::timeout_at(held, applied.changed()).await, Ok(Ok(()))) {
                break;
            }
            pending(&mut reply);
        }
        if !reply.assign.is_empty() {
            // Hand out work only as a leader the group still follows, from a state that has
            // every placement committed so far.
            self.read_barrier().await?;
            pending(&mut reply);
        }
        Ok(reply)
    }

    /// The leader's watch: nodes silent too long are proposed lost; the metrics are refreshed.
    async fn watch(self: Arc<Self>) {
        let timeout = Duration::from_millis(self.config.node_timeout_ms);
        let mut ticker = tokio::time::interval(WATCH_EVERY);
        loop {
            ticker.tick().await;
            self.refresh_metrics();
            if self.status().role != "leader" {
                continue;
            }
            let heard = self.heard_now();
            let now = Instant::now();
            let silent: Vec<(NodeId, u64)> = {
                let state = read(&self.shared.state);
                state
                    .nodes()
                    .filter(|(_, n)| n.live)
                    .filter_map(|(id, n)| match heard.get(&id) {
                        Some(h) if now.duration_since(h.at) > timeout => Some((id, n.incarnation)),
                        Some(_) => None,
                        None => {
                            // First look at this node in this term: its clock starts now.
                            self.hear(id, 0);
                            None
                        }
                    })
                    .collect()
            };
            for (node, incarnation) in silent {
                tracing::warn!(%node, "node silent for {timeout:?}: marking it lost");
                if let Err(e) = self.propose(Command::NodeLost { node, incarnation, at_ms: now_ms() }).await {
                    tracing::warn!(%node, "could not mark the node lost: {e}");
                }
            }
        }
    }

    fn refresh_metrics(&self) {
        let state = read(&self.shared.state);
        for word in ["pending", "assigned", "running", "exited", "failed", "lost", "killed"] {
            let n = state.guests_by_state().get(word).copied().unwrap_or(0);
            metrics::gauge!("shoal_guests", "state" => word).set(n as f64);
        }
        let placements: u64 = state.guests().map(|(_, g)| g.epoch.0).sum();
        metrics::gauge!("shoal_placements").set(placements as f64);
        let live = state.nodes().filter(|(_, n)| n.live).count();
        metrics::gauge!("shoal_nodes_live").set(live as f64);
    }

    fn program_path(&self, digest: Digest) -> PathBuf {
        self.programs.join(digest.hex())
    }

    async fn send_program(&self, digest: Digest, send: &mut quinn::SendStream) -> Result<(), RpcError> {
        let path = self.program_path(digest);
        let bytes = match tokio::task::spawn_blocking(move || std::fs::read(path)).await {
            Ok(Ok(bytes)) => bytes,
            _ => {
                frame::write(send, &Response::Failed(Failure::NotFound(format!("program {}", digest.hex())))).await?;
                send.finish()?;
                return Ok(());
            }
        };
        for chunk in bytes.chunks(CHUNK) {
            frame::write(send, &Response::Chunk(chunk.to_vec())).await?;
        }
        frame::write(send, &Response::Chunk(Vec::new())).await?;
        send.finish()?;
        Ok(())
    }

    /// Receives a program; from a client (at the leader), stores it on a majority first.
    async fn put_program(
        &self,
        role: Role,
        digest: Digest,
        size: u64,
        recv: &mut quinn::RecvStream,
    ) -> Result<Response, Failure> {
        if role == Role::Client {
            self.require_leader()?;
        }
        if size > MAX_PROGRAM {
            return Err(Failure::BadRequest(format!("programs are at most {MAX_PROGRAM} bytes")));
        }
        let path = self.program_path(digest);
        if !path.exists() {
            receive_program(recv, digest, size, &path).await?;
        }
        if role == Role::Client {
            self.replicate_program(digest, size).await?;
        }
        Ok(Response::Done)
    }

    /// Copies a stored program to the other members; done when a majority (this one
    /// included) holds it.
    async fn replicate_program(&self, digest: Digest, size: u64) -> Result<(), Failure> {
        let others: Vec<_> = self.config.members.iter().filter(|m| m.id != self.config.id).cloned().collect();
        let need = self.config.members.len() / 2; // besides this member
        if need == 0 {
            return Ok(());
        }
        let mut tasks = tokio::task::JoinSet::new();
        for member in others {
            let conn = self.link(member.id, member.addr).await;
            let path = self.program_path(digest);
            tasks.spawn(async move {
                let conn = conn?;
                push_program(&conn, digest, size, &path).await
            });
        }
        let mut stored = 0;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while let Ok(Some(result)) = tokio::time::timeout_at(deadline, tasks.join_next()).await {
            match result {
                Ok(Ok(())) => stored += 1,
                Ok(Err(e)) => tracing::warn!("program copy to a member failed: {e}"),
                Err(e) => tracing::warn!("program copy task failed: {e}"),
            }
            if stored >= need {
                // The rest finish in the background.
                tasks.detach_all();
                return Ok(());
            }
        }
        Err(Failure::Unavailable(format!("program stored on {} of {} members only", stored + 1, need + 1)))
    }

    async fn link(&self, id: u64, addr: SocketAddr) -> Result<quinn::Connection, RpcError> {
        let cached = self.links.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(&id).cloned();
        if let Some(conn) = cached.filter(|c| c.close_reason().is_none()) {
            return Ok(conn);
        }
        let conn = rpc::connect(&self.endpoint, addr, self.cluster, Role::Coordinator).await?;
        self.links.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(id, conn.clone());
        Ok(conn)
    }
}

/// Reads a program's [`Upload`] frames into `path`, checking its size and digest; nothing is
/// left at `path` unless both match.
pub async fn receive_program(
    recv: &mut quinn::RecvStream,
    digest: Digest,
    size: u64,
    path: &Path,
) -> Result<(), Failure> {
    let tmp = path.with_extension(format!("part{}", std::process::id()));
    let mut file = std::fs::File::create(&tmp).map_err(|e| Failure::Unavailable(format!("cannot store: {e}")))?;
    let mut hasher = blake3::Hasher::new();
    let mut got = 0u64;
    let result = async {
        loop {
            let max = u32::try_from(CHUNK + 16).unwrap_or(MAX_FRAME);
            let Upload(chunk) = frame::read(recv, max)
                .await
                .map_err(|e| Failure::BadRequest(format!("upload: {e}")))?
                .ok_or_else(|| Failure::BadRequest("the upload ended early".into()))?;
            if chunk.is_empty() {
                break;
            }
            got += chunk.len() as u64;
            if got > size {
                return Err(Failure::BadRequest(format!("the upload is longer than its {size} bytes")));
            }
            hasher.update(&chunk);
            file.write_all(&chunk).map_err(|e| Failure::Unavailable(format!("cannot store: {e}")))?;
        }
        if got != size || Digest(*hasher.finalize().as_bytes()) != digest {
            return Err(Failure::BadRequest("the upload does not match its size and digest".into()));
        }
        file.sync_all().map_err(|e| Failure::Unavailable(format!("cannot store: {e}")))?;
        std::fs::rename(&tmp, path).map_err(|e| Failure::Unavailable(format!("cannot store: {e}")))
    }
    .await;
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Uploads the program stored at `path` over `conn`.
///
/// # Errors
///
/// The file cannot be read, the connection fails or the peer refuses the upload.
pub async fn push_program(conn: &quinn::Connection, digest: Digest, size: u64, path: &Path) -> Result<(), RpcError> {
    let bytes = std::fs::read(path).map_err(|e| RpcError::Frame(FrameError::Io(e)))?;
    let (mut send, mut recv) = rpc::open(conn, &Request::PutProgram { digest, size }).await?;
    for chunk in bytes.chunks(CHUNK) {
        frame::write(&mut send, &Upload(chunk.to_vec())).await?;
    }
    frame::write(&mut send, &Upload(Vec::new())).await?;
    send.finish()?;
    rpc::answer(&mut recv, MAX_FRAME).await.map(drop)
}
