//! How a guest thread waits without holding a host thread.
//!
//! A system call that must wait (a futex, a sleep, a read from an empty pipe, a child's exit)
//! registers its vCPU's [`Waker`] with whatever will end the wait (a futex queue, the
//! [`reactor`](super::reactor), a process's [`Event`]) and returns [`Errno::PARKED`]. The vCPU then
//! parks; when it is woken it runs the same call again from the start, with [`Wait`] carrying
//! what must survive between the attempts (the deadline, the futex waiter, a transfer's progress).
//! This is Linux's own restart model: a blocking call does nothing visible before it sleeps, so
//! running it again is the same as waking up inside it.
//!
//! A signal, a kill or an execve by another thread wakes a parked thread through the same waker
//! (`ThreadShared::kick`); the call, run again, sees the reason and returns ERESTARTSYS or EINTR.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::Waker;
use std::time::{Duration, Instant};

use super::reactor::{self, Interest};
use super::syscall::Sys;
use super::{Errno, Process, futex, lock};

/// Something threads wait for: a condition variable for host threads (the caller of
/// [`Kernel::run`](super::Kernel::run)) and a list of wakers for parked vCPUs. Waiters check their
/// condition and register under the lock that guards it; notifiers change it under that lock and
/// notify after, so no wake-up is lost.
#[derive(Debug, Default)]
pub(crate) struct Event {
    cv: Condvar,
    wakers: Mutex<Vec<Waker>>,
}

impl Event {
    pub fn notify_all(&self) {
        self.cv.notify_all();
        let wakers = std::mem::take(&mut *lock(&self.wakers));
        for w in wakers {
            w.wake();
        }
    }

    /// Wakes `waker` at the next notification.
    pub fn register(&self, waker: &Waker) {
        let mut wakers = lock(&self.wakers);
        if !wakers.iter().any(|w| w.will_wake(waker)) {
            wakers.push(waker.clone());
        }
    }

    /// Blocks the host thread until the next notification (only for threads that are not
    /// vCPUs).
    pub fn wait<'a, T>(&self, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
        self.cv.wait(guard).unwrap_or_else(|e| e.into_inner())
    }
}

/// A blocking system call's state between the attempts of one call.
#[derive(Debug, Default)]
pub(crate) struct Wait {
    /// This attempt follows a park (the call began before).
    pub resumed: bool,
    /// When the call times out, fixed by its first attempt.
    deadline: Option<Instant>,
    /// The futex wait queued by the last attempt.
    pub futex: Option<Arc<futex::Waiter>>,
    /// The reactor registration of the last attempt.
    io: Option<reactor::Token>,
    /// Bytes a stream transfer moved before it parked.
    pub done: u64,
    /// Attempts so far of a call that polls (a lock another process holds).
    pub retries: u32,
    /// A vfork child the thread waits for after its clone returned.
    pub vfork: Option<Arc<Process>>,
}

impl Wait {
    /// Called when the vCPU runs again after a park: drops the registrations of the last attempt
    /// (the futex waiter stays for the call to look at).
    pub fn resume(&mut self) {
        self.resumed = true;
        if let Some(token) = self.io.take()
            && let Some(r) = reactor::get()
        {
            r.cancel(token);
        }
    }

    /// Called when a call finishes (or its thread ends): the next call starts afresh.
    pub fn finish(&mut self, futexes: &futex::Futexes) {
        self.resume();
        if let Some(w) = self.futex.take() {
            futexes.cancel(&w);
        }
        self.resumed = false;
        self.deadline = None;
        self.done = 0;
        self.retries = 0;
    }
}

impl Sys<'_> {
    /// The call's deadline, `timeout` from its first attempt (`None`: no timeout).
    pub(crate) fn deadline(&mut self, timeout: Option<Duration>) -> Option<Instant> {
        let timeout = timeout?;
        Some(*self.wait.deadline.get_or_insert_with(|| Instant::now() + timeout))
    }

    /// Parks the calling vCPU for a moment before the call tries again: for waits the host can
    /// only poll (a file lock another process holds). The pause grows from 1 ms to 32 ms as
    /// attempts fail, so a long wait costs little and a short one is noticed soon.
    pub(crate) fn retry_later(&mut self, interrupted: Errno) -> Errno {
        let pause = Duration::from_millis(1 << self.wait.retries.min(5));
        self.wait.retries += 1;
        self.park(Vec::new(), Some(Instant::now() + pause), interrupted)
    }

    /// Whether the call's deadline has passed.
    pub(crate) fn timed_out(deadline: Option<Instant>) -> bool {
        deadline.is_some_and(|d| Instant::now() >= d)
    }

    /// Parks the calling vCPU until one of `interests` is ready, `deadline` passes, or whatever the
    /// caller registered the vCPU's waker with fires; returns [`Errno::PARKED`] for the call to
    /// return. When the thread must stop instead (it is being killed, or a signal will run a
    /// handler or kill the process) it returns `interrupted` (ERESTARTSYS or ERESTARTNOHAND).
    pub(crate) fn park(&mut self, interests: Vec<Interest>, deadline: Option<Instant>, interrupted: Errno) -> Errno {
        // A kick from now on wakes the parked vCPU.
        self.thread.set_waker(self.waker);
        if !interests.is_empty() || deadline.is_some() {
            match reactor::get() {
                Some(r) => self.wait.io = Some(r.register(interests, deadline, self.waker.clone())),
                None => return Errno::ENOMEM,
            }
        }
        // A kick that came before left `attention` set: stop if it asks to, else wake at once so
        // that the call runs again and looks at what changed (a signal it waits for, say).
        if self.thread.attention.load(Ordering::Acquire) != 0 {
            if super::thread::must_stop(self.proc, self.thread) {
                return interrupted;
            }
            self.waker.wake_by_ref();
        }
        Errno::PARKED
    }
}
