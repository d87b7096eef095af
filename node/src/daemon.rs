//! The node daemon (`shoal node --config FILE`): registers with the coordinators, heartbeats,
//! runs the guests it is assigned on this process's [`Node`], and serves their output.
//!
//! **Heartbeats and fencing.** Every [`HEARTBEAT`] the node tells the leader what it runs, what
//! it is still starting and which guests ended; the answer assigns guests, stops guests and
//! acknowledges ends (an end is reported again until acknowledged). Every assignment carries
//! the guest's epoch; the node never starts an epoch older than one it has seen for that guest,
//! and the leader tells it to stop any guest whose epoch or node is no longer current. A node
//! that has had no answer for its lease ([`NODE_LEASE_MS`], shorter than the coordinators' node
//! timeout) stops all its guests: by the time the cluster could place them elsewhere, they no
//! longer run here, so a partition never leaves a guest running twice. A node the coordinators
//! declared lost must register again, as a new incarnation with nothing running.
//!
//! **Output.** A guest's stdout and stderr are append-only files,
//! `DATA/guests/ID.EPOCH/{stdout,stderr}`, and its end is `status` beside them. A client asks
//! for output from a pair of offsets and gets frames tagged with the offset they start at, so
//! after a broken connection it resumes exactly where it stopped.
//!
//! ```toml
//! name = "n1"                                   # credentials are NAME.pem and NAME.key
//! listen = "127.0.0.1:7201"                     # QUIC: clients read guest output here
//! data_dir = "/var/lib/shoal/n1"                # programs, guest output, the code cache
//! credentials = "/etc/shoal/credentials"
//! coordinators = ["127.0.0.1:7101", "127.0.0.1:7102", "127.0.0.1:7103"]
//! workers = 4                                   # optional: default one per CPU
//! metrics = "127.0.0.1:9201"                    # optional: Prometheus metrics over HTTP
//! ```

use std::collections::HashMap;
use std::ffi::OsString;
use std::io::{Read, Seek};
use std::net::SocketAddr;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use shoal_coordinator::client::{Client, ClientError};
use shoal_coordinator::config::NODE_LEASE_MS;
use shoal_engine::linux::{Kernel, Stdio};
use shoal_protocol::frame::{self, MAX_FRAME};
use shoal_protocol::identity::Credentials;
use shoal_protocol::msg::{
    Assignment, CHUNK, Epoch, ExitReport, ExitStatus, Failure, GuestId, GuestState, Heartbeat, HeartbeatReply, NodeId,
    Registration, Request, Response, Role,
};
use shoal_protocol::rpc::{self, RpcError};

use crate::Node;

/// How often a node heartbeats (at most; the leader may hold one this long).
pub const HEARTBEAT: Duration = Duration::from_millis(500);

/// A node daemon's configuration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DaemonConfig {
    pub name: String,
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub credentials: PathBuf,
    pub coordinators: Vec<SocketAddr>,
    #[serde(default)]
    pub workers: Option<u32>,
    #[serde(default)]
    pub metrics: Option<SocketAddr>,
}

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("{path}: {reason}")]
    Config { path: PathBuf, reason: String },
    #[error("credentials: {0}")]
    Identity(#[from] shoal_protocol::identity::IdentityError),
    #[error(transparent)]
    Rpc(#[from] RpcError),
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("cannot start the scheduler: {0}")]
    Node(#[source] std::io::Error),
    #[error("metrics: {0}")]
    Metrics(String),
}

impl DaemonConfig {
    /// Reads a configuration file.
    ///
    /// # Errors
    ///
    /// The file is unreadable or not TOML of this shape.
    pub fn load(path: &Path) -> Result<DaemonConfig, DaemonError> {
        let error = |reason: String| DaemonError::Config { path: path.into(), reason };
        let text = std::fs::read_to_string(path).map_err(|e| error(e.to_string()))?;
        let config: DaemonConfig = toml::from_str(&text).map_err(|e| error(e.to_string()))?;
        if config.coordinators.is_empty() {
            return Err(error("no coordinators".into()));
        }
        Ok(config)
    }
}

/// One guest run on this node.
struct Local {
    epoch: Epoch,
    dir: PathBuf,
    kernel: Option<Arc<Kernel>>,
    /// How it ended, once it has.
    ended: Option<GuestState>,
}

impl Local {
    /// Gives up a run this node no longer tracks. One that runs is to be killed (its end is
    /// recorded when it exits); one still starting never will run, so its end is recorded now.
    fn abandon(self, kill: &mut Vec<Arc<Kernel>>) {
        if self.ended.is_some() {
            return;
        }
        match self.kernel {
            Some(kernel) => kill.push(kernel),
            None => {
                let _ = std::fs::create_dir_all(&self.dir);
                write_status(&self.dir, &GuestState::Lost);
            }
        }
    }
}

/// The guests of this node, and the newest epoch seen of each.
#[derive(Default)]
struct Guests {
    runs: HashMap<GuestId, Local>,
    newest: HashMap<GuestId, Epoch>,
}

struct Daemon {
    config: DaemonConfig,
    node: Node,
    client: Client,
    guests: Mutex<Guests>,
    /// Signalled when a guest starts or ends, so that the next heartbeat goes at once.
    changed: tokio::sync::Notify,
    /// When a heartbeat was last answered.
    answered: Mutex<Instant>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Runs a node daemon until `shutdown` resolves. Must be called inside a tokio runtime.
///
/// # Errors
///
/// The credentials, the data directory or the listening address are unusable.
pub async fn run(config: DaemonConfig, shutdown: impl std::future::Future<Output = ()>) -> Result<(), DaemonError> {
    let creds = Credentials::load(&config.credentials, &config.name)?;
    let cluster = creds.identity()?.cluster;
    for dir in ["programs", "guests"] {
        let path = config.data_dir.join(dir);
        std::fs::create_dir_all(&path).map_err(|source| DaemonError::Io { path, source })?;
    }
    if let Some(addr) = config.metrics {
        metrics_exporter_prometheus::PrometheusBuilder::new()
            .with_http_listener(addr)
            .install()
            .map_err(|e| DaemonError::Metrics(e.to_string()))?;
    }
    let mut scheduler = shoal_scheduler::Config::detect();
    scheduler.workers = config.workers.map(|n| n as usize);
    let code_cache = Some(shoal_engine::jit::cache::CodeCacheConfig {
        dir: config.data_dir.join("code"),
        max_bytes: shoal_engine::jit::cache::DEFAULT_MAX_BYTES,
    });
    let node = Node::start(crate::Config { scheduler, jit: true, code_cache: code_cache.clone() })
        .map_err(DaemonError::Node)?;
    let endpoint = rpc::server_endpoint(&creds, config.listen)?;
    let client = Client::new(&creds, cluster, config.coordinators.clone())?;
    let daemon = Arc::new(Daemon {
        config,
        node,
        client,
        guests: Mutex::new(Guests::default()),
        changed: Default::default(),
        answered: Mutex::new(Instant::now()),
    });
    let serving = tokio::spawn(serve(daemon.clone(), endpoint.clone(), cluster));
    let beating = tokio::spawn(daemon.clone().heartbeats());
    let fencing = tokio::spawn(daemon.clone().fence());
    tracing::info!(name = %daemon.config.name, listen = %daemon.config.listen, "node started");
    shutdown.await;
    beating.abort();
    fencing.abort();
    serving.abort();
    daemon.stop_all();
    endpoint.close(rpc::CLOSE_SHUTDOWN, b"shutting down");
    Ok(())
}

impl Daemon {
    async fn register(&self) -> (NodeId, u64) {
        let registration = Registration {
            addr: self.config.listen.to_string(),
            workers: u32::try_from(self.node.scheduler().workers()).unwrap_or(u32::MAX),
            numa_nodes: u32::try_from(shoal_scheduler::Topology::detect().nodes.len().max(1)).unwrap_or(1),
        };
        loop {
            match self.client.call(&Request::Register(registration.clone())).await {
                Ok(Response::Registered { node, incarnation }) => {
                    tracing::info!(%node, incarnation, "registered");
                    return (node, incarnation);
                }
                Ok(other) => tracing::warn!("unexpected answer to register: {other:?}"),
                Err(e) => tracing::warn!("cannot register yet: {e}"),
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    async fn heartbeats(self: Arc<Self>) {
        loop {
            let (node, incarnation) = self.register().await;
            self.answered();
            loop {
                let request = Request::Heartbeat(self.heartbeat(node, incarnation));
                let sent = Instant::now();
                // The leader holds a heartbeat it has nothing to answer to for a while (a long
                // poll); a guest that starts or ends here sends a fresh one at once.
                let call = tokio::time::timeout(Duration::from_secs(2), self.client.call(&request));
                let result = tokio::select! {
                    result = call => result,
                    () = self.changed.notified() => continue,
                };
                let failed = match result {
                    Ok(Ok(Response::Heartbeat(reply))) => {
                        tracing::debug!("heartbeat answered after {:?}", sent.elapsed());
                        self.answered();
                        self.follow(reply);
                        if sent.elapsed() < HEARTBEAT / 10 {
                            // Answered at once: pace the next one a little.
                            tokio::time::sleep(HEARTBEAT / 10).await;
                        }
                        false
                    }
                    Ok(Err(ClientError::Failed(Failure::Reregister))) => {
                        tracing::warn!("the coordinators no longer know this node as running: stopping its guests");
                        self.stop_all();
                        break;
                    }
                    Ok(Ok(other)) => {
                        tracing::warn!("unexpected answer to a heartbeat: {other:?}");
                        true
                    }
                    Ok(Err(e)) => {
                        tracing::debug!("heartbeat failed: {e}");
                        true
                    }
                    Err(_) => {
                        tracing::debug!("heartbeat timed out");
                        true
                    }
                };
                if failed {
                    tokio::time::sleep(HEARTBEAT / 5).await;
                }
            }
        }
    }

    fn answered(&self) {
        *lock(&self.answered) = Instant::now();
    }

    /// The lease, on its own clock (a heartbeat stuck on a dead connection must not delay it):
    /// with no heartbeat answered for [`NODE_LEASE_MS`], every guest is stopped.
    async fn fence(self: Arc<Self>) {
        let lease = Duration::from_millis(NODE_LEASE_MS);
        let mut ticker = tokio::time::interval(Duration::from_millis(100));
        loop {
            ticker.tick().await;
            let silent = lock(&self.answered).elapsed();
            if silent > lease && self.running() > 0 {
                tracing::warn!("no heartbeat answered for {silent:?}: stopping every guest (fencing)");
                self.stop_all();
            }
        }
    }

    fn running(&self) -> usize {
        lock(&self.guests).runs.values().filter(|l| l.ended.is_none()).count()
    }

    fn heartbeat(&self, node: NodeId, incarnation: u64) -> Heartbeat {
        let guests = lock(&self.guests);
        let (mut running, mut starting, mut exits) = (Vec::new(), Vec::new(), Vec::new());
        for (&guest, l) in &guests.runs {
            match (&l.ended, &l.kernel) {
                (None, Some(_)) => running.push((guest, l.epoch)),
                (None, None) => starting.push((guest, l.epoch)),
                (Some(state), _) => exits.push(ExitReport { guest, epoch: l.epoch, state: state.clone() }),
            }
        }
        let runnable = u32::try_from(self.node.scheduler().runnable()).unwrap_or(u32::MAX);
        Heartbeat { node, incarnation, runnable, running, starting, exits }
    }

    fn follow(self: &Arc<Self>, reply: HeartbeatReply) {
        // Guests are killed after the table is unlocked: a kill may end a guest, and its end
        // is recorded in the table.
        let mut kill = Vec::new();
        self.follow_locked(reply, &mut kill);
        for k in kill {
            k.kill_all();
        }
    }

    fn follow_locked(self: &Arc<Self>, reply: HeartbeatReply, kill: &mut Vec<Arc<Kernel>>) {
        let mut guests = lock(&self.guests);
        for (guest, epoch) in reply.acked {
            if guests.runs.get(&guest).is_some_and(|l| l.epoch == epoch && l.ended.is_some()) {
                guests.runs.remove(&guest);
            }
        }
        for (guest, epoch) in reply.stop {
            let Some(l) = guests.runs.get(&guest).filter(|l| l.epoch == epoch && l.ended.is_none()) else { continue };
            tracing::info!(%guest, %epoch, "stopping a guest at the coordinator's word");
            if l.kernel.is_none() {
                // Still starting: it never runs, and there is no end to report.
                if let Some(l) = guests.runs.remove(&guest) {
                    l.abandon(kill);
                }
            } else {
                kill.extend(l.kernel.clone());
            }
        }
        for a in reply.assign {
            let newest = guests.newest.get(&a.guest).copied().unwrap_or_default();
            if a.epoch < newest {
                tracing::warn!(guest = %a.guest, epoch = %a.epoch, %newest, "refusing a stale assignment");
                continue;
            }
            if let Some(l) = guests.runs.get(&a.guest) {
                if l.epoch == a.epoch {
                    continue;
                }
                if let Some(l) = guests.runs.remove(&a.guest) {
                    l.abandon(kill);
                }
            }
            guests.newest.insert(a.guest, a.epoch);
            let dir = self.config.data_dir.join("guests").join(format!("{}.{}", a.guest, a.epoch));
            guests.runs.insert(a.guest, Local { epoch: a.epoch, dir: dir.clone(), kernel: None, ended: None });
            let daemon = self.clone();
            tokio::spawn(async move { daemon.start(a, dir).await });
        }
    }

    /// Fetches the program if needed and starts the guest; a failure to start is its end.
    async fn start(self: Arc<Self>, a: Assignment, dir: PathBuf) {
        let started = self.try_start(&a, &dir).await;
        let mut guests = lock(&self.guests);
        let Some(l) = guests.runs.get_mut(&a.guest).filter(|l| l.epoch == a.epoch) else {
            // Replaced or stopped while starting.
            drop(guests);
            if let Ok(k) = started {
                k.kill_all();
            }
            return;
        };
        match started {
            Ok(kernel) => {
                metrics::counter!("shoal_guests_started_total").increment(1);
                l.kernel = Some(kernel);
                self.changed.notify_one();
            }
            Err(why) => {
                tracing::warn!(guest = %a.guest, "cannot start: {why}");
                let state = GuestState::Failed(why);
                write_status(&dir, &state);
                l.ended = Some(state);
                self.changed.notify_one();
            }
        }
    }

    async fn try_start(self: &Arc<Self>, a: &Assignment, dir: &Path) -> Result<Arc<Kernel>, String> {
        let spec = &a.spec;
        // The run's directory comes first: even a guest that cannot start has its end there.
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let program = self.config.data_dir.join("programs").join(spec.program.hex());
        if !program.exists() {
            let bytes =
                self.client.program(spec.program).await.map_err(|e| format!("cannot fetch the program: {e}"))?;
            let tmp = program.with_extension(format!("part{}", std::process::id()));
            std::fs::write(&tmp, &bytes)
                .and_then(|()| std::fs::rename(&tmp, &program))
                .map_err(|e| format!("cannot store the program: {e}"))?;
        }
        if let Some(root) = &spec.sysroot
            && !Path::new(root).is_dir()
        {
            return Err(format!("sysroot {root} does not exist on node {}", self.config.name));
        }
        let open = |name: &str| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(dir.join(name))
                .map(std::os::fd::OwnedFd::from)
                .map_err(|e| format!("{}: {e}", dir.join(name).display()))
        };
        let null = std::fs::File::open("/dev/null").map(std::os::fd::OwnedFd::from).map_err(|e| e.to_string())?;
        let stdio = Stdio::Files(Arc::new([null, open("stdout")?, open("stderr")?]));
        let config = shoal_engine::linux::Config {
            sysroot: spec.sysroot.as_ref().map(PathBuf::from),
            stdio,
            memory_limit: spec.memory,
            weight: 1,
            numa_node: self.node.scheduler().place(),
            ..Default::default()
        };
        let kernel = Kernel::new(config, self.node.runtime()).map_err(|e| e.to_string())?;
        let args: Vec<OsString> = spec.args.iter().map(|a| OsString::from_vec(a.clone())).collect();
        let env: Vec<OsString> = spec.env.iter().map(|e| OsString::from_vec(e.clone())).collect();
        let path = program.to_str().ok_or("the data directory's path is not UTF-8")?.to_owned();
        let (daemon, guest, epoch, status_dir) = (Arc::downgrade(self), a.guest, a.epoch, dir.to_path_buf());
        kernel
            .start(&path, &args, &env, move |status| {
                let status = match status {
                    shoal_engine::linux::ExitStatus::Exited(c) => ExitStatus::Exited(i32::from(c)),
                    shoal_engine::linux::ExitStatus::Signaled { signal, .. } => ExitStatus::Signaled(i32::from(signal)),
                };
                let state = GuestState::Exited(status);
                tracing::info!(%guest, %epoch, "guest ended: {state:?}");
                write_status(&status_dir, &state);
                if let Some(d) = daemon.upgrade()
                    && let Some(l) = lock(&d.guests).runs.get_mut(&guest).filter(|l| l.epoch == epoch)
                {
                    l.ended = Some(state);
                    l.kernel = None;
                    d.changed.notify_one();
                }
            })
            .map_err(|e| e.to_string())?;
        Ok(kernel)
    }

    fn stop_all(&self) {
        // What ran is the coordinators' to judge now (lost, or placed again); nothing here
        // reports on it any more.
        let mut kill = Vec::new();
        for (_, l) in lock(&self.guests).runs.drain() {
            l.abandon(&mut kill);
        }
        for k in kill {
            k.kill_all();
        }
    }

    /// The directory and end of a guest's latest run here.
    fn find(&self, guest: GuestId) -> Option<(PathBuf, Option<GuestState>)> {
        if let Some(l) = lock(&self.guests).runs.get(&guest) {
            return Some((l.dir.clone(), l.ended.clone()));
        }
        let prefix = format!("{guest}.");
        let dirs = std::fs::read_dir(self.config.data_dir.join("guests")).ok()?;
        let dir = dirs
            .filter_map(Result::ok)
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                let epoch: u64 = name.strip_prefix(&prefix)?.parse().ok()?;
                Some((epoch, e.path()))
            })
            .max_by_key(|(epoch, _)| *epoch)?
            .1;
        let ended = read_status(&dir).or(Some(GuestState::Lost));
        Some((dir, ended))
    }

    /// Streams a guest's output from `offsets`; with `follow`, until it ends.
    async fn output(
        &self,
        guest: GuestId,
        mut offsets: [u64; 2],
        follow: bool,
        send: &mut quinn::SendStream,
    ) -> Result<(), RpcError> {
        let Some((dir, _)) = self.find(guest) else {
            let failure = Failure::NotFound(format!("guest {guest} on node {}", self.config.name));
            frame::write(send, &Response::Failed(failure)).await?;
            return Ok(());
        };
        loop {
            // The end is read before the files, so nothing written before it is missed.
            let ended = self.find(guest).and_then(|(d, e)| if d == dir { e } else { Some(GuestState::Lost) });
            let mut sent = 0;
            for (i, name) in ["stdout", "stderr"].into_iter().enumerate() {
                loop {
                    let data = read_at(&dir.join(name), offsets[i], CHUNK);
                    if data.is_empty() {
                        break;
                    }
                    let len = data.len() as u64;
                    let stream = u8::try_from(i + 1).unwrap_or(1);
                    frame::write(send, &Response::Output { stream, offset: offsets[i], data }).await?;
                    metrics::counter!("shoal_output_bytes_total").increment(len);
                    offsets[i] += len;
                    sent += len;
                }
            }
            if ended.is_some() && sent == 0 {
                frame::write(send, &Response::End(ended)).await?;
                return Ok(());
            }
            if !follow && sent == 0 {
                frame::write(send, &Response::End(None)).await?;
                return Ok(());
            }
            if sent == 0 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

/// Up to `max` bytes of `path` from `offset` (none if it cannot be read).
fn read_at(path: &Path, offset: u64, max: usize) -> Vec<u8> {
    let Ok(mut f) = std::fs::File::open(path) else { return Vec::new() };
    if f.seek(std::io::SeekFrom::Start(offset)).is_err() {
        return Vec::new();
    }
    let mut buf = Vec::with_capacity(max.min(64 * 1024));
    let _ = f.take(max as u64).read_to_end(&mut buf);
    buf
}

fn write_status(dir: &Path, state: &GuestState) {
    if let Ok(json) = serde_json::to_vec(state) {
        let tmp = dir.join("status.tmp");
        let _ = std::fs::write(&tmp, json).and_then(|()| std::fs::rename(&tmp, dir.join("status")));
    }
}

fn read_status(dir: &Path) -> Option<GuestState> {
    serde_json::from_slice(&std::fs::read(dir.join("status")).ok()?).ok()
}

/// Serves clients' output requests.
async fn serve(daemon: Arc<Daemon>, endpoint: quinn::Endpoint, cluster: shoal_protocol::ClusterId) {
    while let Some(incoming) = endpoint.accept().await {
        let daemon = daemon.clone();
        tokio::spawn(async move {
            let (conn, peer) = match rpc::accept(incoming, cluster, Role::Node, &[Role::Client]).await {
                Ok(c) => c,
                Err(e) => {
                    tracing::info!("connection refused: {e}");
                    return;
                }
            };
            while let Ok((mut send, mut recv)) = conn.accept_bi().await {
                let (daemon, conn) = (daemon.clone(), conn.clone());
                let name = peer.name.clone();
                tokio::spawn(async move {
                    let result = async {
                        match frame::read::<_, Request>(&mut recv, MAX_FRAME).await? {
                            Some(Request::Output { guest, offsets, follow }) => {
                                daemon.output(guest, offsets, follow, &mut send).await?
                            }
                            Some(_) => {
                                let failure = Failure::BadRequest("a node serves only guest output".into());
                                frame::write(&mut send, &Response::Failed(failure)).await?;
                            }
                            None => {}
                        }
                        send.finish()?;
                        Ok::<_, RpcError>(())
                    }
                    .await;
                    if let Err(e) = result {
                        if matches!(
                            e,
                            RpcError::Frame(frame::FrameError::Decode(_) | frame::FrameError::Oversized { .. })
                        ) {
                            tracing::warn!(peer = %name, "closing a connection that sent a bad frame: {e}");
                            conn.close(rpc::CLOSE_PROTOCOL, b"bad frame");
                        } else {
                            tracing::debug!(peer = %name, "output stream ended: {e}");
                        }
                    }
                });
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deployment_example_is_valid() {
        let c: DaemonConfig = toml::from_str(include_str!("../../deploy/node.toml")).unwrap();
        assert_eq!((c.name.as_str(), c.coordinators.len(), c.workers), ("n1", 3, Some(8)));
        assert!(toml::from_str::<DaemonConfig>("name = \"n1\"\ncolour = 1").is_err());
    }
}
