//! The topology as the hwloc library describes it (the `hwloc` cargo feature).
//!
//! hwloc knows more sources than sysfs (ACPI tables, device trees, its own fixes for firmware that
//! lies), and reports the same facts: each allowed CPU's core, last-level cache, NUMA node and
//! package, and the firmware's node distances.

use std::collections::{BTreeMap, BTreeSet};

use hwlocality::object::TopologyObject;
use hwlocality::object::types::ObjectType;

use super::{Cpu, Topology};

impl Topology {
    /// Reads the topology through hwloc, keeping only the CPUs in `allowed` (all of hwloc's
    /// CPUs when `None`).
    pub fn from_hwloc(allowed: Option<&BTreeSet<u32>>) -> Result<Topology, String> {
        let topology = hwlocality::Topology::new().map_err(|e| format!("hwloc cannot read this host: {e}"))?;
        let mut node_of = BTreeMap::new();
        for node in topology.objects_with_type(ObjectType::NUMANode) {
            let id = os_index(node)?;
            for cpu in cpus_of(node) {
                node_of.insert(cpu, id);
            }
        }
        let mut cpus = Vec::new();
        for pu in topology.objects_with_type(ObjectType::PU) {
            let id = os_index(pu)?;
            if allowed.is_some_and(|a| !a.contains(&id)) {
                continue;
            }
            let core = pu.first_ancestor_with_type(ObjectType::Core).and_then(|c| cpus_of(c).first().copied());
            // The farthest data cache above the CPU is its last level.
            let cache = pu
                .ancestors()
                .filter(|a| a.object_type().is_cpu_data_cache())
                .last()
                .and_then(|c| cpus_of(c).first().copied());
            let package = pu.first_ancestor_with_type(ObjectType::Package).and_then(|p| p.os_index());
            cpus.push(Cpu {
                id,
                core: core.unwrap_or(id),
                cache: cache.unwrap_or(id),
                node: node_of.get(&id).copied().unwrap_or(0),
                package: package.and_then(|p| u32::try_from(p).ok()).unwrap_or(0),
            });
        }
        if cpus.is_empty() {
            return Err("hwloc lists none of the CPUs in the affinity mask".to_string());
        }
        cpus.sort_by_key(|c| c.id);
        let mut distances = BTreeMap::new();
        let matrices = topology.distances_with_type(None, ObjectType::NUMANode).unwrap_or_default();
        if let Some(matrix) = matrices.first() {
            for ((from, to), d) in matrix.object_distances() {
                if let (Some(from), Some(to)) = (from, to) {
                    let d = u32::try_from(d).map_err(|_| format!("NUMA distance {d} out of range"))?;
                    distances.insert((os_index(from)?, os_index(to)?), d);
                }
            }
        }
        Ok(Topology::assemble("hwloc", cpus, &distances, Vec::new()))
    }
}

/// The kernel's number for a CPU or NUMA node.
fn os_index(object: &TopologyObject) -> Result<u32, String> {
    object
        .os_index()
        .and_then(|i| u32::try_from(i).ok())
        .ok_or_else(|| format!("hwloc gives {} no OS index", object.object_type()))
}

/// The CPU numbers in `object`'s CPU set, ascending.
fn cpus_of(object: &TopologyObject) -> Vec<u32> {
    object
        .cpuset()
        .map(|s| s.iter_set().filter_map(|i| u32::try_from(usize::from(i)).ok()).collect())
        .unwrap_or_default()
}
