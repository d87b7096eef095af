//! The work-stealing scheduler: one worker thread per CPU, each with its own run queue.
//!
//! A [`Task`] (a guest's vCPU, in a node) runs for one slice at a time and then says what next:
//! run again later ([`Step::Yield`]), wait for a wake-up ([`Step::Park`]) or never again
//! ([`Step::Done`]). A parked task holds no worker; [`TaskHandle::wake`] makes it runnable again
//! from any thread.
//!
//! Each worker owns a FIFO run queue (crossbeam-deque), where the tasks it ran and must run again
//! wait; each NUMA node of the workers has one injector queue for tasks spawned or woken. Every
//! task has a home node (given at spawn, else the least loaded), whose injector it is queued on.
//! A worker runs its node's injected tasks (newcomers) ahead of its own queue, unless the head of its queue has waited [`AGING`] slices: then the injected tasks join
//! the back of the queue, so a stream of them never holds queued tasks back for long. After its
//! own queue it steals from the other workers in its [`Topology::steal_order`]: an SMT sibling
//! first, then its cache and node, then remote nodes nearest first, each node's injector before
//! its workers. A worker with nothing to do parks its thread (no spinning, so an idle node uses
//! no CPU) until work is queued, and a task made runnable wakes an idle worker of its home node
//! first.
//!
//! [`Scheduler::simulated`] runs the same queues and policies with no threads and a clock the
//! caller moves: the caller says which worker runs its next slice ([`Scheduler::step`]), so
//! tests (and policy experiments) see every decision deterministically.
//!
//! Wake-up preemption: a task that starts while woken tasks wait gets [`Config::wake_granularity`]
//! instead of its slice, and a wake-up that finds no idle worker calls [`Config::on_busy_wake`]
//! (the node asks the vCPU that has run longest to stop), so a thread woken by another waits a
//! fraction of a millisecond, not a whole slice of a thread spinning meanwhile.
//!
//! A task's slice is [`Config::slice`] times its weight, so a heavier guest gets more CPU per turn,
//! and every runnable task waits about one round of the others' slices at most (plus [`AGING`]
//! slices of newcomers): a CPU hog cannot starve anyone. The scheduler measures how long each task waited between becoming runnable and running
//! ([`Stats::max_wait`]).

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
    /// When the turn started (the task need not read the clock again to know when it ends).
    pub started: Instant,
    /// The worker running the task.
    pub worker: usize,
    /// The NUMA node of that worker.
    pub node: u32,
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
    /// The slice of a task that starts while woken tasks wait to run (wake-up preemption: a
    /// thread woken by another waits about this long for a worker, not a whole slice of a task
    /// that spins meanwhile).
    pub wake_granularity: Duration,
    /// Called when a parked task is woken and no worker is idle to take it: the place to ask a
    /// running task to end its slice early, which the scheduler cannot do.
    pub on_busy_wake: Option<WakeHook>,
}

/// What [`Config::on_busy_wake`] calls.
#[derive(Clone)]
pub struct WakeHook(pub Arc<dyn Fn() + Send + Sync>);

impl std::fmt::Debug for WakeHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WakeHook")
    }
}

impl Config {
    /// One pinned worker per CPU this process may use, 2 ms slices.
    pub fn detect() -> Config {
        Config {
            topology: Topology::detect(),
            workers: None,
            pin: true,
            slice: Duration::from_millis(2),
            wake_granularity: Duration::from_micros(250),
            on_busy_wake: None,
        }
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
        if !self.cell.state.wake() {
            return;
        }
        self.cell.woken.store(true, Ordering::Relaxed);
        self.shared.woken.fetch_add(1, Ordering::Relaxed);
        if !self.shared.inject(self.cell.clone())
            && let Some(hook) = &self.shared.on_busy_wake
        {
            (hook.0)();
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
    /// Index of its home node in [`Shared::nodes`].
    home: usize,
    /// Queued by a wake-up (counted in [`Shared::woken`]) rather than a yield or spawn.
    woken: AtomicBool,
    /// When the task last became runnable, in nanoseconds since the scheduler started.
    runnable_since: AtomicU64,
}

impl std::fmt::Debug for TaskCell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskCell").field("state", &self.state).field("weight", &self.weight).finish_non_exhaustive()
    }
}

type Queued = Arc<TaskCell>;

/// Where a worker looks for work after its own queue and its node's injector.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Source {
    /// Another worker's queue.
    Worker(usize),
    /// A remote node's injector (by node index).
    Injector(usize),
}

#[derive(Debug)]
struct Shared {
    /// The NUMA nodes the workers run on: their ids, ascending.
    nodes: Vec<u32>,
    /// One injector per node, by node index.
    injectors: Vec<Injector<Queued>>,
    /// Tasks alive per node index, which placement balances.
    homed: Vec<AtomicU64>,
    /// Ties in placement go round.
    next_home: AtomicUsize,
    /// The node index of each worker.
    worker_node: Vec<usize>,
    stealers: Vec<Stealer<Queued>>,
    /// For each worker, the other workers nearest first.
    steal_order: Vec<Vec<usize>>,
    /// For each worker, where it steals: `steal_order` with each remote node's injector before
    /// that node's first worker.
    sources: Vec<Vec<Source>>,
    /// Workers parked or about to park, and their threads.
    idle: Mutex<Vec<usize>>,
    threads: Mutex<Vec<Option<Thread>>>,
    shutdown: AtomicBool,
    slice: Duration,
    wake_granularity: Duration,
    /// Tasks queued by a wake-up that have not run yet.
    woken: AtomicUsize,
    on_busy_wake: Option<WakeHook>,
    clock: Clock,
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

impl Shared {
    fn now_ns(&self) -> u64 {
        self.ns_at(Instant::now())
    }

    /// The scheduler's time at `at` (a simulated scheduler's own clock ignores it): workers read
    /// the host clock once per slice and use that reading for everything the slice needs.
    fn ns_at(&self, at: Instant) -> u64 {
        match &self.clock {
            Clock::Real(epoch) => u64::try_from(at.saturating_duration_since(*epoch).as_nanos()).unwrap_or(u64::MAX),
            Clock::Manual(now) => now.load(Ordering::Relaxed),
        }
    }

    /// Queues a task that ran on `worker` and must run again (it yielded, or was woken while it
    /// ran): at the back of that worker's queue if the task is at home there, else on its home
    /// node's injector. A task alone on its worker runs again next, and no other worker is woken
    /// for it: a lone task stays on its CPU instead of bouncing between workers every slice.
    fn requeue(&self, cell: Queued, worker: usize, local: &Local, now: Instant) {
        self.mark_runnable(&cell, self.ns_at(now));
        let (node, home) = (self.worker_node[worker], cell.home);
        if node != home {
            self.injectors[home].push(cell);
            self.wake_one(home);
            return;
        }
        let alone = local.is_empty() && self.injectors[node].is_empty();
        local.queue.push(cell);
        if !alone {
            self.wake_one(node);
        }
    }

    /// Queues a task that was spawned or woken on its home node's injector, where it goes ahead
    /// of the tasks in the workers' queues (see [`find_task`]); then wakes an idle worker to take
    /// it. False if no worker was idle.
    fn inject(&self, cell: Queued) -> bool {
        self.mark_runnable(&cell, self.now_ns());
        let home = cell.home;
        self.injectors[home].push(cell);
        self.wake_one(home)
    }

    /// Counts `cell` as runnable from `now` (scheduler nanoseconds), for its wait and the gauge.
    fn mark_runnable(&self, cell: &TaskCell, now: u64) {
        cell.runnable_since.store(now, Ordering::Relaxed);
        self.runnable.fetch_add(1, Ordering::Relaxed);
        metrics::gauge!("shoal_scheduler_runnable").increment(1.0);
    }

    /// Unparks one idle worker, one of node `home` if any is idle. Idle workers register before
    /// their last look for work (under the same lock), so a task queued before this call is
    /// either seen by that look or its worker is found here: no wake-up is lost. True if a worker
    /// was idle.
    fn wake_one(&self, home: usize) -> bool {
        let worker = {
            let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
            let at = idle.iter().rposition(|&w| self.worker_node[w] == home).or(idle.len().checked_sub(1));
            at.map(|i| idle.remove(i))
        };
        let Some(w) = worker else { return false };
        if let Some(t) = &self.threads.lock().unwrap_or_else(|e| e.into_inner())[w] {
            t.unpark();
        }
        true
    }

    /// The node index a new task should live on: the given node if the workers run there, else
    /// the one with the fewest tasks (ties taken in turn).
    fn home_for(&self, node: Option<u32>) -> usize {
        if let Some(i) = node.and_then(|n| self.nodes.iter().position(|&id| id == n)) {
            return i;
        }
        let n = self.nodes.len();
        let first = self.next_home.fetch_add(1, Ordering::Relaxed);
        (0..n).map(|k| (first + k) % n).min_by_key(|&i| self.homed[i].load(Ordering::Relaxed)).unwrap_or(0)
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

/// Where the scheduler's time comes from.
#[derive(Debug)]
enum Clock {
    /// Nanoseconds since this instant.
    Real(Instant),
    /// Nanoseconds the caller sets ([`Scheduler::simulated`]).
    Manual(Arc<AtomicU64>),
}

/// A running scheduler; dropping it stops the workers (tasks still queued are dropped).
#[derive(Debug)]
pub struct Scheduler {
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
    /// The workers' queues of a simulated scheduler, which has no worker threads.
    simulated: Option<Mutex<Vec<Local>>>,
}

impl Scheduler {
    /// Starts the workers.
    pub fn start(config: Config) -> std::io::Result<Scheduler> {
        let (shared, queues, cpus) = Scheduler::build(&config, Clock::Real(Instant::now()));
        let mut workers = Vec::with_capacity(queues.len());
        for (index, local) in queues.into_iter().enumerate() {
            let for_worker = shared.clone();
            let cpu = if config.pin { cpus.get(index).copied() } else { None };
            let handle = thread::Builder::new().name(format!("shoal-worker-{index}")).spawn(move || {
                if let Some(cpu) = cpu
                    && let Err(e) = pin_to(cpu)
                {
                    tracing::warn!("worker {index}: cannot pin to CPU {cpu}: {e}");
                }
                run_worker(&for_worker, index, local);
            })?;
            shared.threads.lock().unwrap_or_else(|e| e.into_inner())[index] = Some(handle.thread().clone());
            workers.push(handle);
        }
        // A worker that looked for work before its thread handle was recorded may have parked
        // unseen; nudge them all once.
        for w in &workers {
            w.thread().unpark();
        }
        Ok(Scheduler { shared, workers, simulated: None })
    }

    /// A scheduler with the workers `config` gives but no threads, whose clock reads `now`
    /// (nanoseconds, set by the caller). Nothing runs until [`Scheduler::step`] runs a slice.
    pub fn simulated(config: &Config, now: Arc<AtomicU64>) -> Scheduler {
        let (shared, queues, _) = Scheduler::build(config, Clock::Manual(now));
        Scheduler { shared, workers: Vec::new(), simulated: Some(Mutex::new(queues)) }
    }

    /// Simulated schedulers only: worker `worker` looks for a task as its thread would and runs
    /// one slice of it; what the task asked for, or `None` if the worker found nothing (and
    /// would park).
    ///
    /// # Panics
    /// On a scheduler with threads, or a worker index out of range.
    pub fn step(&self, worker: usize) -> Option<Step> {
        let queues = self.simulated.as_ref().expect("step drives a simulated scheduler");
        let mut queues = queues.lock().unwrap_or_else(|e| e.into_inner());
        let local = &mut queues[worker];
        let now = Instant::now();
        find_task(&self.shared, worker, local, now).map(|cell| run_slice(&self.shared, worker, cell, local, now).0)
    }

    /// The shared state, the workers' queues and the CPU of each worker.
    fn build(config: &Config, clock: Clock) -> (Arc<Shared>, Vec<Local>, Vec<u32>) {
        let mut cpus: Vec<u32> = config.topology.cpus.iter().map(|c| c.id).collect();
        if let Some(n) = config.workers {
            cpus.truncate(n.max(1));
        }
        let n = cpus.len().max(1);
        let queues: Vec<Local> = (0..n).map(|_| Local::new()).collect();
        let steal_order: Vec<Vec<usize>> = (0..n)
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
        let node_of = |w: usize| cpus.get(w).and_then(|&c| config.topology.cpu(c)).map_or(0, |c| c.node);
        let mut nodes: Vec<u32> = (0..n).map(node_of).collect();
        nodes.sort_unstable();
        nodes.dedup();
        let worker_node: Vec<usize> =
            (0..n).map(|w| nodes.iter().position(|&id| id == node_of(w)).unwrap_or(0)).collect();
        let sources = steal_order
            .iter()
            .enumerate()
            .map(|(w, order)| {
                let mut seen = vec![false; nodes.len()];
                seen[worker_node[w]] = true;
                let mut sources = Vec::new();
                for &o in order {
                    let node = worker_node[o];
                    if !seen[node] {
                        seen[node] = true;
                        sources.push(Source::Injector(node));
                    }
                    sources.push(Source::Worker(o));
                }
                sources
            })
            .collect();
        let shared = Arc::new(Shared {
            injectors: nodes.iter().map(|_| Injector::new()).collect(),
            homed: nodes.iter().map(|_| AtomicU64::new(0)).collect(),
            next_home: AtomicUsize::new(0),
            nodes,
            worker_node,
            stealers: queues.iter().map(|l| l.queue.stealer()).collect(),
            steal_order,
            sources,
            idle: Mutex::new(Vec::new()),
            threads: Mutex::new(vec![None; n]),
            shutdown: AtomicBool::new(false),
            slice: config.slice,
            wake_granularity: config.wake_granularity,
            woken: AtomicUsize::new(0),
            on_busy_wake: config.on_busy_wake.clone(),
            clock,
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
        (shared, queues, cpus)
    }

    /// Number of workers.
    pub fn workers(&self) -> usize {
        self.shared.stealers.len()
    }

    /// The NUMA node a new guest should live on (its memory and its vCPUs): the least loaded
    /// node the workers run on, or `None` when they all run on one node, where placement has
    /// nothing to choose.
    pub fn place(&self) -> Option<u32> {
        (self.shared.nodes.len() > 1).then(|| self.shared.nodes[self.shared.home_for(None)])
    }

    /// Queues `task` with `weight` (its slices are `weight` times as long; 0 counts as 1) on
    /// the least loaded NUMA node.
    pub fn spawn(&self, task: Box<dyn Task>, weight: u32) -> TaskHandle {
        self.spawn_on(task, weight, None)
    }

    /// Queues `task` with `weight`, at home on NUMA node `node` (see [`Scheduler::place`]; the
    /// least loaded node when `None` or when no worker runs on it). It runs there while that
    /// node's workers keep up, and elsewhere when they do not.
    pub fn spawn_on(&self, task: Box<dyn Task>, weight: u32, node: Option<u32>) -> TaskHandle {
        let home = self.shared.home_for(node);
        self.shared.homed[home].fetch_add(1, Ordering::Relaxed);
        let cell = Arc::new(TaskCell {
            state: State::queued(),
            task: Mutex::new(Some(task)),
            weight: weight.max(1),
            home,
            woken: AtomicBool::new(false),
            runnable_since: AtomicU64::new(0),
        });
        *self.shared.alive.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        self.shared.spawned.fetch_add(1, Ordering::Relaxed);
        self.shared.inject(cell.clone());
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

fn run_worker(shared: &Arc<Shared>, index: usize, mut local: Local) {
    // The end of one slice is the start of the next look for work: one clock read per slice.
    let mut now = Instant::now();
    while !shared.shutdown.load(Ordering::Acquire) {
        match find_task(shared, index, &mut local, now) {
            Some(cell) => now = run_slice(shared, index, cell, &local, now).1,
            None => {
                park(shared, index, &local);
                now = Instant::now();
            }
        }
    }
}

/// A worker's own run queue, and the task at its head when the worker let newcomers go first.
#[derive(Debug)]
struct Local {
    queue: Worker<Queued>,
    /// Taken from the head of `queue`, and next to run once it has waited [`AGING`] slices.
    held: Option<Queued>,
}

impl Local {
    fn new() -> Local {
        Local { queue: Worker::new_fifo(), held: None }
    }

    fn is_empty(&self) -> bool {
        self.held.is_none() && self.queue.is_empty()
    }
}

/// How many weight-1 slices a queued task may wait while spawned or woken tasks run ahead of it.
const AGING: u32 = 8;

/// The next task for worker `index`: spawned or woken tasks (its node's injector) first, unless the head of its own queue has waited [`AGING`] slices (then they join the back
/// of the queue); then its own queue; then the other workers' queues and remote nodes'
/// injectors, nearest first.
///
/// Newcomers first is what makes short guests fast (most finish within their first slice, and
/// a woken vCPU usually runs briefly and waits again); the aging bound is what keeps a steady
/// stream of them from holding back the guests already queued.
fn find_task(shared: &Shared, index: usize, local: &mut Local, now: Instant) -> Option<Queued> {
    let injector = &shared.injectors[shared.worker_node[index]];
    let head = local.held.take().or_else(|| local.queue.pop());
    if let Some(head) = head {
        let waited = shared.ns_at(now).saturating_sub(head.runnable_since.load(Ordering::Relaxed));
        let due = waited >= u64::try_from((shared.slice * AGING).as_nanos()).unwrap_or(u64::MAX);
        if !injector.is_empty() {
            if !due && let Some(cell) = steal_from(|| injector.steal_batch_and_pop(&local.queue)) {
                local.held = Some(head);
                return Some(cell);
            }
            // The newcomers get in line behind the queued tasks.
            while let Steal::Retry = injector.steal_batch(&local.queue) {
                std::hint::spin_loop();
            }
        }
        return Some(head);
    }
    if let Some(cell) = steal_from(|| injector.steal_batch_and_pop(&local.queue)) {
        return Some(cell);
    }
    for &source in &shared.sources[index] {
        // From another node's injector only one task: the rest stay at home for its workers.
        let stolen = match source {
            Source::Worker(other) => steal_from(|| shared.stealers[other].steal_batch_and_pop(&local.queue)),
            Source::Injector(node) => steal_from(|| shared.injectors[node].steal()),
        };
        if let Some(cell) = stolen {
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

/// Runs one slice of `cell` on `worker` and queues, parks or retires it as it asks.
///
/// `started` is the time now; the slice's end time is returned with its step.
fn run_slice(shared: &Arc<Shared>, worker: usize, cell: Queued, local: &Local, started: Instant) -> (Step, Instant) {
    shared.runnable.fetch_sub(1, Ordering::Relaxed);
    metrics::gauge!("shoal_scheduler_runnable").decrement(1.0);
    let waited = shared.ns_at(started).saturating_sub(cell.runnable_since.load(Ordering::Relaxed));
    shared.max_wait_ns.fetch_max(waited, Ordering::Relaxed);
    metrics::histogram!("shoal_scheduler_wait_seconds").record(waited as f64 / 1e9);
    cell.state.start();
    let was_woken = cell.woken.swap(false, Ordering::Relaxed);
    if was_woken {
        shared.woken.fetch_sub(1, Ordering::Relaxed);
    }
    let mut slice = shared.slice * cell.weight;
    if !was_woken && shared.woken.load(Ordering::Relaxed) > 0 {
        slice = slice.min(shared.wake_granularity);
    }
    let node = shared.nodes[shared.worker_node[worker]];
    let step = {
        let mut task = cell.task.lock().unwrap_or_else(|e| e.into_inner());
        let task = task.as_mut().expect("only a finished task has given up its work, and it is never queued");
        let handle = TaskHandle { cell: cell.clone(), shared: shared.clone() };
        task.run(&Context { slice, started, worker, node, handle: &handle })
    };
    let ended = Instant::now();
    shared.slices.fetch_add(1, Ordering::Relaxed);
    metrics::histogram!("shoal_scheduler_slice_seconds").record((ended - started).as_secs_f64());
    match step {
        Step::Yield => {
            cell.state.requeue();
            shared.requeue(cell, worker, local, ended);
        }
        Step::Park => {
            if !cell.state.park() {
                shared.requeue(cell, worker, local, ended);
            }
        }
        Step::Done => {
            cell.state.finish();
            // Drop the task now (its guest's memory), not when the last handle goes.
            cell.task.lock().unwrap_or_else(|e| e.into_inner()).take();
            shared.homed[cell.home].fetch_sub(1, Ordering::Relaxed);
            shared.finished();
            // Dropping a guest's memory takes a while: the next look for work is later.
            return (step, Instant::now());
        }
    }
    (step, ended)
}

/// Parks worker `index` until work is queued (or shutdown). It registers as idle first and then
/// looks once more, so work queued meanwhile is not slept through.
fn park(shared: &Shared, index: usize, local: &Local) {
    shared.idle.lock().unwrap_or_else(|e| e.into_inner()).push(index);
    let nothing = local.is_empty()
        && shared.injectors.iter().all(Injector::is_empty)
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
