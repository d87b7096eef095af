//! The replicated state: the cluster's nodes and guests, changed only by applying committed
//! [`Command`]s in log order.
//!
//! Applying is deterministic: every input a decision needs (the time, the requester's name) is
//! in the command, chosen by the leader when it proposed it, so every member that applies the
//! same log holds the same state. Placement happens here, at apply time, through the
//! scheduler's policy ([`shoal_scheduler::placement`]), so it is replicated with the command that
//! caused it.
//!
//! A guest's life: `Pending` (no live node) → `Assigned` (to a node, with a new [`Epoch`]) →
//! `Running` (its node said so) → `Exited` / `Failed` / `Killed` / `Lost`. Every placement
//! raises the epoch; reports that carry an older epoch are ignored, and a node is told to stop
//! any guest whose epoch or node is no longer the guest's (fencing).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use shoal_protocol::msg::{Epoch, GuestId, GuestInfo, GuestSpec, GuestState, NodeId, NodeInfo, Registration};
use shoal_scheduler::placement::{self, Candidate};

/// A change to the state, as the log carries it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// A node (re)starts: a new incarnation. Guests of its previous incarnation died with it.
    Register { name: String, registration: Registration, at_ms: u64 },
    /// A node stopped heartbeating.
    NodeLost { node: NodeId, incarnation: u64, at_ms: u64 },
    /// A client submits a guest.
    Submit { spec: GuestSpec, request: u128, at_ms: u64 },
    /// A node runs a guest.
    Started { guest: GuestId, epoch: Epoch, at_ms: u64 },
    /// A guest ended on its node (`Exited` or `Failed`).
    Ended { guest: GuestId, epoch: Epoch, state: GuestState, at_ms: u64 },
    /// A user kills a guest.
    Kill { guest: GuestId, at_ms: u64 },
    /// Several commands, applied in order (one heartbeat's reports).
    Batch(Vec<Command>),
}

/// What applying a command did, for whoever proposed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Done,
    Submitted(GuestId),
    Registered { node: NodeId, incarnation: u64 },
    NotFound(String),
    Batch(Vec<Outcome>),
}

/// A node as the state records it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRecord {
    pub name: String,
    pub registration: Registration,
    pub live: bool,
    pub incarnation: u64,
    pub registered_ms: u64,
    /// Guests ever placed on it (placement's tie-breaker: equal loads take turns).
    pub placed: u64,
}

/// A guest as the state records it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuestRecord {
    pub spec: GuestSpec,
    pub state: GuestState,
    pub epoch: Epoch,
    pub node: Option<NodeId>,
    pub submitted_ms: u64,
    pub started_ms: Option<u64>,
    pub finished_ms: Option<u64>,
}

/// The cluster's state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    nodes: BTreeMap<NodeId, NodeRecord>,
    guests: BTreeMap<GuestId, GuestRecord>,
    /// Submit request ids already applied, so that a retried submit is the same guest.
    requests: BTreeMap<u128, GuestId>,
    next_guest: u64,
    next_node: u64,
}

impl State {
    /// Applies one committed command.
    pub fn apply(&mut self, command: Command) -> Outcome {
        match command {
            Command::Register { name, registration, at_ms } => self.register(name, registration, at_ms),
            Command::NodeLost { node, incarnation, at_ms } => {
                match self.nodes.get_mut(&node) {
                    Some(n) if n.incarnation == incarnation && n.live => {
                        n.live = false;
                        self.orphan(node, at_ms);
                        self.place_pending();
                    }
                    Some(_) => {}
                    None => return Outcome::NotFound(format!("node {node}")),
                }
                Outcome::Done
            }
            Command::Submit { spec, request, at_ms } => {
                if let Some(&id) = self.requests.get(&request) {
                    return Outcome::Submitted(id);
                }
                self.next_guest += 1;
                let id = GuestId(self.next_guest);
                self.requests.insert(request, id);
                let guest = GuestRecord {
                    spec,
                    state: GuestState::Pending,
                    epoch: Epoch(0),
                    node: None,
                    submitted_ms: at_ms,
                    started_ms: None,
                    finished_ms: None,
                };
                self.guests.insert(id, guest);
                self.place(id);
                Outcome::Submitted(id)
            }
            Command::Started { guest, epoch, at_ms } => {
                let Some(g) = self.guests.get_mut(&guest) else { return Outcome::NotFound(format!("guest {guest}")) };
                if g.epoch == epoch && g.state == GuestState::Assigned {
                    g.state = GuestState::Running;
                    g.started_ms = Some(at_ms);
                }
                Outcome::Done
            }
            Command::Ended { guest, epoch, state, at_ms } => {
                let Some(g) = self.guests.get_mut(&guest) else { return Outcome::NotFound(format!("guest {guest}")) };
                if g.epoch == epoch && !g.state.is_final() && state.is_final() {
                    g.state = state;
                    g.finished_ms = Some(at_ms);
                    g.started_ms.get_or_insert(at_ms);
                }
                Outcome::Done
            }
            Command::Kill { guest, at_ms } => {
                let Some(g) = self.guests.get_mut(&guest) else { return Outcome::NotFound(format!("guest {guest}")) };
                if !g.state.is_final() {
                    g.state = GuestState::Killed;
                    g.finished_ms = Some(at_ms);
                }
                Outcome::Done
            }
            Command::Batch(commands) => Outcome::Batch(commands.into_iter().map(|c| self.apply(c)).collect()),
        }
    }

    fn register(&mut self, name: String, registration: Registration, at_ms: u64) -> Outcome {
        let existing = self.nodes.iter().find(|(_, n)| n.name == name).map(|(&id, _)| id);
        let id = existing.unwrap_or_else(|| {
            self.next_node += 1;
            NodeId(self.next_node)
        });
        let record = self.nodes.entry(id).or_insert_with(|| NodeRecord {
            name,
            registration: registration.clone(),
            live: false,
            incarnation: 0,
            registered_ms: at_ms,
            placed: 0,
        });
        record.registration = registration;
        record.incarnation += 1;
        record.live = true;
        record.registered_ms = at_ms;
        let incarnation = record.incarnation;
        // Whatever the previous incarnation ran died with it.
        self.orphan(id, at_ms);
        self.place_pending();
        Outcome::Registered { node: id, incarnation }
    }

    /// Guests left without a running node: placed again if their spec asks for it, else lost.
    fn orphan(&mut self, node: NodeId, at_ms: u64) {
        let orphans: Vec<GuestId> = self
            .guests
            .iter()
            .filter(|(_, g)| g.node == Some(node) && !g.state.is_final())
            .map(|(&id, _)| id)
            .collect();
        for id in orphans {
            let Some(g) = self.guests.get_mut(&id) else { continue };
            if g.spec.restart {
                g.state = GuestState::Pending;
                g.node = None;
            } else {
                g.state = GuestState::Lost;
                g.finished_ms = Some(at_ms);
            }
        }
    }

    fn place_pending(&mut self) {
        let pending: Vec<GuestId> =
            self.guests.iter().filter(|(_, g)| g.state == GuestState::Pending).map(|(&id, _)| id).collect();
        for id in pending {
            if !self.place(id) {
                break;
            }
        }
    }

    /// Places a pending guest on the least loaded live node; false when there is none.
    fn place(&mut self, id: GuestId) -> bool {
        let candidates: Vec<Candidate> = self
            .nodes
            .iter()
            .map(|(&nid, n)| Candidate {
                id: nid.0,
                live: n.live,
                workers: n.registration.workers,
                guests: self.active_on(nid),
                placed: n.placed,
            })
            .collect();
        let Some(node) = placement::least_loaded(&candidates) else { return false };
        let Some(g) = self.guests.get_mut(&id) else { return false };
        if let Some(n) = self.nodes.get_mut(&NodeId(node)) {
            n.placed += 1;
        }
        g.epoch = Epoch(g.epoch.0 + 1);
        g.node = Some(NodeId(node));
        g.state = GuestState::Assigned;
        true
    }

    /// Guests placed on `node` and not yet done.
    fn active_on(&self, node: NodeId) -> u32 {
        let n = self.guests.values().filter(|g| g.node == Some(node) && !g.state.is_final()).count();
        u32::try_from(n).unwrap_or(u32::MAX)
    }

    pub fn guest(&self, id: GuestId) -> Option<&GuestRecord> {
        self.guests.get(&id)
    }

    pub fn guests(&self) -> impl Iterator<Item = (GuestId, &GuestRecord)> {
        self.guests.iter().map(|(&id, g)| (id, g))
    }

    pub fn node(&self, id: NodeId) -> Option<&NodeRecord> {
        self.nodes.get(&id)
    }

    pub fn nodes(&self) -> impl Iterator<Item = (NodeId, &NodeRecord)> {
        self.nodes.iter().map(|(&id, n)| (id, n))
    }

    /// How many guests are in each state's [`GuestState::word`].
    pub fn guests_by_state(&self) -> BTreeMap<&'static str, u64> {
        let mut counts = BTreeMap::new();
        for g in self.guests.values() {
            *counts.entry(g.state.word()).or_insert(0) += 1;
        }
        counts
    }

    /// A guest as listings show it.
    pub fn guest_info(&self, id: GuestId) -> Option<GuestInfo> {
        let g = self.guests.get(&id)?;
        let node = g.node.and_then(|n| self.nodes.get(&n).map(|r| (n, r.name.clone(), r.registration.addr.clone())));
        Some(GuestInfo {
            id,
            spec: g.spec.clone(),
            state: g.state.clone(),
            epoch: g.epoch,
            node,
            submitted_ms: g.submitted_ms,
            started_ms: g.started_ms,
            finished_ms: g.finished_ms,
        })
    }

    /// A node as listings show it; `runnable` is from its last heartbeat (the leader's memory).
    pub fn node_info(&self, id: NodeId, runnable: u32) -> Option<NodeInfo> {
        let n = self.nodes.get(&id)?;
        Some(NodeInfo {
            id,
            name: n.name.clone(),
            addr: n.registration.addr.clone(),
            workers: n.registration.workers,
            numa_nodes: n.registration.numa_nodes,
            live: n.live,
            guests: self.active_on(id),
            runnable,
            incarnation: n.incarnation,
        })
    }

    /// The state as snapshot bytes.
    ///
    /// # Errors
    ///
    /// postcard refused the state (a snapshot is then not taken: an empty one would lose it).
    pub fn encode(&self) -> Result<Vec<u8>, postcard::Error> {
        postcard::to_stdvec(self)
    }

    /// The state from snapshot bytes.
    ///
    /// # Errors
    ///
    /// The bytes are not a state.
    pub fn decode(bytes: &[u8]) -> Result<State, postcard::Error> {
        if bytes.is_empty() {
            return Ok(State::default());
        }
        postcard::from_bytes(bytes)
    }
}

#[cfg(test)]
mod tests {
    use shoal_protocol::msg::{Digest, ExitStatus};

    use super::*;

    fn spec(restart: bool) -> GuestSpec {
        GuestSpec {
            name: "hello".into(),
            program: Digest([7; 32]),
            program_size: 10,
            args: vec![b"hello".to_vec()],
            env: vec![],
            sysroot: None,
            restart,
            memory: None,
        }
    }

    fn register(s: &mut State, name: &str, workers: u32) -> (NodeId, u64) {
        let registration = Registration { addr: format!("{name}:1"), workers, numa_nodes: 1 };
        match s.apply(Command::Register { name: name.into(), registration, at_ms: 1 }) {
            Outcome::Registered { node, incarnation } => (node, incarnation),
            o => panic!("{o:?}"),
        }
    }

    fn submit(s: &mut State, request: u128, restart: bool) -> GuestId {
        match s.apply(Command::Submit { spec: spec(restart), request, at_ms: 2 }) {
            Outcome::Submitted(id) => id,
            o => panic!("{o:?}"),
        }
    }

    #[test]
    fn guests_wait_for_a_node_then_run_and_end() {
        let mut s = State::default();
        let g = submit(&mut s, 1, false);
        assert_eq!(s.guest(g).unwrap().state, GuestState::Pending);
        let (n, _) = register(&mut s, "n1", 2);
        let rec = s.guest(g).unwrap();
        assert_eq!((rec.state.clone(), rec.node, rec.epoch), (GuestState::Assigned, Some(n), Epoch(1)));
        // A report from another epoch changes nothing.
        s.apply(Command::Started { guest: g, epoch: Epoch(2), at_ms: 3 });
        assert_eq!(s.guest(g).unwrap().state, GuestState::Assigned);
        s.apply(Command::Started { guest: g, epoch: Epoch(1), at_ms: 3 });
        assert_eq!(s.guest(g).unwrap().state, GuestState::Running);
        let ended = GuestState::Exited(ExitStatus::Exited(3));
        s.apply(Command::Ended { guest: g, epoch: Epoch(1), state: ended.clone(), at_ms: 4 });
        assert_eq!(s.guest(g).unwrap().state, ended);
        assert_eq!(s.guest(g).unwrap().finished_ms, Some(4));
        // A repeated report (an ack lost on the way) is harmless.
        s.apply(Command::Ended { guest: g, epoch: Epoch(1), state: GuestState::Lost, at_ms: 5 });
        assert_eq!(s.guest(g).unwrap().state, ended);
    }

    #[test]
    fn a_retried_submit_is_the_same_guest() {
        let mut s = State::default();
        let a = submit(&mut s, 42, false);
        let b = submit(&mut s, 42, false);
        let c = submit(&mut s, 43, false);
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(s.guests().count(), 2);
    }

    #[test]
    fn a_lost_node_loses_its_guests_or_places_them_again() {
        let mut s = State::default();
        let (n1, inc) = register(&mut s, "n1", 1);
        let keep = submit(&mut s, 1, false);
        let again = submit(&mut s, 2, true);
        let (n2, _) = register(&mut s, "n2", 1);
        assert_eq!(s.guest(again).unwrap().node, Some(n1));
        s.apply(Command::NodeLost { node: n1, incarnation: inc, at_ms: 9 });
        assert_eq!(s.guest(keep).unwrap().state, GuestState::Lost);
        let moved = s.guest(again).unwrap();
        assert_eq!((moved.state.clone(), moved.node, moved.epoch), (GuestState::Assigned, Some(n2), Epoch(2)));
        // The old placement's reports are stale now.
        s.apply(Command::Ended {
            guest: again,
            epoch: Epoch(1),
            state: GuestState::Exited(ExitStatus::Exited(0)),
            at_ms: 10,
        });
        assert_eq!(s.guest(again).unwrap().state, GuestState::Assigned);
        assert!(!s.node(n1).unwrap().live);
    }

    #[test]
    fn a_node_that_registers_again_has_lost_what_it_ran() {
        let mut s = State::default();
        let (n1, _) = register(&mut s, "n1", 1);
        let g = submit(&mut s, 1, false);
        let (again, incarnation) = register(&mut s, "n1", 1);
        assert_eq!((again, incarnation), (n1, 2));
        assert_eq!(s.guest(g).unwrap().state, GuestState::Lost);
        // A NodeLost for the old incarnation does not touch the new one.
        s.apply(Command::NodeLost { node: n1, incarnation: 1, at_ms: 3 });
        assert!(s.node(n1).unwrap().live);
    }

    #[test]
    fn kill_is_final_and_placement_spreads() {
        let mut s = State::default();
        register(&mut s, "n1", 2);
        register(&mut s, "n2", 2);
        let ids: Vec<GuestId> = (0..4).map(|r| submit(&mut s, r, false)).collect();
        let on = |s: &State, n: u64| ids.iter().filter(|&&g| s.guest(g).unwrap().node == Some(NodeId(n))).count();
        assert_eq!((on(&s, 1), on(&s, 2)), (2, 2));
        s.apply(Command::Kill { guest: ids[0], at_ms: 5 });
        assert_eq!(s.guest(ids[0]).unwrap().state, GuestState::Killed);
        s.apply(Command::Ended {
            guest: ids[0],
            epoch: Epoch(1),
            state: GuestState::Exited(ExitStatus::Signaled(9)),
            at_ms: 6,
        });
        assert_eq!(s.guest(ids[0]).unwrap().state, GuestState::Killed);
        assert_eq!(s.apply(Command::Kill { guest: GuestId(99), at_ms: 7 }), Outcome::NotFound("guest 99".into()));
        assert_eq!(s.guests_by_state().get("assigned"), Some(&3));
    }

    #[test]
    fn snapshots_round_trip() {
        let mut s = State::default();
        register(&mut s, "n1", 2);
        submit(&mut s, 1, true);
        let back = State::decode(&s.encode().unwrap()).unwrap();
        assert_eq!(back, s);
        assert_eq!(State::decode(&[]).unwrap(), State::default());
        assert!(State::decode(&[0xff; 9]).is_err());
    }
}
