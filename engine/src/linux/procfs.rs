//! The guest's view of `/proc`: the files about a process, generated from guest state.
//!
//! Guest processes live inside the shoal host process, so the host's `/proc/self` describes shoal
//! (x86-64 mappings, the host pid). Like qemu-user, shoal answers the files guests commonly read
//! itself. A guest path is made absolute against the guest directory it is relative to, `.` and
//! `..` are resolved lexically, and the result is recognised:
//!
//! ```text
//!  /proc/cpuinfo                        riscv64 format, one hart per host CPU
//!  /proc/self  /proc/thread-self        links to /proc/PID and /proc/PID/task/TID
//!  /proc/PID/                           PID: self, a guest pid (no leading zero), thread-self
//!     maps stat status comm             generated when opened
//!     cmdline environ auxv              what execve (the loader) gave the process
//!     exe cwd fd/N                      links: readlink gives the guest path
//!     fd/  task/  task/TID/...          directories listed with guest numbers
//! ```
//!
//! A generated file is written into a sealed memfd at open time, as Linux generates on open, and
//! the memfd becomes the guest descriptor: `read`, `lseek`, `pread` and `fstat` then need nothing
//! special. Directories carry their listing ([`Listing`](super::fd::Listing)).
//!
//! Any other path under `/proc` goes to the host in sysroot mode, as before. In confined mode the
//! root holds no `/proc`, so what is emulated is all there is: other paths under `/proc` are
//! `ENOENT`. A numeric directory that is not a guest process is `ENOENT` in both modes, so a guest
//! never sees host processes by number.
#![expect(
    clippy::cast_possible_truncation,
    reason = "system call arguments are narrowed to their C parameter types as the Linux ABI does"
)]

use std::ffi::CString;
use std::fmt::Write as _;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;

use super::fd::{DirEntry, OpenFile};
use super::fs::{HostPath, absolute};
use super::syscall::Sys;
use super::{Errno, Process, lock};
use crate::mem::{PAGE_SIZE, Vma, VmaKind, perm};

/// Which process a `/proc` path names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Who {
    /// `/proc/self`.
    Current,
    /// `/proc/thread-self`: the calling thread of the calling process.
    CurrentThread,
    /// `/proc/PID`.
    Pid(i32),
}

/// One file or directory of a process directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Entry {
    /// The process (or thread) directory itself.
    Dir,
    Maps,
    Exe,
    Cwd,
    FdDir,
    Fd(i32),
    Cmdline,
    Environ,
    Auxv,
    Stat,
    Status,
    Comm,
    TaskDir,
    /// Something Linux has that is not emulated.
    Other,
}

/// A recognised path under `/proc`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Node {
    Cpuinfo,
    /// The `/proc/self` link.
    SelfLink,
    /// The `/proc/thread-self` link.
    ThreadSelfLink,
    /// `entry` of process `who`, or of its thread `tid` (`task/TID/...`).
    Proc {
        who: Who,
        tid: Option<i32>,
        entry: Entry,
    },
    /// A path under `/proc` that is not emulated.
    Other,
}

/// Entries of a process directory, with their `DT_*` type.
const PROC_ENTRIES: [(&[u8], Entry, u8); 11] = [
    (b"auxv", Entry::Auxv, libc::DT_REG),
    (b"cmdline", Entry::Cmdline, libc::DT_REG),
    (b"comm", Entry::Comm, libc::DT_REG),
    (b"cwd", Entry::Cwd, libc::DT_LNK),
    (b"environ", Entry::Environ, libc::DT_REG),
    (b"exe", Entry::Exe, libc::DT_LNK),
    (b"fd", Entry::FdDir, libc::DT_DIR),
    (b"maps", Entry::Maps, libc::DT_REG),
    (b"stat", Entry::Stat, libc::DT_REG),
    (b"status", Entry::Status, libc::DT_REG),
    (b"task", Entry::TaskDir, libc::DT_DIR),
];

/// A process or thread id as `/proc` spells it: decimal, no sign, no leading zero.
fn parse_id(s: &[u8]) -> Option<i32> {
    if s.is_empty() || (s.len() > 1 && s[0] == b'0') || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(s).ok()?.parse().ok()
}

/// Recognises an absolute, normalised guest path. `None` for paths outside `/proc` and for
/// `/proc` itself.
pub(crate) fn recognize(abs: &[u8]) -> Option<Node> {
    let rest = abs.strip_prefix(b"/proc/")?;
    let parts: Vec<&[u8]> = rest.split(|&b| b == b'/').filter(|p| !p.is_empty()).collect();
    let (first, rest) = parts.split_first()?;
    let who = match *first {
        b"cpuinfo" if rest.is_empty() => return Some(Node::Cpuinfo),
        b"self" if rest.is_empty() => return Some(Node::SelfLink),
        b"thread-self" if rest.is_empty() => return Some(Node::ThreadSelfLink),
        b"self" => Who::Current,
        b"thread-self" => Who::CurrentThread,
        name => match parse_id(name) {
            Some(pid) => Who::Pid(pid),
            None => return Some(Node::Other),
        },
    };
    let (tid, rest) = match rest {
        [b"task", tid, more @ ..] if who != Who::CurrentThread => match parse_id(tid) {
            Some(t) => (Some(t), more),
            None => return Some(Node::Proc { who, tid: None, entry: Entry::Other }),
        },
        _ => (None, rest),
    };
    let entry = match rest {
        [] => Entry::Dir,
        [b"fd", n] => parse_id(n).map_or(Entry::Other, Entry::Fd),
        [b"task"] if tid.is_some() || who == Who::CurrentThread => Entry::Other,
        [name] => PROC_ENTRIES.iter().find(|(n, ..)| n == name).map_or(Entry::Other, |&(_, e, _)| e),
        _ => Entry::Other,
    };
    Some(Node::Proc { who, tid, entry })
}

/// The `rwxp` field of a maps line.
fn perms(prot: u8, shared: bool) -> [u8; 4] {
    [
        if prot & perm::R != 0 { b'r' } else { b'-' },
        if prot & perm::W != 0 { b'w' } else { b'-' },
        if prot & perm::X != 0 { b'x' } else { b'-' },
        if shared { b's' } else { b'p' },
    ]
}

/// One line of `/proc/PID/maps`, in Linux's format (`show_map_vma`): the name, if any, starts
/// after the fixed fields padded to 73 columns.
fn maps_line(out: &mut String, vma: &Vma, offset: u64, dev: u64, ino: u64, shared: bool, name: Option<&str>) {
    let p = perms(vma.prot, shared);
    let line_start = out.len();
    let _ = write!(
        out,
        "{:08x}-{:08x} {} {:08x} {:02x}:{:02x} {} ",
        vma.start,
        vma.end,
        String::from_utf8_lossy(&p),
        offset,
        libc::major(dev),
        libc::minor(dev),
        ino
    );
    if let Some(name) = name {
        let width = out.len() - line_start;
        if width < 73 {
            out.extend(std::iter::repeat_n(' ', 73 - width));
        }
        out.push_str(name);
    }
    out.push('\n');
}

/// The host device and inode of a mapped file.
fn file_id(fd: RawFd) -> (u64, u64) {
    // SAFETY: an all-zero stat is a valid value to be overwritten by fstat.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fstat writes one `struct stat` into `st`.
    if unsafe { libc::fstat(fd, &mut st) } != 0 {
        return (0, 0);
    }
    (st.st_dev, st.st_ino)
}

/// `/proc/PID/maps` for an address space's mappings.
pub(crate) fn format_maps(vmas: &[Vma]) -> String {
    let mut out = String::new();
    for v in vmas {
        match &v.kind {
            VmaKind::Anon => maps_line(&mut out, v, 0, 0, 0, false, None),
            VmaKind::Heap => maps_line(&mut out, v, 0, 0, 0, false, Some("[heap]")),
            VmaKind::Stack => maps_line(&mut out, v, 0, 0, 0, false, Some("[stack]")),
            VmaKind::Vdso => maps_line(&mut out, v, 0, 0, 0, false, Some("[vdso]")),
            VmaKind::Image { file, offset } => {
                maps_line(&mut out, v, *offset, file.dev, file.ino, false, Some(&file.name));
            }
            VmaKind::File { file, offset, shared, name } => {
                let (dev, ino) = file_id(file.as_raw_fd());
                maps_line(&mut out, v, *offset, dev, ino, *shared, Some(name));
            }
        }
    }
    out
}

/// `/proc/cpuinfo` as Linux prints it on riscv64 (`show_cpuinfo`), one hart per host CPU.
pub(crate) fn format_cpuinfo(harts: usize) -> String {
    let mut out = String::new();
    for h in 0..harts {
        let _ = write!(
            out,
            "processor\t: {h}\nhart\t\t: {h}\nisa\t\t: rv64imafdc_zicsr_zifencei\nmmu\t\t: sv39\n\
             uarch\t\t: shoal,rv64gc\nmvendorid\t: 0x0\nmarchid\t\t: 0x0\nmimpid\t\t: 0x0\n\n"
        );
    }
    out
}

/// What `stat` and `status` show of a process.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct ProcInfo {
    pub pid: i32,
    pub ppid: i32,
    pub pgrp: i32,
    pub session: i32,
    /// `R` running, `S` sleeping, `Z` zombie.
    pub state: char,
    pub comm: String,
    pub threads: usize,
    /// Bytes mapped.
    pub vsize: u64,
    /// Resident pages.
    pub rss: u64,
    pub exit_signal: i32,
    pub umask: u32,
    pub uid: u32,
    pub gid: u32,
    pub pending: u64,
    pub shared_pending: u64,
    pub blocked: u64,
    pub ignored: u64,
    pub caught: u64,
}

/// `/proc/PID/stat`: the 52 fields of `do_task_stat`; times and scheduler fields are 0.
pub(crate) fn format_stat(i: &ProcInfo) -> String {
    format!(
        "{} ({}) {} {} {} {} 0 -1 4194304 0 0 0 0 0 0 0 0 20 0 {} 0 0 {} {} 18446744073709551615 \
         0 0 0 0 0 {} {} {} {} 0 0 0 {} 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n",
        i.pid,
        i.comm,
        i.state,
        i.ppid,
        i.pgrp,
        i.session,
        i.threads,
        i.vsize,
        i.rss,
        i.shared_pending | i.pending,
        i.blocked,
        i.ignored,
        i.caught,
        i.exit_signal,
    )
}

/// `/proc/PID/status`: the fields a process can see of itself.
pub(crate) fn format_status(i: &ProcInfo) -> String {
    let state = match i.state {
        'R' => "R (running)",
        'Z' => "Z (zombie)",
        _ => "S (sleeping)",
    };
    let kb = PAGE_SIZE / 1024;
    format!(
        "Name:\t{}\nUmask:\t{:04o}\nState:\t{}\nTgid:\t{}\nNgid:\t0\nPid:\t{}\nPPid:\t{}\nTracerPid:\t0\n\
         Uid:\t{u}\t{u}\t{u}\t{u}\nGid:\t{g}\t{g}\t{g}\t{g}\nVmSize:\t{:8} kB\nVmRSS:\t{:8} kB\n\
         Threads:\t{}\nSigPnd:\t{:016x}\nShdPnd:\t{:016x}\nSigBlk:\t{:016x}\nSigIgn:\t{:016x}\n\
         SigCgt:\t{:016x}\n",
        i.comm,
        i.umask,
        state,
        i.pid,
        i.pid,
        i.ppid,
        i.vsize / 1024,
        i.rss * kb,
        i.threads,
        i.pending,
        i.shared_pending,
        i.blocked,
        i.ignored,
        i.caught,
        u = i.uid,
        g = i.gid,
    )
}

/// Strings each followed by a NUL, as `cmdline` and `environ` show them.
fn nul_joined(strings: &[Vec<u8>]) -> Vec<u8> {
    strings.iter().flat_map(|s| s.iter().copied().chain([0])).collect()
}

/// A sealed memfd holding `data`, read-only to the guest, with the mode Linux gives the file.
fn sealed(name: &str, data: &[u8], mode: u32) -> Result<OwnedFd, Errno> {
    let cname = CString::new(name).map_err(|_| Errno::EINVAL)?;
    // SAFETY: a valid C string; the result is checked.
    let fd = unsafe { libc::memfd_create(cname.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING) };
    if fd < 0 {
        return Err(Errno::last());
    }
    // SAFETY: a fresh descriptor we own.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut done = 0;
    while done < data.len() {
        // SAFETY: writes from a live slice to a descriptor we own.
        let n = unsafe { libc::write(fd.as_raw_fd(), data[done..].as_ptr().cast(), data.len() - done) };
        if n <= 0 {
            return Err(Errno::last());
        }
        done += n as usize;
    }
    let seals = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
    // SAFETY: fchmod, lseek and fcntl on a descriptor we own.
    unsafe {
        libc::fchmod(fd.as_raw_fd(), mode);
        libc::lseek(fd.as_raw_fd(), 0, libc::SEEK_SET);
        if libc::fcntl(fd.as_raw_fd(), libc::F_ADD_SEALS, seals) != 0 {
            return Err(Errno::last());
        }
    }
    // Reopen read-only, so that the guest descriptor cannot write even where sealing allows it.
    let path = CString::new(format!("/proc/self/fd/{}", fd.as_raw_fd())).map_err(|_| Errno::EINVAL)?;
    // SAFETY: a valid C string; the result is checked.
    let ro = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    if ro < 0 {
        return Err(Errno::last());
    }
    // SAFETY: a fresh descriptor we own.
    Ok(unsafe { OwnedFd::from_raw_fd(ro) })
}

/// Opens a host directory that stands in for an emulated one in `fstat`.
fn host_dir(path: &std::ffi::CStr) -> Result<OwnedFd, Errno> {
    // SAFETY: a valid C string; the result is checked.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(Errno::last());
    }
    // SAFETY: a fresh descriptor we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// A recognised node bound to a guest process (and thread).
struct Target {
    proc: Arc<Process>,
    tid: i32,
    entry: Entry,
}

/// What an emulated path is, once bound.
enum Resolved {
    /// Generated contents (name for the memfd, bytes, mode).
    Contents(String, Vec<u8>, u32),
    /// A link, with the guest path it shows.
    Link(Vec<u8>, Target),
    /// A directory: its guest path and entries.
    Dir(Vec<u8>, Vec<DirEntry>),
}

impl Sys<'_> {
    /// The guest path `path` names relative to guest directory `dirfd`, if it is under `/proc`.
    fn proc_node(&self, dirfd: u64, path: &[u8]) -> Result<Option<Node>, Errno> {
        if path.is_empty() {
            return Ok(None);
        }
        let abs = if path.first() == Some(&b'/') {
            absolute(b"/", path)
        } else {
            let base = if dirfd as i32 == libc::AT_FDCWD {
                self.kernel.roots.cwd_path(lock(&self.proc.fs).cwd.as_raw_fd())
            } else {
                let file = self.file(dirfd)?;
                file.path.clone().unwrap_or_else(|| self.kernel.roots.name_of(file.raw()))
            };
            absolute(&base, path)
        };
        Ok(recognize(&abs))
    }

    /// Binds `who`/`tid` to a live guest process and thread.
    fn bind(&self, who: Who, tid: Option<i32>, entry: Entry) -> Result<Target, Errno> {
        let (proc, tid) = match who {
            Who::Current => (self.proc.clone(), tid.unwrap_or(self.proc.pid)),
            Who::CurrentThread => (self.proc.clone(), self.thread.tid),
            Who::Pid(pid) => (self.kernel.process(pid).ok_or(Errno::ENOENT)?, tid.unwrap_or(pid)),
        };
        if tid != proc.pid && !lock(&proc.state).threads.iter().any(|t| t.tid == tid) {
            return Err(Errno::ENOENT);
        }
        Ok(Target { proc, tid, entry })
    }

    fn info(&self, proc: &Arc<Process>) -> ProcInfo {
        let mm = proc.mm();
        let st = lock(&proc.state);
        let state = if st.exit.is_some() {
            'Z'
        } else if Arc::ptr_eq(proc, self.proc) {
            'R'
        } else {
            'S'
        };
        let comm_raw = *lock(&proc.comm);
        let comm_len = comm_raw.iter().position(|&b| b == 0).unwrap_or(comm_raw.len());
        let (mut ignored, mut caught) = (0u64, 0u64);
        for (i, act) in lock(&proc.actions).iter().enumerate().skip(1) {
            let bit = 1u64.checked_shl(i as u32 - 1).unwrap_or(0);
            match act.handler {
                super::signal::SIG_DFL => {}
                super::signal::SIG_IGN => ignored |= bit,
                _ => caught |= bit,
            }
        }
        let (blocked, pending) = st
            .threads
            .iter()
            .find(|t| t.tid == self.thread.tid)
            .or(st.threads.first())
            .map_or((0, 0), |t| (t.blocked.load(std::sync::atomic::Ordering::Relaxed), lock(&t.pending).mask));
        ProcInfo {
            pid: proc.pid,
            ppid: lock(&proc.parent).upgrade().map_or(0, |p| p.pid),
            pgrp: proc.pgid.load(std::sync::atomic::Ordering::Relaxed),
            session: proc.sid.load(std::sync::atomic::Ordering::Relaxed),
            state,
            comm: String::from_utf8_lossy(&comm_raw[..comm_len]).into_owned(),
            threads: st.threads.len(),
            vsize: mm.mappings().iter().map(|v| v.end - v.start).sum(),
            rss: mm.resident_pages(),
            exit_signal: proc.exit_signal,
            umask: lock(&proc.fs).umask,
            uid: super::syscall::host_uid(),
            gid: super::syscall::host_gid(),
            pending,
            shared_pending: lock(&proc.shared_pending).mask,
            blocked,
            ignored,
            caught,
        }
    }

    /// Binds and describes a recognised node. `Ok(None)`: not emulated, the host decides.
    fn proc_resolve_node(&self, node: Node) -> Result<Option<Resolved>, Errno> {
        let confined = self.kernel.roots.confined();
        let passthrough = || if confined { Err(Errno::ENOENT) } else { Ok(None) };
        let (who, tid, entry) = match node {
            Node::Cpuinfo => {
                let harts = std::thread::available_parallelism().map_or(1, |n| n.get());
                return Ok(Some(Resolved::Contents("cpuinfo".into(), format_cpuinfo(harts).into_bytes(), 0o444)));
            }
            Node::SelfLink => (Who::Current, None, Entry::Dir),
            Node::ThreadSelfLink => (Who::CurrentThread, None, Entry::Dir),
            Node::Other => return passthrough(),
            Node::Proc { who, tid, entry } => (who, tid, entry),
        };
        let t = self.bind(who, tid, entry)?;
        let pid = t.proc.pid;
        let dir_path = |t: &Target| {
            if t.tid == t.proc.pid && tid.is_none() && who != Who::CurrentThread {
                format!("/proc/{}", t.proc.pid)
            } else {
                format!("/proc/{}/task/{}", t.proc.pid, t.tid)
            }
        };
        let image = lock(&t.proc.image).clone();
        let contents = |name: &str, data: Vec<u8>, mode: u32| Ok(Some(Resolved::Contents(name.into(), data, mode)));
        match entry {
            Entry::Maps => contents("maps", format_maps(&t.proc.mm().mappings()).into_bytes(), 0o444),
            Entry::Cmdline => contents("cmdline", nul_joined(&image.argv), 0o444),
            Entry::Environ => contents("environ", nul_joined(&image.envp), 0o400),
            Entry::Auxv => {
                let words = image.auxv.iter().chain(&[(0, 0)]).flat_map(|&(k, v)| [k, v]);
                contents("auxv", words.flat_map(u64::to_le_bytes).collect(), 0o400)
            }
            Entry::Stat => contents("stat", format_stat(&self.info(&t.proc)).into_bytes(), 0o444),
            Entry::Status => contents("status", format_status(&self.info(&t.proc)).into_bytes(), 0o444),
            Entry::Comm => {
                let mut c = self.info(&t.proc).comm.into_bytes();
                c.push(b'\n');
                contents("comm", c, 0o644)
            }
            Entry::Exe => Ok(Some(Resolved::Link(image.exe.clone(), t))),
            Entry::Cwd => {
                let cwd = self.kernel.roots.cwd_path(lock(&t.proc.fs).cwd.as_raw_fd());
                Ok(Some(Resolved::Link(cwd, t)))
            }
            Entry::Fd(n) => {
                let file = lock(&t.proc.files).get(n).map_err(|_| Errno::ENOENT)?;
                let name = file.path.clone().unwrap_or_else(|| self.kernel.roots.name_of(file.raw()));
                Ok(Some(Resolved::Link(name, t)))
            }
            Entry::Dir if matches!(node, Node::SelfLink) => Ok(Some(Resolved::Link(pid.to_string().into_bytes(), t))),
            Entry::Dir if matches!(node, Node::ThreadSelfLink) => {
                Ok(Some(Resolved::Link(format!("{pid}/task/{}", t.tid).into_bytes(), t)))
            }
            Entry::Dir => {
                let mut entries = Vec::new();
                for (i, (name, e, kind)) in PROC_ENTRIES.iter().enumerate() {
                    // A thread directory has no task/ of its own.
                    if *e == Entry::TaskDir && dir_path(&t).contains("/task/") {
                        continue;
                    }
                    entries.push(DirEntry { ino: i as u64 + 1, kind: *kind, name: name.to_vec() });
                }
                Ok(Some(Resolved::Dir(dir_path(&t).into_bytes(), with_dots(entries))))
            }
            Entry::FdDir => {
                let files = lock(&t.proc.files).clone();
                let entries = (0..files.len())
                    .filter(|&n| files.get(n).is_ok())
                    .map(|n| DirEntry { ino: n as u64 + 1, kind: libc::DT_LNK, name: n.to_string().into_bytes() })
                    .collect();
                Ok(Some(Resolved::Dir(format!("{}/fd", dir_path(&t)).into_bytes(), with_dots(entries))))
            }
            Entry::TaskDir => {
                let tids: Vec<i32> = lock(&t.proc.state).threads.iter().map(|th| th.tid).collect();
                let entries = tids
                    .iter()
                    .map(|&tid| DirEntry { ino: tid as u64, kind: libc::DT_DIR, name: tid.to_string().into_bytes() })
                    .collect();
                Ok(Some(Resolved::Dir(format!("/proc/{pid}/task").into_bytes(), with_dots(entries))))
            }
            Entry::Other => passthrough(),
        }
    }

    /// Opens what a link node points at, for reading with host `flags`.
    fn open_link_target(&self, t: &Target, flags: i32) -> Result<OwnedFd, Errno> {
        match t.entry {
            Entry::Exe => {
                let exe = lock(&t.proc.image).exe.clone();
                let cwd = lock(&self.proc.fs).cwd.as_raw_fd();
                self.kernel.roots.open(cwd, &exe, flags & !(libc::O_CREAT | libc::O_TRUNC), 0)
            }
            Entry::Cwd => reopen(lock(&t.proc.fs).cwd.as_raw_fd(), flags | libc::O_DIRECTORY),
            Entry::Fd(n) => {
                let file = lock(&t.proc.files).get(n).map_err(|_| Errno::ENOENT)?;
                reopen(file.raw(), flags)
            }
            _ => Err(Errno::ENOENT),
        }
    }

    /// Opens an emulated path. `Ok(None)`: not emulated, open it as usual.
    pub(crate) fn proc_open(&self, dirfd: u64, path: &[u8], flags: i32) -> Result<Option<Arc<OpenFile>>, Errno> {
        let Some(node) = self.proc_node(dirfd, path)? else {
            return Ok(None);
        };
        let nofollow = flags & libc::O_NOFOLLOW != 0 && flags & libc::O_PATH == 0;
        if nofollow && matches!(node, Node::SelfLink | Node::ThreadSelfLink) {
            return Err(Errno::ELOOP);
        }
        let node = followed(node);
        let Some(resolved) = self.proc_resolve_node(node)? else {
            return Ok(None);
        };
        let writes = flags & libc::O_ACCMODE != libc::O_RDONLY || flags & (libc::O_TRUNC | libc::O_CREAT) != 0;
        match resolved {
            Resolved::Contents(..) if flags & libc::O_DIRECTORY != 0 => Err(Errno::ENOTDIR),
            Resolved::Contents(..) | Resolved::Dir(..) if writes => {
                Err(if flags & libc::O_CREAT != 0 && flags & libc::O_EXCL != 0 { Errno::EEXIST } else { Errno::EACCES })
            }
            Resolved::Contents(name, data, mode) => {
                Ok(Some(OpenFile::named(sealed(&name, &data, mode)?, node_path(self, node)?)))
            }
            Resolved::Link(..) if nofollow => Err(Errno::ELOOP),
            Resolved::Link(_, t) => Ok(Some(OpenFile::new(self.open_link_target(&t, flags)?))),
            Resolved::Dir(name, entries) => Ok(Some(OpenFile::listed(host_dir(c"/proc/self/fd")?, entries, name))),
        }
    }

    /// Resolves an emulated path for the stat family. `Ok(None)`: not emulated.
    pub(crate) fn proc_resolve(&self, dirfd: u64, path: &[u8], follow: bool) -> Result<Option<HostPath>, Errno> {
        let Some(node) = self.proc_node(dirfd, path)? else {
            return Ok(None);
        };
        let Some(resolved) = self.proc_resolve_node(node)? else {
            return Ok(None);
        };
        match resolved {
            // The link itself: the host's own /proc/self/exe is a symlink as well.
            Resolved::Link(..) if !follow => Ok(Some(HostPath::host(c"/proc/self/exe".into()))),
            Resolved::Link(_, t) if t.entry == Entry::Dir => {
                Ok(Some(HostPath::of_fd(host_dir(c"/proc/self/fd")?, true)?))
            }
            Resolved::Link(_, t) => Ok(Some(HostPath::of_fd(self.open_link_target(&t, libc::O_PATH)?, true)?)),
            Resolved::Contents(name, data, mode) => Ok(Some(HostPath::of_fd(sealed(&name, &data, mode)?, true)?)),
            Resolved::Dir(..) => Ok(Some(HostPath::of_fd(host_dir(c"/proc/self/fd")?, true)?)),
        }
    }

    /// What readlink shows for an emulated path: `Ok(None)` when it is not emulated.
    pub(crate) fn proc_readlink(&self, dirfd: u64, path: &[u8]) -> Result<Option<Vec<u8>>, Errno> {
        let Some(node) = self.proc_node(dirfd, path)? else {
            return Ok(None);
        };
        match self.proc_resolve_node(node)? {
            None => Ok(None),
            Some(Resolved::Link(target, _)) => Ok(Some(target)),
            Some(_) => Err(Errno::EINVAL),
        }
    }
}

/// The guest path an opened node shows (in `/proc/self/fd` and as a directory base).
fn node_path(sys: &Sys<'_>, node: Node) -> Result<Vec<u8>, Errno> {
    let name = |e: Entry| PROC_ENTRIES.iter().find(|(_, x, _)| *x == e).map_or(&b""[..], |(n, ..)| n);
    Ok(match node {
        Node::Cpuinfo => b"/proc/cpuinfo".to_vec(),
        Node::Proc { who, tid, entry } => {
            let t = sys.bind(who, tid, entry)?;
            let mut p = match (who, tid) {
                (Who::CurrentThread, _) | (_, Some(_)) => format!("/proc/{}/task/{}/", t.proc.pid, t.tid),
                _ => format!("/proc/{}/", t.proc.pid),
            }
            .into_bytes();
            p.extend_from_slice(name(entry));
            p
        }
        _ => b"/proc".to_vec(),
    })
}

/// `/proc/self` and `/proc/thread-self` followed: the directories they point at.
fn followed(node: Node) -> Node {
    match node {
        Node::SelfLink => Node::Proc { who: Who::Current, tid: None, entry: Entry::Dir },
        Node::ThreadSelfLink => Node::Proc { who: Who::CurrentThread, tid: None, entry: Entry::Dir },
        n => n,
    }
}

/// `.` and `..` ahead of a directory's entries.
fn with_dots(mut entries: Vec<DirEntry>) -> Vec<DirEntry> {
    let dots = [b".".to_vec(), b"..".to_vec()].map(|name| DirEntry { ino: 0, kind: libc::DT_DIR, name });
    entries.splice(0..0, dots);
    entries
}

/// A new open file description for what host descriptor `fd` refers to.
fn reopen(fd: RawFd, flags: i32) -> Result<OwnedFd, Errno> {
    let path = CString::new(format!("/proc/self/fd/{fd}")).map_err(|_| Errno::EINVAL)?;
    // SAFETY: a valid C string; the result is checked.
    let n = unsafe { libc::open(path.as_ptr(), (flags & !libc::O_CREAT) | libc::O_CLOEXEC) };
    if n < 0 {
        return Err(Errno::last());
    }
    // SAFETY: a fresh descriptor we own.
    Ok(unsafe { OwnedFd::from_raw_fd(n) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mem::ImageFile;

    #[test]
    fn recognizes_process_files() {
        let p = |s: &[u8]| recognize(&absolute(b"/home/u", s));
        let proc = |who, entry| Some(Node::Proc { who, tid: None, entry });
        assert_eq!(p(b"/proc/self/maps"), proc(Who::Current, Entry::Maps));
        assert_eq!(p(b"/proc/self/../self/maps"), proc(Who::Current, Entry::Maps));
        assert_eq!(p(b"/proc/./self//maps/"), proc(Who::Current, Entry::Maps));
        assert_eq!(p(b"../../proc/1000/maps"), proc(Who::Pid(1000), Entry::Maps));
        assert_eq!(p(b"/proc/thread-self/stat"), proc(Who::CurrentThread, Entry::Stat));
        assert_eq!(p(b"/proc/self/fd/3"), proc(Who::Current, Entry::Fd(3)));
        assert_eq!(p(b"/proc/self/fd"), proc(Who::Current, Entry::FdDir));
        assert_eq!(
            p(b"/proc/1000/task/1001/comm"),
            Some(Node::Proc { who: Who::Pid(1000), tid: Some(1001), entry: Entry::Comm })
        );
        assert_eq!(p(b"/proc/self"), Some(Node::SelfLink));
        assert_eq!(p(b"/proc/cpuinfo"), Some(Node::Cpuinfo));
    }

    #[test]
    fn absolute_paths_resolve_dots_lexically() {
        assert_eq!(absolute(b"/home/u", b"bin/prog"), b"/home/u/bin/prog");
        assert_eq!(absolute(b"/home/u", b"../x/./y"), b"/home/x/y");
        assert_eq!(absolute(b"/home/u", b"/abs/../p"), b"/p");
        assert_eq!(absolute(b"/", b"../../.."), b"/");
    }

    #[test]
    fn rejects_lookalikes() {
        let p = |s: &[u8]| recognize(&absolute(b"/", s));
        assert_eq!(p(b"/proc/selfish"), Some(Node::Other));
        assert_eq!(p(b"/proc/selfish/maps"), Some(Node::Other));
        assert_eq!(p(b"/proc/01000/maps"), Some(Node::Other));
        assert_eq!(p(b"/proc/self/mapsx"), Some(Node::Proc { who: Who::Current, tid: None, entry: Entry::Other }));
        assert_eq!(p(b"/proc/self/fd/-1"), Some(Node::Proc { who: Who::Current, tid: None, entry: Entry::Other }));
        assert_eq!(p(b"/proc"), None);
        assert_eq!(p(b"/procfs/self/maps"), None);
        assert_eq!(p(b"/home/proc/self/maps"), None);
    }

    #[test]
    fn maps_lines_have_linux_layout() {
        let image = Arc::new(ImageFile { name: "/usr/bin/prog".into(), dev: libc::makedev(8, 1), ino: 1234 });
        let vmas = [
            Vma {
                start: 0x10000,
                end: 0x12000,
                prot: perm::R | perm::X,
                kind: VmaKind::Image { file: image, offset: 0 },
            },
            Vma { start: 0x13000, end: 0x15000, prot: perm::RW, kind: VmaKind::Heap },
            Vma { start: 0x3f_f000_0000, end: 0x3f_f000_1000, prot: perm::RW, kind: VmaKind::Anon },
            Vma { start: 0x3f_f7ff_e000, end: 0x3f_f7ff_f000, prot: perm::R | perm::X, kind: VmaKind::Vdso },
            Vma { start: 0x3f_ff7f_f000, end: 0x3f_ffff_f000, prot: perm::RW, kind: VmaKind::Stack },
        ];
        let text = format_maps(&vmas);
        let lines: Vec<&str> = text.lines().collect();
        let pad = |head: &str, name: &str| format!("{head}{}{name}", " ".repeat(73 - head.len()));
        assert_eq!(lines[0], pad("00010000-00012000 r-xp 00000000 08:01 1234 ", "/usr/bin/prog"));
        assert_eq!(lines[1], pad("00013000-00015000 rw-p 00000000 00:00 0 ", "[heap]"));
        assert_eq!(lines[2], "3ff0000000-3ff0001000 rw-p 00000000 00:00 0 ");
        assert_eq!(lines[3], pad("3ff7ffe000-3ff7fff000 r-xp 00000000 00:00 0 ", "[vdso]"));
        assert_eq!(lines[4], pad("3fff7ff000-3ffffff000 rw-p 00000000 00:00 0 ", "[stack]"));
        assert_eq!(lines.len(), 5);
        assert!(text.ends_with('\n'));
    }

    #[test]
    fn shared_file_mappings_say_s() {
        assert_eq!(&perms(perm::RW, true), b"rw-s");
        assert_eq!(&perms(0, false), b"---p");
    }

    #[test]
    fn stat_has_52_fields() {
        let info = ProcInfo { pid: 1000, ppid: 0, comm: "a b".into(), state: 'R', threads: 2, ..ProcInfo::default() };
        let s = format_stat(&info);
        let after = &s[s.rfind(')').unwrap() + 2..];
        assert!(s.starts_with("1000 (a b) R 0 "));
        assert_eq!(after.split_whitespace().count() + 2, 52);
        assert_eq!(after.split_whitespace().nth(17), Some("2"));
    }

    #[test]
    fn cpuinfo_lists_every_hart() {
        let s = format_cpuinfo(3);
        assert_eq!(s.matches("isa\t\t: rv64imafdc_zicsr_zifencei\n").count(), 3);
        assert!(s.contains("processor\t: 2\nhart\t\t: 2\n"));
    }

    #[test]
    fn listings_encode_dirents() {
        let mut l = super::super::fd::Listing {
            entries: with_dots(vec![DirEntry { ino: 7, kind: libc::DT_LNK, name: b"12".to_vec() }]),
            pos: 0,
        };
        let mut buf = [0u8; 256];
        let n = l.read(&mut buf).unwrap();
        assert_eq!(n, 3 * 24);
        assert_eq!(&buf[48 + 19..48 + 22], b"12\0");
        assert_eq!(buf[48 + 18], libc::DT_LNK);
        assert_eq!(l.read(&mut buf).unwrap(), 0);
        l.pos = 0;
        assert_eq!(l.read(&mut buf[..10]), Err(Errno::EINVAL));
    }
}
