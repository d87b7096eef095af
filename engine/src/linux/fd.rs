//! The guest file-descriptor table.
//!
//! Every guest descriptor names an [`OpenFile`], which owns one host descriptor: the host kernel
//! does the real I/O. Descriptors made by `dup` share the `OpenFile` (and so the file offset and
//! status flags, as Linux's open file descriptions do); the host descriptor closes when the last
//! guest descriptor naming it closes, which is what gives pipe readers their end-of-file.
//!
//! A directory whose entries the host cannot list for us (an emulated `/proc` directory) carries a
//! [`Listing`]: the entries fixed at open time, served by `getdents64` with the host descriptor
//! kept only so that `fstat` answers as for a directory.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::{Arc, Mutex};

use super::Errno;

/// What kind of file an open file is, which decides how blocking I/O on it is done.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FileKind {
    /// Regular file: never blocks.
    Regular,
    /// Directory.
    Directory,
    /// Pipe, FIFO, socket, terminal or other character device: may block.
    Stream,
}

/// An open file description.
#[derive(Debug)]
pub(crate) struct OpenFile {
    pub fd: OwnedFd,
    pub kind: FileKind,
    /// The entries of an emulated directory, and how far `getdents64` has read them.
    pub listing: Option<Mutex<Listing>>,
    /// The guest path of an emulated file, which the host cannot name (`/proc/self/fd/N` shows it).
    pub path: Option<Vec<u8>>,
}

/// One entry of an emulated directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct DirEntry {
    pub ino: u64,
    /// `DT_*` type.
    pub kind: u8,
    pub name: Vec<u8>,
}

/// The entries of an emulated directory and the read position (an entry index, which is also what
/// `d_off` and `lseek` use).
#[derive(Debug)]
pub(crate) struct Listing {
    pub entries: Vec<DirEntry>,
    pub pos: usize,
}

impl Listing {
    /// Fills `buf` with `struct linux_dirent64` records from the current position on and returns
    /// the bytes used; `EINVAL` if not even one record fits, as Linux does.
    pub fn read(&mut self, buf: &mut [u8]) -> Result<usize, super::Errno> {
        let mut used = 0;
        while let Some(e) = self.entries.get(self.pos) {
            // d_ino (8) d_off (8) d_reclen (2) d_type (1) d_name (NUL-terminated), padded to 8.
            let reclen = (19 + e.name.len() + 1).next_multiple_of(8);
            if used + reclen > buf.len() {
                if used == 0 {
                    return Err(super::Errno::EINVAL);
                }
                break;
            }
            let rec = &mut buf[used..used + reclen];
            rec.fill(0);
            rec[0..8].copy_from_slice(&e.ino.to_le_bytes());
            rec[8..16].copy_from_slice(&(self.pos as u64 + 1).to_le_bytes());
            rec[16..18].copy_from_slice(&u16::try_from(reclen).unwrap_or(u16::MAX).to_le_bytes());
            rec[18] = e.kind;
            rec[19..19 + e.name.len()].copy_from_slice(&e.name);
            used += reclen;
            self.pos += 1;
        }
        Ok(used)
    }
}

impl OpenFile {
    pub fn new(fd: OwnedFd) -> Arc<OpenFile> {
        let kind = kind_of(fd.as_raw_fd());
        Arc::new(OpenFile { fd, kind, listing: None, path: None })
    }

    /// An emulated file, whose guest path is `path`.
    pub fn named(fd: OwnedFd, path: Vec<u8>) -> Arc<OpenFile> {
        let kind = kind_of(fd.as_raw_fd());
        Arc::new(OpenFile { fd, kind, listing: None, path: Some(path) })
    }

    /// An emulated directory: `fd` is a host directory that answers `fstat`, `entries` its listing.
    pub fn listed(fd: OwnedFd, entries: Vec<DirEntry>, path: Vec<u8>) -> Arc<OpenFile> {
        let listing = Some(Mutex::new(Listing { entries, pos: 0 }));
        Arc::new(OpenFile { fd, kind: FileKind::Directory, listing, path: Some(path) })
    }

    pub fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// Classifies a host descriptor by its file type.
pub(crate) fn kind_of(fd: RawFd) -> FileKind {
    // SAFETY: an all-zero stat is a valid value to be overwritten by fstat.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fstat writes one `struct stat` into `st`.
    if unsafe { libc::fstat(fd, &mut st) } != 0 {
        return FileKind::Stream;
    }
    match st.st_mode & libc::S_IFMT {
        libc::S_IFREG => FileKind::Regular,
        libc::S_IFDIR => FileKind::Directory,
        _ => FileKind::Stream,
    }
}

/// One slot of the table.
#[derive(Clone, Debug)]
pub(crate) struct FdEntry {
    pub file: Arc<OpenFile>,
    pub cloexec: bool,
}

/// A process's descriptor table.
#[derive(Debug, Default, Clone)]
pub(crate) struct FdTable {
    slots: Vec<Option<FdEntry>>,
}

impl FdTable {
    /// One past the highest descriptor slot.
    pub fn len(&self) -> i32 {
        i32::try_from(self.slots.len()).unwrap_or(i32::MAX)
    }

    pub fn get(&self, fd: i32) -> Result<Arc<OpenFile>, Errno> {
        let i = usize::try_from(fd).map_err(|_| Errno::EBADF)?;
        self.slots.get(i).and_then(|s| s.as_ref()).map(|e| e.file.clone()).ok_or(Errno::EBADF)
    }

    pub fn entry_mut(&mut self, fd: i32) -> Result<&mut FdEntry, Errno> {
        let i = usize::try_from(fd).map_err(|_| Errno::EBADF)?;
        self.slots.get_mut(i).and_then(|s| s.as_mut()).ok_or(Errno::EBADF)
    }

    /// Installs `file` at the lowest free descriptor `>= min` below `limit`.
    pub fn alloc(&mut self, file: Arc<OpenFile>, cloexec: bool, min: i32, limit: u64) -> Result<i32, Errno> {
        let start = usize::try_from(min).map_err(|_| Errno::EINVAL)?;
        let limit = usize::try_from(limit.min(1 << 20)).unwrap_or(1 << 20);
        if start >= limit {
            return Err(Errno::EMFILE);
        }
        let free = (start..self.slots.len()).find(|&i| self.slots[i].is_none()).unwrap_or(self.slots.len().max(start));
        if free >= limit {
            return Err(Errno::EMFILE);
        }
        if free >= self.slots.len() {
            self.slots.resize(free + 1, None);
        }
        self.slots[free] = Some(FdEntry { file, cloexec });
        i32::try_from(free).map_err(|_| Errno::EMFILE)
    }

    /// Installs `file` exactly at `fd` (dup2/dup3), returning what was there.
    pub fn set(&mut self, fd: i32, file: Arc<OpenFile>, cloexec: bool, limit: u64) -> Result<Option<FdEntry>, Errno> {
        let i = usize::try_from(fd).map_err(|_| Errno::EBADF)?;
        if i as u64 >= limit {
            return Err(Errno::EBADF);
        }
        if i >= self.slots.len() {
            self.slots.resize(i + 1, None);
        }
        Ok(self.slots[i].replace(FdEntry { file, cloexec }))
    }

    pub fn close(&mut self, fd: i32) -> Result<FdEntry, Errno> {
        let i = usize::try_from(fd).map_err(|_| Errno::EBADF)?;
        self.slots.get_mut(i).and_then(|s| s.take()).ok_or(Errno::EBADF)
    }

    /// Closes every descriptor in `[lo, hi]` (close_range), or marks them close-on-exec.
    pub fn close_range(&mut self, lo: u32, hi: u32, cloexec_only: bool) -> Vec<FdEntry> {
        let mut dropped = Vec::new();
        let end = (hi as usize).saturating_add(1).min(self.slots.len());
        for slot in self.slots.iter_mut().take(end).skip(lo as usize) {
            if cloexec_only {
                if let Some(e) = slot.as_mut() {
                    e.cloexec = true;
                }
            } else if let Some(e) = slot.take() {
                dropped.push(e);
            }
        }
        dropped
    }

    /// Drops close-on-exec descriptors (execve).
    pub fn close_on_exec(&mut self) -> Vec<FdEntry> {
        let mut dropped = Vec::new();
        for slot in &mut self.slots {
            if slot.as_ref().is_some_and(|e| e.cloexec) {
                dropped.extend(slot.take());
            }
        }
        dropped
    }

    /// Takes every descriptor out (process exit).
    pub fn take_all(&mut self) -> Vec<FdEntry> {
        self.slots.drain(..).flatten().collect()
    }
}
