//! The Linux user ABI, as seen by riscv64 guests.
//!
//! A [`Kernel`] is one guest "machine": a process table, the file-system view (sysroot or confined
//! root) and options. Guest processes live inside the host process: `fork` copies an address
//! space, `execve` loads a new one, `wait4` parks until a child changes state; no host process is
//! ever created. Each guest thread is a [`Vcpu`], run a slice at a time by the [`Executor`] of the
//! [`Runtime`] the machine belongs to.
//!
//! A guest thread that must wait (futex, sleep, a descriptor that is not ready, a child) parks its
//! vCPU instead of blocking a host thread (see `wait.rs`). Sending a guest signal to a thread sets
//! its `attention` word (polled by the interpreter between blocks and by compiled code at the head
//! of every loop) and wakes its vCPU if it is parked.

mod errno;
mod fd;
mod fs;
mod futex;
mod misc;
mod mm;
mod net;
mod preempt;
mod procfs;
mod reactor;
pub mod signal;
mod syscall;
mod task;
mod thread;
mod timer;
mod vcpu;
mod wait;

use std::collections::HashMap;
use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, Weak};

pub use errno::Errno;
use fd::FdTable;
pub use preempt::{GRANULARITY as WAKE_GRANULARITY, make_room};
use signal::{SigAction, SigQueue};
pub use thread::{prepare_host_thread, with_host_signals_blocked};
pub use vcpu::{Executor, Poll, ThreadPerVcpu, Vcpu};
use wait::Event;

use crate::mem::AddressSpace;

/// Options of a guest machine.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// Like qemu's `-L`: absolute paths are looked up under this directory first.
    pub sysroot: Option<PathBuf>,
    /// Confines the guest to this directory: it is the guest's `/`, and nothing outside is reachable.
    pub root: Option<PathBuf>,
    /// Log every system call to stderr.
    pub strace: bool,
    /// Which execution tiers run guest code (the JIT tiers only where the [`Runtime`] has a
    /// compiler).
    pub engine: crate::interp::Engine,
    /// Bound on each guest thread's compiled code in memory (default
    /// [`crate::jit::DEFAULT_ARENA_BYTES`]).
    pub jit_memory: Option<usize>,
    /// Scheduling weight of the guest's threads: a weight-2 guest gets twice the CPU of a weight-1
    /// one when they compete (0 counts as 1).
    pub weight: u32,
    /// What the first process gets as stdin, stdout and stderr.
    pub stdio: Stdio,
    /// Cap, in bytes, on the memory all of the guest's processes map together (a cgroup's limit,
    /// counted as RLIMIT_AS counts): past it, mmap, brk and fork fail with ENOMEM. The guest sees
    /// it as its RLIMIT_AS hard limit.
    pub memory_limit: Option<u64>,
    /// The NUMA node the guest's threads run on and its memory comes from (preferred, not
    /// required: another node's pages when this one is full).
    pub numa_node: Option<u32>,
}

/// The standard streams of a guest's first process.
#[derive(Debug, Clone, Default)]
pub enum Stdio {
    /// This process's own stdin, stdout and stderr (as qemu-user passes them on).
    #[default]
    Inherit,
    /// `/dev/null` for all three.
    Null,
    /// These host files as stdin, stdout and stderr (each is duplicated, so the caller keeps
    /// its own).
    Files(Arc<[std::os::fd::OwnedFd; 3]>),
}

/// What the guest machines of one host process share: the executor that runs their vCPUs and
/// the JIT tier's compiler thread and code cache.
#[derive(Debug)]
pub struct Runtime {
    executor: Arc<dyn Executor>,
    jit: Option<Arc<crate::jit::JitService>>,
}

impl Runtime {
    /// A runtime whose vCPUs `executor` runs. With `jit`, compiled code is produced by one
    /// compiler thread (and kept in `code_cache` between runs); without it, or when the JIT
    /// cannot run on this host (a warning says why), guests are interpreted.
    pub fn new(
        executor: Arc<dyn Executor>,
        jit: bool,
        code_cache: Option<&crate::jit::cache::CodeCacheConfig>,
    ) -> Arc<Runtime> {
        thread::install_host_handlers();
        misc::raise_host_fd_limit();
        // Every vCPU has large tables that start zeroed and are mostly never written (the JIT's
        // region table, 256 KiB). glibc raises its mmap threshold as large blocks are freed and
        // then serves them from the heap, where calloc must write every byte: pin the threshold
        // so that they stay fresh, lazily committed mappings.
        // SAFETY: mallopt changes an allocator tunable; it has no memory arguments.
        unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024) };
        let jit = if jit {
            crate::jit::JitService::start(code_cache.and_then(|c| {
                c.open().map_err(|e| tracing::warn!("code cache {} unusable: {e}", c.dir.display())).ok()
            }))
            .map_err(|e| tracing::warn!("JIT unavailable, interpreting only: {e}"))
            .ok()
            .map(Arc::new)
        } else {
            None
        };
        Arc::new(Runtime { executor, jit })
    }

    /// Gives the compiler up to `within` to finish the regions still queued, for the code cache
    /// (see [`crate::jit::JitService::drain`]); for a process about to exit after its guests.
    pub fn drain_compiles(&self, within: std::time::Duration) -> crate::jit::Drained {
        self.jit.as_ref().map_or_else(crate::jit::Drained::default, |jit| jit.drain(within))
    }
}

/// How a guest process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// `exit(code)`.
    Exited(u8),
    /// Killed by a signal.
    Signaled {
        /// The signal number.
        signal: u8,
        /// Whether a core dump would have been written.
        core: bool,
    },
}

impl ExitStatus {
    /// The status a shell would report: the code, or 128 + signal.
    pub fn code(self) -> i32 {
        match self {
            ExitStatus::Exited(c) => i32::from(c),
            ExitStatus::Signaled { signal, .. } => 128 + i32::from(signal),
        }
    }

    /// The `wait4` status word.
    pub fn wait_status(self) -> i32 {
        match self {
            ExitStatus::Exited(c) => i32::from(c) << 8,
            ExitStatus::Signaled { signal, core } => i32::from(signal) | if core { 0x80 } else { 0 },
        }
    }
}

/// Why a program could not be started at all.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The program file could not be opened.
    #[error("{path}")]
    Open {
        /// The program path.
        path: String,
        /// The host error.
        #[source]
        source: std::io::Error,
    },
    /// The program could not be loaded.
    #[error("{path}")]
    Load {
        /// The program path.
        path: String,
        /// What went wrong.
        #[source]
        source: crate::loader::LoaderError,
    },
    /// The guest address space could not be created.
    #[error("cannot create guest address space: {0}")]
    Memory(#[source] crate::mem::MemError),
    /// The configured root or sysroot is unusable.
    #[error("{path}")]
    Root {
        /// The directory.
        path: String,
        /// The host error.
        #[source]
        source: std::io::Error,
    },
}

/// Per-thread state shared with other threads (for signalling and joining).
#[derive(Debug)]
pub(crate) struct ThreadShared {
    pub tid: i32,
    /// Non-zero when the thread must stop running guest code and look at its state.
    pub attention: AtomicU32,
    /// Set with `attention` when the thread's slice was ended early for another vCPU.
    pub preempted: std::sync::atomic::AtomicBool,
    /// Set while a worker runs the thread (guest code or a system call for it).
    pub running: std::sync::atomic::AtomicBool,
    /// Signals blocked by this thread (bit `n-1` for signal `n`).
    pub blocked: AtomicU64,
    /// Signals sent to this thread.
    pub pending: Mutex<SigQueue>,
    /// Wakes the thread's vCPU when it is parked.
    pub waker: Mutex<Option<std::task::Waker>>,
    /// Set when the thread must exit (exit_group, fatal signal, execve by another thread).
    pub killed: std::sync::atomic::AtomicBool,
    /// The alternate signal stack.
    pub altstack: Mutex<signal::AltStack>,
    /// The mask to restore after a handler that interrupted rt_sigsuspend.
    pub saved_mask: Mutex<Option<u64>>,
    /// CLONE_CHILD_CLEARTID / set_tid_address: cleared and woken at thread exit.
    pub clear_child_tid: AtomicU64,
    /// set_robust_list head.
    pub robust_list: AtomicU64,
}

impl ThreadShared {
    fn new(tid: i32, blocked: u64) -> Arc<Self> {
        Arc::new(ThreadShared {
            tid,
            attention: AtomicU32::new(0),
            preempted: std::sync::atomic::AtomicBool::new(false),
            running: std::sync::atomic::AtomicBool::new(false),
            blocked: AtomicU64::new(blocked),
            pending: Mutex::new(SigQueue::default()),
            waker: Mutex::new(None),
            killed: std::sync::atomic::AtomicBool::new(false),
            altstack: Mutex::new(signal::AltStack::default()),
            saved_mask: Mutex::new(None),
            clear_child_tid: AtomicU64::new(0),
            robust_list: AtomicU64::new(0),
        })
    }

    /// Makes the thread look at its state soon: compiled code and the interpreter see
    /// `attention`, and a parked vCPU is woken.
    pub fn kick(&self) {
        self.attention.store(1, Ordering::Release);
        if let Some(w) = lock(&self.waker).as_ref() {
            w.wake_by_ref();
        }
    }

    /// The waker [`kick`](Self::kick) uses from now on.
    pub fn set_waker(&self, waker: &std::task::Waker) {
        let mut slot = lock(&self.waker);
        if !slot.as_ref().is_some_and(|w| w.will_wake(waker)) {
            *slot = Some(waker.clone());
        }
    }

    pub fn clear_waker(&self) {
        lock(&self.waker).take();
    }
}

/// Process state that changes over its life.
#[derive(Debug, Default)]
pub(crate) struct ProcState {
    /// Set once every thread is gone (a zombie until reaped).
    pub exit: Option<ExitStatus>,
    /// The status to report once the last thread is gone (exit_group or fatal signal).
    pub exiting: Option<ExitStatus>,
    /// Live threads.
    pub threads: Vec<Arc<ThreadShared>>,
    /// Children (live and zombie).
    pub children: Vec<Arc<Process>>,
    /// A vfork child has exec'd or exited (the parent may go on).
    pub vfork_released: bool,
}

/// What execve gave a process, kept for `/proc/<pid>/{exe,cmdline,environ,auxv}`.
#[derive(Debug, Default)]
pub(crate) struct ExecImage {
    /// The guest path of the program file loaded (the interpreter of a `#!` script).
    pub exe: Vec<u8>,
    /// The arguments the program started with.
    pub argv: Vec<Vec<u8>>,
    /// The environment the program started with.
    pub envp: Vec<Vec<u8>>,
    /// The auxiliary vector the loader built, without the closing `AT_NULL`.
    pub auxv: Vec<(u64, u64)>,
}

/// One guest process.
#[derive(Debug)]
pub(crate) struct Process {
    pub pid: i32,
    pub parent: Mutex<Weak<Process>>,
    pub pgid: AtomicI32,
    pub sid: AtomicI32,
    pub mm: RwLock<Arc<AddressSpace>>,
    pub files: Mutex<FdTable>,
    pub actions: Mutex<[SigAction; signal::NSIG]>,
    pub fs: Mutex<fs::FsContext>,
    pub state: Mutex<ProcState>,
    /// Notified when a child changes state, a thread exits or a vfork child releases its
    /// parent.
    pub child_event: Event,
    /// Signals sent to the whole process.
    pub shared_pending: Mutex<SigQueue>,
    /// What the running program was started with (for /proc/self/{exe,cmdline,environ,auxv}).
    pub image: Mutex<Arc<ExecImage>>,
    /// prctl(PR_SET_NAME).
    pub comm: Mutex<[u8; 16]>,
    pub rlimits: Mutex<misc::Rlimits>,
    /// Signal to send the parent at exit (SIGCHLD usually).
    pub exit_signal: i32,
}

impl Process {
    pub fn mm(&self) -> Arc<AddressSpace> {
        self.mm.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// The longest a change of code waits for the other threads of its address space to leave
/// compiled code ([`Kernel::code_changed`]).
const CODE_CHANGE_WAIT: std::time::Duration = std::time::Duration::from_millis(10);

/// One guest machine: processes, options and the file-system view.
#[derive(Debug)]
pub struct Kernel {
    config: Config,
    /// Host directory handles for the root (confined mode) and sysroot.
    roots: fs::Roots,
    procs: Mutex<HashMap<i32, Arc<Process>>>,
    next_pid: AtomicI32,
    start: std::time::Instant,
    /// Guest instructions retired by threads that have finished (or exec'd).
    instret: AtomicU64,
    /// Blocks translated by threads that have finished.
    blocks: AtomicU64,
    /// JIT work of threads that have finished: regions, instructions, microseconds compiling,
    /// evictions, regions loaded from the code cache, microseconds loading, guest instructions
    /// interpreted.
    jit_work: [AtomicU64; 7],
    /// The executor and compiler this machine uses.
    runtime: Arc<Runtime>,
    /// Futex wait queues.
    futexes: futex::Futexes,
    /// Called with the first process's status when it has exited.
    on_exit: Mutex<Option<OnExit>>,
    /// setitimer(ITIMER_REAL) timers.
    timers: timer::Timers,
    /// Guest names of bound AF_UNIX sockets.
    unix_names: net::UnixNames,
    /// The cap on the guest's mapped memory and its NUMA node ([`Config::memory_limit`],
    /// [`Config::numa_node`]).
    memory: crate::mem::MemoryPolicy,
}

/// What [`Kernel::start`] calls when the guest has exited.
struct OnExit(Box<dyn FnOnce(ExitStatus) + Send>);

impl std::fmt::Debug for OnExit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OnExit")
    }
}

/// Work done by a guest machine, for `--stats`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Stats {
    /// Guest instructions retired.
    pub instructions: u64,
    /// Blocks decoded by the interpreter.
    pub blocks: u64,
    /// Regions compiled by the JIT.
    pub regions: u64,
    /// Guest instructions in those regions.
    pub compiled_insts: u64,
    /// CPU time the compiler thread spent compiling, in microseconds.
    pub compile_us: u64,
    /// Chunks of compiled code evicted to stay within the bound.
    pub evictions: u64,
    /// Regions loaded from the code cache instead of compiled.
    pub loaded: u64,
    /// CPU time the compiler thread spent finding and loading code in the code cache, in
    /// microseconds.
    pub load_us: u64,
    /// Guest instructions the interpreter ran (the others ran in compiled code).
    pub interpreted: u64,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// First process id handed out.
const FIRST_PID: i32 = 1000;

impl Kernel {
    /// A guest machine with the given options, whose threads `runtime` runs.
    pub fn new(config: Config, runtime: &Arc<Runtime>) -> Result<Arc<Kernel>, StartError> {
        let roots = fs::Roots::new(&config)?;
        let memory = crate::mem::MemoryPolicy {
            limit: config.memory_limit.map(|bytes| Arc::new(crate::mem::MemoryLimit::new(bytes))),
            node: config.numa_node,
        };
        Ok(Arc::new(Kernel {
            memory,
            config,
            roots,
            procs: Mutex::new(HashMap::new()),
            next_pid: AtomicI32::new(FIRST_PID),
            start: std::time::Instant::now(),
            instret: AtomicU64::new(0),
            blocks: AtomicU64::new(0),
            jit_work: Default::default(),
            runtime: runtime.clone(),
            futexes: futex::Futexes::default(),
            on_exit: Mutex::new(None),
            timers: timer::Timers::default(),
            unix_names: net::UnixNames::default(),
        }))
    }

    /// The guest's memory cap, with what it maps now and whether it ever asked for more.
    pub fn memory_limit(&self) -> Option<&crate::mem::MemoryLimit> {
        self.memory.limit.as_deref()
    }

    fn executor(&self) -> &Arc<dyn Executor> {
        &self.runtime.executor
    }

    /// Hands a new guest thread to the executor.
    fn spawn_vcpu(
        self: &Arc<Self>,
        proc: Arc<Process>,
        thread: Arc<ThreadShared>,
        cpu: crate::interp::Cpu,
    ) -> std::io::Result<()> {
        self.runtime.executor.spawn(Vcpu::new(self.clone(), proc, thread, cpu))
    }

    fn alloc_pid(&self) -> i32 {
        self.next_pid.fetch_add(1, Ordering::Relaxed)
    }

    fn process(&self, pid: i32) -> Option<Arc<Process>> {
        lock(&self.procs).get(&pid).cloned()
    }

    /// Runs `program` (a host path, like qemu's command line) as the first guest process and waits
    /// for it to exit. Returns its exit status. Host signals sent to this process (Ctrl-C, `kill`)
    /// are passed on to the guest, as qemu-user does.
    pub fn run(self: &Arc<Self>, program: &str, args: &[OsString], env: &[OsString]) -> Result<ExitStatus, StartError> {
        // Block the forwarded signals before any guest thread exists, so every thread inherits
        // the mask and only the forwarder receives them.
        thread::forward_host_signals(self, FIRST_PID);
        let proc = self.start_process(program, args, env)?;
        let status = {
            let mut st = lock(&proc.state);
            loop {
                if let Some(status) = st.exit {
                    break status;
                }
                st = proc.child_event.wait(st);
            }
        };
        Ok(status)
    }

    /// Starts `program` as the first guest process and returns at once; `on_exit` is called
    /// with its status when it has exited (on the thread that ran its last guest thread).
    pub fn start(
        self: &Arc<Self>,
        program: &str,
        args: &[OsString],
        env: &[OsString],
        on_exit: impl FnOnce(ExitStatus) + Send + 'static,
    ) -> Result<(), StartError> {
        *lock(&self.on_exit) = Some(OnExit(Box::new(on_exit)));
        self.start_process(program, args, env).map(drop)
    }

    fn start_process(
        self: &Arc<Self>,
        program: &str,
        args: &[OsString],
        env: &[OsString],
    ) -> Result<Arc<Process>, StartError> {
        let argv: Vec<Vec<u8>> = args.iter().map(|a| a.clone().into_vec()).collect();
        let envp: Vec<Vec<u8>> = env.iter().map(|e| e.clone().into_vec()).collect();
        task::spawn_initial(self, program, argv, envp)
    }

    /// Kills every process of this machine with SIGKILL (a load test's timeout).
    pub fn kill_all(&self) {
        let procs: Vec<Arc<Process>> = lock(&self.procs).values().cloned().collect();
        for p in procs {
            signal::send_to_process(&p, signal::SigInfo::kernel(libc::SIGKILL));
        }
    }

    /// Tells the threads sharing `mm`, other than `by`, that its code changed, and returns once
    /// none of them runs compiled code from before the change, as Linux's riscv_flush_icache
    /// returns once every hart has flushed: `by` may then publish the new code, and a thread
    /// that sees the publication runs it. Each thread leaves compiled code at its next chain or
    /// loop head (`attention`), and its interpreter drops the stale translations before it
    /// enters compiled code again. Only threads a worker runs now are waited for (a parked or
    /// queued one checks when it next runs), and for at most [`CODE_CHANGE_WAIT`] (a thread
    /// stuck in a host call cannot answer).
    pub(crate) fn code_changed(&self, mm: &Arc<AddressSpace>, by: &ThreadShared) {
        let procs: Vec<Arc<Process>> = lock(&self.procs).values().cloned().collect();
        let mut others = Vec::new();
        for p in procs.iter().filter(|p| Arc::ptr_eq(&p.mm(), mm)) {
            for t in lock(&p.state).threads.iter().filter(|t| !std::ptr::eq(&***t, by)) {
                t.attention.store(1, Ordering::Release);
                others.push(t.clone());
            }
        }
        let deadline = std::time::Instant::now() + CODE_CHANGE_WAIT;
        for t in others {
            // The attention is cleared only outside compiled code, after an exit it caused.
            while t.running.load(Ordering::Acquire)
                && t.attention.load(Ordering::Acquire) != 0
                && std::time::Instant::now() < deadline
            {
                std::thread::yield_now();
            }
        }
    }

    /// Host memory the machine's guest processes have touched, in bytes (resident pages of
    /// their address spaces; a space shared by several processes counts once).
    pub fn resident_bytes(&self) -> u64 {
        let mut seen: Vec<*const AddressSpace> = Vec::new();
        let mut pages = 0;
        for p in lock(&self.procs).values() {
            let mm = p.mm();
            if !seen.contains(&Arc::as_ptr(&mm)) {
                seen.push(Arc::as_ptr(&mm));
                pages += mm.resident_pages();
            }
        }
        pages * crate::mem::PAGE_SIZE
    }

    /// The JIT tier for a new guest thread.
    fn jit_config(&self) -> Option<crate::interp::JitConfig> {
        let mut config = crate::interp::JitConfig::for_engine(self.config.engine, self.runtime.jit.clone()?)?;
        if let Some(bytes) = self.config.jit_memory {
            config.arena_bytes = bytes;
        }
        Some(config)
    }

    /// Counts work of a thread that finished (`interp` is its interpreter, whose JIT counts span
    /// every program the thread ran) or replaced its program (its instructions only).
    fn account(&self, instructions: u64, interp: Option<&crate::interp::Interp>) {
        self.instret.fetch_add(instructions, Ordering::Relaxed);
        let Some(it) = interp else {
            // A thread without a JIT tier interprets the program it replaces too; with one, its
            // interpreter's count at exit includes it.
            if self.jit_config().is_none() {
                self.jit_work[6].fetch_add(instructions, Ordering::Relaxed);
            }
            return;
        };
        self.blocks.fetch_add(it.cached_blocks() as u64, Ordering::Relaxed);
        let jit = it.jit_stats();
        let interpreted = if it.has_jit() { jit.interpreted } else { instructions };
        let micros = |d: std::time::Duration| u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        let work = [
            jit.regions,
            jit.compiled_insts,
            micros(jit.compile_time),
            jit.evictions,
            jit.loaded,
            micros(jit.load_time),
            interpreted,
        ];
        for (cell, v) in self.jit_work.iter().zip(work) {
            cell.fetch_add(v, Ordering::Relaxed);
        }
    }

    /// Work done by the threads that have finished so far.
    pub fn stats(&self) -> Stats {
        Stats {
            instructions: self.instret.load(Ordering::Relaxed),
            blocks: self.blocks.load(Ordering::Relaxed),
            regions: self.jit_work[0].load(Ordering::Relaxed),
            compiled_insts: self.jit_work[1].load(Ordering::Relaxed),
            compile_us: self.jit_work[2].load(Ordering::Relaxed),
            evictions: self.jit_work[3].load(Ordering::Relaxed),
            loaded: self.jit_work[4].load(Ordering::Relaxed),
            load_us: self.jit_work[5].load(Ordering::Relaxed),
            interpreted: self.jit_work[6].load(Ordering::Relaxed),
        }
    }

    /// Milliseconds since this machine started (for times/sysinfo).
    fn uptime(&self) -> std::time::Duration {
        self.start.elapsed()
    }
}
