//! What `shoal run --stats` reports, from the outside.

#[expect(dead_code, reason = "each test binary uses part of the shared harness")]
mod common;

use std::path::Path;
use std::process::Command;

use common::{built_guests, shoal};

/// The share of guest instructions the interpreter ran, from a `--stats` line.
fn interpreted_share(stats: &str) -> f64 {
    let head = stats.strip_suffix("% interpreted").unwrap_or_else(|| panic!("no interpreted share in: {stats}"));
    head.rsplit(' ').next().and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("no share in: {stats}"))
}

/// A guest that replaces its program (`exec_self` ends in an execve) under the interpreter alone:
/// every instruction, before the execve as after it, counts as interpreted.
#[test]
fn the_interpreter_alone_runs_every_instruction_of_a_guest_that_execs() {
    let Some(guests) = built_guests() else { return };
    let cwd = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("stats-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&cwd);
    std::fs::create_dir_all(&cwd).unwrap();
    let out = Command::new(shoal())
        .args(["run", "--engine", "interp", "--stats"])
        .arg(guests.join("static/exec_self"))
        .current_dir(&cwd)
        .output()
        .expect("run shoal");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(33), "exec_self exits 33 after its final execve; stderr:\n{stderr}");
    let stats = stderr.lines().find(|l| l.starts_with("shoal: ")).expect("a --stats line");
    assert_eq!(interpreted_share(stats), 100.0, "{stats}");
    let _ = std::fs::remove_dir_all(&cwd);
}
