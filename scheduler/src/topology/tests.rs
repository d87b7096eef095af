use super::*;

/// A fake sysfs tree in a fresh temporary directory, removed on drop.
struct FakeSysfs {
    root: PathBuf,
}

impl FakeSysfs {
    fn new(name: &str) -> FakeSysfs {
        let root = std::env::temp_dir().join(format!("shoal-sysfs-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(&root).unwrap();
        FakeSysfs { root }
    }

    fn write(&self, path: &str, contents: &str) {
        let path = self.root.join(path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, contents).unwrap();
    }

    /// The sysfs a Linux host with `nodes` nodes of `cores` cores of `threads` threads would
    /// show, numbered as `Topology::synthetic` numbers them, with L1d, L1i, L2 per core and one
    /// L3 per node.
    fn machine(name: &str, nodes: u32, cores: u32, threads: u32) -> FakeSysfs {
        let fake = FakeSysfs::new(name);
        let per_node = cores * threads;
        let n = nodes * per_node;
        fake.write("devices/system/cpu/online", &format!("0-{}\n", n - 1));
        for cpu in 0..n {
            let (node, core_first) = (cpu / per_node, cpu - cpu % threads);
            let dir = format!("devices/system/cpu/cpu{cpu}");
            fake.write(&format!("{dir}/topology/physical_package_id"), &format!("{node}\n"));
            let siblings = format!("{}-{}\n", core_first, core_first + threads - 1);
            fake.write(&format!("{dir}/topology/thread_siblings_list"), &siblings);
            let l3 = format!("{}-{}\n", node * per_node, node * per_node + per_node - 1);
            for (index, level, kind, shared) in [
                (0, 1, "Data", &siblings),
                (1, 1, "Instruction", &siblings),
                (2, 2, "Unified", &siblings),
                (3, 3, "Unified", &l3),
            ] {
                fake.write(&format!("{dir}/cache/index{index}/level"), &format!("{level}\n"));
                fake.write(&format!("{dir}/cache/index{index}/type"), &format!("{kind}\n"));
                fake.write(&format!("{dir}/cache/index{index}/shared_cpu_list"), shared);
            }
        }
        for node in 0..nodes {
            let cpus = format!("{}-{}\n", node * per_node, node * per_node + per_node - 1);
            fake.write(&format!("devices/system/node/node{node}/cpulist"), &cpus);
            let row: Vec<String> = (0..nodes)
                .map(|to| if to == node { 10 } else { 20 + 10 * (node.abs_diff(to) - 1) }.to_string())
                .collect();
            fake.write(&format!("devices/system/node/node{node}/distance"), &format!("{}\n", row.join(" ")));
        }
        fake
    }
}

impl Drop for FakeSysfs {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.root);
    }
}

#[test]
fn cpu_lists_parse_as_the_kernel_writes_them() {
    assert_eq!(parse_list("0-3,8,10-11\n").unwrap(), BTreeSet::from([0, 1, 2, 3, 8, 10, 11]));
    assert_eq!(parse_list("5").unwrap(), BTreeSet::from([5]));
    assert_eq!(parse_list("\n").unwrap(), BTreeSet::new());
    assert!(parse_list("3-1").is_err());
    assert!(parse_list("0-x").is_err());
    assert!(parse_list("0-4000000000").is_err());
    assert_eq!(format_list(&[0, 1, 2, 3, 8, 10, 11]), "0-3,8,10-11");
}

#[test]
fn a_two_node_smt_machine_reads_as_the_synthetic_one() {
    let fake = FakeSysfs::machine("2x2x2", 2, 2, 2);
    let read = Topology::from_sysfs(&fake.root, None);
    assert!(read.warnings.is_empty(), "{:?}", read.warnings);
    let made = Topology::synthetic(2, 2, 2);
    assert_eq!(read.cpus, made.cpus);
    assert_eq!(read.nodes, made.nodes);
    assert_eq!((read.cpus.len(), read.cores(), read.caches(), read.nodes.len()), (8, 4, 2, 2));
}

#[test]
fn workers_steal_from_siblings_then_their_cache_then_remote_nodes_by_distance() {
    let t = Topology::synthetic(3, 2, 2);
    let order = t.steal_order(0);
    let expect = [
        (1, Distance::Sibling),
        (2, Distance::Cache),
        (3, Distance::Cache),
        (4, Distance::Remote(20)),
        (5, Distance::Remote(20)),
        (6, Distance::Remote(20)),
        (7, Distance::Remote(20)),
        (8, Distance::Remote(30)),
        (9, Distance::Remote(30)),
        (10, Distance::Remote(30)),
        (11, Distance::Remote(30)),
    ];
    assert_eq!(order, expect);
    // The middle node is 20 from both others.
    assert!(
        t.steal_order(4)
            .iter()
            .filter(|(_, d)| matches!(d, Distance::Remote(_)))
            .all(|(_, d)| *d == Distance::Remote(20))
    );
    assert!(t.steal_order(99).is_empty());
}

#[test]
fn a_node_without_a_shared_cache_still_orders_by_node() {
    // Two cores per node, each with its own L3: same node, different cache.
    let fake = FakeSysfs::machine("own-l3", 1, 2, 1);
    fake.write("devices/system/cpu/cpu0/cache/index3/shared_cpu_list", "0\n");
    fake.write("devices/system/cpu/cpu1/cache/index3/shared_cpu_list", "1\n");
    let t = Topology::from_sysfs(&fake.root, None);
    assert_eq!(t.steal_order(0), [(1, Distance::Node)]);
}

#[test]
fn the_affinity_mask_restricts_the_cpus() {
    let fake = FakeSysfs::machine("mask", 2, 2, 2);
    let t = Topology::from_sysfs(&fake.root, Some(&BTreeSet::from([1, 6, 42])));
    assert_eq!(t.cpus.iter().map(|c| c.id).collect::<Vec<_>>(), [1, 6]);
    assert_eq!(t.nodes.len(), 2);
    assert_eq!(t.nodes[0].cpus, [1]);
    assert_eq!(t.steal_order(1), [(6, Distance::Remote(20))]);
}

#[test]
fn no_sysfs_gives_a_flat_topology_with_a_warning() {
    let fake = FakeSysfs::new("empty");
    let t = Topology::from_sysfs(&fake.root, Some(&BTreeSet::from([0, 1, 2])));
    assert_eq!(t.source, "flat");
    assert_eq!(t.warnings.len(), 1, "{:?}", t.warnings);
    assert!(t.warnings[0].contains("flat"));
    assert_eq!((t.cpus.len(), t.cores(), t.caches(), t.nodes.len()), (3, 3, 3, 1));
    assert_eq!(t.steal_order(0), [(1, Distance::Node), (2, Distance::Node)]);
}

#[test]
fn missing_and_malformed_files_are_warned_about_and_assumed() {
    let fake = FakeSysfs::machine("odd", 2, 1, 2);
    fs::remove_dir_all(fake.root.join("devices/system/cpu/cpu3/cache")).unwrap();
    fake.write("devices/system/cpu/cpu2/topology/thread_siblings_list", "garbage\n");
    fake.write("devices/system/node/node1/distance", "10 20 30\n");
    let t = Topology::from_sysfs(&fake.root, None);
    assert_eq!(t.source, "sysfs");
    let all = t.warnings.join("\n");
    assert!(all.contains("cpu3: no last-level cache"), "{all}");
    assert!(all.contains("cpu2: no SMT siblings"), "{all}");
    assert!(all.contains("node1: malformed distance row"), "{all}");
    // cpu2 is its own core now and cpu3 its own cache; cpu3's own siblings file still names
    // cpu2, and both are on node 1.
    assert_eq!(t.cpu(2).unwrap().core, 2);
    assert_eq!(t.cpu(3).unwrap().cache, 3);
    assert_eq!(t.distance(t.cpu(3).unwrap(), t.cpu(2).unwrap()), Distance::Sibling);
    assert_eq!(t.cpu(3).unwrap().node, 1);
    // node0's row still gives 20 to node1.
    assert_eq!(t.distance(t.cpu(0).unwrap(), t.cpu(2).unwrap()), Distance::Remote(20));
}

#[test]
fn an_empty_affinity_intersection_is_flat_not_empty() {
    let fake = FakeSysfs::machine("disjoint", 1, 2, 1);
    let t = Topology::from_sysfs(&fake.root, Some(&BTreeSet::from([7])));
    assert_eq!(t.source, "flat");
    assert_eq!(t.cpus.len(), 1);
}

#[test]
fn this_host_has_a_topology() {
    let t = Topology::detect();
    assert!(!t.cpus.is_empty());
    assert!(t.cpus.windows(2).all(|w| w[0].id < w[1].id));
    if let Some(mask) = affinity() {
        assert!(t.cpus.iter().all(|c| mask.contains(&c.id)));
    }
    let text = t.to_string();
    assert!(text.contains("CPUs"), "{text}");
}

/// hwloc and sysfs describe this host alike: the same CPUs, cores, caches and nodes, and so the
/// same steal order.
#[cfg(feature = "hwloc")]
#[test]
fn hwloc_and_sysfs_agree_on_this_host() {
    let allowed = affinity();
    let sysfs = Topology::from_sysfs(Path::new("/sys"), allowed.as_ref());
    let hwloc = Topology::from_hwloc(allowed.as_ref()).expect("hwloc reads this host");
    assert_eq!(hwloc.source, "hwloc");
    assert_eq!(Topology::detect().source, "hwloc");
    if sysfs.source != "sysfs" {
        eprintln!("sysfs is incomplete here ({:?}); comparing CPU numbers only", sysfs.warnings);
        let ids = |t: &Topology| t.cpus.iter().map(|c| c.id).collect::<Vec<_>>();
        assert_eq!(ids(&hwloc), ids(&sysfs));
        return;
    }
    assert_eq!(hwloc.cpus, sysfs.cpus, "hwloc: {hwloc}\nsysfs: {sysfs}");
    assert_eq!(
        hwloc.nodes.iter().map(|n| (n.id, &n.cpus)).collect::<Vec<_>>(),
        sysfs.nodes.iter().map(|n| (n.id, &n.cpus)).collect::<Vec<_>>()
    );
    for c in &sysfs.cpus {
        assert_eq!(hwloc.steal_order(c.id), sysfs.steal_order(c.id));
    }
}
