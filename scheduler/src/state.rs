//! The life of a scheduled task as one atomic byte, so that waking a task never races with the
//! task parking itself: a wake-up that arrives while the task runs is remembered and the task is
//! queued again instead of parked, and a task is never in two run queues at once.
//!
//! ```text
//!            wake                 start               Park
//!   IDLE ───────────▶ QUEUED ───────────▶ RUNNING ───────────▶ IDLE
//!                       ▲                   │  │ wake
//!                       │  Yield, or Park   │  ▼
//!                       └──────────────── NOTIFIED
//!   any state ── Done ──▶ DONE (final)
//! ```
//!
//! Whoever moves a task to QUEUED must put it in a run queue; nobody else may.

use crate::sync::{AtomicU8, Ordering};

const IDLE: u8 = 0;
const QUEUED: u8 = 1;
const RUNNING: u8 = 2;
const NOTIFIED: u8 = 3;
const DONE: u8 = 4;

/// A task's scheduling state (see the module documentation).
#[derive(Debug)]
pub(crate) struct State(AtomicU8);

impl State {
    /// A task about to be queued for its first run.
    pub(crate) fn queued() -> State {
        State(AtomicU8::new(QUEUED))
    }

    /// Wakes the task: true if the caller must now queue it (it was parked).
    pub(crate) fn wake(&self) -> bool {
        let mut cur = self.0.load(Ordering::Acquire);
        loop {
            let next = match cur {
                IDLE => QUEUED,
                RUNNING => NOTIFIED,
                _ => return false,
            };
            match self.0.compare_exchange_weak(cur, next, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return next == QUEUED,
                Err(actual) => cur = actual,
            }
        }
    }

    /// A worker took the task from a run queue and runs it.
    pub(crate) fn start(&self) {
        let was = self.0.swap(RUNNING, Ordering::AcqRel);
        debug_assert_eq!(was, QUEUED, "only a queued task runs");
    }

    /// The task asked to park: true if it parked, false if a wake-up came while it ran and the
    /// caller must queue it again.
    pub(crate) fn park(&self) -> bool {
        match self.0.compare_exchange(RUNNING, IDLE, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => true,
            Err(actual) => {
                debug_assert_eq!(actual, NOTIFIED);
                self.0.store(QUEUED, Ordering::Release);
                false
            }
        }
    }

    /// The task yielded its slice: the caller queues it again.
    pub(crate) fn requeue(&self) {
        let was = self.0.swap(QUEUED, Ordering::AcqRel);
        debug_assert!(was == RUNNING || was == NOTIFIED, "only a running task yields");
    }

    /// The task finished; later wake-ups do nothing.
    pub(crate) fn finish(&self) {
        self.0.store(DONE, Ordering::Release);
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn a_wake_while_running_requeues_instead_of_parking() {
        let s = State::queued();
        assert!(!s.wake(), "already queued");
        s.start();
        assert!(!s.wake(), "running: remembered, not queued twice");
        assert!(!s.park(), "the remembered wake-up keeps it runnable");
        s.start();
        assert!(s.park());
        assert!(s.wake(), "parked: the waker queues it");
        assert!(!s.wake());
        s.start();
        s.requeue();
        s.start();
        s.finish();
        assert!(!s.wake(), "done for good");
    }
}

#[cfg(loom)]
mod loom_tests {
    use loom::sync::Arc;
    use loom::sync::atomic::AtomicUsize;

    use super::*;

    /// A task parks while another thread wakes it: in every interleaving it ends up queued
    /// exactly once (by the waker or by the worker), never lost and never twice.
    #[test]
    fn loom_wake_races_park() {
        loom::model(|| {
            let s = Arc::new(State::queued());
            let queued = Arc::new(AtomicUsize::new(0));
            s.start();
            let (s2, q2) = (s.clone(), queued.clone());
            let waker = loom::thread::spawn(move || {
                if s2.wake() {
                    q2.fetch_add(1, Ordering::SeqCst);
                }
            });
            if !s.park() {
                queued.fetch_add(1, Ordering::SeqCst);
            }
            waker.join().unwrap();
            assert_eq!(queued.load(Ordering::SeqCst), 1);
        });
    }

    /// Two wakers race for a parked task: exactly one of them queues it.
    #[test]
    fn loom_two_wakers_queue_once() {
        loom::model(|| {
            let s = Arc::new(State::queued());
            s.start();
            assert!(s.park());
            let queued = Arc::new(AtomicUsize::new(0));
            let handles: Vec<_> = (0..2)
                .map(|_| {
                    let (s, q) = (s.clone(), queued.clone());
                    loom::thread::spawn(move || {
                        if s.wake() {
                            q.fetch_add(1, Ordering::SeqCst);
                        }
                    })
                })
                .collect();
            for h in handles {
                h.join().unwrap();
            }
            assert_eq!(queued.load(Ordering::SeqCst), 1);
        });
    }
}
