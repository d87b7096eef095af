//! `shoal run --root DIR` confines a guest to DIR: no path, `..`, absolute symlink or magic link
//! reaches a file outside it, for reading or writing.
//!
//! The test builds a root holding the `escape` guest (tests/guests/escape.c) and symlinks that
//! point out of it, puts a secret file and a marker directory beside the root, runs the guest
//! confined, and checks every attempt it reports was blocked and nothing was created outside.
//! It also listens on a host AF_UNIX path and an abstract name that the guest tries to connect
//! to: a confined guest has no network and no host socket namespace, only socketpair.

#[expect(dead_code, reason = "each test binary uses part of the shared harness")]
mod common;

use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener};
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
    let host_sock = base.join("host.sock");
    let listener = UnixListener::bind(&host_sock).unwrap();
    listener.set_nonblocking(true).unwrap();
    let abstract_name = format!("shoal-confinement-{}", std::process::id());
    let abstract_addr = SocketAddr::from_abstract_name(abstract_name.as_bytes()).unwrap();
    let abstract_listener = UnixListener::bind_addr(&abstract_addr).unwrap();
    abstract_listener.set_nonblocking(true).unwrap();

    let out = Command::new(common::shoal())
        .args(["run", "--root"])
        .arg(&root)
        .arg("/escape")
        .arg(&host_sock)
        .arg(&abstract_name)
        .env_clear()
        .output()
        .expect("run shoal");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "escape guest failed: {}\n{stdout}\n{stderr}", out.status);
    let (pair, lines): (Vec<&str>, Vec<&str>) = stdout.lines().partition(|l| l.starts_with("socketpair"));
    assert_eq!(pair, ["socketpair round trip: ok"], "socketpair must work confined:\n{stdout}\n{stderr}");
    assert_eq!(lines.len(), 21, "the guest reported a different number of attempts:\n{stdout}\n{stderr}");
    for line in &lines {
        assert!(line.ends_with("blocked"), "confinement broken: {line}\n\nfull report:\n{stdout}");
    }
    assert!(!base.join("planted.txt").exists(), "the guest created a file outside its root");
    assert!(!base.join("moved-link").exists(), "the guest renamed a file out of its root");
    for (what, l) in [("path", &listener), ("abstract", &abstract_listener)] {
        let err = l.accept().expect_err("a confined guest connected to a host socket");
        assert_eq!(err.kind(), std::io::ErrorKind::WouldBlock, "{what} listener: {err}");
    }
    assert!(!root.join("made.sock").exists(), "the guest bound an AF_UNIX path in its root");
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
