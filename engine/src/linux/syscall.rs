//! System call dispatch: riscv64 numbers (asm-generic unistd.h) to handlers.
//!
//! The guest passes the number in `a7` and arguments in `a0..a5`; the result (or `-errno`) goes
//! back in `a0`. An unknown number returns `-ENOSYS` and is logged under `--strace`.
#![expect(
    clippy::cast_possible_truncation,
    reason = "system call arguments are narrowed to their C parameter types as the Linux ABI does, and host sizes are 64-bit"
)]

use std::sync::Arc;

use super::{Errno, Kernel, Process, ThreadShared};
use crate::interp::Cpu;
use crate::mem::AddressSpace;

/// What a handler returns: the value for `a0`, or an errno.
pub(crate) type SysResult = Result<u64, Errno>;

/// Everything a system call handler can reach.
pub(crate) struct Sys<'a> {
    pub kernel: &'a Arc<Kernel>,
    pub proc: &'a Arc<Process>,
    pub thread: &'a Arc<ThreadShared>,
    pub cpu: &'a mut Cpu,
    pub mem: Arc<AddressSpace>,
    /// What a blocking call keeps between its attempts (see `wait.rs`).
    pub wait: &'a mut super::wait::Wait,
    /// Wakes the calling vCPU after it parks.
    pub waker: &'a std::task::Waker,
}

/// What the thread loop must do after a system call.
#[derive(Debug)]
pub(crate) enum After {
    /// Write the result to a0 and continue after the ecall.
    Return(SysResult),
    /// Registers were set by the call itself (rt_sigreturn, execve): continue at `cpu.pc`.
    Resume,
    /// The calling thread ends.
    ExitThread,
}

macro_rules! syscalls {
    ($($num:literal => $name:ident),* $(,)?) => {
        /// The name of a system call number, for `--strace`.
        pub(crate) fn name(nr: u64) -> &'static str {
            match nr {
                $($num => stringify!($name),)*
                _ => "unknown",
            }
        }
    };
}

syscalls! {
    17 => getcwd, 19 => eventfd2, 20 => epoll_create1, 21 => epoll_ctl, 22 => epoll_pwait, 23 => dup, 24 => dup3, 25 => fcntl,
    29 => ioctl, 32 => flock, 33 => mknodat, 34 => mkdirat, 35 => unlinkat, 36 => symlinkat,
    37 => linkat, 38 => renameat, 43 => statfs, 44 => fstatfs, 45 => truncate, 46 => ftruncate,
    47 => fallocate, 48 => faccessat, 49 => chdir, 50 => fchdir, 52 => fchmod, 53 => fchmodat,
    54 => fchownat, 55 => fchown, 56 => openat, 57 => close, 59 => pipe2, 61 => getdents64,
    62 => lseek, 63 => read, 64 => write, 65 => readv, 66 => writev, 67 => pread64,
    68 => pwrite64, 69 => preadv, 70 => pwritev, 71 => sendfile, 72 => pselect6, 73 => ppoll,
    78 => readlinkat, 79 => newfstatat, 80 => fstat, 81 => sync, 82 => fsync, 83 => fdatasync,
    88 => utimensat, 93 => exit, 94 => exit_group, 95 => waitid, 96 => set_tid_address,
    98 => futex, 99 => set_robust_list, 100 => get_robust_list, 101 => nanosleep,
    102 => getitimer, 103 => setitimer, 113 => clock_gettime, 114 => clock_getres,
    115 => clock_nanosleep, 118 => sched_setparam, 119 => sched_setscheduler,
    120 => sched_getscheduler, 121 => sched_getparam, 122 => sched_setaffinity, 123 => sched_getaffinity,
    124 => sched_yield, 125 => sched_get_priority_max, 126 => sched_get_priority_min, 129 => kill, 130 => tkill, 131 => tgkill, 132 => sigaltstack,
    133 => rt_sigsuspend, 134 => rt_sigaction, 135 => rt_sigprocmask, 136 => rt_sigpending,
    137 => rt_sigtimedwait, 138 => rt_sigqueueinfo, 139 => rt_sigreturn, 140 => setpriority, 141 => getpriority,
    143 => setregid, 144 => setgid, 145 => setreuid, 146 => setuid, 147 => setresuid,
    148 => getresuid, 149 => setresgid, 150 => getresgid, 153 => times, 154 => setpgid,
    155 => getpgid, 156 => getsid, 157 => setsid, 158 => getgroups, 159 => setgroups,
    160 => uname, 163 => getrlimit, 164 => setrlimit, 165 => getrusage, 166 => umask,
    167 => prctl, 168 => getcpu, 169 => gettimeofday, 172 => getpid, 173 => getppid,
    174 => getuid, 175 => geteuid, 176 => getgid, 177 => getegid, 178 => gettid,
    179 => sysinfo, 198 => socket, 199 => socketpair, 200 => bind, 201 => listen,
    202 => accept, 203 => connect, 204 => getsockname, 205 => getpeername, 206 => sendto,
    207 => recvfrom, 208 => setsockopt, 209 => getsockopt, 210 => shutdown, 211 => sendmsg,
    212 => recvmsg, 214 => brk, 215 => munmap,
    216 => mremap, 220 => clone, 221 => execve, 222 => mmap, 223 => fadvise64,
    226 => mprotect, 227 => msync, 228 => mlock, 229 => munlock, 232 => mincore,
    233 => madvise, 240 => rt_tgsigqueueinfo, 242 => accept4, 258 => riscv_hwprobe, 259 => riscv_flush_icache, 260 => wait4,
    261 => prlimit64, 276 => renameat2, 278 => getrandom, 279 => memfd_create,
    285 => copy_file_range, 291 => statx, 293 => rseq, 435 => clone3, 436 => close_range,
    439 => faccessat2, 441 => epoll_pwait2,
}

impl Sys<'_> {
    /// Runs system call `nr` with arguments `a`.
    pub fn dispatch(&mut self, nr: u64, a: &[u64; 6]) -> After {
        use After::Return as R;
        let r = match nr {
            17 => self.sys_getcwd(a),
            19 => self.sys_eventfd2(a),
            20 => self.sys_epoll_create1(a),
            21 => self.sys_epoll_ctl(a),
            22 => self.sys_epoll_pwait(a),
            23 => self.sys_dup(a),
            24 => self.sys_dup3(a),
            25 => self.sys_fcntl(a),
            29 => self.sys_ioctl(a),
            32 => self.sys_flock(a),
            33 => self.sys_mknodat(a),
            34 => self.sys_mkdirat(a),
            35 => self.sys_unlinkat(a),
            36 => self.sys_symlinkat(a),
            37 => self.sys_linkat(a),
            38 => self.sys_renameat2(&[a[0], a[1], a[2], a[3], 0, 0]),
            43 => self.sys_statfs(a, false),
            44 => self.sys_statfs(a, true),
            45 => self.sys_truncate(a),
            46 => self.sys_ftruncate(a),
            47 => self.sys_fallocate(a),
            48 => self.sys_faccessat(a, 0),
            49 => self.sys_chdir(a),
            50 => self.sys_fchdir(a),
            52 => self.sys_fchmod(a),
            53 => self.sys_fchmodat(a),
            54 => self.sys_fchownat(a),
            55 => self.sys_fchown(a),
            56 => self.sys_openat(a),
            57 => self.sys_close(a),
            59 => self.sys_pipe2(a),
            61 => self.sys_getdents64(a),
            62 => self.sys_lseek(a),
            63 => self.sys_read(a),
            64 => self.sys_write(a),
            65 => self.sys_readv(a),
            66 => self.sys_writev(a),
            67 => self.sys_pread(a),
            68 => self.sys_pwrite(a),
            69 => self.sys_preadv(a),
            70 => self.sys_pwritev(a),
            71 => self.sys_sendfile(a),
            72 => self.sys_pselect6(a),
            73 => self.sys_ppoll(a),
            78 => self.sys_readlinkat(a),
            79 => self.sys_newfstatat(a),
            80 => self.sys_fstat(a),
            81 => Ok(0),
            82 | 83 => self.sys_fsync(a),
            88 => self.sys_utimensat(a),
            93 => return self.sys_exit(a),
            94 => return self.sys_exit_group(a),
            95 => self.sys_waitid(a),
            96 => self.sys_set_tid_address(a),
            98 => self.sys_futex(a),
            99 => self.sys_set_robust_list(a),
            100 => self.sys_get_robust_list(a),
            101 => self.sys_nanosleep(a),
            102 => self.sys_getitimer(a),
            103 => self.sys_setitimer(a),
            113 => self.sys_clock_gettime(a),
            114 => self.sys_clock_getres(a),
            115 => self.sys_clock_nanosleep(a),
            // One scheduling class, SCHED_OTHER, whose only priority is 0.
            118 | 119 | 122 | 120 | 125 | 126 => Ok(0),
            121 => self.mem.store::<u32>(a[1], 0).map(|()| 0).map_err(Errno::from),
            123 => self.sys_sched_getaffinity(a),
            // sched_yield: the vCPU goes on; its slice ends soon enough.
            124 => Ok(0),
            129 => self.sys_kill(a),
            130 => self.sys_tgkill(&[0, a[0], a[1], 0, 0, 0]),
            131 => self.sys_tgkill(a),
            132 => self.sys_sigaltstack(a),
            133 => self.sys_rt_sigsuspend(a),
            134 => self.sys_rt_sigaction(a),
            135 => self.sys_rt_sigprocmask(a),
            136 => self.sys_rt_sigpending(a),
            137 => self.sys_rt_sigtimedwait(a),
            138 => self.sys_sigqueueinfo(a[0] as i32, 0, a[1], a[2]),
            139 => return self.sys_rt_sigreturn(),
            140 => Ok(0),
            141 => Ok(20),
            143..=147 | 149 | 159 => self.sys_setid(nr, a),
            148 | 150 => self.sys_getresid(nr, a),
            153 => self.sys_times(a),
            154 => self.sys_setpgid(a),
            155 => self.sys_getpgid(a),
            156 => self.sys_getsid(a),
            157 => self.sys_setsid(),
            158 => self.sys_getgroups(a),
            160 => self.sys_uname(a),
            163 => self.sys_prlimit(&[0, a[0], 0, a[1], 0, 0]),
            164 => self.sys_prlimit(&[0, a[0], a[1], 0, 0, 0]),
            165 => self.sys_getrusage(a),
            166 => self.sys_umask(a),
            167 => self.sys_prctl(a),
            168 => self.sys_getcpu(a),
            169 => self.sys_gettimeofday(a),
            172 => Ok(self.proc.pid as u64),
            173 => Ok(self.ppid() as u64),
            174 | 175 => Ok(u64::from(host_uid())),
            176 | 177 => Ok(u64::from(host_gid())),
            178 => Ok(self.thread.tid as u64),
            179 => self.sys_sysinfo(a),
            198 => self.sys_socket(a),
            199 => self.sys_socketpair(a),
            200 => self.sys_bind(a),
            201 => self.sys_listen(a),
            202 => self.sys_accept4(&[a[0], a[1], a[2], 0, 0, 0]),
            203 => self.sys_connect(a),
            204 => self.sys_getsockname(a, false),
            205 => self.sys_getsockname(a, true),
            206 => self.sys_sendto(a),
            207 => self.sys_recvfrom(a),
            208 => self.sys_setsockopt(a),
            209 => self.sys_getsockopt(a),
            210 => self.sys_shutdown(a),
            211 => self.sys_sendmsg(a),
            212 => self.sys_recvmsg(a),
            214 => Ok(self.mem.set_brk(a[0])),
            215 => self.sys_munmap(a),
            216 => self.sys_mremap(a),
            220 => self.sys_clone(a),
            221 => return self.sys_execve(a),
            222 => self.sys_mmap(a),
            223 => self.sys_fadvise(a),
            226 => self.sys_mprotect(a),
            227..=229 => Ok(0),
            232 => self.sys_mincore(a),
            233 => self.sys_madvise(a),
            240 => self.sys_sigqueueinfo(a[0] as i32, a[1] as i32, a[2], a[3]),
            242 => self.sys_accept4(a),
            258 => self.sys_riscv_hwprobe(a),
            259 => {
                self.mem.flush_code();
                Ok(0)
            }
            260 => self.sys_wait4(a),
            261 => self.sys_prlimit(a),
            276 => self.sys_renameat2(a),
            278 => self.sys_getrandom(a),
            279 => self.sys_memfd_create(a),
            285 => self.sys_copy_file_range(a),
            291 => self.sys_statx(a),
            435 => self.sys_clone3(a),
            436 => self.sys_close_range(a),
            439 => self.sys_faccessat(a, a[3]),
            441 => self.sys_epoll_pwait2(a),
            // rseq is not offered: glibc runs without it.
            _ => Err(Errno::ENOSYS),
        };
        R(r)
    }
}

pub(crate) fn host_uid() -> u32 {
    // SAFETY: getuid cannot fail.
    unsafe { libc::getuid() }
}

pub(crate) fn host_gid() -> u32 {
    // SAFETY: getgid cannot fail.
    unsafe { libc::getgid() }
}
