//! Where a new guest goes: a pure function of what the coordinator knows about its nodes.
//!
//! The policy is least-loaded first: a node's load is the guests placed on it and not yet done
//! per worker thread, so a node with twice the workers takes twice the guests before it looks
//! as busy. Nodes that are not live never get a guest. Ties go to the node with fewer guests,
//! then to the one given fewer guests so far (so equally idle nodes take turns, and short
//! guests submitted one after another spread instead of all landing on one node), then to the
//! lowest id. Every input is replicated state, so every coordinator decides the same.

/// What placement knows of one node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    /// The node's id (the tie-breaker).
    pub id: u64,
    /// Whether it heartbeats.
    pub live: bool,
    /// Its worker threads (0 counts as 1).
    pub workers: u32,
    /// Guests placed on it and not yet done.
    pub guests: u32,
    /// Guests ever placed on it.
    pub placed: u64,
}

/// The node for the next guest: the id of the least loaded live candidate, or `None` when no
/// candidate is live.
pub fn least_loaded(candidates: &[Candidate]) -> Option<u64> {
    candidates.iter().filter(|c| c.live).min_by(|a, b| compare(a, b)).map(|c| c.id)
}

/// Orders by `guests / workers` without division (cross-multiplied in u64, which cannot
/// overflow for u32 operands), then by guests, then by guests ever placed, then by id.
fn compare(a: &Candidate, b: &Candidate) -> std::cmp::Ordering {
    let load = |c: &Candidate, other: &Candidate| u64::from(c.guests) * u64::from(other.workers.max(1));
    load(a, b).cmp(&load(b, a)).then(a.guests.cmp(&b.guests)).then(a.placed.cmp(&b.placed)).then(a.id.cmp(&b.id))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: u64, workers: u32, guests: u32) -> Candidate {
        Candidate { id, live: true, workers, guests, placed: 0 }
    }

    #[test]
    fn the_least_loaded_live_node_wins() {
        assert_eq!(least_loaded(&[]), None);
        assert_eq!(least_loaded(&[node(1, 2, 3), node(2, 2, 1)]), Some(2));
        // Per worker: 4 guests on 8 workers is lighter than 1 on 1.
        assert_eq!(least_loaded(&[node(1, 1, 1), node(2, 8, 4)]), Some(2));
        let mut dead = node(3, 64, 0);
        dead.live = false;
        assert_eq!(least_loaded(&[node(1, 2, 9), dead.clone()]), Some(1));
        assert_eq!(least_loaded(&[dead]), None);
    }

    #[test]
    fn ties_are_broken_the_same_way_everywhere() {
        assert_eq!(least_loaded(&[node(5, 2, 0), node(3, 4, 0), node(4, 2, 0)]), Some(3));
        assert_eq!(least_loaded(&[node(2, 2, 2), node(1, 1, 1)]), Some(1));
        // A node with no workers reported counts as one worker.
        assert_eq!(least_loaded(&[node(1, 0, 1), node(2, 2, 1)]), Some(2));
    }

    #[test]
    fn equally_idle_nodes_take_turns() {
        // Guests that end before the next one is placed: every placement sees two idle nodes.
        let mut nodes = vec![node(1, 2, 0), node(2, 2, 0), node(3, 2, 0)];
        let mut order = Vec::new();
        for _ in 0..6 {
            let id = least_loaded(&nodes).unwrap();
            nodes.iter_mut().find(|n| n.id == id).unwrap().placed += 1;
            order.push(id);
        }
        assert_eq!(order, [1, 2, 3, 1, 2, 3]);
        // Load still comes first: a busy node does not win for having been given less.
        let mut busy = node(1, 2, 2);
        busy.placed = 0;
        let mut idle = node(2, 2, 0);
        idle.placed = 50;
        assert_eq!(least_loaded(&[busy, idle]), Some(2));
    }

    #[test]
    fn guests_spread_evenly_by_capacity() {
        let mut nodes = vec![node(1, 2, 0), node(2, 4, 0)];
        for _ in 0..60 {
            let id = least_loaded(&nodes).unwrap();
            nodes.iter_mut().find(|n| n.id == id).unwrap().guests += 1;
        }
        assert_eq!((nodes[0].guests, nodes[1].guests), (20, 40));
    }
}
