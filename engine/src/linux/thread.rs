//! The loop that runs one guest thread on its host thread, and the host-signal plumbing that lets
//! other threads interrupt it.
//!
//! Every host thread that runs guest code keeps the wake-up signal ([`wake_signal`]) blocked,
//! except inside `ppoll` (which unblocks it atomically) and around futex waits. A thread that wants
//! another to notice something sets its `attention` word and sends it the wake-up signal, so the
//! target either sees `attention` between two blocks or has its blocking syscall fail with EINTR.
#![expect(
    clippy::cast_possible_truncation,
    reason = "system call arguments are narrowed to their C parameter types as the Linux ABI does, and host sizes are 64-bit"
)]

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::signal::{self, Delivery, SigInfo, code};
use super::syscall::{After, Sys};
use super::{Errno, Kernel, Process, ThreadShared, lock, task};
use crate::interp::{Cpu, Exit, Interp};
use crate::mem::Access;

/// Instructions a vCPU runs before it looks around (signals, kill requests are also seen sooner
/// through `attention`).
const SLICE: u64 = 1 << 20;

/// The host signal used to interrupt a guest thread's blocking host syscall.
pub(crate) fn wake_signal() -> libc::c_int {
    libc::SIGRTMIN() + 1
}

extern "C" fn on_wake(_: libc::c_int) {}

/// Installs the wake-up handler (without SA_RESTART, so blocking calls return EINTR).
pub(crate) fn install_host_handlers() {
    // SAFETY: installs an async-signal-safe empty handler for a real-time signal this process owns.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_wake as *const () as usize;
        sa.sa_flags = 0;
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(wake_signal(), &sa, std::ptr::null_mut());
        // A write to a closed pipe is reported to the guest as EPIPE plus a guest SIGPIPE.
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
}

/// Host signals that are passed on to the guest, as qemu-user does: a terminal's Ctrl-C, a `kill`
/// of the shoal process. They go to the first guest process's process group.
const FORWARDED: [libc::c_int; 7] =
    [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT, libc::SIGUSR1, libc::SIGUSR2, libc::SIGWINCH];

fn forwarded_set() -> libc::sigset_t {
    // SAFETY: builds a signal set from valid signal numbers.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in FORWARDED {
            libc::sigaddset(&mut set, s);
        }
        set
    }
}

/// Blocks the forwarded host signals in the calling thread (and so in every thread it starts
/// afterwards) and starts a thread that receives them with `sigwaitinfo` and sends each to the
/// guest processes in `pgid`'s group.
pub(crate) fn forward_host_signals(kernel: &Arc<Kernel>, pgid: i32) {
    let set = forwarded_set();
    // SAFETY: blocks valid signals in this thread's mask.
    unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    let weak = Arc::downgrade(kernel);
    let spawned = std::thread::Builder::new().name("host-signals".into()).spawn(move || {
        loop {
            // SAFETY: waits for one of the blocked signals in `set`.
            let signo = unsafe { libc::sigwaitinfo(&set, std::ptr::null_mut()) };
            if signo < 0 {
                continue;
            }
            let Some(kernel) = weak.upgrade() else { return };
            let group: Vec<Arc<Process>> =
                lock(&kernel.procs).values().filter(|p| p.pgid.load(Ordering::Relaxed) == pgid).cloned().collect();
            for p in group {
                signal::send_to_process(&p, SigInfo::user(signo, code::SI_USER, 0));
            }
        }
    });
    if spawned.is_err() {
        // Without the forwarder the signals keep their host default action.
        // SAFETY: unblocks the same valid set again.
        unsafe { libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut()) };
    }
}

fn block_wake(block: bool) {
    // SAFETY: manipulates this thread's signal mask with a valid set.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, wake_signal());
        libc::pthread_sigmask(if block { libc::SIG_BLOCK } else { libc::SIG_UNBLOCK }, &set, std::ptr::null_mut());
    }
}

/// Interrupts host thread `t` if it is blocked in a host syscall.
pub(crate) fn wake_host_thread(t: libc::pthread_t) {
    // SAFETY: `t` is a live thread of this process (it deregisters before exiting).
    unsafe { libc::pthread_kill(t, wake_signal()) };
}

/// `ppoll` that returns EINTR when the thread is kicked. With no descriptors it is a sleep.
pub(crate) fn ppoll_interruptible(
    thread: &ThreadShared,
    fds: &mut [libc::pollfd],
    timeout: Option<Duration>,
) -> Result<u64, Errno> {
    if thread.attention.load(Ordering::Acquire) != 0 {
        return Err(Errno::EINTR);
    }
    let ts = timeout.map(|d| libc::timespec {
        tv_sec: d.as_secs().min(i64::MAX as u64) as i64,
        tv_nsec: i64::from(d.subsec_nanos()),
    });
    // SAFETY: builds the current mask minus the wake-up signal.
    let mask = unsafe {
        let mut m: libc::sigset_t = std::mem::zeroed();
        libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), &mut m);
        libc::sigdelset(&mut m, wake_signal());
        m
    };
    let tsp = ts.as_ref().map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: `fds` is a valid pollfd array of its length; `tsp` is null or a valid timespec.
    let n = unsafe { libc::ppoll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, tsp, &mask) };
    if n < 0 { Err(Errno::last()) } else { Ok(n as u64) }
}

/// Decides what an interrupted blocking wait does: give up (true) when the thread must exit or a
/// pending signal will run a handler or kill the process; otherwise the wake-up is consumed (a
/// signal that is ignored, or one that was already handled) and the wait goes on.
pub(crate) fn must_stop(proc: &Process, thread: &ThreadShared) -> bool {
    if thread.killed.load(Ordering::Acquire) || super::signal::interrupts(proc, thread) {
        return true;
    }
    // A kick that arrives after this store also left the wake-up signal pending, so the next
    // wait returns at once and looks again: nothing is lost.
    thread.attention.store(0, Ordering::Release);
    false
}

/// One host futex wait of at most `slice` on guest memory, interruptible by the wake-up signal.
///
/// Returns Ok when woken, ETIMEDOUT when the slice elapsed, EAGAIN when the word did not hold
/// `val`, EINTR when kicked.
pub(crate) fn futex_wait_slice(
    thread: &ThreadShared,
    host_addr: *const u32,
    val: u32,
    slice: Duration,
    bitset: u32,
) -> Result<(), Errno> {
    if thread.attention.load(Ordering::Acquire) != 0 {
        return Err(Errno::EINTR);
    }
    let ts = libc::timespec { tv_sec: slice.as_secs() as i64, tv_nsec: i64::from(slice.subsec_nanos()) };
    block_wake(false);
    let mut abs = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes one timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut abs) };
    abs.tv_sec += ts.tv_sec;
    abs.tv_nsec += ts.tv_nsec;
    if abs.tv_nsec >= 1_000_000_000 {
        abs.tv_sec += 1;
        abs.tv_nsec -= 1_000_000_000;
    }
    // FUTEX_WAIT_BITSET with all bits is FUTEX_WAIT with an absolute (monotonic) timeout.
    // SAFETY: `host_addr` points at a checked, aligned 4-byte word inside a live guest arena and
    // `abs` is a valid timespec.
    let r = unsafe {
        libc::syscall(
            libc::SYS_futex,
            host_addr,
            libc::FUTEX_WAIT_BITSET | libc::FUTEX_PRIVATE_FLAG,
            val,
            &abs as *const libc::timespec,
            std::ptr::null::<u32>(),
            bitset,
        )
    };
    let err = Errno::last();
    block_wake(true);
    if r == 0 { Ok(()) } else { Err(err) }
}

/// Starts a host thread running guest thread `thread` of `proc` from `cpu`.
pub(crate) fn spawn(
    kernel: Arc<Kernel>,
    proc: Arc<Process>,
    thread: Arc<ThreadShared>,
    cpu: Cpu,
) -> std::io::Result<()> {
    let spawned = std::thread::Builder::new()
        .name(format!("guest-{}", thread.tid))
        .stack_size(2 << 20)
        .spawn(move || run(kernel, proc, thread, cpu));
    spawned.map(|_| ())
}

/// Runs a guest thread until it exits.
fn run(kernel: Arc<Kernel>, proc: Arc<Process>, thread: Arc<ThreadShared>, mut cpu: Cpu) {
    block_wake(true);
    // SAFETY: pthread_self cannot fail.
    *lock(&thread.host) = Some(unsafe { libc::pthread_self() });
    let mut interp = Interp::with_jit(kernel.jit_config());
    let mut mem = proc.mm();
    let mut restart: Option<signal::Restart> = None;
    let mut exit_code: u8 = 0;
    loop {
        if thread.killed.load(Ordering::Acquire) {
            break;
        }
        let exit = interp.run(&mut cpu, &mem, &thread.attention, SLICE);
        match exit {
            Exit::Ecall => {
                let nr = cpu.x[17];
                let args = [cpu.x[10], cpu.x[11], cpu.x[12], cpu.x[13], cpu.x[14], cpu.x[15]];
                let mut sys = Sys { kernel: &kernel, proc: &proc, thread: &thread, cpu: &mut cpu, mem: mem.clone() };
                let after = sys.dispatch(nr, &args);
                if kernel.config.strace {
                    trace(&proc, &thread, nr, &args, &after);
                }
                match after {
                    After::Return(r) => {
                        cpu.pc += 4;
                        cpu.x[10] = match r {
                            Ok(v) => v,
                            Err(kind @ (Errno::ERESTARTSYS | Errno::ERESTARTNOHAND)) => {
                                restart = Some(signal::Restart { kind, a0: args[0] });
                                (-libc::EINTR) as u64
                            }
                            Err(e) => (-i64::from(e.0)) as u64,
                        };
                    }
                    After::Resume => {}
                    After::ExitThread => {
                        exit_code = args[0] as u8;
                        break;
                    }
                }
                let now = proc.mm();
                if !Arc::ptr_eq(&now, &mem) {
                    mem = now;
                    interp.flush();
                }
            }
            Exit::Fault(f) if f.past_eof => {
                signal::force(&proc, &thread, SigInfo::fault(libc::SIGBUS, code::BUS_ADRERR, f.addr));
            }
            Exit::Fault(f) => {
                let code = if f.mapped { code::SEGV_ACCERR } else { code::SEGV_MAPERR };
                let _ = f.access == Access::Execute;
                signal::force(&proc, &thread, SigInfo::fault(libc::SIGSEGV, code, f.addr));
            }
            Exit::Illegal => signal::force(&proc, &thread, SigInfo::fault(libc::SIGILL, code::ILL_ILLOPC, cpu.pc)),
            Exit::Breakpoint => signal::force(&proc, &thread, SigInfo::fault(libc::SIGTRAP, code::TRAP_BRKPT, cpu.pc)),
            Exit::Misaligned(addr) => {
                signal::force(&proc, &thread, SigInfo::fault(libc::SIGBUS, code::BUS_ADRALN, addr))
            }
            Exit::Interrupted => thread.attention.store(0, Ordering::Release),
            Exit::Budget => {}
        }
        if thread.killed.load(Ordering::Acquire) {
            break;
        }
        match signal::deliver(&proc, &thread, &mut cpu, &mem, &mut restart) {
            Delivery::Continue => {}
            Delivery::Kill(status) => {
                task::kill_process(&proc, status);
                break;
            }
        }
    }
    *lock(&thread.host) = None;
    kernel.account(cpu.instret, Some(&interp));
    task::thread_exited(&kernel, &proc, &thread, &mem, exit_code);
}

fn trace(proc: &Process, thread: &ThreadShared, nr: u64, a: &[u64; 6], after: &After) {
    let name = super::syscall::name(nr);
    let ret = match after {
        After::Return(Ok(v)) => format!("{}", *v as i64),
        After::Return(Err(Errno::ERESTARTSYS)) => "? ERESTARTSYS".to_string(),
        After::Return(Err(Errno::ERESTARTNOHAND)) => "? ERESTARTNOHAND".to_string(),
        After::Return(Err(e)) => format!("-1 errno={} ({})", e.0, e.name()),
        After::Resume => "?".to_string(),
        After::ExitThread => "(exit)".to_string(),
    };
    let tid = if thread.tid == proc.pid { String::new() } else { format!("/{}", thread.tid) };
    if name == "unknown" {
        eprintln!(
            "{}{tid} unknown syscall {nr}({:#x},{:#x},{:#x},{:#x},{:#x},{:#x}) = {ret}",
            proc.pid, a[0], a[1], a[2], a[3], a[4], a[5]
        );
    } else {
        eprintln!(
            "{}{tid} {name}({:#x},{:#x},{:#x},{:#x},{:#x},{:#x}) = {ret}",
            proc.pid, a[0], a[1], a[2], a[3], a[4], a[5]
        );
    }
}
