//! The JIT tier: hot regions of guest code compiled to host code with Cranelift.
//!
//! A region is a set of decoded guest blocks reachable from one entry pc by direct branches and
//! jumps; its loops stay inside one host function, with guest registers in Cranelift variables
//! (host registers), written through to `cpu` before the next point where guest state can be
//! observed (a guest memory access, an exit, the end of a guest block).
//!
//! Calling convention of a compiled region (Cranelift's `tail` convention, so that regions can
//! jump to one another without growing the stack; the host enters through a trampoline):
//!
//! ```text
//! fn(cpu: *mut Cpu, env: *const Env) -> u32 exit code
//!
//!   on entry   guest registers are read from `cpu`
//!   on exit    every register the region wrote is in `cpu` (at a fault: as they were at the
//!              trap site's restart point), `cpu.pc` holds the next guest pc, `cpu.instret`
//!              counts the instructions retired, and the code says what to do:
//!              EXIT_NEXT       carry on at cpu.pc
//!              EXIT_INTERPRET  run the interpreter at cpu.pc: the instruction there needs it (a
//!                              fault to raise precisely, a system call, an access that crosses
//!                              a page, an instruction the JIT leaves to the interpreter)
//!              EXIT_ATTENTION  someone asked this vCPU to stop (checked at every loop's head)
//!              EXIT_FAULT      (from `fault::enter`, not the region) a guest access faulted in
//!                              the host MMU; its trap site says where the guest was
//! ```
//!
//! Chaining: where a region leaves for a guest pc outside itself (a direct jump, a branch, or an
//! indirect jump or return through `jalr`), it stores its registers and looks the target up in the
//! vCPU's direct-mapped region table (`Env::table`, [`TABLE_SLOTS`] slots indexed by
//! [`slot_of`]). On a hit it tail-calls the region found there, with no trip through the
//! dispatcher; on a miss, or when the vCPU must stop (`attention`, which is also how another
//! thread's change of code arrives) or its instruction budget is spent, it returns `EXIT_NEXT`.
//! For `jalr` this lookup is the inline target cache. Chains go through the table only, never
//! through patched code, so dropping a region (eviction, invalidation) is clearing its slot: no
//! chain can point at freed code.
//!
//! Compiled code is position independent: it reaches guest memory, the permission table, the
//! region table and the helpers only through `Env`, and other guest state only through `cpu`;
//! it contains no host addresses and needs no relocation, so its bytes can be cached on disk and
//! loaded anywhere.
//!
//! Guest memory accesses follow one of two [`MemoryModel`]s. On x86-64 Linux they are
//! *guarded*: the base register is checked against the space's end and the access goes
//! straight to the arena, whose host protection mirrors the guest's permissions; a refused access
//! faults in the host and `fault` recovers precise guest state from the access's trap site.
//! Elsewhere they are *checked* inline against the page table, as the interpreter checks them.
//!
//! **Architecture Invariant:** compiled code touches guest memory only where the guest may
//! (guarded: the host MMU enforces the guest's permissions, and addresses past the space land in
//! its guard; checked: the interpreter's page-table check inline); a refused access leaves the
//! region at that instruction with precise state, and the interpreter takes over.

mod arena;
pub mod cache;
mod codegen;
pub mod fault;
pub mod object;
pub(crate) mod perf_map;
mod region;
mod service;

use std::sync::atomic::AtomicU32;

use crate::interp::Cpu;
use crate::mem::AddressSpace;

pub use arena::{CodeArena, DEFAULT_ARENA_BYTES};
pub use codegen::{CompileError, MachineCode, MemoryModel, TrapSite};
pub(crate) use region::Region;
pub(crate) use region::form as form_region;
pub(crate) use service::{Answer, Compiled, Inbox, Job};
pub use service::{Drained, JitService};

/// Exit codes of compiled code.
pub const EXIT_NEXT: u32 = 0;
/// The interpreter must run the instruction at `cpu.pc`.
pub const EXIT_INTERPRET: u32 = 1;
/// The vCPU was asked to stop.
pub const EXIT_ATTENTION: u32 = 2;

/// Slots in a vCPU's region table (a power of two): 256 KiB of zeroed memory, committed only
/// where used. 16384 rather than 4096 slots cut sqlite's dispatcher trips from slot
/// collisions (about 4% of its run time).
pub const TABLE_SLOTS: usize = 16384;

/// The table slot of guest pc `pc`.
#[inline]
pub fn slot_of(pc: u64) -> usize {
    ((pc >> 1) as usize) & (TABLE_SLOTS - 1)
}

/// One entry of the region table: a guest entry pc and the host address of its code.
///
/// The pc is stored with bit 0 flipped, so that an all-zero slot is empty (it names pc 1, and
/// guest pcs are 2-byte aligned): a table is then zeroed memory, which the host commits only
/// where slots are used.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slot {
    /// The region's entry pc XOR 1.
    tag: u64,
    /// Host address of the region's code.
    pub code: usize,
}

impl Slot {
    /// An empty slot.
    pub const EMPTY: Slot = Slot { tag: 0, code: 0 };

    /// The slot of the region entered at `pc` with code at `code`.
    pub fn new(pc: u64, code: usize) -> Slot {
        Slot { tag: pc ^ 1, code }
    }

    /// Whether this slot holds the region entered at `pc`.
    #[inline]
    pub fn holds(&self, pc: u64) -> bool {
        self.tag == pc ^ 1
    }
}

/// A region table of [`TABLE_SLOTS`] empty slots, committed by the host only as slots are used.
pub fn new_table() -> Box<[Slot]> {
    // SAFETY: all-zero bytes are a valid `Slot` (two integers), the empty one.
    unsafe { Box::<[Slot]>::new_zeroed_slice(TABLE_SLOTS).assume_init() }
}

/// What compiled code may reach besides the `Cpu`: addressed only through this struct.
#[repr(C)]
#[derive(Debug)]
pub struct Env {
    /// Host address of guest address 0.
    pub arena: *mut u8,
    /// The guest page table: one permission byte per page, then a zero sentinel.
    pub perms: *const u8,
    /// Number of guest pages: page numbers are clamped to this (the sentinel).
    pub pages: u64,
    /// Set when the vCPU must stop.
    pub attention: *const AtomicU32,
    /// Floating-point helpers, one per op (`codegen::FP_TABLE`).
    pub fp_table: *const codegen::FpFn,
    /// The code compiled code calls them through (`codegen::fp_thunk`, [`Trampoline`]).
    pub fp_thunk: usize,
    /// The vCPU's region table, [`TABLE_SLOTS`] entries.
    pub table: *const Slot,
    /// Chaining stops once `cpu.instret` reaches this (the end of the vCPU's slice).
    pub limit: u64,
}

impl Env {
    /// The environment for running compiled code of `mem` with `attention` and the region
    /// table `table` (which must have [`TABLE_SLOTS`] slots and outlive every run), entered
    /// through `entry`.
    pub fn new(mem: &AddressSpace, attention: &AtomicU32, table: &[Slot], limit: u64, entry: &Trampoline) -> Env {
        assert_eq!(table.len(), TABLE_SLOTS, "a region table has TABLE_SLOTS slots");
        Env {
            arena: mem.host_base(),
            perms: mem.perm_base(),
            pages: mem.pages(),
            attention,
            fp_table: codegen::FP_TABLE.as_ptr(),
            fp_thunk: entry.fp_thunk,
            table: table.as_ptr(),
            limit,
        }
    }
}

/// The host's way into compiled code: a small function with the host C ABI that calls a region
/// with the `tail` convention and returns its exit code; and compiled code's way out to the
/// floating-point helpers (`codegen::fp_thunk`).
#[derive(Debug)]
pub struct Trampoline {
    /// Holds the trampoline's and the thunk's code.
    _exec: arena::CodeArena,
    entry: usize,
    fp_thunk: usize,
}

impl Trampoline {
    fn compile(
        isa: &dyn cranelift_codegen::isa::TargetIsa,
        ctx: &mut cranelift_codegen::Context,
        fctx: &mut cranelift_frontend::FunctionBuilderContext,
    ) -> Result<Trampoline, CompileError> {
        let entry = codegen::trampoline(isa, ctx, fctx)?;
        let thunk = codegen::fp_thunk(isa, ctx, fctx)?;
        // A chunk for each at most: installing the second evicts nothing.
        let mut exec = arena::CodeArena::new(4 * 4096);
        let (entry, _) = exec.install(0, &entry)?;
        let (fp_thunk, _) = exec.install(1, &thunk)?;
        Ok(Trampoline { _exec: exec, entry, fp_thunk })
    }

    /// Runs the region whose code starts at host address `code`; returns its exit code, or
    /// [`fault::EXIT_FAULT`] with `frame` saying where a guest access faulted.
    ///
    /// # Safety
    ///
    /// `code` must be the address of a region compiled by this process's compiler and still
    /// installed; `env` must describe the address space it was compiled from (arena, page table,
    /// a live region table of installed regions), alive for the whole call; `cpu.pc` must be
    /// the region's entry.
    pub unsafe fn enter(&self, code: usize, cpu: &mut Cpu, env: &Env, frame: &mut fault::Frame) -> u32 {
        // SAFETY: the trampoline was compiled for the host with the signature `fault::enter`
        // calls it with and lives as long as `self`. The region it calls dereferences `cpu` and
        // `env` only within their structs and guest memory only inside the arena and its guards
        // (which the host protects as the guest may access it, or after the inline checks), and
        // it chains only to regions in `env.table`, which the caller guarantees are installed.
        unsafe { fault::enter(self.entry, code, cpu, env, frame) }
    }
}

/// A region compiler for the host CPU.
pub struct Compiler {
    isa: std::sync::Arc<dyn cranelift_codegen::isa::TargetIsa>,
    model: MemoryModel,
    ctx: cranelift_codegen::Context,
    fctx: cranelift_frontend::FunctionBuilderContext,
}

impl std::fmt::Debug for Compiler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Compiler").field("isa", &self.isa.name()).field("model", &self.model).finish()
    }
}

impl Compiler {
    /// A compiler for the host, or an error if Cranelift does not support it. Its code is
    /// guarded where the host supports fault recovery (installing the fault handler), else
    /// checked.
    pub fn new() -> Result<Compiler, CompileError> {
        let model =
            if fault::SUPPORTED && fault::install().is_ok() { MemoryModel::Guarded } else { MemoryModel::Checked };
        Self::with_model(model)
    }

    /// A compiler for the host whose code accesses guest memory as `model` says.
    pub fn with_model(model: MemoryModel) -> Result<Compiler, CompileError> {
        if model == MemoryModel::Guarded {
            fault::install().map_err(|e| CompileError::Setup(format!("no guest fault handler: {e}")))?;
        }
        use cranelift_codegen::settings::{self, Configurable};
        let mut flags = settings::builder();
        let set =
            |f: &mut settings::Builder, k: &str, v: &str| f.set(k, v).map_err(|e| CompileError::Setup(e.to_string()));
        set(&mut flags, "opt_level", "speed")?;
        set(&mut flags, "is_pic", "true")?;
        // Cranelift's tail calls (chaining) need frame pointers.
        set(&mut flags, "preserve_frame_pointers", "true")?;
        set(&mut flags, "enable_verifier", if cfg!(debug_assertions) { "true" } else { "false" })?;
        let isa = cranelift_native::builder()
            .map_err(|e| CompileError::Setup(e.to_string()))?
            .finish(settings::Flags::new(flags))
            .map_err(|e| CompileError::Setup(e.to_string()))?;
        Ok(Compiler {
            isa,
            model,
            ctx: cranelift_codegen::Context::new(),
            fctx: cranelift_frontend::FunctionBuilderContext::new(),
        })
    }

    /// Compiles `region` to position-independent machine code.
    pub(crate) fn compile_region(&mut self, region: &region::Region) -> Result<MachineCode, CompileError> {
        codegen::compile(&*self.isa, &mut self.ctx, &mut self.fctx, region, self.model)
    }

    /// How this compiler's code accesses guest memory.
    pub fn model(&self) -> MemoryModel {
        self.model
    }

    /// Compiles the entry trampoline and the floating-point helpers' thunk.
    fn trampoline(&mut self) -> Result<Trampoline, CompileError> {
        Trampoline::compile(&*self.isa, &mut self.ctx, &mut self.fctx)
    }
}

#[cfg(test)]
mod tests;
