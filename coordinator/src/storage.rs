//! Durable raft storage: the coordinator's log, hard state and latest snapshot, kept in memory
//! for raft-rs to read and in two files of one directory for restarts.
//!
//! ```text
//! DIR/wal: write-ahead log, only ever appended to (or replaced whole, see below)
//!  offset  size  field
//!  ------  ----  ----------------------------------------------------------------------
//!       0     8  magic     "SHOALWAL"
//!       8     4  version   1 (u32, little endian)
//!      12        records, one after the other, each:
//!                  +0     4  len       bytes of payload (u32, little endian)
//!                  +4     8  checksum  the first 8 bytes of blake3(payload), as a u64 LE
//!                 +12   len  payload   postcard `WalRecord`: `HardState` or `Entries`
//!
//! DIR/snapshot: the latest snapshot, replaced atomically
//!  offset  size  field
//!  ------  ----  ----------------------------------------------------------------------
//!       0     8  magic     "SHOALSNP"
//!       8     4  version   1 (u32, little endian)
//!      12     8  len       bytes of payload (u64, little endian)
//!      20   len  payload   postcard `shoal_protocol::raft::Snapshot`: metadata and data
//!  20+len    32  checksum  blake3 of every byte before it
//! ```
//!
//! **Replay.** Opening a directory reads the snapshot, then replays the WAL's records in
//! order: a `HardState` record replaces the hard state; an `Entries` record starting at index
//! `i` replaces every entry at `i` or after (raft's truncation rule), exactly as
//! [`DiskStorage::save`] did in memory. The snapshot's state-machine data is opaque here.
//!
//! **Durability.** Every write is fsynced before it returns, so once [`DiskStorage::save`]
//! returns, raft may be told the entries and hard state are persisted. `save` writes its
//! entries before its hard state, in one write and one fsync: a crash can lose a suffix of it
//! but never keep a commit index without the entries it covers. A crash during an append
//! leaves a torn tail: a record cut short, or one whose checksum fails. Opening truncates the
//! WAL at the first such record, with a warning saying how many bytes were dropped. Nothing
//! after it was acknowledged, since its own fsync had not returned. A bad record followed by
//! good ones (bit rot rather than a crash) is treated the same way, deliberately: pages of an
//! unsynced write can reach the disk out of order, so good bytes after a bad record do not
//! prove the bad one was acknowledged, and refusing to open would turn an ordinary crash into a
//! node that cannot start. A record whose checksum holds but which does not decode is not a
//! crash artefact and is an error.
//!
//! **Compaction and installed snapshots** replace both files: first the snapshot (temp file,
//! fsync, rename, fsync of the directory), then the WAL the same way, holding only the hard
//! state and the entries after the snapshot. A crash between the two renames leaves the new
//! snapshot beside the old WAL. Replay then keeps the old WAL's entries after the snapshot only
//! if the WAL holds the snapshot's own (index, term): that proves they continue the history the
//! snapshot ends (always so after compaction; after a leader's snapshot the rest is a stale
//! suffix and is dropped, as [`DiskStorage::apply_snapshot`] drops it in memory).
//!
//! **Configuration.** The snapshot file always exists: a fresh directory gets one at index 0
//! with the initial voters and no data, so every member boots the same configuration (raft-rs's
//! `MemStorage::new_with_conf_state`). The conf state raft starts from is the latest
//! snapshot's: after a restart the state machine is rebuilt from the snapshot and the log after
//! it is applied again, configuration changes included.
//!
//! **Order within a raft `Ready`**: [`DiskStorage::apply_snapshot`] first if it holds one, then
//! one [`DiskStorage::save`] of its entries and hard state; after `advance`,
//! [`DiskStorage::set_commit`] for the light ready's commit index.
//!
//! **Architecture Invariant:** the in-memory log is `snapshot index + 1 ..= last index` without
//! gaps, and memory changes only after the disk write it mirrors has been fsynced. A failed
//! write poisons the storage: the file may hold a partial record that later appends would bury
//! in the middle of the WAL, so every later write fails until the directory is reopened (which
//! truncates the partial record away).

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use raft::eraftpb;
use raft::{GetEntriesContext, RaftState, Storage};
use serde::{Deserialize, Serialize};
use shoal_protocol::raft as wire;

use crate::wire::{FromRaft, ToRaft};

const WAL_FILE: &str = "wal";
const WAL_TMP_FILE: &str = "wal.tmp";
const SNAPSHOT_FILE: &str = "snapshot";
const SNAPSHOT_TMP_FILE: &str = "snapshot.tmp";

const WAL_MAGIC: [u8; 8] = *b"SHOALWAL";
const WAL_VERSION: u32 = 1;
/// Magic and version.
const WAL_HEADER_LEN: usize = 12;
/// Length and checksum before each record's payload.
const RECORD_HEADER_LEN: usize = 12;

const SNAPSHOT_MAGIC: [u8; 8] = *b"SHOALSNP";
const SNAPSHOT_VERSION: u32 = 1;
/// Magic, version and payload length.
const SNAPSHOT_HEADER_LEN: usize = 20;
const SNAPSHOT_CHECKSUM_LEN: usize = 32;

/// Why the storage could not be opened or written.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// A file system operation failed.
    #[error("{action} {}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The snapshot file is damaged: refusing it is the only safe answer, since it holds
    /// committed state that the log no longer does.
    #[error("{}: corrupt snapshot file: {reason}", path.display())]
    CorruptSnapshot { path: PathBuf, reason: &'static str },
    /// The snapshot file's payload passed its checksum but does not decode.
    #[error("{}: undecodable snapshot", path.display())]
    SnapshotDecode {
        path: PathBuf,
        #[source]
        source: postcard::Error,
    },
    /// The WAL is damaged in a way a crash during an append cannot explain.
    #[error("{}: corrupt write-ahead log at byte {offset}: {reason}", path.display())]
    CorruptWal { path: PathBuf, offset: u64, reason: &'static str },
    /// A WAL record passed its checksum but does not decode.
    #[error("{}: undecodable write-ahead log record at byte {offset}", path.display())]
    WalDecode {
        path: PathBuf,
        offset: u64,
        #[source]
        source: postcard::Error,
    },
    /// The directory has a WAL with records but no snapshot file.
    #[error("{}: the snapshot file is missing beside a non-empty write-ahead log", dir.display())]
    MissingSnapshot { dir: PathBuf },
    /// The directory has a snapshot file but no WAL.
    #[error("{}: the write-ahead log is missing beside a snapshot file", dir.display())]
    MissingWal { dir: PathBuf },
    /// A record could not be encoded.
    #[error("unencodable record")]
    Encode(#[source] postcard::Error),
    /// A record's payload does not fit the `u32` length field.
    #[error("a record of {len} bytes exceeds the write-ahead log's limit")]
    RecordTooLarge { len: usize },
    /// Appended entries do not have consecutive indexes.
    #[error("appended entries are not consecutive: index {found} follows {previous}")]
    NotConsecutive { previous: u64, found: u64 },
    /// Appended entries start inside the snapshot.
    #[error("appending at index {index} overwrites compacted entries (first index {first_index})")]
    Compacted { index: u64, first_index: u64 },
    /// Appended entries start past the end of the log.
    #[error("appending at index {index} leaves a gap after the last index {last_index}")]
    Gap { index: u64, last_index: u64 },
    /// A hard state commits entries the log does not hold.
    #[error("commit index {commit} is beyond the last index {last_index}")]
    CommitBeyondLog { commit: u64, last_index: u64 },
    /// A snapshot to install is not newer than the one stored.
    #[error("snapshot at index {index} is not newer than the stored one at {stored}")]
    SnapshotOutOfDate { index: u64, stored: u64 },
    /// Compaction asked for an index that is not committed.
    #[error("cannot compact to index {index}: only {commit} is committed")]
    CompactUncommitted { index: u64, commit: u64 },
    /// An earlier write failed; the storage must be reopened.
    #[error("an earlier write failed; reopen the storage")]
    Poisoned,
}

/// One WAL record.
#[derive(Debug, Serialize, Deserialize)]
enum WalRecord {
    HardState(wire::HardState),
    /// Entries with consecutive indexes, replacing every entry from the first one's index on.
    Entries(Vec<wire::Entry>),
}

/// The state raft reads, as it stands on disk.
struct Core {
    hard_state: eraftpb::HardState,
    /// The latest snapshot, data included. Its conf state is the one raft starts from.
    snapshot: eraftpb::Snapshot,
    /// `entries[k].index == snapshot index + 1 + k`.
    entries: Vec<eraftpb::Entry>,
}

impl Core {
    fn snapshot_index(&self) -> u64 {
        self.snapshot.get_metadata().index
    }

    fn first_index(&self) -> u64 {
        self.snapshot_index().saturating_add(1)
    }

    fn last_index(&self) -> u64 {
        self.entries.last().map_or(self.snapshot_index(), |e| e.index)
    }

    /// The position in `entries` of the entry at `index`, if it is there.
    fn position(&self, index: u64) -> Option<usize> {
        let k = usize::try_from(index.checked_sub(self.first_index())?).ok()?;
        (k < self.entries.len()).then_some(k)
    }

    /// Checks that `entries` may be appended (raft's rules, as errors rather than panics) and
    /// returns the position they start at.
    fn append_position(&self, entries: &[eraftpb::Entry]) -> Result<Option<usize>, StorageError> {
        let Some(first) = entries.first() else { return Ok(None) };
        check_consecutive(entries)?;
        if first.index < self.first_index() {
            return Err(StorageError::Compacted { index: first.index, first_index: self.first_index() });
        }
        if first.index > self.last_index().saturating_add(1) {
            return Err(StorageError::Gap { index: first.index, last_index: self.last_index() });
        }
        // The index is within `first_index ..= last_index + 1`, so the position is at most
        // `entries.len()`.
        Ok(Some(self.position(first.index).unwrap_or(self.entries.len())))
    }
}

/// What the coordinator's raft node reads its log from: raft-rs's [`Storage`], durable in a
/// directory (see the module documentation for the files and their recovery).
pub struct DiskStorage {
    dir: PathBuf,
    inner: RwLock<Inner>,
}

struct Inner {
    core: Core,
    /// The WAL, positioned at its end.
    wal: File,
    /// Set when a write failed; see the module documentation.
    poisoned: bool,
}

impl fmt::Debug for DiskStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = self.read();
        f.debug_struct("DiskStorage")
            .field("dir", &self.dir)
            .field("first_index", &inner.core.first_index())
            .field("last_index", &inner.core.last_index())
            .field("hard_state", &inner.core.hard_state)
            .field("poisoned", &inner.poisoned)
            .finish()
    }
}

impl DiskStorage {
    /// Opens the storage in `dir`, creating the directory if it is missing. A fresh directory
    /// starts with the configuration `voters`; an existing one has its configuration on disk
    /// and `voters` is ignored.
    ///
    /// # Errors
    ///
    /// [`StorageError::Io`] if the files cannot be read or written, and the corruption errors
    /// for damage that is not a torn tail of the WAL (which is truncated away).
    pub fn open(dir: impl AsRef<Path>, voters: &[u64]) -> Result<Self, StorageError> {
        let dir = dir.as_ref().to_path_buf();
        if !exists(&dir)? {
            fs::create_dir_all(&dir).map_err(io_error("creating", &dir))?;
            // The new directory's own entry must be durable too.
            let parent = dir.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
            sync_dir(parent)?;
        }
        for tmp in [WAL_TMP_FILE, SNAPSHOT_TMP_FILE] {
            let path = dir.join(tmp);
            if let Err(e) = fs::remove_file(&path)
                && e.kind() != io::ErrorKind::NotFound
            {
                return Err(io_error("removing", &path)(e));
            }
        }
        let wal_path = dir.join(WAL_FILE);
        let snapshot_path = dir.join(SNAPSHOT_FILE);
        let has_wal = exists(&wal_path)?;
        let has_snapshot = exists(&snapshot_path)?;
        let (core, wal) = match (has_snapshot, has_wal) {
            (true, true) => load(&dir)?,
            (true, false) => return Err(StorageError::MissingWal { dir }),
            // Initialisation writes the WAL first: a header-only WAL without a snapshot is a
            // crash during initialisation.
            (false, true) if !wal_is_bare(&wal_path)? => return Err(StorageError::MissingSnapshot { dir }),
            (false, _) => initialise(&dir, voters)?,
        };
        Ok(Self { dir, inner: RwLock::new(Inner { core, wal, poisoned: false }) })
    }

    /// The directory the storage lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The stored snapshot, data included, even the initial one at index 0 (which
    /// [`Storage::snapshot`] does not serve): what the state machine is rebuilt from at start.
    pub fn latest_snapshot(&self) -> eraftpb::Snapshot {
        // The data is a reference-counted buffer: cloning does not copy it.
        self.read().core.snapshot.clone()
    }

    /// Persists one raft `Ready`: appends `entries` (replacing any entries from the first
    /// one's index on) and then records `hard_state`, in one write and one fsync. Call
    /// [`apply_snapshot`](Self::apply_snapshot) first if the ready holds a snapshot.
    ///
    /// # Errors
    ///
    /// [`StorageError::NotConsecutive`], [`StorageError::Compacted`], [`StorageError::Gap`] or
    /// [`StorageError::CommitBeyondLog`] for input raft would not produce (nothing is written),
    /// [`StorageError::Io`] or [`StorageError::Poisoned`] if the write fails.
    pub fn save(
        &self,
        hard_state: Option<&eraftpb::HardState>,
        entries: &[eraftpb::Entry],
    ) -> Result<(), StorageError> {
        self.write().save(&self.dir, hard_state, entries)
    }

    /// Appends `entries`: [`save`](Self::save) without a hard state.
    ///
    /// # Errors
    ///
    /// As [`save`](Self::save).
    pub fn append(&self, entries: &[eraftpb::Entry]) -> Result<(), StorageError> {
        self.save(None, entries)
    }

    /// Records `hard_state`: [`save`](Self::save) without entries.
    ///
    /// # Errors
    ///
    /// As [`save`](Self::save).
    pub fn set_hard_state(&self, hard_state: &eraftpb::HardState) -> Result<(), StorageError> {
        self.save(Some(hard_state), &[])
    }

    /// Records a new commit index, keeping the term and vote (for a light ready's
    /// `commit_index`).
    ///
    /// # Errors
    ///
    /// As [`save`](Self::save).
    pub fn set_commit(&self, commit: u64) -> Result<(), StorageError> {
        let mut inner = self.write();
        let mut hs = inner.core.hard_state.clone();
        hs.commit = commit;
        inner.save(&self.dir, Some(&hs), &[])
    }

    /// Installs a snapshot received from the leader: stores it, drops the whole log (raft
    /// installs a snapshot only when the log does not already hold its index and term), sets
    /// the commit index to the snapshot's and raises the term to it.
    ///
    /// # Errors
    ///
    /// [`StorageError::SnapshotOutOfDate`] if it is not newer than the stored snapshot
    /// (nothing is written); [`StorageError::Io`] or [`StorageError::Poisoned`] if the write
    /// fails.
    pub fn apply_snapshot(&self, snapshot: eraftpb::Snapshot) -> Result<(), StorageError> {
        let mut inner = self.write();
        let (index, term) = (snapshot.get_metadata().index, snapshot.get_metadata().term);
        let stored = inner.core.snapshot_index();
        if index <= stored {
            return Err(StorageError::SnapshotOutOfDate { index, stored });
        }
        let mut hs = inner.core.hard_state.clone();
        hs.term = hs.term.max(term);
        hs.commit = index;
        inner.replace_files(&self.dir, &snapshot, &hs, &[])?;
        inner.core = Core { hard_state: hs, snapshot, entries: Vec::new() };
        Ok(())
    }

    /// Compacts the log: the state machine has applied everything up to `index`, where the
    /// configuration is `conf_state` and its state is `data`. Stores that as the snapshot
    /// (the term is the log's at `index`) and rewrites the WAL to hold only the hard state
    /// and the entries after `index`. An `index` the stored snapshot already covers changes
    /// nothing.
    ///
    /// # Errors
    ///
    /// [`StorageError::CompactUncommitted`] if `index` is not committed (nothing is written);
    /// [`StorageError::Io`] or [`StorageError::Poisoned`] if the write fails.
    pub fn compact(&self, index: u64, conf_state: &eraftpb::ConfState, data: Vec<u8>) -> Result<(), StorageError> {
        let mut inner = self.write();
        if index <= inner.core.snapshot_index() {
            return Ok(());
        }
        let commit = inner.core.hard_state.commit;
        let position = match inner.core.position(index) {
            Some(position) if index <= commit => position,
            _ => return Err(StorageError::CompactUncommitted { index, commit }),
        };
        let meta = eraftpb::SnapshotMetadata {
            conf_state: Some(conf_state.clone()).into(),
            index,
            term: inner.core.entries[position].term,
            ..Default::default()
        };
        let snapshot = eraftpb::Snapshot { data: data.into(), metadata: Some(meta).into(), ..Default::default() };
        let hs = inner.core.hard_state.clone();
        let rest = inner.core.entries[position + 1..].to_vec();
        inner.replace_files(&self.dir, &snapshot, &hs, &rest)?;
        inner.core.snapshot = snapshot;
        inner.core.entries = rest;
        Ok(())
    }

    fn read(&self) -> RwLockReadGuard<'_, Inner> {
        // A writer changes memory only after its disk write succeeded, in steps that do not
        // panic, so a panicking holder cannot leave the core half-updated.
        self.inner.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Inner {
    /// [`DiskStorage::save`], under the lock.
    fn save(
        &mut self,
        dir: &Path,
        hard_state: Option<&eraftpb::HardState>,
        entries: &[eraftpb::Entry],
    ) -> Result<(), StorageError> {
        if hard_state.is_none() && entries.is_empty() {
            return Ok(());
        }
        let position = self.core.append_position(entries)?;
        if let Some(hs) = hard_state {
            let last_index = entries.last().map_or(self.core.last_index(), |e| e.index);
            if hs.commit > last_index {
                return Err(StorageError::CommitBeyondLog { commit: hs.commit, last_index });
            }
        }
        let mut records = Vec::with_capacity(2);
        if !entries.is_empty() {
            records.push(WalRecord::Entries(entries.iter().map(wire::Entry::from_raft).collect()));
        }
        if let Some(hs) = hard_state {
            records.push(WalRecord::HardState(wire::HardState::from_raft(hs)));
        }
        self.append_records(dir, &records)?;
        if let Some(position) = position {
            self.core.entries.truncate(position);
            self.core.entries.extend_from_slice(entries);
        }
        if let Some(hs) = hard_state {
            self.core.hard_state = hs.clone();
        }
        Ok(())
    }

    /// Appends `records` to the WAL in one write and fsyncs it.
    fn append_records(&mut self, dir: &Path, records: &[WalRecord]) -> Result<(), StorageError> {
        if self.poisoned {
            return Err(StorageError::Poisoned);
        }
        let mut buf = Vec::new();
        for record in records {
            encode_record(record, &mut buf)?;
        }
        let result = self.wal.write_all(&buf).and_then(|()| self.wal.sync_data());
        result.map_err(|e| {
            self.poisoned = true;
            io_error("appending to", &dir.join(WAL_FILE))(e)
        })
    }

    /// Replaces the snapshot file with `snapshot`, then the WAL with one holding `hard_state`
    /// and `entries`, each atomically (see the module documentation for a crash between them).
    fn replace_files(
        &mut self,
        dir: &Path,
        snapshot: &eraftpb::Snapshot,
        hard_state: &eraftpb::HardState,
        entries: &[eraftpb::Entry],
    ) -> Result<(), StorageError> {
        if self.poisoned {
            return Err(StorageError::Poisoned);
        }
        let snapshot_bytes = encode_snapshot(snapshot)?;
        let wal_bytes = new_wal(hard_state, entries)?;
        let result = write_atomically(dir, SNAPSHOT_TMP_FILE, SNAPSHOT_FILE, &snapshot_bytes)
            .and_then(|_| write_atomically(dir, WAL_TMP_FILE, WAL_FILE, &wal_bytes));
        match result {
            Ok(wal) => {
                self.wal = wal;
                Ok(())
            }
            Err(e) => {
                self.poisoned = true;
                Err(e)
            }
        }
    }
}

impl Storage for DiskStorage {
    fn initial_state(&self) -> raft::Result<RaftState> {
        let inner = self.read();
        let conf_state = inner.core.snapshot.get_metadata().get_conf_state().clone();
        Ok(RaftState::new(inner.core.hard_state.clone(), conf_state))
    }

    /// Unlike `MemStorage`, a range past the last index is `Unavailable` rather than a panic.
    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        _context: GetEntriesContext,
    ) -> raft::Result<Vec<eraftpb::Entry>> {
        let inner = self.read();
        let core = &inner.core;
        if low < core.first_index() {
            return Err(raft::Error::Store(raft::StorageError::Compacted));
        }
        if high > core.last_index().saturating_add(1) || low > high {
            return Err(raft::Error::Store(raft::StorageError::Unavailable));
        }
        let start = core.position(low).unwrap_or(core.entries.len());
        let end = core.position(high).unwrap_or(core.entries.len());
        let mut entries = core.entries[start..end].to_vec();
        raft::util::limit_size(&mut entries, max_size.into());
        Ok(entries)
    }

    fn term(&self, index: u64) -> raft::Result<u64> {
        let inner = self.read();
        let core = &inner.core;
        if index == core.snapshot_index() {
            return Ok(core.snapshot.get_metadata().term);
        }
        if index < core.first_index() {
            return Err(raft::Error::Store(raft::StorageError::Compacted));
        }
        match core.position(index) {
            Some(k) => Ok(core.entries[k].term),
            None => Err(raft::Error::Store(raft::StorageError::Unavailable)),
        }
    }

    fn first_index(&self) -> raft::Result<u64> {
        Ok(self.read().core.first_index())
    }

    fn last_index(&self) -> raft::Result<u64> {
        Ok(self.read().core.last_index())
    }

    /// The stored snapshot, the one the last [`DiskStorage::compact`] or
    /// [`DiskStorage::apply_snapshot`] wrote. Until one exists, or while it is older than
    /// `request_index`, the answer is `SnapshotTemporarilyUnavailable`, and raft asks again
    /// later.
    fn snapshot(&self, request_index: u64, _to: u64) -> raft::Result<eraftpb::Snapshot> {
        let inner = self.read();
        let index = inner.core.snapshot_index();
        if index == 0 || index < request_index {
            return Err(raft::Error::Store(raft::StorageError::SnapshotTemporarilyUnavailable));
        }
        // The data is a reference-counted buffer: cloning does not copy it.
        Ok(inner.core.snapshot.clone())
    }
}

fn io_error(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> StorageError {
    let path = path.to_path_buf();
    move |source| StorageError::Io { action, path, source }
}

fn exists(path: &Path) -> Result<bool, StorageError> {
    path.try_exists().map_err(io_error("checking", path))
}

fn check_consecutive(entries: &[eraftpb::Entry]) -> Result<(), StorageError> {
    for pair in entries.windows(2) {
        if pair[0].index.checked_add(1) != Some(pair[1].index) {
            return Err(StorageError::NotConsecutive { previous: pair[0].index, found: pair[1].index });
        }
    }
    Ok(())
}

fn checksum(payload: &[u8]) -> u64 {
    let hash = blake3::hash(payload);
    let mut first = [0; 8];
    first.copy_from_slice(&hash.as_bytes()[..8]);
    u64::from_le_bytes(first)
}

/// Appends `record`, framed, to `out`.
fn encode_record(record: &WalRecord, out: &mut Vec<u8>) -> Result<(), StorageError> {
    let payload = postcard::to_stdvec(record).map_err(StorageError::Encode)?;
    let len = u32::try_from(payload.len()).map_err(|_| StorageError::RecordTooLarge { len: payload.len() })?;
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&checksum(&payload).to_le_bytes());
    out.extend_from_slice(&payload);
    Ok(())
}

fn wal_header() -> Vec<u8> {
    let mut out = WAL_MAGIC.to_vec();
    out.extend_from_slice(&WAL_VERSION.to_le_bytes());
    out
}

/// A whole WAL file holding `hard_state` and `entries`.
fn new_wal(hard_state: &eraftpb::HardState, entries: &[eraftpb::Entry]) -> Result<Vec<u8>, StorageError> {
    let mut out = wal_header();
    if !entries.is_empty() {
        encode_record(&WalRecord::Entries(entries.iter().map(wire::Entry::from_raft).collect()), &mut out)?;
    }
    encode_record(&WalRecord::HardState(wire::HardState::from_raft(hard_state)), &mut out)?;
    Ok(out)
}

fn encode_snapshot(snapshot: &eraftpb::Snapshot) -> Result<Vec<u8>, StorageError> {
    let payload = postcard::to_stdvec(&wire::Snapshot::from_raft(snapshot)).map_err(StorageError::Encode)?;
    let mut out = Vec::with_capacity(SNAPSHOT_HEADER_LEN + payload.len() + SNAPSHOT_CHECKSUM_LEN);
    out.extend_from_slice(&SNAPSHOT_MAGIC);
    out.extend_from_slice(&SNAPSHOT_VERSION.to_le_bytes());
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(&payload);
    let hash = blake3::hash(&out);
    out.extend_from_slice(hash.as_bytes());
    Ok(out)
}

fn decode_snapshot(path: &Path, bytes: &[u8]) -> Result<eraftpb::Snapshot, StorageError> {
    let corrupt = |reason| StorageError::CorruptSnapshot { path: path.to_path_buf(), reason };
    if bytes.len() < SNAPSHOT_HEADER_LEN + SNAPSHOT_CHECKSUM_LEN {
        return Err(corrupt("shorter than its header and checksum"));
    }
    if bytes[..8] != SNAPSHOT_MAGIC {
        return Err(corrupt("bad magic"));
    }
    if bytes[8..12] != SNAPSHOT_VERSION.to_le_bytes() {
        return Err(corrupt("unsupported version"));
    }
    let (body, sum) = bytes.split_at(bytes.len() - SNAPSHOT_CHECKSUM_LEN);
    let mut len = [0; 8];
    len.copy_from_slice(&bytes[12..20]);
    if usize::try_from(u64::from_le_bytes(len)).ok() != Some(body.len() - SNAPSHOT_HEADER_LEN) {
        return Err(corrupt("length does not match the file"));
    }
    if blake3::hash(body).as_bytes() != sum {
        return Err(corrupt("checksum mismatch"));
    }
    let decode_error = |source| StorageError::SnapshotDecode { path: path.to_path_buf(), source };
    let (snapshot, rest) =
        postcard::take_from_bytes::<wire::Snapshot>(&body[SNAPSHOT_HEADER_LEN..]).map_err(decode_error)?;
    if !rest.is_empty() {
        return Err(decode_error(postcard::Error::DeserializeBadEncoding));
    }
    Ok(snapshot.to_raft())
}

/// Writes `bytes` to `dir/name` atomically: to `dir/tmp` first, fsynced, renamed over `name`,
/// then the directory fsynced. Returns the file, open for writing at its end.
fn write_atomically(dir: &Path, tmp: &str, name: &str, bytes: &[u8]) -> Result<File, StorageError> {
    let tmp_path = dir.join(tmp);
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp_path)
        .map_err(io_error("creating", &tmp_path))?;
    file.write_all(bytes).and_then(|()| file.sync_all()).map_err(io_error("writing", &tmp_path))?;
    let path = dir.join(name);
    fs::rename(&tmp_path, &path).map_err(io_error("renaming into place", &path))?;
    sync_dir(dir)?;
    Ok(file)
}

fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io_error("syncing", dir))
}

/// Whether the WAL holds nothing but its header (or not even that).
fn wal_is_bare(path: &Path) -> Result<bool, StorageError> {
    let len = fs::metadata(path).map_err(io_error("reading", path))?.len();
    Ok(len <= WAL_HEADER_LEN as u64)
}

/// A fresh storage: the WAL, then the snapshot that marks the directory initialised.
fn initialise(dir: &Path, voters: &[u64]) -> Result<(Core, File), StorageError> {
    let wal = write_atomically(dir, WAL_TMP_FILE, WAL_FILE, &wal_header())?;
    let mut snapshot = eraftpb::Snapshot::default();
    snapshot.mut_metadata().mut_conf_state().voters = voters.to_vec();
    write_atomically(dir, SNAPSHOT_TMP_FILE, SNAPSHOT_FILE, &encode_snapshot(&snapshot)?)?;
    Ok((Core { hard_state: eraftpb::HardState::default(), snapshot, entries: Vec::new() }, wal))
}

/// Reads the snapshot and replays the WAL, truncating a torn tail.
fn load(dir: &Path) -> Result<(Core, File), StorageError> {
    let snapshot_path = dir.join(SNAPSHOT_FILE);
    let snapshot_bytes = fs::read(&snapshot_path).map_err(io_error("reading", &snapshot_path))?;
    let snapshot = decode_snapshot(&snapshot_path, &snapshot_bytes)?;
    drop(snapshot_bytes);

    let wal_path = dir.join(WAL_FILE);
    let bytes = fs::read(&wal_path).map_err(io_error("reading", &wal_path))?;
    let (records, valid_len) = parse_wal(&wal_path, &bytes)?;
    if valid_len < bytes.len() {
        tracing::warn!(
            wal = %wal_path.display(),
            offset = valid_len,
            dropped_bytes = bytes.len() - valid_len,
            "truncating a torn tail of the raft write-ahead log (a crash during an append)"
        );
        let file = OpenOptions::new().write(true).open(&wal_path).map_err(io_error("opening", &wal_path))?;
        file.set_len(valid_len as u64).and_then(|()| file.sync_all()).map_err(io_error("truncating", &wal_path))?;
    }
    drop(bytes);
    let core = replay(&wal_path, snapshot, records)?;
    let wal = OpenOptions::new().append(true).open(&wal_path).map_err(io_error("opening", &wal_path))?;
    Ok((core, wal))
}

/// The WAL's records up to the first torn or corrupt one, with their offsets, and the length
/// of the prefix that holds them.
fn parse_wal(path: &Path, bytes: &[u8]) -> Result<(Vec<(u64, WalRecord)>, usize), StorageError> {
    if bytes.len() < WAL_HEADER_LEN || bytes[..8] != WAL_MAGIC {
        return Err(StorageError::CorruptWal { path: path.to_path_buf(), offset: 0, reason: "bad header" });
    }
    if bytes[8..12] != WAL_VERSION.to_le_bytes() {
        return Err(StorageError::CorruptWal { path: path.to_path_buf(), offset: 8, reason: "unsupported version" });
    }
    let mut records = Vec::new();
    let mut offset = WAL_HEADER_LEN;
    while let Some(header) = bytes.get(offset..offset + RECORD_HEADER_LEN) {
        let (len, sum) = header.split_at(4);
        let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]);
        let mut sum8 = [0; 8];
        sum8.copy_from_slice(sum);
        let start = offset + RECORD_HEADER_LEN;
        let Some(payload) = usize::try_from(len).ok().and_then(|len| bytes.get(start..start.checked_add(len)?)) else {
            break;
        };
        if checksum(payload) != u64::from_le_bytes(sum8) {
            break;
        }
        let (record, rest) = postcard::take_from_bytes::<WalRecord>(payload)
            .map_err(|source| StorageError::WalDecode { path: path.to_path_buf(), offset: offset as u64, source })?;
        if !rest.is_empty() {
            return Err(StorageError::WalDecode {
                path: path.to_path_buf(),
                offset: offset as u64,
                source: postcard::Error::DeserializeBadEncoding,
            });
        }
        records.push((offset as u64, record));
        offset = start + payload.len();
    }
    Ok((records, offset))
}

/// Rebuilds the core from `snapshot` and the WAL's `records` (see the module documentation).
fn replay(path: &Path, snapshot: eraftpb::Snapshot, records: Vec<(u64, WalRecord)>) -> Result<Core, StorageError> {
    let corrupt = |offset, reason| StorageError::CorruptWal { path: path.to_path_buf(), offset, reason };
    // The WAL's own log, consecutive, starting wherever its first entries record starts.
    let mut log: Vec<eraftpb::Entry> = Vec::new();
    let mut hard_state = eraftpb::HardState::default();
    let mut log_end_offset = 0;
    for (offset, record) in records {
        match record {
            WalRecord::HardState(hs) => hard_state = hs.to_raft(),
            WalRecord::Entries(entries) => {
                let entries: Vec<eraftpb::Entry> = entries.into_iter().map(ToRaft::to_raft).collect();
                let Some(first) = entries.first().map(|e| e.index) else { continue };
                check_consecutive(&entries).map_err(|_| corrupt(offset, "entries not consecutive"))?;
                let keep = match (log.first(), log.last()) {
                    (Some(head), Some(tail)) => {
                        if first < head.index || first > tail.index.saturating_add(1) {
                            return Err(corrupt(offset, "entries neither overwrite nor extend the log"));
                        }
                        usize::try_from(first - head.index).map_err(|_| corrupt(offset, "log too long"))?
                    }
                    _ => 0,
                };
                log.truncate(keep);
                log.extend(entries);
                log_end_offset = offset;
            }
        }
    }

    let (index, term) = (snapshot.get_metadata().index, snapshot.get_metadata().term);
    let entries = match log.first().map(|e| e.index) {
        None => Vec::new(),
        Some(first) if first == index + 1 => log,
        Some(first) if first > index + 1 => return Err(corrupt(log_end_offset, "a gap after the snapshot")),
        // The WAL predates the snapshot (a crash between the two renames of a compaction or
        // an installed snapshot): keep what follows only if it continues the snapshot's history.
        Some(first) => {
            let at_snapshot = usize::try_from(index - first).ok().and_then(|k| log.get(k));
            match at_snapshot {
                Some(e) if e.term == term => log.split_off(usize::try_from(index - first + 1).unwrap_or(log.len())),
                _ => Vec::new(),
            }
        }
    };
    hard_state.term = hard_state.term.max(term);
    hard_state.commit = hard_state.commit.max(index);
    let core = Core { hard_state, snapshot, entries };
    if core.hard_state.commit > core.last_index() {
        return Err(corrupt(log_end_offset, "commit index beyond the log"));
    }
    Ok(core)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use raft::storage::MemStorage;

    use super::*;

    /// A directory under the system's temp dir, removed when dropped.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> Self {
            static COUNTER: AtomicU64 = AtomicU64::new(0);
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let path = std::env::temp_dir().join(format!("shoal-storage-{}-{name}-{n}", std::process::id()));
            let _ = fs::remove_dir_all(&path);
            Self(path)
        }

        fn wal(&self) -> PathBuf {
            self.0.join(WAL_FILE)
        }

        fn snapshot(&self) -> PathBuf {
            self.0.join(SNAPSHOT_FILE)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn entry(index: u64, term: u64) -> eraftpb::Entry {
        let data = format!("entry {index} of term {term}").into_bytes().into();
        eraftpb::Entry { index, term, data, ..Default::default() }
    }

    fn entries(range: std::ops::RangeInclusive<u64>, term: u64) -> Vec<eraftpb::Entry> {
        range.map(|i| entry(i, term)).collect()
    }

    fn hard_state(term: u64, vote: u64, commit: u64) -> eraftpb::HardState {
        eraftpb::HardState { term, vote, commit, ..Default::default() }
    }

    fn conf_state(voters: &[u64]) -> eraftpb::ConfState {
        eraftpb::ConfState { voters: voters.to_vec(), ..Default::default() }
    }

    fn all_entries(s: &impl Storage) -> Vec<eraftpb::Entry> {
        let (first, last) = (s.first_index().unwrap(), s.last_index().unwrap());
        // MemStorage panics when asked for an empty range of an empty log.
        if first > last {
            return Vec::new();
        }
        s.entries(first, last + 1, None, GetEntriesContext::empty(false)).unwrap()
    }

    /// Everything raft reads at start-up, for comparing two storages.
    fn observe(s: &impl Storage) -> (u64, u64, Vec<eraftpb::Entry>, eraftpb::HardState, eraftpb::ConfState) {
        let state = s.initial_state().unwrap();
        (s.first_index().unwrap(), s.last_index().unwrap(), all_entries(s), state.hard_state, state.conf_state)
    }

    fn flip(path: &Path, at: usize, mask: u8) {
        let mut bytes = fs::read(path).unwrap();
        bytes[at] ^= mask;
        fs::write(path, bytes).unwrap();
    }

    fn wal_len(dir: &TempDir) -> usize {
        usize::try_from(fs::metadata(dir.wal()).unwrap().len()).unwrap()
    }

    #[test]
    fn fresh_directory_starts_with_the_voters() {
        let dir = TempDir::new("fresh");
        let s = DiskStorage::open(&dir.0, &[1, 2, 3]).unwrap();
        let state = s.initial_state().unwrap();
        assert!(state.initialized());
        assert_eq!(state.conf_state.voters, vec![1, 2, 3]);
        assert_eq!(state.hard_state, eraftpb::HardState::default());
        assert_eq!((s.first_index().unwrap(), s.last_index().unwrap(), s.term(0).unwrap()), (1, 0, 0));
        assert_eq!(
            s.snapshot(0, 2).unwrap_err(),
            raft::Error::Store(raft::StorageError::SnapshotTemporarilyUnavailable)
        );
        let initial = s.latest_snapshot();
        assert_eq!((initial.get_metadata().index, initial.get_metadata().get_conf_state().voters.len()), (0, 3));
        assert!(initial.data.is_empty());
        drop(s);
        // The configuration is on disk: other voters given at reopen do not change it.
        let s = DiskStorage::open(&dir.0, &[7]).unwrap();
        assert_eq!(s.initial_state().unwrap().conf_state.voters, vec![1, 2, 3]);
    }

    #[test]
    fn reopen_returns_the_same_entries_and_hard_state() {
        let dir = TempDir::new("reopen");
        let s = DiskStorage::open(&dir.0, &[1, 2, 3]).unwrap();
        s.save(Some(&hard_state(1, 1, 0)), &entries(1..=3, 1)).unwrap();
        s.save(Some(&hard_state(2, 2, 3)), &entries(4..=5, 2)).unwrap();
        s.set_commit(4).unwrap();
        s.append(&entries(6..=6, 2)).unwrap();
        let before = observe(&s);
        assert_eq!(before.3, hard_state(2, 2, 4));
        assert_eq!(before.2.len(), 6);
        drop(s);
        let s = DiskStorage::open(&dir.0, &[1, 2, 3]).unwrap();
        assert_eq!(observe(&s), before);
        assert_eq!(s.term(5).unwrap(), 2);
        assert_eq!(s.term(3).unwrap(), 1);
        assert_eq!(s.term(7).unwrap_err(), raft::Error::Store(raft::StorageError::Unavailable));
    }

    #[test]
    fn appending_overwrites_the_suffix() {
        let dir = TempDir::new("overwrite");
        let s = DiskStorage::open(&dir.0, &[1]).unwrap();
        s.append(&entries(1..=5, 1)).unwrap();
        s.append(&entries(3..=4, 2)).unwrap();
        assert_eq!(s.last_index().unwrap(), 4);
        let want: Vec<_> = entries(1..=2, 1).into_iter().chain(entries(3..=4, 2)).collect();
        assert_eq!(all_entries(&s), want);
        drop(s);
        let s = DiskStorage::open(&dir.0, &[1]).unwrap();
        assert_eq!(all_entries(&s), want);
        // Overwriting from the very first entry, and extending after a reopen.
        s.append(&entries(1..=1, 3)).unwrap();
        s.append(&entries(2..=3, 3)).unwrap();
        drop(s);
        let s = DiskStorage::open(&dir.0, &[1]).unwrap();
        assert_eq!(all_entries(&s), entries(1..=3, 3));
    }

    #[test]
    fn bad_appends_are_refused_without_writing() {
        let dir = TempDir::new("bad-appends");
        let s = DiskStorage::open(&dir.0, &[1]).unwrap();
        s.save(Some(&hard_state(1, 1, 3)), &entries(1..=3, 1)).unwrap();
        let len = wal_len(&dir);
        assert!(matches!(s.append(&entries(5..=6, 1)), Err(StorageError::Gap { index: 5, last_index: 3 })));
        let mut gappy = entries(4..=5, 1);
        gappy[1].index = 7;
        assert!(matches!(s.append(&gappy), Err(StorageError::NotConsecutive { previous: 4, found: 7 })));
        assert!(matches!(s.set_commit(4), Err(StorageError::CommitBeyondLog { commit: 4, last_index: 3 })));
        s.compact(2, &conf_state(&[1]), vec![]).unwrap();
        assert!(matches!(s.append(&entries(2..=2, 1)), Err(StorageError::Compacted { index: 2, first_index: 3 })));
        assert!(matches!(s.compact(4, &conf_state(&[1]), vec![]), Err(StorageError::CompactUncommitted { .. })));
        assert_eq!(all_entries(&s), entries(3..=3, 1));
        // The refusals wrote nothing: the WAL is what the compaction left.
        let len_after_compaction = wal_len(&dir);
        assert!(len_after_compaction < len);
        s.append(&entries(4..=4, 1)).unwrap();
        assert!(wal_len(&dir) > len_after_compaction);
    }

    /// Two records, then a third whose bytes `[len_a, len_b)` the tests damage.
    fn storage_with_a_last_record(dir: &TempDir) -> (Vec<eraftpb::Entry>, eraftpb::HardState, usize, usize) {
        let s = DiskStorage::open(&dir.0, &[1, 2]).unwrap();
        let hs = hard_state(1, 2, 3);
        s.save(Some(&hs), &entries(1..=3, 1)).unwrap();
        let len_a = wal_len(dir);
        s.append(&entries(4..=5, 1)).unwrap();
        let len_b = wal_len(dir);
        (entries(1..=3, 1), hs, len_a, len_b)
    }

    #[test]
    fn a_torn_tail_at_any_byte_is_truncated() {
        let dir = TempDir::new("torn");
        let (want, hs, len_a, len_b) = storage_with_a_last_record(&dir);
        let pristine = fs::read(dir.wal()).unwrap();
        for cut in len_a..len_b {
            fs::write(dir.wal(), &pristine[..cut]).unwrap();
            let s = DiskStorage::open(&dir.0, &[1, 2]).unwrap();
            assert_eq!(all_entries(&s), want, "cut at {cut}");
            assert_eq!(s.initial_state().unwrap().hard_state, hs);
            assert_eq!(wal_len(&dir), len_a, "cut at {cut}");
            // Appends after the truncation land after the last good record.
            s.append(&entries(4..=4, 2)).unwrap();
            drop(s);
            let s = DiskStorage::open(&dir.0, &[1, 2]).unwrap();
            assert_eq!(s.last_index().unwrap(), 4);
            assert_eq!(s.term(4).unwrap(), 2);
        }
    }

    #[test]
    fn a_flipped_bit_in_the_last_record_drops_it() {
        let dir = TempDir::new("bitflip");
        let (want, _, len_a, len_b) = storage_with_a_last_record(&dir);
        let pristine = fs::read(dir.wal()).unwrap();
        for at in len_a..len_b {
            for mask in [0x01, 0x80] {
                fs::write(dir.wal(), &pristine).unwrap();
                flip(&dir.wal(), at, mask);
                let s = DiskStorage::open(&dir.0, &[1, 2]).unwrap();
                assert_eq!(all_entries(&s), want, "flip {mask:#x} at {at}");
                assert_eq!(wal_len(&dir), len_a);
            }
        }
    }

    #[test]
    fn a_damaged_wal_header_is_refused() {
        let dir = TempDir::new("wal-header");
        storage_with_a_last_record(&dir);
        flip(&dir.wal(), 3, 0x20);
        assert!(matches!(DiskStorage::open(&dir.0, &[1]), Err(StorageError::CorruptWal { offset: 0, .. })));
    }

    #[test]
    fn compaction_survives_reopen() {
        let dir = TempDir::new("compact");
        let s = DiskStorage::open(&dir.0, &[1, 2, 3]).unwrap();
        s.append(&entries(1..=4, 1)).unwrap();
        s.save(Some(&hard_state(2, 1, 8)), &entries(5..=10, 2)).unwrap();
        let len_before = wal_len(&dir);
        s.compact(5, &conf_state(&[1, 2, 4]), b"state at 5".to_vec()).unwrap();
        assert!(wal_len(&dir) < len_before);
        let check = |s: &DiskStorage| {
            assert_eq!((s.first_index().unwrap(), s.last_index().unwrap()), (6, 10));
            assert_eq!(s.term(5).unwrap(), 2);
            assert_eq!(s.term(4).unwrap_err(), raft::Error::Store(raft::StorageError::Compacted));
            assert_eq!(
                s.entries(5, 7, None, GetEntriesContext::empty(false)).unwrap_err(),
                raft::Error::Store(raft::StorageError::Compacted)
            );
            assert_eq!(all_entries(s), entries(6..=10, 2));
            let snap = s.snapshot(5, 2).unwrap();
            assert_eq!((snap.get_metadata().index, snap.get_metadata().term), (5, 2));
            assert_eq!(&snap.data[..], b"state at 5");
            assert_eq!(s.latest_snapshot(), snap);
            assert_eq!(
                s.snapshot(6, 2).unwrap_err(),
                raft::Error::Store(raft::StorageError::SnapshotTemporarilyUnavailable)
            );
            let state = s.initial_state().unwrap();
            assert_eq!(state.conf_state.voters, vec![1, 2, 4]);
            assert_eq!(state.hard_state, hard_state(2, 1, 8));
        };
        check(&s);
        // Compacting to an index the snapshot covers changes nothing.
        s.compact(3, &conf_state(&[9]), b"older".to_vec()).unwrap();
        check(&s);
        drop(s);
        let s = DiskStorage::open(&dir.0, &[1]).unwrap();
        check(&s);
        s.append(&entries(11..=11, 3)).unwrap();
        drop(s);
        let s = DiskStorage::open(&dir.0, &[1]).unwrap();
        assert_eq!(s.last_index().unwrap(), 11);
        // Compacting everything leaves an empty log after the snapshot.
        s.set_commit(11).unwrap();
        s.compact(11, &conf_state(&[1]), vec![]).unwrap();
        drop(s);
        let s = DiskStorage::open(&dir.0, &[1]).unwrap();
        assert_eq!((s.first_index().unwrap(), s.last_index().unwrap(), s.term(11).unwrap()), (12, 11, 3));
    }

    #[test]
    fn a_crash_between_the_renames_of_a_compaction_keeps_the_log() {
        let dir = TempDir::new("compact-crash");
        let s = DiskStorage::open(&dir.0, &[1]).unwrap();
        s.save(Some(&hard_state(2, 1, 8)), &entries(1..=10, 2)).unwrap();
        let old_wal = fs::read(dir.wal()).unwrap();
        s.compact(5, &conf_state(&[1]), b"five".to_vec()).unwrap();
        drop(s);
        fs::write(dir.wal(), old_wal).unwrap();
        let s = DiskStorage::open(&dir.0, &[1]).unwrap();
        assert_eq!((s.first_index().unwrap(), s.last_index().unwrap()), (6, 10));
        assert_eq!(all_entries(&s), entries(6..=10, 2));
        assert_eq!(s.initial_state().unwrap().hard_state, hard_state(2, 1, 8));
    }

    fn leader_snapshot(index: u64, term: u64, voters: &[u64]) -> eraftpb::Snapshot {
        let meta = eraftpb::SnapshotMetadata {
            conf_state: Some(conf_state(voters)).into(),
            index,
            term,
            ..Default::default()
        };
        eraftpb::Snapshot { data: b"leader's state".to_vec().into(), metadata: Some(meta).into(), ..Default::default() }
    }

    #[test]
    fn an_installed_snapshot_survives_reopen() {
        let dir = TempDir::new("install");
        let s = DiskStorage::open(&dir.0, &[1, 2, 3]).unwrap();
        s.save(Some(&hard_state(1, 1, 2)), &entries(1..=5, 1)).unwrap();
        s.apply_snapshot(leader_snapshot(10, 3, &[1, 2, 4])).unwrap();
        let check = |s: &DiskStorage| {
            assert_eq!((s.first_index().unwrap(), s.last_index().unwrap(), s.term(10).unwrap()), (11, 10, 3));
            let state = s.initial_state().unwrap();
            assert_eq!(state.hard_state, hard_state(3, 1, 10));
            assert_eq!(state.conf_state.voters, vec![1, 2, 4]);
            assert_eq!(&s.snapshot(0, 1).unwrap().data[..], b"leader's state");
        };
        check(&s);
        assert!(matches!(
            s.apply_snapshot(leader_snapshot(10, 3, &[1])),
            Err(StorageError::SnapshotOutOfDate { index: 10, stored: 10 })
        ));
        drop(s);
        let s = DiskStorage::open(&dir.0, &[1, 2, 3]).unwrap();
        check(&s);
        s.append(&entries(11..=12, 3)).unwrap();
        drop(s);
        let s = DiskStorage::open(&dir.0, &[1, 2, 3]).unwrap();
        assert_eq!(all_entries(&s), entries(11..=12, 3));
    }

    #[test]
    fn a_crash_between_the_renames_of_an_install_drops_only_a_stale_suffix() {
        // The old log does not hold the snapshot's (index, term): everything after goes.
        let dir = TempDir::new("install-crash-stale");
        let s = DiskStorage::open(&dir.0, &[1]).unwrap();
        s.save(Some(&hard_state(1, 1, 2)), &entries(1..=12, 1)).unwrap();
        let old_wal = fs::read(dir.wal()).unwrap();
        s.apply_snapshot(leader_snapshot(10, 3, &[1])).unwrap();
        drop(s);
        fs::write(dir.wal(), &old_wal).unwrap();
        let s = DiskStorage::open(&dir.0, &[1]).unwrap();
        assert_eq!((s.first_index().unwrap(), s.last_index().unwrap()), (11, 10));
        assert_eq!(s.initial_state().unwrap().hard_state, hard_state(3, 1, 10));
        drop(s);

        // It does: the entries after continue the snapshot's history and stay.
        let dir = TempDir::new("install-crash-matching");
        let s = DiskStorage::open(&dir.0, &[1]).unwrap();
        s.save(Some(&hard_state(1, 1, 2)), &entries(1..=12, 1)).unwrap();
        let old_wal = fs::read(dir.wal()).unwrap();
        s.apply_snapshot(leader_snapshot(10, 1, &[1])).unwrap();
        drop(s);
        fs::write(dir.wal(), &old_wal).unwrap();
        let s = DiskStorage::open(&dir.0, &[1]).unwrap();
        assert_eq!(all_entries(&s), entries(11..=12, 1));
    }

    #[test]
    fn a_damaged_snapshot_file_is_refused() {
        let dir = TempDir::new("bad-snapshot");
        let s = DiskStorage::open(&dir.0, &[1]).unwrap();
        s.save(Some(&hard_state(1, 1, 3)), &entries(1..=3, 1)).unwrap();
        s.compact(2, &conf_state(&[1]), b"applied state".to_vec()).unwrap();
        drop(s);
        let pristine = fs::read(dir.snapshot()).unwrap();
        for at in 0..pristine.len() {
            fs::write(dir.snapshot(), &pristine).unwrap();
            flip(&dir.snapshot(), at, 0x04);
            let err = DiskStorage::open(&dir.0, &[1]).unwrap_err();
            assert!(matches!(err, StorageError::CorruptSnapshot { .. }), "flip at {at}: {err:?}");
        }
        for cut in [0, 10, pristine.len() - 1] {
            fs::write(dir.snapshot(), &pristine[..cut]).unwrap();
            assert!(matches!(DiskStorage::open(&dir.0, &[1]), Err(StorageError::CorruptSnapshot { .. })));
        }
        fs::remove_file(dir.snapshot()).unwrap();
        assert!(matches!(DiskStorage::open(&dir.0, &[1]), Err(StorageError::MissingSnapshot { .. })));
        fs::write(dir.snapshot(), &pristine).unwrap();
        let s = DiskStorage::open(&dir.0, &[1]).unwrap();
        assert_eq!(all_entries(&s), entries(3..=3, 1));
        drop(s);
        fs::remove_file(dir.wal()).unwrap();
        assert!(matches!(DiskStorage::open(&dir.0, &[1]), Err(StorageError::MissingWal { .. })));
    }

    #[test]
    fn a_crash_during_initialisation_initialises_again() {
        let dir = TempDir::new("init-crash");
        drop(DiskStorage::open(&dir.0, &[1, 2]).unwrap());
        fs::remove_file(dir.snapshot()).unwrap();
        let s = DiskStorage::open(&dir.0, &[1, 2]).unwrap();
        assert_eq!(s.initial_state().unwrap().conf_state.voters, vec![1, 2]);
    }

    /// A small deterministic generator (xorshift64*), so that failures reproduce.
    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
        }
    }

    /// The same operations on `MemStorage` and on `DiskStorage` (reopened now and then) read
    /// back the same: first and last index, terms, entries (with size limits) and hard state.
    #[test]
    fn behaves_like_mem_storage() {
        let dir = TempDir::new("differential");
        let mut disk = DiskStorage::open(&dir.0, &[1, 2, 3]).unwrap();
        let mem = MemStorage::new_with_conf_state(conf_state(&[1, 2, 3]));
        let mut rng = Rng(0x5eed_1234_abcd_0001);
        let mut term = 1;
        // Overwriting appends, compactions, installed snapshots and reopens done, so that the
        // test fails if the generator stops exercising one of them.
        let mut done = [0; 4];
        for step in 0..400 {
            let (first, last) = (mem.first_index().unwrap(), mem.last_index().unwrap());
            let commit = mem.initial_state().unwrap().hard_state.commit;
            match rng.below(10) {
                0..=4 => {
                    // Append, possibly overwriting a suffix above the commit index.
                    term += rng.below(2);
                    let start = (commit + 1).max(first) + rng.below(last + 2 - (commit + 1).max(first));
                    let new = entries(start..=start + rng.below(4), term);
                    done[0] += usize::from(start <= last);
                    mem.wl().append(&new).unwrap();
                    disk.append(&new).unwrap();
                }
                5 | 6 => {
                    let hs = hard_state(term, rng.below(4), commit + rng.below(last - commit + 1));
                    mem.wl().set_hardstate(hs.clone());
                    disk.set_hard_state(&hs).unwrap();
                }
                // MemStorage forgets the term before its first index when compacting, and
                // falls back to an old snapshot when compacting everything, so compare
                // compactions that keep at least one entry.
                7 if commit >= first && commit < last => {
                    let index = first + rng.below(commit - first + 1);
                    mem.wl().compact(index + 1).unwrap();
                    disk.compact(index, &conf_state(&[1, 2, 3]), vec![]).unwrap();
                    done[1] += 1;
                }
                8 => {
                    term += 1;
                    let snap = leader_snapshot(last + 1 + rng.below(3), term, &[1, 2, 3]);
                    mem.wl().apply_snapshot(snap.clone()).unwrap();
                    disk.apply_snapshot(snap).unwrap();
                    done[2] += 1;
                }
                _ => {
                    drop(disk);
                    disk = DiskStorage::open(&dir.0, &[7]).unwrap();
                    done[3] += 1;
                }
            }
            let (first, last) = (mem.first_index().unwrap(), mem.last_index().unwrap());
            assert_eq!(observe(&disk), observe(&mem), "step {step}");
            for i in first..=last + 1 {
                assert_eq!(disk.term(i), mem.term(i), "step {step}, term({i})");
            }
            for max_size in [0, 40, 100] {
                let low = first + rng.below(last + 2 - first);
                let high = low + rng.below(last + 2 - low);
                let ctx = || GetEntriesContext::empty(false);
                if low < high {
                    assert_eq!(disk.entries(low, high, max_size, ctx()), mem.entries(low, high, max_size, ctx()));
                }
            }
        }
        assert!(done.iter().all(|&n| n >= 5), "operations done: {done:?}");
    }
}
