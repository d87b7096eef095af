//! The RV64GC instruction set: decoding, disassembly and floating-point semantics.

pub mod decode;
pub mod disasm;
pub mod fp;
pub mod inst;

pub use decode::decode;
pub use disasm::disassemble;
pub use inst::{Inst, Op};
