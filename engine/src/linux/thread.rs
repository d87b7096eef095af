//! Host-thread plumbing for guest threads: the signal mask of threads that run vCPUs, and the
//! forwarding of host signals (Ctrl-C, `kill` of the shoal process) to the guest.

use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::signal::{self, SigInfo, code};
use super::{Kernel, Process, ThreadShared, lock};

/// Ignores SIGPIPE: a write to a closed pipe is reported to the guest as EPIPE plus a guest
/// SIGPIPE.
pub(crate) fn install_host_handlers() {
    // SAFETY: sets a standard disposition for a valid signal.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
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
    prepare_host_thread();
    let set = forwarded_set();
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

/// Blocks the forwarded host signals in the calling thread, once, so that only the forwarder
/// thread receives them. Threads started afterwards inherit the mask: call this before starting
/// the threads that will run vCPUs (a scheduler's workers); [`Vcpu::run`](super::Vcpu::run)
/// calls it too, for threads started before.
pub fn prepare_host_thread() {
    thread_local! {
        static PREPARED: Cell<bool> = const { Cell::new(false) };
    }
    if PREPARED.with(|p| p.replace(true)) {
        return;
    }
    let set = forwarded_set();
    // SAFETY: blocks valid signals in this thread's mask.
    unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
}

/// Runs `start` (which starts threads that will run vCPUs) with the forwarded host signals
/// blocked, so that those threads inherit the mask, and restores the caller's mask after: the
/// caller keeps the host's default handling (Ctrl-C ends a load test) until
/// [`Kernel::run`](super::Kernel::run) forwards the signals to a guest.
pub fn with_host_signals_blocked<T>(start: impl FnOnce() -> T) -> T {
    let set = forwarded_set();
    // SAFETY: `old` receives the current mask; both sets are valid.
    let old = unsafe {
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old);
        old
    };
    let result = start();
    // SAFETY: restores the mask read above.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut()) };
    result
}

/// Decides what an interrupted blocking wait does: give up (true) when the thread must exit or a
/// pending signal will run a handler or kill the process; otherwise the wake-up is consumed (a
/// signal that is ignored, or one that was already handled) and the wait goes on.
pub(crate) fn must_stop(proc: &Process, thread: &ThreadShared) -> bool {
    if thread.killed.load(Ordering::Acquire) || super::signal::interrupts(proc, thread) {
        return true;
    }
    // A kick that arrives after this store sets `attention` again and wakes the vCPU, so the
    // call runs once more and looks again: nothing is lost.
    thread.attention.store(0, Ordering::Release);
    false
}
