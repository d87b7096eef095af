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
//! With a disk cache, the compiler looks a region up before compiling it, by its entry
//! (`object`'s entry key). An object compiled from other blocks than the region asked for (which
//! blocks a region takes depends on what ran before its entry got hot, so two runs of a program
//! seldom form every region alike) sends the vCPU its block list instead of code: the vCPU forms
//! the region again from those blocks and asks once more, and this time the object's code is used
//! if the guest bytes are the ones it was compiled from (its region key), and replaced if not.
//!
//! When a guest has exited, the process that ran it may give the compiler a little time to
//! finish the regions still queued ([`JitService::drain`]), so that they are in the disk cache
//! for the next run instead of compiled there.
//!
//! The queue is not first come, first served. Regions get hot in bursts (a program's start makes
//! hundreds within milliseconds), and a region's turn matters most while its code runs: the vCPU
//! keeps counting the runs of each waiting region's entry, and the compiler takes the region
//! with the most runs per millisecond waited (ties in arrival order).

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError, mpsc};
use std::time::{Duration, Instant};

use super::cache::DiskCache;
use super::object::CodeObject;
use super::region::Region;
use super::{CompileError, Compiler, MachineCode, Trampoline, object};

/// A region to compile.
pub(crate) struct Job {
    pub region: Region,
    /// Whether the region was formed from a cached object's block list ([`Answer::Reshape`]):
    /// it is then compiled as it is, whatever the cache holds.
    pub reshaped: bool,
    /// The requester's flush epoch when the region was formed.
    pub epoch: u64,
    pub reply: Arc<Inbox>,
    /// Runs of the region's entry since it was queued (the requester counts them).
    heat: Arc<AtomicU32>,
    queued: Instant,
}

impl Job {
    pub fn new(region: Region, reshaped: bool, epoch: u64, reply: Arc<Inbox>, heat: Arc<AtomicU32>) -> Job {
        Job { region, reshaped, epoch, reply, heat, queued: Instant::now() }
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
    /// The code, the blocks to form the region from instead, or why there is no code.
    pub answer: Answer,
    /// CPU time the compiler thread spent on it.
    pub time: Duration,
}

/// What the compiler thread makes of a [`Job`].
#[derive(Debug)]
pub(crate) enum Answer {
    /// Machine code for the region: compiled, or (`cached`) from the disk cache.
    Code { code: MachineCode, cached: bool },
    /// The disk cache holds code for the region's entry compiled from these blocks: form the
    /// region from them and ask again (a `reshaped` job).
    Reshape(Vec<u64>),
    /// No code, and why.
    Failed(CompileError),
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
    backlog: Arc<Backlog>,
    /// Whether compiled code is written to a disk cache.
    caching: bool,
}

/// Jobs submitted and not yet answered, and the regions compiled (not loaded) so far with the
/// compiler's CPU time on them.
#[derive(Debug, Default)]
struct Backlog {
    state: Mutex<BacklogState>,
    empty: Condvar,
}

#[derive(Debug, Default)]
struct BacklogState {
    jobs: usize,
    compiled: u64,
    compile_time: Duration,
}

/// What [`JitService::drain`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Drained {
    /// Regions compiled meanwhile (written to the disk cache).
    pub regions: u64,
    /// The compiler's CPU time on them.
    pub compile_time: Duration,
    /// Jobs still queued when it stopped waiting.
    pub left: usize,
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
        let caching = disk.is_some();
        let backlog = Arc::new(Backlog::default());
        let counts = backlog.clone();
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
                    let answer = machine_code(&mut compiler, disk.as_ref(), &fingerprint, &job);
                    let region = &job.region;
                    let reply = Compiled {
                        entry: region.entry,
                        epoch: job.epoch,
                        guest_insts: region.instruction_count(),
                        answer,
                        time: thread_cpu_time().saturating_sub(start),
                    };
                    let compiled = matches!(reply.answer, Answer::Code { cached: false, .. });
                    let time = reply.time;
                    // The vCPU may have exited meanwhile; its answer is then not needed.
                    job.reply.put(reply);
                    let mut state = counts.state.lock().unwrap_or_else(PoisonError::into_inner);
                    state.jobs -= 1;
                    if compiled {
                        state.compiled += 1;
                        state.compile_time += time;
                    }
                    if state.jobs == 0 {
                        counts.empty.notify_all();
                    }
                }
            })
            .map_err(CompileError::Memory)?;
        Ok(JitService { jobs, trampoline, backlog, caching })
    }

    /// Queues a region for compilation. False if the compiler thread is gone.
    pub(crate) fn submit(&self, job: Job) -> bool {
        self.backlog.state.lock().unwrap_or_else(PoisonError::into_inner).jobs += 1;
        let sent = self.jobs.send(job).is_ok();
        if !sent {
            self.backlog.state.lock().unwrap_or_else(PoisonError::into_inner).jobs -= 1;
        }
        sent
    }

    /// With a disk cache, waits up to `within` for the compiler to finish the jobs queued (the
    /// hottest first), so that their code is in the cache for the next run even though no vCPU
    /// is left to run it; says what it compiled meanwhile. Without a disk cache it returns at
    /// once: the work would be lost.
    pub fn drain(&self, within: Duration) -> Drained {
        let state = self.backlog.state.lock().unwrap_or_else(PoisonError::into_inner);
        if !self.caching || state.jobs == 0 {
            return Drained { left: state.jobs, ..Drained::default() };
        }
        let (compiled, compile_time) = (state.compiled, state.compile_time);
        let (state, _) = self
            .backlog
            .empty
            .wait_timeout_while(state, within, |s| s.jobs > 0)
            .unwrap_or_else(PoisonError::into_inner);
        Drained {
            regions: state.compiled - compiled,
            compile_time: state.compile_time.saturating_sub(compile_time),
            left: state.jobs,
        }
    }

    /// The entry trampoline for code this service compiles.
    pub(crate) fn trampoline(&self) -> &Trampoline {
        &self.trampoline
    }
}

/// The machine code of the job's region: from the disk cache if it holds code compiled from
/// exactly this guest code, else compiled (and written to the cache); or, when the cache holds
/// code for the entry formed from other blocks, those blocks.
fn machine_code(compiler: &mut Compiler, disk: Option<&DiskCache>, fingerprint: &[u8; 32], job: &Job) -> Answer {
    let region = &job.region;
    // Every region has its entry block.
    let filed = disk.zip(region.blocks.get(&region.entry)).map(|(disk, first)| {
        let key = object::entry_key(fingerprint, region.entry, &first.raw);
        let blocks = region.blocks.iter().map(|(&pc, b)| (pc, b.raw.as_slice()));
        (disk, key, object::region_key(fingerprint, region.entry, blocks))
    });
    if let Some((disk, key, region_key)) = &filed
        && let Some(obj) = disk.get(key)
    {
        if obj.blocks.iter().eq(region.blocks.keys()) {
            if obj.region == *region_key {
                return Answer::Code { code: obj.code, cached: true };
            }
        } else if !job.reshaped {
            return Answer::Reshape(obj.blocks);
        }
    }
    // A compiler bug must cost one region, not the compiler thread.
    let compiled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| compiler.compile_region(region)))
        .unwrap_or_else(|_| {
            *compiler = Compiler::with_model(compiler.model()).expect("the compiler was set up once already");
            Err(CompileError::Codegen("the code generator panicked".into()))
        });
    let code = match compiled {
        Ok(code) => code,
        Err(e) => return Answer::Failed(e),
    };
    let Some((disk, key, region_key)) = filed else { return Answer::Code { code, cached: false } };
    let obj = CodeObject {
        key,
        region: region_key,
        entry: region.entry,
        guest_insts: u32::try_from(region.instruction_count()).unwrap_or(u32::MAX),
        blocks: region.blocks.keys().copied().collect(),
        code,
    };
    disk.put(&obj);
    Answer::Code { code: obj.code, cached: false }
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
        let mut job = Job::new(region, false, 0, Arc::default(), Arc::new(AtomicU32::new(heat)));
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
