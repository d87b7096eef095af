//! Shared harness for the differential tests: one guest program runs under qemu-riscv64 and under
//! `shoal run` with the same arguments, standard input, working directory and environment, and
//! the two outcomes are compared.
//!
//! An outcome's status is the exit code, or 128+N for a process killed by signal N (the shell's
//! convention, which `shoal run` also uses for its own exit status).

use std::io::{ErrorKind, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// What one run produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// Exit code, or 128+N when killed by signal N.
    pub status: i32,
}

/// The `shoal` binary Cargo built for this test run.
pub fn shoal() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_shoal"))
}

/// Whether `name` is on PATH. A missing tool fails the test when the `CI` environment variable is
/// set (CI must never skip silently) and otherwise prints a loud SKIPPED line.
pub fn require_tool(name: &str) -> bool {
    let found = std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(name).is_file()));
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "required tool `{name}` is not on PATH (CI is set)"
        );
        eprintln!("SKIPPED: required tool `{name}` is not on PATH");
    }
    found
}

/// One guest invocation, shared by both runners.
#[derive(Debug, Clone, Copy)]
pub struct Run<'a> {
    pub program: &'a Path,
    pub args: &'a [&'a str],
    pub sysroot: Option<&'a Path>,
    pub stdin: &'a [u8],
    pub cwd: Option<&'a Path>,
    pub env: &'a [(&'a str, &'a str)],
}

/// Runs the guest under `qemu-riscv64 [-L SYSROOT] PROGRAM ARGS...`.
pub fn run_qemu(run: &Run) -> Outcome {
    let mut command = Command::new("qemu-riscv64");
    if let Some(sysroot) = run.sysroot {
        command.arg("-L").arg(sysroot);
    }
    command.arg(run.program).args(run.args);
    execute(command, run)
}

/// Runs the guest under `shoal run [-L SYSROOT] -- PROGRAM ARGS...`.
pub fn run_shoal(run: &Run) -> Outcome {
    let mut command = Command::new(shoal());
    command.arg("run");
    if let Some(sysroot) = run.sysroot {
        command.arg("-L").arg(sysroot);
    }
    command.arg("--").arg(run.program).args(run.args);
    execute(command, run)
}

fn execute(mut command: Command, run: &Run) -> Outcome {
    command
        .envs(run.env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(cwd) = run.cwd {
        command.current_dir(cwd);
    }
    let mut child = command
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let input = run.stdin.to_vec();
    // A separate writer keeps a large stdin from deadlocking against a full stdout pipe. A guest
    // that exits without reading all of its input closes the pipe; that is not an error here.
    let writer = std::thread::spawn(move || match stdin.write_all(&input) {
        Err(e) if e.kind() != ErrorKind::BrokenPipe => Err(e),
        _ => Ok(()),
    });
    let output = child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("waiting for {command:?}: {e}"));
    writer
        .join()
        .expect("stdin writer panicked")
        .unwrap_or_else(|e| panic!("writing stdin of {command:?}: {e}"));
    let status = match (output.status.code(), output.status.signal()) {
        (Some(code), _) => code,
        (None, Some(signal)) => 128 + signal,
        (None, None) => panic!("{command:?} ended with neither a code nor a signal"),
    };
    Outcome {
        stdout: output.stdout,
        stderr: output.stderr,
        status,
    }
}

/// Panics, naming the case, unless stdout bytes and exit status are the same.
pub fn assert_same(name: &str, qemu: &Outcome, shoal: &Outcome) {
    if qemu.stdout == shoal.stdout && qemu.status == shoal.status {
        return;
    }
    let first_difference = qemu
        .stdout
        .iter()
        .zip(&shoal.stdout)
        .position(|(a, b)| a != b)
        .unwrap_or(qemu.stdout.len().min(shoal.stdout.len()));
    panic!(
        "case {name}: shoal differs from qemu-riscv64\n\
         status: qemu {} shoal {}\n\
         stdout: qemu {} bytes, shoal {} bytes, first difference at byte {first_difference}\n\
         --- qemu stdout ---\n{}\n--- shoal stdout ---\n{}\n--- qemu stderr ---\n{}\n--- shoal stderr ---\n{}",
        qemu.status,
        shoal.status,
        qemu.stdout.len(),
        shoal.stdout.len(),
        tail(&qemu.stdout),
        tail(&shoal.stdout),
        tail(&qemu.stderr),
        tail(&shoal.stderr),
    );
}

/// The last few KiB of a stream, as text.
fn tail(bytes: &[u8]) -> String {
    const KEEP: usize = 4096;
    let start = bytes.len().saturating_sub(KEEP);
    String::from_utf8_lossy(&bytes[start..]).into_owned()
}
