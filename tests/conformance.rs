//! Conformance: every C guest in `tests/guests/` runs under qemu-riscv64 and under
//! `shoal run`, statically and dynamically linked; stdout bytes and exit status must match.
//!
//! The guests are built once per test binary by `tests/guests/build.sh` into
//! `$CARGO_TARGET_TMPDIR/guests/{static,dynamic}/NAME`. Each run gets a fresh, empty working
//! directory under `$CARGO_TARGET_TMPDIR/work/` because several guests create files there.
//! Without qemu-riscv64 or riscv64-linux-gnu-gcc the tests print SKIPPED and pass, unless
//! `CI` is set. `SHOAL_CONFORMANCE_SELFTEST=1` runs both sides under qemu (see `common`).

mod common;

use common::{Outcome, Run, assert_same, built_guests, require_tool, run_qemu, run_shoal};
use std::path::{Path, PathBuf};

const QEMU: &str = "qemu-riscv64";
const SYSROOT: &str = "/usr/riscv64-linux-gnu";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Linkage {
    Static,
    Dynamic,
}

impl Linkage {
    fn dir(self) -> &'static str {
        match self {
            Linkage::Static => "static",
            Linkage::Dynamic => "dynamic",
        }
    }
}

/// One conformance case: a guest, how it is invoked, and the status it must end with.
#[derive(Debug)]
struct Case {
    guest: &'static str,
    args: &'static [&'static str],
    env: &'static [(&'static str, &'static str)],
    stdin: fn() -> Vec<u8>,
    status: i32,
}

const NO_INPUT: fn() -> Vec<u8> = Vec::new;

/// The built guests; `None` when a tool is missing (the tests then skip).
fn guests_dir() -> Option<&'static Path> {
    if !require_tool(QEMU) {
        return None;
    }
    built_guests()
}

/// A fresh, empty directory for one run of one case.
fn scratch(case: &str, linkage: Linkage, runner: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("work").join(format!("{case}-{}-{runner}", linkage.dir()));
    if dir.exists() {
        std::fs::remove_dir_all(&dir).unwrap_or_else(|e| panic!("could not clear {}: {e}", dir.display()));
    }
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("could not create {}: {e}", dir.display()));
    dir
}

fn check(case: &Case, linkage: Linkage) {
    let Some(guests) = guests_dir() else { return };
    let program = guests.join(linkage.dir()).join(case.guest);
    let sysroot = match linkage {
        Linkage::Static => None,
        Linkage::Dynamic => Some(Path::new(SYSROOT)),
    };
    let stdin = (case.stdin)();
    let outcome = |runner: &str, run_with: fn(&Run) -> Outcome| {
        let cwd = scratch(case.guest, linkage, runner);
        let run = Run { program: &program, args: case.args, sysroot, stdin: &stdin, cwd: Some(&cwd), env: case.env };
        run_with(&run)
    };
    let name = format!("{} ({})", case.guest, linkage.dir());
    let qemu = outcome("qemu", run_qemu);
    // The oracle itself must behave as the guest intends, or the comparison proves nothing.
    assert_eq!(
        qemu.status,
        case.status,
        "{name}: qemu-riscv64 exited {} but the guest is meant to exit {}; stderr:\n{}",
        qemu.status,
        case.status,
        String::from_utf8_lossy(&qemu.stderr)
    );
    assert!(!qemu.stdout.is_empty(), "{name}: qemu-riscv64 produced no output");
    for engine in common::ENGINES {
        let cwd = scratch(case.guest, linkage, engine);
        let run = Run { program: &program, args: case.args, sysroot, stdin: &stdin, cwd: Some(&cwd), env: case.env };
        let shoal = common::run_shoal_with(&run, engine);
        let name = format!("{name} --engine {engine}");
        assert_same(&name, &qemu, &shoal);
        assert_eq!(shoal.status, case.status, "{name}: shoal's exit status");
    }
}

/// Defines a module named after the guest holding one test per linkage.
macro_rules! conformance {
    ($($module:ident => $case:expr;)*) => {$(
        mod $module {
            use super::*;

            #[test]
            fn static_linkage() {
                check(&$case, Linkage::Static);
            }

            #[test]
            fn dynamic_linkage() {
                check(&$case, Linkage::Dynamic);
            }
        }
    )*};
}

const fn plain(guest: &'static str) -> Case {
    Case { guest, args: &[], env: &[], stdin: NO_INPUT, status: 0 }
}

/// Fixed input for the stdio guest: mixed case, an empty line, bytes above ASCII, and enough
/// generated lines to exceed a pipe buffer, with no newline at the very end.
fn stdio_input() -> Vec<u8> {
    let mut input = b"Hello, World\n\nMiXeD cAsE 123\n\xc3\xa9t\xc3\xa9 \xff\x00nul\n".to_vec();
    for i in 0..2500u32 {
        input.extend_from_slice(format!("line {i:04} of the Generated Block {}\n", i * 7919 % 1000).as_bytes());
    }
    input.extend_from_slice(b"final line without newline");
    input
}

conformance! {
    hello => Case {
        guest: "hello",
        args: &["7", "two words", ""],
        env: &[("SHOAL_GREETING", "ahoy")],
        stdin: NO_INPUT,
        status: 7,
    };
    exit_code => Case { status: 42, ..plain("exit_code") };
    crash_segv => Case { status: 139, ..plain("crash_segv") };
    crash_stack => Case { status: 139, ..plain("crash_stack") };
    crash_ill => Case { status: 132, ..plain("crash_ill") };
    crash_abort => Case { status: 134, ..plain("crash_abort") };
    stdio => Case { stdin: stdio_input, ..plain("stdio") };
    integer => plain("integer");
    fp => plain("fp");
    atomics => plain("atomics");
    threads => plain("threads");
    // 64 blocking threads on 2 workers: waits park vCPUs, they do not hold host threads.
    many_threads => Case { env: &[("SHOAL_WORKERS", "2")], ..plain("many_threads") };
    // A process waiting for a file lock its parent holds, on one worker: the wait parks.
    locks => Case { env: &[("SHOAL_WORKERS", "1")], ..plain("locks") };
    signals => plain("signals");
    fork_exec => plain("fork_exec");
    files => plain("files");
    memory => plain("memory");
    misc => plain("misc");
    sockets => plain("sockets");
    procfs => Case { args: &["an arg", ""], ..plain("procfs") };
    smc => plain("smc");
    timers => Case { status: 142, ..plain("timers") };
}

/// Whether the host kernel runs riscv64 ELF binaries itself (binfmt_misc). qemu-riscv64 passes
/// a guest's execve to the host kernel, so without this the oracle cannot re-execute a guest.
fn host_runs_riscv64() -> bool {
    const RISCV64_MAGIC: &str = "magic 7f454c460201010000000000000000000200f300";
    let Ok(entries) = std::fs::read_dir("/proc/sys/fs/binfmt_misc") else {
        return false;
    };
    entries.flatten().any(|entry| {
        std::fs::read_to_string(entry.path())
            .is_ok_and(|text| text.starts_with("enabled") && text.contains(RISCV64_MAGIC))
    })
}

/// Successful execve of the guest itself. qemu-riscv64 hands a guest's execve to the host
/// kernel, so it can be the oracle only where the host runs riscv64 binaries (binfmt_misc).
/// Elsewhere the oracle is the same C source built natively for the host: the guest prints only
/// architecture-independent facts, so native Linux must print what shoal prints.
#[test]
fn exec_self_static_linkage() {
    if host_runs_riscv64() {
        check(&Case { status: 33, ..plain("exec_self") }, Linkage::Static);
        return;
    }
    let Some(guests) = guests_dir() else { return };
    let native = Path::new(env!("CARGO_TARGET_TMPDIR")).join("exec_self-native");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/guests/exec_self.c");
    let built = std::process::Command::new("cc").arg("-O2").arg("-o").arg(&native).arg(&src).status();
    assert!(built.is_ok_and(|s| s.success()), "building exec_self natively with cc failed");
    let case = plain("exec_self");
    let (native_cwd, shoal_cwd) =
        (scratch("exec_self", Linkage::Static, "native"), scratch("exec_self", Linkage::Static, "shoal"));
    let run = |program, cwd| Run { program, args: case.args, sysroot: None, stdin: &[], cwd: Some(cwd), env: case.env };
    let oracle = common::run_native(&run(&native, &native_cwd));
    let shoal = run_shoal(&run(&guests.join("static/exec_self"), &shoal_cwd));
    assert_eq!(oracle.status, 33, "native exec_self exits 33; stderr:\n{}", String::from_utf8_lossy(&oracle.stderr));
    assert_same("exec_self (static, against a native build)", &oracle, &shoal);
}

/// The comparison itself must fail loudly and readably; these need no guest tools.
mod harness {
    use super::*;

    fn panic_message(f: impl FnOnce() + std::panic::UnwindSafe) -> String {
        let payload = std::panic::catch_unwind(f).expect_err("assert_same accepted a difference");
        match payload.downcast::<String>() {
            Ok(text) => *text,
            Err(payload) => payload.downcast_ref::<&str>().map(ToString::to_string).unwrap_or_default(),
        }
    }

    fn outcome(stdout: &str, status: i32) -> Outcome {
        Outcome { stdout: stdout.as_bytes().to_vec(), stderr: b"engine log line\n".to_vec(), status }
    }

    #[test]
    fn identical_outcomes_pass() {
        assert_same("same", &outcome("a\nb\n", 0), &outcome("a\nb\n", 0));
    }

    #[test]
    fn differing_line_is_shown_with_context() {
        let message = panic_message(|| {
            assert_same("lines", &outcome("one\ntwo\nthree\nfour\n", 0), &outcome("one\ntwo\nTHREE\nfour\n", 0));
        });
        assert!(message.contains("first difference at stdout line 3"), "{message}");
        assert!(message.contains(" two\n-three\n-four\n+THREE\n+four\n"), "{message}");
        assert!(message.contains("engine log line"), "{message}");
    }

    #[test]
    fn differing_status_alone_fails() {
        let message = panic_message(|| assert_same("status", &outcome("x\n", 139), &outcome("x\n", 0)));
        assert!(message.contains("qemu 139 / shoal 0"), "{message}");
        assert!(message.contains("(identical)"), "{message}");
    }

    #[test]
    fn missing_output_and_final_newline_are_visible() {
        let message = panic_message(|| assert_same("short", &outcome("a\nb", 0), &outcome("a\n", 0)));
        assert!(message.contains("-b\\ (no newline at end)"), "{message}");
        assert!(message.contains("+(end of output)"), "{message}");
    }

    /// Two real qemu runs of the same guest with different arguments must be told apart.
    #[test]
    fn real_runs_with_different_output_are_reported() {
        let Some(guests) = guests_dir() else { return };
        let program = guests.join("static").join("hello");
        let run = |args: &'static [&'static str]| {
            run_qemu(&Run { program: &program, args, sysroot: None, stdin: &[], cwd: None, env: &[] })
        };
        let (a, b) = (run(&["3"]), run(&["4"]));
        assert_eq!((a.status, b.status), (3, 4));
        let message = panic_message(|| assert_same("hello 3 vs 4", &a, &b));
        assert!(message.contains("-argv[1]=\"3\" len=1"), "{message}");
        assert!(message.contains("+argv[1]=\"4\" len=1"), "{message}");
    }
}
