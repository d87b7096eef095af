//! The `shoal` command line. Parsing and reporting only: the work is in the library crates.

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
    /// Print the CPUs this process may use and how close they are (cores, caches, NUMA nodes,
    /// each worker's steal order).
    Topology {
        /// Print one JSON object instead of the table.
        #[arg(long)]
        json: bool,
    },
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
        .init();
    abort_on_guest_thread_panic();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => run(args),
        Command::Loadtest(args) => loadtest(&args),
        Command::Topology { json } => topology(json).map(|()| 0),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("shoal: {e:#}");
            ExitCode::from(1)
        }
    }
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
        null_stdio: false,
        memory_limit: args.memory,
        numa_node: node.scheduler().place(),
    };
    let kernel = shoal_engine::linux::Kernel::new(config, node.runtime())?;
    let program = args.program[0].to_str().context("the program path is not valid UTF-8")?.to_owned();
    let env = shoal_node::host_environment();
    let started = std::time::Instant::now();
    let status = kernel.run(&program, &args.program, &env)?;
    if args.stats {
        let stats = kernel.stats();
        let secs = started.elapsed().as_secs_f64();
        eprintln!(
            "shoal: {} guest instructions, {} blocks translated, {} regions compiled ({} instructions, {:.1} ms), {} loaded from the code cache, {} code chunks evicted, {:.3} s, {:.0} M instructions/s",
            stats.instructions,
            stats.blocks,
            stats.regions,
            stats.compiled_insts,
            stats.compile_us as f64 / 1000.0,
            stats.loaded,
            stats.evictions,
            secs,
            stats.instructions as f64 / secs / 1e6
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
