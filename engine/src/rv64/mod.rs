//! The RV64GC instruction set: decoding, disassembly and floating-point semantics.

pub mod fp;
pub mod inst;

pub use inst::{Inst, Op};
