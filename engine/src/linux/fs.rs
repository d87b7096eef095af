//! Files, directories and paths.
//!
//! Guest paths reach the host in one of two ways:
//!
//! - **sysroot mode** (default, like qemu's `-L`): an absolute guest path `/p` means `SYSROOT/p` if
//!   that exists and `/p` otherwise; relative paths resolve against the process's working directory,
//!   which is a host directory descriptor.
//! - **confined mode** (`--root DIR`): `DIR` is the guest's `/`. Every resolution goes through
//!   `openat2(RESOLVE_IN_ROOT)` on a descriptor of `DIR`, so `..`, absolute symlinks and magic links
//!   cannot leave it. Calls that must not follow the last component get the resolved parent
//!   directory and the final name; calls that follow it get the resolved file itself through its
//!   `/proc/self/fd` entry. **Architecture Invariant:** in confined mode no guest-controlled path
//!   reaches a host `*at` call with a directory outside `DIR` or with more than one component.
#![expect(
    clippy::cast_possible_truncation,
    reason = "system call arguments are narrowed to their C parameter types as the Linux ABI does, and host sizes are 64-bit"
)]

use std::ffi::{CStr, CString};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::errno::{host_int, host_size};
use super::fd::{FileKind, OpenFile};
use super::syscall::{Sys, SysResult};
use super::{Config, Errno, StartError, lock};
use crate::mem::Access;

/// Longest path a guest may pass (PATH_MAX).
pub(crate) const PATH_MAX: usize = 4096;

/// Host handles of the directories that shape the guest's view of files.
#[derive(Debug)]
pub(crate) struct Roots {
    /// Confined mode: the guest's `/` and its canonical host path.
    root: Option<(OwnedFd, PathBuf)>,
    /// Sysroot mode: the prefix tried first for absolute paths, and its canonical host path.
    sysroot: Option<PathBuf>,
    sysroot_canon: Option<PathBuf>,
}

fn open_dir(path: &Path) -> Result<OwnedFd, StartError> {
    let c = CString::new(path.as_os_str().as_bytes()).map_err(|_| StartError::Root {
        path: path.display().to_string(),
        source: std::io::Error::from_raw_os_error(libc::EINVAL),
    })?;
    // SAFETY: `c` is a valid C string; the result is checked.
    let fd = unsafe { libc::open(c.as_ptr(), libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(StartError::Root { path: path.display().to_string(), source: std::io::Error::last_os_error() });
    }
    // SAFETY: `fd` is a fresh descriptor we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

impl Roots {
    pub fn new(config: &Config) -> Result<Roots, StartError> {
        let root = match &config.root {
            Some(dir) => {
                let canon = std::fs::canonicalize(dir)
                    .map_err(|source| StartError::Root { path: dir.display().to_string(), source })?;
                Some((open_dir(&canon)?, canon))
            }
            None => None,
        };
        let sysroot = match &config.sysroot {
            Some(dir) if root.is_none() => {
                open_dir(dir)?;
                Some(dir.clone())
            }
            _ => None,
        };
        let sysroot_canon = sysroot.as_ref().and_then(|d| std::fs::canonicalize(d).ok());
        Ok(Roots { root, sysroot, sysroot_canon })
    }

    /// The initial working directory of the first process.
    pub fn initial_cwd(&self) -> Result<OwnedFd, StartError> {
        match &self.root {
            Some((fd, _)) => dup_fd(fd.as_raw_fd())
                .map_err(|e| StartError::Root { path: "/".into(), source: std::io::Error::from_raw_os_error(e.0) }),
            None => open_dir(Path::new(".")),
        }
    }

    /// Whether the guest is confined to a root directory.
    pub fn confined(&self) -> bool {
        self.root.is_some()
    }

    /// Opens a guest path for reading as the loader does (program interpreter, execve).
    pub fn open_exec(&self, cwd: RawFd, path: &[u8]) -> Result<std::fs::File, Errno> {
        let fd = self.open(cwd, path, libc::O_RDONLY | libc::O_CLOEXEC, 0)?;
        Ok(std::fs::File::from(fd))
    }

    /// The host path an absolute guest path stands for in sysroot mode.
    fn sysroot_path(&self, path: &[u8]) -> CString {
        if let (Some(sys), Some(b'/')) = (&self.sysroot, path.first()) {
            let mut full = sys.as_os_str().as_bytes().to_vec();
            full.extend_from_slice(path);
            if let Ok(c) = CString::new(full) {
                // SAFETY: `c` is a valid C string.
                if unsafe { libc::access(c.as_ptr(), libc::F_OK) } == 0 {
                    return c;
                }
            }
        }
        CString::new(path).unwrap_or_default()
    }

    /// The guest path of a host directory descriptor in confined mode.
    fn guest_path_of(&self, dirfd: RawFd) -> Vec<u8> {
        let host = host_path_of(dirfd);
        match &self.root {
            Some((_, root)) => {
                let root = root.as_os_str().as_bytes();
                match host.strip_prefix(root) {
                    Some([]) => b"/".to_vec(),
                    Some(rest) if rest.first() == Some(&b'/') => rest.to_vec(),
                    _ => b"/".to_vec(),
                }
            }
            None => host,
        }
    }

    /// The guest-visible name of a host path the host kernel reported (a descriptor's target):
    /// the root or sysroot prefix comes off. Names that are not paths (`pipe:[ino]`) and, when
    /// confined, paths outside the root stay as the host gave them.
    pub fn guest_name(&self, host: Vec<u8>) -> Vec<u8> {
        let prefix = match (&self.root, &self.sysroot_canon) {
            (Some((_, root)), _) => root,
            (None, Some(sys)) => sys,
            (None, None) => return host,
        };
        match host.strip_prefix(prefix.as_os_str().as_bytes()) {
            Some([]) => b"/".to_vec(),
            Some(rest) if rest.first() == Some(&b'/') => rest.to_vec(),
            _ => host,
        }
    }

    /// The guest-visible name of what host descriptor `fd` refers to.
    pub fn name_of(&self, fd: RawFd) -> Vec<u8> {
        match std::fs::read_link(format!("/proc/self/fd/{fd}")) {
            Ok(p) => self.guest_name(p.into_os_string().into_vec()),
            Err(_) => Vec::new(),
        }
    }

    /// Confined mode: the guest path `path` made absolute against `dirfd`, relative to the root.
    fn rooted(&self, dirfd: RawFd, path: &[u8]) -> Vec<u8> {
        let mut abs = if path.first() == Some(&b'/') {
            Vec::new()
        } else {
            let mut base = self.guest_path_of(dirfd);
            if base.last() != Some(&b'/') {
                base.push(b'/');
            }
            base
        };
        abs.extend_from_slice(path);
        // openat2 on the root descriptor wants a relative path; "." for the root itself.
        let rel: Vec<u8> = abs.iter().copied().skip_while(|&b| b == b'/').collect();
        if rel.is_empty() { b".".to_vec() } else { rel }
    }

    fn openat2_in_root(&self, root: RawFd, rel: &[u8], flags: i32, mode: u32) -> Result<OwnedFd, Errno> {
        let c = CString::new(rel).map_err(|_| Errno::EINVAL)?;
        let how = OpenHow {
            flags: (flags | libc::O_CLOEXEC) as u64,
            mode: if flags & (libc::O_CREAT | libc::O_TMPFILE) != 0 { u64::from(mode) } else { 0 },
            resolve: RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
        };
        // SAFETY: `how` is a valid open_how of the size passed; `c` is a valid C string.
        let fd = unsafe {
            libc::syscall(libc::SYS_openat2, root, c.as_ptr(), &how as *const OpenHow, std::mem::size_of::<OpenHow>())
        };
        if fd < 0 {
            return Err(Errno::last());
        }
        // SAFETY: a fresh descriptor we own.
        Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
    }

    /// Opens a guest path relative to the host directory `dirfd` (already mapped from the guest's).
    pub fn open(&self, dirfd: RawFd, path: &[u8], flags: i32, mode: u32) -> Result<OwnedFd, Errno> {
        check_path(path)?;
        match &self.root {
            Some((root, _)) => self.openat2_in_root(root.as_raw_fd(), &self.rooted(dirfd, path), flags, mode),
            None => {
                let c = if path.first() == Some(&b'/') {
                    self.sysroot_path(path)
                } else {
                    CString::new(path).map_err(|_| Errno::EINVAL)?
                };
                // SAFETY: `c` is a valid C string; the result is checked.
                let fd = unsafe { libc::openat(dirfd, c.as_ptr(), flags | libc::O_CLOEXEC, mode) };
                if fd < 0 {
                    return Err(Errno::last());
                }
                // SAFETY: a fresh descriptor we own.
                Ok(unsafe { OwnedFd::from_raw_fd(fd) })
            }
        }
    }

    /// Resolves a guest path for a host `*at` call.
    ///
    /// With `follow`, the final component's symlinks are followed (safely, in confined mode);
    /// without, the result names the final component itself in its parent directory.
    pub fn resolve(&self, dirfd: RawFd, path: &[u8], follow: bool) -> Result<HostPath, Errno> {
        check_path(path)?;
        let Some((root, _)) = &self.root else {
            let name = if path.first() == Some(&b'/') {
                self.sysroot_path(path)
            } else {
                CString::new(path).map_err(|_| Errno::EINVAL)?
            };
            return Ok(HostPath { _keep: None, dirfd, name, through_link: false });
        };
        let rel = self.rooted(dirfd, path);
        let (parent, last) = split_last(&rel);
        let special = last.is_empty() || last == b"." || last == b"..";
        if follow || special {
            // The descriptor is the file the guest meant, followed or not, so its link is followed.
            let fd = self.openat2_in_root(root.as_raw_fd(), &rel, libc::O_PATH, 0)?;
            return HostPath::of_fd(fd, true);
        }
        let pfd = self.openat2_in_root(root.as_raw_fd(), parent, libc::O_PATH | libc::O_DIRECTORY, 0)?;
        let name = CString::new(last).map_err(|_| Errno::EINVAL)?;
        Ok(HostPath { dirfd: pfd.as_raw_fd(), name, _keep: Some(pfd), through_link: false })
    }

    /// The guest-visible path of a working-directory descriptor (getcwd).
    pub fn cwd_path(&self, cwd: RawFd) -> Vec<u8> {
        self.guest_path_of(cwd)
    }
}

/// `path` made absolute against the guest directory `cwd`, with `.` and `..` resolved lexically.
pub(crate) fn absolute(cwd: &[u8], path: &[u8]) -> Vec<u8> {
    let mut parts: Vec<&[u8]> = Vec::new();
    let joined: Vec<&[u8]> = if path.first() == Some(&b'/') {
        path.split(|&b| b == b'/').collect()
    } else {
        cwd.split(|&b| b == b'/').chain(path.split(|&b| b == b'/')).collect()
    };
    for part in joined {
        match part {
            b"" | b"." => {}
            b".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    let mut out = Vec::with_capacity(path.len() + cwd.len() + 1);
    for p in parts {
        out.push(b'/');
        out.extend_from_slice(p);
    }
    if out.is_empty() {
        out.push(b'/');
    }
    out
}

fn split_last(rel: &[u8]) -> (&[u8], &[u8]) {
    let trimmed = {
        let mut t = rel;
        while t.len() > 1 && t.last() == Some(&b'/') {
            t = &t[..t.len() - 1];
        }
        t
    };
    match trimmed.iter().rposition(|&b| b == b'/') {
        Some(i) => (if i == 0 { b"." } else { &trimmed[..i] }, &trimmed[i + 1..]),
        None => (b".", trimmed),
    }
}

fn check_path(path: &[u8]) -> Result<(), Errno> {
    if path.is_empty() {
        return Err(Errno::ENOENT);
    }
    if path.len() >= PATH_MAX {
        return Err(Errno::ENAMETOOLONG);
    }
    Ok(())
}

/// `struct open_how` of openat2(2).
#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}
const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
const RESOLVE_IN_ROOT: u64 = 0x10;

/// A resolved path: a host directory descriptor and a name relative to it.
#[derive(Debug)]
pub(crate) struct HostPath {
    /// Keeps a descriptor the path refers to alive.
    _keep: Option<OwnedFd>,
    pub dirfd: RawFd,
    pub name: CString,
    /// The name is a host `/proc/self/fd` link to a generated file that stands for the guest's
    /// path itself, so it must be followed even where the guest asked not to follow.
    pub through_link: bool,
}

impl HostPath {
    /// A path standing for the open host descriptor `fd`, through its `/proc/self/fd` link.
    pub fn of_fd(fd: OwnedFd, through_link: bool) -> Result<HostPath, Errno> {
        let name = CString::new(format!("/proc/self/fd/{}", fd.as_raw_fd())).map_err(|_| Errno::EINVAL)?;
        Ok(HostPath { dirfd: libc::AT_FDCWD, name, _keep: Some(fd), through_link })
    }

    /// A host path used as it is (a host file that stands in for an emulated one).
    pub fn host(name: CString) -> HostPath {
        HostPath { dirfd: libc::AT_FDCWD, name, _keep: None, through_link: false }
    }

    /// `AT_SYMLINK_NOFOLLOW` unless the path must be followed (see `through_link`).
    pub fn nofollow_flag(&self, follow: bool) -> i32 {
        if follow || self.through_link { 0 } else { libc::AT_SYMLINK_NOFOLLOW }
    }
}

/// The host path of a descriptor, from /proc/self/fd.
pub(crate) fn host_path_of(fd: RawFd) -> Vec<u8> {
    std::fs::read_link(format!("/proc/self/fd/{fd}"))
        .map(|p| p.as_os_str().as_bytes().to_vec())
        .unwrap_or_else(|_| b"/".to_vec())
}

pub(crate) fn dup_fd(fd: RawFd) -> Result<OwnedFd, Errno> {
    // SAFETY: F_DUPFD_CLOEXEC on a descriptor we hold; the result is checked.
    let n = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) };
    if n < 0 {
        return Err(Errno::last());
    }
    // SAFETY: a fresh descriptor we own.
    Ok(unsafe { OwnedFd::from_raw_fd(n) })
}

/// Per-process file-system state.
#[derive(Debug)]
pub(crate) struct FsContext {
    /// Working directory (a host `O_PATH` directory descriptor).
    pub cwd: OwnedFd,
    pub umask: u32,
}

impl FsContext {
    pub fn fork(&self) -> Result<FsContext, Errno> {
        Ok(FsContext { cwd: dup_fd(self.cwd.as_raw_fd())?, umask: self.umask })
    }
}

// ----- system calls -----

impl Sys<'_> {
    /// The host directory a guest `dirfd` argument stands for (AT_FDCWD: the working directory).
    /// Returns the descriptor and, for a guest descriptor, the open file keeping it alive.
    fn dir(&self, dirfd: u64) -> Result<(RawFd, Option<Arc<OpenFile>>), Errno> {
        let d = dirfd as i32;
        if d == libc::AT_FDCWD {
            return Ok((lock(&self.proc.fs).cwd.as_raw_fd(), None));
        }
        let f = lock(&self.proc.files).get(d)?;
        Ok((f.raw(), Some(f)))
    }

    pub(crate) fn path_arg(&self, addr: u64) -> Result<Vec<u8>, Errno> {
        if addr == 0 {
            return Err(Errno::EFAULT);
        }
        let p = self.mem.read_cstr(addr, PATH_MAX)?;
        if p.len() >= PATH_MAX {
            return Err(Errno::ENAMETOOLONG);
        }
        Ok(p)
    }

    fn resolve(&self, dirfd: u64, path_addr: u64, follow: bool) -> Result<(HostPath, Option<Arc<OpenFile>>), Errno> {
        let path = self.path_arg(path_addr)?;
        if let Some(hp) = self.proc_resolve(dirfd, &path, follow)? {
            return Ok((hp, None));
        }
        let (dir, keep) = self.dir(dirfd)?;
        Ok((self.kernel.roots.resolve(dir, &path, follow)?, keep))
    }

    pub(crate) fn install(&self, fd: OwnedFd, cloexec: bool) -> SysResult {
        self.install_file(OpenFile::new(fd), cloexec)
    }

    fn install_file(&self, file: Arc<OpenFile>, cloexec: bool) -> SysResult {
        let limit = lock(&self.proc.rlimits).nofile;
        let n = lock(&self.proc.files).alloc(file, cloexec, 0, limit)?;
        Ok(n as u64)
    }

    pub(crate) fn file(&self, fd: u64) -> Result<Arc<OpenFile>, Errno> {
        lock(&self.proc.files).get(fd as i32)
    }

    pub fn sys_openat(&mut self, a: &[u64; 6]) -> SysResult {
        let path = self.path_arg(a[1])?;
        let flags = a[2] as i32;
        let umask = lock(&self.proc.fs).umask;
        let mode = (a[3] as u32) & !umask & 0o7777;
        if let Some(file) = self.proc_open(a[0], &path, flags)? {
            return self.install_file(file, flags & libc::O_CLOEXEC != 0);
        }
        let (dir, _keep) = self.dir(a[0])?;
        // Guest O_* flags have the same values on riscv64 and x86-64 (asm-generic fcntl.h).
        let fd = self.kernel.roots.open(dir, &path, flags, mode)?;
        self.install(fd, flags & libc::O_CLOEXEC != 0)
    }

    pub fn sys_close(&mut self, a: &[u64; 6]) -> SysResult {
        let entry = lock(&self.proc.files).close(a[0] as i32)?;
        drop(entry);
        Ok(0)
    }

    pub fn sys_close_range(&mut self, a: &[u64; 6]) -> SysResult {
        const CLOSE_RANGE_CLOEXEC: u64 = 4;
        if a[0] > a[1] {
            return Err(Errno::EINVAL);
        }
        let dropped = lock(&self.proc.files).close_range(a[0] as u32, a[1] as u32, a[2] & CLOSE_RANGE_CLOEXEC != 0);
        drop(dropped);
        Ok(0)
    }

    /// Parks until a stream is ready for `events`, unless it is non-blocking or ready now.
    fn wait_ready(&mut self, file: &Arc<OpenFile>, events: i16) -> Result<(), Errno> {
        if file.kind != FileKind::Stream {
            return Ok(());
        }
        // SAFETY: F_GETFL on a descriptor we hold.
        let fl = unsafe { libc::fcntl(file.raw(), libc::F_GETFL) };
        if fl >= 0 && fl & libc::O_NONBLOCK != 0 {
            return Ok(());
        }
        let mut pfd = libc::pollfd { fd: file.raw(), events, revents: 0 };
        // SAFETY: one valid pollfd, no wait.
        if unsafe { libc::poll(&mut pfd, 1, 0) } != 0 {
            return Ok(());
        }
        let interest = super::reactor::Interest { file: file.clone(), events };
        Err(self.park(vec![interest], None, Errno::ERESTARTSYS))
    }

    pub fn sys_read(&mut self, a: &[u64; 6]) -> SysResult {
        let file = self.file(a[0])?;
        if file.kind == FileKind::Directory {
            return Err(Errno::EISDIR);
        }
        self.wait_ready(&file, libc::POLLIN)?;
        let len = a[2].min(isize::MAX as u64);
        let buf = self.mem.slice_mut(a[1], len)?;
        // SAFETY: `buf` is a writable guest range of `buf.len()` bytes inside the arena.
        host_size(unsafe { libc::read(file.raw(), buf.as_mut_ptr().cast(), buf.len()) })
    }

    pub(crate) fn pipe_error(&self, r: SysResult) -> SysResult {
        if r == Err(Errno::EPIPE) {
            super::signal::send_to_thread(self.thread, super::signal::SigInfo::kernel(libc::SIGPIPE));
        }
        r
    }

    pub fn sys_write(&mut self, a: &[u64; 6]) -> SysResult {
        let file = self.file(a[0])?;
        self.wait_ready(&file, libc::POLLOUT)?;
        let len = a[2].min(isize::MAX as u64);
        let buf = self.mem.slice(a[1], len)?;
        // SAFETY: `buf` is a readable guest range inside the arena.
        let r = host_size(unsafe { libc::write(file.raw(), buf.as_ptr().cast(), buf.len()) });
        self.pipe_error(r)
    }

    pub fn sys_pread(&mut self, a: &[u64; 6]) -> SysResult {
        let file = self.file(a[0])?;
        let buf = self.mem.slice_mut(a[1], a[2].min(isize::MAX as u64))?;
        // SAFETY: writable guest range inside the arena.
        host_size(unsafe { libc::pread(file.raw(), buf.as_mut_ptr().cast(), buf.len(), a[3] as i64) })
    }

    pub fn sys_pwrite(&mut self, a: &[u64; 6]) -> SysResult {
        let file = self.file(a[0])?;
        let buf = self.mem.slice(a[1], a[2].min(isize::MAX as u64))?;
        // SAFETY: readable guest range inside the arena.
        host_size(unsafe { libc::pwrite(file.raw(), buf.as_ptr().cast(), buf.len(), a[3] as i64) })
    }

    /// Builds host iovecs for a guest iovec array (16-byte `{base, len}` entries, as on x86-64).
    pub(crate) fn iovecs(&self, addr: u64, count: u64, write_to_guest: bool) -> Result<Vec<libc::iovec>, Errno> {
        if count > 1024 {
            return Err(Errno::EINVAL);
        }
        let mut out = Vec::with_capacity(count as usize);
        for i in 0..count {
            let base = self.mem.load::<u64>(addr + i * 16)?;
            let len = self.mem.load::<u64>(addr + i * 16 + 8)?;
            if len == 0 {
                continue;
            }
            let ptr = if write_to_guest {
                self.mem.slice_mut(base, len)?.as_mut_ptr()
            } else {
                self.mem.slice(base, len)?.as_ptr().cast_mut()
            };
            out.push(libc::iovec { iov_base: ptr.cast(), iov_len: len as usize });
        }
        Ok(out)
    }

    pub fn sys_readv(&mut self, a: &[u64; 6]) -> SysResult {
        let file = self.file(a[0])?;
        let iov = self.iovecs(a[1], a[2], true)?;
        self.wait_ready(&file, libc::POLLIN)?;
        // SAFETY: every iovec points at a checked, writable guest range inside the arena.
        host_size(unsafe { libc::readv(file.raw(), iov.as_ptr(), iov.len() as i32) })
    }

    pub fn sys_writev(&mut self, a: &[u64; 6]) -> SysResult {
        let file = self.file(a[0])?;
        let iov = self.iovecs(a[1], a[2], false)?;
        self.wait_ready(&file, libc::POLLOUT)?;
        // SAFETY: every iovec points at a checked, readable guest range inside the arena.
        let r = host_size(unsafe { libc::writev(file.raw(), iov.as_ptr(), iov.len() as i32) });
        self.pipe_error(r)
    }

    pub fn sys_preadv(&mut self, a: &[u64; 6]) -> SysResult {
        let file = self.file(a[0])?;
        let iov = self.iovecs(a[1], a[2], true)?;
        // SAFETY: checked, writable guest ranges.
        host_size(unsafe { libc::preadv(file.raw(), iov.as_ptr(), iov.len() as i32, a[3] as i64) })
    }

    pub fn sys_pwritev(&mut self, a: &[u64; 6]) -> SysResult {
        let file = self.file(a[0])?;
        let iov = self.iovecs(a[1], a[2], false)?;
        // SAFETY: checked, readable guest ranges.
        host_size(unsafe { libc::pwritev(file.raw(), iov.as_ptr(), iov.len() as i32, a[3] as i64) })
    }

    pub fn sys_lseek(&mut self, a: &[u64; 6]) -> SysResult {
        let file = self.file(a[0])?;
        if let Some(listing) = &file.listing {
            // The position in an emulated directory is an entry index.
            let mut l = lock(listing);
            let pos = match a[2] as i32 {
                libc::SEEK_SET => a[1] as i64,
                libc::SEEK_CUR => (l.pos as i64).saturating_add(a[1] as i64),
                _ => return Err(Errno::EINVAL),
            };
            l.pos = usize::try_from(pos).map_err(|_| Errno::EINVAL)?;
            return Ok(l.pos as u64);
        }
        // SAFETY: lseek on a descriptor we hold.
        super::errno::host(unsafe { libc::lseek(file.raw(), a[1] as i64, a[2] as i32) })
    }

    fn put_stat(&self, addr: u64, st: &libc::stat) -> SysResult {
        // struct stat of asm-generic (riscv64), 128 bytes.
        let mut b = [0u8; 128];
        let mut put = |off: usize, v: &[u8]| b[off..off + v.len()].copy_from_slice(v);
        put(0, &st.st_dev.to_le_bytes());
        put(8, &st.st_ino.to_le_bytes());
        put(16, &st.st_mode.to_le_bytes());
        put(20, &(st.st_nlink as u32).to_le_bytes());
        put(24, &st.st_uid.to_le_bytes());
        put(28, &st.st_gid.to_le_bytes());
        put(32, &st.st_rdev.to_le_bytes());
        put(48, &st.st_size.to_le_bytes());
        put(56, &(st.st_blksize as i32).to_le_bytes());
        put(64, &st.st_blocks.to_le_bytes());
        put(72, &st.st_atime.to_le_bytes());
        put(80, &st.st_atime_nsec.to_le_bytes());
        put(88, &st.st_mtime.to_le_bytes());
        put(96, &st.st_mtime_nsec.to_le_bytes());
        put(104, &st.st_ctime.to_le_bytes());
        put(112, &st.st_ctime_nsec.to_le_bytes());
        self.mem.write_bytes(addr, &b)?;
        Ok(0)
    }

    pub fn sys_fstat(&mut self, a: &[u64; 6]) -> SysResult {
        let file = self.file(a[0])?;
        // SAFETY: zeroed stat is valid; fstat fills it.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: fstat writes one stat.
        host_int(unsafe { libc::fstat(file.raw(), &mut st) })?;
        self.put_stat(a[1], &st)
    }

    pub fn sys_newfstatat(&mut self, a: &[u64; 6]) -> SysResult {
        let flags = a[3] as i32;
        // SAFETY: zeroed stat is valid.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        let path =
            self.path_arg(a[1]).or_else(|e| if flags & libc::AT_EMPTY_PATH != 0 { Ok(Vec::new()) } else { Err(e) })?;
        if path.is_empty() && flags & libc::AT_EMPTY_PATH != 0 {
            let (dir, _keep) = self.dir(a[0])?;
            // SAFETY: fstat writes one stat.
            host_int(unsafe { libc::fstat(dir, &mut st) })?;
            return self.put_stat(a[2], &st);
        }
        let follow = flags & libc::AT_SYMLINK_NOFOLLOW == 0;
        let (hp, _keep) = self.resolve(a[0], a[1], follow)?;
        let host_flags = hp.nofollow_flag(follow);
        // SAFETY: valid dirfd/name; fstatat writes one stat.
        host_int(unsafe { libc::fstatat(hp.dirfd, hp.name.as_ptr(), &mut st, host_flags) })?;
        self.put_stat(a[2], &st)
    }

    pub fn sys_statx(&mut self, a: &[u64; 6]) -> SysResult {
        let flags = a[2] as i32;
        let mask = a[3] as u32;
        let mut buf = [0u8; 256];
        let path =
            self.path_arg(a[1]).or_else(|e| if flags & libc::AT_EMPTY_PATH != 0 { Ok(Vec::new()) } else { Err(e) })?;
        let (dirfd, name, _keep, _keep2);
        if path.is_empty() && flags & libc::AT_EMPTY_PATH != 0 {
            let (dir, k) = self.dir(a[0])?;
            dirfd = dir;
            name = CString::default();
            _keep = k;
            _keep2 = None;
        } else {
            let follow = flags & libc::AT_SYMLINK_NOFOLLOW == 0;
            let (hp, k) = self.resolve(a[0], a[1], follow)?;
            dirfd = hp.dirfd;
            name = hp.name.clone();
            _keep = k;
            _keep2 = Some(hp);
        }
        let mut host_flags = flags & (libc::AT_SYMLINK_NOFOLLOW | libc::AT_EMPTY_PATH | libc::AT_NO_AUTOMOUNT);
        if _keep2.as_ref().is_some_and(|hp| hp.through_link) {
            host_flags &= !libc::AT_SYMLINK_NOFOLLOW;
        }
        // SAFETY: statx writes at most 256 bytes (struct statx) into `buf`.
        host_int(unsafe { libc::statx(dirfd, name.as_ptr(), host_flags, mask, buf.as_mut_ptr().cast()) })?;
        // struct statx has the same layout on every architecture.
        self.mem.write_bytes(a[4], &buf)?;
        Ok(0)
    }

    pub fn sys_getdents64(&mut self, a: &[u64; 6]) -> SysResult {
        let file = self.file(a[0])?;
        let buf = self.mem.slice_mut(a[1], a[2].min(1 << 20))?;
        if let Some(listing) = &file.listing {
            return Ok(lock(listing).read(buf)? as u64);
        }
        // struct linux_dirent64 has the same layout on every architecture.
        // SAFETY: writable guest range of `buf.len()` bytes.
        super::errno::host(unsafe { libc::syscall(libc::SYS_getdents64, file.raw(), buf.as_mut_ptr(), buf.len()) })
    }

    pub fn sys_mkdirat(&mut self, a: &[u64; 6]) -> SysResult {
        let umask = lock(&self.proc.fs).umask;
        let (hp, _k) = self.resolve(a[0], a[1], false)?;
        // SAFETY: valid dirfd and C string.
        host_int(unsafe { libc::mkdirat(hp.dirfd, hp.name.as_ptr(), (a[2] as u32) & !umask & 0o7777) })
    }

    pub fn sys_mknodat(&mut self, a: &[u64; 6]) -> SysResult {
        let mode = a[2] as u32;
        if mode & libc::S_IFMT != libc::S_IFIFO && mode & libc::S_IFMT != libc::S_IFREG && mode & libc::S_IFMT != 0 {
            return Err(Errno::EPERM);
        }
        let umask = lock(&self.proc.fs).umask;
        let (hp, _k) = self.resolve(a[0], a[1], false)?;
        // SAFETY: valid dirfd and C string; only FIFOs and regular files are made.
        host_int(unsafe { libc::mknodat(hp.dirfd, hp.name.as_ptr(), mode & !umask, 0) })
    }

    pub fn sys_unlinkat(&mut self, a: &[u64; 6]) -> SysResult {
        let (hp, _k) = self.resolve(a[0], a[1], false)?;
        // SAFETY: valid dirfd and C string.
        host_int(unsafe { libc::unlinkat(hp.dirfd, hp.name.as_ptr(), (a[2] as i32) & libc::AT_REMOVEDIR) })
    }

    pub fn sys_renameat2(&mut self, a: &[u64; 6]) -> SysResult {
        let (from, _k1) = self.resolve(a[0], a[1], false)?;
        let (to, _k2) = self.resolve(a[2], a[3], false)?;
        // SAFETY: valid dirfds and C strings.
        super::errno::host(unsafe {
            libc::syscall(libc::SYS_renameat2, from.dirfd, from.name.as_ptr(), to.dirfd, to.name.as_ptr(), a[4] as u32)
        })
    }

    pub fn sys_symlinkat(&mut self, a: &[u64; 6]) -> SysResult {
        let target = CString::new(self.path_arg(a[0])?).map_err(|_| Errno::EINVAL)?;
        let (hp, _k) = self.resolve(a[1], a[2], false)?;
        // SAFETY: valid C strings and dirfd; the target is stored, not resolved.
        host_int(unsafe { libc::symlinkat(target.as_ptr(), hp.dirfd, hp.name.as_ptr()) })
    }

    pub fn sys_linkat(&mut self, a: &[u64; 6]) -> SysResult {
        let (from, _k1) = self.resolve(a[0], a[1], false)?;
        let (to, _k2) = self.resolve(a[2], a[3], false)?;
        // SAFETY: valid dirfds and C strings; symlinks are never followed here.
        host_int(unsafe { libc::linkat(from.dirfd, from.name.as_ptr(), to.dirfd, to.name.as_ptr(), 0) })
    }

    pub fn sys_readlinkat(&mut self, a: &[u64; 6]) -> SysResult {
        let path = self.path_arg(a[1])?;
        let len = a[3];
        if (len as i64) <= 0 {
            return Err(Errno::EINVAL);
        }
        if let Some(target) = self.proc_readlink(a[0], &path)? {
            let n = target.len().min(len as usize);
            self.mem.write_bytes(a[2], &target[..n])?;
            return Ok(n as u64);
        }
        let (hp, _k) = self.resolve(a[0], a[1], false)?;
        let buf = self.mem.slice_mut(a[2], len.min(PATH_MAX as u64))?;
        // SAFETY: writable guest range of `buf.len()` bytes.
        host_size(unsafe { libc::readlinkat(hp.dirfd, hp.name.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) })
    }

    pub fn sys_faccessat(&mut self, a: &[u64; 6], flags: u64) -> SysResult {
        let follow = flags as i32 & libc::AT_SYMLINK_NOFOLLOW == 0;
        let (hp, _k) = self.resolve(a[0], a[1], follow)?;
        let host_flags = hp.nofollow_flag(follow) | (flags as i32 & libc::AT_EACCESS);
        // SAFETY: valid dirfd and C string.
        super::errno::host(unsafe {
            libc::syscall(libc::SYS_faccessat2, hp.dirfd, hp.name.as_ptr(), a[2] as i32, host_flags)
        })
    }

    pub fn sys_fchmodat(&mut self, a: &[u64; 6]) -> SysResult {
        let (hp, _k) = self.resolve(a[0], a[1], true)?;
        // SAFETY: valid dirfd and C string.
        host_int(unsafe { libc::fchmodat(hp.dirfd, hp.name.as_ptr(), (a[2] as u32) & 0o7777, 0) })
    }

    pub fn sys_fchmod(&mut self, a: &[u64; 6]) -> SysResult {
        let file = self.file(a[0])?;
        // SAFETY: fchmod on a descriptor we hold.
        host_int(unsafe { libc::fchmod(file.raw(), (a[1] as u32) & 0o7777) })
    }

    pub fn sys_fchownat(&mut self, a: &[u64; 6]) -> SysResult {
        let follow = a[4] as i32 & libc::AT_SYMLINK_NOFOLLOW == 0;
        let (hp, _k) = self.resolve(a[0], a[1], follow)?;
        let fl = if follow { 0 } else { libc::AT_SYMLINK_NOFOLLOW };
        // SAFETY: valid dirfd and C string.
        host_int(unsafe { libc::fchownat(hp.dirfd, hp.name.as_ptr(), a[2] as u32, a[3] as u32, fl) })
    }

    pub fn sys_fchown(&mut self, a: &[u64; 6]) -> SysResult {
        let file = self.file(a[0])?;
        // SAFETY: fchown on a descriptor we hold.
        host_int(unsafe { libc::fchown(file.raw(), a[1] as u32, a[2] as u32) })
    }

    pub fn sys_utimensat(&mut self, a: &[u64; 6]) -> SysResult {
        let mut times = [libc::timespec { tv_sec: 0, tv_nsec: libc::UTIME_NOW }; 2];
        if a[2] != 0 {
            for (i, t) in times.iter_mut().enumerate() {
                t.tv_sec = self.mem.load::<u64>(a[2] + 16 * i as u64)? as i64;
                t.tv_nsec = self.mem.load::<u64>(a[2] + 16 * i as u64 + 8)? as i64;
            }
        }
        let flags = a[3] as i32;
        if a[1] == 0 {
            // utimensat(fd, NULL, ...) changes the file `fd` itself.
            let file = self.file(a[0])?;
            // SAFETY: futimens on a descriptor we hold with two valid timespecs.
            return host_int(unsafe { libc::futimens(file.raw(), times.as_ptr()) });
        }
        let follow = flags & libc::AT_SYMLINK_NOFOLLOW == 0;
        let (hp, _k) = self.resolve(a[0], a[1], follow)?;
        let fl = if follow { 0 } else { libc::AT_SYMLINK_NOFOLLOW };
        // SAFETY: valid dirfd, C string and two timespecs.
        host_int(unsafe { libc::utimensat(hp.dirfd, hp.name.as_ptr(), times.as_ptr(), fl) })
    }

    pub fn sys_truncate(&mut self, a: &[u64; 6]) -> SysResult {
        let path = self.path_arg(a[0])?;
        let (dir, _k) = self.dir(libc::AT_FDCWD as u64)?;
        let fd = self.kernel.roots.open(dir, &path, libc::O_WRONLY, 0)?;
        // SAFETY: ftruncate on a descriptor we own.
        host_int(unsafe { libc::ftruncate(fd.as_raw_fd(), a[1] as i64) })
    }

    pub fn sys_ftruncate(&mut self, a: &[u64; 6]) -> SysResult {
        let file = self.file(a[0])?;
        // SAFETY: ftruncate on a descriptor we hold.
        host_int(unsafe { libc::ftruncate(file.raw(), a[1] as i64) })
    }

    pub fn sys_fallocate(&mut self, a: &[u64; 6]) -> SysResult {
        let file = self.file(a[0])?;
        // SAFETY: fallocate on a descriptor we hold.
        host_int(unsafe { libc::fallocate(file.raw(), a[1] as i32, a[2] as i64, a[3] as i64) })
    }

    pub fn sys_fsync(&mut self, a: &[u64; 6]) -> SysResult {
        let file = self.file(a[0])?;
        // SAFETY: fsync on a descriptor we hold.
        host_int(unsafe { libc::fsync(file.raw()) })
    }

    pub fn sys_chdir(&mut self, a: &[u64; 6]) -> SysResult {
        let path = self.path_arg(a[0])?;
        let (dir, _k) = self.dir(libc::AT_FDCWD as u64)?;
        let fd = self.kernel.roots.open(dir, &path, libc::O_PATH | libc::O_DIRECTORY, 0)?;
        // Search permission, as chdir(2) checks.
        // SAFETY: faccessat on a descriptor we own with an empty path.
        let ok = unsafe {
            libc::syscall(libc::SYS_faccessat2, fd.as_raw_fd(), c"".as_ptr(), libc::X_OK, libc::AT_EMPTY_PATH)
        };
        if ok < 0 {
            return Err(Errno::last());
        }
        lock(&self.proc.fs).cwd = fd;
        Ok(0)
    }

    pub fn sys_fchdir(&mut self, a: &[u64; 6]) -> SysResult {
        let file = self.file(a[0])?;
        if file.kind != FileKind::Directory {
            return Err(Errno::ENOTDIR);
        }
        lock(&self.proc.fs).cwd = dup_fd(file.raw())?;
        Ok(0)
    }

    pub fn sys_getcwd(&mut self, a: &[u64; 6]) -> SysResult {
        let cwd = lock(&self.proc.fs).cwd.as_raw_fd();
        let mut path = self.kernel.roots.cwd_path(cwd);
        path.push(0);
        if path.len() as u64 > a[1] {
            return Err(Errno::ERANGE);
        }
        self.mem.write_bytes(a[0], &path)?;
        Ok(path.len() as u64)
    }

    pub fn sys_dup(&mut self, a: &[u64; 6]) -> SysResult {
        let file = self.file(a[0])?;
        let limit = lock(&self.proc.rlimits).nofile;
        Ok(lock(&self.proc.files).alloc(file, false, 0, limit)? as u64)
    }

    pub fn sys_dup3(&mut self, a: &[u64; 6]) -> SysResult {
        if a[0] == a[1] {
            return Err(Errno::EINVAL);
        }
        if a[2] & !(libc::O_CLOEXEC as u64) != 0 {
            return Err(Errno::EINVAL);
        }
        let file = self.file(a[0])?;
        let limit = lock(&self.proc.rlimits).nofile;
        let old = lock(&self.proc.files).set(a[1] as i32, file, a[2] != 0, limit)?;
        drop(old);
        Ok(a[1])
    }

    pub fn sys_fcntl(&mut self, a: &[u64; 6]) -> SysResult {
        let fd = a[0] as i32;
        let cmd = a[1] as i32;
        let limit = lock(&self.proc.rlimits).nofile;
        match cmd {
            libc::F_DUPFD | libc::F_DUPFD_CLOEXEC => {
                let file = self.file(a[0])?;
                let min = i32::try_from(a[2]).map_err(|_| Errno::EINVAL)?;
                if u64::from(min.unsigned_abs()) >= limit {
                    return Err(Errno::EINVAL);
                }
                Ok(lock(&self.proc.files).alloc(file, cmd == libc::F_DUPFD_CLOEXEC, min, limit)? as u64)
            }
            libc::F_GETFD => Ok(u64::from(lock(&self.proc.files).entry_mut(fd)?.cloexec)),
            libc::F_SETFD => {
                lock(&self.proc.files).entry_mut(fd)?.cloexec = a[2] & 1 != 0;
                Ok(0)
            }
            libc::F_GETFL | libc::F_SETFL => {
                let file = self.file(a[0])?;
                // SAFETY: F_GETFL/F_SETFL on a descriptor we hold; flag values match on riscv64.
                host_int(unsafe { libc::fcntl(file.raw(), cmd, a[2] as i32) })
            }
            libc::F_GETLK
            | libc::F_SETLK
            | libc::F_SETLKW
            | libc::F_OFD_GETLK
            | libc::F_OFD_SETLK
            | libc::F_OFD_SETLKW => {
                let file = self.file(a[0])?;
                // struct flock is the same on riscv64 and x86-64 (32 bytes).
                let mut fl = [0u8; 32];
                self.mem.read_bytes(a[2], &mut fl)?;
                // A waiting lock is tried without waiting, and waited for by parking (as flock).
                let (host_cmd, waits) = match cmd {
                    libc::F_SETLKW => (libc::F_SETLK, true),
                    libc::F_OFD_SETLKW => (libc::F_OFD_SETLK, true),
                    _ => (cmd, false),
                };
                // SAFETY: `fl` holds a full struct flock.
                match host_int(unsafe { libc::fcntl(file.raw(), host_cmd, fl.as_mut_ptr()) }) {
                    Err(Errno::EAGAIN | Errno::EACCES) if waits => return Err(self.retry_later(Errno::ERESTARTSYS)),
                    r => r?,
                };
                self.mem.write_bytes(a[2], &fl)?;
                Ok(0)
            }
            libc::F_GETPIPE_SZ | libc::F_SETPIPE_SZ | libc::F_ADD_SEALS | libc::F_GET_SEALS => {
                let file = self.file(a[0])?;
                // SAFETY: integer-argument fcntl on a descriptor we hold.
                host_int(unsafe { libc::fcntl(file.raw(), cmd, a[2] as i32) })
            }
            _ => Err(Errno::EINVAL),
        }
    }

    pub fn sys_ioctl(&mut self, a: &[u64; 6]) -> SysResult {
        let file = self.file(a[0])?;
        let req = a[1];
        // Terminal ioctls use asm-generic numbers and layouts on both riscv64 and x86-64.
        let size = match req {
            0x5401 => 36,                  // TCGETS: struct termios
            0x5402..=0x5404 => 36,         // TCSETS, TCSETSW, TCSETSF
            0x5413 | 0x5414 => 8,          // TIOCGWINSZ, TIOCSWINSZ
            0x540f | 0x5410 => 4,          // TIOCGPGRP, TIOCSPGRP
            0x541b | 0x5421 | 0x5429 => 4, // FIONREAD, FIONBIO, TIOCGSID
            0x5451 | 0x5450 => 0,          // FIOCLEX, FIONCLEX
            _ => return Err(Errno::ENOTTY),
        };
        if req == 0x5451 || req == 0x5450 {
            lock(&self.proc.files).entry_mut(a[0] as i32)?.cloexec = req == 0x5451;
            return Ok(0);
        }
        let mut buf = [0u8; 64];
        let b = &mut buf[..size];
        self.mem
            .read_bytes(a[2], b)
            .or_else(|e| if matches!(req, 0x5401 | 0x5413 | 0x540f | 0x541b | 0x5429) { Ok(()) } else { Err(e) })?;
        // SAFETY: `buf` is at least as large as the argument structure of every ioctl allowed above.
        host_int(unsafe { libc::ioctl(file.raw(), req, buf.as_mut_ptr()) })?;
        self.mem.write_bytes(a[2], &buf[..size])?;
        Ok(0)
    }

    pub fn sys_pipe2(&mut self, a: &[u64; 6]) -> SysResult {
        let flags = a[1] as i32;
        if flags & !(libc::O_CLOEXEC | libc::O_NONBLOCK | libc::O_DIRECT) != 0 {
            return Err(Errno::EINVAL);
        }
        self.mem.check(a[0], 8, crate::mem::perm::W, Access::Write)?;
        let mut fds = [0; 2];
        // SAFETY: pipe2 writes two descriptors into `fds`.
        host_int(unsafe { libc::pipe2(fds.as_mut_ptr(), (flags & !libc::O_CLOEXEC) | libc::O_CLOEXEC) })?;
        // SAFETY: two fresh descriptors we own.
        let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        let cloexec = flags & libc::O_CLOEXEC != 0;
        let gr = self.install(r, cloexec)?;
        let gw = match self.install(w, cloexec) {
            Ok(w) => w,
            Err(e) => {
                drop(lock(&self.proc.files).close(gr as i32));
                return Err(e);
            }
        };
        self.mem.store::<u32>(a[0], gr as u32)?;
        self.mem.store::<u32>(a[0] + 4, gw as u32)?;
        Ok(0)
    }

    pub fn sys_umask(&mut self, a: &[u64; 6]) -> SysResult {
        let mut fs = lock(&self.proc.fs);
        let old = fs.umask;
        fs.umask = (a[0] as u32) & 0o777;
        Ok(u64::from(old))
    }

    pub fn sys_statfs(&mut self, a: &[u64; 6], by_fd: bool) -> SysResult {
        // struct statfs (asm-generic, 64-bit) matches x86-64's layout: 120 bytes.
        let mut buf = [0u8; 120];
        if by_fd {
            let file = self.file(a[0])?;
            // SAFETY: fstatfs writes one struct statfs (120 bytes) into `buf`.
            host_int(unsafe { libc::fstatfs(file.raw(), buf.as_mut_ptr().cast()) })?;
        } else {
            let (hp, _k) = self.resolve(libc::AT_FDCWD as u64, a[0], true)?;
            let fd = open_at(hp.dirfd, &hp.name, libc::O_PATH)?;
            // SAFETY: fstatfs writes one struct statfs into `buf`.
            host_int(unsafe { libc::fstatfs(fd.as_raw_fd(), buf.as_mut_ptr().cast()) })?;
        }
        self.mem.write_bytes(a[1], &buf)?;
        Ok(0)
    }

    pub fn sys_sendfile(&mut self, a: &[u64; 6]) -> SysResult {
        let out = self.file(a[0])?;
        let inp = self.file(a[1])?;
        let mut off: i64 = 0;
        let offp = if a[2] != 0 {
            off = self.mem.load::<u64>(a[2])? as i64;
            &mut off as *mut i64
        } else {
            std::ptr::null_mut()
        };
        self.wait_ready(&out, libc::POLLOUT)?;
        // SAFETY: descriptors we hold; `offp` is null or points at `off`.
        let r = host_size(unsafe { libc::sendfile(out.raw(), inp.raw(), offp, a[3] as usize) });
        if a[2] != 0 {
            self.mem.store::<u64>(a[2], off as u64)?;
        }
        self.pipe_error(r)
    }

    pub fn sys_copy_file_range(&mut self, a: &[u64; 6]) -> SysResult {
        let inp = self.file(a[0])?;
        let out = self.file(a[2])?;
        let (mut oi, mut oo) = (0i64, 0i64);
        if a[1] != 0 {
            oi = self.mem.load::<u64>(a[1])? as i64;
        }
        if a[3] != 0 {
            oo = self.mem.load::<u64>(a[3])? as i64;
        }
        let pi = if a[1] != 0 { &mut oi as *mut i64 } else { std::ptr::null_mut() };
        let po = if a[3] != 0 { &mut oo as *mut i64 } else { std::ptr::null_mut() };
        // SAFETY: descriptors we hold; offsets point at locals or are null.
        let r = super::errno::host(unsafe {
            libc::syscall(libc::SYS_copy_file_range, inp.raw(), pi, out.raw(), po, a[4] as usize, a[5] as u32)
        })?;
        if a[1] != 0 {
            self.mem.store::<u64>(a[1], oi as u64)?;
        }
        if a[3] != 0 {
            self.mem.store::<u64>(a[3], oo as u64)?;
        }
        Ok(r)
    }

    /// flock. A lock another descriptor holds is waited for by parking the vCPU and trying
    /// again (never in the host call, which would hold the worker, perhaps from the very guest
    /// that holds the lock).
    pub fn sys_flock(&mut self, a: &[u64; 6]) -> SysResult {
        let file = self.file(a[0])?;
        let op = a[1] as i32;
        // SAFETY: flock on a descriptor we hold.
        match host_int(unsafe { libc::flock(file.raw(), op | libc::LOCK_NB) }) {
            Err(Errno::EAGAIN) if op & libc::LOCK_NB == 0 => Err(self.retry_later(Errno::ERESTARTSYS)),
            r => r,
        }
    }

    pub fn sys_fadvise(&mut self, a: &[u64; 6]) -> SysResult {
        self.file(a[0])?;
        Ok(0)
    }

    pub fn sys_memfd_create(&mut self, a: &[u64; 6]) -> SysResult {
        let name = CString::new(self.path_arg(a[0])?).map_err(|_| Errno::EINVAL)?;
        let flags = a[1] as u32;
        // SAFETY: valid C string; the result is checked.
        let fd = super::errno::host(unsafe {
            libc::syscall(libc::SYS_memfd_create, name.as_ptr(), flags | libc::MFD_CLOEXEC)
        })?;
        // SAFETY: a fresh descriptor we own.
        let fd = unsafe { OwnedFd::from_raw_fd(fd as RawFd) };
        self.install(fd, flags & libc::MFD_CLOEXEC != 0)
    }

    pub fn sys_eventfd2(&mut self, a: &[u64; 6]) -> SysResult {
        let flags = a[1] as i32;
        // SAFETY: eventfd creates a descriptor; the result is checked.
        let fd = host_int(unsafe { libc::eventfd(a[0] as u32, flags | libc::EFD_CLOEXEC) })?;
        // SAFETY: a fresh descriptor we own.
        let fd = unsafe { OwnedFd::from_raw_fd(fd as RawFd) };
        self.install(fd, flags & libc::EFD_CLOEXEC != 0)
    }

    /// ppoll/pselect common part: waits on host pollfds translated from guest descriptors.
    fn poll_guest(
        &mut self,
        fds: &mut [libc::pollfd],
        guest: &[i32],
        timeout: Option<std::time::Duration>,
    ) -> SysResult {
        let mut files = Vec::with_capacity(guest.len());
        for (p, &g) in fds.iter_mut().zip(guest) {
            if g < 0 {
                p.fd = -1;
                files.push(None);
                continue;
            }
            match self.file(g as u64) {
                Ok(f) => {
                    p.fd = f.raw();
                    files.push(Some(f));
                }
                Err(_) => {
                    // POLLNVAL for a closed descriptor, as Linux reports it.
                    p.fd = -1;
                    files.push(None);
                }
            }
        }
        let bad: Vec<usize> =
            guest.iter().enumerate().filter(|(i, g)| **g >= 0 && files[*i].is_none()).map(|(i, _)| i).collect();
        if !bad.is_empty() {
            for &i in &bad {
                fds[i].revents = libc::POLLNVAL;
            }
            return Ok(bad.len() as u64);
        }
        // SAFETY: `fds` is a valid pollfd array of its length; no wait.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, 0) };
        if n != 0 {
            return super::errno::host_int(n);
        }
        let deadline = self.deadline(timeout);
        if Self::timed_out(deadline) {
            return Ok(0);
        }
        let interests = fds
            .iter()
            .zip(files)
            .filter_map(|(p, f)| f.map(|file| super::reactor::Interest { file, events: p.events }))
            .collect();
        Err(self.park(interests, deadline, Errno::ERESTARTNOHAND))
    }

    pub fn sys_ppoll(&mut self, a: &[u64; 6]) -> SysResult {
        let n = a[1];
        if n > 4096 {
            return Err(Errno::EINVAL);
        }
        let timeout = if a[2] != 0 { Some(self.timespec(a[2])?) } else { None };
        let mut fds = Vec::with_capacity(n as usize);
        let mut guest = Vec::with_capacity(n as usize);
        for i in 0..n {
            let fd = self.mem.load::<u32>(a[0] + 8 * i)? as i32;
            let events = self.mem.load::<u16>(a[0] + 8 * i + 4)? as i16;
            guest.push(fd);
            fds.push(libc::pollfd { fd, events, revents: 0 });
        }
        let r = self.poll_guest(&mut fds, &guest, timeout)?;
        for (i, p) in fds.iter().enumerate() {
            self.mem.store::<u16>(a[0] + 8 * i as u64 + 6, p.revents as u16)?;
        }
        Ok(r)
    }

    pub fn sys_pselect6(&mut self, a: &[u64; 6]) -> SysResult {
        let nfds = a[0].min(1024) as usize;
        let words = nfds.div_ceil(64);
        let load_set = |s: &Self, addr: u64| -> Result<Vec<u64>, Errno> {
            if addr == 0 {
                return Ok(vec![0; words]);
            }
            (0..words).map(|i| s.mem.load::<u64>(addr + 8 * i as u64).map_err(Errno::from)).collect()
        };
        let sets = [load_set(self, a[1])?, load_set(self, a[2])?, load_set(self, a[3])?];
        let timeout = if a[4] != 0 { Some(self.timespec(a[4])?) } else { None };
        let mut fds = Vec::new();
        let mut guest = Vec::new();
        for fd in 0..nfds {
            let bit = |s: &Vec<u64>| s[fd / 64] >> (fd % 64) & 1 != 0;
            let mut ev = 0;
            if bit(&sets[0]) {
                ev |= libc::POLLIN;
            }
            if bit(&sets[1]) {
                ev |= libc::POLLOUT;
            }
            if bit(&sets[2]) {
                ev |= libc::POLLPRI;
            }
            if ev != 0 {
                guest.push(fd as i32);
                fds.push(libc::pollfd { fd: fd as i32, events: ev, revents: 0 });
            }
        }
        self.poll_guest(&mut fds, &guest, timeout)?;
        if fds.iter().any(|p| p.revents & libc::POLLNVAL != 0) {
            return Err(Errno::EBADF);
        }
        let mut out = [vec![0u64; words], vec![0u64; words], vec![0u64; words]];
        let mut count = 0;
        for (p, &g) in fds.iter().zip(&guest) {
            let g = g as usize;
            let hits = [
                p.revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0 && p.events & libc::POLLIN != 0,
                p.revents & (libc::POLLOUT | libc::POLLERR) != 0 && p.events & libc::POLLOUT != 0,
                p.revents & libc::POLLPRI != 0 && p.events & libc::POLLPRI != 0,
            ];
            for (k, hit) in hits.iter().enumerate() {
                if *hit {
                    out[k][g / 64] |= 1 << (g % 64);
                    count += 1;
                }
            }
        }
        for (k, addr) in [a[1], a[2], a[3]].into_iter().enumerate() {
            if addr != 0 {
                for (i, w) in out[k].iter().enumerate() {
                    self.mem.store::<u64>(addr + 8 * i as u64, *w)?;
                }
            }
        }
        Ok(count)
    }
}

fn open_at(dirfd: RawFd, name: &CStr, flags: i32) -> Result<OwnedFd, Errno> {
    // SAFETY: valid dirfd and C string; the result is checked.
    let fd = unsafe { libc::openat(dirfd, name.as_ptr(), flags | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(Errno::last());
    }
    // SAFETY: a fresh descriptor we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}
