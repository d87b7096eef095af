//! CPU and NUMA topology: which CPUs this process may run on, and how close they are.
//!
//! Workers steal work from the nearest workers first (an SMT sibling, then a CPU sharing the
//! last-level cache, then one on the same NUMA node, then remote nodes by the firmware's distance),
//! so the topology answers one question above all: [`Topology::steal_order`].
//!
//! By default it is read from Linux sysfs (`/sys/devices/system/{cpu,node}`), which needs no system
//! library, restricted to the process's affinity mask; built with the `hwloc` feature, it is read
//! through the hwloc library instead (sysfs remains the fallback). Where sysfs is missing or says something
//! odd (containers, other kernels), the topology degrades to a flat one (every allowed CPU its own
//! core, one cache, one node) and says why in [`Topology::warnings`]. Tests and the simulator
//! build topologies with [`Topology::synthetic`] or from a fake sysfs tree.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

/// NUMA distance of a node to itself, as Linux reports it.
const LOCAL_DISTANCE: u32 = 10;
/// NUMA distance assumed between two nodes when the firmware table says nothing.
const REMOTE_DISTANCE: u32 = 20;

/// One CPU the process may run on.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Cpu {
    /// The kernel's CPU number.
    pub id: u32,
    /// The physical core: the lowest CPU number among its SMT siblings.
    pub core: u32,
    /// The last-level cache: the lowest CPU number among the CPUs sharing it.
    pub cache: u32,
    /// The NUMA node.
    pub node: u32,
    /// The physical package (socket).
    pub package: u32,
}

/// One NUMA node with at least one allowed CPU.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Node {
    pub id: u32,
    /// Its allowed CPUs, ascending.
    pub cpus: Vec<u32>,
    /// Distance to every node in the topology, by node id (10 is local).
    pub distances: BTreeMap<u32, u32>,
}

/// How far another CPU is from a worker's CPU, nearest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Distance {
    /// The same physical core (an SMT sibling).
    Sibling,
    /// Shares the last-level cache.
    Cache,
    /// The same NUMA node.
    Node,
    /// Another NUMA node, at this firmware distance.
    Remote(u32),
}

impl fmt::Display for Distance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Distance::Sibling => f.write_str("sibling"),
            Distance::Cache => f.write_str("cache"),
            Distance::Node => f.write_str("node"),
            Distance::Remote(d) => write!(f, "remote({d})"),
        }
    }
}

/// The CPUs a node's workers run on and how close they are.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Topology {
    /// Where the topology came from: `sysfs`, `hwloc`, `flat` or `synthetic`.
    pub source: &'static str,
    /// Allowed CPUs, ascending by id.
    pub cpus: Vec<Cpu>,
    /// NUMA nodes with allowed CPUs, ascending by id.
    pub nodes: Vec<Node>,
    /// What was odd about the host's description, and what was assumed instead.
    pub warnings: Vec<String>,
}

impl Topology {
    /// The topology of this host, restricted to the CPUs this process may run on.
    pub fn detect() -> Topology {
        let allowed = affinity();
        #[cfg(feature = "hwloc")]
        let topology = Topology::from_hwloc(allowed.as_ref()).unwrap_or_else(|why| {
            let mut topology = Topology::from_sysfs(Path::new("/sys"), allowed.as_ref());
            topology.warnings.push(format!("{why}; read sysfs instead"));
            topology
        });
        #[cfg(not(feature = "hwloc"))]
        let topology = Topology::from_sysfs(Path::new("/sys"), allowed.as_ref());
        topology
    }

    /// Reads the topology from a sysfs tree at `root` (normally `/sys`), keeping only the CPUs
    /// in `allowed` (all online CPUs when `None`). Anything missing or malformed makes a flat
    /// topology, with a warning saying why.
    pub fn from_sysfs(root: &Path, allowed: Option<&BTreeSet<u32>>) -> Topology {
        let cpu_dir = root.join("devices/system/cpu");
        let online = match read_list(&cpu_dir.join("online")) {
            Ok(online) => online,
            Err(why) => {
                let cpus = allowed.cloned().unwrap_or_else(available_cpus);
                return Topology::flat(cpus, format!("no CPU list in sysfs ({why}); assuming a flat topology"));
            }
        };
        let ids: BTreeSet<u32> = match allowed {
            Some(allowed) => online.intersection(allowed).copied().collect(),
            None => online,
        };
        if ids.is_empty() {
            return Topology::flat(
                allowed.cloned().unwrap_or_else(available_cpus),
                "no online CPU is in the affinity mask; assuming a flat topology".to_string(),
            );
        }
        let mut warnings = Vec::new();
        let nodes = node_dirs(root);
        let node_of = read_nodes(&nodes, &mut warnings);
        let cpus = ids
            .iter()
            .map(|&id| {
                let dir = cpu_dir.join(format!("cpu{id}"));
                let mut note = |what: &str, why: String| warnings.push(format!("cpu{id}: no {what} ({why})"));
                let package = read_u32(&dir.join("topology/physical_package_id")).unwrap_or_else(|why| {
                    note("package id", why);
                    0
                });
                let core = match read_list(&dir.join("topology/thread_siblings_list")) {
                    Ok(siblings) => siblings.first().copied().unwrap_or(id),
                    Err(why) => {
                        note("SMT siblings", why);
                        id
                    }
                };
                let cache = match last_level_cache(&dir.join("cache")) {
                    Ok(shared) => shared.first().copied().unwrap_or(id),
                    Err(why) => {
                        note("last-level cache", why);
                        id
                    }
                };
                let node = node_of.get(&id).copied().unwrap_or(0);
                Cpu { id, core, cache, node, package }
            })
            .collect();
        let distances = read_distances(&nodes, &node_of, &mut warnings);
        Topology::assemble("sysfs", cpus, &distances, warnings)
    }

    /// Every CPU in `ids` its own core and cache, all on node 0.
    pub fn flat(ids: BTreeSet<u32>, warning: String) -> Topology {
        let cpus = ids.into_iter().map(|id| Cpu { id, core: id, cache: id, node: 0, package: 0 }).collect();
        Topology::assemble("flat", cpus, &BTreeMap::new(), vec![warning])
    }

    /// A made-up machine of `nodes` NUMA nodes (one package and one last-level cache each) of
    /// `cores` cores with `threads` SMT threads each, CPUs numbered node by node, core by core;
    /// remote nodes are at distance 20 + 10 × (how many nodes apart - 1).
    pub fn synthetic(nodes: u32, cores: u32, threads: u32) -> Topology {
        let mut cpus = Vec::new();
        for node in 0..nodes {
            for core in 0..cores {
                for thread in 0..threads {
                    let first_of_core = (node * cores + core) * threads;
                    cpus.push(Cpu {
                        id: first_of_core + thread,
                        core: first_of_core,
                        cache: node * cores * threads,
                        node,
                        package: node,
                    });
                }
            }
        }
        let distances = (0..nodes)
            .flat_map(|a| {
                (0..nodes).map(move |b| {
                    let d = if a == b { LOCAL_DISTANCE } else { REMOTE_DISTANCE + 10 * (a.abs_diff(b) - 1) };
                    ((a, b), d)
                })
            })
            .collect();
        Topology::assemble("synthetic", cpus, &distances, Vec::new())
    }

    fn assemble(
        source: &'static str,
        cpus: Vec<Cpu>,
        distances: &BTreeMap<(u32, u32), u32>,
        warnings: Vec<String>,
    ) -> Topology {
        let mut by_node: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
        for cpu in &cpus {
            by_node.entry(cpu.node).or_default().push(cpu.id);
        }
        let ids: Vec<u32> = by_node.keys().copied().collect();
        let nodes = by_node
            .into_iter()
            .map(|(id, cpus)| {
                let distances = ids
                    .iter()
                    .map(|&to| {
                        let default = if to == id { LOCAL_DISTANCE } else { REMOTE_DISTANCE };
                        (to, distances.get(&(id, to)).copied().unwrap_or(default))
                    })
                    .collect();
                Node { id, cpus, distances }
            })
            .collect();
        Topology { source, cpus, nodes, warnings }
    }

    /// The CPU with kernel number `id`, if allowed.
    pub fn cpu(&self, id: u32) -> Option<&Cpu> {
        self.cpus.binary_search_by_key(&id, |c| c.id).ok().map(|i| &self.cpus[i])
    }

    /// How far CPU `to` is from CPU `from` (both must be in the topology).
    pub fn distance(&self, from: &Cpu, to: &Cpu) -> Distance {
        if from.core == to.core && from.package == to.package {
            Distance::Sibling
        } else if from.cache == to.cache {
            Distance::Cache
        } else if from.node == to.node {
            Distance::Node
        } else {
            let d = self.nodes.iter().find(|n| n.id == from.node).and_then(|n| n.distances.get(&to.node));
            Distance::Remote(d.copied().unwrap_or(REMOTE_DISTANCE))
        }
    }

    /// The other CPUs, nearest to `cpu` first (ties by CPU number): the order in which a worker
    /// on `cpu` tries to steal. Empty for a CPU not in the topology.
    pub fn steal_order(&self, cpu: u32) -> Vec<(u32, Distance)> {
        let Some(from) = self.cpu(cpu) else { return Vec::new() };
        let mut order: Vec<(u32, Distance)> =
            self.cpus.iter().filter(|c| c.id != cpu).map(|c| (c.id, self.distance(from, c))).collect();
        order.sort_by_key(|&(id, d)| (d, id));
        order
    }

    /// Distinct physical cores.
    pub fn cores(&self) -> usize {
        self.cpus.iter().map(|c| (c.package, c.core)).collect::<BTreeSet<_>>().len()
    }

    /// Distinct last-level caches.
    pub fn caches(&self) -> usize {
        self.cpus.iter().map(|c| c.cache).collect::<BTreeSet<_>>().len()
    }
}

/// A human-readable summary: counts, one line per CPU and the steal order of each.
impl fmt::Display for Topology {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} CPUs, {} cores, {} last-level caches, {} NUMA nodes (from {})",
            self.cpus.len(),
            self.cores(),
            self.caches(),
            self.nodes.len(),
            self.source
        )?;
        writeln!(f, "{:>5} {:>5} {:>5} {:>5} {:>7}  steal order", "cpu", "core", "cache", "node", "package")?;
        for c in &self.cpus {
            let order: Vec<String> = self.steal_order(c.id).iter().map(|(id, d)| format!("{id}:{d}")).collect();
            writeln!(
                f,
                "{:>5} {:>5} {:>5} {:>5} {:>7}  {}",
                c.id,
                c.core,
                c.cache,
                c.node,
                c.package,
                order.join(" ")
            )?;
        }
        for n in &self.nodes {
            let d: Vec<String> = n.distances.iter().map(|(to, d)| format!("{to}:{d}")).collect();
            writeln!(f, "node {}: CPUs {}, distances {}", n.id, format_list(&n.cpus), d.join(" "))?;
        }
        Ok(())
    }
}

/// Parses a kernel CPU list (`0-3,8,10-11`).
pub fn parse_list(s: &str) -> Result<BTreeSet<u32>, String> {
    let mut out = BTreeSet::new();
    for part in s.trim().split(',').filter(|p| !p.is_empty()) {
        let num = |t: &str| t.trim().parse::<u32>().map_err(|_| format!("bad CPU number '{t}' in '{}'", s.trim()));
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (num(a)?, num(b)?);
                if a > b || b - a > 65_535 {
                    return Err(format!("bad CPU range '{part}'"));
                }
                out.extend(a..=b);
            }
            None => {
                out.insert(num(part)?);
            }
        }
    }
    Ok(out)
}

/// Formats ascending CPU numbers as a kernel CPU list.
fn format_list(ids: &[u32]) -> String {
    let mut parts = Vec::new();
    let mut i = 0;
    while i < ids.len() {
        let mut j = i;
        while j + 1 < ids.len() && ids[j + 1] == ids[j] + 1 {
            j += 1;
        }
        parts.push(if i == j { ids[i].to_string() } else { format!("{}-{}", ids[i], ids[j]) });
        i = j + 1;
    }
    parts.join(",")
}

fn read(path: &Path) -> Result<String, String> {
    fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))
}

fn read_list(path: &Path) -> Result<BTreeSet<u32>, String> {
    parse_list(&read(path)?).map_err(|e| format!("{}: {e}", path.display()))
}

fn read_u32(path: &Path) -> Result<u32, String> {
    let s = read(path)?;
    s.trim().parse().map_err(|_| format!("{}: not a number: '{}'", path.display(), s.trim()))
}

/// The CPUs sharing the highest-level data or unified cache of the CPU whose cache directory is
/// `dir`.
fn last_level_cache(dir: &Path) -> Result<BTreeSet<u32>, String> {
    let entries = fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut best: Option<(u32, BTreeSet<u32>)> = None;
    for entry in entries.flatten() {
        let path = entry.path();
        if !entry.file_name().to_string_lossy().starts_with("index") {
            continue;
        }
        let kind = read(&path.join("type")).unwrap_or_default();
        if kind.trim() == "Instruction" {
            continue;
        }
        let (Ok(level), Ok(shared)) = (read_u32(&path.join("level")), read_list(&path.join("shared_cpu_list"))) else {
            continue;
        };
        if best.as_ref().is_none_or(|(l, _)| level > *l) {
            best = Some((level, shared));
        }
    }
    best.map(|(_, shared)| shared).ok_or_else(|| format!("{}: no data cache described", dir.display()))
}

/// The NUMA node of every CPU sysfs lists under a node (none if there are no nodes).
fn read_nodes(nodes: &[(u32, PathBuf)], warnings: &mut Vec<String>) -> BTreeMap<u32, u32> {
    let mut node_of = BTreeMap::new();
    for (node, dir) in nodes {
        match read_list(&dir.join("cpulist")) {
            Ok(cpus) => node_of.extend(cpus.into_iter().map(|c| (c, *node))),
            Err(why) => warnings.push(format!("node{node}: no CPU list ({why})")),
        }
    }
    node_of
}

/// Distances between the nodes that have CPUs, from each node's `distance` row.
fn read_distances(
    nodes: &[(u32, PathBuf)],
    node_of: &BTreeMap<u32, u32>,
    warnings: &mut Vec<String>,
) -> BTreeMap<(u32, u32), u32> {
    let ids: Vec<u32> = nodes.iter().map(|(id, _)| *id).collect();
    let used: BTreeSet<u32> = node_of.values().copied().collect();
    let mut out = BTreeMap::new();
    for (node, dir) in nodes.iter().filter(|(id, _)| used.contains(id)) {
        let row = match read(&dir.join("distance")) {
            Ok(row) => row,
            Err(why) => {
                warnings.push(format!("node{node}: no distances ({why})"));
                continue;
            }
        };
        let values: Result<Vec<u32>, _> = row.split_whitespace().map(str::parse).collect();
        match values {
            Ok(values) if values.len() == ids.len() => {
                out.extend(ids.iter().zip(values).map(|(&to, d)| ((*node, to), d)));
            }
            _ => warnings.push(format!("node{node}: malformed distance row '{}'", row.trim())),
        }
    }
    out
}

/// `node<N>` directories under sysfs, ascending by N.
fn node_dirs(root: &Path) -> Vec<(u32, PathBuf)> {
    let Ok(entries) = fs::read_dir(root.join("devices/system/node")) else { return Vec::new() };
    let mut dirs: Vec<(u32, PathBuf)> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name();
            let id = name.to_str()?.strip_prefix("node")?.parse().ok()?;
            Some((id, e.path()))
        })
        .collect();
    dirs.sort();
    dirs
}

/// The CPUs this process may run on, or `None` if the kernel does not say.
pub fn affinity() -> Option<BTreeSet<u32>> {
    // SAFETY: `cpu_set_t` is plain bits; zeroed is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid, writable `cpu_set_t` of the size passed.
    let rc = unsafe { libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), &mut set) };
    if rc != 0 {
        return None;
    }
    let max = u32::try_from(libc::CPU_SETSIZE).unwrap_or(1024);
    // SAFETY: `set` was filled in by the kernel and every index is below CPU_SETSIZE.
    Some((0..max).filter(|&c| unsafe { libc::CPU_ISSET(c as usize, &set) }).collect())
}

/// CPUs 0..n for the parallelism the standard library sees (the last resort).
fn available_cpus() -> BTreeSet<u32> {
    let n = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    (0..u32::try_from(n).unwrap_or(1)).collect()
}

#[cfg(feature = "hwloc")]
mod hwloc;

#[cfg(test)]
mod tests;
