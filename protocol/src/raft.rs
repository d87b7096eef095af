//! Raft's messages and log records as shoal's own serde types.
//!
//! The coordinators replicate their state with raft-rs, whose types are protobuf messages
//! (`raft::eraftpb`). These mirror them field for field so that protobuf stays inside the
//! coordinator's raft core: what travels between coordinators is a postcard frame of
//! [`RaftMessage`] like every other shoal message, and what the coordinator's log and snapshot
//! files hold are postcard encodings of [`Entry`], [`HardState`] and [`Snapshot`]. This crate
//! does not depend on raft; the conversions live in the coordinator (`shoal_coordinator::wire`).
//!
//! Two protobuf fields are left out: `Entry::sync_log` and `Message::deprecated_priority`, both
//! deprecated upstream. raft-rs 0.7 reads `deprecated_priority` only when `priority` is zero, so
//! the conversion folds it into [`RaftMessage::priority`].
//!
//! Postcard encodes an enum variant by its position, so the order of the variants of
//! [`MessageType`] and [`EntryType`] is part of the wire and disk formats: add new variants at
//! the end, never reorder them.

use serde::{Deserialize, Serialize};

/// What a [`RaftMessage`] asks or answers (`eraftpb::MessageType`, in the same order).
///
/// Some types are local to a node (`Hup`, `Beat`, `Unreachable`, `SnapStatus`, `CheckQuorum`)
/// and never sent; they are here so that the mapping is total. raft-rs refuses to step a local
/// message that arrives from a peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MessageType {
    Hup,
    Beat,
    Propose,
    Append,
    AppendResponse,
    RequestVote,
    RequestVoteResponse,
    Snapshot,
    Heartbeat,
    HeartbeatResponse,
    Unreachable,
    SnapStatus,
    CheckQuorum,
    TransferLeader,
    TimeoutNow,
    ReadIndex,
    ReadIndexResp,
    RequestPreVote,
    RequestPreVoteResponse,
}

/// One raft message between coordinators (`eraftpb::Message`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RaftMessage {
    pub msg_type: MessageType,
    /// The raft id of the receiver.
    pub to: u64,
    /// The raft id of the sender.
    pub from: u64,
    pub term: u64,
    /// The term of the entry at `index`: with `Append`, the entry just before `entries`.
    pub log_term: u64,
    pub index: u64,
    pub entries: Vec<Entry>,
    pub commit: u64,
    pub commit_term: u64,
    pub snapshot: Option<Snapshot>,
    pub request_snapshot: u64,
    pub reject: bool,
    pub reject_hint: u64,
    pub context: Vec<u8>,
    /// The sender's election priority (raft-rs's `priority`, which supersedes
    /// `deprecated_priority`).
    pub priority: i64,
}

/// What an [`Entry`]'s data holds (`eraftpb::EntryType`, in the same order).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum EntryType {
    /// A command for the state machine.
    #[default]
    Normal,
    /// An encoded `eraftpb::ConfChange`.
    ConfChange,
    /// An encoded `eraftpb::ConfChangeV2`.
    ConfChangeV2,
}

/// One raft log entry (`eraftpb::Entry`, without the deprecated `sync_log`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub entry_type: EntryType,
    pub term: u64,
    pub index: u64,
    pub data: Vec<u8>,
    pub context: Vec<u8>,
}

/// The state a raft node must persist before it answers (`eraftpb::HardState`): its term, its
/// vote in that term and how far it knows the log to be committed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HardState {
    pub term: u64,
    pub vote: u64,
    pub commit: u64,
}

/// A cluster configuration (`eraftpb::ConfState`). `voters_outgoing` is non-empty while the
/// cluster is in joint consensus.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfState {
    pub voters: Vec<u64>,
    pub learners: Vec<u64>,
    pub voters_outgoing: Vec<u64>,
    pub learners_next: Vec<u64>,
    pub auto_leave: bool,
}

/// Where a [`Snapshot`] stands in the log (`eraftpb::SnapshotMetadata`): the last entry it
/// covers and the configuration as of that entry.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotMetadata {
    pub conf_state: ConfState,
    pub index: u64,
    pub term: u64,
}

/// A snapshot of the replicated state machine (`eraftpb::Snapshot`). The data is opaque here:
/// the state machine alone encodes and decodes it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub data: Vec<u8>,
    pub metadata: SnapshotMetadata,
}
