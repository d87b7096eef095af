//! The raft group in one process, over a simulated network (raft-rs's test harness, with real
//! replica threads and real storage).
//!
//! Every member is a [`replica::start`] thread with its own data directory under
//! `CARGO_TARGET_TMPDIR` (one tree per test, removed when the test's [`Cluster`] drops). Their
//! `send` closures all lead to one [`Switchboard`]:
//!
//! ```text
//!  member 1 ─ send(to, batch) ─┐                      ┌─ Input::Step ─▶ member 1's inbox
//!  member 2 ─ send(to, batch) ─┼─▶ Switchboard::route ┼─ Input::Step ─▶ member 2's inbox
//!  member 3 ─ send(to, batch) ─┘   (from, to) cut?    └─ Input::Step ─▶ member 3's inbox
//!                                  drop this message? (seeded xorshift, per mille)
//!                                  count InstallSnapshots
//! ```
//!
//! Delivery is synchronous: the sending thread pushes onto the receiver's unbounded channel
//! while it holds the switchboard's lock. The switchboard owns the only inbox senders besides
//! the test's own, so a member is stopped by taking its inbox out of the switchboard and
//! dropping the test's: once the lock is released no sender is left, the replica thread sees
//! its channel disconnected and returns, and its `Arc<Shared>` is dropped with it. A strong
//! count of one on that `Arc` is therefore the join: the thread, its storage and its files are
//! gone, and the directory may be opened again.
//!
//! A link is cut per direction; isolating a member cuts every link to and from it. Messages
//! to a member that is not running are lost, as they would be on a real network. Every wait
//! polls the members' published [`MemberStatus`] (or a proposal's reply) every
//! [`POLL`] and gives up, failing the test, after [`WAIT`]: no test can hang.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, mpsc};
use std::time::{Duration, Instant};

use shoal_coordinator::replica::{self, Input, ReplicaConfig, Shared};
use shoal_coordinator::state::{Command, Outcome, State};
use shoal_protocol::msg::{Digest, Failure, GuestId, GuestSpec, MemberStatus};
use shoal_protocol::raft::{MessageType, RaftMessage};
use tokio::sync::oneshot;

/// The longest any one wait may take (an election takes 1 to 2 s).
const WAIT: Duration = Duration::from_secs(15);
/// How often a wait looks again.
const POLL: Duration = Duration::from_millis(10);

/// A small deterministic generator (xorshift64*), so that a run's drops can be reproduced as
/// far as thread interleaving allows.
#[derive(Debug)]
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

/// The simulated network: where each running member's inbox is, and what is lost on the way.
#[derive(Debug)]
struct Switchboard {
    inboxes: BTreeMap<u64, mpsc::Sender<Input>>,
    /// Links that deliver nothing, as (from, to).
    cut: HashSet<(u64, u64)>,
    /// The chance that any one message on a link that is not cut is lost, per mille.
    drop_per_mille: u64,
    rng: Rng,
    /// Messages routed over links that are not cut, and how many of them the drop rate lost.
    routed: u64,
    dropped: u64,
    /// Snapshot messages delivered, as (to, the index the snapshot ends at).
    snapshots: Vec<(u64, u64)>,
    /// How many of the next snapshot messages to lose, whatever the drop rate.
    lose_snapshots: u32,
}

impl Switchboard {
    fn route(&mut self, from: u64, to: u64, batch: Vec<RaftMessage>) {
        if self.cut.contains(&(from, to)) {
            return;
        }
        let mut kept = Vec::with_capacity(batch.len());
        for message in batch {
            self.routed += 1;
            if message.msg_type == MessageType::Snapshot && self.lose_snapshots > 0 {
                self.lose_snapshots -= 1;
                self.dropped += 1;
                continue;
            }
            if self.drop_per_mille > 0 && self.rng.below(1000) < self.drop_per_mille {
                self.dropped += 1;
                continue;
            }
            kept.push(message);
        }
        let Some(inbox) = self.inboxes.get(&to) else { return };
        for message in kept.iter().filter(|m| m.msg_type == MessageType::Snapshot) {
            self.snapshots.push((to, message.snapshot.as_ref().map_or(0, |s| s.metadata.index)));
        }
        if !kept.is_empty() {
            // The receiver may have stopped since; then the messages are lost, as on a network.
            let _ = inbox.send(Input::Step(kept));
        }
    }
}

fn lock(net: &Mutex<Switchboard>) -> MutexGuard<'_, Switchboard> {
    net.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A running member, as the test holds it.
struct Member {
    inbox: mpsc::Sender<Input>,
    shared: Arc<Shared>,
}

/// A raft group of replica threads on one switchboard, with its data directories.
struct Cluster {
    root: PathBuf,
    voters: Vec<u64>,
    net: Arc<Mutex<Switchboard>>,
    members: BTreeMap<u64, Member>,
}

impl Cluster {
    /// Starts `size` members with ids `1..=size` on fresh directories named after `test`.
    fn new(test: &str, size: u64) -> Self {
        let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("replica-{test}-{}", std::process::id()));
        match std::fs::remove_dir_all(&root) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => panic!("cannot clear {}: {e}", root.display()),
        }
        let net = Switchboard {
            inboxes: BTreeMap::new(),
            cut: HashSet::new(),
            drop_per_mille: 0,
            rng: Rng(0x5eed_0000_0000_0001),
            routed: 0,
            dropped: 0,
            snapshots: Vec::new(),
            lose_snapshots: 0,
        };
        let mut cluster =
            Cluster { root, voters: (1..=size).collect(), net: Arc::new(Mutex::new(net)), members: BTreeMap::new() };
        for id in 1..=size {
            cluster.start(id);
        }
        cluster
    }

    /// The ids of the running members.
    fn ids(&self) -> Vec<u64> {
        self.members.keys().copied().collect()
    }

    /// Starts member `id` on its directory (fresh or left by an earlier run).
    fn start(&mut self, id: u64) {
        assert!(!self.members.contains_key(&id), "member {id} is already running");
        let config = ReplicaConfig {
            id,
            name: format!("m{id}"),
            voters: self.voters.clone(),
            dir: self.root.join(id.to_string()),
        };
        let net = self.net.clone();
        let send = Box::new(move |to, batch| lock(&net).route(id, to, batch));
        let (inbox, shared) = replica::start(&config, send).unwrap_or_else(|e| panic!("starting member {id}: {e}"));
        lock(&self.net).inboxes.insert(id, inbox.clone());
        self.members.insert(id, Member { inbox, shared });
    }

    /// Stops member `id` and waits for its thread to be gone.
    fn stop(&mut self, id: u64) {
        let member = self.members.remove(&id).unwrap_or_else(|| panic!("member {id} is not running"));
        assert!(stop(&self.net, id, member), "member {id}'s thread did not stop within {WAIT:?}");
    }

    /// Cuts every link to and from `id`.
    fn isolate(&self, id: u64) {
        let mut net = lock(&self.net);
        for &other in self.voters.iter().filter(|&&o| o != id) {
            net.cut.insert((id, other));
            net.cut.insert((other, id));
        }
    }

    /// Restores every link.
    fn heal(&self) {
        lock(&self.net).cut.clear();
    }

    fn set_drop_per_mille(&self, per_mille: u64) {
        lock(&self.net).drop_per_mille = per_mille;
    }

    fn member(&self, id: u64) -> &Member {
        self.members.get(&id).unwrap_or_else(|| panic!("member {id} is not running"))
    }

    fn status(&self, id: u64) -> MemberStatus {
        replica::read(&self.member(id).shared.status).clone()
    }

    fn state(&self, id: u64) -> State {
        replica::read(&self.member(id).shared.state).clone()
    }

    /// The leader every member of `among` agrees on, with its term: it says it leads, and the
    /// others are in its term and name it.
    fn agreed_leader(&self, among: &[u64]) -> Option<(u64, u64)> {
        let statuses: Vec<MemberStatus> = among.iter().map(|&id| self.status(id)).collect();
        let leader = statuses.iter().find(|s| s.role == "leader")?;
        statuses.iter().all(|s| s.term == leader.term && s.leader == leader.id).then_some((leader.id, leader.term))
    }

    /// Waits for the members of `among` to agree on a leader in a term after `after_term`.
    fn wait_leader(&self, among: &[u64], after_term: u64) -> (u64, u64) {
        wait_until(&format!("a leader among {among:?} after term {after_term}"), || {
            self.agreed_leader(among).filter(|&(_, term)| term > after_term)
        })
    }

    /// The running member that says it leads in the highest term, if any.
    fn some_leader(&self) -> Option<u64> {
        self.ids()
            .into_iter()
            .map(|id| self.status(id))
            .filter(|s| s.role == "leader")
            .max_by_key(|s| s.term)
            .map(|s| s.id)
    }

    fn propose(&self, id: u64, command: Command) -> oneshot::Receiver<Result<Outcome, Failure>> {
        let (reply, answer) = oneshot::channel();
        self.member(id).inbox.send(Input::Propose { command, reply }).expect("the replica thread is running");
        answer
    }

    /// Proposes a submit to `id` and waits for the answer.
    fn submit(&self, id: u64, request: u64) -> Result<Outcome, Failure> {
        let mut answer = self.propose(id, submit(request));
        answered(&mut answer, WAIT).unwrap_or_else(|| panic!("member {id} did not answer submit {request}"))
    }

    /// Submits to whoever leads until the submit is applied, as a client does: what is refused
    /// or goes unanswered within `patience` is proposed again with the same request id (so a
    /// retry of an entry that did commit is the same guest). Counts the retries in `retries`.
    fn submit_retrying(&self, request: u64, patience: Duration, retries: &mut Retries) -> GuestId {
        let deadline = Instant::now() + WAIT;
        loop {
            assert!(Instant::now() < deadline, "submit {request} not applied within {WAIT:?} ({retries:?})");
            let Some(leader) = self.some_leader() else {
                std::thread::sleep(POLL);
                continue;
            };
            let mut answer = self.propose(leader, submit(request));
            match answered(&mut answer, patience) {
                Some(Ok(Outcome::Submitted(id))) => return id,
                Some(Ok(other)) => panic!("submit {request} applied as {other:?}"),
                Some(Err(Failure::NotLeader { .. })) => retries.not_leader += 1,
                Some(Err(Failure::Unavailable(_))) => retries.unavailable += 1,
                Some(Err(e)) => panic!("submit {request} failed: {e}"),
                None => retries.unanswered += 1,
            }
        }
    }

    fn read(&self, id: u64) -> Result<(), Failure> {
        let (reply, mut answer) = oneshot::channel();
        self.member(id).inbox.send(Input::Read { reply }).expect("the replica thread is running");
        answered(&mut answer, WAIT).unwrap_or_else(|| panic!("member {id} did not answer a read"))
    }

    /// Waits until the members of `among` have applied the same index and hold equal states,
    /// and returns that state.
    fn wait_converged(&self, among: &[u64]) -> State {
        let deadline = Instant::now() + WAIT;
        loop {
            let applied: Vec<u64> = among.iter().map(|&id| self.status(id).applied).collect();
            let states: Vec<State> = among.iter().map(|&id| self.state(id)).collect();
            if applied.windows(2).all(|w| w[0] == w[1]) && states.windows(2).all(|w| w[0] == w[1]) {
                return states.into_iter().next().unwrap_or_default();
            }
            if Instant::now() >= deadline {
                let guests: Vec<usize> = states.iter().map(|s| s.guests().count()).collect();
                panic!("members {among:?} did not converge: applied {applied:?}, guests {guests:?}");
            }
            std::thread::sleep(POLL);
        }
    }

    /// Waits until member `id`'s state is `want`.
    fn wait_state(&self, id: u64, want: &State) {
        wait_until(&format!("member {id}'s state to be the expected one"), || (self.state(id) == *want).then_some(()));
    }

    fn snapshots_to(&self, id: u64) -> Vec<u64> {
        lock(&self.net).snapshots.iter().filter(|&&(to, _)| to == id).map(|&(_, index)| index).collect()
    }
}

impl Drop for Cluster {
    /// Stops every member, then removes the directories: even when a test fails, no thread
    /// is left writing to them.
    fn drop(&mut self) {
        let mut stopped = true;
        for (id, member) in std::mem::take(&mut self.members) {
            stopped &= stop(&self.net, id, member);
        }
        if stopped {
            let _ = std::fs::remove_dir_all(&self.root);
        }
    }
}

/// Takes `id`'s inbox out of the switchboard, drops the test's, and waits (bounded) for the
/// thread to drop its `Shared`; false if it did not.
fn stop(net: &Mutex<Switchboard>, id: u64, member: Member) -> bool {
    lock(net).inboxes.remove(&id);
    let Member { inbox, shared } = member;
    drop(inbox);
    let deadline = Instant::now() + WAIT;
    while Arc::strong_count(&shared) > 1 {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(POLL);
    }
    true
}

/// Polls `check` until it gives a value, failing the test after [`WAIT`].
fn wait_until<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out after {WAIT:?} waiting for {what}");
        std::thread::sleep(POLL);
    }
}

/// The answer on `answer` within `within`; `None` if there is none by then, or if the replica
/// dropped the question unanswered.
fn answered<T>(answer: &mut oneshot::Receiver<T>, within: Duration) -> Option<T> {
    let deadline = Instant::now() + within;
    loop {
        match answer.try_recv() {
            Ok(value) => return Some(value),
            Err(oneshot::error::TryRecvError::Closed) => return None,
            Err(oneshot::error::TryRecvError::Empty) if Instant::now() >= deadline => return None,
            Err(oneshot::error::TryRecvError::Empty) => std::thread::sleep(POLL),
        }
    }
}

/// Why a client's submits were retried.
#[derive(Debug, Default)]
struct Retries {
    unanswered: u64,
    not_leader: u64,
    unavailable: u64,
}

/// A submit whose guest is named after its request id, so a state shows which requests it
/// holds.
fn submit(request: u64) -> Command {
    let spec = GuestSpec {
        name: format!("req-{request}"),
        program: Digest([7; 32]),
        program_size: 4096,
        args: vec![b"hello".to_vec()],
        env: vec![],
        sysroot: None,
        restart: false,
        memory: None,
    };
    Command::Submit { spec, request: u128::from(request), at_ms: request }
}

/// The guests `state` holds for `request`.
fn guests_of(state: &State, request: u64) -> Vec<GuestId> {
    let name = format!("req-{request}");
    state.guests().filter(|(_, g)| g.spec.name == name).map(|(id, _)| id).collect()
}

fn others(ids: &[u64], except: &[u64]) -> Vec<u64> {
    ids.iter().copied().filter(|id| !except.contains(id)).collect()
}

#[test]
fn a_leader_is_elected_and_replicates_to_every_member() {
    let c = Cluster::new("elect", 3);
    let all = c.ids();
    let (leader, term) = c.wait_leader(&all, 0);
    assert!(term >= 1);
    assert_eq!(c.submit(leader, 1), Ok(Outcome::Submitted(GuestId(1))));
    assert_eq!(c.submit(leader, 2), Ok(Outcome::Submitted(GuestId(2))));
    // The same request again is the same guest.
    assert_eq!(c.submit(leader, 1), Ok(Outcome::Submitted(GuestId(1))));
    let state = c.wait_converged(&all);
    assert_eq!(state.guests().count(), 2);
    assert_eq!(guests_of(&state, 1), [GuestId(1)]);
    assert_eq!(guests_of(&state, 2), [GuestId(2)]);
    assert_eq!(c.read(leader), Ok(()));

    let follower = others(&all, &[leader])[0];
    let named = Some(leader.to_string());
    assert_eq!(c.submit(follower, 3), Err(Failure::NotLeader { leader: named.clone() }));
    assert_eq!(c.read(follower), Err(Failure::NotLeader { leader: named }));
    assert_eq!(c.wait_converged(&all), state, "a refused proposal changed the state");
}

#[test]
fn an_isolated_leader_is_replaced_and_rejoins_as_a_follower() {
    let c = Cluster::new("isolated-leader", 3);
    let all = c.ids();
    let (old, term) = c.wait_leader(&all, 0);
    assert_eq!(c.submit(old, 1), Ok(Outcome::Submitted(GuestId(1))));
    c.wait_converged(&all);

    c.isolate(old);
    // Proposed while it still believes it leads: appended to its own log only.
    let mut stranded = c.propose(old, submit(2));
    let rest = others(&all, &[old]);
    let (new, new_term) = c.wait_leader(&rest, term);
    assert_ne!(new, old);
    assert!(new_term > term);
    assert_eq!(c.submit(new, 3), Ok(Outcome::Submitted(GuestId(2))));

    // Check-quorum: hearing from no one, the old leader steps down, failing what it held.
    wait_until("the isolated leader to step down", || (c.status(old).role != "leader").then_some(()));
    assert!(matches!(answered(&mut stranded, WAIT), Some(Err(Failure::Unavailable(_)))));
    assert!(matches!(c.submit(old, 4), Err(Failure::NotLeader { .. })));
    // Pre-vote: its failed elections did not raise its term past the new leader's.
    assert!(c.status(old).term <= new_term);

    c.heal();
    wait_until("the old leader to follow the new one", || {
        let s = c.status(old);
        (s.role == "follower" && s.leader == new && s.term == new_term).then_some(())
    });
    assert_eq!(c.agreed_leader(&all), Some((new, new_term)), "healing disturbed the new leader");
    let state = c.wait_converged(&all);
    assert_eq!(state.guests().count(), 2);
    assert_eq!(guests_of(&state, 1), [GuestId(1)]);
    assert_eq!(guests_of(&state, 3), [GuestId(2)]);
    assert_eq!(guests_of(&state, 2), [], "the isolated leader's proposal committed");
    assert_eq!(guests_of(&state, 4), []);
}

#[test]
fn a_restarted_group_keeps_its_state_and_goes_on() {
    let mut c = Cluster::new("restart", 3);
    let all = c.ids();
    let (leader, term) = c.wait_leader(&all, 0);
    for request in 1..=5 {
        assert_eq!(c.submit(leader, request), Ok(Outcome::Submitted(GuestId(request))));
    }
    let before = c.wait_converged(&all);
    for &id in &all {
        c.stop(id);
    }

    // With every link cut, each member can only rebuild the state from its own directory.
    for &id in &all {
        c.isolate(id);
    }
    for &id in &all {
        c.start(id);
    }
    for &id in &all {
        c.wait_state(id, &before);
    }
    c.heal();
    let (leader, _) = c.wait_leader(&all, term);
    assert_eq!(c.submit(leader, 6), Ok(Outcome::Submitted(GuestId(6))));
    let after = c.wait_converged(&all);
    assert_eq!(after.guests().count(), 6);
    assert_eq!(guests_of(&after, 6), [GuestId(6)]);
    assert!(before.guests().all(|(id, g)| after.guest(id) == Some(g)));
}

#[test]
fn a_lagging_follower_catches_up_by_snapshot_and_restarts_from_it() {
    const ENTRIES: u64 = 1100;
    let mut c = Cluster::new("snapshot", 3);
    let all = c.ids();
    let (leader, _) = c.wait_leader(&all, 0);
    assert_eq!(c.submit(leader, 1), Ok(Outcome::Submitted(GuestId(1))));
    c.wait_converged(&all);

    let lagging = others(&all, &[leader])[0];
    c.isolate(lagging);
    // Enough entries that the others compact their logs past everything the lagging one has.
    for batch in (2..=ENTRIES + 1).collect::<Vec<_>>().chunks(100) {
        let mut answers: Vec<_> = batch.iter().map(|&request| (request, c.propose(leader, submit(request)))).collect();
        for (request, answer) in &mut answers {
            let outcome = answered(answer, WAIT).unwrap_or_else(|| panic!("submit {request} unanswered"));
            assert_eq!(outcome, Ok(Outcome::Submitted(GuestId(*request))));
        }
    }
    let up = others(&all, &[lagging]);
    let state = c.wait_converged(&up);
    assert_eq!(state.guests().count(), 1101);
    assert!(c.status(lagging).applied < 10);
    assert_eq!(c.snapshots_to(lagging), []);

    // The first snapshot sent is lost: the leader must send it again.
    lock(&c.net).lose_snapshots = 1;
    c.heal();
    let caught_up = c.wait_converged(&all);
    assert_eq!(caught_up, state);
    assert_eq!(lock(&c.net).lose_snapshots, 0, "no snapshot was sent");
    let snapshots = c.snapshots_to(lagging);
    assert!(
        !snapshots.is_empty() && snapshots.iter().all(|&index| index >= 1000),
        "the lagging member caught up without an InstallSnapshot of the compacted log: {snapshots:?}"
    );

    // Entries after the snapshot, so that a restart needs both the snapshot and the log.
    for request in ENTRIES + 2..=ENTRIES + 5 {
        assert_eq!(c.submit(leader, request), Ok(Outcome::Submitted(GuestId(request))));
    }
    let before = c.wait_converged(&all);
    c.stop(lagging);
    c.isolate(lagging);
    c.start(lagging);
    c.wait_state(lagging, &before);
    c.heal();
    assert_eq!(c.submit(leader, ENTRIES + 6), Ok(Outcome::Submitted(GuestId(ENTRIES + 6))));
    assert_eq!(c.wait_converged(&all).guests().count(), 1106);
}

#[test]
fn submits_over_a_lossy_network_are_applied_exactly_once() {
    const SUBMITS: u64 = 50;
    let c = Cluster::new("lossy", 3);
    let all = c.ids();
    c.set_drop_per_mille(200);
    // Impatient enough that a submit delayed by a lost message is proposed a second time
    // while the first may still commit.
    let patience = Duration::from_millis(150);
    let mut ids = Vec::new();
    let mut retries = Retries::default();
    for request in 1..=SUBMITS {
        // A change of leader in the middle: the old one takes submits it cannot commit.
        if request == 21 {
            c.isolate(wait_until("a leader", || c.some_leader()));
        }
        if request == 36 {
            c.heal();
        }
        ids.push((request, c.submit_retrying(request, patience, &mut retries)));
    }
    let state = c.wait_converged(&all);
    assert_eq!(state.guests().count(), 50, "{retries:?}");
    for (request, id) in ids {
        assert_eq!(guests_of(&state, request), [id], "request {request}");
    }
    // The isolated leader took at least the first submit after it was cut off.
    assert!(retries.unanswered + retries.unavailable > 0, "{retries:?}");
    // Each term adds at most one entry of its own (the new leader's empty one): the entries
    // beyond those and the submits are retries that committed after their first try did.
    let status = c.status(all[0]);
    assert!(
        status.applied > SUBMITS + status.term,
        "no retry committed twice ({retries:?}, applied {}, term {})",
        status.applied,
        status.term
    );
    let net = lock(&c.net);
    // The network really was lossy: about a fifth of the messages went missing.
    assert!(net.dropped * 10 > net.routed, "{} of {} messages dropped", net.dropped, net.routed);
}

#[test]
fn a_single_member_commits_alone_and_restarts() {
    let mut c = Cluster::new("single", 1);
    let (leader, term) = c.wait_leader(&[1], 0);
    assert_eq!(leader, 1);
    assert_eq!(c.submit(1, 1), Ok(Outcome::Submitted(GuestId(1))));
    assert_eq!(c.read(1), Ok(()));
    let before = c.state(1);
    c.stop(1);
    c.start(1);
    c.wait_state(1, &before);
    c.wait_leader(&[1], term);
    assert_eq!(c.submit(1, 2), Ok(Outcome::Submitted(GuestId(2))));
}

#[test]
fn five_members_go_on_without_two() {
    let c = Cluster::new("five", 5);
    let all = c.ids();
    let (old, term) = c.wait_leader(&all, 0);
    assert_eq!(c.submit(old, 1), Ok(Outcome::Submitted(GuestId(1))));
    let follower = others(&all, &[old])[0];
    c.isolate(old);
    c.isolate(follower);
    let rest = others(&all, &[old, follower]);
    let (new, _) = c.wait_leader(&rest, term);
    assert_eq!(c.submit(new, 2), Ok(Outcome::Submitted(GuestId(2))));
    c.heal();
    let state = c.wait_converged(&all);
    assert_eq!(state.guests().count(), 2);
    assert_eq!(c.agreed_leader(&all).map(|(id, _)| id), Some(new));
}
