//! The interpreter tier: runs pre-decoded blocks of guest code.
//!
//! A block is a run of decoded instructions starting at a guest pc and ending after the first
//! control transfer, system instruction or at [`MAX_BLOCK`] instructions. Blocks are decoded once
//! and kept in a per-vCPU cache (a hash map with a direct-mapped front table), so the steady state
//! of a hot loop is: look up the block for `pc`, run a tight `match` over its instructions, repeat.
//!
//! Writes to `x0` are redirected at decode time to a sink register (`x[32]`), so the execution
//! loop never tests for `rd == 0` and `x[0]` always reads as zero.
//!
//! Cached blocks are tagged with the address space's code generation; when executable memory
//! changes (fence.i, riscv_flush_icache, munmap or mprotect of code) the generation moves and the
//! whole cache is dropped before the next block runs, so stale code never executes. Compiled code
//! does not look at the generation: a change by another thread reaches it as `attention`
//! (`linux::Kernel::code_changed`), and the loop here checks the generation before entering it.

mod exec;
mod pc_hash;

pub(crate) use exec::{fp_compute, int_source, uses_rm};

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use crate::jit::Answer;
use crate::mem::{AddressSpace, Fault, PAGE_SIZE};
use crate::rv64::{Inst, Op, decode};
use pc_hash::PcMap;

/// Most instructions in one block.
pub const MAX_BLOCK: usize = 64;
/// Index of the register that absorbs writes to `x0`.
pub const X_SINK: u8 = 32;
const DIRECT_SLOTS: usize = 4096;

/// Architectural state of one hart (one guest thread). `repr(C)`: compiled code reaches its
/// fields by offset.
#[derive(Clone, Debug)]
#[repr(C)]
pub struct Cpu {
    /// Integer registers; `x[0]` stays zero and `x[32]` absorbs writes to `x0`.
    pub x: [u64; 64],
    /// Floating-point registers as raw bits (single values NaN-boxed).
    pub f: [u64; 32],
    /// Program counter.
    pub pc: u64,
    /// Accrued exception flags (fcsr bits 4:0).
    pub fflags: u8,
    /// Dynamic rounding mode (fcsr bits 7:5).
    pub frm: u8,
    /// Instructions retired.
    pub instret: u64,
    /// The LR reservation, if any.
    pub reservation: Option<Reservation>,
}

/// An LR/SC reservation: the address, the width and the value the LR saw.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reservation {
    /// Reserved address.
    pub addr: u64,
    /// Value loaded by LR (zero-extended).
    pub value: u64,
    /// 4 or 8.
    pub width: u8,
}

impl Default for Cpu {
    fn default() -> Self {
        Cpu { x: [0; 64], f: [0; 32], pc: 0, fflags: 0, frm: 0, instret: 0, reservation: None }
    }
}

impl Cpu {
    /// Reads integer register `r` (0..=31).
    #[inline]
    pub fn reg(&self, r: usize) -> u64 {
        if r == 0 { 0 } else { self.x[r & 31] }
    }

    /// Writes integer register `r` (0..=31); writes to `x0` are dropped.
    #[inline]
    pub fn set_reg(&mut self, r: usize, v: u64) {
        if r != 0 {
            self.x[r & 31] = v;
        }
    }

    /// The fcsr value.
    pub fn fcsr(&self) -> u32 {
        u32::from(self.fflags & 0x1f) | u32::from(self.frm & 7) << 5
    }

    /// Sets the fcsr.
    pub fn set_fcsr(&mut self, v: u32) {
        self.fflags = (v & 0x1f) as u8;
        self.frm = ((v >> 5) & 7) as u8;
    }
}

/// Why the interpreter stopped running guest code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// `ecall` at `cpu.pc`: a system call.
    Ecall,
    /// `ebreak` at `cpu.pc`.
    Breakpoint,
    /// An illegal instruction at `cpu.pc`.
    Illegal,
    /// A memory fault by the instruction at `cpu.pc`.
    Fault(Fault),
    /// A misaligned atomic access at `cpu.pc` (SIGBUS on Linux).
    Misaligned(u64),
    /// Someone asked this vCPU to stop (signal, exit, pause); `cpu.pc` is the next instruction.
    Interrupted,
    /// The instruction budget ran out; `cpu.pc` is the next instruction.
    Budget,
}

/// A decoded block.
#[derive(Debug)]
struct Block {
    insts: Box<[Inst]>,
    /// Times entered in the interpreter other than through a requested region (tiering counts up
    /// to the threshold, then stops; see [`Tier::step`]).
    hits: u32,
    /// Host address of the compiled region entered here, once there is one.
    region: Option<usize>,
    /// While the region entered here waits for the compiler: the runs since it was queued,
    /// which the compiler reads to take the hottest waiting region first.
    heat: Option<Arc<AtomicU32>>,
    /// The region requested at this block (queued or installed), as numbered in
    /// [`Tier::requested`].
    requested: Option<u32>,
}

/// Which tiers run guest code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Engine {
    /// Interpreter for cold code, the JIT for regions that get hot.
    #[default]
    Auto,
    /// The interpreter only.
    Interp,
    /// Compile every region on its first execution (for testing the JIT).
    Jit,
}

/// Interpreter runs of a block before its region is compiled (`Engine::Auto`). Compiling runs on
/// the compiler thread, so a hot block costs the vCPU only forming the region (decoding); the
/// threshold keeps the compiler busy with code that runs long enough to win its time back.
/// Measured with `SHOAL_JIT_THRESHOLD` on cold runs (no code cache, medians of 3, 2 cores):
/// 50 / 200 / 1000 gave lua 1.54 / 1.12 / 1.50 s, sqlite 2.76 / 2.19 / 2.57 s and strings
/// 0.97 / 0.76 / 0.78 s. Lower thresholds queue lukewarm code ahead of hot code; higher ones
/// interpret hot code longer.
pub const HOT_THRESHOLD: u32 = 200;

/// [`HOT_THRESHOLD`], or `SHOAL_JIT_THRESHOLD` from the environment (for measuring others).
fn hot_threshold() -> u32 {
    static THRESHOLD: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *THRESHOLD.get_or_init(|| {
        std::env::var("SHOAL_JIT_THRESHOLD")
            .ok()
            .and_then(|v| v.parse().ok())
            .filter(|&n| n > 1)
            .unwrap_or(HOT_THRESHOLD)
    })
}

/// Most regions a vCPU has queued for the compiler at once; a block that gets hot while the
/// queue is full tries again later. The compiler takes the hottest waiting region first, so a
/// long queue does not hold hot code back; a short one (64) turned away regions that got hot
/// while a large program started, and their code was then missing from the disk cache: the
/// second run of lua and sqlite compiled about twice as many regions as with this bound.
const MAX_PENDING: u32 = 1024;

/// How many times in a row the interpreter, following a requested region, passes up other
/// regions' code ([`Tier::enters`]): enough for the short loops between a function's entry and
/// its way out, few enough that a long loop is not held in the interpreter.
const FOLLOW_THROUGH: u32 = 256;

/// A region requested for compiling, as the interpreter follows it.
#[derive(Debug)]
struct Request {
    /// The edges between its blocks: the direct jumps its compiled code takes inside it.
    edges: Box<[(u64, u64)]>,
    /// Whether its code is installed: it then runs compiled from its entry, and the interpreter
    /// follows it no longer.
    installed: bool,
}

/// How the JIT tier of a vCPU is set up.
#[derive(Clone, Debug)]
pub struct JitConfig {
    /// The compiler thread (shared by the vCPUs of a process).
    pub service: Arc<crate::jit::JitService>,
    /// Interpreter runs of a block before its region is compiled.
    pub threshold: u32,
    /// Wait for each compile instead of interpreting meanwhile (deterministic, for testing).
    pub synchronous: bool,
    /// Bound on executable memory for this vCPU's regions.
    pub arena_bytes: usize,
}

impl JitConfig {
    /// The configuration `engine` implies with `service`; `None` for the interpreter alone.
    pub fn for_engine(engine: Engine, service: Arc<crate::jit::JitService>) -> Option<JitConfig> {
        let (threshold, synchronous) = match engine {
            Engine::Interp => return None,
            Engine::Auto => (hot_threshold(), false),
            Engine::Jit => (1, true),
        };
        Some(JitConfig { service, threshold, synchronous, arena_bytes: crate::jit::DEFAULT_ARENA_BYTES })
    }
}

/// What the JIT tier of a vCPU has done.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct JitStats {
    /// Regions compiled and installed.
    pub regions: u64,
    /// Regions loaded from the disk cache and installed (not compiled).
    pub loaded: u64,
    /// Guest instructions those regions cover.
    pub compiled_insts: u64,
    /// Guest instructions the interpreter ran (the others ran in compiled code).
    pub interpreted: u64,
    /// CPU time the compiler thread spent compiling them (and regions it failed to compile).
    pub compile_time: Duration,
    /// CPU time the compiler thread spent finding, reading and checking code in the disk cache.
    pub load_time: Duration,
    /// Chunks of executable memory evicted to stay within the bound.
    pub evictions: u64,
    /// Guest accesses in compiled code that faulted in the host MMU and were handed back to the
    /// interpreter.
    pub faults: u64,
}

/// The JIT tier's state of one vCPU.
struct Tier {
    config: JitConfig,
    /// Region table, read by compiled code through `Env::table` to chain.
    table: Box<[crate::jit::Slot]>,
    code: crate::jit::CodeArena,
    inbox: Arc<crate::jit::Inbox>,
    pending: u32,
    /// Moves on every flush; compiles requested before it are dropped when they come back.
    epoch: u64,
    /// Each region requested since the last flush (queued or installed), by request number.
    requested: Vec<Request>,
    /// Those edges by the block they lead to: (request number, block they come from).
    edges_into: PcMap<Vec<(u32, u64)>>,
    /// The requested region and block the interpreter is in, as compiled code would be (see
    /// [`Tier::step`]).
    position: Option<(u32, u64)>,
    /// How many more times the interpreter, following a region, may pass up another region's
    /// code ([`Tier::enters`]).
    through: u32,
    stats: JitStats,
    /// Where compiled code faulted, when it did (`jit::fault`).
    frame: crate::jit::fault::Frame,
}

impl std::fmt::Debug for Tier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tier").field("config", &self.config).field("stats", &self.stats).finish()
    }
}

/// The interpreter's per-vCPU state: its block cache.
#[derive(Debug)]
pub struct Interp {
    blocks: Vec<Block>,
    index: PcMap<u32>,
    /// Direct-mapped front of `index`: (pc XOR 1, block), so that the all-zero empty slot (which
    /// the host commits only when written) never matches an even pc.
    direct: Box<[(u64, u32)]>,
    generation: u64,
    tier: Option<Box<Tier>>,
}

impl Default for Interp {
    fn default() -> Self {
        Self::new()
    }
}

impl Interp {
    /// An interpreter with an empty cache and no JIT.
    pub fn new() -> Self {
        Interp {
            blocks: Vec::new(),
            index: PcMap::default(),
            // SAFETY: all-zero bytes are a valid `(u64, u32)`, the empty slot.
            direct: unsafe { Box::<[(u64, u32)]>::new_zeroed_slice(DIRECT_SLOTS).assume_init() },
            generation: u64::MAX,
            tier: None,
        }
    }

    /// An interpreter with the tiers `engine` asks for, with a compiler thread of its own. If the
    /// JIT cannot be set up for this host the interpreter runs alone (with a warning).
    pub fn with_engine(engine: Engine) -> Self {
        if engine == Engine::Interp {
            return Interp::new();
        }
        match crate::jit::JitService::start(None) {
            Ok(service) => Interp::with_jit(JitConfig::for_engine(engine, Arc::new(service))),
            Err(e) => {
                tracing::warn!("JIT unavailable, interpreting only: {e}");
                Interp::new()
            }
        }
    }

    /// An interpreter with the JIT tier `config` describes (`None`: the interpreter alone).
    pub fn with_jit(config: Option<JitConfig>) -> Self {
        let mut it = Interp::new();
        if let Some(config) = config {
            it.tier = Some(Box::new(Tier {
                code: crate::jit::CodeArena::new(config.arena_bytes),
                config,
                table: crate::jit::new_table(),
                inbox: Arc::default(),
                pending: 0,
                epoch: 0,
                requested: Vec::new(),
                edges_into: PcMap::default(),
                position: None,
                through: 0,
                frame: crate::jit::fault::Frame::default(),
                stats: JitStats::default(),
            }));
        }
        it
    }

    /// Whether guest code may run compiled (there is a JIT tier).
    pub fn has_jit(&self) -> bool {
        self.tier.is_some()
    }

    /// What the JIT tier has done (all zero without one).
    pub fn jit_stats(&self) -> JitStats {
        self.tier.as_ref().map_or_else(JitStats::default, |t| JitStats { evictions: t.code.evictions(), ..t.stats })
    }

    /// Drops every cached block and compiled region.
    pub fn flush(&mut self) {
        // The tables are cleared only if written: untouched, their pages stay uncommitted (an
        // idle guest's memory is mostly these tables otherwise).
        if !self.blocks.is_empty() {
            self.direct.fill((0, 0));
        }
        self.blocks.clear();
        self.index.clear();
        if let Some(t) = self.tier.as_mut() {
            // Every filled slot points into an installed region.
            if !t.code.is_empty() {
                t.table.fill(crate::jit::Slot::EMPTY);
            }
            t.code.clear();
            t.epoch += 1;
            t.requested.clear();
            t.edges_into.clear();
            t.position = None;
        }
    }

    /// Number of blocks decoded and cached.
    pub fn cached_blocks(&self) -> usize {
        self.blocks.len()
    }

    /// Runs guest code until an exit, at most about `budget` instructions.
    ///
    /// `attention` is polled between blocks: another thread sets it to make this vCPU stop with
    /// [`Exit::Interrupted`] (signals, exit of the thread group, pause requests).
    pub fn run(&mut self, cpu: &mut Cpu, mem: &AddressSpace, attention: &AtomicU32, budget: u64) -> Exit {
        let start = cpu.instret;
        let limit = start.saturating_add(budget);
        let mut env = self
            .tier
            .as_ref()
            .map(|t| crate::jit::Env::new(mem, attention, &t.table, limit, t.config.service.trampoline()));
        // Set when compiled code handed one instruction back: the interpreter runs the block.
        let mut interpret_once = false;
        // Set when compiled code faulted past its restart point's block: the interpreter runs
        // alone until this call ends, which a fault that happens again ends at once.
        let mut replay = false;
        loop {
            if attention.load(Ordering::Relaxed) != 0 {
                return Exit::Interrupted;
            }
            if cpu.instret >= limit {
                return Exit::Budget;
            }
            let generation = mem.code_generation();
            if generation != self.generation {
                self.flush();
                self.generation = generation;
            }
            if let (Some(tier), Some(env)) = (self.tier.as_deref_mut(), env.as_mut()) {
                if tier.pending > 0 && tier.inbox.is_ready() {
                    tier.receive(mem, &mut self.blocks, &self.index, false);
                }
                let slot = tier.table[crate::jit::slot_of(cpu.pc)];
                if !interpret_once && !replay && slot.holds(cpu.pc) && tier.enters(cpu.pc) {
                    // SAFETY: the table holds only regions installed in this vCPU's arena for the
                    // current code generation (it is cleared when either changes), `env`
                    // describes `mem`, which outlives the call, and `cpu.pc` is the entry.
                    let exit = unsafe { tier.config.service.trampoline().enter(slot.code, cpu, env, &mut tier.frame) };
                    tier.position = None;
                    match exit {
                        crate::jit::EXIT_NEXT => continue,
                        crate::jit::EXIT_ATTENTION => return Exit::Interrupted,
                        crate::jit::fault::EXIT_FAULT => {
                            // `cpu` holds the guest state at the site's restart point. The
                            // interpreter runs from there to the access again and raises the
                            // signal (or, had another thread just mapped the page, goes on).
                            let host_pc = usize::try_from(tier.frame.fault_pc).unwrap_or(usize::MAX);
                            let Some(site) = tier.code.trap_site(host_pc) else {
                                panic!(
                                    "compiled code faulted at host pc {host_pc:#x} on {:#x}, not at a guest access",
                                    tier.frame.fault_addr
                                );
                            };
                            cpu.pc = site.pc;
                            cpu.instret += u64::from(site.done);
                            tier.stats.faults += 1;
                            if site.replay {
                                replay = true;
                            } else {
                                interpret_once = true;
                            }
                        }
                        // The instruction at cpu.pc needs the interpreter: run one block there.
                        _ => interpret_once = true,
                    }
                    continue;
                }
            }
            let idx = match self.lookup(cpu.pc) {
                Some(i) => i,
                None => match self.translate(cpu.pc, mem) {
                    Ok(i) => i,
                    Err(fault) => return Exit::Fault(fault),
                },
            };
            if let Some(tier) = self.tier.as_deref_mut() {
                let block = &mut self.blocks[idx as usize];
                let inside = tier.step(cpu.pc, block.requested);
                if let Some(code) = block.region {
                    // A compiled region whose table slot another entry took: put it back.
                    if !interpret_once && !replay && !inside {
                        tier.table[crate::jit::slot_of(cpu.pc)] = crate::jit::Slot::new(cpu.pc, code);
                        continue;
                    }
                } else if let Some(heat) = &block.heat {
                    // Only this vCPU writes it: a plain store, no locked add.
                    heat.store(heat.load(Ordering::Relaxed).saturating_add(1), Ordering::Relaxed);
                } else if !inside && block.hits < tier.config.threshold {
                    block.hits += 1;
                    if block.hits == tier.config.threshold
                        && tier.request(cpu.pc, mem, &mut self.blocks, &self.index, idx)
                        && tier.config.synchronous
                    {
                        tier.receive(mem, &mut self.blocks, &self.index, true);
                        if self.blocks[idx as usize].region.is_some() {
                            continue;
                        }
                    }
                }
            }
            interpret_once = false;
            let block = &self.blocks[idx as usize];
            let before = cpu.instret;
            let exit = exec::run_block(cpu, mem, &block.insts);
            if let Some(tier) = self.tier.as_deref_mut() {
                tier.stats.interpreted += cpu.instret - before;
            }
            if let Some(exit) = exit {
                return exit;
            }
        }
    }

    #[inline]
    fn lookup(&mut self, pc: u64) -> Option<u32> {
        let slot = ((pc >> 1) as usize) & (DIRECT_SLOTS - 1);
        let (tag, idx) = self.direct[slot];
        if tag == pc ^ 1 {
            return Some(idx);
        }
        let idx = *self.index.get(&pc)?;
        self.direct[slot] = (pc ^ 1, idx);
        Some(idx)
    }

    fn translate(&mut self, pc: u64, mem: &AddressSpace) -> Result<u32, Fault> {
        let insts = decode_block(pc, mem)?;
        let idx = u32::try_from(self.blocks.len()).unwrap_or(u32::MAX);
        if idx == u32::MAX {
            // A guest that decodes four billion blocks without flushing: start over.
            self.flush();
            return self.translate(pc, mem);
        }
        self.blocks.push(Block { insts: insts.into_boxed_slice(), hits: 0, region: None, heat: None, requested: None });
        self.index.insert(pc, idx);
        let slot = ((pc >> 1) as usize) & (DIRECT_SLOTS - 1);
        self.direct[slot] = (pc ^ 1, idx);
        Ok(idx)
    }
}

impl Tier {
    /// Forms the region entered at `pc` (whose block is `block`) and queues it for the compiler.
    /// False when nothing was queued.
    ///
    /// With a hot threshold above one, the region takes only blocks the interpreter has run
    /// (cold paths stay out and leave the region when taken), which keeps regions small and
    /// cheap to compile. The synchronous test mode compiles on first execution and follows every
    /// direct successor instead, so that loops and their exits get compiled and tested.
    fn request(&mut self, pc: u64, mem: &AddressSpace, blocks: &mut [Block], index: &PcMap<u32>, idx: u32) -> bool {
        if self.pending >= MAX_PENDING {
            // Try again once the compiler has caught up.
            blocks[idx as usize].hits = self.config.threshold / 2;
            return false;
        }
        // A block whose first instruction the JIT leaves to the interpreter stays interpreted
        // (its count stays at the threshold, so this is not asked again).
        let Some(region) = self.form(pc, mem, blocks, index) else { return false };
        let heat = Arc::new(AtomicU32::new(0));
        self.submit(region, false, heat, blocks, index)
    }

    /// Forms the region entered at `pc` from the blocks the interpreter has run (see
    /// [`Self::request`]).
    fn form(&self, pc: u64, mem: &AddressSpace, blocks: &[Block], index: &PcMap<u32>) -> Option<crate::jit::Region> {
        let ran = |pc: u64| index.get(&pc).is_some_and(|&i| blocks[i as usize].hits > 0);
        let follow_all = |_: u64| true;
        let follow: &dyn Fn(u64) -> bool = if self.config.threshold > 1 { &ran } else { &follow_all };
        crate::jit::form_region(mem, pc, follow)
    }

    /// Queues `region` for the compiler, its entry's runs counted in `heat` meanwhile, and
    /// follows it from now on as if it were compiled ([`Self::step`]). False if the compiler
    /// thread is gone.
    fn submit(
        &mut self,
        region: crate::jit::Region,
        reshaped: bool,
        heat: Arc<AtomicU32>,
        blocks: &mut [Block],
        index: &PcMap<u32>,
    ) -> bool {
        let entry = region.entry;
        let Some(&entry_block) = index.get(&entry) else { return false };
        let mut edges = Vec::new();
        for (&pc, block) in &region.blocks {
            edges.extend(block.successors(pc).into_iter().filter(|s| region.blocks.contains_key(s)).map(|s| (pc, s)));
        }
        let others: Vec<u32> =
            region.blocks.keys().filter(|&&pc| pc != entry).filter_map(|pc| index.get(pc).copied()).collect();
        let job = crate::jit::Job::new(region, reshaped, self.epoch, self.inbox.clone(), heat.clone());
        if !self.config.service.submit(job) {
            return false;
        }
        self.pending += 1;
        // The region's other blocks run inside it from now on when reached through it: what the
        // interpreter counted there so far, mostly runs on the way through, says little of how
        // often they are entered from elsewhere. They count that afresh, from one (they have run,
        // which forming a region asks).
        for i in others {
            let block = &mut blocks[i as usize];
            if block.requested.is_none() && block.hits > 0 && block.hits < self.config.threshold {
                block.hits = 1;
            }
        }
        let number = u32::try_from(self.requested.len()).unwrap_or(u32::MAX);
        for &(from, to) in &edges {
            self.edges_into.entry(to).or_default().push((number, from));
        }
        self.requested.push(Request { edges: edges.into_boxed_slice(), installed: false });
        let block = &mut blocks[entry_block as usize];
        block.heat = Some(heat);
        self.forget(block.requested.replace(number));
        true
    }

    /// The requested region the block at `pc` would run in, entered next from the interpreter's
    /// position: one whose code, once installed, jumps there inside it.
    ///
    /// Once the region followed is installed, the interpreter stops following it: it is then
    /// where the region's code could not be entered (past its entry, when the code arrived), and
    /// a loop there must count, and get compiled, as it would have without the region.
    #[inline]
    fn inside(&self, pc: u64) -> Option<u32> {
        let (number, from) = self.position?;
        let followed = !self.requested[number as usize].installed;
        (followed && self.edges_into.get(&pc)?.contains(&(number, from))).then_some(number)
    }

    /// Whether to run the compiled code at `pc` rather than interpret its block.
    ///
    /// Following a region still queued, the interpreter passes up the code of another region
    /// entered at a block inside it (at most [`FOLLOW_THROUGH`] times in a row): that code,
    /// entered here, takes other ways out than the region followed would, and so other blocks
    /// would be counted than once the followed region is installed. A long loop gives up
    /// following and runs compiled.
    #[inline]
    fn enters(&mut self, pc: u64) -> bool {
        if self.inside(pc).is_none() {
            return true;
        }
        if self.through == 0 {
            self.position = None;
            return true;
        }
        self.through -= 1;
        false
    }

    /// Stops following the region requested as `number` (its code is not coming, or is gone).
    fn forget(&mut self, number: Option<u32>) {
        let Some(number) = number else { return };
        let Some(request) = self.requested.get_mut(number as usize) else { return };
        for (from, to) in std::mem::take(&mut request.edges) {
            if let Some(into) = self.edges_into.get_mut(&to) {
                into.retain(|&edge| edge != (number, from));
            }
        }
    }

    /// Moves the interpreter's position to the block at `pc`, entered at the region requested
    /// there if any (`requested`), and says whether compiled code would run it inside a region
    /// it is already in.
    ///
    /// A block's count is meant to say how often it is entered where no requested region's code
    /// would be running already. A block that a requested region reaches from its entry by
    /// direct jumps inside it runs in that region's code once the region is installed; until
    /// then the interpreter follows the region as that code would and does not count the block.
    /// So which regions are requested depends on the guest's execution alone, not on how soon
    /// the compiler answers, and a second run asks for the regions a first run compiled.
    #[inline]
    fn step(&mut self, pc: u64, requested: Option<u32>) -> bool {
        let inside = self.inside(pc);
        self.position = match (inside, requested) {
            (Some(number), _) => Some((number, pc)),
            (None, Some(number)) => {
                self.through = FOLLOW_THROUGH;
                Some((number, pc))
            }
            (None, None) => None,
        };
        inside.is_some()
    }

    /// Installs the regions the compiler has finished: all that are ready, or, with `wait`, until
    /// the queue is empty.
    fn receive(&mut self, mem: &AddressSpace, blocks: &mut [Block], index: &PcMap<u32>, wait: bool) {
        while self.pending > 0 {
            let arrived = if wait { self.inbox.wait() } else { self.inbox.take() };
            if arrived.is_empty() {
                break;
            }
            for done in arrived {
                self.pending -= 1;
                let heat = index.get(&done.entry).and_then(|&i| blocks[i as usize].heat.take());
                if done.epoch != self.epoch {
                    // Formed from code that has changed (or an address space replaced) since:
                    // never run it.
                    continue;
                }
                if let Answer::Reshape(shape) = &done.answer {
                    self.stats.load_time += done.time;
                    self.reshape(done.entry, shape, heat, mem, blocks, index);
                } else {
                    self.install(done, blocks, index);
                }
            }
        }
    }

    /// Asks again for the region entered at `entry`, formed this time from the blocks `shape`
    /// names (those the disk cache's code for this entry was compiled from).
    fn reshape(
        &mut self,
        entry: u64,
        shape: &[u64],
        heat: Option<Arc<AtomicU32>>,
        mem: &AddressSpace,
        blocks: &mut [Block],
        index: &PcMap<u32>,
    ) {
        let in_shape = |pc: u64| shape.binary_search(&pc).is_ok();
        // An entry the JIT no longer compiles (the code changed) stays interpreted, as in
        // `request`. Whatever region forms, the compiler takes it as it is.
        let submitted = heat.is_some_and(|heat| {
            crate::jit::form_region(mem, entry, &in_shape)
                .is_some_and(|region| self.submit(region, true, heat, blocks, index))
        });
        if !submitted {
            self.forget_entry(entry, blocks, index);
        }
    }

    /// Stops following the region requested at `entry`.
    fn forget_entry(&mut self, entry: u64, blocks: &mut [Block], index: &PcMap<u32>) {
        if let Some(&i) = index.get(&entry) {
            let number = blocks[i as usize].requested.take();
            self.forget(number);
        }
    }

    fn install(&mut self, done: crate::jit::Compiled, blocks: &mut [Block], index: &PcMap<u32>) {
        let (bytes, cached) = match done.answer {
            Answer::Code { code, cached } => {
                if cached {
                    self.stats.load_time += done.time;
                } else {
                    self.stats.compile_time += done.time;
                }
                (code, cached)
            }
            Answer::Failed(e) => {
                self.stats.compile_time += done.time;
                tracing::warn!("region at {:#x} not compiled: {e}", done.entry);
                self.forget_entry(done.entry, blocks, index);
                return;
            }
            Answer::Reshape(_) => return,
        };
        let (code, evicted) = match self.code.install_with_traps(done.entry, &bytes.code, bytes.traps) {
            Ok(installed) => installed,
            Err(e) => {
                tracing::warn!("region at {:#x} not installed: {e}", done.entry);
                self.forget_entry(done.entry, blocks, index);
                return;
            }
        };
        for pc in evicted {
            let slot = &mut self.table[crate::jit::slot_of(pc)];
            if slot.holds(pc) {
                *slot = crate::jit::Slot::EMPTY;
            }
            if let Some(&i) = index.get(&pc) {
                let block = &mut blocks[i as usize];
                block.region = None;
                // It may get hot again and be compiled anew.
                block.hits = 0;
                let number = block.requested.take();
                self.forget(number);
            }
        }
        if let Some(&i) = index.get(&done.entry) {
            blocks[i as usize].region = Some(code);
            if let Some(number) = blocks[i as usize].requested {
                self.requested[number as usize].installed = true;
            }
        }
        crate::jit::perf_map::record(code, bytes.code.len(), done.entry);
        self.table[crate::jit::slot_of(done.entry)] = crate::jit::Slot::new(done.entry, code);
        if cached {
            self.stats.loaded += 1;
        } else {
            self.stats.regions += 1;
            self.stats.compiled_insts += done.guest_insts as u64;
        }
    }
}

/// Fetches the raw instruction at `pc` (16 or 32 bits).
pub fn fetch(mem: &AddressSpace, pc: u64) -> Result<u32, Fault> {
    let lo = mem.fetch16(pc)?;
    if lo & 3 != 3 {
        return Ok(u32::from(lo));
    }
    let hi = mem.fetch16(pc.wrapping_add(2))?;
    Ok(u32::from(lo) | u32::from(hi) << 16)
}

/// Decodes the block starting at `pc`. Fails only if the first instruction cannot be fetched.
pub fn decode_block(pc: u64, mem: &AddressSpace) -> Result<Vec<Inst>, Fault> {
    let mut insts = Vec::with_capacity(16);
    let mut at = pc;
    loop {
        let raw = match fetch(mem, at) {
            Ok(raw) => raw,
            Err(fault) if insts.is_empty() => return Err(fault),
            // The fetch fault belongs to a later instruction: end the block before it so the fault
            // is raised only if execution gets there.
            Err(_) => break,
        };
        let mut inst = decode(raw);
        if inst.rd == 0 && writes_xreg(inst.op) {
            inst.rd = X_SINK;
        }
        insts.push(inst);
        at = at.wrapping_add(u64::from(inst.len));
        if ends_block(inst.op) || insts.len() >= MAX_BLOCK {
            break;
        }
        // Keep blocks within two pages so that invalidation by page stays simple.
        if at / PAGE_SIZE > pc / PAGE_SIZE + 1 {
            break;
        }
    }
    // A block that runs off its end falls through: give it an explicit continuation marker by
    // leaving the pc bookkeeping to `run_block`, which sets `cpu.pc` past the last instruction.
    Ok(insts)
}

/// Whether an op ends a block (control transfer, system instruction or trap).
pub fn ends_block(op: Op) -> bool {
    matches!(
        op,
        Op::Jal
            | Op::Jalr
            | Op::Beq
            | Op::Bne
            | Op::Blt
            | Op::Bge
            | Op::Bltu
            | Op::Bgeu
            | Op::Ecall
            | Op::Ebreak
            | Op::FenceI
            | Op::Illegal
    )
}

/// Whether an op writes an integer destination register.
pub fn writes_xreg(op: Op) -> bool {
    use Op::*;
    if op.is_fp_compute() {
        return matches!(
            op,
            FcvtWS
                | FcvtWuS
                | FcvtLS
                | FcvtLuS
                | FmvXW
                | FeqS
                | FltS
                | FleS
                | FclassS
                | FcvtWD
                | FcvtWuD
                | FcvtLD
                | FcvtLuD
                | FmvXD
                | FeqD
                | FltD
                | FleD
                | FclassD
        );
    }
    !matches!(
        op,
        Illegal
            | Beq
            | Bne
            | Blt
            | Bge
            | Bltu
            | Bgeu
            | Sb
            | Sh
            | Sw
            | Sd
            | Fence
            | FenceI
            | Ecall
            | Ebreak
            | Flw
            | Fsw
            | Fld
            | Fsd
    )
}

#[cfg(test)]
mod tests;
