//! `shoal run --root DIR` confines a guest to DIR: no path, `..`, absolute symlink or magic link
//! reaches a file outside it, for reading or writing.
//!
//! The test builds a root holding the `escape` guest (tests/guests/escape.c) and symlinks that
//! point out of it, puts a secret file and a marker directory beside the root, runs the guest
//! confined, and checks every attempt it reports was blocked and nothing was created outside.

#[expect(dead_code, reason = "each test binary uses part of the shared harness")]
mod common;

use std::path::Path;
use std::process::Command;

#[test]
fn guest_cannot_leave_its_root() {
    let Some(guests) = common::built_guests() else { return };
    let base = Path::new(env!("CARGO_TARGET_TMPDIR")).join("confinement");
    let _ = std::fs::remove_dir_all(&base);
    let root = base.join("root");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(base.join("secret.txt"), "TOP-SECRET\n").unwrap();
    std::fs::copy(guests.join("static/escape"), root.join("escape")).unwrap();
    std::os::unix::fs::symlink("..", root.join("up")).unwrap();
    std::os::unix::fs::symlink(&base, root.join("abs")).unwrap();
    std::os::unix::fs::symlink("/etc", root.join("etc-link")).unwrap();

    let out = Command::new(common::shoal())
        .args(["run", "--root"])
        .arg(&root)
        .arg("/escape")
        .env_clear()
        .output()
        .expect("run shoal");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "escape guest failed: {}\n{stdout}\n{stderr}", out.status);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 16, "the guest reported a different number of attempts:\n{stdout}\n{stderr}");
    for line in &lines {
        assert!(line.ends_with("blocked"), "confinement broken: {line}\n\nfull report:\n{stdout}");
    }
    assert!(!base.join("planted.txt").exists(), "the guest created a file outside its root");
    assert!(!base.join("moved-link").exists(), "the guest renamed a file out of its root");
    assert!(root.join("planted.txt").exists(), "`..` at the root should have stayed at the root");
}

#[test]
fn root_must_exist() {
    let out = Command::new(common::shoal())
        .args(["run", "--root", "/nonexistent/shoal-root", "/prog"])
        .output()
        .expect("run shoal");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/shoal-root"), "{err}");
}
