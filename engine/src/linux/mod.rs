//! The Linux user ABI, as seen by riscv64 guests.
//!
//! A [`Kernel`] is one guest "machine": a process table, the file-system view (sysroot or confined
//! root) and options. Guest processes live inside the host process: `fork` copies an address
//! space, `execve` loads a new one, `wait4` waits on a condition variable; no host process is ever
//! created. Each guest thread runs on its own host thread in [`thread::run`].
//!
//! Blocking is done so that a guest thread can always be interrupted: waits on file descriptors use
//! `ppoll` with the host wake-up signal unblocked only inside it, and futex and child waits sleep in
//! bounded slices. Sending a guest signal to a thread sets its `attention` word (polled by the
//! interpreter between blocks) and sends it the host wake-up signal (which interrupts a blocking
//! host syscall).

mod errno;
mod fd;
mod fs;
mod misc;
mod mm;
mod net;
mod procfs;
pub mod signal;
mod syscall;
mod task;
mod thread;
mod timer;

use std::collections::HashMap;
use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock, Weak};

pub use errno::Errno;
use fd::FdTable;
use signal::{SigAction, SigQueue};

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
    /// Which execution tiers run guest code.
    pub engine: crate::interp::Engine,
    /// Where compiled code is kept between runs; `None` turns the code cache off.
    pub code_cache: Option<crate::jit::cache::CodeCacheConfig>,
    /// Bound on each guest thread's compiled code in memory (default
    /// [`crate::jit::DEFAULT_ARENA_BYTES`]).
    pub jit_memory: Option<usize>,
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
    /// Signals blocked by this thread (bit `n-1` for signal `n`).
    pub blocked: AtomicU64,
    /// Signals sent to this thread.
    pub pending: Mutex<SigQueue>,
    /// The host thread, for interrupting blocking syscalls.
    pub host: Mutex<Option<libc::pthread_t>>,
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
            blocked: AtomicU64::new(blocked),
            pending: Mutex::new(SigQueue::default()),
            host: Mutex::new(None),
            killed: std::sync::atomic::AtomicBool::new(false),
            altstack: Mutex::new(signal::AltStack::default()),
            saved_mask: Mutex::new(None),
            clear_child_tid: AtomicU64::new(0),
            robust_list: AtomicU64::new(0),
        })
    }

    /// Makes the thread look at its state soon, interrupting a blocking host syscall.
    pub fn kick(&self) {
        self.attention.store(1, Ordering::Release);
        if let Some(t) = *lock(&self.host) {
            thread::wake_host_thread(t);
        }
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
    /// Signalled when a child changes state or a vfork child releases its parent.
    pub child_event: Condvar,
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
    /// JIT work of threads that have finished: regions, instructions, microseconds, evictions,
    /// regions loaded from the code cache.
    jit_work: [AtomicU64; 5],
    /// The compiler thread of the JIT tier, shared by every guest thread (none when interpreting
    /// only, or when the JIT cannot run on this host).
    jit: Option<Arc<crate::jit::JitService>>,
    /// setitimer(ITIMER_REAL) timers.
    timers: timer::Timers,
    /// Guest names of bound AF_UNIX sockets.
    unix_names: net::UnixNames,
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
    /// Time spent compiling, in microseconds.
    pub compile_us: u64,
    /// Chunks of compiled code evicted to stay within the bound.
    pub evictions: u64,
    /// Regions loaded from the code cache instead of compiled.
    pub loaded: u64,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// First process id handed out.
const FIRST_PID: i32 = 1000;

impl Kernel {
    /// A guest machine with the given options.
    pub fn new(config: Config) -> Result<Arc<Kernel>, StartError> {
        thread::install_host_handlers();
        misc::raise_host_fd_limit();
        let roots = fs::Roots::new(&config)?;
        let jit = match config.engine {
            crate::interp::Engine::Interp => None,
            _ => crate::jit::JitService::start(config.code_cache.as_ref().and_then(|c| {
                c.open().map_err(|e| tracing::warn!("code cache {} unusable: {e}", c.dir.display())).ok()
            }))
            .map_err(|e| tracing::warn!("JIT unavailable, interpreting only: {e}"))
            .ok()
            .map(Arc::new),
        };
        Ok(Arc::new(Kernel {
            config,
            roots,
            procs: Mutex::new(HashMap::new()),
            next_pid: AtomicI32::new(FIRST_PID),
            start: std::time::Instant::now(),
            instret: AtomicU64::new(0),
            blocks: AtomicU64::new(0),
            jit_work: Default::default(),
            jit,
            timers: timer::Timers::default(),
            unix_names: net::UnixNames::default(),
        }))
    }

    fn alloc_pid(&self) -> i32 {
        self.next_pid.fetch_add(1, Ordering::Relaxed)
    }

    fn process(&self, pid: i32) -> Option<Arc<Process>> {
        lock(&self.procs).get(&pid).cloned()
    }

    /// Runs `program` (a host path, like qemu's command line) as the first guest process and waits
    /// for it to exit. Returns its exit status.
    pub fn run(self: &Arc<Self>, program: &str, args: &[OsString], env: &[OsString]) -> Result<ExitStatus, StartError> {
        let argv: Vec<Vec<u8>> = args.iter().map(|a| a.clone().into_vec()).collect();
        let envp: Vec<Vec<u8>> = env.iter().map(|e| e.clone().into_vec()).collect();
        // Block the forwarded signals before any guest thread exists, so every thread inherits
        // the mask and only the forwarder receives them.
        thread::forward_host_signals(self, FIRST_PID);
        let proc = task::spawn_initial(self, program, argv, envp)?;
        let status = {
            let mut st = lock(&proc.state);
            loop {
                if let Some(status) = st.exit {
                    break status;
                }
                st = proc.child_event.wait(st).unwrap_or_else(|e| e.into_inner());
            }
        };
        Ok(status)
    }

    /// Counts work of a thread that finished or replaced its program.
    /// The JIT tier for a new guest thread.
    fn jit_config(&self) -> Option<crate::interp::JitConfig> {
        let mut config = crate::interp::JitConfig::for_engine(self.config.engine, self.jit.clone()?)?;
        if let Some(bytes) = self.config.jit_memory {
            config.arena_bytes = bytes;
        }
        Some(config)
    }

    fn account(&self, instructions: u64, interp: Option<&crate::interp::Interp>) {
        self.instret.fetch_add(instructions, Ordering::Relaxed);
        if let Some(it) = interp {
            self.blocks.fetch_add(it.cached_blocks() as u64, Ordering::Relaxed);
            let jit = it.jit_stats();
            let time = u64::try_from(jit.compile_time.as_micros()).unwrap_or(u64::MAX);
            for (cell, v) in
                self.jit_work.iter().zip([jit.regions, jit.compiled_insts, time, jit.evictions, jit.loaded])
            {
                cell.fetch_add(v, Ordering::Relaxed);
            }
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
        }
    }

    /// Milliseconds since this machine started (for times/sysinfo).
    fn uptime(&self) -> std::time::Duration {
        self.start.elapsed()
    }
}
