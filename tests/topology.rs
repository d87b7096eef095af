//! `shoal topology` describes the CPUs this process may use, as a table or as JSON.

use std::process::Command;

fn shoal_topology(args: &[&str]) -> (String, String, Option<i32>) {
    let out = Command::new(env!("CARGO_BIN_EXE_shoal")).arg("topology").args(args).output().expect("run shoal");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.code(),
    )
}

#[test]
fn topology_json_lists_every_allowed_cpu_once_with_its_node() {
    let (stdout, stderr, code) = shoal_topology(&["--json"]);
    assert_eq!(code, Some(0), "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).expect("one JSON object");
    let cpus = v["cpus"].as_array().expect("a cpus array");
    assert!(!cpus.is_empty());
    let ids: Vec<u64> = cpus.iter().map(|c| c["id"].as_u64().expect("a cpu id")).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ascending, no repeats: {ids:?}");
    let nodes = v["nodes"].as_array().expect("a nodes array");
    let in_nodes: usize = nodes.iter().map(|n| n["cpus"].as_array().expect("node cpus").len()).sum();
    assert_eq!(in_nodes, cpus.len(), "every CPU is on exactly one node");
    // Whatever sysfs said, a fallback is announced on stderr, never silent.
    if v["source"] == "flat" {
        assert!(stderr.contains("topology:"), "{stderr}");
    }
}

#[test]
fn topology_table_has_a_row_per_cpu() {
    let (stdout, stderr, code) = shoal_topology(&[]);
    assert_eq!(code, Some(0), "{stderr}");
    let first = stdout.lines().next().unwrap_or_default();
    let n: usize = first.split_whitespace().next().and_then(|w| w.parse().ok()).expect("a CPU count first");
    let rows = stdout.lines().skip(2).take_while(|l| !l.starts_with("node")).count();
    assert_eq!(rows, n, "{stdout}");
}
