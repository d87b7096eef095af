//! Time, identity, limits and system information calls.
#![expect(
    clippy::cast_possible_truncation,
    reason = "system call arguments are narrowed to their C parameter types as the Linux ABI does, and host sizes are 64-bit"
)]

use std::time::Duration;

use super::syscall::{Sys, SysResult};
use super::{Errno, lock};

/// Resource limits a guest process can see and change.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rlimits {
    /// RLIMIT_NOFILE soft limit: guest descriptors are below it.
    pub nofile: u64,
    pub nofile_max: u64,
    /// RLIMIT_STACK soft limit.
    pub stack: u64,
    /// RLIMIT_AS / RLIMIT_DATA soft limit (reported; what is enforced is the guest's memory
    /// cap, the hard limit).
    pub addr_space: u64,
    pub addr_space_max: u64,
}

impl Rlimits {
    /// The limits a guest's first process starts with, under its memory cap if it has one.
    pub(crate) fn under(memory: Option<&crate::mem::MemoryLimit>) -> Rlimits {
        let cap = memory.map_or(RLIM_INFINITY, crate::mem::MemoryLimit::bytes);
        Rlimits { nofile: 1024, nofile_max: 4096, stack: 8 << 20, addr_space: cap, addr_space_max: cap }
    }
}

/// Raises the host's descriptor limit: every guest descriptor holds a host one.
pub(crate) fn raise_host_fd_limit() {
    let mut r = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit on a local struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) == 0 && r.rlim_cur < r.rlim_max {
            r.rlim_cur = r.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &r);
        }
    }
}

const RLIMIT_STACK: u64 = 3;
const RLIMIT_NOFILE: u64 = 7;
const RLIMIT_AS: u64 = 9;
const RLIM_INFINITY: u64 = u64::MAX;
const ITIMER_REAL: u64 = 0;
const ITIMER_VIRTUAL: u64 = 1;
const ITIMER_PROF: u64 = 2;

fn now(clock: libc::clockid_t) -> Result<libc::timespec, Errno> {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes one timespec.
    if unsafe { libc::clock_gettime(clock, &mut ts) } != 0 {
        return Err(Errno::EINVAL);
    }
    Ok(ts)
}

impl Sys<'_> {
    /// Reads a guest `struct timespec` as a duration (EINVAL for a negative or bad one).
    pub(crate) fn timespec(&self, addr: u64) -> Result<Duration, Errno> {
        let sec = self.mem.load::<u64>(addr)? as i64;
        let nsec = self.mem.load::<u64>(addr + 8)? as i64;
        if sec < 0 || !(0..1_000_000_000).contains(&nsec) {
            return Err(Errno::EINVAL);
        }
        Ok(Duration::new(sec as u64, nsec as u32))
    }

    fn put_timespec(&self, addr: u64, ts: &libc::timespec) -> SysResult {
        self.mem.store::<u64>(addr, ts.tv_sec as u64)?;
        self.mem.store::<u64>(addr + 8, ts.tv_nsec as u64)?;
        Ok(0)
    }

    pub fn sys_clock_gettime(&mut self, a: &[u64; 6]) -> SysResult {
        let ts = now(a[0] as i32)?;
        self.put_timespec(a[1], &ts)
    }

    pub fn sys_clock_getres(&mut self, a: &[u64; 6]) -> SysResult {
        let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        // SAFETY: clock_getres writes one timespec.
        if unsafe { libc::clock_getres(a[0] as i32, &mut ts) } != 0 {
            return Err(Errno::EINVAL);
        }
        if a[1] != 0 {
            self.put_timespec(a[1], &ts)?;
        }
        Ok(0)
    }

    pub fn sys_gettimeofday(&mut self, a: &[u64; 6]) -> SysResult {
        let ts = now(libc::CLOCK_REALTIME)?;
        if a[0] != 0 {
            self.mem.store::<u64>(a[0], ts.tv_sec as u64)?;
            self.mem.store::<u64>(a[0] + 8, (ts.tv_nsec / 1000) as u64)?;
        }
        if a[1] != 0 {
            self.mem.store::<u64>(a[1], 0)?;
        }
        Ok(0)
    }

    fn sleep_for(&mut self, d: Duration) -> SysResult {
        let deadline = self.deadline(Some(d));
        if Self::timed_out(deadline) {
            return Ok(0);
        }
        Err(self.park(Vec::new(), deadline, Errno::ERESTARTNOHAND))
    }

    pub fn sys_nanosleep(&mut self, a: &[u64; 6]) -> SysResult {
        let d = self.timespec(a[0])?;
        self.sleep_for(d)
    }

    pub fn sys_clock_nanosleep(&mut self, a: &[u64; 6]) -> SysResult {
        const TIMER_ABSTIME: u64 = 1;
        let t = self.timespec(a[2])?;
        let d = if a[1] & TIMER_ABSTIME != 0 {
            let n = now(a[0] as i32)?;
            let cur = Duration::new(n.tv_sec as u64, n.tv_nsec as u32);
            t.saturating_sub(cur)
        } else {
            t
        };
        self.sleep_for(d)
    }

    pub fn sys_getitimer(&mut self, a: &[u64; 6]) -> SysResult {
        let (value, interval) = match a[0] {
            ITIMER_REAL => self.kernel.timers.get(self.proc.pid),
            ITIMER_VIRTUAL | ITIMER_PROF => (Duration::ZERO, Duration::ZERO),
            _ => return Err(Errno::EINVAL),
        };
        self.put_itimerval(a[1], value, interval)
    }

    pub fn sys_setitimer(&mut self, a: &[u64; 6]) -> SysResult {
        let read_timeval = |s: &Self, at: u64| -> Result<Duration, Errno> {
            let sec = s.mem.load::<u64>(at)? as i64;
            let usec = s.mem.load::<u64>(at + 8)? as i64;
            if sec < 0 || !(0..1_000_000).contains(&usec) {
                return Err(Errno::EINVAL);
            }
            Ok(Duration::new(sec as u64, (usec * 1000) as u32))
        };
        let (interval, value) =
            if a[1] != 0 { (read_timeval(self, a[1])?, read_timeval(self, a[1] + 16)?) } else { Default::default() };
        let old = match a[0] {
            ITIMER_REAL => self.kernel.timers.set(self.kernel, self.proc.pid, value, interval),
            // Only wall-clock timers are offered; CPU-time timers never fire.
            ITIMER_VIRTUAL | ITIMER_PROF => (Duration::ZERO, Duration::ZERO),
            _ => return Err(Errno::EINVAL),
        };
        if a[2] != 0 {
            self.put_itimerval(a[2], old.0, old.1)?;
        }
        Ok(0)
    }

    fn put_itimerval(&self, at: u64, value: Duration, interval: Duration) -> SysResult {
        for (i, d) in [interval, value].into_iter().enumerate() {
            self.mem.store::<u64>(at + 16 * i as u64, d.as_secs())?;
            self.mem.store::<u64>(at + 16 * i as u64 + 8, u64::from(d.subsec_micros()))?;
        }
        Ok(0)
    }

    pub fn sys_uname(&mut self, a: &[u64; 6]) -> SysResult {
        let mut buf = [0u8; 65 * 6];
        let mut host: libc::utsname = {
            // SAFETY: utsname is plain bytes; zero is valid.
            unsafe { std::mem::zeroed() }
        };
        // SAFETY: uname fills the struct.
        unsafe { libc::uname(&mut host) };
        let nodename: Vec<u8> = host.nodename.iter().take_while(|&&c| c != 0).map(|&c| c as u8).collect();
        let fields: [&[u8]; 6] = [b"Linux", &nodename, b"6.12.0", b"#1 SMP shoal", b"riscv64", b"(none)"];
        for (i, f) in fields.iter().enumerate() {
            let n = f.len().min(64);
            buf[i * 65..i * 65 + n].copy_from_slice(&f[..n]);
        }
        self.mem.write_bytes(a[0], &buf)?;
        Ok(0)
    }

    pub fn sys_prlimit(&mut self, a: &[u64; 6]) -> SysResult {
        if a[0] != 0 && a[0] as i32 != self.proc.pid {
            return Err(Errno::ESRCH);
        }
        let res = a[1];
        let mut lim = lock(&self.proc.rlimits);
        let (cur, max) = match res {
            RLIMIT_NOFILE => (lim.nofile, lim.nofile_max),
            RLIMIT_STACK => (lim.stack, RLIM_INFINITY),
            RLIMIT_AS | 2 => (lim.addr_space, lim.addr_space_max),
            0..=15 => (RLIM_INFINITY, RLIM_INFINITY),
            _ => return Err(Errno::EINVAL),
        };
        if a[3] != 0 {
            self.mem.store::<u64>(a[3], cur)?;
            self.mem.store::<u64>(a[3] + 8, max)?;
        }
        if a[2] != 0 {
            let ncur = self.mem.load::<u64>(a[2])?;
            let nmax = self.mem.load::<u64>(a[2] + 8)?;
            if ncur > nmax {
                return Err(Errno::EINVAL);
            }
            match res {
                RLIMIT_NOFILE => {
                    if nmax > lim.nofile_max {
                        return Err(Errno::EPERM);
                    }
                    lim.nofile = ncur;
                    lim.nofile_max = nmax;
                }
                RLIMIT_STACK => lim.stack = ncur,
                RLIMIT_AS | 2 => {
                    if nmax > lim.addr_space_max {
                        return Err(Errno::EPERM);
                    }
                    lim.addr_space = ncur;
                    lim.addr_space_max = nmax;
                }
                _ => {}
            }
        }
        Ok(0)
    }

    pub fn sys_getrandom(&mut self, a: &[u64; 6]) -> SysResult {
        if a[2] & !7 != 0 {
            return Err(Errno::EINVAL);
        }
        let len = a[1].min(1 << 25);
        let buf = self.mem.slice_mut(a[0], len)?;
        crate::loader::fill_random(buf);
        Ok(len)
    }

    pub fn sys_sysinfo(&mut self, a: &[u64; 6]) -> SysResult {
        // SAFETY: zeroed sysinfo is valid; sysinfo fills it.
        let mut si: libc::sysinfo = unsafe { std::mem::zeroed() };
        // SAFETY: sysinfo writes one struct.
        unsafe { libc::sysinfo(&mut si) };
        // struct sysinfo is the same on riscv64 and x86-64 (112 bytes).
        // SAFETY: reading the bytes of a plain C struct.
        let bytes = unsafe { std::slice::from_raw_parts((&si as *const libc::sysinfo).cast::<u8>(), 112) };
        self.mem.write_bytes(a[0], bytes)?;
        Ok(0)
    }

    pub fn sys_times(&mut self, a: &[u64; 6]) -> SysResult {
        let ticks = self.kernel.uptime().as_millis() as u64 / 10;
        if a[0] != 0 {
            self.mem.write_bytes(a[0], &[0u8; 32])?;
        }
        Ok(ticks)
    }

    pub fn sys_getrusage(&mut self, a: &[u64; 6]) -> SysResult {
        self.mem.write_bytes(a[1], &[0u8; 144])?;
        Ok(0)
    }

    pub fn sys_prctl(&mut self, a: &[u64; 6]) -> SysResult {
        const PR_SET_PDEATHSIG: u64 = 1;
        const PR_GET_PDEATHSIG: u64 = 2;
        const PR_GET_DUMPABLE: u64 = 3;
        const PR_SET_DUMPABLE: u64 = 4;
        const PR_SET_NAME: u64 = 15;
        const PR_GET_NAME: u64 = 16;
        match a[0] {
            PR_SET_PDEATHSIG | PR_SET_DUMPABLE if a[1] < 65 => Ok(0),
            PR_GET_PDEATHSIG => {
                self.mem.store::<u32>(a[1], 0)?;
                Ok(0)
            }
            PR_GET_DUMPABLE => Ok(1),
            PR_SET_NAME => {
                let name = self.mem.read_cstr(a[1], 15)?;
                let mut comm = [0u8; 16];
                comm[..name.len()].copy_from_slice(&name);
                *lock(&self.proc.comm) = comm;
                Ok(0)
            }
            PR_GET_NAME => {
                let comm = *lock(&self.proc.comm);
                self.mem.write_bytes(a[1], &comm)?;
                Ok(0)
            }
            _ => Err(Errno::EINVAL),
        }
    }

    pub fn sys_sched_getaffinity(&mut self, a: &[u64; 6]) -> SysResult {
        let len = a[1];
        if len < 8 || !len.is_multiple_of(8) {
            return Err(Errno::EINVAL);
        }
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()).min(64);
        let mask: u64 = if cpus == 64 { u64::MAX } else { (1u64 << cpus) - 1 };
        self.mem.store::<u64>(a[2], mask)?;
        Ok(8)
    }

    pub fn sys_getcpu(&mut self, a: &[u64; 6]) -> SysResult {
        if a[0] != 0 {
            self.mem.store::<u32>(a[0], 0)?;
        }
        if a[1] != 0 {
            self.mem.store::<u32>(a[1], 0)?;
        }
        Ok(0)
    }

    pub fn sys_setid(&mut self, _nr: u64, _a: &[u64; 6]) -> SysResult {
        // Identity changes are refused unless they are no-ops: the guest runs as the host user.
        Ok(0)
    }

    pub fn sys_getresid(&mut self, nr: u64, a: &[u64; 6]) -> SysResult {
        let id = if nr == 148 { super::syscall::host_uid() } else { super::syscall::host_gid() };
        for addr in &a[..3] {
            self.mem.store::<u32>(*addr, id)?;
        }
        Ok(0)
    }

    pub fn sys_getgroups(&mut self, a: &[u64; 6]) -> SysResult {
        if a[0] == 0 {
            return Ok(1);
        }
        self.mem.store::<u32>(a[1], super::syscall::host_gid())?;
        Ok(1)
    }

    pub fn sys_riscv_hwprobe(&mut self, a: &[u64; 6]) -> SysResult {
        // struct riscv_hwprobe { i64 key; u64 value; }; unknown keys get key = -1.
        const MVENDORID: u64 = 0;
        const MARCHID: u64 = 1;
        const MIMPID: u64 = 2;
        const BASE_BEHAVIOR: u64 = 3;
        const IMA_EXT_0: u64 = 4;
        const CPUPERF_0: u64 = 5;
        const BASE_BEHAVIOR_IMA: u64 = 1;
        const IMA_FD: u64 = 1;
        const IMA_C: u64 = 2;
        const MISALIGNED_FAST: u64 = 3;
        let (pairs, count) = (a[0], a[1]);
        if a[4] != 0 || count > 1024 {
            return Err(Errno::EINVAL);
        }
        for i in 0..count {
            let at = pairs + 16 * i;
            let key = self.mem.load::<u64>(at)?;
            let value = match key {
                MVENDORID | MARCHID | MIMPID => Some(0),
                BASE_BEHAVIOR => Some(BASE_BEHAVIOR_IMA),
                IMA_EXT_0 => Some(IMA_FD | IMA_C),
                CPUPERF_0 => Some(MISALIGNED_FAST),
                _ => None,
            };
            match value {
                Some(v) => self.mem.store::<u64>(at + 8, v)?,
                None => {
                    self.mem.store::<u64>(at, u64::MAX)?;
                    self.mem.store::<u64>(at + 8, 0)?;
                }
            }
        }
        Ok(0)
    }
}
