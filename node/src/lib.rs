//! The shoal node: hosts guests on the work-stealing scheduler.
//!
//! [`Node`] is the in-process node that `shoal run` and `shoal loadtest --local` use: a
//! [`Scheduler`] whose tasks are guest vCPUs, and the engine [`Runtime`] (executor and JIT
//! compiler) that every guest machine on the node shares. The cluster's node daemon
//! ([`daemon`]) is built on it.

pub mod daemon;
pub mod loadtest;

use std::sync::{Arc, Weak};
use std::task::Waker;

use shoal_engine::jit::cache::CodeCacheConfig;
use shoal_engine::linux::{Executor, Poll, Runtime, Vcpu};
use shoal_scheduler::{Context, Scheduler, Step, Task};

/// This process's environment as `KEY=VALUE` strings, which a guest inherits as it would from
/// a shell (qemu-user passes it on the same way).
pub fn host_environment() -> Vec<std::ffi::OsString> {
    std::env::vars_os()
        .map(|(k, v)| {
            let mut kv = k;
            kv.push("=");
            kv.push(v);
            kv
        })
        .collect()
}

/// How a node runs.
#[derive(Clone, Debug)]
pub struct Config {
    /// Workers, topology and slice length.
    pub scheduler: shoal_scheduler::Config,
    /// Compile hot guest code (else every guest is interpreted).
    pub jit: bool,
    /// Where compiled code is kept between runs; `None` turns the code cache off.
    pub code_cache: Option<CodeCacheConfig>,
}

/// A node in this process: the scheduler and the runtime its guests share.
#[derive(Debug)]
pub struct Node {
    scheduler: Arc<Scheduler>,
    runtime: Arc<Runtime>,
}

impl Node {
    /// Starts the workers and the JIT compiler thread. Host signals that `shoal run` forwards to
    /// its guest are blocked in them (see [`shoal_engine::linux::with_host_signals_blocked`]),
    /// not in the caller.
    pub fn start(config: Config) -> std::io::Result<Node> {
        let mut scheduler = config.scheduler;
        // Wake-up preemption, one granularity for both sides: a vCPU that starts while woken
        // ones wait gets that long, and a vCPU woken while every worker is busy stops the one
        // that has run longest that far into its slice.
        scheduler.wake_granularity = shoal_engine::linux::WAKE_GRANULARITY;
        scheduler.on_busy_wake = Some(shoal_scheduler::WakeHook(Arc::new(shoal_engine::linux::make_room)));
        shoal_engine::linux::with_host_signals_blocked(|| {
            let scheduler = Arc::new(Scheduler::start(scheduler)?);
            let executor = Arc::new(OnScheduler { scheduler: Arc::downgrade(&scheduler) });
            let runtime = Runtime::new(executor, config.jit, config.code_cache.as_ref());
            Ok(Node { scheduler, runtime })
        })
    }

    /// What guest machines on this node are created with.
    pub fn runtime(&self) -> &Arc<Runtime> {
        &self.runtime
    }

    pub fn scheduler(&self) -> &Scheduler {
        &self.scheduler
    }
}

/// The executor of a node: each vCPU is a scheduler task of its guest's weight.
///
/// It holds the scheduler weakly: the scheduler's tasks hold vCPUs, which hold their runtime and
/// so this executor, and a strong reference would let the last vCPU drop the scheduler on one of
/// its own workers.
#[derive(Debug)]
struct OnScheduler {
    scheduler: Weak<Scheduler>,
}

impl Executor for OnScheduler {
    fn spawn(&self, vcpu: Vcpu) -> std::io::Result<()> {
        let scheduler = self.scheduler.upgrade().ok_or_else(|| std::io::Error::other("the node has stopped"))?;
        let (weight, node) = (vcpu.weight(), vcpu.numa_node());
        scheduler.spawn_on(Box::new(VcpuTask { vcpu, waker: None }), weight, node);
        Ok(())
    }

    fn contended(&self) -> bool {
        self.scheduler.upgrade().is_some_and(|s| s.runnable() > 0)
    }
}

struct VcpuTask {
    vcpu: Vcpu,
    /// The task's handle as a waker, made on its first slice.
    waker: Option<Waker>,
}

impl Task for VcpuTask {
    fn run(&mut self, cx: &Context<'_>) -> Step {
        let waker = self.waker.get_or_insert_with(|| cx.handle.waker());
        match self.vcpu.run(cx.started, cx.slice, waker) {
            Poll::Yield => Step::Yield,
            Poll::Park => Step::Park,
            Poll::Exited => Step::Done,
        }
    }
}
