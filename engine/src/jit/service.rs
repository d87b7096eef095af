//! The compiler thread: vCPUs hand it regions and carry on interpreting; it sends the machine
//! code back and the vCPU installs it between two blocks.
//!
//! ```text
//!   vCPU thread                          compiler thread
//!   block gets hot → form region ──Job──▶ Cranelift → bytes
//!   keeps interpreting                    │
//!   between blocks: poll replies ◀──Compiled (entry, epoch, bytes)
//!   install into its arena + table
//! ```
//!
//! One service serves every vCPU of a process (and of the processes it forks and execs). A reply
//! carries the requester's flush epoch from when its region was formed; the vCPU drops replies
//! from an older epoch, so code formed before an invalidation (or an execve) never runs.
//!
//! The queue is not first come, first served. Regions get hot in bursts (a program's start makes
//! hundreds within milliseconds), and a region's turn matters most while its code runs: the vCPU
//! keeps counting the runs of each waiting region's entry, and the compiler takes the region
//! with the most runs per millisecond waited (ties in arrival order).

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError, mpsc};
use std::time::{Duration, Instant};

use super::cache::DiskCache;
use super::region::Region;
use super::{CompileError, Compiler, Trampoline, object};

/// A region to compile.
pub(crate) struct Job {
    pub region: Region,
    /// The requester's flush epoch when the region was formed.
    pub epoch: u64,
    pub reply: Arc<Inbox>,
    /// Runs of the region's entry since it was queued (the requester counts them).
    heat: Arc<AtomicU32>,
    queued: Instant,
}

impl Job {
    pub fn new(region: Region, epoch: u64, reply: Arc<Inbox>, heat: Arc<AtomicU32>) -> Job {
        Job { region, epoch, reply, heat, queued: Instant::now() }
    }

    /// Runs of the entry per millisecond waited, scaled to stay an integer.
    fn rate(&self, now: Instant) -> u64 {
        let waited_us = u64::try_from(now.duration_since(self.queued).as_micros()).unwrap_or(u64::MAX).max(1);
        u64::from(self.heat.load(Ordering::Relaxed)) * 1_000_000 / waited_us
    }
}

/// The index of the job to compile next in `waiting` (in arrival order): the highest rate, the
/// earliest of equals.
fn hottest(waiting: &[Job], now: Instant) -> usize {
    let mut best = 0;
    let mut best_rate = 0;
    for (i, job) in waiting.iter().enumerate() {
        let rate = job.rate(now);
        if i == 0 || rate > best_rate {
            (best, best_rate) = (i, rate);
        }
    }
    best
}

/// The compiler's answer to a [`Job`].
#[derive(Debug)]
pub(crate) struct Compiled {
    /// Guest pc of the region's entry.
    pub entry: u64,
    /// The requester's flush epoch when the region was formed.
    pub epoch: u64,
    /// Guest instructions the region covers.
    pub guest_insts: usize,
    /// Start pcs of the region's blocks.
    pub blocks: Vec<u64>,
    /// The machine code, or why there is none.
    pub code: Result<super::MachineCode, CompileError>,
    /// CPU time the compiler thread spent on it.
    pub time: Duration,
    /// Whether the code came from the disk cache rather than the compiler.
    pub cached: bool,
}

/// Where the compiler leaves a vCPU's finished regions. Polling it costs the vCPU one relaxed
/// load while nothing is ready.
#[derive(Debug, Default)]
pub(crate) struct Inbox {
    ready: AtomicBool,
    items: Mutex<Vec<Compiled>>,
    arrived: Condvar,
}

impl Inbox {
    fn put(&self, done: Compiled) {
        self.items.lock().unwrap_or_else(PoisonError::into_inner).push(done);
        self.ready.store(true, Ordering::Release);
        self.arrived.notify_one();
    }

    /// Whether something may have arrived (one relaxed load).
    #[inline]
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    /// Whatever has arrived.
    pub fn take(&self) -> Vec<Compiled> {
        self.ready.store(false, Ordering::Relaxed);
        std::mem::take(&mut *self.items.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Waits until something arrives, then takes it all.
    pub fn wait(&self) -> Vec<Compiled> {
        let mut items = self.items.lock().unwrap_or_else(PoisonError::into_inner);
        while items.is_empty() {
            items = self.arrived.wait(items).unwrap_or_else(PoisonError::into_inner);
        }
        self.ready.store(false, Ordering::Relaxed);
        std::mem::take(&mut *items)
    }
}

/// A compiler thread shared by the vCPUs of a process.
#[derive(Debug)]
pub struct JitService {
    jobs: mpsc::Sender<Job>,
    trampoline: Trampoline,
}

impl JitService {
    /// Starts the compiler thread, or fails if Cranelift does not support this host. With
    /// `disk`, regions are looked up there before compiling and written there after.
    pub fn start(disk: Option<DiskCache>) -> Result<JitService, CompileError> {
        Self::start_with(disk, Compiler::new()?)
    }

    /// As [`Self::start`], compiling code for memory model `model`.
    pub fn start_with_model(disk: Option<DiskCache>, model: super::MemoryModel) -> Result<JitService, CompileError> {
        Self::start_with(disk, Compiler::with_model(model)?)
    }

    fn start_with(disk: Option<DiskCache>, mut compiler: Compiler) -> Result<JitService, CompileError> {
        let trampoline = compiler.trampoline()?;
        let fingerprint = object::fingerprint(&*compiler.isa, compiler.model());
        let (jobs, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("shoal-jit".into())
            .spawn(move || {
                let mut waiting: Vec<Job> = Vec::new();
                loop {
                    if waiting.is_empty() {
                        // Ends when every sender (every vCPU and the service) is gone.
                        let Ok(job) = rx.recv() else { break };
                        waiting.push(job);
                    }
                    waiting.extend(rx.try_iter());
                    let job = waiting.remove(hottest(&waiting, Instant::now()));
                    let start = thread_cpu_time();
                    let region = &job.region;
                    let (code, cached) = machine_code(&mut compiler, disk.as_ref(), &fingerprint, region);
                    let reply = Compiled {
                        entry: region.entry,
                        epoch: job.epoch,
                        guest_insts: region.instruction_count(),
                        blocks: region.blocks.keys().copied().collect(),
                        code,
                        time: thread_cpu_time().saturating_sub(start),
                        cached,
                    };
                    // The vCPU may have exited meanwhile; its answer is then not needed.
                    job.reply.put(reply);
                }
            })
            .map_err(CompileError::Memory)?;
        Ok(JitService { jobs, trampoline })
    }

    /// Queues a region for compilation. False if the compiler thread is gone.
    pub(crate) fn submit(&self, job: Job) -> bool {
        self.jobs.send(job).is_ok()
    }

    /// The entry trampoline for code this service compiles.
    pub(crate) fn trampoline(&self) -> &Trampoline {
        &self.trampoline
    }
}

/// The machine code of `region`, from the disk cache if it has it (then `true`), else compiled
/// (and written to the cache).
fn machine_code(
    compiler: &mut Compiler,
    disk: Option<&DiskCache>,
    fingerprint: &[u8; 32],
    region: &Region,
) -> (Result<super::MachineCode, CompileError>, bool) {
    let key = disk.map(|_| {
        let blocks = region.blocks.iter().map(|(&pc, b)| (pc, b.raw.as_slice()));
        object::region_key(fingerprint, region.entry, blocks)
    });
    if let (Some(disk), Some(key)) = (disk, &key)
        && let Some(obj) = disk.get(key)
    {
        return (Ok(obj.code), true);
    }
    // A compiler bug must cost one region, not the compiler thread.
    let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| compiler.compile_region(region)))
        .unwrap_or_else(|_| {
            *compiler = Compiler::with_model(compiler.model()).expect("the compiler was set up once already");
            Err(CompileError::Codegen("the code generator panicked".into()))
        });
    if let (Some(disk), Some(key), Ok(code)) = (disk, &key, &code) {
        disk.put(key, region.entry, u32::try_from(region.instruction_count()).unwrap_or(u32::MAX), code);
    }
    (code, false)
}

/// CPU time the calling thread has used (what a compile costs, however busy the host is).
fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid out-parameter; this clock exists on every Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(u64::try_from(ts.tv_sec).unwrap_or(0), u32::try_from(ts.tv_nsec).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(entry: u64, heat: u32, waited_ms: u64, now: Instant) -> Job {
        let region = Region { entry, blocks: Default::default() };
        let mut job = Job::new(region, 0, Arc::default(), Arc::new(AtomicU32::new(heat)));
        job.queued = now - Duration::from_millis(waited_ms);
        job
    }

    #[test]
    fn the_hottest_waiting_region_goes_first() {
        let now = Instant::now();
        // Nothing ran since queued: arrival order.
        let cold = [job(1, 0, 9, now), job(2, 0, 5, now), job(3, 0, 1, now)];
        assert_eq!(hottest(&cold, now), 0);
        // Runs per millisecond waited, not runs: 40 in 2 ms beats 100 in 10 ms.
        let warm = [job(1, 0, 20, now), job(2, 100, 10, now), job(3, 40, 2, now)];
        assert_eq!(hottest(&warm, now), 2);
        // Equal rates: the earlier arrival.
        let tied = [job(1, 10, 10, now), job(2, 20, 20, now)];
        assert_eq!(hottest(&tied, now), 0);
    }
}
