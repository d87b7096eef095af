//! Shared harness for running RISC-V guests under qemu-riscv64 (the oracle) and under shoal,
//! and for comparing what they did.
//!
//! Protocol of one run:
//!
//! ```text
//!   env_clear + BASE_ENV + run.env      the only environment either runner (and so the guest) sees
//!   new process group                   so a guest's forked children can be killed with it
//!   stdin  <- writer thread             the whole of run.stdin, then EOF
//!   stdout -> reader thread  \
//!   stderr -> reader thread   }-------> Outcome { stdout, stderr, status }
//!   wait with deadline (RUN_TIMEOUT)    past it: SIGKILL to the group, then panic
//!   after exit: SIGKILL to the group    stragglers must not hold the pipes open
//! ```
//!
//! `status` is the exit code, or 128+N for a process killed by signal N, the way a shell
//! reports it and the way `shoal run` reports a guest.
//!
//! Setting `SHOAL_CONFORMANCE_SELFTEST=1` makes [`run_shoal`] run qemu-riscv64 instead of
//! shoal. Every conformance test then compares two independent qemu runs, which checks the
//! harness and that each guest's output is deterministic; use it after adding or changing a
//! guest.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// How long one guest run may take before it is killed and reported as a failure.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(120);

/// The fixed environment every guest starts with, before [`Run::env`] is added.
pub const BASE_ENV: &[(&str, &str)] = &[
    ("PATH", "/usr/local/bin:/usr/bin:/bin"),
    ("HOME", "/nonexistent"),
    ("LANG", "C"),
    ("LC_ALL", "C"),
    ("TZ", "UTC"),
];

/// Switch that points [`run_shoal`] at qemu-riscv64 (see the module documentation).
pub const SELFTEST_ENV: &str = "SHOAL_CONFORMANCE_SELFTEST";

/// What a finished run produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// Exit code, or 128+N when killed by signal N.
    pub status: i32,
}

/// The `shoal` binary built by cargo for this test run.
pub fn shoal() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_shoal"))
}

/// Whether `name` is an executable on PATH. A missing tool fails the test when the `CI`
/// environment variable is set; otherwise it prints a loud SKIPPED line and returns false.
pub fn require_tool(name: &str) -> bool {
    if find_on_path(name).is_some() {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("{name} is required when CI is set but was not found on PATH");
    }
    eprintln!("SKIPPED: {name} not installed");
    false
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(name)).find(|candidate| {
        std::fs::metadata(candidate)
            .map(|m| m.is_file() && std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o111 != 0)
            .unwrap_or(false)
    })
}

/// One guest invocation, described independently of the runner.
#[derive(Debug, Clone, Copy)]
pub struct Run<'a> {
    pub program: &'a Path,
    pub args: &'a [&'a str],
    /// Where the guest's dynamic loader and libraries live (`-L`).
    pub sysroot: Option<&'a Path>,
    pub stdin: &'a [u8],
    /// Working directory of the guest; the test's own when `None`.
    pub cwd: Option<&'a Path>,
    /// Variables added to [`BASE_ENV`].
    pub env: &'a [(&'a str, &'a str)],
}

/// Runs the guest under `qemu-riscv64 [-L sysroot] program args`.
pub fn run_qemu(run: &Run) -> Outcome {
    execute("qemu-riscv64", qemu_args(run), run)
}

/// Runs a program built for the host itself (an oracle where qemu cannot be one).
pub fn run_native(run: &Run) -> Outcome {
    execute(run.program, run.args.iter().map(OsString::from).collect(), run)
}

/// Runs the guest under `shoal run [-L sysroot] -- program args` (or under qemu-riscv64 when
/// [`SELFTEST_ENV`] is set).
pub fn run_shoal(run: &Run) -> Outcome {
    run_shoal_with(run, "auto")
}

/// The execution engines `shoal run --engine` offers; conformance runs every guest under each.
pub const ENGINES: [&str; 3] = ["auto", "interp", "jit"];

/// Like [`run_shoal`] with `--engine ENGINE`.
pub fn run_shoal_with(run: &Run, engine: &str) -> Outcome {
    if std::env::var_os(SELFTEST_ENV).is_some_and(|v| !v.is_empty() && v != "0") {
        return run_qemu(run);
    }
    let mut args: Vec<OsString> = vec!["run".into(), "--no-code-cache".into(), "--engine".into(), engine.into()];
    if let Some(sysroot) = run.sysroot {
        args.push("-L".into());
        args.push(sysroot.into());
    }
    args.push("--".into());
    args.push(run.program.into());
    args.extend(run.args.iter().map(OsString::from));
    execute(shoal(), args, run)
}

fn qemu_args(run: &Run) -> Vec<OsString> {
    let mut args: Vec<OsString> = Vec::new();
    if let Some(sysroot) = run.sysroot {
        args.push("-L".into());
        args.push(sysroot.into());
    }
    args.push(run.program.into());
    args.extend(run.args.iter().map(OsString::from));
    args
}

fn execute(runner: impl AsRef<std::ffi::OsStr>, args: Vec<OsString>, run: &Run) -> Outcome {
    let runner = runner.as_ref().to_owned();
    let described = format!("{} {:?}", runner.to_string_lossy(), args);
    let mut command = Command::new(&runner);
    command
        .args(&args)
        .env_clear()
        .envs(BASE_ENV.iter().copied())
        .envs(run.env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    if let Some(cwd) = run.cwd {
        command.current_dir(cwd);
    }
    let mut child = command.spawn().unwrap_or_else(|e| panic!("could not start {described}: {e}"));

    let stdin = child.stdin.take().expect("stdin was piped");
    let input = run.stdin.to_vec();
    // A guest may exit without reading its input; a broken pipe here is not an error.
    let writer = thread::spawn(move || {
        let mut stdin = stdin;
        let _ = stdin.write_all(&input);
    });
    let stdout = drain(child.stdout.take().expect("stdout was piped"));
    let stderr = drain(child.stderr.take().expect("stderr was piped"));

    let waited = wait_with_deadline(&mut child, RUN_TIMEOUT);
    // Whatever the guest left behind in its process group goes now, so the pipes close.
    kill_group(&child);
    let stdout = stdout.join().expect("stdout reader panicked");
    let stderr = stderr.join().expect("stderr reader panicked");
    writer.join().expect("stdin writer panicked");

    let Some(status) = waited else {
        panic!(
            "{described} did not finish within {RUN_TIMEOUT:?} and was killed\n\
             --- stdout tail ---\n{}\n--- stderr tail ---\n{}",
            tail(&stdout, 40),
            tail(&stderr, 40)
        );
    };
    Outcome { stdout, stderr, status: shell_status(status, &described) }
}

fn drain(mut pipe: impl Read + Send + 'static) -> JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        // A read error ends the capture; what was read so far is still reported.
        let _ = pipe.read_to_end(&mut bytes);
        bytes
    })
}

fn wait_with_deadline(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() >= deadline => {
                kill_group(child);
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            Ok(None) => thread::sleep(Duration::from_millis(5)),
            Err(e) => panic!("waiting for child {} failed: {e}", child.id()),
        }
    }
}

/// Sends SIGKILL to the child's process group (its id, since it was started as a group leader).
/// Uses kill(1) so the harness needs no libc bindings; failure means the group is gone.
fn kill_group(child: &Child) {
    let _ = Command::new("kill")
        .args(["-s", "KILL", "--", &format!("-{}", child.id())])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

fn shell_status(status: ExitStatus, described: &str) -> i32 {
    match (status.code(), status.signal()) {
        (Some(code), _) => code,
        (None, Some(signal)) => 128 + signal,
        (None, None) => panic!("{described} ended with an unrecognised status {status:?}"),
    }
}

/// The last `lines` lines of `bytes`, lossily decoded.
fn tail(bytes: &[u8], lines: usize) -> String {
    let text = String::from_utf8_lossy(bytes);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Panics unless `shoal` produced the same stdout bytes and status as `qemu`. The message shows
/// both statuses, the first differing stdout lines with context, and the tail of shoal's stderr.
pub fn assert_same(name: &str, qemu: &Outcome, shoal: &Outcome) {
    let same_stdout = qemu.stdout == shoal.stdout;
    let same_status = qemu.status == shoal.status;
    if same_stdout && same_status {
        return;
    }
    let mut report = format!(
        "{name}: shoal differs from qemu-riscv64\n  status: qemu {} / shoal {}{}\n  stdout: qemu {} bytes / shoal {} bytes{}\n",
        qemu.status,
        shoal.status,
        if same_status { "" } else { "   <-- differs" },
        qemu.stdout.len(),
        shoal.stdout.len(),
        if same_stdout { " (identical)" } else { "" },
    );
    if !same_stdout {
        report.push_str(&line_diff(&qemu.stdout, &shoal.stdout));
    }
    report.push_str("--- shoal stderr (tail) ---\n");
    report.push_str(&tail(&shoal.stderr, 30));
    report.push('\n');
    panic!("{report}");
}

/// A unified-style excerpt around the first differing line: ` ` context, `-` qemu, `+` shoal.
fn line_diff(expected: &[u8], actual: &[u8]) -> String {
    const CONTEXT: usize = 3;
    const SHOWN: usize = 12;
    let expected: Vec<&[u8]> = expected.split_inclusive(|&b| b == b'\n').collect();
    let actual: Vec<&[u8]> = actual.split_inclusive(|&b| b == b'\n').collect();
    let first = expected.iter().zip(&actual).position(|(e, a)| e != a).unwrap_or(expected.len().min(actual.len()));
    let show = |line: &[u8]| {
        let text = String::from_utf8_lossy(line);
        match text.strip_suffix('\n') {
            Some(body) => body.to_string(),
            None => format!("{text}\\ (no newline at end)"),
        }
    };
    let start = first.saturating_sub(CONTEXT);
    let mut out = format!("--- qemu-riscv64\n+++ shoal\n@@ first difference at stdout line {} @@\n", first + 1);
    for line in &expected[start..first] {
        out.push_str(&format!(" {}\n", show(line)));
    }
    let expected_rest = &expected[first..expected.len().min(first + SHOWN)];
    let actual_rest = &actual[first..actual.len().min(first + SHOWN)];
    for line in expected_rest {
        out.push_str(&format!("-{}\n", show(line)));
    }
    if expected.len() <= first {
        out.push_str("-(end of output)\n");
    }
    for line in actual_rest {
        out.push_str(&format!("+{}\n", show(line)));
    }
    if actual.len() <= first {
        out.push_str("+(end of output)\n");
    }
    let more = expected.len().saturating_sub(first + SHOWN).max(actual.len().saturating_sub(first + SHOWN));
    if more > 0 {
        out.push_str(&format!("... ({more} more lines not shown)\n"));
    }
    out
}

/// The cross compiler the C test guests are built with.
pub const CROSS_GCC: &str = "riscv64-linux-gnu-gcc";

/// Builds the C test guests once per test binary (`tests/guests/build.sh`) into
/// `$CARGO_TARGET_TMPDIR/guests/{static,dynamic}/NAME`; `None` when the cross compiler is missing
/// (the caller's tests then skip, or fail under CI).
pub fn built_guests() -> Option<&'static Path> {
    static BUILT: OnceLock<Result<Option<PathBuf>, String>> = OnceLock::new();
    let built = BUILT.get_or_init(|| {
        if !require_tool(CROSS_GCC) {
            return Ok(None);
        }
        let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("guests");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/guests/build.sh");
        let result = Command::new("bash")
            .arg(&script)
            .arg(&out)
            .output()
            .map_err(|e| format!("could not run {}: {e}", script.display()))?;
        if !result.status.success() {
            return Err(format!(
                "{} failed ({}):\n{}",
                script.display(),
                result.status,
                String::from_utf8_lossy(&result.stderr)
            ));
        }
        Ok(Some(out))
    });
    match built {
        Ok(dir) => dir.as_deref(),
        Err(message) => panic!("building the guests failed: {message}"),
    }
}
