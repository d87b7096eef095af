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
//! whole cache is dropped before the next block runs, so stale code never executes.

mod exec;

pub(crate) use exec::{fp_compute, int_source, uses_rm};

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::mem::{AddressSpace, Fault, PAGE_SIZE};
use crate::rv64::{Inst, Op, decode};

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
    /// Times run by the interpreter (tiering counts up to the threshold, then stops).
    hits: u32,
    /// The compiled region entered here (index in the tier's codes), once there is one.
    region: Option<u32>,
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

/// Interpreter runs of a block before its region is compiled (`Engine::Auto`). Cranelift takes
/// on the order of 100 µs to 1 ms per region, which a block has to win back: a region pays
/// for itself after a few thousand interpreted instructions saved.
pub const HOT_THRESHOLD: u32 = 200;

/// The JIT tier's state of one vCPU.
struct Tier {
    compiler: crate::jit::Compiler,
    codes: Vec<crate::jit::Code>,
    /// Direct-mapped table of region entries: (pc, index in `codes`). A region that loses its
    /// slot is found again through its entry block (`Block::region`).
    direct: Box<[(u64, u32)]>,
    threshold: u32,
    compiled_insts: u64,
    compile_time: std::time::Duration,
}

impl std::fmt::Debug for Tier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tier").field("regions", &self.codes.len()).field("threshold", &self.threshold).finish()
    }
}

/// The interpreter's per-vCPU state: its block cache.
#[derive(Debug)]
pub struct Interp {
    blocks: Vec<Block>,
    index: HashMap<u64, u32>,
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
            index: HashMap::new(),
            direct: vec![(u64::MAX, 0); DIRECT_SLOTS].into_boxed_slice(),
            generation: u64::MAX,
            tier: None,
        }
    }

    /// An interpreter with the tiers `engine` asks for. If the JIT cannot be set up for this host
    /// the interpreter runs alone (with a warning).
    pub fn with_engine(engine: Engine) -> Self {
        let mut it = Interp::new();
        let threshold = match engine {
            Engine::Interp => return it,
            Engine::Auto => HOT_THRESHOLD,
            Engine::Jit => 1,
        };
        match crate::jit::Compiler::new() {
            Ok(compiler) => {
                it.tier = Some(Box::new(Tier {
                    compiler,
                    codes: Vec::new(),
                    direct: vec![(u64::MAX, 0); DIRECT_SLOTS].into_boxed_slice(),
                    threshold,
                    compiled_insts: 0,
                    compile_time: std::time::Duration::ZERO,
                }));
            }
            Err(e) => tracing::warn!("JIT unavailable, interpreting only: {e}"),
        }
        it
    }

    /// Regions compiled, guest instructions they cover, and time spent compiling.
    pub fn jit_stats(&self) -> (usize, u64, std::time::Duration) {
        self.tier
            .as_ref()
            .map_or((0, 0, std::time::Duration::ZERO), |t| (t.codes.len(), t.compiled_insts, t.compile_time))
    }

    /// Drops every cached block and compiled region.
    pub fn flush(&mut self) {
        self.blocks.clear();
        self.index.clear();
        self.direct.fill((u64::MAX, 0));
        if let Some(t) = self.tier.as_mut() {
            t.codes.clear();
            t.direct.fill((u64::MAX, 0));
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
        // Set when compiled code handed one instruction back: the interpreter runs the block.
        let mut interpret_once = false;
        loop {
            if attention.load(Ordering::Relaxed) != 0 {
                return Exit::Interrupted;
            }
            if cpu.instret.wrapping_sub(start) >= budget {
                return Exit::Budget;
            }
            let generation = mem.code_generation();
            if generation != self.generation {
                self.flush();
                self.generation = generation;
            }
            if !interpret_once
                && let Some(tier) = self.tier.as_deref()
                && let Some(code) = tier.lookup(cpu.pc)
            {
                let env = crate::jit::Env::new(mem, attention);
                // SAFETY: the region was compiled from `mem`'s current code generation (the cache
                // is flushed when it changes), `env` describes `mem`, which outlives the call,
                // and `cpu.pc` is the region's entry.
                match unsafe { code.run(cpu, &env) } {
                    crate::jit::EXIT_NEXT => continue,
                    crate::jit::EXIT_ATTENTION => return Exit::Interrupted,
                    // The instruction at cpu.pc needs the interpreter: run one block there.
                    _ => interpret_once = true,
                }
            }
            let idx = match self.lookup(cpu.pc) {
                Some(i) => i,
                None => match self.translate(cpu.pc, mem) {
                    Ok(i) => i,
                    Err(fault) => return Exit::Fault(fault),
                },
            };
            let block = &mut self.blocks[idx as usize];
            if let Some(tier) = self.tier.as_deref_mut() {
                if let Some(i) = block.region {
                    // A compiled region whose front-table slot another entry took: put it back.
                    if !interpret_once {
                        tier.direct[((cpu.pc >> 1) as usize) & (DIRECT_SLOTS - 1)] = (cpu.pc, i);
                        continue;
                    }
                } else if block.hits < tier.threshold {
                    block.hits += 1;
                    if block.hits == tier.threshold {
                        block.region = tier.compile(cpu.pc, mem);
                        if block.region.is_some() {
                            continue;
                        }
                    }
                }
            }
            interpret_once = false;
            let block = &self.blocks[idx as usize];
            if let Some(exit) = exec::run_block(cpu, mem, &block.insts) {
                return exit;
            }
        }
    }

    #[inline]
    fn lookup(&mut self, pc: u64) -> Option<u32> {
        let slot = ((pc >> 1) as usize) & (DIRECT_SLOTS - 1);
        let (tag, idx) = self.direct[slot];
        if tag == pc {
            return Some(idx);
        }
        let idx = *self.index.get(&pc)?;
        self.direct[slot] = (pc, idx);
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
        self.blocks.push(Block { insts: insts.into_boxed_slice(), hits: 0, region: None });
        self.index.insert(pc, idx);
        let slot = ((pc >> 1) as usize) & (DIRECT_SLOTS - 1);
        self.direct[slot] = (pc, idx);
        Ok(idx)
    }
}

impl Tier {
    /// The compiled region entered at `pc`, if any.
    #[inline]
    fn lookup(&self, pc: u64) -> Option<&crate::jit::Code> {
        let (tag, i) = self.direct[((pc >> 1) as usize) & (DIRECT_SLOTS - 1)];
        if tag == pc { self.codes.get(i as usize) } else { None }
    }

    /// Compiles the region entered at `pc` and returns its index, or `None` when it cannot be
    /// compiled (then the block stays interpreted).
    fn compile(&mut self, pc: u64, mem: &AddressSpace) -> Option<u32> {
        let start = std::time::Instant::now();
        let result = self.compiler.compile(mem, pc);
        self.compile_time += start.elapsed();
        match result {
            Ok(Some(code)) => {
                self.compiled_insts += code.guest_insts as u64;
                let i = u32::try_from(self.codes.len()).ok()?;
                self.codes.push(code);
                self.direct[((pc >> 1) as usize) & (DIRECT_SLOTS - 1)] = (pc, i);
                Some(i)
            }
            Ok(None) => None,
            Err(e) => {
                tracing::warn!("region at {pc:#x} not compiled: {e}");
                None
            }
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
