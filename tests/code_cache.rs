//! The persistent code cache from the outside: a second run of a program loads its regions
//! instead of compiling them, and damaged or mismatched cache files are rejected and recompiled,
//! never run.

#[expect(dead_code, reason = "each test binary uses part of the shared harness")]
mod common;

use std::path::Path;
use std::process::Command;

use common::{built_guests, shoal};

/// Runs the `integer` guest with every region compiled (`--engine jit`) against cache `dir`;
/// returns (stdout, the `--stats` line, stderr).
fn run(dir: &Path) -> (Vec<u8>, String, String) {
    let guests = built_guests().expect("riscv64 guests");
    let out = Command::new(shoal())
        .args(["run", "--engine", "jit", "--stats", "--code-cache"])
        .arg(dir)
        .arg(guests.join("static/integer"))
        .output()
        .expect("run shoal");
    assert!(out.status.success(), "shoal failed: {}", String::from_utf8_lossy(&out.stderr));
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let stats = stderr.lines().find(|l| l.starts_with("shoal: ")).expect("a --stats line").to_owned();
    (out.stdout, stats, stderr)
}

/// (regions compiled, regions loaded) from a `--stats` line.
fn counts(stats: &str) -> (u64, u64) {
    let number_before = |what: &str| -> u64 {
        let head = &stats[..stats.find(what).expect(what)];
        head.rsplit(' ').next().and_then(|n| n.parse().ok()).expect("a count")
    };
    (number_before(" regions compiled"), number_before(" loaded from the code cache"))
}

fn objects(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for shard in std::fs::read_dir(dir).unwrap().flatten() {
        if shard.path().is_dir() {
            files.extend(std::fs::read_dir(shard.path()).unwrap().flatten().map(|e| e.path()));
        }
    }
    files.sort();
    files
}

#[test]
fn a_warm_cache_compiles_nothing_and_damaged_objects_are_recompiled() {
    if built_guests().is_none() {
        return;
    }
    let dir = tempdir();
    let (cold_out, cold, _) = run(&dir);
    let (compiled, loaded) = counts(&cold);
    assert!(compiled > 0 && loaded == 0, "cold run: {cold}");
    let files = objects(&dir);
    assert_eq!(files.len() as u64, compiled, "one object per compiled region");

    let (warm_out, warm, _) = run(&dir);
    assert_eq!(warm_out, cold_out);
    assert_eq!(counts(&warm), (0, compiled), "warm run: {warm}");

    // Flip one bit in every object's code and swap two objects' contents (a key mismatch).
    for f in &files[2..] {
        let mut bytes = std::fs::read(f).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0x10;
        std::fs::write(f, bytes).unwrap();
    }
    let (a, b) = (std::fs::read(&files[0]).unwrap(), std::fs::read(&files[1]).unwrap());
    std::fs::write(&files[0], b).unwrap();
    std::fs::write(&files[1], a).unwrap();
    let (damaged_out, damaged, stderr) = run(&dir);
    assert_eq!(damaged_out, cold_out, "damaged cache files must never run");
    assert_eq!(counts(&damaged), (compiled, 0), "every damaged object recompiled: {damaged}\n{stderr}");
    assert!(stderr.contains("bad code cache file"), "each rejection is logged: {stderr}");

    let (_, again, _) = run(&dir);
    assert_eq!(counts(&again), (0, compiled), "rewritten objects load again: {again}");
    std::fs::remove_dir_all(&dir).unwrap();
}

fn tempdir() -> std::path::PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("code-cache-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
