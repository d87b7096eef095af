//! Slice ends for guest code that never leaves compiled code on its own.
//!
//! Compiled loops check only the thread's `attention` word at their heads, so a guest spinning
//! on a lock inside one region would keep its worker for ever, and the lock's holder, waiting in the
//! run queue behind it, would never release it. While a vCPU runs, it is listed here with the end of
//! its slice; one process-wide thread sleeps until the earliest end and sets `attention` on every
//! vCPU whose slice is over, which stops it at its next loop head or block, if its executor has
//! other vCPUs waiting to run ([`Executor::contended`]); either way it looks again [`RECHECK`]
//! later, while the vCPU is still listed.
//! A lone vCPU is not stopped for nothing, so its run is the same with one worker or many.
//!
//! Starting a slice must not cost a host wake-up (vCPUs that yield to each other start one every
//! microsecond or so): a slice that ends later than the thread's next look does not wake it.
//! While vCPUs run, the thread sleeps until the earliest slice end it knows; once none runs, it
//! looks every [`TICK`] for [`LINGER`] (so a slice that starts then need not wake it either),
//! and then sleeps until the first slice after that wakes it.
//!
//! Wake-up preemption: when a vCPU becomes runnable and no worker is idle, the executor calls
//! [`make_room`], which moves the slice end of the vCPU that has run longest forward to
//! [`GRANULARITY`] after its start. A thread woken by another (a futex handoff, a pipe relay) then
//! waits a fraction of a millisecond for a worker, not a whole slice of a thread spinning
//! meanwhile; a vCPU keeps at least `GRANULARITY` of every slice, so wake-ups cannot make it
//! thrash.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use super::{Executor, ThreadShared, lock};

/// How often an uncontended vCPU past its slice is looked at again.
const RECHECK: Duration = Duration::from_millis(1);

/// How often the thread looks while no vCPU runs, for [`LINGER`].
const TICK: Duration = Duration::from_millis(1);

/// How long the thread keeps looking every [`TICK`] after the last vCPU stopped running.
const LINGER: Duration = Duration::from_millis(50);

/// The shortest part of its slice a vCPU runs before a wake-up may stop it.
pub const GRANULARITY: Duration = Duration::from_micros(250);

#[derive(Debug, Default)]
struct Registry {
    next: u64,
    /// Each running vCPU's slice end, thread and executor.
    slices: HashMap<u64, Running>,
    /// When the thread looks next; `None` while it sleeps until woken.
    next_look: Option<Instant>,
}

#[derive(Debug, Default)]
struct Preempt {
    running: Mutex<Registry>,
    changed: Condvar,
}

fn get() -> &'static Preempt {
    static PREEMPT: OnceLock<&'static Preempt> = OnceLock::new();
    PREEMPT.get_or_init(|| {
        let p: &'static Preempt = Box::leak(Box::default());
        if let Err(e) = std::thread::Builder::new().name("shoal-preempt".into()).spawn(move || p.run()) {
            // Without it, slices end only where guest code leaves compiled code.
            tracing::error!("cannot start the preemption thread: {e}");
        }
        p
    })
}

/// A running vCPU: its slice end, its thread, its executor, and when its slice started.
type Running = (Instant, Arc<ThreadShared>, Arc<dyn Executor>, Instant);

/// A running slice; dropping it takes the vCPU off the list.
#[derive(Debug)]
pub(crate) struct Slice(u64);

/// Lists `thread` as running from `started` until `end`.
pub(crate) fn start(thread: &Arc<ThreadShared>, executor: &Arc<dyn Executor>, started: Instant, end: Instant) -> Slice {
    let p = get();
    let mut running = lock(&p.running);
    running.next += 1;
    let id = running.next;
    running.slices.insert(id, (end, thread.clone(), executor.clone(), started));
    let wake = running.next_look.is_none_or(|at| end < at);
    drop(running);
    if wake {
        p.changed.notify_one();
    }
    Slice(id)
}

/// A vCPU became runnable and every worker is busy: the running vCPU whose slice started first
/// is stopped [`GRANULARITY`] after its start (at once if that has passed), if its executor still
/// has vCPUs waiting then.
pub fn make_room() {
    let p = get();
    let mut running = lock(&p.running);
    let Some((end, _, _, started)) = running.slices.values_mut().min_by_key(|(.., started)| *started) else {
        return;
    };
    let soon = *started + GRANULARITY;
    if soon < *end {
        *end = soon;
        let wake = running.next_look.is_none_or(|at| soon < at);
        drop(running);
        if wake {
            p.changed.notify_one();
        }
    }
}

impl Drop for Slice {
    fn drop(&mut self) {
        lock(&get().running).slices.remove(&self.0);
    }
}

impl Preempt {
    fn run(&self) {
        let mut running = lock(&self.running);
        let mut last_busy = Instant::now();
        loop {
            let now = Instant::now();
            if !running.slices.is_empty() {
                last_busy = now;
            }
            for (end, thread, executor, _) in running.slices.values_mut() {
                if *end <= now {
                    // A stopped vCPU leaves its slice and drops this entry; one still here
                    // a moment later (in a host call) is stopped again.
                    if executor.contended() {
                        thread.preempted.store(true, Ordering::Relaxed);
                        set(&thread.attention);
                    }
                    *end = now + RECHECK;
                }
            }
            let earliest = running.slices.values().map(|(d, ..)| *d).min();
            let next_look = match earliest {
                Some(d) => Some(d),
                None if now.duration_since(last_busy) < LINGER => Some(now + TICK),
                None => None,
            };
            running.next_look = next_look;
            running = match next_look {
                None => self.changed.wait(running).unwrap_or_else(|e| e.into_inner()),
                Some(at) => {
                    self.changed
                        .wait_timeout(running, at.saturating_duration_since(now))
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
            };
        }
    }
}

fn set(attention: &AtomicU32) {
    attention.store(1, Ordering::Release);
}
