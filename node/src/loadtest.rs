//! `shoal loadtest --local`: a mix of guest workloads on an in-process node, with the figures a
//! scheduler is judged by (throughput, start-to-exit latency, the longest runnable wait, steals,
//! CPU use).
//!
//! The spec is TOML (see [`Spec`]). Each workload runs as a closed loop (at most `concurrency`
//! guests alive, the next started when one exits) or an open loop (`rate` guests started per
//! second, still never more than `concurrency` alive); the workloads run at the same time. Every
//! guest ends with a status (its exit code, the signal that killed it, a timeout, or why it could
//! not start), and every status is counted.

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use shoal_engine::interp::Engine;
use shoal_engine::linux::{ExitStatus, Kernel};

use crate::Node;

/// Most guests alive at once: each reserves a guest address space of 2^38 bytes (plus guards)
/// of host virtual memory, and x86-64 Linux gives a process 2^47.
pub const MAX_ALIVE: u64 = 384;

/// Guests alive at once in a closed-loop workload that does not say.
const DEFAULT_CONCURRENCY: u64 = 64;

/// How long a guest killed for its timeout may take to go before it is given up on.
const KILL_GRACE: Duration = Duration::from_secs(5);

/// A load test: node settings and the workloads to run together.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    /// Worker threads (default: one per CPU this process may use).
    pub workers: Option<usize>,
    /// Execution engine of every guest: "auto" (default), "interp" or "jit".
    pub engine: Option<EngineName>,
    /// Default per-guest time limit, in seconds.
    pub timeout_s: Option<f64>,
    /// Default per-guest memory limit, in MiB.
    pub memory_mb: Option<u64>,
    /// The workloads.
    #[serde(rename = "workload")]
    pub workloads: Vec<Workload>,
}

/// An execution engine, as the spec names it.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum EngineName {
    Auto,
    Interp,
    Jit,
}

/// Guests of one program.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Workload {
    /// Shown in the summary (default: the program's file name).
    pub name: Option<String>,
    /// A riscv64 Linux ELF on this host.
    pub program: PathBuf,
    /// Arguments after the program name.
    #[serde(default)]
    pub args: Vec<String>,
    /// Like `shoal run -L`.
    pub sysroot: Option<PathBuf>,
    /// Guests to run.
    pub count: u64,
    /// Most guests of this workload alive at once (closed loop).
    pub concurrency: Option<u64>,
    /// Guests started per second (open loop).
    pub rate: Option<f64>,
    /// Scheduling weight of its guests.
    #[serde(default = "one")]
    pub weight: u32,
    /// Per-guest time limit in seconds; a guest still running then is killed and counted as
    /// timed out.
    pub timeout_s: Option<f64>,
    /// Per-guest memory limit in MiB: what all of a guest's processes may map together (see
    /// `shoal run --memory`). A guest that fails after an allocation was refused for it is
    /// counted as `memory limit (...)`.
    pub memory_mb: Option<u64>,
}

fn one() -> u32 {
    1
}

/// A spec that cannot be run: where and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{}{message}", line.map(|l| format!("{l}: ")).unwrap_or_default(), field.as_ref().map(|f| format!("{f}: ")).unwrap_or_default())]
pub struct SpecError {
    /// 1-based line of the spec the error is on.
    pub line: Option<usize>,
    /// The field, as `workload[N].name` or `name`.
    pub field: Option<String>,
    pub message: String,
}

impl Spec {
    /// Parses and checks a spec; relative program and sysroot paths are taken from `base` (the
    /// spec's directory).
    pub fn parse(text: &str, base: &Path) -> Result<Spec, SpecError> {
        let mut spec: Spec = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| line_of(text, s.start));
            let message = e.message().trim().to_owned();
            // A bad value's span points at the value; the key sits before it on that line.
            let field = line
                .and_then(|l| text.lines().nth(l - 1))
                .and_then(|l| l.split_once('='))
                .map(|(k, _)| k.trim().to_owned())
                .filter(|k| !k.is_empty() && !k.starts_with('['))
                .map(|k| qualify(text, line.unwrap_or(1), &k));
            SpecError { line, field, message }
        })?;
        spec.check(text)?;
        for w in &mut spec.workloads {
            w.program = base.join(&w.program);
            w.sysroot = w.sysroot.as_ref().map(|s| base.join(s));
        }
        Ok(spec)
    }

    fn check(&self, text: &str) -> Result<(), SpecError> {
        let sections = workload_lines(text);
        let at = |i: usize, key: &str, message: String| {
            let line = sections.get(i).and_then(|&(from, to)| {
                text.lines()
                    .enumerate()
                    .take(to)
                    .skip(from)
                    .find(|(_, l)| l.trim_start().strip_prefix(key).is_some_and(|r| r.trim_start().starts_with('=')))
                    .map(|(n, _)| n + 1)
                    .or(Some(from + 1))
            });
            SpecError { line, field: Some(format!("workload[{i}].{key}")), message }
        };
        if self.workloads.is_empty() {
            return Err(SpecError {
                line: None,
                field: Some("workload".into()),
                message: "no [[workload]] given".into(),
            });
        }
        let top = |key: &str, message: &str| SpecError {
            line: key_line(text, key),
            field: Some(key.to_owned()),
            message: message.to_owned(),
        };
        if self.workers == Some(0) {
            return Err(top("workers", "must be at least 1"));
        }
        if let Some(t) = self.timeout_s
            && !(t > 0.0 && t.is_finite())
        {
            return Err(top("timeout_s", "must be a positive number of seconds"));
        }
        if self.memory_mb == Some(0) {
            return Err(top("memory_mb", "must be at least 1"));
        }
        let mut alive = 0;
        for (i, w) in self.workloads.iter().enumerate() {
            if w.memory_mb == Some(0) {
                return Err(at(i, "memory_mb", "must be at least 1".into()));
            }
            if w.count == 0 {
                return Err(at(i, "count", "must be at least 1".into()));
            }
            if w.concurrency == Some(0) {
                return Err(at(i, "concurrency", "must be at least 1".into()));
            }
            if w.concurrency.is_some_and(|c| c > MAX_ALIVE) {
                return Err(at(
                    i,
                    "concurrency",
                    format!("at most {MAX_ALIVE} guests fit alive at once (each reserves 256 GiB of address space)"),
                ));
            }
            if let Some(r) = w.rate
                && !(r > 0.0 && r.is_finite())
            {
                return Err(at(i, "rate", "must be a positive number of guests per second".into()));
            }
            if let Some(t) = w.timeout_s
                && !(t > 0.0 && t.is_finite())
            {
                return Err(at(i, "timeout_s", "must be a positive number of seconds".into()));
            }
            if w.weight == 0 {
                return Err(at(i, "weight", "must be at least 1".into()));
            }
            if w.program.as_os_str().is_empty() {
                return Err(at(i, "program", "is empty".into()));
            }
            alive += w.concurrency();
        }
        if alive > MAX_ALIVE {
            return Err(SpecError {
                line: None,
                field: Some("concurrency".into()),
                message: format!(
                    "the workloads keep up to {alive} guests alive at once; at most {MAX_ALIVE} fit (each reserves 256 GiB of address space)"
                ),
            });
        }
        Ok(())
    }

    /// The engine the spec asks for.
    pub fn engine(&self) -> Engine {
        match self.engine {
            None | Some(EngineName::Auto) => Engine::Auto,
            Some(EngineName::Interp) => Engine::Interp,
            Some(EngineName::Jit) => Engine::Jit,
        }
    }
}

impl Workload {
    /// The name the summary uses.
    pub fn label(&self) -> String {
        self.name.clone().unwrap_or_else(|| {
            self.program
                .file_name()
                .map_or_else(|| self.program.display().to_string(), |n| n.to_string_lossy().into_owned())
        })
    }

    /// Most guests alive at once.
    fn concurrency(&self) -> u64 {
        let default = if self.rate.is_some() { MAX_ALIVE } else { DEFAULT_CONCURRENCY };
        self.concurrency.unwrap_or(default).min(self.count).min(MAX_ALIVE)
    }
}

/// The 1-based line of byte offset `at`.
fn line_of(text: &str, at: usize) -> usize {
    text[..at.min(text.len())].bytes().filter(|&b| b == b'\n').count() + 1
}

/// The 0-based line ranges of each `[[workload]]` table.
fn workload_lines(text: &str) -> Vec<(usize, usize)> {
    let lines: Vec<&str> = text.lines().collect();
    let starts: Vec<usize> =
        lines.iter().enumerate().filter(|(_, l)| l.trim() == "[[workload]]").map(|(n, _)| n).collect();
    starts
        .iter()
        .enumerate()
        .map(|(i, &s)| {
            let next_table =
                lines.iter().enumerate().skip(s + 1).find(|(_, l)| l.trim_start().starts_with('[')).map(|(n, _)| n);
            (s, starts.get(i + 1).copied().or(next_table).unwrap_or(lines.len()))
        })
        .collect()
}

/// Names a key on line `line` with its workload, if it is inside one.
fn qualify(text: &str, line: usize, key: &str) -> String {
    match workload_lines(text).iter().position(|&(from, to)| line > from && line <= to) {
        Some(i) => format!("workload[{i}].{key}"),
        None => key.to_owned(),
    }
}

/// The line of a top-level `key = ...`.
fn key_line(text: &str, key: &str) -> Option<usize> {
    let first_table = workload_lines(text).first().map_or(usize::MAX, |&(s, _)| s);
    text.lines()
        .enumerate()
        .take(first_table)
        .find(|(_, l)| l.trim_start().strip_prefix(key).is_some_and(|r| r.trim_start().starts_with('=')))
        .map(|(n, _)| n + 1)
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct Latency {
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
}

impl Latency {
    fn of(samples: &mut [Duration]) -> Latency {
        if samples.is_empty() {
            return Latency::default();
        }
        samples.sort_unstable();
        // The nearest-rank percentile: the smallest sample with at least `pct`% at or below it.
        let at = |pct: usize| {
            let rank = (samples.len() * pct).div_ceil(100).clamp(1, samples.len());
            samples[rank - 1].as_secs_f64() * 1000.0
        };
        Latency { p50: at(50), p95: at(95), p99: at(99), max: at(100) }
    }
}

/// What one workload did.
#[derive(Debug, Clone, Serialize)]
pub struct WorkloadSummary {
    pub name: String,
    pub count: u64,
    /// Guests that exited with status 0.
    pub completed: u64,
    /// Guests that did not: any other exit code, a signal, a timeout, a failed start.
    pub failed: u64,
    /// How many guests ended each way: `exit N`, `signal N`, `timeout`, `start error: ...`.
    pub statuses: BTreeMap<String, u64>,
    pub latency_ms: Latency,
}

/// What a load test did.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub completed: u64,
    pub failed: u64,
    pub duration_s: f64,
    /// Guests finished (completed or failed) per second of the run.
    pub guests_per_sec: f64,
    /// Start-to-exit time of every guest.
    pub latency_ms: Latency,
    /// The longest a runnable vCPU waited for a worker.
    pub max_runnable_wait_ms: f64,
    /// vCPUs a worker took from another worker's queue.
    pub steals: u64,
    /// Host CPU time used over the time the workers had (1.0: every worker busy throughout).
    pub cpu_utilization: f64,
    pub workers: usize,
    /// Most guests alive at the same time.
    pub peak_alive: u64,
    pub workloads: Vec<WorkloadSummary>,
}

/// How far a load test is.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    pub finished: u64,
    pub total: u64,
    pub alive: u64,
    pub failed: u64,
}

struct Live {
    kernel: Arc<Kernel>,
    workload: usize,
    started: Instant,
    deadline: Option<Instant>,
    /// Killed for its timeout at this time.
    killed: Option<Instant>,
}

struct Finished {
    id: u64,
    status: ExitStatus,
    at: Instant,
}

#[derive(Default)]
struct Tally {
    started: u64,
    alive: u64,
    completed: u64,
    failed: u64,
    statuses: BTreeMap<String, u64>,
    latencies: Vec<Duration>,
    /// When the next guest may start (open loop).
    next_start: Option<Instant>,
}

impl Tally {
    fn record(&mut self, status: String, ok: bool, latency: Option<Duration>) {
        if ok {
            self.completed += 1;
        } else {
            self.failed += 1;
        }
        *self.statuses.entry(status).or_default() += 1;
        self.latencies.extend(latency);
    }
}

/// Runs `spec` on `node` and returns what happened. `progress` is called as guests finish (and
/// at least every 100 ms).
pub fn run(spec: &Spec, node: &Node, progress: &mut dyn FnMut(Progress)) -> Summary {
    let env = crate::host_environment();
    let total: u64 = spec.workloads.iter().map(|w| w.count).sum();
    let (tx, rx) = mpsc::channel::<Finished>();
    let mut tallies: Vec<Tally> = spec.workloads.iter().map(|_| Tally::default()).collect();
    let mut live: HashMap<u64, Live> = HashMap::new();
    let mut next_id = 0u64;
    let mut peak_alive = 0u64;
    let cpu_before = cpu_time();
    let started = Instant::now();
    for (t, w) in tallies.iter_mut().zip(&spec.workloads) {
        t.next_start = w.rate.map(|_| started);
    }
    loop {
        let now = Instant::now();
        // Start what may start now.
        for (i, w) in spec.workloads.iter().enumerate() {
            let t = &mut tallies[i];
            while t.started < w.count
                && t.alive < w.concurrency()
                && (live.len() as u64) < MAX_ALIVE
                && t.next_start.is_none_or(|at| at <= now)
            {
                t.started += 1;
                if let (Some(rate), Some(at)) = (w.rate, t.next_start) {
                    t.next_start = Some(at + Duration::from_secs_f64(1.0 / rate));
                }
                let id = next_id;
                next_id += 1;
                match start(spec, w, node, &env, id, &tx) {
                    Ok(kernel) => {
                        t.alive += 1;
                        let timeout = w.timeout_s.or(spec.timeout_s).map(Duration::from_secs_f64);
                        let started = Instant::now();
                        live.insert(
                            id,
                            Live { kernel, workload: i, started, deadline: timeout.map(|d| started + d), killed: None },
                        );
                    }
                    Err(e) => t.record(format!("start error: {e}"), false, None),
                }
            }
        }
        peak_alive = peak_alive.max(live.len() as u64);
        metrics::gauge!("shoal_guests_alive").set(live.len() as f64);
        let finished: u64 = tallies.iter().map(|t| t.completed + t.failed).sum();
        progress(Progress {
            finished,
            total,
            alive: live.len() as u64,
            failed: tallies.iter().map(|t| t.failed).sum(),
        });
        if finished == total {
            break;
        }
        // Sleep until a guest exits, the next open-loop start or the next timeout.
        let wake = tallies
            .iter()
            .zip(&spec.workloads)
            .filter(|(t, w)| t.started < w.count)
            .filter_map(|(t, _)| t.next_start)
            .chain(live.values().filter_map(|l| if l.killed.is_some() { None } else { l.deadline }))
            .min()
            .unwrap_or(now + Duration::from_millis(100))
            .min(now + Duration::from_millis(100));
        match rx.recv_timeout(wake.saturating_duration_since(Instant::now())) {
            Ok(done) => {
                let mut next = Some(done);
                while let Some(done) = next {
                    if let Some(l) = live.remove(&done.id) {
                        let t = &mut tallies[l.workload];
                        t.alive -= 1;
                        let latency = done.at.saturating_duration_since(l.started);
                        let (mut status, ok) = match (l.killed, done.status) {
                            (Some(_), _) => ("timeout".to_owned(), false),
                            (None, ExitStatus::Exited(0)) => ("exit 0".to_owned(), true),
                            (None, ExitStatus::Exited(c)) => (format!("exit {c}"), false),
                            (None, ExitStatus::Signaled { signal, .. }) => (format!("signal {signal}"), false),
                        };
                        if !ok && l.kernel.memory_limit().is_some_and(|m| m.was_reached()) {
                            status = format!("memory limit ({status})");
                        }
                        t.record(status, ok, Some(latency));
                    }
                    next = rx.try_recv().ok();
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => unreachable!("the sender lives in this function"),
        }
        // Timeouts: kill, and give up on guests that will not die.
        let now = Instant::now();
        let mut abandoned = Vec::new();
        for (&id, l) in &mut live {
            match l.killed {
                None if l.deadline.is_some_and(|d| d <= now) => {
                    l.killed = Some(now);
                    l.kernel.kill_all();
                }
                Some(at) if now.duration_since(at) > KILL_GRACE => abandoned.push(id),
                _ => {}
            }
        }
        for id in abandoned {
            if let Some(l) = live.remove(&id) {
                tracing::warn!("guest {id} did not exit within {KILL_GRACE:?} of its kill; giving up on it");
                let t = &mut tallies[l.workload];
                t.alive -= 1;
                t.record("timeout (did not die)".into(), false, None);
            }
        }
    }
    let duration = started.elapsed();
    let cpu = cpu_time().saturating_sub(cpu_before);
    let stats = node.scheduler().stats();
    let workers = node.scheduler().workers();
    let mut all: Vec<Duration> = tallies.iter().flat_map(|t| t.latencies.iter().copied()).collect();
    let workloads = tallies
        .iter_mut()
        .zip(&spec.workloads)
        .map(|(t, w)| WorkloadSummary {
            name: w.label(),
            count: w.count,
            completed: t.completed,
            failed: t.failed,
            statuses: std::mem::take(&mut t.statuses),
            latency_ms: Latency::of(&mut t.latencies),
        })
        .collect::<Vec<_>>();
    let secs = duration.as_secs_f64().max(1e-9);
    Summary {
        completed: workloads.iter().map(|w| w.completed).sum(),
        failed: workloads.iter().map(|w| w.failed).sum(),
        duration_s: secs,
        guests_per_sec: total as f64 / secs,
        latency_ms: Latency::of(&mut all),
        max_runnable_wait_ms: stats.max_wait.as_secs_f64() * 1000.0,
        steals: stats.steals,
        cpu_utilization: cpu.as_secs_f64() / (secs * workers as f64),
        workers,
        peak_alive,
        workloads,
    }
}

/// Starts one guest of `w`; its exit is sent to `tx` as guest `id`. (A program too large for
/// its memory limit fails here, and the error says so.)
fn start(
    spec: &Spec,
    w: &Workload,
    node: &Node,
    env: &[OsString],
    id: u64,
    tx: &mpsc::Sender<Finished>,
) -> Result<Arc<Kernel>, String> {
    let config = shoal_engine::linux::Config {
        sysroot: w.sysroot.clone(),
        root: None,
        strace: false,
        engine: spec.engine(),
        jit_memory: None,
        weight: w.weight,
        stdio: shoal_engine::linux::Stdio::Null,
        memory_limit: w.memory_mb.or(spec.memory_mb).map(|mb| mb.saturating_mul(1 << 20)),
        numa_node: node.scheduler().place(),
    };
    let kernel = Kernel::new(config, node.runtime()).map_err(|e| error_chain(&e))?;
    let program = w.program.to_str().ok_or("the program path is not valid UTF-8")?;
    let mut argv: Vec<OsString> = vec![program.into()];
    argv.extend(w.args.iter().map(OsString::from));
    let tx = tx.clone();
    kernel
        .start(program, &argv, env, move |status| {
            let _ = tx.send(Finished { id, status, at: Instant::now() });
        })
        .map_err(|e| error_chain(&e))?;
    Ok(kernel)
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        source = inner.source();
    }
    s
}

/// User plus system CPU time of this process so far.
fn cpu_time() -> Duration {
    // SAFETY: getrusage fills the zeroed struct it is given.
    let usage = unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut u);
        u
    };
    let tv = |t: libc::timeval| {
        Duration::new(u64::try_from(t.tv_sec).unwrap_or(0), u32::try_from(t.tv_usec).unwrap_or(0) * 1000)
    };
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Spec, SpecError> {
        Spec::parse(text, Path::new("/specs"))
    }

    #[test]
    fn a_full_spec_parses_with_relative_paths_resolved() {
        let spec = parse(
            r#"
workers = 2
timeout_s = 30
engine = "interp"

[[workload]]
name = "hash"
program = "bin/hash"
args = ["1000"]
sysroot = "/sysroot"
count = 1000
concurrency = 200
weight = 2

[[workload]]
program = "/bin/echo"
count = 10
rate = 500
"#,
        )
        .expect("valid spec");
        assert_eq!(spec.workers, Some(2));
        assert_eq!(spec.engine(), Engine::Interp);
        assert_eq!(spec.workloads.len(), 2);
        assert_eq!(spec.workloads[0].program, Path::new("/specs/bin/hash"));
        assert_eq!(spec.workloads[0].concurrency(), 200);
        assert_eq!(spec.workloads[1].label(), "echo");
        assert_eq!(spec.workloads[1].weight, 1);
        assert_eq!(spec.workloads[1].concurrency(), 10, "bounded by the count");
    }

    #[test]
    fn errors_name_the_line_and_field() {
        let cases: &[(&str, Option<usize>, &str, &str)] = &[
            ("[[workload]]\nprogram = \"p\"\ncount = \"ten\"\n", Some(3), "workload[0].count", "invalid type"),
            ("[[workload]]\nprogram = \"p\"\ncount = 1\ncuont = 2\n", Some(4), "workload[0].cuont", "unknown field"),
            ("[[workload]]\nprogram = \"p\"\n", Some(1), "", "missing field `count`"),
            ("[[workload]]\nprogram = \"p\"\ncount = 0\n", Some(3), "workload[0].count", "at least 1"),
            (
                "[[workload]]\nprogram = \"p\"\ncount = 1\n\n[[workload]]\nprogram = \"q\"\ncount = 5\nrate = -1\n",
                Some(8),
                "workload[1].rate",
                "positive",
            ),
            ("workers = 0\n[[workload]]\nprogram = \"p\"\ncount = 1\n", Some(1), "workers", "at least 1"),
            (
                "[[workload]]\nprogram = \"p\"\ncount = 1\nconcurrency = 1000\n",
                Some(4),
                "workload[0].concurrency",
                "at most 384",
            ),
            ("engine = \"kvm\"\n[[workload]]\nprogram = \"p\"\ncount = 1\n", Some(1), "engine", "unknown variant"),
            ("", Some(1), "", "missing field `workload`"),
            ("[[workload]\n", Some(1), "", ""),
        ];
        for (text, line, field, message) in cases {
            let e = parse(text).expect_err(text);
            assert_eq!(e.line, *line, "{text:?}: {e}");
            if !field.is_empty() {
                assert_eq!(e.field.as_deref(), Some(*field), "{text:?}: {e}");
            }
            assert!(e.message.contains(message), "{text:?}: {e}");
        }
    }

    #[test]
    fn percentiles() {
        let mut samples: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        let l = Latency::of(&mut samples);
        assert_eq!((l.p50, l.p95, l.p99, l.max), (50.0, 95.0, 99.0, 100.0));
        assert_eq!(Latency::of(&mut []), Latency::default());
    }
}
