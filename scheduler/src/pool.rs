//! The work-stealing scheduler: one worker thread per CPU, each with its own run queue.
//!
//! A [`Task`] (a guest's vCPU, in a node) runs for one slice at a time and then says what next:
//! run again later ([`Step::Yield`]), wait for a wake-up ([`Step::Park`]) or never again
//! ([`Step::Done`]). A parked task holds no worker; [`TaskHandle::wake`] makes it runnable again
//! from any thread.
//!
//! Each worker owns a FIFO run queue (crossbeam-deque) and shares one injector queue for tasks
//! spawned or woken from outside the workers. A worker takes a batch from the injector first when
//! it has any (moving it into its own queue, so injected work waits one round at most behind
//! local work), then its own queue, then steals from the other workers in its
//! [`Topology::steal_order`]: an SMT sibling first, remote NUMA nodes last. A worker with nothing to do parks its thread (no spinning, so an
//! idle node uses no CPU) until work is queued.
//!
//! A task's slice is [`Config::slice`] times its weight, so a heavier guest gets more CPU per turn,
//! and every runnable task waits at most one round of the others' slices: a CPU hog cannot starve
//! anyone. The scheduler measures how long each task waited between becoming runnable and running
//! ([`Stats::max_wait`]).

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::{self, JoinHandle, Thread};
use std::time::{Duration, Instant};

use crossbeam_deque::{Injector, Steal, Stealer, Worker};

use crate::state::State;
use crate::topology::Topology;

/// What a task wants after its slice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Run again after the other runnable tasks had their turn.
    Yield,
    /// Wait until [`TaskHandle::wake`] (a wake-up that came during the slice counts).
    Park,
    /// Finished: never run again.
    Done,
}

/// What a task learns when it runs.
#[derive(Debug)]
pub struct Context<'a> {
    /// How long this turn may last (the task checks it; the scheduler cannot preempt).
    pub slice: Duration,
    /// The worker running the task.
    pub worker: usize,
    /// The task's own handle, to hand to whoever will wake it after it parks.
    pub handle: &'a TaskHandle,
}

/// Work the scheduler runs a slice at a time.
pub trait Task: Send + 'static {
    /// Runs for about `cx.slice` at most and says what next.
    fn run(&mut self, cx: &Context<'_>) -> Step;
}

/// How a scheduler runs.
#[derive(Clone, Debug)]
pub struct Config {
    /// The CPUs and how close they are; one worker per CPU.
    pub topology: Topology,
    /// Use only the first this many CPUs of the topology.
    pub workers: Option<usize>,
    /// Pin each worker thread to its CPU.
    pub pin: bool,
    /// A weight-1 task's slice.
    pub slice: Duration,
}

impl Config {
    /// One pinned worker per CPU this process may use, 2 ms slices.
    pub fn detect() -> Config {
        Config { topology: Topology::detect(), workers: None, pin: true, slice: Duration::from_millis(2) }
    }
}

/// Counters since the scheduler started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub spawned: u64,
    pub completed: u64,
    /// Slices run.
    pub slices: u64,
    /// Tasks a worker took from another worker's queue.
    pub steals: u64,
    /// Times a worker thread parked for lack of work.
    pub parks: u64,
    /// The longest a runnable task waited to run.
    pub max_wait: Duration,
}

/// A way to wake a task; cheap to clone, usable from any thread.
#[derive(Clone, Debug)]
pub struct TaskHandle {
    cell: Arc<TaskCell>,
    shared: Arc<Shared>,
}

impl TaskHandle {
    /// Makes the task runnable if it is parked; remembered if it is running, so that its next
    /// [`Step::Park`] does not sleep through this wake-up. Does nothing to a finished task.
    pub fn wake(&self) {
        if self.cell.state.wake() {
            self.shared.schedule(self.cell.clone());
        }
    }

    /// A [`Waker`](std::task::Waker) that calls [`wake`](Self::wake), for code that knows only
    /// the standard library's wake-up interface.
    pub fn waker(&self) -> std::task::Waker {
        std::task::Waker::from(Arc::new(self.clone()))
    }
}

impl std::task::Wake for TaskHandle {
    fn wake(self: Arc<Self>) {
        TaskHandle::wake(&self);
    }

    fn wake_by_ref(self: &Arc<Self>) {
        TaskHandle::wake(self);
    }
}

struct TaskCell {
    state: State,
    /// Only the worker that moved the task to RUNNING locks this, so it is never contended.
    task: Mutex<Option<Box<dyn Task>>>,
    weight: u32,
    /// When the task last became runnable, in nanoseconds since the scheduler started.
    runnable_since: AtomicU64,
}

impl std::fmt::Debug for TaskCell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskCell").field("state", &self.state).field("weight", &self.weight).finish_non_exhaustive()
    }
}

type Queued = Arc<TaskCell>;

#[derive(Debug)]
struct Shared {
    injector: Injector<Queued>,
    stealers: Vec<Stealer<Queued>>,
    /// For each worker, the other workers nearest first.
    steal_order: Vec<Vec<usize>>,
    /// Workers parked or about to park, and their threads.
    idle: Mutex<Vec<usize>>,
    threads: Mutex<Vec<Option<Thread>>>,
    shutdown: AtomicBool,
    slice: Duration,
    epoch: Instant,
    alive: Mutex<u64>,
    all_done: Condvar,
    spawned: AtomicU64,
    completed: AtomicU64,
    slices: AtomicU64,
    steals: AtomicU64,
    parks: AtomicU64,
    max_wait_ns: AtomicU64,
    runnable: AtomicUsize,
}

thread_local! {
    /// The worker this thread is, and its queue, while it runs tasks.
    static LOCAL: Cell<Option<(*const Shared, *const Worker<Queued>)>> = const { Cell::new(None) };
}

impl Shared {
    fn now_ns(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// Requeues a task that yielded on worker `queue`. When that queue and the injector are empty
    /// the worker runs it again next, so no other worker is woken for it: a lone task stays on
    /// its CPU instead of bouncing between workers every slice.
    fn requeue(&self, cell: Queued, queue: &Worker<Queued>) {
        if queue.is_empty() && self.injector.is_empty() {
            cell.runnable_since.store(self.now_ns(), Ordering::Relaxed);
            self.runnable.fetch_add(1, Ordering::Relaxed);
            metrics::gauge!("shoal_scheduler_runnable").increment(1.0);
            queue.push(cell);
        } else {
            self.schedule(cell);
        }
    }

    /// Queues a task that just became runnable: on this worker's own queue when a worker of
    /// this scheduler calls, else on the injector; then wakes an idle worker to take it.
    fn schedule(&self, cell: Queued) {
        cell.runnable_since.store(self.now_ns(), Ordering::Relaxed);
        self.runnable.fetch_add(1, Ordering::Relaxed);
        metrics::gauge!("shoal_scheduler_runnable").increment(1.0);
        let pushed_locally = LOCAL.with(|local| match local.get() {
            Some((shared, queue)) if std::ptr::eq(shared, self) => {
                // SAFETY: LOCAL is set only by a worker thread for the duration of its loop,
                // pointing at its own queue, which outlives the loop; this is that thread.
                unsafe { (*queue).push(cell.clone()) };
                true
            }
            _ => false,
        });
        if !pushed_locally {
            self.injector.push(cell);
        }
        self.wake_one();
    }

    /// Unparks one idle worker, if any. Idle workers register before their last look for work
    /// (under the same lock), so a task queued before this call is either seen by that look or
    /// its worker is found here: no wake-up is lost.
    fn wake_one(&self) {
        let worker = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        if let Some(w) = worker
            && let Some(t) = &self.threads.lock().unwrap_or_else(|e| e.into_inner())[w]
        {
            t.unpark();
        }
    }

    fn finished(&self) {
        self.completed.fetch_add(1, Ordering::Relaxed);
        let mut alive = self.alive.lock().unwrap_or_else(|e| e.into_inner());
        *alive -= 1;
        if *alive == 0 {
            self.all_done.notify_all();
        }
    }
}

/// A running scheduler; dropping it stops the workers (tasks still queued are dropped).
#[derive(Debug)]
pub struct Scheduler {
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
}

impl Scheduler {
    /// Starts the workers.
    pub fn start(config: Config) -> std::io::Result<Scheduler> {
        let mut cpus: Vec<u32> = config.topology.cpus.iter().map(|c| c.id).collect();
        if let Some(n) = config.workers {
            cpus.truncate(n.max(1));
        }
        let n = cpus.len().max(1);
        let queues: Vec<Worker<Queued>> = (0..n).map(|_| Worker::new_fifo()).collect();
        let steal_order = (0..n)
            .map(|w| match cpus.get(w) {
                Some(&cpu) => config
                    .topology
                    .steal_order(cpu)
                    .into_iter()
                    .filter_map(|(other, _)| cpus.iter().position(|&c| c == other))
                    .collect(),
                None => (0..n).filter(|&o| o != w).collect(),
            })
            .collect();
        let shared = Arc::new(Shared {
            injector: Injector::new(),
            stealers: queues.iter().map(Worker::stealer).collect(),
            steal_order,
            idle: Mutex::new(Vec::new()),
            threads: Mutex::new(vec![None; n]),
            shutdown: AtomicBool::new(false),
            slice: config.slice,
            epoch: Instant::now(),
            alive: Mutex::new(0),
            all_done: Condvar::new(),
            spawned: AtomicU64::new(0),
            completed: AtomicU64::new(0),
            slices: AtomicU64::new(0),
            steals: AtomicU64::new(0),
            parks: AtomicU64::new(0),
            max_wait_ns: AtomicU64::new(0),
            runnable: AtomicUsize::new(0),
        });
        let mut workers = Vec::with_capacity(n);
        for (index, queue) in queues.into_iter().enumerate() {
            let for_worker = shared.clone();
            let cpu = if config.pin { cpus.get(index).copied() } else { None };
            let handle = thread::Builder::new().name(format!("shoal-worker-{index}")).spawn(move || {
                if let Some(cpu) = cpu
                    && let Err(e) = pin_to(cpu)
                {
                    tracing::warn!("worker {index}: cannot pin to CPU {cpu}: {e}");
                }
                run_worker(&for_worker, index, &queue);
            })?;
            shared.threads.lock().unwrap_or_else(|e| e.into_inner())[index] = Some(handle.thread().clone());
            workers.push(handle);
        }
        // A worker that looked for work before its thread handle was recorded may have parked
        // unseen; nudge them all once.
        for w in &workers {
            w.thread().unpark();
        }
        Ok(Scheduler { shared, workers })
    }

    /// Number of worker threads.
    pub fn workers(&self) -> usize {
        self.workers.len()
    }

    /// Queues `task` with `weight` (its slices are `weight` times as long; 0 counts as 1).
    pub fn spawn(&self, task: Box<dyn Task>, weight: u32) -> TaskHandle {
        let cell = Arc::new(TaskCell {
            state: State::queued(),
            task: Mutex::new(Some(task)),
            weight: weight.max(1),
            runnable_since: AtomicU64::new(0),
        });
        *self.shared.alive.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        self.shared.spawned.fetch_add(1, Ordering::Relaxed);
        self.shared.schedule(cell.clone());
        TaskHandle { cell, shared: self.shared.clone() }
    }

    /// Waits until every spawned task is done, or `timeout` passes; true if they are all done.
    pub fn wait_idle(&self, timeout: Duration) -> bool {
        let alive = self.shared.alive.lock().unwrap_or_else(|e| e.into_inner());
        let (alive, _) =
            self.shared.all_done.wait_timeout_while(alive, timeout, |n| *n > 0).unwrap_or_else(|e| e.into_inner());
        *alive == 0
    }

    /// Tasks queued to run now.
    pub fn runnable(&self) -> usize {
        self.shared.runnable.load(Ordering::Relaxed)
    }

    pub fn stats(&self) -> Stats {
        let s = &self.shared;
        Stats {
            spawned: s.spawned.load(Ordering::Relaxed),
            completed: s.completed.load(Ordering::Relaxed),
            slices: s.slices.load(Ordering::Relaxed),
            steals: s.steals.load(Ordering::Relaxed),
            parks: s.parks.load(Ordering::Relaxed),
            max_wait: Duration::from_nanos(s.max_wait_ns.load(Ordering::Relaxed)),
        }
    }
}

impl Drop for Scheduler {
    fn drop(&mut self) {
        self.shared.shutdown.store(true, Ordering::SeqCst);
        for w in &self.workers {
            w.thread().unpark();
        }
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

fn run_worker(shared: &Arc<Shared>, index: usize, queue: &Worker<Queued>) {
    LOCAL.with(|l| l.set(Some((Arc::as_ptr(shared), queue as *const _))));
    while !shared.shutdown.load(Ordering::Acquire) {
        match find_task(shared, index, queue) {
            Some(cell) => run_slice(shared, index, cell, queue),
            None => park(shared, index, queue),
        }
    }
    LOCAL.with(|l| l.set(None));
}

/// The next task for worker `index`: its own queue, the injector, then the other workers'
/// queues nearest first.
fn find_task(shared: &Shared, index: usize, queue: &Worker<Queued>) -> Option<Queued> {
    // Injected tasks (woken from outside) go first: behind them in this queue may be a task
    // that yields forever, and it must not make them wait more than one turn.
    if !shared.injector.is_empty()
        && let Some(cell) = steal_from(|| shared.injector.steal_batch_and_pop(queue))
    {
        return Some(cell);
    }
    if let Some(cell) = queue.pop() {
        return Some(cell);
    }
    if let Some(cell) = steal_from(|| shared.injector.steal_batch_and_pop(queue)) {
        return Some(cell);
    }
    for &other in &shared.steal_order[index] {
        if let Some(cell) = steal_from(|| shared.stealers[other].steal_batch_and_pop(queue)) {
            shared.steals.fetch_add(1, Ordering::Relaxed);
            metrics::counter!("shoal_scheduler_steals_total").increment(1);
            return Some(cell);
        }
    }
    None
}

/// Retries a steal while it reports contention.
fn steal_from(mut steal: impl FnMut() -> Steal<Queued>) -> Option<Queued> {
    loop {
        match steal() {
            Steal::Success(cell) => return Some(cell),
            Steal::Empty => return None,
            Steal::Retry => std::hint::spin_loop(),
        }
    }
}

fn run_slice(shared: &Arc<Shared>, worker: usize, cell: Queued, queue: &Worker<Queued>) {
    shared.runnable.fetch_sub(1, Ordering::Relaxed);
    metrics::gauge!("shoal_scheduler_runnable").decrement(1.0);
    let waited = shared.now_ns().saturating_sub(cell.runnable_since.load(Ordering::Relaxed));
    shared.max_wait_ns.fetch_max(waited, Ordering::Relaxed);
    metrics::histogram!("shoal_scheduler_wait_seconds").record(waited as f64 / 1e9);
    cell.state.start();
    let slice = shared.slice * cell.weight;
    let started = Instant::now();
    let step = {
        let mut task = cell.task.lock().unwrap_or_else(|e| e.into_inner());
        let task = task.as_mut().expect("only a finished task has given up its work, and it is never queued");
        let handle = TaskHandle { cell: cell.clone(), shared: shared.clone() };
        task.run(&Context { slice, worker, handle: &handle })
    };
    shared.slices.fetch_add(1, Ordering::Relaxed);
    metrics::histogram!("shoal_scheduler_slice_seconds").record(started.elapsed().as_secs_f64());
    match step {
        Step::Yield => {
            cell.state.requeue();
            shared.requeue(cell, queue);
        }
        Step::Park => {
            if !cell.state.park() {
                shared.schedule(cell);
            }
        }
        Step::Done => {
            cell.state.finish();
            // Drop the task now (its guest's memory), not when the last handle goes.
            cell.task.lock().unwrap_or_else(|e| e.into_inner()).take();
            shared.finished();
        }
    }
}

/// Parks worker `index` until work is queued (or shutdown). It registers as idle first and then
/// looks once more, so work queued meanwhile is not slept through.
fn park(shared: &Shared, index: usize, queue: &Worker<Queued>) {
    shared.idle.lock().unwrap_or_else(|e| e.into_inner()).push(index);
    let nothing = queue.is_empty()
        && shared.injector.is_empty()
        && shared.steal_order[index].iter().all(|&o| shared.stealers[o].is_empty());
    if nothing && !shared.shutdown.load(Ordering::Acquire) {
        shared.parks.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("shoal_scheduler_parks_total").increment(1);
        // A long timeout only as a safety net: wake-ups unpark the thread.
        thread::park_timeout(Duration::from_secs(1));
    }
    shared.idle.lock().unwrap_or_else(|e| e.into_inner()).retain(|&w| w != index);
}

/// Pins the calling thread to `cpu`.
fn pin_to(cpu: u32) -> std::io::Result<()> {
    // SAFETY: `cpu_set_t` is plain bits; zeroed is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    let cpu = usize::try_from(cpu).map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
    if cpu >= usize::try_from(libc::CPU_SETSIZE).unwrap_or(0) {
        return Err(std::io::Error::from(std::io::ErrorKind::InvalidInput));
    }
    // SAFETY: `cpu` is below CPU_SETSIZE, inside `set`.
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: `set` is a valid `cpu_set_t` of the size passed; 0 is the calling thread.
    let rc = unsafe { libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set) };
    if rc == 0 { Ok(()) } else { Err(std::io::Error::last_os_error()) }
}

#[cfg(test)]
mod tests;
