//! Guest signals: actions, masks, queues, delivery with the riscv64 signal frame, and sigreturn.
//!
//! The frame a handler sees (arch/riscv/kernel/signal.c, `struct rt_sigframe`), at `sp`:
//!
//! ```text
//! +0     siginfo_t            128 bytes
//! +128   ucontext:
//! +128     uc_flags, uc_link  8 + 8
//! +144     uc_stack           ss_sp 8, ss_flags 4 (+4), ss_size 8
//! +168     uc_sigmask         8 (then 120 bytes reserved for a larger sigset)
//! +304     uc_mcontext        (16-byte aligned)
//! +304       sc_regs          pc, x1..x31           256 bytes
//! +560       sc_fpregs        f0..f31 (8 each), fcsr 4, reserved  528 bytes
//! +1088  end
//! ```
//!
//! The handler returns to a two-instruction trampoline (`li a7, 139; ecall`) on a read/execute
//! page that every address space has at [`SIGRETURN_PAGE`], which plays the vDSO's part.
#![expect(
    clippy::cast_possible_truncation,
    reason = "system call arguments are narrowed to their C parameter types as the Linux ABI does, and host sizes are 64-bit"
)]

use std::collections::VecDeque;
use std::sync::atomic::Ordering;

use super::syscall::{After, Sys, SysResult};
use super::{Errno, ExitStatus, Process, ThreadShared, lock};
use crate::interp::Cpu;
use crate::mem::{AddressSpace, SIGRETURN_PAGE};

/// Number of signal slots (signals 1..=64; slot 0 unused).
pub(crate) const NSIG: usize = 65;

pub(crate) const SIG_DFL: u64 = 0;
pub(crate) const SIG_IGN: u64 = 1;
const SA_SIGINFO: u64 = 4;
const SA_ONSTACK: u64 = 0x0800_0000;
const SA_RESTART: u64 = 0x1000_0000;
const SA_NODEFER: u64 = 0x4000_0000;
const SA_RESETHAND: u64 = 0x8000_0000;
pub(crate) const SA_NOCLDWAIT: u64 = 2;

const SS_ONSTACK: u32 = 1;
const SS_DISABLE: u32 = 2;
const MINSIGSTKSZ: u64 = 2048;

const FRAME_SIZE: u64 = 1088;
const UC: u64 = 128;
const UC_STACK: u64 = UC + 16;
const UC_SIGMASK: u64 = UC + 40;
const MCONTEXT: u64 = UC + 176;
const FPREGS: u64 = MCONTEXT + 256;

/// The machine code of the signal-return trampoline: `li a7, 139` then `ecall`.
pub(crate) const TRAMPOLINE: [u32; 2] = [0x08b0_0893, 0x0000_0073];

/// si_code values.
pub(crate) mod code {
    pub const SI_USER: i32 = 0;
    pub const SI_KERNEL: i32 = 0x80;
    pub const SI_TKILL: i32 = -6;
    pub const SEGV_MAPERR: i32 = 1;
    pub const SEGV_ACCERR: i32 = 2;
    pub const ILL_ILLOPC: i32 = 1;
    pub const BUS_ADRALN: i32 = 1;
    pub const BUS_ADRERR: i32 = 2;
    pub const TRAP_BRKPT: i32 = 1;
    pub const CLD_EXITED: i32 = 1;
    pub const CLD_KILLED: i32 = 2;
    pub const CLD_DUMPED: i32 = 3;
}

/// A guest `struct sigaction` (kernel layout: handler, flags, mask; no restorer on riscv64).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct SigAction {
    pub handler: u64,
    pub flags: u64,
    pub mask: u64,
}

/// What a queued signal carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SigInfo {
    pub signo: i32,
    pub code: i32,
    pub pid: i32,
    pub uid: u32,
    /// Fault address for SIGSEGV/SIGBUS/SIGILL/SIGTRAP.
    pub addr: u64,
    /// Exit status for SIGCHLD.
    pub status: i32,
    /// `si_value` of sigqueue.
    pub value: u64,
}

impl SigInfo {
    pub fn kernel(signo: i32) -> SigInfo {
        SigInfo { signo, code: code::SI_KERNEL, pid: 0, uid: 0, addr: 0, status: 0, value: 0 }
    }

    pub fn user(signo: i32, code: i32, pid: i32) -> SigInfo {
        SigInfo { signo, code, pid, uid: super::syscall::host_uid(), addr: 0, status: 0, value: 0 }
    }

    pub fn fault(signo: i32, code: i32, addr: u64) -> SigInfo {
        SigInfo { signo, code, pid: 0, uid: 0, addr, status: 0, value: 0 }
    }

    fn bytes(&self) -> [u8; 128] {
        let mut b = [0u8; 128];
        b[0..4].copy_from_slice(&self.signo.to_le_bytes());
        b[8..12].copy_from_slice(&self.code.to_le_bytes());
        match self.signo {
            libc::SIGSEGV | libc::SIGBUS | libc::SIGILL | libc::SIGFPE | libc::SIGTRAP if self.code > 0 => {
                b[16..24].copy_from_slice(&self.addr.to_le_bytes());
            }
            libc::SIGCHLD => {
                b[16..20].copy_from_slice(&self.pid.to_le_bytes());
                b[20..24].copy_from_slice(&self.uid.to_le_bytes());
                b[24..28].copy_from_slice(&self.status.to_le_bytes());
            }
            _ => {
                b[16..20].copy_from_slice(&self.pid.to_le_bytes());
                b[20..24].copy_from_slice(&self.uid.to_le_bytes());
                b[24..32].copy_from_slice(&self.value.to_le_bytes());
            }
        }
        b
    }
}

/// Pending signals: a bit per signal plus the queued details.
#[derive(Debug, Default)]
pub(crate) struct SigQueue {
    pub mask: u64,
    infos: VecDeque<SigInfo>,
}

impl SigQueue {
    fn push(&mut self, info: SigInfo) {
        let bit = bit(info.signo);
        // Standard signals coalesce; real-time ones queue.
        if info.signo < 32 && self.mask & bit != 0 {
            return;
        }
        self.mask |= bit;
        self.infos.push_back(info);
    }

    /// Takes the lowest-numbered pending signal not in `blocked`.
    fn take(&mut self, blocked: u64) -> Option<SigInfo> {
        let ready = self.mask & !blocked;
        if ready == 0 {
            return None;
        }
        let signo = ready.trailing_zeros() as i32 + 1;
        self.take_signo(signo)
    }

    fn take_signo(&mut self, signo: i32) -> Option<SigInfo> {
        let pos = self.infos.iter().position(|i| i.signo == signo)?;
        let info = self.infos.remove(pos)?;
        if !self.infos.iter().any(|i| i.signo == signo) {
            self.mask &= !bit(signo);
        }
        Some(info)
    }
}

/// The mask bit of a signal.
pub(crate) fn bit(signo: i32) -> u64 {
    1u64 << ((signo - 1) & 63)
}

const UNBLOCKABLE: u64 = (1 << (libc::SIGKILL - 1)) | (1 << (libc::SIGSTOP - 1));

fn valid(signo: u64) -> Option<i32> {
    (1..NSIG as u64).contains(&signo).then_some(signo as i32)
}

/// Default action is to ignore.
fn default_ignored(signo: i32) -> bool {
    matches!(signo, libc::SIGCHLD | libc::SIGURG | libc::SIGWINCH | libc::SIGCONT)
        || matches!(signo, libc::SIGSTOP | libc::SIGTSTP | libc::SIGTTIN | libc::SIGTTOU)
}

/// Default action dumps core.
fn default_core(signo: i32) -> bool {
    matches!(
        signo,
        libc::SIGQUIT
            | libc::SIGILL
            | libc::SIGTRAP
            | libc::SIGABRT
            | libc::SIGBUS
            | libc::SIGFPE
            | libc::SIGSEGV
            | libc::SIGSYS
            | libc::SIGXCPU
            | libc::SIGXFSZ
    )
}

/// Queues a signal for one thread and wakes it.
pub(crate) fn send_to_thread(thread: &ThreadShared, info: SigInfo) {
    lock(&thread.pending).push(info);
    thread.kick();
}

/// Queues a signal for a process and wakes its threads.
pub(crate) fn send_to_process(proc: &Process, info: SigInfo) {
    let threads = lock(&proc.state).threads.clone();
    if threads.is_empty() {
        return;
    }
    lock(&proc.shared_pending).push(info);
    for t in threads {
        t.kick();
    }
}

/// Queues a synchronous fault signal: if the guest blocks or ignores it, it is unblocked and reset
/// to the default action first, so the process dies rather than loops (Linux's force_sig).
pub(crate) fn force(proc: &Process, thread: &ThreadShared, info: SigInfo) {
    let mut actions = lock(&proc.actions);
    let act = &mut actions[info.signo as usize];
    let blocked = thread.blocked.load(Ordering::Relaxed) & bit(info.signo) != 0;
    if act.handler == SIG_IGN || blocked {
        *act = SigAction::default();
        thread.blocked.fetch_and(!bit(info.signo), Ordering::Relaxed);
    }
    drop(actions);
    lock(&thread.pending).push(info);
}

/// Whether a signal is pending that the thread would act on now.
pub(crate) fn has_deliverable(proc: &Process, thread: &ThreadShared) -> bool {
    let blocked = thread.blocked.load(Ordering::Relaxed);
    let pending = lock(&thread.pending).mask | lock(&proc.shared_pending).mask;
    pending & !blocked != 0
}

/// Whether a pending, unblocked signal would run a handler or kill the process (an ignored one
/// would not, so it must not cut a blocking call short).
pub(crate) fn interrupts(proc: &Process, thread: &ThreadShared) -> bool {
    let blocked = thread.blocked.load(Ordering::Relaxed) & !UNBLOCKABLE;
    let pending = (lock(&thread.pending).mask | lock(&proc.shared_pending).mask) & !blocked;
    if pending == 0 {
        return false;
    }
    let actions = lock(&proc.actions);
    (1..NSIG as i32).filter(|&s| pending & bit(s) != 0).any(|s| {
        let act = actions[s as usize];
        s == libc::SIGKILL || !(act.handler == SIG_IGN || (act.handler == SIG_DFL && default_ignored(s)))
    })
}

/// What delivery did.
pub(crate) enum Delivery {
    /// Nothing to do, or a handler frame was set up.
    Continue,
    /// The process is being killed by a signal.
    Kill(ExitStatus),
}

/// An alternate signal stack (sigaltstack).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct AltStack {
    pub sp: u64,
    pub size: u64,
    pub disabled: bool,
}

impl AltStack {
    fn on(&self, sp: u64) -> bool {
        !self.disabled && self.size != 0 && sp > self.sp && sp <= self.sp + self.size
    }
}

/// A system call that was interrupted: how it may restart, and its first argument.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Restart {
    /// ERESTARTSYS or ERESTARTNOHAND.
    pub kind: Errno,
    /// The original a0.
    pub a0: u64,
}

/// Delivers at most one pending signal to the thread. `restart` describes the last system call if
/// it was interrupted: it is restarted, or fails with EINTR, here.
pub(crate) fn deliver(
    proc: &Process,
    thread: &ThreadShared,
    cpu: &mut Cpu,
    mem: &AddressSpace,
    restart: &mut Option<Restart>,
) -> Delivery {
    loop {
        let blocked = thread.blocked.load(Ordering::Relaxed) & !UNBLOCKABLE;
        let info = lock(&thread.pending).take(blocked).or_else(|| lock(&proc.shared_pending).take(blocked));
        let Some(info) = info else {
            // No handler ran: an interrupted call restarts.
            if let Some(r) = restart.take() {
                cpu.x[10] = r.a0;
                cpu.pc -= 4;
            }
            return Delivery::Continue;
        };
        let signo = info.signo;
        let act = lock(&proc.actions)[signo as usize];
        let ignore = act.handler == SIG_IGN || (act.handler == SIG_DFL && default_ignored(signo));
        if signo == libc::SIGKILL {
            return Delivery::Kill(ExitStatus::Signaled { signal: 9, core: false });
        }
        if ignore {
            continue;
        }
        if act.handler == SIG_DFL {
            return Delivery::Kill(ExitStatus::Signaled { signal: signo as u8, core: default_core(signo) });
        }
        if let Some(r) = restart.take() {
            if r.kind == Errno::ERESTARTSYS && act.flags & SA_RESTART != 0 {
                cpu.x[10] = r.a0;
                cpu.pc -= 4;
            } else {
                cpu.x[10] = (-libc::EINTR) as u64;
            }
        }
        if setup_frame(proc, thread, cpu, mem, &info, &act).is_err() {
            // The frame could not be written: the guest's stack is bad. Die of SIGSEGV.
            return Delivery::Kill(ExitStatus::Signaled { signal: libc::SIGSEGV as u8, core: true });
        }
        return Delivery::Continue;
    }
}

fn setup_frame(
    proc: &Process,
    thread: &ThreadShared,
    cpu: &mut Cpu,
    mem: &AddressSpace,
    info: &SigInfo,
    act: &SigAction,
) -> Result<(), Errno> {
    let alt = *lock(&thread.altstack);
    let sp = cpu.x[2];
    let on_alt = alt.on(sp);
    let base =
        if act.flags & SA_ONSTACK != 0 && !alt.disabled && alt.size != 0 && !on_alt { alt.sp + alt.size } else { sp };
    let frame = base.wrapping_sub(FRAME_SIZE) & !15;
    let old_mask = lock(&thread.saved_mask).take().unwrap_or_else(|| thread.blocked.load(Ordering::Relaxed));

    let mut f = vec![0u8; FRAME_SIZE as usize];
    f[..128].copy_from_slice(&info.bytes());
    let put = |f: &mut Vec<u8>, off: u64, v: &[u8]| f[off as usize..off as usize + v.len()].copy_from_slice(v);
    put(&mut f, UC_STACK, &alt.sp.to_le_bytes());
    let ss_flags = if alt.disabled || alt.size == 0 {
        SS_DISABLE
    } else if on_alt {
        SS_ONSTACK
    } else {
        0
    };
    put(&mut f, UC_STACK + 8, &ss_flags.to_le_bytes());
    put(&mut f, UC_STACK + 16, &alt.size.to_le_bytes());
    put(&mut f, UC_SIGMASK, &old_mask.to_le_bytes());
    put(&mut f, MCONTEXT, &cpu.pc.to_le_bytes());
    for r in 1..32 {
        put(&mut f, MCONTEXT + 8 * r as u64, &cpu.x[r].to_le_bytes());
    }
    for r in 0..32 {
        put(&mut f, FPREGS + 8 * r as u64, &cpu.f[r].to_le_bytes());
    }
    put(&mut f, FPREGS + 256, &cpu.fcsr().to_le_bytes());
    mem.write_bytes(frame, &f)?;

    cpu.x[1] = SIGRETURN_PAGE;
    cpu.x[2] = frame;
    cpu.x[10] = info.signo as u64;
    cpu.x[11] = if act.flags & SA_SIGINFO != 0 { frame } else { 0 };
    cpu.x[12] = if act.flags & SA_SIGINFO != 0 { frame + UC } else { 0 };
    cpu.pc = act.handler;
    let mut add = act.mask;
    if act.flags & SA_NODEFER == 0 {
        add |= bit(info.signo);
    }
    thread.blocked.store((old_mask | add) & !UNBLOCKABLE, Ordering::Relaxed);
    if act.flags & SA_RESETHAND != 0 {
        // Only the handler resets; flags and mask stay as they were (Linux's SA_ONESHOT).
        lock(&proc.actions)[info.signo as usize].handler = SIG_DFL;
    }
    Ok(())
}

// ----- system calls -----

impl Sys<'_> {
    pub fn sys_rt_sigreturn(&mut self) -> After {
        let frame = self.cpu.x[2];
        let mut f = vec![0u8; FRAME_SIZE as usize];
        if self.mem.read_bytes(frame, &mut f).is_err() {
            force(self.proc, self.thread, SigInfo::kernel(libc::SIGSEGV));
            return After::Resume;
        }
        let get = |off: u64| u64::from_le_bytes(f[off as usize..off as usize + 8].try_into().unwrap_or_default());
        self.cpu.pc = get(MCONTEXT);
        for r in 1..32 {
            self.cpu.x[r] = get(MCONTEXT + 8 * r as u64);
        }
        for r in 0..32 {
            self.cpu.f[r] = get(FPREGS + 8 * r as u64);
        }
        self.cpu.set_fcsr(get(FPREGS + 256) as u32);
        self.thread.blocked.store(get(UC_SIGMASK) & !UNBLOCKABLE, Ordering::Relaxed);
        self.cpu.reservation = None;
        After::Resume
    }

    pub fn sys_rt_sigaction(&mut self, a: &[u64; 6]) -> SysResult {
        let signo = valid(a[0]).ok_or(Errno::EINVAL)?;
        if a[3] != 8 {
            return Err(Errno::EINVAL);
        }
        let new = if a[1] != 0 {
            Some(SigAction {
                handler: self.mem.load::<u64>(a[1])?,
                flags: self.mem.load::<u64>(a[1] + 8)?,
                mask: self.mem.load::<u64>(a[1] + 16)? & !UNBLOCKABLE,
            })
        } else {
            None
        };
        if new.is_some() && (signo == libc::SIGKILL || signo == libc::SIGSTOP) {
            return Err(Errno::EINVAL);
        }
        let old = {
            let mut actions = lock(&self.proc.actions);
            let old = actions[signo as usize];
            if let Some(n) = new {
                actions[signo as usize] = n;
            }
            old
        };
        if a[2] != 0 {
            self.mem.store::<u64>(a[2], old.handler)?;
            self.mem.store::<u64>(a[2] + 8, old.flags)?;
            self.mem.store::<u64>(a[2] + 16, old.mask)?;
        }
        // Setting SIG_IGN discards pending instances (POSIX).
        if new.is_some_and(|n| n.handler == SIG_IGN) {
            lock(&self.thread.pending).mask &= !bit(signo);
            lock(&self.proc.shared_pending).mask &= !bit(signo);
        }
        Ok(0)
    }

    pub fn sys_rt_sigprocmask(&mut self, a: &[u64; 6]) -> SysResult {
        if a[3] != 8 {
            return Err(Errno::EINVAL);
        }
        let old = self.thread.blocked.load(Ordering::Relaxed);
        if a[1] != 0 {
            let set = self.mem.load::<u64>(a[1])?;
            let new = match a[0] as i32 {
                libc::SIG_BLOCK => old | set,
                libc::SIG_UNBLOCK => old & !set,
                libc::SIG_SETMASK => set,
                _ => return Err(Errno::EINVAL),
            };
            self.thread.blocked.store(new & !UNBLOCKABLE, Ordering::Relaxed);
        }
        if a[2] != 0 {
            self.mem.store::<u64>(a[2], old)?;
        }
        Ok(0)
    }

    pub fn sys_rt_sigpending(&mut self, a: &[u64; 6]) -> SysResult {
        let pending = lock(&self.thread.pending).mask | lock(&self.proc.shared_pending).mask;
        let blocked = self.thread.blocked.load(Ordering::Relaxed);
        self.mem.store::<u64>(a[0], pending & blocked)?;
        Ok(0)
    }

    pub fn sys_rt_sigsuspend(&mut self, a: &[u64; 6]) -> SysResult {
        if a[1] != 8 {
            return Err(Errno::EINVAL);
        }
        let mask = self.mem.load::<u64>(a[0])?;
        let old = self.thread.blocked.swap(mask & !UNBLOCKABLE, Ordering::Relaxed);
        if !self.wait.resumed {
            // The mask to restore after the handler: the one before the first attempt.
            *lock(&self.thread.saved_mask) = Some(old);
        }
        if super::thread::must_stop(self.proc, self.thread) {
            return Err(Errno::ERESTARTNOHAND);
        }
        Err(self.park(Vec::new(), None, Errno::ERESTARTNOHAND))
    }

    pub fn sys_rt_sigtimedwait(&mut self, a: &[u64; 6]) -> SysResult {
        let set = self.mem.load::<u64>(a[0])? & !UNBLOCKABLE;
        let timeout = if a[2] != 0 { Some(self.timespec(a[2])?) } else { None };
        let deadline = self.deadline(timeout);
        {
            let found = {
                let mut q = lock(&self.thread.pending);
                let sig = q.mask & set;
                if sig != 0 { q.take_signo(sig.trailing_zeros() as i32 + 1) } else { None }
            }
            .or_else(|| {
                let mut q = lock(&self.proc.shared_pending);
                let sig = q.mask & set;
                if sig != 0 { q.take_signo(sig.trailing_zeros() as i32 + 1) } else { None }
            });
            if let Some(info) = found {
                if a[1] != 0 {
                    self.mem.write_bytes(a[1], &info.bytes())?;
                }
                return Ok(info.signo as u64);
            }
            if has_deliverable(self.proc, self.thread) {
                return Err(Errno::EINTR);
            }
            if Self::timed_out(deadline) {
                return Err(Errno::EAGAIN);
            }
            // A signal in `set` arrives with a kick, which wakes the vCPU to look again.
            Err(self.park(Vec::new(), deadline, Errno::EINTR))
        }
    }

    pub fn sys_sigaltstack(&mut self, a: &[u64; 6]) -> SysResult {
        let cur = *lock(&self.thread.altstack);
        let on = cur.on(self.cpu.x[2]);
        if a[1] != 0 {
            self.mem.store::<u64>(a[1], cur.sp)?;
            let flags = if cur.disabled || cur.size == 0 {
                SS_DISABLE
            } else if on {
                SS_ONSTACK
            } else {
                0
            };
            self.mem.store::<u32>(a[1] + 8, flags)?;
            self.mem.store::<u32>(a[1] + 12, 0)?;
            self.mem.store::<u64>(a[1] + 16, cur.size)?;
        }
        if a[0] != 0 {
            if on {
                return Err(Errno::EPERM);
            }
            let sp = self.mem.load::<u64>(a[0])?;
            let flags = self.mem.load::<u32>(a[0] + 8)?;
            let size = self.mem.load::<u64>(a[0] + 16)?;
            let new = if flags & SS_DISABLE != 0 {
                AltStack { sp: 0, size: 0, disabled: true }
            } else {
                if flags & !SS_ONSTACK & !(1 << 31) != 0 {
                    return Err(Errno::EINVAL);
                }
                if size < MINSIGSTKSZ {
                    return Err(Errno::ENOMEM);
                }
                AltStack { sp, size, disabled: false }
            };
            *lock(&self.thread.altstack) = new;
        }
        Ok(0)
    }

    pub fn sys_kill(&mut self, a: &[u64; 6]) -> SysResult {
        let pid = a[0] as i32;
        let sig = a[1];
        if sig != 0 && valid(sig).is_none() {
            return Err(Errno::EINVAL);
        }
        let targets: Vec<_> = {
            let procs = lock(&self.kernel.procs);
            procs
                .values()
                .filter(|p| lock(&p.state).exit.is_none())
                .filter(|p| match pid {
                    p2 if p2 > 0 => p.pid == p2,
                    0 => p.pgid.load(Ordering::Relaxed) == self.proc.pgid.load(Ordering::Relaxed),
                    -1 => p.pid != self.proc.pid,
                    g => p.pgid.load(Ordering::Relaxed) == -g,
                })
                .cloned()
                .collect()
        };
        if targets.is_empty() {
            return Err(Errno::ESRCH);
        }
        if sig != 0 {
            for p in targets {
                send_to_process(&p, SigInfo::user(sig as i32, code::SI_USER, self.proc.pid));
            }
        }
        Ok(0)
    }

    /// rt_sigqueueinfo (tgid 0) and rt_tgsigqueueinfo: a signal with caller-supplied details.
    pub fn sys_sigqueueinfo(&mut self, tgid: i32, tid: i32, sig: u64, uinfo: u64) -> SysResult {
        let signo = valid(sig).ok_or(Errno::EINVAL)?;
        let code = self.mem.load::<u32>(uinfo + 8)? as i32;
        // Only the kernel may claim kernel-generated codes for another process (Linux rule).
        if (code >= 0 || code == code::SI_TKILL) && tgid != self.proc.pid {
            return Err(Errno::EPERM);
        }
        let mut info = SigInfo::user(signo, code, self.mem.load::<u32>(uinfo + 16)? as i32);
        info.uid = self.mem.load::<u32>(uinfo + 20)?;
        info.value = self.mem.load::<u64>(uinfo + 24)?;
        let proc = self.kernel.process(tgid).ok_or(Errno::ESRCH)?;
        if lock(&proc.state).exit.is_some() {
            return Err(Errno::ESRCH);
        }
        if tid == 0 {
            send_to_process(&proc, info);
            return Ok(0);
        }
        let t = lock(&proc.state).threads.iter().find(|t| t.tid == tid).cloned().ok_or(Errno::ESRCH)?;
        send_to_thread(&t, info);
        Ok(0)
    }

    pub fn sys_tgkill(&mut self, a: &[u64; 6]) -> SysResult {
        let (tgid, tid, sig) = (a[0] as i32, a[1] as i32, a[2]);
        if tid <= 0 || (sig != 0 && valid(sig).is_none()) {
            return Err(Errno::EINVAL);
        }
        let procs: Vec<_> = lock(&self.kernel.procs).values().cloned().collect();
        for p in procs {
            if tgid > 0 && p.pid != tgid {
                continue;
            }
            let t = lock(&p.state).threads.iter().find(|t| t.tid == tid).cloned();
            if let Some(t) = t {
                if sig != 0 {
                    send_to_thread(&t, SigInfo::user(sig as i32, code::SI_TKILL, self.proc.pid));
                }
                return Ok(0);
            }
        }
        Err(Errno::ESRCH)
    }
}
