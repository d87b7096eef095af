//! The cluster as users run it: `shoal cluster up` starts coordinators and nodes as processes
//! on loopback, the CLI submits and watches guests, and the tests break things (kill -9 the
//! leader, a node, every coordinator; hostile peers) and check what the cluster promised:
//! nothing acknowledged is lost, no guest runs twice, the state survives restarts.
//!
//! Every cluster lives in its own temporary directory and is taken down when its test ends,
//! pass or fail. Clusters run one at a time (they are several processes each, on a small
//! machine), and every wait is bounded.

#[expect(dead_code, reason = "each test binary uses part of the shared harness")]
mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

/// One cluster at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

struct Cluster {
    dir: PathBuf,
}

impl Cluster {
    fn up(name: &str, coordinators: u32, nodes: u32) -> Cluster {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("cluster-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let cluster = Cluster { dir };
        let out = cluster.shoal(
            &["cluster", "up", "--coordinators", &coordinators.to_string(), "--nodes", &nodes.to_string(), "--dir"],
            true,
        );
        assert!(out.status.success(), "cluster up failed:\n{}", cluster.explain(&out));
        cluster
    }

    /// Runs `shoal ARGS` against this cluster (`--dir DIR` appended when `dir_last`, else
    /// `SHOAL_CLUSTER` set).
    fn shoal(&self, args: &[&str], dir_last: bool) -> Output {
        let mut command = Command::new(common::shoal());
        command.args(args);
        if dir_last {
            command.arg(&self.dir);
        }
        command.env("SHOAL_CLUSTER", &self.dir).stdin(Stdio::null());
        command.output().expect("run shoal")
    }

    fn run(&self, args: &[&str]) -> Output {
        self.shoal(args, false)
    }

    fn explain(&self, out: &Output) -> String {
        let mut s = format!(
            "status {}\nstdout:\n{}\nstderr:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if let Ok(entries) = std::fs::read_dir(self.dir.join("run")) {
            for e in entries.filter_map(Result::ok).filter(|e| e.path().extension().is_some_and(|x| x == "log")) {
                let text = std::fs::read_to_string(e.path()).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(15).collect();
                s.push_str(&format!("\n--- {} (last lines)\n", e.path().display()));
                for line in tail.iter().rev() {
                    s.push_str(line);
                    s.push('\n');
                }
            }
        }
        s
    }

    fn json(&self, args: &[&str]) -> Value {
        let out = self.run(args);
        assert!(out.status.success(), "{args:?} failed:\n{}", self.explain(&out));
        serde_json::from_slice(&out.stdout).expect("JSON output")
    }

    fn status(&self) -> Value {
        let out = self.shoal(&["cluster", "status", "--json", "--dir"], true);
        serde_json::from_slice(&out.stdout).expect("status JSON")
    }

    fn leader(&self) -> Option<String> {
        let status = self.status();
        status["members"]
            .as_array()?
            .iter()
            .find(|m| m["role"] == "leader")
            .and_then(|m| m["name"].as_str().map(str::to_owned))
    }

    fn pid(&self, member: &str) -> i32 {
        std::fs::read_to_string(self.dir.join("run").join(format!("{member}.pid")))
            .expect("pid file")
            .trim()
            .parse()
            .expect("pid")
    }

    fn kill9(&self, member: &str) {
        let pid = self.pid(member);
        // SAFETY: kill(2) on a process this test started.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0, "kill -9 {member}");
        // Not our child (the cluster's `up` started it): wait until it is gone or a zombie.
        let deadline = Instant::now() + Duration::from_secs(10);
        let alive = || {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .is_ok_and(|stat| stat.rsplit_once(')').is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z')))
        };
        while alive() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn guests(&self) -> Vec<Value> {
        self.json(&["ps", "--json"]).as_array().cloned().unwrap_or_default()
    }

    /// Waits (bounded) until `done` holds for the guest list.
    fn wait_guests(&self, what: &str, limit: Duration, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let deadline = Instant::now() + limit;
        loop {
            let guests = self.guests();
            if done(&guests) {
                return guests;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}: {guests:#?}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Guest run directories on every node: guest id → the epochs it ran with, per node.
    fn runs(&self) -> BTreeMap<u64, Vec<(String, u64)>> {
        let mut runs: BTreeMap<u64, Vec<(String, u64)>> = BTreeMap::new();
        for node in std::fs::read_dir(&self.dir).unwrap().filter_map(Result::ok) {
            let name = node.file_name().into_string().unwrap();
            let Ok(dirs) = std::fs::read_dir(node.path().join("guests")) else { continue };
            for d in dirs.filter_map(Result::ok) {
                let file = d.file_name().into_string().unwrap();
                if let Some((id, epoch)) = file.split_once('.')
                    && let (Ok(id), Ok(epoch)) = (id.parse(), epoch.parse())
                {
                    runs.entry(id).or_default().push((name.clone(), epoch));
                }
            }
        }
        runs
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.shoal(&["cluster", "down", "--dir"], true);
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// A fresh cluster directory made by `shoal cluster init`, nothing started.
fn init(name: &str, coordinators: u32, nodes: u32) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("cluster-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let out = Command::new(common::shoal())
        .args(["cluster", "init", "--coordinators", &coordinators.to_string(), "--nodes", &nodes.to_string(), "--dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    std::fs::canonicalize(&dir).unwrap()
}

fn loadgen() -> Option<PathBuf> {
    let built = common::built_guests()?;
    Some(built.join("static/loadgen"))
}

fn final_state(g: &Value) -> bool {
    !matches!(g["state"].as_str(), Some("pending" | "assigned" | "running"))
}

fn lock() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[test]
fn a_cluster_runs_guests_like_shoal_run() {
    let _one = lock();
    let Some(loadgen) = loadgen() else { return };
    let loadgen = loadgen.to_str().unwrap();
    let c = Cluster::up("basic", 3, 2);
    let status = c.status();
    let members = status["members"].as_array().unwrap();
    let roles: Vec<&str> =
        members.iter().filter(|m| m["kind"] == "coordinator").map(|m| m["role"].as_str().unwrap()).collect();
    assert_eq!(roles.iter().filter(|r| **r == "leader").count(), 1, "{status:#}");
    assert_eq!(roles.iter().filter(|r| **r == "follower").count(), 2, "{status:#}");
    assert_eq!(members.iter().filter(|m| m["kind"] == "node" && m["role"] == "live").count(), 2, "{status:#}");
    assert!(members.iter().all(|m| m["pid"].as_i64().is_some()), "{status:#}");

    // Output and status as `shoal run` gives them.
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/hello-riscv64");
    let local = Command::new(common::shoal()).args(["run", example, "a", "b c"]).output().unwrap();
    let remote = c.run(&["submit", "--wait", "--name", "hello", example, "a", "b c"]);
    assert_eq!(remote.stdout, local.stdout, "{}", c.explain(&remote));
    assert_eq!(remote.status.code(), local.status.code());
    let out = c.run(&["submit", "--wait", loadgen, "exit", "3"]);
    assert_eq!(out.status.code(), Some(3), "{}", c.explain(&out));
    // The spec's memory cap reaches the node.
    let out = c.run(&["submit", "--wait", "--memory", "64M", loadgen, "alloc", "100"]);
    assert_eq!(out.status.code(), Some(1), "{}", c.explain(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("loadgen: out of memory"), "{}", c.explain(&out));

    // A guest that runs until it is killed.
    let out = c.run(&["submit", loadgen, "spin"]);
    assert!(out.status.success(), "{}", c.explain(&out));
    let spinner = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let spinner_id: u64 = spinner.parse().expect("submit prints the guest id");
    c.wait_guests("the spinner to run", Duration::from_secs(20), |gs| {
        gs.iter().any(|g| g["id"] == spinner_id && g["state"] == "running")
    });
    let out = c.run(&["kill", &spinner]);
    assert!(out.status.success(), "{}", c.explain(&out));

    // A sysroot the nodes do not have.
    let out = c.run(&["submit", "--wait", "-L", "/nonexistent/sysroot", loadgen, "exit", "0"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not exist on node"), "{}", c.explain(&out));

    let guests = c.wait_guests("every guest to end", Duration::from_secs(20), |gs| gs.iter().all(final_state));
    let by_id: BTreeMap<u64, &Value> = guests.iter().map(|g| (g["id"].as_u64().unwrap(), g)).collect();
    assert_eq!(by_id.len(), 5, "{guests:#?}");
    assert_eq!(by_id[&1]["name"], "hello");
    assert_eq!(by_id[&1]["state"], "exited");
    assert_eq!(by_id[&2]["exit_code"], 3);
    assert_eq!(by_id[&spinner_id]["state"], "killed");
    assert_eq!(by_id[&3]["exit_code"], 1);
    assert_eq!(by_id[&5]["state"], "failed");
    // Guests spread over both nodes.
    let nodes: BTreeSet<&str> = guests.iter().filter_map(|g| g["node"].as_str()).collect();
    assert_eq!(nodes.len(), 2, "{guests:#?}");

    // Logs after the fact are the same bytes.
    let logs = c.run(&["logs", "1"]);
    assert_eq!(logs.stdout, local.stdout);
    // A reader that resumes from an offset gets exactly the rest, and nothing twice.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let client = shoal_coordinator::client::Client::open(&c.dir).unwrap();
        let guest = shoal_protocol::msg::GuestId(1);
        let mut got = Vec::new();
        let mut offsets = [10, 0];
        let mut sink = |stream: u8, data: &[u8]| {
            assert_eq!(stream, 1);
            got.extend_from_slice(data);
            Ok(())
        };
        let end = client.output(guest, &mut offsets, true, &mut sink).await.unwrap();
        assert_eq!(end, Some(shoal_protocol::msg::GuestState::Exited(shoal_protocol::msg::ExitStatus::Exited(2))));
        assert_eq!(got, local.stdout[10..]);
        assert_eq!(offsets, [local.stdout.len() as u64, 0]);
        let mut more = Vec::new();
        let mut sink = |_: u8, data: &[u8]| {
            more.extend_from_slice(data);
            Ok(())
        };
        client.output(guest, &mut offsets, false, &mut sink).await.unwrap();
        assert!(more.is_empty(), "read twice: {more:?}");
    });
    // A guest that never started still has an end its node can tell, acknowledged or not.
    let logs = c.run(&["logs", "-f", "5"]);
    assert!(logs.status.success() && logs.stdout.is_empty(), "{}", c.explain(&logs));
    let logs = c.run(&["logs", "99"]);
    assert_eq!(logs.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&logs.stderr).contains("guest 99 not found"));

    let nodes = c.json(&["nodes", "--json"]);
    assert_eq!(nodes.as_array().unwrap().iter().filter(|n| n["live"] == true).count(), 2, "{nodes:#}");

    let out = c.shoal(&["cluster", "down", "--dir"], true);
    assert!(out.status.success());
    let status = c.shoal(&["cluster", "status", "--dir"], true);
    assert_eq!(status.status.code(), Some(1), "no leader once down");
}

#[test]
fn killing_the_leader_during_submits_loses_no_acknowledged_guest_and_runs_none_twice() {
    let _one = lock();
    let Some(loadgen) = loadgen() else { return };
    let loadgen = loadgen.to_str().unwrap().to_owned();
    let c = Cluster::up("failover", 3, 2);
    let old = c.leader().expect("a leader");
    let mut acked: Vec<u64> = Vec::new();
    let mut refused = 0;
    let mut killed_at: Option<Instant> = None;
    let mut failover: Option<Duration> = None;
    let started = Instant::now();
    // Bounded: 40 acknowledged submits, or 90 s.
    while acked.len() < 40 && started.elapsed() < Duration::from_secs(90) {
        if acked.len() == 10 && killed_at.is_none() {
            c.kill9(&old);
            killed_at = Some(Instant::now());
        }
        let out = c.run(&["submit", &loadgen, "exit", "0"]);
        if out.status.success() {
            acked.push(String::from_utf8_lossy(&out.stdout).trim().parse().expect("an id"));
            if let (Some(at), None) = (killed_at, failover) {
                failover = Some(at.elapsed());
            }
        } else {
            refused += 1;
        }
    }
    let failover = failover.expect("a submit was acknowledged after the leader died");
    eprintln!("failover: first acknowledged submit {failover:?} after kill -9 of the leader ({refused} refused)");
    assert_eq!(acked.len(), 40);
    let new = c.leader().expect("a new leader");
    assert_ne!(new, old);
    // Bring the old leader back: it rejoins as a follower and catches up.
    let out = c.shoal(&["cluster", "up", "--dir"], true);
    assert!(out.status.success(), "{}", c.explain(&out));

    let guests = c.wait_guests("every guest to end", Duration::from_secs(60), |gs| gs.iter().all(final_state));
    let ids: BTreeSet<u64> = guests.iter().map(|g| g["id"].as_u64().unwrap()).collect();
    let acked_set: BTreeSet<u64> = acked.iter().copied().collect();
    assert_eq!(acked_set.len(), acked.len(), "an id was acknowledged twice: {acked:?}");
    assert!(acked_set.is_subset(&ids), "acknowledged guests missing: {:?}", acked_set.difference(&ids));
    for g in &guests {
        assert_eq!(g["state"], "exited", "{g:#}");
        assert_eq!(g["exit_code"], 0, "{g:#}");
        assert_eq!(g["epoch"], 1, "placed once: {g:#}");
    }
    // Each guest ran exactly once, on one node.
    let runs = c.runs();
    for id in &ids {
        assert_eq!(runs.get(id).map(Vec::len), Some(1), "guest {id} runs: {:?}", runs.get(id));
    }
}

#[test]
fn a_lost_node_loses_its_guests_and_restartable_ones_run_elsewhere() {
    let _one = lock();
    let Some(loadgen) = loadgen() else { return };
    let loadgen = loadgen.to_str().unwrap();
    let c = Cluster::up("node-loss", 1, 2);
    for restart in [false, false, true, true] {
        let mut args = vec!["submit"];
        if restart {
            args.push("--restart");
        }
        args.extend([loadgen, "sleep", "120000"]);
        let out = c.run(&args);
        assert!(out.status.success(), "{}", c.explain(&out));
    }
    let guests = c.wait_guests("four running guests", Duration::from_secs(20), |gs| {
        gs.len() == 4 && gs.iter().all(|g| g["state"] == "running")
    });
    let on_n1: Vec<u64> = guests.iter().filter(|g| g["node"] == "n1").map(|g| g["id"].as_u64().unwrap()).collect();
    assert_eq!(on_n1.len(), 2, "placement spreads: {guests:#?}");
    let killed = Instant::now();
    c.kill9("n1");
    // The coordinators' node timeout is 10 s.
    let guests = c.wait_guests("n1's guests to be lost or moved", Duration::from_secs(30), |gs| {
        gs.iter()
            .filter(|g| on_n1.contains(&g["id"].as_u64().unwrap()))
            .all(|g| g["node"] == "n2" || g["state"] == "lost")
    });
    eprintln!("node loss noticed {:?} after kill -9", killed.elapsed());
    for g in guests.iter().filter(|g| on_n1.contains(&g["id"].as_u64().unwrap())) {
        // Guests 3 and 4 were submitted with --restart.
        let restart = g["id"].as_u64().unwrap() > 2;
        if restart {
            assert_eq!((g["node"].as_str(), g["epoch"].as_u64()), (Some("n2"), Some(2)), "{g:#}");
        } else {
            assert_eq!(g["state"], "lost", "{g:#}");
        }
    }
    let moved = c.wait_guests("the moved guest to run on n2", Duration::from_secs(20), |gs| {
        gs.iter().filter(|g| g["epoch"] == 2).all(|g| g["state"] == "running")
    });
    assert!(moved.iter().any(|g| g["epoch"] == 2), "{moved:#?}");
    let nodes = c.json(&["nodes", "--json"]);
    let n1 = nodes.as_array().unwrap().iter().find(|n| n["name"] == "n1").unwrap();
    assert_eq!(n1["live"], false);
    for g in c.guests().iter().filter(|g| !final_state(g)) {
        let out = c.run(&["kill", &g["id"].to_string()]);
        assert!(out.status.success(), "{}", c.explain(&out));
    }
}

#[test]
fn coordinators_restarted_from_their_data_keep_the_state() {
    let _one = lock();
    let Some(loadgen) = loadgen() else { return };
    let loadgen = loadgen.to_str().unwrap();
    let c = Cluster::up("restart", 3, 1);
    for code in 0..6 {
        let out = c.run(&["submit", loadgen, "exit", &code.to_string()]);
        assert!(out.status.success(), "{}", c.explain(&out));
    }
    let before =
        c.wait_guests("every guest to end", Duration::from_secs(30), |gs| gs.len() == 6 && gs.iter().all(final_state));
    for m in ["c1", "c2", "c3"] {
        c.kill9(m);
    }
    let out = c.shoal(&["cluster", "up", "--dir"], true);
    assert!(out.status.success(), "{}", c.explain(&out));
    let after = c.guests();
    assert_eq!(after, before, "the state after a restart of every coordinator");
    // And the cluster goes on: ids continue where they stopped.
    let out = c.run(&["submit", "--wait", loadgen, "exit", "9"]);
    assert_eq!(out.status.code(), Some(9), "{}", c.explain(&out));
    let ids: Vec<u64> = c.guests().iter().map(|g| g["id"].as_u64().unwrap()).collect();
    assert_eq!(ids, (1..=7).collect::<Vec<_>>());
}

#[test]
fn strangers_and_hostile_frames_are_refused_and_the_cluster_keeps_serving() {
    use shoal_protocol::frame;
    use shoal_protocol::identity::Credentials;
    use shoal_protocol::msg::{Registration, Request, Role};
    use shoal_protocol::rpc;

    let _one = lock();
    let c = Cluster::up("hostile", 1, 1);
    let cluster_file: Value = {
        let text = std::fs::read_to_string(c.dir.join("cluster.toml")).unwrap();
        let table: toml::Table = toml::from_str(&text).unwrap();
        serde_json::to_value(table).unwrap()
    };
    let coordinator: std::net::SocketAddr = cluster_file["coordinators"][0].as_str().unwrap().parse().unwrap();
    let cluster = shoal_protocol::ClusterId::parse(cluster_file["cluster"].as_str().unwrap()).unwrap();

    // A client of another cluster: its certificate is refused at the TLS handshake.
    let stranger = init("stranger", 1, 0);
    let text = std::fs::read_to_string(c.dir.join("cluster.toml")).unwrap();
    let foreign_id = std::fs::read_to_string(stranger.join("cluster.toml")).unwrap();
    let foreign_id = foreign_id.lines().find(|l| l.starts_with("cluster")).unwrap().to_owned();
    let ours = text.lines().find(|l| l.starts_with("cluster")).unwrap();
    std::fs::write(stranger.join("cluster.toml"), text.replace(ours, &foreign_id)).unwrap();
    let out = Command::new(common::shoal()).args(["ps", "--cluster"]).arg(&stranger).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "a stranger is refused");
    let _ = std::fs::remove_dir_all(&stranger);

    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let creds = Credentials::load(&c.dir.join("credentials"), "client").unwrap();
        let endpoint = rpc::client_endpoint(&creds).unwrap();
        // A client cannot pose as a node: its certificate says client.
        let err = rpc::connect(&endpoint, coordinator, cluster, Role::Node).await.unwrap_err();
        assert!(err.to_string().contains("certificate names a client"), "{err}");
        // Nor make a node's requests as itself.
        let conn = rpc::connect(&endpoint, coordinator, cluster, Role::Client).await.unwrap();
        let reg = Request::Register(Registration { addr: "127.0.0.1:1".into(), workers: 1, numa_nodes: 1 });
        let err = rpc::call(&conn, &reg, frame::MAX_FRAME).await.unwrap_err();
        assert!(err.to_string().contains("may not make this request"), "{err}");
        // Hostile frames close the connection that sent them.
        for hostile in [&u32::MAX.to_le_bytes()[..], &[5, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff][..]] {
            let conn = rpc::connect(&endpoint, coordinator, cluster, Role::Client).await.unwrap();
            let (mut send, _recv) = conn.open_bi().await.unwrap();
            send.write_all(hostile).await.unwrap();
            let _ = send.finish();
            let closed = tokio::time::timeout(Duration::from_secs(10), conn.closed()).await;
            assert!(closed.is_ok(), "the connection stays open after a hostile frame");
        }
    });

    // And the cluster still serves.
    let Some(loadgen) = loadgen() else { return };
    let out = c.run(&["submit", "--wait", loadgen.to_str().unwrap(), "exit", "4"]);
    assert_eq!(out.status.code(), Some(4), "{}", c.explain(&out));
}

/// A network namespace with a veth link to this one, removed on drop.
struct Netns {
    name: String,
    host_if: String,
    host_ip: String,
    ns_ip: String,
}

impl Netns {
    /// Creates the namespace and its link, or says why it cannot.
    fn create() -> Result<Netns, String> {
        let id = std::process::id() % 200 + 20;
        let ns = Netns {
            name: format!("shoal-test-{}", std::process::id()),
            host_if: format!("shh{}", std::process::id()),
            host_ip: format!("10.203.{id}.1"),
            ns_ip: format!("10.203.{id}.2"),
        };
        let ns_if = format!("shn{}", std::process::id());
        let steps: Vec<Vec<String>> = vec![
            vec!["netns".into(), "add".into(), ns.name.clone()],
            vec![
                "link".into(),
                "add".into(),
                ns.host_if.clone(),
                "type".into(),
                "veth".into(),
                "peer".into(),
                "name".into(),
                ns_if.clone(),
            ],
            vec!["link".into(), "set".into(), ns_if.clone(), "netns".into(), ns.name.clone()],
            vec!["addr".into(), "add".into(), format!("{}/24", ns.host_ip), "dev".into(), ns.host_if.clone()],
            vec!["link".into(), "set".into(), ns.host_if.clone(), "up".into()],
            vec![
                "-n".into(),
                ns.name.clone(),
                "addr".into(),
                "add".into(),
                format!("{}/24", ns.ns_ip),
                "dev".into(),
                ns_if.clone(),
            ],
            vec!["-n".into(), ns.name.clone(), "link".into(), "set".into(), ns_if, "up".into()],
            vec!["-n".into(), ns.name.clone(), "link".into(), "set".into(), "lo".into(), "up".into()],
        ];
        for step in steps {
            let out = Command::new("ip").args(&step).output().map_err(|e| format!("cannot run ip: {e}"))?;
            if !out.status.success() {
                return Err(format!("ip {}: {}", step.join(" "), String::from_utf8_lossy(&out.stderr).trim()));
            }
        }
        Ok(ns)
    }

    fn link(&self, up: bool) {
        let out =
            Command::new("ip").args(["link", "set", &self.host_if, if up { "up" } else { "down" }]).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["link", "del", &self.host_if]).output();
        let _ = Command::new("ip").args(["netns", "del", &self.name]).output();
    }
}

/// Rewrites `key = "..."` lines whose value starts with `from` in a TOML file.
fn readdress(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    std::fs::write(path, text.replace(&format!("\"{from}"), &format!("\"{to}"))).unwrap();
}

#[test]
fn a_node_cut_off_by_a_partition_stops_its_guests_before_they_run_elsewhere() {
    let _one = lock();
    let Some(loadgen) = loadgen() else { return };
    let loadgen = loadgen.to_str().unwrap();
    let ns = match Netns::create() {
        Ok(ns) => ns,
        Err(why) => {
            eprintln!("SKIPPED: the partition test needs network namespaces (root and `ip`): {why}");
            return;
        }
    };
    // A cluster whose coordinator and first node are on this side of the link and whose second
    // node is in the namespace.
    let c = Cluster { dir: init("partition", 1, 2) };
    for file in ["c1.toml", "n1.toml", "n2.toml", "cluster.toml"] {
        readdress(&c.dir.join(file), "127.0.0.1", &ns.host_ip);
    }
    readdress(&c.dir.join("n2.toml"), &format!("{}:", ns.host_ip), "NS:");
    // n2 listens (and serves metrics) on the namespace's side; its coordinators stay on this side.
    let n2 = std::fs::read_to_string(c.dir.join("n2.toml")).unwrap();
    let n2 = n2
        .replace("listen = \"NS:", &format!("listen = \"{}:", ns.ns_ip))
        .replace("metrics = \"NS:", &format!("metrics = \"{}:", ns.ns_ip))
        .replace("\"NS:", &format!("\"{}:", ns.host_ip));
    std::fs::write(c.dir.join("n2.toml"), n2).unwrap();
    let start = |name: &str, prefix: &[&str]| {
        let log = std::fs::File::create(c.dir.join("run").join(format!("{name}.log"))).unwrap();
        let kind = if name.starts_with('c') { "coordinator" } else { "node" };
        let shoal = common::shoal();
        let mut command = Command::new(prefix.first().copied().unwrap_or(shoal.to_str().unwrap()));
        if !prefix.is_empty() {
            command.args(&prefix[1..]).arg(&shoal);
        }
        command.args([kind, "--config"]).arg(c.dir.join(format!("{name}.toml")));
        command.env("RUST_LOG", "info").stdin(Stdio::null()).stdout(log.try_clone().unwrap()).stderr(log);
        let child = command.spawn().unwrap();
        std::fs::write(c.dir.join("run").join(format!("{name}.pid")), format!("{}\n", child.id())).unwrap();
        child
    };
    let _children = [start("c1", &[]), start("n1", &[]), start("n2", &["ip", "netns", "exec", &ns.name])];
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let nodes = c.run(&["nodes", "--json"]);
        let live = serde_json::from_slice::<Value>(&nodes.stdout)
            .ok()
            .and_then(|v| v.as_array().map(|a| a.iter().filter(|n| n["live"] == true).count()));
        if live == Some(2) {
            break;
        }
        assert!(Instant::now() < deadline, "the nodes did not register: {}", c.explain(&nodes));
        std::thread::sleep(Duration::from_millis(200));
    }

    for _ in 0..2 {
        let out = c.run(&["submit", "--restart", loadgen, "sleep", "600000"]);
        assert!(out.status.success(), "{}", c.explain(&out));
    }
    let guests = c.wait_guests("two running guests", Duration::from_secs(20), |gs| {
        gs.len() == 2 && gs.iter().all(|g| g["state"] == "running")
    });
    let cut_off = guests.iter().find(|g| g["node"] == "n2").expect("a guest on n2")["id"].as_u64().unwrap();

    ns.link(false);
    let moved = c.wait_guests("the cut-off guest to run elsewhere", Duration::from_secs(40), |gs| {
        gs.iter().any(|g| g["id"] == cut_off && g["node"] == "n1" && g["state"] == "running")
    });
    let moved = moved.iter().find(|g| g["id"] == cut_off).unwrap().clone();
    assert_eq!(moved["epoch"], 2, "{moved:#}");
    // n2 stopped its copy (its lease ran out) before the cluster placed it again.
    let status = c.dir.join("n2/guests").join(format!("{cut_off}.1/status"));
    let stopped = std::fs::metadata(&status).and_then(|m| m.modified()).unwrap_or_else(|e| {
        let log = std::fs::read_to_string(c.dir.join("run/n2.log")).unwrap_or_default();
        panic!("n2 recorded no end of guest {cut_off} ({e}); its log:\n{log}")
    });
    let stopped_ms = u64::try_from(stopped.duration_since(std::time::UNIX_EPOCH).unwrap().as_millis()).unwrap();
    let placed_ms = moved["started_ms"].as_u64().unwrap();
    assert!(stopped_ms < placed_ms, "n2 stopped guest {cut_off} at {stopped_ms}, after it ran again at {placed_ms}");

    // Heal: n2 learns it was lost, registers again, and runs nothing it was not given.
    ns.link(true);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let nodes = c.json(&["nodes", "--json"]);
        let n2 = nodes.as_array().unwrap().iter().find(|n| n["name"] == "n2").unwrap().clone();
        // Registered again at least once (a loaded host may lose a slow heartbeat again).
        if n2["live"] == true && n2["incarnation"].as_u64().is_some_and(|i| i >= 2) {
            break;
        }
        assert!(Instant::now() < deadline, "n2 did not come back: {nodes:#}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let runs = c.runs();
    let mut cut_off_runs = runs[&cut_off].clone();
    cut_off_runs.sort();
    assert_eq!(cut_off_runs, [("n1".to_owned(), 2), ("n2".to_owned(), 1)], "each epoch ran once, on one node");
    for g in c.guests() {
        let out = c.run(&["kill", &g["id"].to_string()]);
        assert!(out.status.success(), "{}", c.explain(&out));
    }
}
