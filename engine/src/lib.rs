//! Guest execution for shoal.
//!
//! A guest is a Linux user-mode process VM: an RV64GC ELF program with its own sandboxed address
//! space, its threads (vCPUs), file descriptors and signals. This crate knows nothing of the network
//! or the cluster.
//!
//! - [`rv64`]: the instruction set (decoder, disassembler, floating-point semantics).
//! - [`mem`]: one sandboxed arena per guest address space.
//! - [`interp`]: the interpreter tier.
//! - [`jit`]: the Cranelift JIT tier for hot regions.
//! - [`loader`]: ELF loading and the initial stack.
//! - [`linux`]: the Linux system-call layer, processes, threads and signals.

pub mod interp;
pub mod jit;
pub mod linux;
pub mod loader;
pub mod mem;
pub mod rv64;

#[cfg(test)]
mod testing;
