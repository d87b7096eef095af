//! The `shoal` command line. Parsing and reporting only: the work is in the library crates.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};

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
    /// The guest program (a riscv64 ELF) and its arguments.
    #[arg(required = true, value_name = "PROGRAM [ARGS]...", allow_hyphen_values = true)]
    program: Vec<OsString>,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Run(args) => match run(args) {
            Ok(code) => ExitCode::from(code),
            Err(e) => {
                eprintln!("shoal: {e:#}");
                ExitCode::from(1)
            }
        },
    }
}

fn run(args: RunArgs) -> anyhow::Result<u8> {
    let engine = match args.engine {
        Engine::Auto => shoal_engine::interp::Engine::Auto,
        Engine::Interp => shoal_engine::interp::Engine::Interp,
        Engine::Jit => shoal_engine::interp::Engine::Jit,
    };
    let config = shoal_engine::linux::Config { sysroot: args.sysroot, root: args.root, strace: args.strace, engine };
    let kernel = shoal_engine::linux::Kernel::new(config)?;
    let program = args.program[0].to_str().context("the program path is not valid UTF-8")?.to_owned();
    let env: Vec<OsString> = std::env::vars_os()
        .map(|(k, v)| {
            let mut kv = k;
            kv.push("=");
            kv.push(v);
            kv
        })
        .collect();
    let started = std::time::Instant::now();
    let status = kernel.run(&program, &args.program, &env)?;
    if args.stats {
        let stats = kernel.stats();
        let secs = started.elapsed().as_secs_f64();
        eprintln!(
            "shoal: {} guest instructions, {} blocks translated, {} regions compiled ({} instructions, {:.1} ms), {:.3} s, {:.0} M instructions/s",
            stats.instructions,
            stats.blocks,
            stats.regions,
            stats.compiled_insts,
            stats.compile_us as f64 / 1000.0,
            secs,
            stats.instructions as f64 / secs / 1e6
        );
    }
    Ok(u8::try_from(status.code() & 0xff).unwrap_or(1))
}
