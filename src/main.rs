//! The `shoal` command line. Parsing and reporting only: the work is in the library crates
//! (`cluster` starts and stops local clusters; `client` prints what the cluster answers).

mod client;
mod cluster;

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use shoal_engine::jit::cache;

#[derive(Parser, Debug)]
#[command(name = "shoal", version, about = "Run sandboxed RISC-V Linux guests, one or many")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run one guest program in this process, like qemu-riscv64.
    Run(RunArgs),
    /// Run a mix of guest workloads described by a TOML spec and report throughput, latency and
    /// scheduler figures.
    Loadtest(LoadtestArgs),
    /// Create, start, stop or inspect a cluster of local processes on loopback.
    Cluster {
        #[command(subcommand)]
        command: ClusterCommand,
    },
    /// Run a guest on the cluster.
    Submit(SubmitArgs),
    /// List the cluster's guests.
    Ps {
        #[command(flatten)]
        cluster: ClusterArg,
        /// Print JSON instead of the table.
        #[arg(long)]
        json: bool,
    },
    /// Print a guest's output (stdout to stdout, stderr to stderr).
    Logs {
        #[command(flatten)]
        cluster: ClusterArg,
        /// Keep printing until the guest ends.
        #[arg(short, long)]
        follow: bool,
        /// The guest's id.
        id: String,
    },
    /// Kill a guest.
    Kill {
        #[command(flatten)]
        cluster: ClusterArg,
        /// The guest's id.
        id: String,
    },
    /// List the cluster's nodes.
    Nodes {
        #[command(flatten)]
        cluster: ClusterArg,
        /// Print JSON instead of the table.
        #[arg(long)]
        json: bool,
    },
    /// Run a coordinator daemon (see deploy/README.md for the configuration).
    Coordinator {
        /// The daemon's TOML configuration.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Run a node daemon (see deploy/README.md for the configuration).
    Node {
        /// The daemon's TOML configuration.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Print the CPUs this process may use and how close they are (cores, caches, NUMA nodes,
    /// each worker's steal order).
    Topology {
        /// Print one JSON object instead of the table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(clap::Args, Debug)]
struct ClusterArg {
    /// The cluster's directory, as `shoal cluster init` made it [default: ~/.config/shoal/cluster].
    #[arg(long = "cluster", value_name = "DIR", env = "SHOAL_CLUSTER")]
    dir: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
struct DirArg {
    /// The cluster's directory [default: ~/.config/shoal/cluster].
    #[arg(long, value_name = "DIR", env = "SHOAL_CLUSTER")]
    dir: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
struct SizeArgs {
    /// Coordinators: 1, 3 or 5.
    #[arg(long, value_name = "N", default_value_t = 3)]
    coordinators: u32,
    /// Nodes.
    #[arg(long, value_name = "N", default_value_t = 2, value_parser = clap::value_parser!(u32).range(0..=64))]
    nodes: u32,
}

#[derive(Subcommand, Debug)]
enum ClusterCommand {
    /// Create a cluster: its CA, credentials and configurations for every member.
    Init {
        #[command(flatten)]
        dir: DirArg,
        #[command(flatten)]
        size: SizeArgs,
    },
    /// Start the cluster's processes in the background (initializing it first if needed) and
    /// wait until a leader is elected and the nodes are registered.
    Up {
        #[command(flatten)]
        dir: DirArg,
        #[command(flatten)]
        size: SizeArgs,
    },
    /// Stop what `up` started.
    Down {
        #[command(flatten)]
        dir: DirArg,
    },
    /// List every member with its role, pid and address, and every node.
    Status {
        #[command(flatten)]
        dir: DirArg,
        /// Print JSON instead of the table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(clap::Args, Debug)]
#[command(trailing_var_arg = true)]
struct SubmitArgs {
    #[command(flatten)]
    cluster: ClusterArg,
    /// Wait for the guest: print its output and exit with its status, like `shoal run`.
    #[arg(long)]
    wait: bool,
    /// Print the guest's output as it comes, until it ends.
    #[arg(long)]
    follow: bool,
    /// A sysroot that exists at this path on the nodes (like `shoal run -L`).
    #[arg(short = 'L', value_name = "SYSROOT")]
    sysroot: Option<PathBuf>,
    /// A name for listings [default: the program's file name].
    #[arg(long)]
    name: Option<String>,
    /// Run the guest again on another node if its node is lost.
    #[arg(long)]
    restart: bool,
    /// Cap the memory the guest maps, as `shoal run --memory`.
    #[arg(long, value_name = "BYTES", value_parser = parse_size)]
    memory: Option<u64>,
    /// The guest program (a riscv64 ELF on this host; it is uploaded) and its arguments.
    #[arg(required = true, value_name = "PROGRAM [ARGS]...", allow_hyphen_values = true)]
    program: Vec<OsString>,
}

#[derive(clap::Args, Debug)]
struct LoadtestArgs {
    /// The spec: `[[workload]]` tables with program, args, sysroot, count, concurrency, rate,
    /// weight and timeout_s (see the README).
    spec: PathBuf,
    /// Run the guests on a node in this process (the only mode until the cluster runs load
    /// tests).
    #[arg(long)]
    local: bool,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    json: bool,
    /// Worker threads, overriding the spec's `workers`.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1024))]
    workers: Option<u32>,
    /// Keep compiled code in DIR [default: as for `shoal run`].
    #[arg(long, value_name = "DIR", conflicts_with = "no_code_cache")]
    code_cache: Option<PathBuf>,
    /// Neither read nor write the code cache.
    #[arg(long)]
    no_code_cache: bool,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Engine {
    /// The interpreter for cold code, the JIT for hot regions.
    Auto,
    /// The interpreter tier only.
    Interp,
    /// Compile every region when it first runs (exercises the JIT).
    Jit,
}

#[derive(clap::Args, Debug)]
#[command(trailing_var_arg = true)]
struct RunArgs {
    /// Look absolute paths up under this directory first (like qemu's -L).
    #[arg(short = 'L', value_name = "SYSROOT", env = "SHOAL_LD_PREFIX")]
    sysroot: Option<PathBuf>,
    /// Confine the guest to DIR: it becomes the guest's `/` and nothing outside it is reachable.
    /// PROGRAM is then a path inside DIR.
    #[arg(long, value_name = "DIR", conflicts_with = "sysroot")]
    root: Option<PathBuf>,
    /// Execution engine.
    #[arg(long, value_enum, default_value = "auto", env = "SHOAL_ENGINE")]
    engine: Engine,
    /// Log every system call to stderr.
    #[arg(long)]
    strace: bool,
    /// Print guest instructions retired, blocks translated and run time to stderr at exit.
    #[arg(long)]
    stats: bool,
    /// Keep compiled code in DIR and reuse it in later runs [default: $SHOAL_CODE_CACHE, else
    /// $XDG_CACHE_HOME/shoal/code, else ~/.cache/shoal/code].
    #[arg(long, value_name = "DIR", conflicts_with = "no_code_cache")]
    code_cache: Option<PathBuf>,
    /// Neither read nor write the code cache.
    #[arg(long)]
    no_code_cache: bool,
    /// Bound the code cache to BYTES, evicting the least recently used code beyond it; K, M and G
    /// suffixes are powers of 1024 [default: 256M].
    #[arg(long, value_name = "BYTES", value_parser = parse_size, conflicts_with = "no_code_cache")]
    code_cache_size: Option<u64>,
    /// Bound each guest thread's compiled code in memory to BYTES; the oldest code is dropped
    /// beyond it (and recompiled, or reloaded from the code cache, if it gets hot again); K, M
    /// and G suffixes are powers of 1024 [default: 64M].
    #[arg(long, value_name = "BYTES", value_parser = parse_size)]
    jit_memory: Option<u64>,
    /// Cap the memory the guest maps, all its processes together, at BYTES: past it, mmap, brk
    /// and fork fail with ENOMEM, as under RLIMIT_AS; K, M and G suffixes are powers of 1024
    /// [default: no cap].
    #[arg(long, value_name = "BYTES", value_parser = parse_size)]
    memory: Option<u64>,
    /// Run guest threads on N worker threads [default: one per CPU this process may use].
    #[arg(long, value_name = "N", env = "SHOAL_WORKERS", value_parser = clap::value_parser!(u32).range(1..=1024))]
    workers: Option<u32>,
    /// The guest program (a riscv64 ELF) and its arguments.
    #[arg(required = true, value_name = "PROGRAM [ARGS]...", allow_hyphen_values = true)]
    program: Vec<OsString>,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::builder()
                .with_default_directive(tracing::level_filters::LevelFilter::WARN.into())
                .from_env_lossy(),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    abort_on_guest_thread_panic();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => run(args),
        Command::Loadtest(args) => loadtest(&args),
        Command::Topology { json } => topology(json).map(|()| 0),
        Command::Cluster { command } => cluster_command(command),
        Command::Submit(args) => client::cluster_dir(args.cluster.dir).and_then(|dir| {
            client::submit(
                &dir,
                client::Submit {
                    program: args.program,
                    sysroot: args.sysroot,
                    name: args.name,
                    wait: args.wait,
                    follow: args.follow,
                    restart: args.restart,
                    memory: args.memory,
                },
            )
        }),
        Command::Ps { cluster, json } => client::cluster_dir(cluster.dir).and_then(|dir| client::ps(&dir, json)),
        Command::Logs { cluster, follow, id } => {
            client::cluster_dir(cluster.dir).and_then(|dir| client::logs(&dir, &id, follow))
        }
        Command::Kill { cluster, id } => client::cluster_dir(cluster.dir).and_then(|dir| client::kill(&dir, &id)),
        Command::Nodes { cluster, json } => client::cluster_dir(cluster.dir).and_then(|dir| client::nodes(&dir, json)),
        Command::Coordinator { config } => coordinator(&config),
        Command::Node { config } => node_daemon(&config),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("shoal: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn cluster_command(command: ClusterCommand) -> anyhow::Result<u8> {
    let dir = |d: DirArg| client::cluster_dir(d.dir);
    match command {
        ClusterCommand::Init { dir: d, size } => cluster::init(&dir(d)?, size.coordinators, size.nodes).map(|()| 0),
        ClusterCommand::Up { dir: d, size } => cluster::up(&dir(d)?, size.coordinators, size.nodes).map(|()| 0),
        ClusterCommand::Down { dir: d } => cluster::down(&dir(d)?).map(|()| 0),
        ClusterCommand::Status { dir: d, json } => cluster::status(&dir(d)?, json),
    }
}

fn coordinator(path: &std::path::Path) -> anyhow::Result<u8> {
    let config = shoal_coordinator::config::Config::load(path)?;
    cluster::runtime()?.block_on(shoal_coordinator::server::run(config, cluster::terminated()))?;
    Ok(0)
}

fn node_daemon(path: &std::path::Path) -> anyhow::Result<u8> {
    let config = shoal_node::daemon::DaemonConfig::load(path)?;
    cluster::runtime()?.block_on(shoal_node::daemon::run(config, cluster::terminated()))?;
    Ok(0)
}

fn topology(json: bool) -> anyhow::Result<()> {
    let topology = shoal_scheduler::Topology::detect();
    for warning in &topology.warnings {
        eprintln!("shoal: topology: {warning}");
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&topology)?);
    } else {
        print!("{topology}");
    }
    Ok(())
}

fn loadtest(args: &LoadtestArgs) -> anyhow::Result<u8> {
    use shoal_node::loadtest;
    if !args.local {
        eprintln!("shoal: loadtest: only --local is available (guests run on a node in this process)");
        return Ok(2);
    }
    let text = match std::fs::read_to_string(&args.spec) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("shoal: {}: {e}", args.spec.display());
            return Ok(2);
        }
    };
    let base = args.spec.parent().unwrap_or(std::path::Path::new("."));
    let spec = match loadtest::Spec::parse(&text, base) {
        Ok(spec) => spec,
        // `SPEC:LINE: field: message`, as compilers write it.
        Err(e) if e.line.is_some() => {
            eprintln!("shoal: {}:{e}", args.spec.display());
            return Ok(2);
        }
        Err(e) => {
            eprintln!("shoal: {}: {e}", args.spec.display());
            return Ok(2);
        }
    };
    let mut scheduler = shoal_scheduler::Config::detect();
    scheduler.workers = args.workers.map(|n| n as usize).or(spec.workers);
    let code_cache = if args.no_code_cache {
        None
    } else {
        args.code_cache
            .clone()
            .or_else(cache::default_dir)
            .map(|dir| cache::CodeCacheConfig { dir, max_bytes: cache::DEFAULT_MAX_BYTES })
    };
    let node = shoal_node::Node::start(shoal_node::Config {
        scheduler,
        jit: spec.engine() != shoal_engine::interp::Engine::Interp,
        code_cache,
    })
    .context("cannot start the scheduler")?;
    let total: u64 = spec.workloads.iter().map(|w| w.count).sum();
    let bar = indicatif::ProgressBar::new(total).with_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} guests, {msg} [{elapsed_precise}]")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let summary = loadtest::run(&spec, &node, &mut |p| {
        bar.set_position(p.finished);
        bar.set_message(format!("{} alive, {} failed", p.alive, p.failed));
    });
    bar.finish_and_clear();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print_summary(&summary);
    }
    Ok(if summary.failed == 0 { 0 } else { 1 })
}

fn print_summary(s: &shoal_node::loadtest::Summary) {
    println!(
        "{} guests in {:.2} s on {} workers: {:.1} guests/s, {} completed, {} failed",
        s.completed + s.failed,
        s.duration_s,
        s.workers,
        s.guests_per_sec,
        s.completed,
        s.failed
    );
    let l = s.latency_ms;
    println!(
        "latency (start to exit): p50 {:.2} ms, p95 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        l.p50, l.p95, l.p99, l.max
    );
    println!(
        "scheduler: max runnable wait {:.2} ms, {} steals, CPU utilization {:.0}%, peak {} guests alive",
        s.max_runnable_wait_ms,
        s.steals,
        s.cpu_utilization * 100.0,
        s.peak_alive
    );
    println!();
    println!(
        "{:<20} {:>8} {:>10} {:>8} {:>10} {:>10}  statuses",
        "workload", "count", "completed", "failed", "p50 ms", "p99 ms"
    );
    for w in &s.workloads {
        let statuses: Vec<String> = w.statuses.iter().map(|(k, v)| format!("{k}: {v}")).collect();
        println!(
            "{:<20} {:>8} {:>10} {:>8} {:>10.2} {:>10.2}  {}",
            w.name,
            w.count,
            w.completed,
            w.failed,
            w.latency_ms.p50,
            w.latency_ms.p99,
            statuses.join(", ")
        );
    }
}

/// After the guest exits, the compiler may finish queued regions for the code cache for this
/// share of the run's time, at most [`MAX_DRAIN`].
const DRAIN_SHARE: u32 = 10;
/// The longest the compiler may go on after the guest exits.
const MAX_DRAIN: std::time::Duration = std::time::Duration::from_millis(500);

fn run(args: RunArgs) -> anyhow::Result<u8> {
    let engine = match args.engine {
        Engine::Auto => shoal_engine::interp::Engine::Auto,
        Engine::Interp => shoal_engine::interp::Engine::Interp,
        Engine::Jit => shoal_engine::interp::Engine::Jit,
    };
    let code_cache = if args.no_code_cache {
        None
    } else {
        args.code_cache.or_else(cache::default_dir).map(|dir| cache::CodeCacheConfig {
            dir,
            max_bytes: args.code_cache_size.unwrap_or(cache::DEFAULT_MAX_BYTES),
        })
    };
    let mut scheduler = shoal_scheduler::Config::detect();
    scheduler.workers = args.workers.map(|n| n as usize);
    let node = shoal_node::Node::start(shoal_node::Config {
        scheduler,
        jit: engine != shoal_engine::interp::Engine::Interp,
        code_cache,
    })
    .context("cannot start the scheduler")?;
    let config = shoal_engine::linux::Config {
        sysroot: args.sysroot,
        root: args.root,
        strace: args.strace,
        engine,
        jit_memory: args.jit_memory.map(|b| usize::try_from(b).unwrap_or(usize::MAX)),
        weight: 1,
        stdio: shoal_engine::linux::Stdio::Inherit,
        memory_limit: args.memory,
        numa_node: node.scheduler().place(),
    };
    let kernel = shoal_engine::linux::Kernel::new(config, node.runtime())?;
    let program = args.program[0].to_str().context("the program path is not valid UTF-8")?.to_owned();
    let env = shoal_node::host_environment();
    let started = std::time::Instant::now();
    let status = kernel.run(&program, &args.program, &env)?;
    let ran = started.elapsed();
    // Regions that got hot late are still queued: give the compiler a little time to put them in
    // the code cache, so that the next run loads them instead of compiling them.
    let drained = node.runtime().drain_compiles((ran / DRAIN_SHARE).min(MAX_DRAIN));
    if args.stats {
        let stats = kernel.stats();
        let secs = ran.as_secs_f64();
        eprintln!(
            "shoal: {} guest instructions, {} blocks translated, {} regions compiled ({} instructions, {:.1} ms), {} loaded from the code cache ({:.1} ms), {} more compiled for the code cache after the guest exited ({:.1} ms, {} left), {} code chunks evicted, {:.3} s, {:.0} M instructions/s, {:.2}% interpreted",
            stats.instructions,
            stats.blocks,
            stats.regions,
            stats.compiled_insts,
            stats.compile_us as f64 / 1000.0,
            stats.loaded,
            stats.load_us as f64 / 1000.0,
            drained.regions,
            drained.compile_time.as_secs_f64() * 1000.0,
            drained.left,
            stats.evictions,
            secs,
            stats.instructions as f64 / secs / 1e6,
            stats.interpreted as f64 * 100.0 / stats.instructions.max(1) as f64
        );
    }
    if let Some(memory) = kernel.memory_limit()
        && memory.was_reached()
        && status.code() != 0
    {
        eprintln!("shoal: the guest reached its memory limit ({} bytes) before it failed", memory.bytes());
    }
    Ok(u8::try_from(status.code() & 0xff).unwrap_or(1))
}

/// A panic on a thread running guest vCPUs is a bug in shoal that leaves guests half dead (their
/// other threads and their parents would wait forever): report it and end the whole run, loudly,
/// rather than hang. Panics elsewhere (the compiler thread catches its own) are left alone.
fn abort_on_guest_thread_panic() {
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        report(info);
        if std::thread::current().name().is_some_and(|n| n.starts_with("guest-") || n.starts_with("shoal-worker-")) {
            eprintln!("shoal: internal error on a guest thread; aborting");
            std::process::abort();
        }
    }));
}

/// Parses a byte count: decimal digits with an optional K, M or G suffix (powers of 1024).
fn parse_size(s: &str) -> Result<u64, String> {
    let units = [('K', 1u64 << 10), ('M', 1 << 20), ('G', 1 << 30)];
    let (digits, unit) = units
        .iter()
        .find_map(|&(suffix, unit)| s.strip_suffix([suffix, suffix.to_ascii_lowercase()]).map(|d| (d, unit)))
        .unwrap_or((s, 1));
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("`{s}` is not a size: digits with an optional K, M or G suffix"));
    }
    let n: u64 = digits.parse().map_err(|_| format!("`{s}` is too large"))?;
    match n.checked_mul(unit) {
        Some(0) => Err("the size must be more than 0 (--no-code-cache turns the cache off)".to_owned()),
        Some(bytes) => Ok(bytes),
        None => Err(format!("`{s}` is too large")),
    }
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::*;

    #[test]
    fn the_cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("64K"), Ok(64 << 10));
        assert_eq!(parse_size("64k"), Ok(64 << 10));
        assert_eq!(parse_size("256M"), Ok(256 << 20));
        assert_eq!(parse_size("2G"), Ok(2 << 30));
        for bad in ["", "K", "-1", "+5", "1.5M", "12KB", "1T", "0", "0M", "18446744073709551616", "17179869184G"] {
            assert!(parse_size(bad).is_err(), "{bad:?}");
        }
    }

    fn run_args(args: &[&str]) -> Result<RunArgs, clap::Error> {
        let cli = Cli::try_parse_from(["shoal", "run"].iter().chain(args).chain(&["prog"]))?;
        let Command::Run(run) = cli.command else { unreachable!("parsed a run command") };
        Ok(run)
    }

    #[test]
    fn code_cache_options() {
        let run = run_args(&["--code-cache", "/tmp/c", "--code-cache-size", "1M"]).expect("valid options");
        assert_eq!(run.code_cache, Some(PathBuf::from("/tmp/c")));
        assert_eq!(run.code_cache_size, Some(1 << 20));
        assert!(run_args(&["--no-code-cache"]).expect("valid options").no_code_cache);
        for conflicting in
            [&["--code-cache", "/tmp/c", "--no-code-cache"][..], &["--no-code-cache", "--code-cache-size", "1M"]]
        {
            let err = run_args(conflicting).expect_err("conflicting options");
            assert_eq!(err.kind(), clap::error::ErrorKind::ArgumentConflict);
        }
        assert!(run_args(&["--code-cache-size", "lots"]).is_err());
    }
}
