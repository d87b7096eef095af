//! `shoal loadtest --local` from the outside: a workload mix runs on an in-process node, every
//! guest is counted with its status (exit code, signal, timeout, start error), a hanging guest is
//! killed at its timeout while the others go on, a CPU hog does not starve interactive guests,
//! and a bad spec is refused with its line and field.

#[expect(dead_code, reason = "each test binary uses part of the shared harness")]
mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{built_guests, shoal};

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("loadtest").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// Runs `shoal loadtest --local --json SPEC ARGS`; returns (exit code, the summary, stderr).
fn loadtest(name: &str, spec: &str, args: &[&str]) -> (Option<i32>, serde_json::Value, String) {
    let path = scratch(name).join("spec.toml");
    std::fs::write(&path, spec).expect("write spec");
    let out = Command::new(shoal())
        .args(["loadtest", "--local", "--json", "--no-code-cache"])
        .args(args)
        .arg(&path)
        .output()
        .expect("run shoal");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let summary = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    (out.status.code(), summary, stderr)
}

fn loadgen() -> Option<String> {
    Some(built_guests()?.join("static/loadgen").to_str().expect("UTF-8 path").to_owned())
}

#[test]
fn every_guest_is_counted_with_its_status() {
    let Some(loadgen) = loadgen() else { return };
    let spec = format!(
        r#"
[[workload]]
name = "ok"
program = "{loadgen}"
args = ["work", "10"]
count = 200
concurrency = 16

[[workload]]
name = "exit3"
program = "{loadgen}"
args = ["exit", "3"]
count = 5
rate = 200

[[workload]]
name = "segv"
program = "{segv}"
count = 4

[[workload]]
name = "hang"
program = "{loadgen}"
args = ["spin"]
count = 2
timeout_s = 0.3

[[workload]]
name = "missing"
program = "does/not/exist"
count = 1

[[workload]]
name = "oom"
program = "{loadgen}"
args = ["alloc", "64"]
count = 3
memory_mb = 24

[[workload]]
name = "fits"
program = "{loadgen}"
args = ["alloc", "4"]
count = 2
memory_mb = 24
"#,
        segv = built_guests().expect("guests").join("static/crash_segv").display()
    );
    let (code, s, stderr) = loadtest("statuses", &spec, &["--workers", "2"]);
    assert_eq!(code, Some(1), "some guests failed: {stderr}");
    assert_eq!(s["completed"], 202, "{s:#}");
    assert_eq!(s["failed"], 15, "{s:#}");
    assert_eq!(s["workers"], 2);
    for field in ["duration_s", "guests_per_sec", "max_runnable_wait_ms", "cpu_utilization"] {
        assert!(s[field].as_f64().is_some_and(|v| v >= 0.0), "{field}: {s:#}");
    }
    assert!(s["steals"].as_u64().is_some(), "{s:#}");
    for p in ["p50", "p95", "p99", "max"] {
        assert!(s["latency_ms"][p].as_f64().is_some_and(|v| v > 0.0), "{p}: {s:#}");
    }
    let by_name = |n: &str| s["workloads"].as_array().unwrap().iter().find(|w| w["name"] == n).unwrap().clone();
    assert_eq!(by_name("ok")["statuses"]["exit 0"], 200);
    assert_eq!(by_name("exit3")["statuses"]["exit 3"], 5);
    assert_eq!(by_name("segv")["statuses"]["signal 11"], 4);
    assert_eq!(by_name("hang")["statuses"]["timeout"], 2);
    let missing = by_name("missing");
    let status = missing["statuses"].as_object().unwrap().keys().next().unwrap().clone();
    assert!(status.starts_with("start error:") && status.contains("No such file"), "{status}");
    assert_eq!(by_name("oom")["statuses"]["memory limit (exit 1)"], 3, "{s:#}");
    assert_eq!(by_name("fits")["statuses"]["exit 0"], 2, "{s:#}");
}

#[test]
fn a_cpu_hog_does_not_starve_interactive_guests() {
    let Some(loadgen) = loadgen() else { return };
    // Three hogs that never yield on their own and a weight-4 hog, against guests that sleep a
    // millisecond at a time, on one worker: every wait for the worker is bounded by a round of
    // the others' slices.
    let spec = format!(
        r#"
timeout_s = 1.5

[[workload]]
name = "hog"
program = "{loadgen}"
args = ["spin"]
count = 3

[[workload]]
name = "heavy"
program = "{loadgen}"
args = ["spin"]
count = 1
weight = 4

[[workload]]
name = "interactive"
program = "{loadgen}"
args = ["ticks", "50", "1"]
count = 8
"#
    );
    let (_, s, stderr) = loadtest("fairness", &spec, &["--workers", "1"]);
    let by_name = |n: &str| s["workloads"].as_array().unwrap().iter().find(|w| w["name"] == n).unwrap().clone();
    assert_eq!(by_name("interactive")["statuses"]["exit 0"], 8, "{s:#}\n{stderr}");
    assert_eq!(by_name("hog")["statuses"]["timeout"], 3, "{s:#}");
    // 3 hogs × 2 ms + 8 ms for the heavy one + the interactive guests' own turns: tens of
    // milliseconds. The bound is loose for shared machines; a starved guest would wait for the
    // whole 1.5 s.
    let wait = s["max_runnable_wait_ms"].as_f64().unwrap();
    assert!(wait < 500.0, "max runnable wait {wait} ms: {s:#}");
}

#[test]
fn a_bad_spec_names_its_line_and_field_and_exits_2() {
    let cases = [
        ("[[workload]]\nprogram = \"p\"\ncount = \"many\"\n", ":3: workload[0].count: invalid type"),
        ("[[workload]]\nprogram = \"p\"\ncount = 1\nrate = 0\n", ":4: workload[0].rate: must be a positive"),
        ("[[workload]]\nprogram = \"p\"\ncount = 1\nspeed = 2\n", ":4: workload[0].speed: unknown field"),
        ("[[workload]]\nprogram = \"p\"\ncount = 1\nmemory_mb = 0\n", ":4: workload[0].memory_mb: must be at least 1"),
    ];
    for (i, (spec, want)) in cases.iter().enumerate() {
        let (code, _, stderr) = loadtest(&format!("bad{i}"), spec, &[]);
        assert_eq!(code, Some(2), "{spec:?}: {stderr}");
        assert!(stderr.contains(want), "{spec:?}: {stderr}");
    }
    let out = Command::new(shoal()).args(["loadtest", "/nonexistent/spec.toml", "--local"]).output().expect("run");
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn shoal_run_caps_guest_memory_and_says_so() {
    let Some(loadgen) = loadgen() else { return };
    let run = |memory: &str, mb: &str| {
        let out = Command::new(shoal())
            .args(["run", "--no-code-cache", "--memory", memory, &loadgen, "alloc", mb])
            .output()
            .expect("run shoal");
        (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let (code, stderr) = run("24M", "64");
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("loadgen: out of memory after"), "malloc saw ENOMEM: {stderr}");
    assert!(stderr.contains("shoal: the guest reached its memory limit (25165824 bytes)"), "{stderr}");
    let (code, stderr) = run("24M", "4");
    assert_eq!(code, Some(0), "{stderr}");
    let (code, stderr) = run("64K", "4");
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("memory limit (65536 bytes) is reached"), "{stderr}");
}
