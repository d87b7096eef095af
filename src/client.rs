//! The cluster client commands: `submit`, `ps`, `logs`, `kill`, `nodes`.

use std::ffi::OsString;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use anyhow::Context;
use shoal_coordinator::client::{self, Client};
use shoal_protocol::msg::{GuestId, GuestInfo, GuestSpec, GuestState, NodeInfo};

/// Where the client finds its cluster: `--cluster`, else `$SHOAL_CLUSTER` (both through clap),
/// else `~/.config/shoal/cluster`.
pub fn cluster_dir(given: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    given.or_else(crate::cluster::default_dir).context("no cluster directory: give --cluster DIR or set SHOAL_CLUSTER")
}

fn with_client<T>(dir: &Path, f: impl AsyncFnOnce(&Client) -> anyhow::Result<T>) -> anyhow::Result<T> {
    let runtime = crate::cluster::runtime()?;
    runtime.block_on(async {
        let client = Client::open(dir)?;
        f(&client).await
    })
}

/// What `submit` is asked to run.
#[derive(Debug)]
pub struct Submit {
    pub program: Vec<OsString>,
    pub sysroot: Option<PathBuf>,
    pub name: Option<String>,
    pub wait: bool,
    pub follow: bool,
    pub restart: bool,
    pub memory: Option<u64>,
}

/// Uploads the program, submits the guest and, with `--wait` or `--follow`, streams its output
/// until it ends. Returns the exit status for the process.
pub fn submit(dir: &Path, s: Submit) -> anyhow::Result<u8> {
    let program = PathBuf::from(&s.program[0]);
    // As with `shoal run -L`: an absolute program path is looked up in the sysroot first.
    let host = s
        .sysroot
        .as_ref()
        .filter(|_| program.is_absolute())
        .map(|root| root.join(program.strip_prefix("/").unwrap_or(&program)))
        .filter(|p| p.exists())
        .unwrap_or_else(|| program.clone());
    let bytes = std::fs::read(&host).with_context(|| format!("cannot read {}", host.display()))?;
    let sysroot = match &s.sysroot {
        Some(root) => Some(
            std::fs::canonicalize(root)
                .unwrap_or_else(|_| root.clone())
                .to_str()
                .context("the sysroot path is not UTF-8")?
                .to_owned(),
        ),
        None => None,
    };
    let name = s.name.clone().unwrap_or_else(|| {
        program.file_name().map_or_else(|| "guest".to_owned(), |n| n.to_string_lossy().into_owned())
    });
    let env: Vec<Vec<u8>> = shoal_node::host_environment().iter().map(|e| e.as_bytes().to_vec()).collect();
    let args: Vec<Vec<u8>> = s.program.iter().map(|a| a.as_bytes().to_vec()).collect();
    with_client(dir, async |client| {
        let digest = client.upload(&bytes).await?;
        let spec = GuestSpec {
            name,
            program: digest,
            program_size: bytes.len() as u64,
            args,
            env,
            sysroot,
            restart: s.restart,
            memory: s.memory,
        };
        let id = client.submit(spec, client::request_id()).await?;
        if !s.wait && !s.follow {
            println!("{id}");
            return Ok(0);
        }
        eprintln!("shoal: guest {id} submitted");
        let state = stream(client, id, true).await?;
        let code = state.as_ref().map_or(1, client::exit_code);
        match &state {
            Some(GuestState::Exited(_)) => {}
            Some(other) => eprintln!("shoal: guest {id} {}", describe(other)),
            None => eprintln!("shoal: guest {id}: end unknown"),
        }
        Ok(if s.wait { u8::try_from(code & 0xff).unwrap_or(1) } else { u8::from(state.is_none()) })
    })
}

async fn stream(client: &Client, id: GuestId, follow: bool) -> anyhow::Result<Option<GuestState>> {
    let mut offsets = [0u64; 2];
    let (mut out, mut err) = (std::io::stdout(), std::io::stderr());
    let mut sink = |stream: u8, data: &[u8]| -> std::io::Result<()> {
        if stream == 2 {
            err.write_all(data)?;
            err.flush()
        } else {
            out.write_all(data)?;
            out.flush()
        }
    };
    Ok(client.output(id, &mut offsets, follow, &mut sink).await?)
}

fn describe(state: &GuestState) -> String {
    match state {
        GuestState::Exited(status) => status.to_string(),
        GuestState::Failed(why) => format!("failed: {why}"),
        other => other.word().to_owned(),
    }
}

fn parse_id(id: &str) -> anyhow::Result<GuestId> {
    id.parse().map(GuestId).map_err(|_| anyhow::anyhow!("`{id}` is not a guest id"))
}

/// Prints a guest's output; with `follow`, until it ends.
pub fn logs(dir: &Path, id: &str, follow: bool) -> anyhow::Result<u8> {
    let id = parse_id(id)?;
    with_client(dir, async |client| {
        stream(client, id, follow).await?;
        Ok(0)
    })
}

/// Kills a guest.
pub fn kill(dir: &Path, id: &str) -> anyhow::Result<u8> {
    let id = parse_id(id)?;
    with_client(dir, async |client| {
        client.kill(id).await?;
        Ok(0)
    })
}

fn age(ms: Option<u64>, until: Option<u64>) -> String {
    let Some(start) = ms else { return "-".into() };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let secs = until.unwrap_or(now).saturating_sub(start) as f64 / 1000.0;
    if secs < 100.0 { format!("{secs:.1}s") } else { format!("{:.0}m", secs / 60.0) }
}

/// A guest as `ps --json` shows it.
fn guest_json(g: &GuestInfo) -> serde_json::Value {
    let (exit_code, signal, error) = match &g.state {
        GuestState::Exited(shoal_protocol::msg::ExitStatus::Exited(c)) => (Some(*c), None, None),
        GuestState::Exited(shoal_protocol::msg::ExitStatus::Signaled(s)) => (None, Some(*s), None),
        GuestState::Failed(why) => (None, None, Some(why.clone())),
        _ => (None, None, None),
    };
    serde_json::json!({
        "id": g.id.0,
        "name": g.spec.name,
        "state": g.state.word(),
        "exit_code": exit_code,
        "signal": signal,
        "error": error,
        "node": g.node.as_ref().map(|(_, name, _)| name),
        "node_addr": g.node.as_ref().map(|(_, _, addr)| addr),
        "epoch": g.epoch.0,
        "program": g.spec.program.hex(),
        "args": g.spec.args.iter().map(|a| String::from_utf8_lossy(a).into_owned()).collect::<Vec<_>>(),
        "submitted_ms": g.submitted_ms,
        "started_ms": g.started_ms,
        "finished_ms": g.finished_ms,
    })
}

/// Lists every guest.
pub fn ps(dir: &Path, json: bool) -> anyhow::Result<u8> {
    let guests = with_client(dir, async |client| Ok(client.guests().await?))?;
    if json {
        let list: Vec<serde_json::Value> = guests.iter().map(guest_json).collect();
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(0);
    }
    println!("{:<6} {:<16} {:<9} {:<14} {:<6} {:>6} {:>8}", "ID", "NAME", "STATE", "STATUS", "NODE", "EPOCH", "TIME");
    for g in &guests {
        let status = match &g.state {
            GuestState::Exited(s) => s.to_string(),
            GuestState::Failed(why) => why.chars().take(40).collect(),
            _ => "-".into(),
        };
        let node = g.node.as_ref().map_or("-", |(_, name, _)| name.as_str());
        println!(
            "{:<6} {:<16} {:<9} {:<14} {:<6} {:>6} {:>8}",
            g.id,
            g.spec.name.chars().take(16).collect::<String>(),
            g.state.word(),
            status,
            node,
            g.epoch,
            age(g.started_ms.or(Some(g.submitted_ms)), g.finished_ms)
        );
    }
    Ok(0)
}

fn node_json(n: &NodeInfo) -> serde_json::Value {
    serde_json::json!({
        "id": n.id.0,
        "name": n.name,
        "addr": n.addr,
        "live": n.live,
        "workers": n.workers,
        "numa_nodes": n.numa_nodes,
        "guests": n.guests,
        "runnable": n.runnable,
        "incarnation": n.incarnation,
    })
}

/// Lists every node.
pub fn nodes(dir: &Path, json: bool) -> anyhow::Result<u8> {
    let nodes = with_client(dir, async |client| Ok(client.nodes().await?))?;
    if json {
        let list: Vec<serde_json::Value> = nodes.iter().map(node_json).collect();
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(0);
    }
    println!(
        "{:<4} {:<8} {:<22} {:<5} {:>7} {:>6} {:>8}",
        "ID", "NAME", "ADDRESS", "LIVE", "WORKERS", "GUESTS", "RUNNABLE"
    );
    for n in &nodes {
        println!(
            "{:<4} {:<8} {:<22} {:<5} {:>7} {:>6} {:>8}",
            n.id,
            n.name,
            n.addr,
            if n.live { "yes" } else { "no" },
            n.workers,
            n.guests,
            n.runnable
        );
    }
    Ok(0)
}
