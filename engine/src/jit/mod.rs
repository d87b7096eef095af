//! The JIT tier: hot regions of guest code compiled to host code with Cranelift.
//!
//! A region is a set of decoded guest blocks reachable from one entry pc by direct branches and
//! jumps; its loops stay inside one host function, with guest registers in Cranelift variables
//! (host registers) and written back only where the region is left.
//!
//! Calling convention of a compiled region (host C ABI):
//!
//! ```text
//! extern "C" fn(cpu: *mut Cpu, env: *const Env) -> u32 exit code
//!
//!   on entry   guest registers are read from `cpu`
//!   on exit    every register the region wrote is stored back, `cpu.pc` holds the next guest pc,
//!              `cpu.instret` counts the instructions retired, and the code says what to do:
//!              EXIT_NEXT       carry on at cpu.pc
//!              EXIT_INTERPRET  run the interpreter at cpu.pc: the instruction there needs it (a
//!                              fault to raise precisely, a system call, an access that crosses
//!                              a page, an instruction the JIT leaves to the interpreter)
//!              EXIT_ATTENTION  someone asked this vCPU to stop (checked on every loop back-edge)
//! ```
//!
//! Compiled code is position independent: it reaches guest memory, the permission table and the
//! helpers only through `Env`, and other guest state only through `cpu`; it contains no host
//! addresses and needs no relocation.
//!
//! **Architecture Invariant:** compiled code touches guest memory only after the same page-table
//! check the interpreter makes (inline: bounds, permission bits, no page crossing); anything else
//! leaves the region at that instruction with precise state, and the interpreter takes over.

pub mod cache;
mod codegen;
pub mod object;
mod region;

use std::sync::atomic::AtomicU32;

use crate::interp::Cpu;
use crate::mem::AddressSpace;

pub use codegen::CompileError;

/// Exit codes of compiled code.
pub const EXIT_NEXT: u32 = 0;
/// The interpreter must run the instruction at `cpu.pc`.
pub const EXIT_INTERPRET: u32 = 1;
/// The vCPU was asked to stop.
pub const EXIT_ATTENTION: u32 = 2;

/// What compiled code may reach besides the `Cpu`: addressed only through this struct.
#[repr(C)]
#[derive(Debug)]
pub struct Env {
    /// Host address of guest address 0.
    pub arena: *mut u8,
    /// The guest page table: one permission byte per page.
    pub perms: *const u8,
    /// Set when the vCPU must stop.
    pub attention: *const AtomicU32,
    /// Floating-point helpers, one per op (`codegen::FP_TABLE`).
    pub fp_table: *const codegen::FpFn,
}

impl Env {
    /// The environment for running compiled code of `mem` with `attention`.
    pub fn new(mem: &AddressSpace, attention: &AtomicU32) -> Env {
        Env { arena: mem.host_base(), perms: mem.perm_base(), attention, fp_table: codegen::FP_TABLE.as_ptr() }
    }
}

/// A compiled region in executable memory.
#[derive(Debug)]
pub struct Code {
    exec: ExecMem,
    /// Guest pc of the region's entry.
    pub entry: u64,
    /// Guest instructions the region covers.
    pub guest_insts: usize,
}

impl Code {
    /// Runs the region.
    ///
    /// # Safety
    ///
    /// `env` must describe the address space the region was compiled from (its arena and page
    /// table), with that address space alive for the whole call, and `cpu.pc` must equal
    /// [`Code::entry`].
    pub unsafe fn run(&self, cpu: &mut Cpu, env: &Env) -> u32 {
        debug_assert_eq!(cpu.pc, self.entry);
        // SAFETY: the buffer holds a function compiled for the host with the signature above; it
        // is executable and lives as long as `self`. It dereferences `cpu` and `env` only within
        // their structs and guest memory only after the inline page-table checks, which the
        // caller guarantees describe a live arena.
        let f: extern "C" fn(*mut Cpu, *const Env) -> u32 = unsafe { std::mem::transmute(self.exec.ptr) };
        f(cpu, env)
    }
}

/// A region compiler for the host CPU.
pub struct Compiler {
    isa: std::sync::Arc<dyn cranelift_codegen::isa::TargetIsa>,
    ctx: cranelift_codegen::Context,
    fctx: cranelift_frontend::FunctionBuilderContext,
}

impl std::fmt::Debug for Compiler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Compiler").field("isa", &self.isa.name()).finish()
    }
}

impl Compiler {
    /// A compiler for the host, or an error if Cranelift does not support it.
    pub fn new() -> Result<Compiler, CompileError> {
        use cranelift_codegen::settings::{self, Configurable};
        let mut flags = settings::builder();
        let set =
            |f: &mut settings::Builder, k: &str, v: &str| f.set(k, v).map_err(|e| CompileError::Setup(e.to_string()));
        set(&mut flags, "opt_level", "speed")?;
        set(&mut flags, "is_pic", "true")?;
        set(&mut flags, "enable_verifier", if cfg!(debug_assertions) { "true" } else { "false" })?;
        let isa = cranelift_native::builder()
            .map_err(|e| CompileError::Setup(e.to_string()))?
            .finish(settings::Flags::new(flags))
            .map_err(|e| CompileError::Setup(e.to_string()))?;
        Ok(Compiler {
            isa,
            ctx: cranelift_codegen::Context::new(),
            fctx: cranelift_frontend::FunctionBuilderContext::new(),
        })
    }

    /// Forms and compiles the region entered at `entry`. `None` when nothing there is worth
    /// compiling (the first instruction is one the JIT leaves to the interpreter).
    pub fn compile(&mut self, mem: &AddressSpace, entry: u64) -> Result<Option<Code>, CompileError> {
        let Some(region) = region::form(mem, entry) else { return Ok(None) };
        let bytes = codegen::compile(&*self.isa, &mut self.ctx, &mut self.fctx, &region)?;
        let exec = ExecMem::new(&bytes)?;
        Ok(Some(Code { exec, entry, guest_insts: region.instruction_count() }))
    }
}

/// Executable host memory holding one compiled region.
#[derive(Debug)]
struct ExecMem {
    ptr: *const u8,
    len: usize,
}

// SAFETY: the mapping is immutable (read/execute) after creation and owned by this value.
unsafe impl Send for ExecMem {}
// SAFETY: as above; concurrent execution of immutable code is fine.
unsafe impl Sync for ExecMem {}

impl ExecMem {
    fn new(code: &[u8]) -> Result<ExecMem, CompileError> {
        let len = code.len().max(1).next_multiple_of(4096);
        // SAFETY: a fresh private anonymous mapping; nothing else refers to it.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(CompileError::Memory(std::io::Error::last_os_error()));
        }
        // SAFETY: `p` is a fresh writable mapping of `len >= code.len()` bytes.
        unsafe { std::ptr::copy_nonoverlapping(code.as_ptr(), p.cast::<u8>(), code.len()) };
        // SAFETY: flips our own mapping to read/execute now that the code is in place.
        if unsafe { libc::mprotect(p, len, libc::PROT_READ | libc::PROT_EXEC) } != 0 {
            let e = std::io::Error::last_os_error();
            // SAFETY: unmapping the mapping made above.
            unsafe { libc::munmap(p, len) };
            return Err(CompileError::Memory(e));
        }
        Ok(ExecMem { ptr: p.cast(), len })
    }
}

impl Drop for ExecMem {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, unmapped once; no code runs from it any more (its
        // owner is dropped only when no vCPU is inside it).
        unsafe { libc::munmap(self.ptr.cast_mut().cast(), self.len) };
    }
}

#[cfg(test)]
mod tests;
