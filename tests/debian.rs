//! Differential test on real Debian riscv64 programs (busybox, lua5.4, sqlite3, coreutils).
//!
//! `scripts/sysroot.sh` builds (once; it is cached) a Debian trixie riscv64 sysroot. Every case in
//! `tests/debian/cases.txt` (format at the top of that file) then runs under
//! `qemu-riscv64 -L SYSROOT` and under `shoal run -L SYSROOT` with the same arguments, standard
//! input, working directory and environment; the stdout bytes and the exit status must match.
//! All cases run, and the test fails at the end naming every case that differed.
//!
//! A case's program is a guest path (`/usr/bin/lua5.4`). qemu-user opens the program itself on
//! the host, without applying `-L`, so both runners are given the file inside the sysroot;
//! everything the program opens afterwards (its interpreter, libraries, data files) resolves
//! through `-L`.
//!
//! qemu-user also hands a guest's `execve` to the host kernel, which then runs the host's program
//! of that name (or fails). A case that execs would therefore compare shoal with the host, not
//! with qemu, so each case also runs once under qemu with `QEMU_STRACE` and must show no execve.

#[expect(dead_code, reason = "each test binary uses part of the shared harness")]
mod common;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::{Outcome, Run};

/// The environment every case runs with, under both runners.
const ENV: &[(&str, &str)] =
    &[("LC_ALL", "C"), ("TZ", "UTC0"), ("PATH", "/usr/bin:/bin"), ("SHOAL_TEST_SUITE", "debian")];

/// One line of the manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Case {
    name: String,
    /// File fed to standard input, relative to the cases directory; `None` for empty input.
    stdin: Option<String>,
    /// Absolute guest path of the program.
    program: String,
    args: Vec<String>,
}

/// Parses `cases.txt`; `cases_dir` replaces the `@CASES@` placeholder in arguments. Panics with
/// the line number on a malformed line.
fn parse_manifest(text: &str, cases_dir: &str) -> Vec<Case> {
    let mut cases: Vec<Case> = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let at = index + 1;
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split('\t').collect();
        assert!(fields.len() >= 3, "cases.txt:{at}: expected NAME<TAB>STDIN<TAB>PROGRAM[<TAB>ARG]..., got {line:?}");
        assert!(fields.iter().all(|field| !field.is_empty()), "cases.txt:{at}: empty field (two TABs in a row?)");
        let name = fields[0];
        assert!(
            name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'),
            "cases.txt:{at}: case name {name:?} must be letters, digits and '-'"
        );
        assert!(cases.iter().all(|case| case.name != name), "cases.txt:{at}: duplicate case name {name:?}");
        assert!(fields[2].starts_with('/'), "cases.txt:{at}: program {:?} must be an absolute guest path", fields[2]);
        cases.push(Case {
            name: name.to_owned(),
            stdin: (fields[1] != "-").then(|| fields[1].to_owned()),
            program: fields[2].to_owned(),
            args: fields[3..].iter().map(|arg| arg.replace("@CASES@", cases_dir)).collect(),
        });
    }
    cases
}

fn cases_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/debian")
}

/// Skips (loudly) without CI, fails with CI.
fn skip_or_fail(why: &str) {
    assert!(std::env::var_os("CI").is_none(), "{why} (CI is set)");
    eprintln!("SKIPPED: {why}");
}

/// Builds the sysroot with `scripts/sysroot.sh` (a no-op when its stamp is current) and returns
/// its path, or `None` after [`skip_or_fail`].
fn sysroot() -> Option<PathBuf> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/sysroot.sh");
    let output = Command::new("bash").arg(&script).stdin(Stdio::null()).stderr(Stdio::inherit()).output();
    match output {
        Ok(output) if output.status.success() => {
            let stdout = String::from_utf8_lossy(&output.stdout);
            let path = stdout.lines().last().unwrap_or_default().trim();
            if Path::new(path).join("usr/bin").is_dir() {
                return Some(PathBuf::from(path));
            }
            skip_or_fail(&format!("{} printed no usable sysroot path", script.display()));
        }
        Ok(output) => skip_or_fail(&format!(
            "cannot build the Debian sysroot: {} exited with {}",
            script.display(),
            output.status
        )),
        Err(e) => skip_or_fail(&format!("cannot run {}: {e}", script.display())),
    }
    None
}

/// Runs one case under both runners. Returns why it failed, if it did.
fn check(case: &Case, sysroot: &Path, dir: &Path) -> Result<(), String> {
    let stdin = match &case.stdin {
        Some(file) => std::fs::read(dir.join(file)).map_err(|e| format!("reading stdin file {file}: {e}"))?,
        None => Vec::new(),
    };
    let program = sysroot.join(case.program.trim_start_matches('/'));
    let args: Vec<&str> = case.args.iter().map(String::as_str).collect();
    let run = Run { program: &program, args: &args, sysroot: Some(sysroot), stdin: &stdin, cwd: Some(dir), env: ENV };

    let traced_env: Vec<(&str, &str)> = ENV.iter().copied().chain([("QEMU_STRACE", "1")]).collect();
    let traced = common::run_qemu(&Run { env: &traced_env, ..run });
    if String::from_utf8_lossy(&traced.stderr).contains("execve(") {
        return Err("it execs a program, which qemu-riscv64 would run on the host".to_owned());
    }

    let qemu: Outcome = common::run_qemu(&run);
    let shoal: Outcome = common::run_shoal(&run);
    // assert_same panics with the details (printed above by the panic hook); keep going so that
    // every failing case is reported.
    catch_unwind(AssertUnwindSafe(|| common::assert_same(&case.name, &qemu, &shoal))).map_err(|_| {
        format!(
            "status qemu {} shoal {}; stdout qemu {} bytes shoal {} bytes",
            qemu.status,
            shoal.status,
            qemu.stdout.len(),
            shoal.stdout.len()
        )
    })
}

#[test]
fn debian_programs_match_qemu() {
    if !common::require_tool("qemu-riscv64") {
        return;
    }
    let Some(sysroot) = sysroot() else {
        return;
    };
    let dir = cases_dir();
    let manifest = dir.join("cases.txt");
    let text = std::fs::read_to_string(&manifest).unwrap_or_else(|e| panic!("reading {}: {e}", manifest.display()));
    let cases = parse_manifest(&text, &dir.to_string_lossy());
    assert!(!cases.is_empty(), "{} lists no cases", manifest.display());

    // Cases are independent processes; run them on every core, each worker taking the next.
    let next = AtomicUsize::new(0);
    let failures = Mutex::new(Vec::new());
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                while let Some(case) = cases.get(next.fetch_add(1, Ordering::Relaxed)) {
                    if let Err(why) = check(case, &sysroot, &dir) {
                        eprintln!("FAILED {}: {why}", case.name);
                        failures.lock().expect("no worker panics holding the lock").push(case.name.clone());
                    }
                }
            });
        }
    });

    let mut failures = failures.into_inner().expect("no worker panics holding the lock");
    failures.sort();
    assert!(
        failures.is_empty(),
        "{} of {} Debian cases failed (each is reported above): {}",
        failures.len(),
        cases.len(),
        failures.join(", ")
    );
}

#[test]
fn manifest_parses() {
    let text = "# comment\n\nsh-c\t-\t/usr/bin/busybox\tsh\t-c\techo a b\n\
                lua\tdata/in.txt\t/usr/bin/lua5.4\t@CASES@/lua/x.lua\n";
    let cases = parse_manifest(text, "/cases");
    assert_eq!(
        cases,
        [
            Case {
                name: "sh-c".to_owned(),
                stdin: None,
                program: "/usr/bin/busybox".to_owned(),
                args: vec!["sh".to_owned(), "-c".to_owned(), "echo a b".to_owned()],
            },
            Case {
                name: "lua".to_owned(),
                stdin: Some("data/in.txt".to_owned()),
                program: "/usr/bin/lua5.4".to_owned(),
                args: vec!["/cases/lua/x.lua".to_owned()],
            },
        ]
    );
    let real = std::fs::read_to_string(cases_dir().join("cases.txt")).expect("cases.txt is readable");
    assert!(parse_manifest(&real, "/cases").len() >= 40);
}

#[test]
#[should_panic(expected = "duplicate case name")]
fn manifest_rejects_duplicates() {
    parse_manifest("a\t-\t/usr/bin/true\na\t-\t/usr/bin/false\n", "/cases");
}
