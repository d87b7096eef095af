//! One member of the raft group: the thread that owns raft-rs's `RawNode`, its durable storage
//! and the state machine, driven by messages.
//!
//! Everything reaches the thread through one channel of [`Input`]s (proposals, linearizable
//! reads, raft messages from peers); it ticks raft every [`TICK`], and after each batch of
//! inputs handles raft's `Ready` in the order raft-rs requires:
//!
//! ```text
//!  ready ─┬─ messages            → peers (a leader may send before persisting)
//!         ├─ snapshot            → storage, then the state machine is replaced by it
//!         ├─ committed entries   → State::apply, answering the proposer if it waits here
//!         ├─ entries, hard state → storage (one fsync)
//!         ├─ persisted messages  → peers (votes and acks only once durable)
//!         └─ read states         → reads answered once applied >= their index
//!  advance → light ready: commit index, more messages, more committed entries
//! ```
//!
//! **Architecture Invariant:** the state changes only here, by applying committed entries in
//! order, and a proposal is answered only when its entry is applied: an acknowledged submit is
//! in the log of a majority.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use raft::eraftpb::{self, EntryType};
use raft::{RawNode, StateRole};
use shoal_protocol::msg::{Failure, MemberStatus};
use shoal_protocol::raft::RaftMessage;
use tokio::sync::oneshot;

use crate::state::{Command, Outcome, State};
use crate::storage::DiskStorage;
use crate::wire::{FromRaft, ToRaft};

/// How often raft ticks.
pub const TICK: Duration = Duration::from_millis(100);
/// Ticks between a leader's heartbeats.
const HEARTBEAT_TICKS: usize = 2;
/// Ticks without a leader before a follower campaigns (randomized up to twice this).
const ELECTION_TICKS: usize = 10;
/// Applied entries between snapshots that compact the log.
const COMPACT_EVERY: u64 = 1000;

/// What the replica thread is asked to do.
#[derive(Debug)]
pub enum Input {
    /// Append `command` to the log; answered when it is applied (or cannot be).
    Propose { command: Command, reply: oneshot::Sender<Result<Outcome, Failure>> },
    /// Answered when the state reflects every write committed before the read was asked
    /// (raft's ReadIndex), so that a read of [`Shared::state`] then is linearizable.
    Read { reply: oneshot::Sender<Result<(), Failure>> },
    /// Messages from another member.
    Step(Vec<RaftMessage>),
}

/// What the replica publishes for request handlers.
#[derive(Debug)]
pub struct Shared {
    /// The state machine, as of the last applied entry.
    pub state: RwLock<State>,
    /// The member's raft status.
    pub status: RwLock<MemberStatus>,
    /// The last applied index, for waiting on a change of the state.
    pub applied: tokio::sync::watch::Sender<u64>,
}

/// How to run a replica.
#[derive(Debug, Clone)]
pub struct ReplicaConfig {
    /// This member's raft id (1-based).
    pub id: u64,
    pub name: String,
    /// Every member's raft id.
    pub voters: Vec<u64>,
    /// Where the log, hard state and snapshots are kept.
    pub dir: PathBuf,
}

/// Why a replica could not start.
#[derive(Debug, thiserror::Error)]
pub enum ReplicaError {
    #[error("raft storage: {0}")]
    Storage(#[from] crate::storage::StorageError),
    #[error("raft: {0}")]
    Raft(#[from] raft::Error),
    #[error("the snapshot's state cannot be read or written: {0}")]
    Snapshot(#[source] postcard::Error),
    #[error("cannot start the replica thread: {0}")]
    Thread(#[source] std::io::Error),
}

/// Starts the replica thread. `send` delivers raft messages to the member with the given id
/// (best effort: raft retries what is lost).
///
/// # Errors
///
/// The storage cannot be opened or its state is unreadable.
pub fn start(
    config: &ReplicaConfig,
    send: Box<dyn Fn(u64, Vec<RaftMessage>) + Send>,
) -> Result<(mpsc::Sender<Input>, Arc<Shared>), ReplicaError> {
    let storage = DiskStorage::open(&config.dir, &config.voters)?;
    let snapshot = storage.latest_snapshot();
    let state = State::decode(&snapshot.data).map_err(ReplicaError::Snapshot)?;
    let applied = snapshot.get_metadata().index;
    let raft_config = raft::Config {
        id: config.id,
        election_tick: ELECTION_TICKS,
        heartbeat_tick: HEARTBEAT_TICKS,
        applied,
        max_size_per_msg: 256 * 1024,
        max_inflight_msgs: 256,
        check_quorum: true,
        pre_vote: true,
        ..Default::default()
    };
    raft_config.validate()?;
    let logger = slog::Logger::root(crate::log::TracingDrain, slog::o!());
    let raw = RawNode::new(&raft_config, storage, &logger)?;
    let shared = Arc::new(Shared {
        state: RwLock::new(state),
        status: RwLock::new(MemberStatus {
            id: config.id,
            name: config.name.clone(),
            role: "follower".into(),
            term: 0,
            commit: 0,
            applied,
            leader: 0,
            pid: std::process::id(),
        }),
        applied: tokio::sync::watch::Sender::new(applied),
    });
    let (tx, rx) = mpsc::channel();
    let mut replica = Replica {
        raw,
        shared: shared.clone(),
        send,
        proposals: HashMap::new(),
        reads: HashMap::new(),
        waiting_reads: Vec::new(),
        next_context: 0,
        applied,
        compacted: applied,
        role: StateRole::Follower,
        term: 0,
        snapshots_sent: Vec::new(),
    };
    std::thread::Builder::new()
        .name(format!("raft-{}", config.id))
        .spawn(move || replica.run(&rx))
        .map_err(ReplicaError::Thread)?;
    Ok((tx, shared))
}

struct Replica {
    raw: RawNode<DiskStorage>,
    shared: Arc<Shared>,
    send: Box<dyn Fn(u64, Vec<RaftMessage>) + Send>,
    /// Proposals of this leader waiting for their entry to apply, by entry context.
    proposals: HashMap<Vec<u8>, oneshot::Sender<Result<Outcome, Failure>>>,
    /// Reads waiting for raft to confirm the leadership, by read context.
    reads: HashMap<Vec<u8>, oneshot::Sender<Result<(), Failure>>>,
    /// Confirmed reads waiting for `applied` to reach their index.
    waiting_reads: Vec<(u64, oneshot::Sender<Result<(), Failure>>)>,
    next_context: u64,
    applied: u64,
    compacted: u64,
    role: StateRole,
    term: u64,
    /// Members a snapshot was handed to the transport for in this ready.
    snapshots_sent: Vec<u64>,
}

impl Replica {
    fn run(&mut self, rx: &mpsc::Receiver<Input>) {
        let mut next_tick = Instant::now() + TICK;
        loop {
            let wait = next_tick.saturating_duration_since(Instant::now());
            match rx.recv_timeout(wait) {
                Ok(input) => {
                    self.handle(input);
                    // Take what else is queued before the (fsyncing) ready: one write for many.
                    for input in rx.try_iter().take(1024) {
                        self.handle(input);
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => return,
            }
            if Instant::now() >= next_tick {
                self.raw.tick();
                next_tick += TICK;
                if next_tick < Instant::now() {
                    next_tick = Instant::now() + TICK;
                }
            }
            if let Err(e) = self.on_ready() {
                // A write that cannot be made durable must not be acknowledged; the member
                // cannot go on without losing what it promised, so it stops.
                tracing::error!("raft storage failed, stopping this coordinator: {e}");
                std::process::exit(1);
            }
            self.publish_status();
        }
    }

    fn context(&mut self) -> Vec<u8> {
        self.next_context += 1;
        let mut ctx = self.term.to_le_bytes().to_vec();
        ctx.extend_from_slice(&self.next_context.to_le_bytes());
        ctx
    }

    fn not_leader(&self) -> Failure {
        let leader = self.raw.raft.leader_id;
        Failure::NotLeader { leader: (leader != 0).then(|| leader.to_string()) }
    }

    fn handle(&mut self, input: Input) {
        match input {
            Input::Propose { command, reply } => {
                if self.raw.raft.state != StateRole::Leader {
                    let _ = reply.send(Err(self.not_leader()));
                    return;
                }
                let data = match postcard::to_stdvec(&command) {
                    Ok(d) => d,
                    Err(e) => {
                        let _ = reply.send(Err(Failure::BadRequest(format!("unencodable command: {e}"))));
                        return;
                    }
                };
                let ctx = self.context();
                match self.raw.propose(ctx.clone(), data) {
                    Ok(()) => {
                        self.proposals.insert(ctx, reply);
                    }
                    Err(e) => {
                        let _ = reply.send(Err(Failure::Unavailable(format!("proposal dropped: {e}"))));
                    }
                }
            }
            Input::Read { reply } => {
                if self.raw.raft.state != StateRole::Leader {
                    let _ = reply.send(Err(self.not_leader()));
                    return;
                }
                let ctx = self.context();
                self.raw.read_index(ctx.clone());
                self.reads.insert(ctx, reply);
            }
            Input::Step(messages) => {
                for m in messages {
                    let m = m.to_raft();
                    if let Err(e) = self.raw.step(m) {
                        tracing::debug!("raft message refused: {e}");
                    }
                }
            }
        }
    }

    fn on_ready(&mut self) -> Result<(), ReplicaError> {
        if !self.raw.has_ready() {
            return Ok(());
        }
        let mut ready = self.raw.ready();
        self.deliver(ready.take_messages());
        if !ready.snapshot().is_empty() {
            let snapshot = ready.snapshot().clone();
            let state = State::decode(&snapshot.data).map_err(ReplicaError::Snapshot)?;
            let index = snapshot.get_metadata().index;
            self.raw.store().apply_snapshot(snapshot)?;
            *write(&self.shared.state) = state;
            self.applied = index;
            self.compacted = index;
        }
        let committed = ready.take_committed_entries();
        self.apply(committed);
        if !ready.entries().is_empty() || ready.hs().is_some() {
            self.raw.store().save(ready.hs(), ready.entries())?;
        }
        self.deliver(ready.take_persisted_messages());
        for rs in ready.take_read_states() {
            if let Some(reply) = self.reads.remove(&rs.request_ctx) {
                self.waiting_reads.push((rs.index, reply));
            }
        }
        let mut light = self.raw.advance(ready);
        if let Some(commit) = light.commit_index() {
            let mut hs = self.raw.raft.hard_state();
            hs.commit = commit;
            self.raw.store().save(Some(&hs), &[])?;
        }
        self.deliver(light.take_messages());
        let committed = light.take_committed_entries();
        self.apply(committed);
        self.raw.advance_apply();
        // The transport is best effort, so a snapshot counts as sent once handed to it: raft
        // then probes the member, and if the snapshot was lost the member's answers ask for
        // the compacted entries again and raft sends a new one. Without this report raft would
        // wait for that member's snapshot forever.
        for to in std::mem::take(&mut self.snapshots_sent) {
            self.raw.report_snapshot(to, raft::SnapshotStatus::Finish);
        }
        if *self.shared.applied.borrow() != self.applied {
            self.shared.applied.send_replace(self.applied);
        }
        self.answer_reads();
        self.on_role_change();
        self.compact()?;
        Ok(())
    }

    fn deliver(&mut self, messages: Vec<eraftpb::Message>) {
        let mut by_peer: HashMap<u64, Vec<RaftMessage>> = HashMap::new();
        for m in messages {
            if m.get_msg_type() == eraftpb::MessageType::MsgSnapshot {
                self.snapshots_sent.push(m.to);
            }
            by_peer.entry(m.to).or_default().push(RaftMessage::from_raft(&m));
        }
        for (to, batch) in by_peer {
            (self.send)(to, batch);
        }
    }

    fn apply(&mut self, entries: Vec<eraftpb::Entry>) {
        if entries.is_empty() {
            return;
        }
        let mut state = write(&self.shared.state);
        for entry in entries {
            self.applied = entry.index;
            if entry.data.is_empty() || entry.get_entry_type() != EntryType::EntryNormal {
                // A new leader's empty entry; membership is fixed, so no configuration changes.
                continue;
            }
            let outcome = match postcard::from_bytes::<Command>(&entry.data) {
                Ok(command) => Ok(state.apply(command)),
                Err(e) => {
                    // Only a leader of this cluster writes entries, so this is a bug or a
                    // damaged log: skip it, loudly, the same way on every member.
                    tracing::error!("skipping undecodable log entry {}: {e}", entry.index);
                    Err(Failure::BadRequest("undecodable command".into()))
                }
            };
            if let Some(reply) = self.proposals.remove(&entry.context[..]) {
                let _ = reply.send(outcome);
            }
        }
    }

    fn answer_reads(&mut self) {
        let applied = self.applied;
        let (ready, waiting): (Vec<_>, Vec<_>) = self.waiting_reads.drain(..).partition(|(index, _)| *index <= applied);
        self.waiting_reads = waiting;
        for (_, reply) in ready {
            let _ = reply.send(Ok(()));
        }
    }

    /// A member that stops leading fails what waits on its leadership: the client retries at
    /// the new leader (a submit's request id makes a retry of an entry that did commit the
    /// same guest).
    fn on_role_change(&mut self) {
        let (role, term) = (self.raw.raft.state, self.raw.raft.term);
        if role == self.role && term == self.term {
            return;
        }
        if self.role == StateRole::Leader || term != self.term {
            let failure = || Failure::Unavailable("leadership changed; retry".into());
            for (_, reply) in self.proposals.drain() {
                let _ = reply.send(Err(failure()));
            }
            for (_, reply) in self.reads.drain() {
                let _ = reply.send(Err(failure()));
            }
            for (_, reply) in self.waiting_reads.drain(..) {
                let _ = reply.send(Err(failure()));
            }
        }
        if role == StateRole::Leader && self.role != StateRole::Leader {
            metrics::counter!("shoal_raft_leader_changes_total").increment(1);
            tracing::info!("became the leader in term {term}");
        }
        self.role = role;
        self.term = term;
    }

    fn compact(&mut self) -> Result<(), ReplicaError> {
        if self.applied < self.compacted + COMPACT_EVERY {
            return Ok(());
        }
        let data = read(&self.shared.state).encode().map_err(ReplicaError::Snapshot)?;
        let conf = self.raw.raft.prs().conf().to_conf_state();
        self.raw.store().compact(self.applied, &conf, data)?;
        self.compacted = self.applied;
        Ok(())
    }

    fn publish_status(&self) {
        let raft = &self.raw.raft;
        let role = match raft.state {
            StateRole::Leader => "leader",
            StateRole::Follower => "follower",
            StateRole::Candidate => "candidate",
            StateRole::PreCandidate => "pre-candidate",
        };
        let commit = raft.raft_log.committed;
        let mut status = write(&self.shared.status);
        status.role = role.into();
        status.term = raft.term;
        status.commit = commit;
        status.applied = self.applied;
        status.leader = raft.leader_id;
        metrics::gauge!("shoal_raft_term").set(raft.term as f64);
        metrics::gauge!("shoal_raft_commit_index").set(commit as f64);
        metrics::gauge!("shoal_raft_is_leader").set(if raft.state == StateRole::Leader { 1.0 } else { 0.0 });
    }
}

/// Locks for reading; a poisoned lock (a panicked writer) still holds a usable state.
pub fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Locks for writing, as [`read`].
pub fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(std::sync::PoisonError::into_inner)
}
