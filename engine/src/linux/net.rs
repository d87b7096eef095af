//! Sockets and epoll.
//!
//! Every guest socket and epoll instance owns a host one; the host kernel does the networking.
//! What the layer translates:
//!
//! - **Addresses.** `struct sockaddr_*` share their layouts on riscv64 and x86-64, so AF_INET and
//!   AF_INET6 addresses pass unchanged. An AF_UNIX pathname is a guest path: in sysroot mode it
//!   resolves like any other (absolute paths under the sysroot first), relative to the calling
//!   process's working directory, which is a descriptor and not the host's shared cwd. The host
//!   address is then the absolute host path, or, when that is longer than `sun_path`,
//!   `/proc/self/fd/N/NAME` with `N` an `O_PATH` descriptor of the parent directory (no `chdir`,
//!   which would race with every other guest thread). [`UnixNames`] remembers which guest name
//!   each host path was bound under, so names the host reports back (getsockname, getpeername,
//!   accept, recvfrom) read as the guest wrote them. In confined mode a guest has no network and
//!   no host socket namespace: AF_INET/AF_INET6 sockets and every AF_UNIX bind, connect or sendto
//!   address (pathname, abstract or autobind) fail with EACCES; socketpair stays.
//! - **Messages.** The guest `struct msghdr` (56 bytes) and `struct cmsghdr` have the x86-64
//!   layouts:
//!
//!   ```text
//!   msghdr:  +0 name ptr | +8 namelen u32 (+4 pad) | +16 iov ptr | +24 iovlen u64
//!            +32 control ptr | +40 controllen u64 | +48 flags i32 (+4 pad)
//!   cmsghdr: +0 len u64 | +8 level i32 | +12 type i32 | +16 data (entries 8-byte aligned)
//!   ```
//!
//!   Both ABIs are LP64 and little-endian, so every control message Linux defines (credentials,
//!   timestamps, packet info) has one layout on both and passes unchanged, except SCM_RIGHTS,
//!   whose descriptors are translated: guest to host when sending, and received host descriptors
//!   are installed in the guest table (MSG_CMSG_CLOEXEC honoured).
//! - **Blocking.** Host transfers always run with MSG_DONTWAIT; a guest call that would block
//!   waits for readiness in `ppoll` (interruptible by guest signals, bounded by SO_RCVTIMEO or
//!   SO_SNDTIMEO) and tries again. A blocking stream send goes on until everything is sent, and
//!   MSG_WAITALL until everything is received, as Linux does; a signal then ends it with the count
//!   so far. A blocking connect switches the host descriptor to non-blocking for the call itself.
//! - **epoll.** The guest `struct epoll_event` is 16 bytes (events u32, 4 bytes padding, data
//!   u64); x86-64's is packed into 12. The host epoll set holds host descriptors with the guest's
//!   data word, and a file leaves it when its last guest descriptor closes, since the host
//!   descriptor is shared by every guest descriptor that names the same open file. One
//!   consequence: where Linux keys an entry by file *and* descriptor number, so that two `dup`s
//!   of one file can both be added, here the second add fails with EEXIST.
//!
//! A blocking accept polls before it calls the host, so it cannot block in the host unless
//! another thread takes the connection in between (then it waits there until the next one).
#![expect(
    clippy::cast_possible_truncation,
    reason = "system call arguments are narrowed to their C parameter types as the Linux ABI does, and host sizes are 64-bit"
)]

use std::collections::HashMap;
use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::errno::{host_int, host_size};
use super::fd::OpenFile;
use super::reactor::Interest;
use super::syscall::{Sys, SysResult};
use super::{Errno, lock};
use crate::mem::{Access, perm};

/// `sizeof(struct sockaddr_storage)`: the longest address a guest may pass.
const SOCKADDR_MAX: usize = 128;
/// `sizeof(sun_path)`.
const SUN_PATH_MAX: usize = 108;
/// The size of a guest `struct msghdr`.
const MSGHDR_SIZE: u64 = 56;
/// The size of a `struct cmsghdr` header (before the data).
const CMSG_HDR: usize = 16;
/// Longest control buffer handed to the host (Linux's default optmem_max is 20 KiB).
const CONTROL_MAX: u64 = 64 << 10;
/// Longest iovec array (UIO_MAXIOV).
const IOV_MAX: u64 = 1024;
/// Longest socket option value a guest may pass.
const OPTLEN_MAX: u32 = 256;
/// The size of a guest `struct epoll_event`.
const EPOLL_EVENT: u64 = 16;
/// Most events taken from the host in one epoll_wait.
const EPOLL_BATCH: usize = 256;
/// How long a blocking AF_UNIX connect sleeps between tries while the listener's backlog is full.
const BACKLOG_RETRY: Duration = Duration::from_millis(10);

/// Socket options whose values hold a pointer or a descriptor, which cannot pass unchanged.
const UNTRANSLATED_OPTIONS: [i32; 4] =
    [libc::SO_ATTACH_FILTER, libc::SO_ATTACH_BPF, libc::SO_ATTACH_REUSEPORT_CBPF, libc::SO_ATTACH_REUSEPORT_EBPF];

/// The netfilter control options of the IP and IPv6 levels (IPT_BASE_CTL and up).
const NETFILTER_CTL: std::ops::RangeInclusive<i32> = 64..=71;

/// Guest names of AF_UNIX sockets bound on the host, by host address.
#[derive(Debug, Default)]
pub(crate) struct UnixNames {
    by_host: Mutex<HashMap<Vec<u8>, Vec<u8>>>,
}

impl UnixNames {
    fn remember(&self, host: &[u8], guest: &[u8]) {
        lock(&self.by_host).insert(host.to_vec(), guest.to_vec());
    }

    /// The guest name of a host AF_UNIX path; a path the guest never bound reads as itself (in
    /// sysroot mode guest and host share the file-system namespace outside the sysroot).
    fn guest(&self, host: &[u8]) -> Vec<u8> {
        lock(&self.by_host).get(host).cloned().unwrap_or_else(|| host.to_vec())
    }
}

/// A guest address made ready for the host.
struct HostAddr {
    bytes: Vec<u8>,
    /// The host path an AF_UNIX pathname became, with the guest's path (for [`UnixNames`]).
    unix: Option<(Vec<u8>, Vec<u8>)>,
    /// Keeps the parent directory named by a `/proc/self/fd/N/NAME` path open.
    _dir: Option<OwnedFd>,
}

fn family(bytes: &[u8]) -> Option<i32> {
    (bytes.len() >= 2).then(|| i32::from(u16::from_le_bytes([bytes[0], bytes[1]])))
}

fn nonblocking(file: &OpenFile) -> bool {
    // SAFETY: F_GETFL on a descriptor we hold.
    let fl = unsafe { libc::fcntl(file.raw(), libc::F_GETFL) };
    fl >= 0 && fl & libc::O_NONBLOCK != 0
}

fn int_option(fd: RawFd, level: i32, name: i32) -> Result<i32, Errno> {
    let mut v: i32 = 0;
    let mut len = std::mem::size_of::<i32>() as libc::socklen_t;
    // SAFETY: `v` is an int of the size passed in `len`.
    host_int(unsafe { libc::getsockopt(fd, level, name, (&mut v as *mut i32).cast(), &mut len) })?;
    Ok(v)
}

/// SO_RCVTIMEO or SO_SNDTIMEO of a host socket; `None` when unset (wait forever).
fn socket_timeout(fd: RawFd, send: bool) -> Option<Duration> {
    let mut tv = libc::timeval { tv_sec: 0, tv_usec: 0 };
    let mut len = std::mem::size_of::<libc::timeval>() as libc::socklen_t;
    let name = if send { libc::SO_SNDTIMEO } else { libc::SO_RCVTIMEO };
    // SAFETY: `tv` is a timeval of the size passed in `len`.
    let r = unsafe { libc::getsockopt(fd, libc::SOL_SOCKET, name, (&mut tv as *mut libc::timeval).cast(), &mut len) };
    if r != 0 || (tv.tv_sec == 0 && tv.tv_usec == 0) {
        return None;
    }
    Some(Duration::new(tv.tv_sec.max(0) as u64, (tv.tv_usec.clamp(0, 999_999) * 1000) as u32))
}

/// Drops `n` transferred bytes from the front of an iovec array.
fn advance(iov: &mut Vec<libc::iovec>, mut n: usize) {
    while let Some(first) = iov.first_mut() {
        if n < first.iov_len {
            // SAFETY: `n` is inside the range the iovec describes.
            first.iov_base = unsafe { first.iov_base.cast::<u8>().add(n) }.cast();
            first.iov_len -= n;
            return;
        }
        n -= first.iov_len;
        iov.remove(0);
    }
}

fn iov_len(iov: &[libc::iovec]) -> usize {
    iov.iter().map(|v| v.iov_len).sum()
}

/// The control messages of a buffer: (offset, length, level, type) of each complete one.
fn cmsgs(buf: &[u8]) -> Result<Vec<(usize, usize, i32, i32)>, Errno> {
    let mut out = Vec::new();
    let mut off = 0;
    while off + CMSG_HDR <= buf.len() {
        let len = u64::from_le_bytes(buf[off..off + 8].try_into().map_err(|_| Errno::EINVAL)?);
        let len = usize::try_from(len).map_err(|_| Errno::EINVAL)?;
        if len < CMSG_HDR || len > buf.len() - off {
            return Err(Errno::EINVAL);
        }
        let level = i32::from_le_bytes(buf[off + 8..off + 12].try_into().map_err(|_| Errno::EINVAL)?);
        let ty = i32::from_le_bytes(buf[off + 12..off + 16].try_into().map_err(|_| Errno::EINVAL)?);
        out.push((off, len, level, ty));
        off += len.next_multiple_of(8);
    }
    Ok(out)
}

fn is_rights(level: i32, ty: i32) -> bool {
    level == libc::SOL_SOCKET && ty == libc::SCM_RIGHTS
}

/// How a transfer moves data.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Dir {
    Send,
    Recv,
}

impl Sys<'_> {
    /// Reads a guest socket address and makes it a host one.
    fn host_addr(&self, addr: u64, len: u64) -> Result<HostAddr, Errno> {
        let len = usize::try_from(len as u32 as i32).map_err(|_| Errno::EINVAL)?;
        if len > SOCKADDR_MAX {
            return Err(Errno::EINVAL);
        }
        let mut bytes = vec![0u8; len];
        self.mem.read_bytes(addr, &mut bytes)?;
        if family(&bytes) != Some(libc::AF_UNIX) {
            return Ok(HostAddr { bytes, unix: None, _dir: None });
        }
        if self.kernel.roots.confined() {
            return Err(Errno::EACCES);
        }
        let path = &bytes[2..];
        if path.first().is_none_or(|&b| b == 0) {
            // Autobind or an abstract name: the host's abstract namespace, as a Linux process has.
            return Ok(HostAddr { bytes, unix: None, _dir: None });
        }
        let end = path.iter().position(|&b| b == 0).unwrap_or(path.len());
        let guest = path[..end].to_vec();
        let cwd = lock(&self.proc.fs).cwd.as_raw_fd();
        let resolved = self.kernel.roots.resolve(cwd, &guest, false)?;
        let name = resolved.name.as_bytes();
        let mut host = if name.first() == Some(&b'/') {
            Some(name.to_vec())
        } else {
            // The working directory's host path, unless it is gone (then only the descriptor
            // still names it).
            std::fs::read_link(format!("/proc/self/fd/{}", resolved.dirfd))
                .ok()
                .map(|p| p.as_os_str().as_encoded_bytes().to_vec())
                .filter(|p| p.first() == Some(&b'/') && !p.ends_with(b" (deleted)"))
                .map(|mut base| {
                    if base.last() != Some(&b'/') {
                        base.push(b'/');
                    }
                    base.extend_from_slice(name);
                    base
                })
        }
        .filter(|h| h.len() < SUN_PATH_MAX)
        .unwrap_or_default();
        let mut dir = None;
        if host.is_empty() {
            let (parent, last) = match name.iter().rposition(|&b| b == b'/') {
                Some(0) => (&b"/"[..], &name[1..]),
                Some(i) => (&name[..i], &name[i + 1..]),
                None => (&b"."[..], name),
            };
            let parent = CString::new(parent).map_err(|_| Errno::EINVAL)?;
            // SAFETY: a valid directory descriptor and C string; the result is checked.
            let pfd = unsafe {
                libc::openat(resolved.dirfd, parent.as_ptr(), libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC)
            };
            if pfd < 0 {
                return Err(Errno::last());
            }
            // SAFETY: a fresh descriptor we own.
            let pfd = unsafe { OwnedFd::from_raw_fd(pfd) };
            host = format!("/proc/self/fd/{}/", pfd.as_raw_fd()).into_bytes();
            host.extend_from_slice(last);
            if host.len() >= SUN_PATH_MAX {
                return Err(Errno::ENAMETOOLONG);
            }
            dir = Some(pfd);
        }
        let mut bytes = (libc::AF_UNIX as u16).to_le_bytes().to_vec();
        bytes.extend_from_slice(&host);
        bytes.push(0);
        Ok(HostAddr { bytes, unix: Some((host, guest)), _dir: dir })
    }

    /// Turns an address the host reported into the guest's form.
    fn guest_addr(&self, mut bytes: Vec<u8>) -> Vec<u8> {
        if family(&bytes) != Some(libc::AF_UNIX) || bytes.len() <= 2 || bytes[2] == 0 {
            return bytes;
        }
        let path = &bytes[2..];
        let end = path.iter().position(|&b| b == 0).unwrap_or(path.len());
        let guest = self.kernel.unix_names.guest(&path[..end]);
        bytes.truncate(2);
        bytes.extend_from_slice(&guest);
        bytes.push(0);
        bytes
    }

    /// Writes an address to a guest buffer whose length is at `lenp` (value-result), truncating
    /// it as Linux does; the full length goes back to `lenp`.
    fn put_addr(&self, addr: u64, lenp: u64, bytes: &[u8]) -> Result<(), Errno> {
        if addr == 0 || lenp == 0 {
            return Ok(());
        }
        let room = usize::try_from(self.mem.load::<u32>(lenp)? as i32).map_err(|_| Errno::EINVAL)?;
        self.mem.write_bytes(addr, &bytes[..bytes.len().min(room)])?;
        self.mem.store::<u32>(lenp, bytes.len() as u32)?;
        Ok(())
    }

    /// Whether `file` is ready for `events` now: Ok(true); Ok(false) when `deadline` passed;
    /// else the vCPU parks until it is (PARKED), or ERESTARTSYS when a guest signal must be
    /// handled.
    fn wait_socket(&mut self, file: &Arc<OpenFile>, events: i16, deadline: Option<Instant>) -> Result<bool, Errno> {
        let mut pfd = libc::pollfd { fd: file.raw(), events, revents: 0 };
        // SAFETY: one valid pollfd, no wait.
        if unsafe { libc::poll(&mut pfd, 1, 0) } > 0 {
            return Ok(true);
        }
        if Self::timed_out(deadline) {
            return Ok(false);
        }
        Err(self.park(vec![Interest { file: file.clone(), events }], deadline, Errno::ERESTARTSYS))
    }

    pub fn sys_socket(&mut self, a: &[u64; 6]) -> SysResult {
        let (domain, ty, proto) = (a[0] as i32, a[1] as i32, a[2] as i32);
        match domain {
            libc::AF_UNIX => {}
            libc::AF_INET | libc::AF_INET6 if self.kernel.roots.confined() => return Err(Errno::EACCES),
            libc::AF_INET | libc::AF_INET6 => {}
            _ => return Err(Errno::EAFNOSUPPORT),
        }
        // SOCK_NONBLOCK and SOCK_CLOEXEC are O_NONBLOCK and O_CLOEXEC on riscv64 and x86-64.
        // SAFETY: creates a descriptor; the result is checked.
        let fd = host_int(unsafe { libc::socket(domain, ty | libc::SOCK_CLOEXEC, proto) })?;
        // SAFETY: a fresh descriptor we own.
        let fd = unsafe { OwnedFd::from_raw_fd(fd as RawFd) };
        self.install(fd, ty & libc::SOCK_CLOEXEC != 0)
    }

    pub fn sys_socketpair(&mut self, a: &[u64; 6]) -> SysResult {
        let (domain, ty, proto) = (a[0] as i32, a[1] as i32, a[2] as i32);
        if domain != libc::AF_UNIX {
            // Linux has socketpair only for AF_UNIX among the families offered here.
            return Err(if matches!(domain, libc::AF_INET | libc::AF_INET6) {
                Errno::EOPNOTSUPP
            } else {
                Errno::EAFNOSUPPORT
            });
        }
        self.mem.check(a[3], 8, perm::W, Access::Write)?;
        let mut sv = [0; 2];
        // SAFETY: socketpair writes two descriptors into `sv`.
        host_int(unsafe { libc::socketpair(domain, ty | libc::SOCK_CLOEXEC, proto, sv.as_mut_ptr()) })?;
        // SAFETY: two fresh descriptors we own.
        let (s0, s1) = unsafe { (OwnedFd::from_raw_fd(sv[0]), OwnedFd::from_raw_fd(sv[1])) };
        let cloexec = ty & libc::SOCK_CLOEXEC != 0;
        let g0 = self.install(s0, cloexec)?;
        let g1 = match self.install(s1, cloexec) {
            Ok(g) => g,
            Err(e) => {
                drop(lock(&self.proc.files).close(g0 as i32));
                return Err(e);
            }
        };
        self.mem.store::<u32>(a[3], g0 as u32)?;
        self.mem.store::<u32>(a[3] + 4, g1 as u32)?;
        Ok(0)
    }

    pub fn sys_bind(&mut self, a: &[u64; 6]) -> SysResult {
        let file = self.file(a[0])?;
        let addr = self.host_addr(a[1], a[2])?;
        // SAFETY: `addr.bytes` is a socket address of the length passed.
        host_int(unsafe { libc::bind(file.raw(), addr.bytes.as_ptr().cast(), addr.bytes.len() as libc::socklen_t) })?;
        if let Some((host, guest)) = &addr.unix {
            self.kernel.unix_names.remember(host, guest);
        }
        Ok(0)
    }

    pub fn sys_listen(&mut self, a: &[u64; 6]) -> SysResult {
        let file = self.file(a[0])?;
        // SAFETY: listen on a descriptor we hold.
        host_int(unsafe { libc::listen(file.raw(), a[1] as i32) })
    }

    pub fn sys_connect(&mut self, a: &[u64; 6]) -> SysResult {
        let file = self.file(a[0])?;
        let addr = self.host_addr(a[1], a[2])?;
        let fd = file.raw();
        let connect = || {
            // SAFETY: `addr.bytes` is a socket address of the length passed.
            host_int(unsafe { libc::connect(fd, addr.bytes.as_ptr().cast(), addr.bytes.len() as libc::socklen_t) })
        };
        if nonblocking(&file) {
            return connect();
        }
        let deadline = self.deadline(socket_timeout(fd, true));
        {
            // The host descriptor is non-blocking only during the call itself, so that the wait
            // for the handshake below can be interrupted by guest signals.
            // SAFETY: F_GETFL/F_SETFL on a descriptor we hold.
            let fl = unsafe { libc::fcntl(fd, libc::F_GETFL) };
            // SAFETY: as above.
            unsafe { libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK) };
            let r = connect();
            // SAFETY: as above; restores the guest's blocking mode.
            unsafe { libc::fcntl(fd, libc::F_SETFL, fl) };
            match r {
                // The handshake this call started (before it parked) has completed.
                Err(Errno::EISCONN) if self.wait.resumed => Ok(0),
                Err(Errno::EINPROGRESS | Errno::EALREADY) => {
                    if !self.wait_socket(&file, libc::POLLOUT, deadline)? {
                        return Err(Errno::EINPROGRESS);
                    }
                    match int_option(fd, libc::SOL_SOCKET, libc::SO_ERROR)? {
                        0 => Ok(0),
                        e => Err(Errno(e)),
                    }
                }
                // A full AF_UNIX backlog: Linux sleeps until the listener accepts; poll cannot
                // tell that, so sleep a little and try again.
                Err(Errno::EAGAIN) => {
                    if Self::timed_out(deadline) {
                        return Err(Errno::EAGAIN);
                    }
                    let retry = Instant::now() + BACKLOG_RETRY;
                    Err(self.park(Vec::new(), Some(deadline.map_or(retry, |d| d.min(retry))), Errno::ERESTARTSYS))
                }
                r => r,
            }
        }
    }

    pub fn sys_accept4(&mut self, a: &[u64; 6]) -> SysResult {
        let flags = a[3] as i32;
        if flags & !(libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC) != 0 {
            return Err(Errno::EINVAL);
        }
        let file = self.file(a[0])?;
        let fd = file.raw();
        if a[1] != 0 {
            self.mem.load::<u32>(a[2])?;
        }
        let blocking = !nonblocking(&file);
        let deadline = self.deadline(socket_timeout(fd, false));
        let mut buf = [0u8; SOCKADDR_MAX];
        loop {
            // Wait before the host call, so a blocking host listener never blocks there.
            if blocking && !self.wait_socket(&file, libc::POLLIN, deadline)? {
                return Err(Errno::EAGAIN);
            }
            let mut len = SOCKADDR_MAX as libc::socklen_t;
            // SAFETY: `buf` holds `len` bytes for the peer address.
            let r = unsafe { libc::accept4(fd, buf.as_mut_ptr().cast(), &mut len, flags | libc::SOCK_CLOEXEC) };
            if r < 0 {
                let e = Errno::last();
                if e == Errno::EAGAIN && blocking {
                    continue;
                }
                return Err(e);
            }
            // SAFETY: a fresh descriptor we own.
            let conn = unsafe { OwnedFd::from_raw_fd(r) };
            let peer = self.guest_addr(buf[..(len as usize).min(SOCKADDR_MAX)].to_vec());
            self.put_addr(a[1], a[2], &peer)?;
            return self.install(conn, flags & libc::SOCK_CLOEXEC != 0);
        }
    }

    pub fn sys_getsockname(&mut self, a: &[u64; 6], peer: bool) -> SysResult {
        let file = self.file(a[0])?;
        self.mem.load::<u32>(a[2])?;
        let mut buf = [0u8; SOCKADDR_MAX];
        let mut len = SOCKADDR_MAX as libc::socklen_t;
        // SAFETY: `buf` holds `len` bytes for the address.
        host_int(unsafe {
            if peer {
                libc::getpeername(file.raw(), buf.as_mut_ptr().cast(), &mut len)
            } else {
                libc::getsockname(file.raw(), buf.as_mut_ptr().cast(), &mut len)
            }
        })?;
        let addr = self.guest_addr(buf[..(len as usize).min(SOCKADDR_MAX)].to_vec());
        self.put_addr(a[1], a[2], &addr)?;
        Ok(0)
    }

    pub fn sys_sendto(&mut self, a: &[u64; 6]) -> SysResult {
        let file = self.file(a[0])?;
        let buf = self.mem.slice(a[1], a[2].min(isize::MAX as u64))?;
        let addr = if a[4] != 0 { Some(self.host_addr(a[4], a[5])?) } else { None };
        let iov = vec![libc::iovec { iov_base: buf.as_ptr().cast_mut().cast(), iov_len: buf.len() }];
        // SAFETY: an all-zero msghdr is a valid empty message.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        if let Some(addr) = &addr {
            msg.msg_name = addr.bytes.as_ptr().cast_mut().cast();
            msg.msg_namelen = addr.bytes.len() as libc::socklen_t;
        }
        self.transfer(&file, &mut msg, iov, Dir::Send, a[3] as i32)
    }

    pub fn sys_recvfrom(&mut self, a: &[u64; 6]) -> SysResult {
        let file = self.file(a[0])?;
        let buf = self.mem.slice_mut(a[1], a[2].min(isize::MAX as u64))?;
        if a[4] != 0 {
            self.mem.load::<u32>(a[5])?;
        }
        let iov = vec![libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() }];
        let mut name = [0u8; SOCKADDR_MAX];
        // SAFETY: an all-zero msghdr is a valid empty message.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        if a[4] != 0 {
            msg.msg_name = name.as_mut_ptr().cast();
            msg.msg_namelen = SOCKADDR_MAX as libc::socklen_t;
        }
        let n = self.transfer(&file, &mut msg, iov, Dir::Recv, a[3] as i32)?;
        if a[4] != 0 {
            let addr = self.guest_addr(name[..(msg.msg_namelen as usize).min(SOCKADDR_MAX)].to_vec());
            self.put_addr(a[4], a[5], &addr)?;
        }
        Ok(n)
    }

    /// Moves data with the host's sendmsg or recvmsg, waiting as a blocking guest socket would.
    fn transfer(
        &mut self,
        file: &Arc<OpenFile>,
        msg: &mut libc::msghdr,
        mut iov: Vec<libc::iovec>,
        dir: Dir,
        flags: i32,
    ) -> SysResult {
        let fd = file.raw();
        let blocking = flags & libc::MSG_DONTWAIT == 0 && !nonblocking(file);
        let stream = int_option(fd, libc::SOL_SOCKET, libc::SO_TYPE) == Ok(libc::SOCK_STREAM);
        // A stream send, and a MSG_WAITALL receive without control data, go on after a short
        // transfer (a receive's control data belongs to its first part only).
        let whole = blocking
            && stream
            && match dir {
                Dir::Send => true,
                Dir::Recv => flags & libc::MSG_WAITALL != 0 && flags & libc::MSG_PEEK == 0 && msg.msg_controllen == 0,
            };
        let events = if dir == Dir::Send { libc::POLLOUT } else { libc::POLLIN };
        let deadline = self.deadline(socket_timeout(fd, dir == Dir::Send));
        let host_flags = flags | libc::MSG_DONTWAIT | if dir == Dir::Recv { libc::MSG_CMSG_CLOEXEC } else { 0 };
        // A whole transfer that parked part way goes on where it stopped.
        let mut total = self.wait.done;
        let mut first: Option<(libc::socklen_t, libc::c_int)> = None;
        if total > 0 {
            advance(&mut iov, total as usize);
            msg.msg_name = std::ptr::null_mut();
            msg.msg_namelen = 0;
            msg.msg_control = std::ptr::null_mut();
            msg.msg_controllen = 0;
        }
        let result = loop {
            msg.msg_iov = iov.as_mut_ptr();
            msg.msg_iovlen = iov.len();
            let r = match dir {
                // SAFETY: `msg` points at checked guest ranges (iovecs) and host buffers that
                // outlive the call (name, control).
                Dir::Send => host_size(unsafe { libc::sendmsg(fd, msg, host_flags) }),
                // SAFETY: as above.
                Dir::Recv => host_size(unsafe { libc::recvmsg(fd, msg, host_flags) }),
            };
            match r {
                Ok(n) => {
                    total += n;
                    if first.is_none() {
                        first = Some((msg.msg_namelen, msg.msg_flags));
                    }
                    if whole && n > 0 && (n as usize) < iov_len(&iov) {
                        advance(&mut iov, n as usize);
                        msg.msg_name = std::ptr::null_mut();
                        msg.msg_namelen = 0;
                        msg.msg_control = std::ptr::null_mut();
                        msg.msg_controllen = 0;
                        continue;
                    }
                    break Ok(total);
                }
                Err(Errno::EAGAIN) if blocking => match self.wait_socket(file, events, deadline) {
                    Ok(true) => {}
                    Ok(false) => break if total > 0 { Ok(total) } else { Err(Errno::EAGAIN) },
                    Err(Errno::PARKED) => {
                        self.wait.done = total;
                        break Err(Errno::PARKED);
                    }
                    Err(e) => break if total > 0 { Ok(total) } else { Err(e) },
                },
                Err(e) => break if total > 0 { Ok(total) } else { Err(e) },
            }
        };
        if let Some((namelen, mflags)) = first {
            msg.msg_namelen = namelen;
            msg.msg_flags = mflags;
        }
        if dir == Dir::Send && flags & libc::MSG_NOSIGNAL == 0 {
            return self.pipe_error(result);
        }
        result
    }

    /// The fields of a guest `struct msghdr` (same layout on riscv64 and x86-64): name, name
    /// length, iovec array, iovec count, control buffer and its length.
    fn msghdr(&self, h: u64) -> Result<(u64, u32, u64, u64, u64, u64), Errno> {
        Ok((
            self.mem.load::<u64>(h)?,
            self.mem.load::<u32>(h + 8)?,
            self.mem.load::<u64>(h + 16)?,
            self.mem.load::<u64>(h + 24)?,
            self.mem.load::<u64>(h + 32)?,
            self.mem.load::<u64>(h + 40)?,
        ))
    }

    pub fn sys_sendmsg(&mut self, a: &[u64; 6]) -> SysResult {
        let file = self.file(a[0])?;
        let h = a[1];
        let (name_ptr, namelen, iov_ptr, iovlen, control_ptr, controllen) = self.msghdr(h)?;
        if iovlen > IOV_MAX {
            return Err(Errno::EMSGSIZE);
        }
        if controllen > CONTROL_MAX {
            return Err(Errno::ENOBUFS);
        }
        let addr =
            if name_ptr != 0 && namelen != 0 { Some(self.host_addr(name_ptr, u64::from(namelen))?) } else { None };
        let iov = self.iovecs(iov_ptr, iovlen, false)?;
        let mut control = vec![0u8; controllen as usize];
        self.mem.read_bytes(control_ptr, &mut control)?;
        // Descriptors passed with SCM_RIGHTS become host descriptors, kept open until sent.
        let mut passed = Vec::new();
        for (off, len, level, ty) in cmsgs(&control)? {
            if !is_rights(level, ty) {
                continue;
            }
            for slot in control[off + CMSG_HDR..off + len].chunks_exact_mut(4) {
                let guest = i32::from_le_bytes([slot[0], slot[1], slot[2], slot[3]]);
                let f = lock(&self.proc.files).get(guest)?;
                slot.copy_from_slice(&f.raw().to_le_bytes());
                passed.push(f);
            }
        }
        // SAFETY: an all-zero msghdr is a valid empty message.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        if let Some(addr) = &addr {
            msg.msg_name = addr.bytes.as_ptr().cast_mut().cast();
            msg.msg_namelen = addr.bytes.len() as libc::socklen_t;
        }
        if !control.is_empty() {
            msg.msg_control = control.as_mut_ptr().cast();
            msg.msg_controllen = control.len();
        }
        let r = self.transfer(&file, &mut msg, iov, Dir::Send, a[2] as i32);
        drop(passed);
        r
    }

    pub fn sys_recvmsg(&mut self, a: &[u64; 6]) -> SysResult {
        let file = self.file(a[0])?;
        let flags = a[2] as i32;
        let h = a[1];
        let (name_ptr, namelen, iov_ptr, iovlen, control_ptr, controllen) = self.msghdr(h)?;
        self.mem.check(h, MSGHDR_SIZE, perm::W, Access::Write)?;
        if iovlen > IOV_MAX {
            return Err(Errno::EMSGSIZE);
        }
        if (namelen as i32) < 0 {
            return Err(Errno::EINVAL);
        }
        let iov = self.iovecs(iov_ptr, iovlen, true)?;
        let mut name = [0u8; SOCKADDR_MAX];
        let mut control = vec![0u8; controllen.min(CONTROL_MAX) as usize];
        // SAFETY: an all-zero msghdr is a valid empty message.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        if name_ptr != 0 {
            msg.msg_name = name.as_mut_ptr().cast();
            msg.msg_namelen = SOCKADDR_MAX as libc::socklen_t;
        }
        if control_ptr != 0 && !control.is_empty() {
            msg.msg_control = control.as_mut_ptr().cast();
            msg.msg_controllen = control.len();
        }
        let n = self.transfer(&file, &mut msg, iov, Dir::Recv, flags)?;
        // The host saw MSG_CMSG_CLOEXEC whatever the guest asked, and echoes it in the flags.
        let mut mflags = (msg.msg_flags & !libc::MSG_CMSG_CLOEXEC) | (flags & libc::MSG_CMSG_CLOEXEC);
        let used = msg.msg_controllen.min(control.len());
        control.truncate(used);
        self.install_received(&mut control, flags & libc::MSG_CMSG_CLOEXEC != 0, &mut mflags)?;
        if name_ptr != 0 {
            let addr = self.guest_addr(name[..(msg.msg_namelen as usize).min(SOCKADDR_MAX)].to_vec());
            self.mem.write_bytes(name_ptr, &addr[..addr.len().min(namelen as usize)])?;
            self.mem.store::<u32>(h + 8, addr.len() as u32)?;
        } else {
            self.mem.store::<u32>(h + 8, 0)?;
        }
        if control_ptr != 0 {
            self.mem.write_bytes(control_ptr, &control)?;
        }
        self.mem.store::<u64>(h + 40, control.len() as u64)?;
        self.mem.store::<u32>(h + 48, mflags as u32)?;
        Ok(n)
    }

    /// Installs the host descriptors of received SCM_RIGHTS messages as guest descriptors and
    /// writes their guest numbers in place. Descriptors that do not fit in the guest's table are
    /// closed and cut off with MSG_CTRUNC, as Linux does.
    fn install_received(&self, control: &mut Vec<u8>, cloexec: bool, mflags: &mut i32) -> Result<(), Errno> {
        // The host wrote the buffer, so its messages are well formed.
        let list = cmsgs(control)?;
        let mut cut: Option<usize> = None;
        for (off, len, level, ty) in list {
            if !is_rights(level, ty) {
                continue;
            }
            let mut kept = 0;
            for i in 0..(len - CMSG_HDR) / 4 {
                let at = off + CMSG_HDR + 4 * i;
                let host = i32::from_le_bytes([control[at], control[at + 1], control[at + 2], control[at + 3]]);
                // SAFETY: the host kernel just gave us this descriptor with the message.
                let owned = unsafe { OwnedFd::from_raw_fd(host) };
                if cut.is_some() {
                    continue;
                }
                match self.install(owned, cloexec) {
                    Ok(g) => {
                        control[at..at + 4].copy_from_slice(&(g as i32).to_le_bytes());
                        kept += 1;
                    }
                    Err(_) => {
                        *mflags |= libc::MSG_CTRUNC;
                        let new_len = CMSG_HDR + 4 * kept;
                        control[off..off + 8].copy_from_slice(&(new_len as u64).to_le_bytes());
                        cut = Some(if kept == 0 { off } else { off + new_len });
                    }
                }
            }
        }
        if let Some(end) = cut {
            control.truncate(end);
        }
        Ok(())
    }

    pub fn sys_setsockopt(&mut self, a: &[u64; 6]) -> SysResult {
        let file = self.file(a[0])?;
        let (level, name) = (a[1] as i32, a[2] as i32);
        self.check_option(file.raw(), level, name)?;
        let len = a[4] as u32;
        if len > OPTLEN_MAX {
            return Err(Errno::EINVAL);
        }
        let mut val = vec![0u8; len as usize];
        self.mem.read_bytes(a[3], &mut val)?;
        // SAFETY: `val` holds `len` bytes; the option takes a plain value of that size.
        host_int(unsafe { libc::setsockopt(file.raw(), level, name, val.as_ptr().cast(), len) })
    }

    pub fn sys_getsockopt(&mut self, a: &[u64; 6]) -> SysResult {
        let file = self.file(a[0])?;
        let (level, name) = (a[1] as i32, a[2] as i32);
        self.check_option(file.raw(), level, name)?;
        let room = self.mem.load::<u32>(a[4])?;
        if room > OPTLEN_MAX {
            return Err(Errno::EINVAL);
        }
        let mut val = vec![0u8; room as usize];
        let mut len = room;
        // SAFETY: `val` holds `len` bytes for the option value.
        host_int(unsafe { libc::getsockopt(file.raw(), level, name, val.as_mut_ptr().cast(), &mut len) })?;
        let len = len.min(room);
        self.mem.write_bytes(a[3], &val[..len as usize])?;
        self.mem.store::<u32>(a[4], len)?;
        Ok(0)
    }

    /// Socket options pass unchanged when their values are plain integers or fixed structs with
    /// one layout on both ABIs: the socket, IP, IPv6, TCP and UDP levels, less the few options
    /// that carry pointers or descriptors. Other levels fail as Linux fails them for the family.
    fn check_option(&self, fd: RawFd, level: i32, name: i32) -> Result<(), Errno> {
        match level {
            libc::SOL_SOCKET if UNTRANSLATED_OPTIONS.contains(&name) => Err(Errno::ENOPROTOOPT),
            // The netfilter table controls (IPT_SO_*, IP6T_SO_*) exchange tables with pointers.
            libc::IPPROTO_IP | libc::IPPROTO_IPV6 if NETFILTER_CTL.contains(&name) => Err(Errno::ENOPROTOOPT),
            libc::SOL_SOCKET | libc::IPPROTO_TCP | libc::IPPROTO_UDP | libc::IPPROTO_IP | libc::IPPROTO_IPV6 => Ok(()),
            // AF_UNIX sockets have no protocol-level options at all.
            _ if int_option(fd, libc::SOL_SOCKET, libc::SO_DOMAIN)? == libc::AF_UNIX => Err(Errno::EOPNOTSUPP),
            _ => Err(Errno::ENOPROTOOPT),
        }
    }

    pub fn sys_shutdown(&mut self, a: &[u64; 6]) -> SysResult {
        let file = self.file(a[0])?;
        // SAFETY: shutdown on a descriptor we hold.
        host_int(unsafe { libc::shutdown(file.raw(), a[1] as i32) })
    }

    // ----- epoll -----

    pub fn sys_epoll_create1(&mut self, a: &[u64; 6]) -> SysResult {
        let flags = a[0] as i32;
        if flags & !libc::EPOLL_CLOEXEC != 0 {
            return Err(Errno::EINVAL);
        }
        // SAFETY: creates a descriptor; the result is checked.
        let fd = host_int(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
        // SAFETY: a fresh descriptor we own.
        let fd = unsafe { OwnedFd::from_raw_fd(fd as RawFd) };
        self.install(fd, flags & libc::EPOLL_CLOEXEC != 0)
    }

    pub fn sys_epoll_ctl(&mut self, a: &[u64; 6]) -> SysResult {
        let ep = self.file(a[0])?;
        let op = a[1] as i32;
        let target = self.file(a[2])?;
        let mut ev = libc::epoll_event { events: 0, u64: 0 };
        if op != libc::EPOLL_CTL_DEL {
            ev.events = self.mem.load::<u32>(a[3])?;
            ev.u64 = self.mem.load::<u64>(a[3] + 8)?;
        }
        // SAFETY: epoll_ctl on descriptors we hold with a valid event.
        host_int(unsafe { libc::epoll_ctl(ep.raw(), op, target.raw(), &mut ev) })
    }

    pub fn sys_epoll_pwait(&mut self, a: &[u64; 6]) -> SysResult {
        let ms = a[3] as i32;
        let timeout = (ms >= 0).then(|| Duration::from_millis(ms as u64));
        self.epoll_wait(a, timeout)
    }

    pub fn sys_epoll_pwait2(&mut self, a: &[u64; 6]) -> SysResult {
        let timeout = if a[3] != 0 { Some(self.timespec(a[3])?) } else { None };
        self.epoll_wait(a, timeout)
    }

    /// epoll_pwait and epoll_pwait2: waits in ppoll on the epoll descriptor itself (readable when
    /// its ready list is not empty), then takes the events without blocking.
    fn epoll_wait(&mut self, a: &[u64; 6], timeout: Option<Duration>) -> SysResult {
        let ep = self.file(a[0])?;
        let max = a[2] as i32;
        if max <= 0 || max as u64 > i32::MAX as u64 / EPOLL_EVENT {
            return Err(Errno::EINVAL);
        }
        self.mem.check(a[1], EPOLL_EVENT, perm::W, Access::Write)?;
        let mask = if a[4] != 0 {
            if a[5] != 8 {
                return Err(Errno::EINVAL);
            }
            Some(self.mem.load::<u64>(a[4])?)
        } else {
            None
        };
        let unblockable = super::signal::bit(libc::SIGKILL) | super::signal::bit(libc::SIGSTOP);
        let old = mask.map(|m| self.thread.blocked.swap(m & !unblockable, Ordering::Relaxed));
        let r = self.epoll_collect(&ep, a[1], max as usize, timeout);
        if let Some(old) = old {
            if r == Err(Errno::ERESTARTNOHAND) {
                // The handler runs with the wait's mask; its frame keeps the old one.
                *lock(&self.thread.saved_mask) = Some(old);
            } else {
                self.thread.blocked.store(old, Ordering::Relaxed);
            }
        }
        r
    }

    fn epoll_collect(&mut self, ep: &Arc<OpenFile>, out: u64, max: usize, timeout: Option<Duration>) -> SysResult {
        let deadline = self.deadline(timeout);
        let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; max.min(EPOLL_BATCH)];
        {
            // SAFETY: `events` has room for the number of entries passed.
            let n = host_int(unsafe { libc::epoll_wait(ep.raw(), events.as_mut_ptr(), events.len() as i32, 0) })?;
            if n > 0 {
                let mut bytes = Vec::with_capacity(n as usize * EPOLL_EVENT as usize);
                for ev in &events[..n as usize] {
                    let (mask, data) = (ev.events, ev.u64);
                    bytes.extend_from_slice(&mask.to_le_bytes());
                    bytes.extend_from_slice(&[0; 4]);
                    bytes.extend_from_slice(&data.to_le_bytes());
                }
                self.mem.write_bytes(out, &bytes)?;
                return Ok(n);
            }
            // The wait's own mask may unblock a signal that is pending already.
            if super::thread::must_stop(self.proc, self.thread) {
                return Err(Errno::ERESTARTNOHAND);
            }
            if Self::timed_out(deadline) {
                return Ok(0);
            }
            // An epoll descriptor polls readable when one of its descriptors is ready.
            let interest = Interest { file: ep.clone(), events: libc::POLLIN };
            Err(self.park(vec![interest], deadline, Errno::ERESTARTNOHAND))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmsg(level: i32, ty: i32, data: &[u8]) -> Vec<u8> {
        let mut b = ((CMSG_HDR + data.len()) as u64).to_le_bytes().to_vec();
        b.extend_from_slice(&level.to_le_bytes());
        b.extend_from_slice(&ty.to_le_bytes());
        b.extend_from_slice(data);
        b.resize(b.len().next_multiple_of(8), 0);
        b
    }

    #[test]
    fn control_messages_are_walked_with_8_byte_alignment() {
        let mut buf = cmsg(libc::SOL_SOCKET, libc::SCM_RIGHTS, &[1, 0, 0, 0]);
        buf.extend(cmsg(libc::SOL_SOCKET, libc::SCM_CREDENTIALS, &[0; 12]));
        let list = cmsgs(&buf).unwrap();
        assert_eq!(
            list,
            [(0, 20, libc::SOL_SOCKET, libc::SCM_RIGHTS), (24, 28, libc::SOL_SOCKET, libc::SCM_CREDENTIALS)]
        );
        assert!(is_rights(list[0].2, list[0].3) && !is_rights(list[1].2, list[1].3));
    }

    #[test]
    fn malformed_control_messages_are_einval() {
        let mut short = cmsg(libc::SOL_SOCKET, libc::SCM_RIGHTS, &[1, 0, 0, 0]);
        short[0] = 8;
        assert_eq!(cmsgs(&short), Err(Errno::EINVAL));
        let mut long = cmsg(libc::SOL_SOCKET, libc::SCM_RIGHTS, &[1, 0, 0, 0]);
        long[0] = 200;
        assert_eq!(cmsgs(&long), Err(Errno::EINVAL));
        // A tail shorter than a header is ignored, as Linux's CMSG_NXTHDR does.
        assert_eq!(cmsgs(&[0; 15]), Ok(vec![]));
    }

    #[test]
    fn advance_drops_whole_and_partial_iovecs() {
        let mut a = [0u8; 4];
        let mut b = [0u8; 6];
        let mut iov = vec![
            libc::iovec { iov_base: a.as_mut_ptr().cast(), iov_len: a.len() },
            libc::iovec { iov_base: b.as_mut_ptr().cast(), iov_len: b.len() },
        ];
        advance(&mut iov, 5);
        assert_eq!(iov.len(), 1);
        assert_eq!(iov[0].iov_len, 5);
        assert_eq!(iov[0].iov_base, b[1..].as_mut_ptr().cast());
        assert_eq!(iov_len(&iov), 5);
        advance(&mut iov, 5);
        assert!(iov.is_empty());
    }
}
