//! Conversions between shoal's raft types ([`shoal_protocol::raft`]) and raft-rs's protobuf
//! types ([`raft::eraftpb`]).
//!
//! raft-rs speaks protobuf; shoal's frames and files speak postcard. Messages cross this module
//! on their way to and from the network, and entries, hard states and snapshots on their way to
//! and from disk. The mapping is total in both directions: every wire enum is closed and has a
//! protobuf counterpart, and no field is validated here, so a hostile peer's message converts
//! without panicking. Whether its contents make sense is raft-rs's business once it is stepped
//! (raft-rs refuses local message types from peers, for instance).
//!
//! Two deprecated protobuf fields are not carried: `Entry::sync_log` (ignored by raft-rs 0.7)
//! and `Message::deprecated_priority`, which [`FromRaft`] folds into `priority` the way raft-rs
//! reads it, and [`ToRaft`] fills from `priority` the way raft-rs writes it.

use raft::eraftpb;
use shoal_protocol::raft::{
    ConfState, Entry, EntryType, HardState, MessageType, RaftMessage, Snapshot, SnapshotMetadata,
};

/// A shoal wire value that becomes its raft-rs counterpart.
pub trait ToRaft {
    /// The raft-rs type.
    type Raft;
    /// Converts `self`, moving its byte buffers without copying them.
    fn to_raft(self) -> Self::Raft;
}

/// A shoal wire value made from its raft-rs counterpart.
pub trait FromRaft<R>: Sized {
    /// Converts `raft`, copying its byte buffers.
    fn from_raft(raft: &R) -> Self;
}

impl ToRaft for MessageType {
    type Raft = eraftpb::MessageType;
    fn to_raft(self) -> eraftpb::MessageType {
        use eraftpb::MessageType as M;
        match self {
            Self::Hup => M::MsgHup,
            Self::Beat => M::MsgBeat,
            Self::Propose => M::MsgPropose,
            Self::Append => M::MsgAppend,
            Self::AppendResponse => M::MsgAppendResponse,
            Self::RequestVote => M::MsgRequestVote,
            Self::RequestVoteResponse => M::MsgRequestVoteResponse,
            Self::Snapshot => M::MsgSnapshot,
            Self::Heartbeat => M::MsgHeartbeat,
            Self::HeartbeatResponse => M::MsgHeartbeatResponse,
            Self::Unreachable => M::MsgUnreachable,
            Self::SnapStatus => M::MsgSnapStatus,
            Self::CheckQuorum => M::MsgCheckQuorum,
            Self::TransferLeader => M::MsgTransferLeader,
            Self::TimeoutNow => M::MsgTimeoutNow,
            Self::ReadIndex => M::MsgReadIndex,
            Self::ReadIndexResp => M::MsgReadIndexResp,
            Self::RequestPreVote => M::MsgRequestPreVote,
            Self::RequestPreVoteResponse => M::MsgRequestPreVoteResponse,
        }
    }
}

impl FromRaft<eraftpb::MessageType> for MessageType {
    fn from_raft(raft: &eraftpb::MessageType) -> Self {
        use eraftpb::MessageType as M;
        match raft {
            M::MsgHup => Self::Hup,
            M::MsgBeat => Self::Beat,
            M::MsgPropose => Self::Propose,
            M::MsgAppend => Self::Append,
            M::MsgAppendResponse => Self::AppendResponse,
            M::MsgRequestVote => Self::RequestVote,
            M::MsgRequestVoteResponse => Self::RequestVoteResponse,
            M::MsgSnapshot => Self::Snapshot,
            M::MsgHeartbeat => Self::Heartbeat,
            M::MsgHeartbeatResponse => Self::HeartbeatResponse,
            M::MsgUnreachable => Self::Unreachable,
            M::MsgSnapStatus => Self::SnapStatus,
            M::MsgCheckQuorum => Self::CheckQuorum,
            M::MsgTransferLeader => Self::TransferLeader,
            M::MsgTimeoutNow => Self::TimeoutNow,
            M::MsgReadIndex => Self::ReadIndex,
            M::MsgReadIndexResp => Self::ReadIndexResp,
            M::MsgRequestPreVote => Self::RequestPreVote,
            M::MsgRequestPreVoteResponse => Self::RequestPreVoteResponse,
        }
    }
}

impl ToRaft for EntryType {
    type Raft = eraftpb::EntryType;
    fn to_raft(self) -> eraftpb::EntryType {
        match self {
            Self::Normal => eraftpb::EntryType::EntryNormal,
            Self::ConfChange => eraftpb::EntryType::EntryConfChange,
            Self::ConfChangeV2 => eraftpb::EntryType::EntryConfChangeV2,
        }
    }
}

impl FromRaft<eraftpb::EntryType> for EntryType {
    fn from_raft(raft: &eraftpb::EntryType) -> Self {
        match raft {
            eraftpb::EntryType::EntryNormal => Self::Normal,
            eraftpb::EntryType::EntryConfChange => Self::ConfChange,
            eraftpb::EntryType::EntryConfChangeV2 => Self::ConfChangeV2,
        }
    }
}

impl ToRaft for Entry {
    type Raft = eraftpb::Entry;
    fn to_raft(self) -> eraftpb::Entry {
        eraftpb::Entry {
            entry_type: self.entry_type.to_raft(),
            term: self.term,
            index: self.index,
            data: self.data.into(),
            context: self.context.into(),
            ..Default::default()
        }
    }
}

impl FromRaft<eraftpb::Entry> for Entry {
    fn from_raft(raft: &eraftpb::Entry) -> Self {
        Self {
            entry_type: EntryType::from_raft(&raft.get_entry_type()),
            term: raft.term,
            index: raft.index,
            data: raft.data.to_vec(),
            context: raft.context.to_vec(),
        }
    }
}

impl ToRaft for HardState {
    type Raft = eraftpb::HardState;
    fn to_raft(self) -> eraftpb::HardState {
        eraftpb::HardState { term: self.term, vote: self.vote, commit: self.commit, ..Default::default() }
    }
}

impl FromRaft<eraftpb::HardState> for HardState {
    fn from_raft(raft: &eraftpb::HardState) -> Self {
        Self { term: raft.term, vote: raft.vote, commit: raft.commit }
    }
}

impl ToRaft for ConfState {
    type Raft = eraftpb::ConfState;
    fn to_raft(self) -> eraftpb::ConfState {
        eraftpb::ConfState {
            voters: self.voters,
            learners: self.learners,
            voters_outgoing: self.voters_outgoing,
            learners_next: self.learners_next,
            auto_leave: self.auto_leave,
            ..Default::default()
        }
    }
}

impl FromRaft<eraftpb::ConfState> for ConfState {
    fn from_raft(raft: &eraftpb::ConfState) -> Self {
        Self {
            voters: raft.voters.clone(),
            learners: raft.learners.clone(),
            voters_outgoing: raft.voters_outgoing.clone(),
            learners_next: raft.learners_next.clone(),
            auto_leave: raft.auto_leave,
        }
    }
}

impl ToRaft for SnapshotMetadata {
    type Raft = eraftpb::SnapshotMetadata;
    fn to_raft(self) -> eraftpb::SnapshotMetadata {
        eraftpb::SnapshotMetadata {
            conf_state: Some(self.conf_state.to_raft()).into(),
            index: self.index,
            term: self.term,
            ..Default::default()
        }
    }
}

impl FromRaft<eraftpb::SnapshotMetadata> for SnapshotMetadata {
    fn from_raft(raft: &eraftpb::SnapshotMetadata) -> Self {
        Self { conf_state: ConfState::from_raft(raft.get_conf_state()), index: raft.index, term: raft.term }
    }
}

impl ToRaft for Snapshot {
    type Raft = eraftpb::Snapshot;
    fn to_raft(self) -> eraftpb::Snapshot {
        eraftpb::Snapshot {
            data: self.data.into(),
            metadata: Some(self.metadata.to_raft()).into(),
            ..Default::default()
        }
    }
}

impl FromRaft<eraftpb::Snapshot> for Snapshot {
    /// An absent protobuf metadata reads as its default, as protobuf's own getter has it.
    fn from_raft(raft: &eraftpb::Snapshot) -> Self {
        Self { data: raft.data.to_vec(), metadata: SnapshotMetadata::from_raft(raft.get_metadata()) }
    }
}

impl ToRaft for RaftMessage {
    type Raft = eraftpb::Message;
    fn to_raft(self) -> eraftpb::Message {
        eraftpb::Message {
            msg_type: self.msg_type.to_raft(),
            to: self.to,
            from: self.from,
            term: self.term,
            log_term: self.log_term,
            index: self.index,
            entries: self.entries.into_iter().map(ToRaft::to_raft).collect(),
            commit: self.commit,
            commit_term: self.commit_term,
            snapshot: self.snapshot.map(ToRaft::to_raft).into(),
            request_snapshot: self.request_snapshot,
            reject: self.reject,
            reject_hint: self.reject_hint,
            context: self.context.into(),
            // raft-rs fills the deprecated field too when the priority is positive, for peers
            // that predate `priority`; do the same.
            deprecated_priority: u64::try_from(self.priority).unwrap_or(0),
            priority: self.priority,
            ..Default::default()
        }
    }
}

impl FromRaft<eraftpb::Message> for RaftMessage {
    fn from_raft(raft: &eraftpb::Message) -> Self {
        // raft-rs's own reading (`raft::get_priority`): the new field wins unless it is zero.
        let priority = if raft.priority != 0 {
            raft.priority
        } else {
            i64::try_from(raft.deprecated_priority).unwrap_or(i64::MAX)
        };
        Self {
            msg_type: MessageType::from_raft(&raft.get_msg_type()),
            to: raft.to,
            from: raft.from,
            term: raft.term,
            log_term: raft.log_term,
            index: raft.index,
            entries: raft.get_entries().iter().map(Entry::from_raft).collect(),
            commit: raft.commit,
            commit_term: raft.commit_term,
            snapshot: raft.snapshot.as_ref().map(Snapshot::from_raft),
            request_snapshot: raft.request_snapshot,
            reject: raft.reject,
            reject_hint: raft.reject_hint,
            context: raft.context.to_vec(),
            priority,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL_MESSAGE_TYPES: [MessageType; 19] = [
        MessageType::Hup,
        MessageType::Beat,
        MessageType::Propose,
        MessageType::Append,
        MessageType::AppendResponse,
        MessageType::RequestVote,
        MessageType::RequestVoteResponse,
        MessageType::Snapshot,
        MessageType::Heartbeat,
        MessageType::HeartbeatResponse,
        MessageType::Unreachable,
        MessageType::SnapStatus,
        MessageType::CheckQuorum,
        MessageType::TransferLeader,
        MessageType::TimeoutNow,
        MessageType::ReadIndex,
        MessageType::ReadIndexResp,
        MessageType::RequestPreVote,
        MessageType::RequestPreVoteResponse,
    ];

    fn entry(index: u64, entry_type: EntryType) -> Entry {
        Entry {
            entry_type,
            term: index + 100,
            index,
            data: vec![1, 2, u8::try_from(index).unwrap_or(u8::MAX)],
            context: vec![9, 8],
        }
    }

    fn snapshot() -> Snapshot {
        Snapshot {
            data: b"state machine".to_vec(),
            metadata: SnapshotMetadata {
                conf_state: ConfState {
                    voters: vec![1, 2, 3],
                    learners: vec![4],
                    voters_outgoing: vec![1, 2, 5],
                    learners_next: vec![5],
                    auto_leave: true,
                },
                index: 77,
                term: 6,
            },
        }
    }

    /// Every field set to a distinct non-default value, so that a dropped or swapped field shows.
    fn message(msg_type: MessageType) -> RaftMessage {
        RaftMessage {
            msg_type,
            to: 2,
            from: 3,
            term: 4,
            log_term: 5,
            index: 6,
            entries: vec![
                entry(7, EntryType::Normal),
                entry(8, EntryType::ConfChange),
                entry(9, EntryType::ConfChangeV2),
            ],
            commit: 10,
            commit_term: 11,
            snapshot: Some(snapshot()),
            request_snapshot: 12,
            reject: true,
            reject_hint: 13,
            context: vec![14, 15],
            priority: 16,
        }
    }

    #[test]
    fn message_types_map_to_the_same_protobuf_values() {
        // Our variants are declared in protobuf order, so each one's position is its protobuf
        // number; this also proves the mapping is a bijection.
        for (number, ty) in ALL_MESSAGE_TYPES.into_iter().enumerate() {
            let raft = ty.to_raft();
            assert_eq!(raft as usize, number, "{ty:?}");
            assert_eq!(MessageType::from_raft(&raft), ty);
        }
    }

    #[test]
    fn message_round_trips_every_field() {
        for ty in ALL_MESSAGE_TYPES {
            let m = message(ty);
            let raft = m.clone().to_raft();
            assert_eq!(raft.get_msg_type(), ty.to_raft());
            assert_eq!((raft.to, raft.from, raft.term, raft.log_term, raft.index), (2, 3, 4, 5, 6));
            assert_eq!((raft.commit, raft.commit_term, raft.request_snapshot), (10, 11, 12));
            assert!(raft.reject);
            assert_eq!(raft.reject_hint, 13);
            assert_eq!(&raft.context[..], &[14, 15]);
            assert_eq!(raft.priority, 16);
            assert_eq!(raft.get_entries().len(), 3);
            assert_eq!(raft.get_snapshot().get_metadata().index, 77);
            assert_eq!(RaftMessage::from_raft(&raft), m);
        }
    }

    #[test]
    fn message_without_snapshot_round_trips() {
        let mut m = message(MessageType::Heartbeat);
        m.snapshot = None;
        let raft = m.clone().to_raft();
        assert!(!raft.has_snapshot());
        assert_eq!(RaftMessage::from_raft(&raft), m);
    }

    #[test]
    fn priority_round_trips_and_reads_the_deprecated_field() {
        for priority in [i64::MIN, -1, 0, 1, i64::MAX] {
            let mut m = message(MessageType::RequestVote);
            m.priority = priority;
            assert_eq!(RaftMessage::from_raft(&m.clone().to_raft()).priority, priority);
        }
        // A message from a peer that only sets the old field.
        let mut raft = eraftpb::Message { deprecated_priority: 42, ..Default::default() };
        assert_eq!(RaftMessage::from_raft(&raft).priority, 42);
        raft.deprecated_priority = u64::MAX;
        assert_eq!(RaftMessage::from_raft(&raft).priority, i64::MAX);
    }

    #[test]
    fn entry_round_trips_every_field() {
        for ty in [EntryType::Normal, EntryType::ConfChange, EntryType::ConfChangeV2] {
            let e = entry(3, ty);
            let raft = e.clone().to_raft();
            assert_eq!(raft.get_entry_type(), ty.to_raft());
            assert_eq!((raft.term, raft.index), (103, 3));
            assert_eq!(&raft.data[..], &[1, 2, 3]);
            assert_eq!(&raft.context[..], &[9, 8]);
            assert_eq!(Entry::from_raft(&raft), e);
        }
        assert_eq!(EntryType::ConfChangeV2.to_raft() as i32, 2);
    }

    #[test]
    fn hard_state_conf_state_and_snapshot_round_trip() {
        let hs = HardState { term: 1, vote: 2, commit: 3 };
        let raft = hs.clone().to_raft();
        assert_eq!((raft.term, raft.vote, raft.commit), (1, 2, 3));
        assert_eq!(HardState::from_raft(&raft), hs);

        let snap = snapshot();
        let raft = snap.clone().to_raft();
        let cs = raft.get_metadata().get_conf_state();
        assert_eq!((&cs.voters[..], &cs.learners[..]), (&[1, 2, 3][..], &[4][..]));
        assert_eq!((&cs.voters_outgoing[..], &cs.learners_next[..]), (&[1, 2, 5][..], &[5][..]));
        assert!(cs.auto_leave);
        assert_eq!((raft.get_metadata().index, raft.get_metadata().term), (77, 6));
        assert_eq!(&raft.data[..], b"state machine");
        assert_eq!(Snapshot::from_raft(&raft), snap);
        assert_eq!(ConfState::from_raft(cs), snap.metadata.conf_state);
    }

    #[test]
    fn defaults_map_to_defaults() {
        assert_eq!(Snapshot::from_raft(&eraftpb::Snapshot::default()), Snapshot::default());
        assert_eq!(Entry::default().to_raft(), eraftpb::Entry::default());
        assert_eq!(HardState::default().to_raft(), eraftpb::HardState::default());
    }
}
