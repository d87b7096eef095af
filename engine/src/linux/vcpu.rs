//! A guest thread as a value that runs a slice at a time: the unit an [`Executor`] schedules.
//!
//! [`Vcpu::run`] runs guest code and system calls until the slice is used, the thread must wait
//! ([`Poll::Park`]: it registered the waker it was given with whatever ends the wait) or it
//! exits. It holds no host thread between slices, so any number of guest threads can share a few
//! host threads.

#![expect(
    clippy::cast_possible_truncation,
    reason = "system call arguments are narrowed to their C parameter types as the Linux ABI does"
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Wake, Waker};
use std::time::{Duration, Instant};

use super::signal::{self, Delivery, SigInfo, code};
use super::syscall::{After, Sys};
use super::wait::Wait;
use super::{Errno, Kernel, Process, ThreadShared, lock, task};
use crate::interp::{Cpu, Exit, Interp};
use crate::mem::AddressSpace;

/// Guest instructions run between two looks at the clock (and at signals, which are also seen
/// sooner through `attention`).
const BUDGET: u64 = 1 << 18;

/// What a vCPU wants after [`Vcpu::run`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Poll {
    /// Its slice is used: run it again after the others had their turn.
    Yield,
    /// It waits: run it again once the waker it was given is woken (a wake-up that came during
    /// the slice counts).
    Park,
    /// The thread has exited; never run it again.
    Exited,
}

/// Runs vCPUs: every guest thread of the machines that share it.
pub trait Executor: Send + Sync + std::fmt::Debug {
    /// Runs `vcpu` until it exits: [`Vcpu::run`] again after [`Poll::Yield`], and after its
    /// waker is woken after [`Poll::Park`].
    fn spawn(&self, vcpu: Vcpu) -> std::io::Result<()>;

    /// Whether other vCPUs wait to run, so that one past its slice must stop for them (a vCPU
    /// in compiled code is stopped from another thread; see `preempt.rs`).
    fn contended(&self) -> bool;
}

/// An executor that gives every vCPU a host thread of its own (for embedding shoal without a
/// scheduler, and for tests).
#[derive(Debug, Default)]
pub struct ThreadPerVcpu;

struct Unpark {
    thread: std::thread::Thread,
    woken: AtomicBool,
}

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        self.thread.unpark();
    }
}

impl Executor for ThreadPerVcpu {
    /// Every vCPU has its own thread, which the host preempts.
    fn contended(&self) -> bool {
        false
    }

    fn spawn(&self, mut vcpu: Vcpu) -> std::io::Result<()> {
        let spawned =
            std::thread::Builder::new().name(format!("guest-{}", vcpu.tid())).stack_size(2 << 20).spawn(move || {
                let unpark = Arc::new(Unpark { thread: std::thread::current(), woken: AtomicBool::new(false) });
                let waker = Waker::from(unpark.clone());
                loop {
                    match vcpu.run(Instant::now(), Duration::from_millis(100), &waker) {
                        Poll::Yield => {}
                        Poll::Park => {
                            while !unpark.woken.swap(false, Ordering::Acquire) {
                                std::thread::park();
                            }
                        }
                        Poll::Exited => return,
                    }
                }
            });
        spawned.map(|_| ())
    }
}

/// One guest thread: its registers, its translated code and what it is waiting for.
pub struct Vcpu {
    kernel: Arc<Kernel>,
    proc: Arc<Process>,
    thread: Arc<ThreadShared>,
    cpu: Cpu,
    interp: Interp,
    mem: Arc<AddressSpace>,
    /// How to restart a system call a signal handler interrupted.
    restart: Option<signal::Restart>,
    wait: Wait,
    /// The system call a park interrupted, run again when the vCPU wakes.
    parked: Option<(u64, [u64; 6])>,
    exit_code: u8,
    exited: bool,
}

impl std::fmt::Debug for Vcpu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vcpu").field("tid", &self.thread.tid).field("pc", &self.cpu.pc).finish_non_exhaustive()
    }
}

/// What a system call left the vCPU to do.
enum Flow {
    Continue,
    Yield,
    Park,
    Exit,
}

/// riscv64 `sched_yield`: ends the vCPU's slice.
const SCHED_YIELD: u64 = 124;

impl Vcpu {
    pub(crate) fn new(kernel: Arc<Kernel>, proc: Arc<Process>, thread: Arc<ThreadShared>, cpu: Cpu) -> Vcpu {
        let interp = Interp::with_jit(kernel.jit_config());
        let mem = proc.mm();
        Vcpu {
            kernel,
            proc,
            thread,
            cpu,
            interp,
            mem,
            restart: None,
            wait: Wait::default(),
            parked: None,
            exit_code: 0,
            exited: false,
        }
    }

    /// The guest thread id.
    pub fn tid(&self) -> i32 {
        self.thread.tid
    }

    /// The guest's scheduling weight (its machine's [`Config::weight`](super::Config::weight)).
    pub fn weight(&self) -> u32 {
        self.kernel.config.weight.max(1)
    }

    /// The NUMA node the guest's threads should run on
    /// ([`Config::numa_node`](super::Config::numa_node)).
    pub fn numa_node(&self) -> Option<u32> {
        self.kernel.config.numa_node
    }

    /// Runs the thread for about `slice` from `started` (the time now, which the executor read
    /// already: guest code is stopped at a block or region boundary within [`BUDGET`]
    /// instructions of the end), until it must wait, or until it exits.
    pub fn run(&mut self, started: Instant, slice: Duration, waker: &Waker) -> Poll {
        if self.exited {
            return Poll::Exited;
        }
        super::thread::prepare_host_thread();
        // One end for both: a vCPU the preemption thread stops must find its slice over, or it
        // would run on with nobody left to stop it.
        let end = started + slice;
        // A request to stop that came after the last slice ended is for that slice.
        self.thread.preempted.store(false, Ordering::Relaxed);
        let preemption = super::preempt::start(&self.thread, self.kernel.executor(), started, end);
        self.thread.running.store(true, Ordering::Release);
        let poll = self.run_slice(end, waker);
        self.thread.running.store(false, Ordering::Release);
        drop(preemption);
        if poll == Poll::Exited {
            self.exit();
        }
        poll
    }

    fn run_slice(&mut self, end: Instant, waker: &Waker) -> Poll {
        loop {
            if self.thread.killed.load(Ordering::Acquire) {
                return Poll::Exited;
            }
            if let Some(child) = &self.wait.vfork {
                // vfork: the parent sleeps until the child execs or exits.
                let st = lock(&child.state);
                if !st.vfork_released {
                    child.child_event.register(waker);
                    self.thread.set_waker(waker);
                    return Poll::Park;
                }
                drop(st);
                self.wait.vfork = None;
            }
            let flow = match self.parked.take() {
                Some((nr, args)) => {
                    self.wait.resume();
                    self.syscall(nr, args, waker)
                }
                None => match self.interp.run(&mut self.cpu, &self.mem, &self.thread.attention, BUDGET) {
                    Exit::Ecall => {
                        let x = &self.cpu.x;
                        let (nr, args) = (x[17], [x[10], x[11], x[12], x[13], x[14], x[15]]);
                        self.syscall(nr, args, waker)
                    }
                    exit => {
                        self.trap(exit);
                        Flow::Continue
                    }
                },
            };
            match flow {
                Flow::Continue => {}
                Flow::Yield => return Poll::Yield,
                Flow::Park => return Poll::Park,
                Flow::Exit => return Poll::Exited,
            }
            if self.thread.killed.load(Ordering::Acquire) {
                return Poll::Exited;
            }
            match signal::deliver(&self.proc, &self.thread, &mut self.cpu, &self.mem, &mut self.restart) {
                Delivery::Continue => {}
                Delivery::Kill(status) => {
                    task::kill_process(&self.proc, status);
                    return Poll::Exited;
                }
            }
            if self.thread.preempted.swap(false, Ordering::Relaxed) || Instant::now() >= end {
                return Poll::Yield;
            }
        }
    }

    /// Turns an exit from guest code other than a system call into what the guest sees.
    fn trap(&mut self, exit: Exit) {
        let (proc, thread, pc) = (&self.proc, &self.thread, self.cpu.pc);
        match exit {
            Exit::Ecall | Exit::Budget => {}
            Exit::Fault(f) if f.past_eof => {
                signal::force(proc, thread, SigInfo::fault(libc::SIGBUS, code::BUS_ADRERR, f.addr));
            }
            Exit::Fault(f) => {
                let code = if f.mapped { code::SEGV_ACCERR } else { code::SEGV_MAPERR };
                signal::force(proc, thread, SigInfo::fault(libc::SIGSEGV, code, f.addr));
            }
            Exit::Illegal => signal::force(proc, thread, SigInfo::fault(libc::SIGILL, code::ILL_ILLOPC, pc)),
            Exit::Breakpoint => signal::force(proc, thread, SigInfo::fault(libc::SIGTRAP, code::TRAP_BRKPT, pc)),
            Exit::Misaligned(addr) => {
                signal::force(proc, thread, SigInfo::fault(libc::SIGBUS, code::BUS_ADRALN, addr));
            }
            Exit::Interrupted => {
                // A read-modify-write: it reads the kick's own store, so whatever the kicking
                // thread did before (a code change, a signal queued) is visible from here on.
                thread.attention.swap(0, Ordering::AcqRel);
            }
        }
    }

    /// Runs system call `nr` (again, after a park, when `wait.resumed`).
    fn syscall(&mut self, nr: u64, args: [u64; 6], waker: &Waker) -> Flow {
        let mut sys = Sys {
            kernel: &self.kernel,
            proc: &self.proc,
            thread: &self.thread,
            cpu: &mut self.cpu,
            mem: self.mem.clone(),
            wait: &mut self.wait,
            waker,
        };
        let generation = self.mem.code_generation();
        let after = sys.dispatch(nr, &args);
        if self.mem.code_generation() != generation {
            // mprotect, munmap, mremap or riscv_flush_icache changed code that the other
            // threads of this address space may be running compiled.
            self.kernel.code_changed(&self.mem, &self.thread);
        }
        if matches!(after, After::Return(Err(Errno::PARKED))) {
            self.parked = Some((nr, args));
            return Flow::Park;
        }
        self.wait.finish(&self.kernel.futexes);
        if self.kernel.config.strace {
            trace(&self.proc, &self.thread, nr, &args, &after);
        }
        match after {
            After::Return(r) => {
                self.cpu.pc += 4;
                self.cpu.x[10] = match r {
                    Ok(v) => v,
                    Err(kind @ (Errno::ERESTARTSYS | Errno::ERESTARTNOHAND)) => {
                        self.restart = Some(signal::Restart { kind, a0: args[0] });
                        (-libc::EINTR) as u64
                    }
                    Err(e) => (-i64::from(e.0)) as u64,
                };
            }
            After::Resume => {}
            After::ExitThread => {
                self.exit_code = args[0] as u8;
                return Flow::Exit;
            }
        }
        let now = self.proc.mm();
        if !Arc::ptr_eq(&now, &self.mem) {
            self.mem = now;
            self.interp.flush();
        }
        if nr == SCHED_YIELD { Flow::Yield } else { Flow::Continue }
    }

    /// The thread is gone: tell its process (and a thread joining it).
    fn exit(&mut self) {
        self.exited = true;
        self.parked = None;
        self.wait.finish(&self.kernel.futexes);
        self.wait.vfork = None;
        self.thread.clear_waker();
        self.kernel.account(self.cpu.instret, Some(&self.interp));
        task::thread_exited(&self.kernel, &self.proc, &self.thread, &self.mem, self.exit_code);
    }
}

fn trace(proc: &Process, thread: &ThreadShared, nr: u64, a: &[u64; 6], after: &After) {
    let name = super::syscall::name(nr);
    let ret = match after {
        After::Return(Ok(v)) => format!("{}", *v as i64),
        After::Return(Err(Errno::ERESTARTSYS)) => "? ERESTARTSYS".to_string(),
        After::Return(Err(Errno::ERESTARTNOHAND)) => "? ERESTARTNOHAND".to_string(),
        After::Return(Err(e)) => format!("-1 errno={} ({})", e.0, e.name()),
        After::Resume => "?".to_string(),
        After::ExitThread => "(exit)".to_string(),
    };
    let tid = if thread.tid == proc.pid { String::new() } else { format!("/{}", thread.tid) };
    if name == "unknown" {
        eprintln!(
            "{}{tid} unknown syscall {nr}({:#x},{:#x},{:#x},{:#x},{:#x},{:#x}) = {ret}",
            proc.pid, a[0], a[1], a[2], a[3], a[4], a[5]
        );
    } else {
        eprintln!(
            "{}{tid} {name}({:#x},{:#x},{:#x},{:#x},{:#x},{:#x}) = {ret}",
            proc.pid, a[0], a[1], a[2], a[3], a[4], a[5]
        );
    }
}
