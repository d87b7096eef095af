//! `shoal cluster init|up|down|status`: a cluster of local processes on loopback, kept in one
//! directory.
//!
//! ```text
//! DIR/cluster.toml        what clients read: the cluster id, the coordinators' addresses
//! DIR/ca/                 the cluster CA (ca.pem, ca.key): only `init` needs it
//! DIR/credentials/        ca.pem and NAME.pem / NAME.key for c1.., n1.. and client
//! DIR/c1.toml, DIR/n1.toml  the daemons' configurations (`shoal coordinator --config`, ...)
//! DIR/c1/, DIR/n1/        their data directories
//! DIR/run/NAME.pid, NAME.log  what `up` started, and its log
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use shoal_coordinator::client::{Client, ClusterFile};
use shoal_coordinator::config::{self as coordinator_config, Member};
use shoal_node::daemon::DaemonConfig;
use shoal_protocol::identity::ClusterCa;
use shoal_protocol::msg::Role;

/// The default cluster directory: `~/.config/shoal/cluster`.
pub fn default_dir() -> Option<PathBuf> {
    let config = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(config.join("shoal").join("cluster"))
}

/// A free loopback port for `udp` or TCP (taken and released: `up` binds it soon after).
fn free_port(udp: bool) -> anyhow::Result<SocketAddr> {
    let any = SocketAddr::from(([127, 0, 0, 1], 0));
    Ok(if udp {
        std::net::UdpSocket::bind(any)?.local_addr()?
    } else {
        std::net::TcpListener::bind(any)?.local_addr()?
    })
}

fn write_toml<T: serde::Serialize>(path: &Path, value: &T) -> anyhow::Result<()> {
    let text = toml::to_string_pretty(value)?;
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

/// Creates a cluster in `dir`: its CA, every member's credentials and configuration.
pub fn init(dir: &Path, coordinators: u32, nodes: u32) -> anyhow::Result<()> {
    if ![1, 3, 5].contains(&coordinators) {
        bail!("a cluster has 1, 3 or 5 coordinators, not {coordinators}");
    }
    if dir.join(ClusterFile::NAME).exists() {
        bail!("{} already holds a cluster (`shoal cluster down` and remove it to start afresh)", dir.display());
    }
    let (ca_dir, creds) = (dir.join("ca"), dir.join("credentials"));
    for d in [&ca_dir, &creds, &dir.join("run")] {
        std::fs::create_dir_all(d).with_context(|| format!("cannot create {}", d.display()))?;
    }
    let dir = std::fs::canonicalize(dir)?;
    let ca = ClusterCa::generate()?;
    ca.save(&ca_dir)?;
    std::fs::write(creds.join("ca.pem"), ca.cert_pem())?;
    let mut members = Vec::new();
    for id in 1..=u64::from(coordinators) {
        members.push(Member { id, addr: free_port(true)? });
    }
    for m in &members {
        let name = format!("c{}", m.id);
        ca.issue(Role::Coordinator, &name)?.save(&creds, &name)?;
        let config = coordinator_config::Config {
            id: m.id,
            name: name.clone(),
            listen: m.addr,
            data_dir: dir.join(&name),
            credentials: dir.join("credentials"),
            metrics: Some(free_port(false)?),
            node_timeout_ms: coordinator_config::default_node_timeout_ms(),
            members: members.clone(),
        };
        write_toml(&dir.join(format!("{name}.toml")), &config)?;
    }
    for i in 1..=nodes {
        let name = format!("n{i}");
        ca.issue(Role::Node, &name)?.save(&creds, &name)?;
        let config = DaemonConfig {
            name: name.clone(),
            listen: free_port(true)?,
            data_dir: dir.join(&name),
            credentials: dir.join("credentials"),
            coordinators: members.iter().map(|m| m.addr).collect(),
            workers: None,
            metrics: Some(free_port(false)?),
        };
        write_toml(&dir.join(format!("{name}.toml")), &config)?;
    }
    ca.issue(Role::Client, "client")?.save(&creds, "client")?;
    let file = ClusterFile {
        cluster: ca.cluster().to_string(),
        coordinators: members.iter().map(|m| m.addr).collect(),
        credentials: "credentials".into(),
    };
    write_toml(&dir.join(ClusterFile::NAME), &file)?;
    eprintln!("shoal: cluster {} in {}: {coordinators} coordinator(s), {nodes} node(s)", ca.cluster(), dir.display());
    Ok(())
}

/// The members of the cluster in `dir`: (name, is a coordinator), coordinators first.
fn members(dir: &Path) -> anyhow::Result<Vec<(String, bool)>> {
    let mut names: Vec<(String, bool)> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let stem = name.strip_suffix(".toml")?;
            let coordinator = stem.strip_prefix('c').is_some_and(|n| n.parse::<u32>().is_ok());
            let node = stem.strip_prefix('n').is_some_and(|n| n.parse::<u32>().is_ok());
            (coordinator || node).then(|| (stem.to_owned(), coordinator))
        })
        .collect();
    names.sort_by_key(|(name, coordinator)| (!coordinator, name[1..].parse::<u32>().unwrap_or(0)));
    Ok(names)
}

fn pid_file(dir: &Path, name: &str) -> PathBuf {
    dir.join("run").join(format!("{name}.pid"))
}

/// The pid in `name`'s pid file, if that process is alive and is still the member `up`
/// started (a recycled pid, or a zombie nobody reaped, is not).
fn running_pid(dir: &Path, name: &str) -> Option<i32> {
    let pid: i32 = std::fs::read_to_string(pid_file(dir, name)).ok()?.trim().parse().ok()?;
    let proc = PathBuf::from(format!("/proc/{pid}"));
    let stat = std::fs::read_to_string(proc.join("stat")).ok()?;
    // The state follows the parenthesized command name.
    let state = stat.rsplit_once(')')?.1.split_whitespace().next()?;
    if matches!(state, "Z" | "X" | "x") {
        return None;
    }
    let cmdline = std::fs::read(proc.join("cmdline")).ok()?;
    let config = dir.join(format!("{name}.toml"));
    let ours = cmdline.split(|&b| b == 0).any(|arg| arg == config.as_os_str().as_encoded_bytes());
    ours.then_some(pid)
}

/// Starts every member of the cluster in `dir` that is not running, then waits until a leader
/// is elected and every node is registered.
pub fn up(dir: &Path, coordinators: u32, nodes: u32) -> anyhow::Result<()> {
    if !dir.join(ClusterFile::NAME).exists() {
        init(dir, coordinators, nodes)?;
    }
    let exe = std::env::current_exe().context("cannot find the shoal executable")?;
    let members = members(dir)?;
    let mut children = Vec::new();
    for (name, coordinator) in &members {
        if running_pid(dir, name).is_some() {
            continue;
        }
        let log = dir.join("run").join(format!("{name}.log"));
        let out = std::fs::OpenOptions::new().create(true).append(true).open(&log)?;
        let mut command = std::process::Command::new(&exe);
        command
            .arg(if *coordinator { "coordinator" } else { "node" })
            .arg("--config")
            .arg(dir.join(format!("{name}.toml")))
            .stdin(std::process::Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out);
        if std::env::var_os("RUST_LOG").is_none() {
            command.env("RUST_LOG", "info");
        }
        // Its own process group: a Ctrl-C at the terminal that ran `up` does not reach it.
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let child = command.spawn().with_context(|| format!("cannot start {name}"))?;
        std::fs::write(pid_file(dir, name), format!("{}\n", child.id()))?;
        children.push((name.clone(), child));
    }
    let started = children.len();
    let want_nodes = members.iter().filter(|(_, c)| !c).count();
    let runtime = runtime()?;
    let ready = runtime.block_on(async {
        let client = Client::open(dir)?;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(nodes) = tokio::time::timeout(Duration::from_secs(2), client.nodes()).await
                && let Ok(nodes) = nodes
                && nodes.iter().filter(|n| n.live).count() >= want_nodes
            {
                return Ok::<_, anyhow::Error>(true);
            }
            if Instant::now() > deadline {
                return Ok(false);
            }
            for (name, child) in &mut children {
                if let Ok(Some(status)) = child.try_wait() {
                    bail!("{name} exited ({status}); see {}", dir.join("run").join(format!("{name}.log")).display());
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })?;
    if !ready {
        bail!("the cluster did not come up within 30 s; logs are in {}", dir.join("run").display());
    }
    eprintln!(
        "shoal: cluster up in {} ({started} process(es) started): a leader is elected and {want_nodes} node(s) are registered",
        dir.display()
    );
    Ok(())
}

/// Stops what `up` started: nodes first, then coordinators; SIGTERM, then SIGKILL after 10 s.
pub fn down(dir: &Path) -> anyhow::Result<()> {
    let mut members = members(dir)?;
    members.reverse();
    let mut stopped = 0;
    for (name, _) in &members {
        let Some(pid) = running_pid(dir, name) else {
            let _ = std::fs::remove_file(pid_file(dir, name));
            continue;
        };
        // SAFETY: sends a signal to a process this cluster started.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while running_pid(dir, name).is_some() && Instant::now() < deadline {
            reap(pid);
            std::thread::sleep(Duration::from_millis(20));
        }
        if running_pid(dir, name).is_some() {
            eprintln!("shoal: {name} (pid {pid}) ignored SIGTERM; killing it");
            // SAFETY: as above.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        let _ = std::fs::remove_file(pid_file(dir, name));
        stopped += 1;
    }
    eprintln!("shoal: cluster in {} down ({stopped} process(es) stopped)", dir.display());
    Ok(())
}

/// Collects `pid` if it is our child and has exited (when `up` and `down` ran in one process).
fn reap(pid: i32) {
    let mut status = 0;
    // SAFETY: waitpid with WNOHANG on a pid; no memory is shared.
    unsafe { libc::waitpid(pid, &raw mut status, libc::WNOHANG) };
}

/// A member as `cluster status` shows it.
#[derive(Debug, serde::Serialize)]
struct MemberRow {
    name: String,
    kind: &'static str,
    pid: Option<i32>,
    addr: String,
    /// leader / follower / candidate for coordinators; live / lost for nodes; `down` when not
    /// answering.
    role: String,
    term: Option<u64>,
    commit: Option<u64>,
}

/// Prints every member of the cluster in `dir` with its role, pid and address.
pub fn status(dir: &Path, json: bool) -> anyhow::Result<u8> {
    let file: ClusterFile = toml::from_str(&std::fs::read_to_string(dir.join(ClusterFile::NAME))?)?;
    let runtime = runtime()?;
    let (rows, nodes) = runtime.block_on(async {
        let client = std::sync::Arc::new(Client::open(dir)?);
        let mut asks = tokio::task::JoinSet::new();
        for (i, addr) in file.coordinators.iter().copied().enumerate() {
            let client = client.clone();
            // A member that `cluster up` started on this host (a loopback address and a pid
            // file) and whose process is gone is down: asking it would only wait out the
            // handshake's timeout.
            let name = format!("c{}", i + 1);
            let gone = addr.ip().is_loopback() && pid_file(dir, &name).exists() && running_pid(dir, &name).is_none();
            asks.spawn(async move { (i, addr, if gone { None } else { client.member_status(addr).await.ok() }) });
        }
        let nodes_client = client.clone();
        let nodes = tokio::spawn(async move {
            tokio::time::timeout(Duration::from_secs(3), nodes_client.nodes()).await.ok().and_then(Result::ok)
        });
        let mut answers = asks.join_all().await;
        answers.sort_by_key(|(i, _, _)| *i);
        let mut rows = Vec::new();
        for (i, addr, status) in answers {
            let name = format!("c{}", i + 1);
            rows.push(MemberRow {
                pid: running_pid(dir, &name),
                name,
                kind: "coordinator",
                addr: addr.to_string(),
                role: status.as_ref().map_or_else(|| "down".to_owned(), |s| s.role.clone()),
                term: status.as_ref().map(|s| s.term),
                commit: status.as_ref().map(|s| s.commit),
            });
        }
        // Nodes are the leader's to list: without one (an election under way) there is nothing
        // to wait for.
        let nodes = if rows.iter().any(|r| r.role == "leader") {
            nodes.await.ok().flatten()
        } else {
            nodes.abort();
            None
        };
        Ok::<_, anyhow::Error>((rows, nodes))
    })?;
    let mut rows = rows;
    for n in nodes.iter().flatten() {
        rows.push(MemberRow {
            pid: running_pid(dir, &n.name),
            name: n.name.clone(),
            kind: "node",
            addr: n.addr.clone(),
            role: if n.live { "live" } else { "lost" }.into(),
            term: None,
            commit: None,
        });
    }
    let leader = rows.iter().any(|r| r.role == "leader");
    if json {
        let value = serde_json::json!({
            "cluster": file.cluster,
            "dir": dir,
            "leader": leader,
            "members": rows,
        });
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        println!("cluster {} in {}", file.cluster, dir.display());
        println!(
            "{:<6} {:<12} {:<8} {:<22} {:<14} {:>6} {:>8}",
            "NAME", "KIND", "PID", "ADDRESS", "ROLE", "TERM", "COMMIT"
        );
        for r in &rows {
            let opt = |v: Option<u64>| v.map_or_else(|| "-".to_owned(), |v| v.to_string());
            let pid = r.pid.map_or_else(|| "-".to_owned(), |p| p.to_string());
            println!(
                "{:<6} {:<12} {:<8} {:<22} {:<14} {:>6} {:>8}",
                r.name,
                r.kind,
                pid,
                r.addr,
                r.role,
                opt(r.term),
                opt(r.commit)
            );
        }
        if nodes.is_none() {
            println!("(no leader answered: nodes unknown)");
        }
    }
    Ok(if leader { 0 } else { 1 })
}

/// A multi-threaded tokio runtime for the client and the daemons.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Resolves once SIGTERM or SIGINT arrives.
pub async fn terminated() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
        std::future::pending::<()>().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
