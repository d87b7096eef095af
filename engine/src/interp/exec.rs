//! Execution of one decoded block: the interpreter's inner loop.
//!
//! Semantics follow the RISC-V unprivileged ISA (version 20191213): W ops compute on the low 32
//! bits and sign-extend; division by zero and signed overflow give the results of the M chapter's
//! table (no trap); single-precision values live NaN-boxed in 64-bit registers, and an input that is
//! not properly boxed reads as the canonical NaN.
#![expect(
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap,
    clippy::cast_sign_loss,
    reason = "RISC-V semantics are defined on bit patterns: truncation and sign reinterpretation are the spec's own operations here"
)]

use std::sync::atomic::{AtomicI32, AtomicI64, AtomicU32, AtomicU64, Ordering};

use super::{Cpu, Exit, Reservation};
use crate::mem::AddressSpace;
use crate::rv64::fp::{self, Rounding};
use crate::rv64::{Inst, Op};

const SIGN32: u32 = 0x8000_0000;
const SIGN64: u64 = 0x8000_0000_0000_0000;
const BOX: u64 = 0xffff_ffff_0000_0000;

/// Reads a single-precision operand, unboxing it.
#[inline(always)]
fn unbox(v: u64) -> u32 {
    if v & BOX == BOX { v as u32 } else { fp::CANONICAL_NAN_32 }
}

#[inline(always)]
fn boxed(v: u32) -> u64 {
    u64::from(v) | BOX
}

#[inline(always)]
fn sext32(v: u32) -> u64 {
    v as i32 as i64 as u64
}

/// Runs `insts` starting at `cpu.pc`. Returns `None` when the block completed and `cpu.pc` holds
/// the next pc, or the exit that stopped it (with `cpu.pc` at the instruction concerned).
#[inline(never)]
pub(super) fn run_block(cpu: &mut Cpu, mem: &AddressSpace, insts: &[Inst]) -> Option<Exit> {
    let mut pc = cpu.pc;
    for (n, inst) in insts.iter().enumerate() {
        let rd = (inst.rd & 63) as usize;
        let rs1 = (inst.rs1 & 31) as usize;
        let rs2 = (inst.rs2 & 31) as usize;
        let imm = i64::from(inst.imm) as u64;
        let x = &mut cpu.x;
        macro_rules! exit {
            ($e:expr) => {{
                cpu.pc = pc;
                cpu.instret += n as u64;
                return Some($e);
            }};
        }
        macro_rules! jump {
            ($target:expr) => {{
                cpu.pc = $target;
                cpu.instret += n as u64 + 1;
                return None;
            }};
        }
        macro_rules! load {
            ($t:ty) => {
                match mem.load::<$t>(x[rs1].wrapping_add(imm)) {
                    Ok(v) => v,
                    Err(f) => exit!(Exit::Fault(f)),
                }
            };
        }
        macro_rules! store {
            ($t:ty, $v:expr) => {
                if let Err(f) = mem.store::<$t>(x[rs1].wrapping_add(imm), $v) {
                    exit!(Exit::Fault(f))
                }
            };
        }
        match inst.op {
            Op::Illegal => exit!(Exit::Illegal),
            Op::Lui => x[rd] = imm,
            Op::Auipc => x[rd] = pc.wrapping_add(imm),
            Op::Jal => {
                x[rd] = pc.wrapping_add(u64::from(inst.len));
                jump!(pc.wrapping_add(imm))
            }
            Op::Jalr => {
                let target = x[rs1].wrapping_add(imm) & !1;
                x[rd] = pc.wrapping_add(u64::from(inst.len));
                jump!(target)
            }
            Op::Beq => {
                if x[rs1] == x[rs2] {
                    jump!(pc.wrapping_add(imm))
                }
            }
            Op::Bne => {
                if x[rs1] != x[rs2] {
                    jump!(pc.wrapping_add(imm))
                }
            }
            Op::Blt => {
                if (x[rs1] as i64) < (x[rs2] as i64) {
                    jump!(pc.wrapping_add(imm))
                }
            }
            Op::Bge => {
                if (x[rs1] as i64) >= (x[rs2] as i64) {
                    jump!(pc.wrapping_add(imm))
                }
            }
            Op::Bltu => {
                if x[rs1] < x[rs2] {
                    jump!(pc.wrapping_add(imm))
                }
            }
            Op::Bgeu => {
                if x[rs1] >= x[rs2] {
                    jump!(pc.wrapping_add(imm))
                }
            }
            Op::Lb => x[rd] = load!(u8) as i8 as i64 as u64,
            Op::Lh => x[rd] = load!(u16) as i16 as i64 as u64,
            Op::Lw => x[rd] = sext32(load!(u32)),
            Op::Ld => x[rd] = load!(u64),
            Op::Lbu => x[rd] = u64::from(load!(u8)),
            Op::Lhu => x[rd] = u64::from(load!(u16)),
            Op::Lwu => x[rd] = u64::from(load!(u32)),
            Op::Sb => store!(u8, x[rs2] as u8),
            Op::Sh => store!(u16, x[rs2] as u16),
            Op::Sw => store!(u32, x[rs2] as u32),
            Op::Sd => store!(u64, x[rs2]),
            Op::Addi => x[rd] = x[rs1].wrapping_add(imm),
            Op::Slti => x[rd] = u64::from((x[rs1] as i64) < (imm as i64)),
            Op::Sltiu => x[rd] = u64::from(x[rs1] < imm),
            Op::Xori => x[rd] = x[rs1] ^ imm,
            Op::Ori => x[rd] = x[rs1] | imm,
            Op::Andi => x[rd] = x[rs1] & imm,
            Op::Slli => x[rd] = x[rs1] << (imm & 63),
            Op::Srli => x[rd] = x[rs1] >> (imm & 63),
            Op::Srai => x[rd] = ((x[rs1] as i64) >> (imm & 63)) as u64,
            Op::Add => x[rd] = x[rs1].wrapping_add(x[rs2]),
            Op::Sub => x[rd] = x[rs1].wrapping_sub(x[rs2]),
            Op::Sll => x[rd] = x[rs1] << (x[rs2] & 63),
            Op::Slt => x[rd] = u64::from((x[rs1] as i64) < (x[rs2] as i64)),
            Op::Sltu => x[rd] = u64::from(x[rs1] < x[rs2]),
            Op::Xor => x[rd] = x[rs1] ^ x[rs2],
            Op::Srl => x[rd] = x[rs1] >> (x[rs2] & 63),
            Op::Sra => x[rd] = ((x[rs1] as i64) >> (x[rs2] & 63)) as u64,
            Op::Or => x[rd] = x[rs1] | x[rs2],
            Op::And => x[rd] = x[rs1] & x[rs2],
            Op::Addiw => x[rd] = sext32((x[rs1] as u32).wrapping_add(imm as u32)),
            Op::Slliw => x[rd] = sext32((x[rs1] as u32) << (imm & 31)),
            Op::Srliw => x[rd] = sext32((x[rs1] as u32) >> (imm & 31)),
            Op::Sraiw => x[rd] = ((x[rs1] as i32) >> (imm & 31)) as i64 as u64,
            Op::Addw => x[rd] = sext32((x[rs1] as u32).wrapping_add(x[rs2] as u32)),
            Op::Subw => x[rd] = sext32((x[rs1] as u32).wrapping_sub(x[rs2] as u32)),
            Op::Sllw => x[rd] = sext32((x[rs1] as u32) << (x[rs2] & 31)),
            Op::Srlw => x[rd] = sext32((x[rs1] as u32) >> (x[rs2] & 31)),
            Op::Sraw => x[rd] = ((x[rs1] as i32) >> (x[rs2] & 31)) as i64 as u64,
            Op::Fence => {}
            Op::FenceI => {
                mem.flush_code();
                jump!(pc.wrapping_add(u64::from(inst.len)))
            }
            Op::Ecall => exit!(Exit::Ecall),
            Op::Ebreak => exit!(Exit::Breakpoint),
            Op::Csrrw | Op::Csrrs | Op::Csrrc | Op::Csrrwi | Op::Csrrsi | Op::Csrrci => {
                let csr = (inst.imm as u32) & 0xfff;
                let src = match inst.op {
                    Op::Csrrw | Op::Csrrs | Op::Csrrc => x[rs1],
                    _ => u64::from(inst.rs1),
                };
                let writes = matches!(inst.op, Op::Csrrw | Op::Csrrwi) || inst.rs1 != 0;
                let instret = cpu.instret + n as u64;
                let old = match csr {
                    0x001 => u64::from(cpu.fflags),
                    0x002 => u64::from(cpu.frm),
                    0x003 => u64::from(cpu.fcsr()),
                    0xc00 | 0xc01 => {
                        if writes {
                            exit!(Exit::Illegal)
                        }
                        time_ticks()
                    }
                    0xc02 => {
                        if writes {
                            exit!(Exit::Illegal)
                        }
                        instret
                    }
                    _ => exit!(Exit::Illegal),
                };
                if writes {
                    let new = match inst.op {
                        Op::Csrrw | Op::Csrrwi => src,
                        Op::Csrrs | Op::Csrrsi => old | src,
                        _ => old & !src,
                    };
                    match csr {
                        0x001 => cpu.fflags = (new & 0x1f) as u8,
                        0x002 => cpu.frm = (new & 7) as u8,
                        _ => cpu.set_fcsr(new as u32),
                    }
                }
                cpu.x[rd] = old;
            }
            Op::Mul => x[rd] = x[rs1].wrapping_mul(x[rs2]),
            Op::Mulh => x[rd] = ((i128::from(x[rs1] as i64) * i128::from(x[rs2] as i64)) >> 64) as u64,
            Op::Mulhsu => x[rd] = ((i128::from(x[rs1] as i64) * i128::from(x[rs2])) >> 64) as u64,
            Op::Mulhu => x[rd] = ((u128::from(x[rs1]) * u128::from(x[rs2])) >> 64) as u64,
            Op::Div => {
                let (a, b) = (x[rs1] as i64, x[rs2] as i64);
                x[rd] = if b == 0 { u64::MAX } else { a.wrapping_div(b) as u64 };
            }
            Op::Divu => x[rd] = x[rs1].checked_div(x[rs2]).unwrap_or(u64::MAX),
            Op::Rem => {
                let (a, b) = (x[rs1] as i64, x[rs2] as i64);
                x[rd] = if b == 0 { a as u64 } else { a.wrapping_rem(b) as u64 };
            }
            Op::Remu => x[rd] = if x[rs2] == 0 { x[rs1] } else { x[rs1] % x[rs2] },
            Op::Mulw => x[rd] = sext32((x[rs1] as u32).wrapping_mul(x[rs2] as u32)),
            Op::Divw => {
                let (a, b) = (x[rs1] as i32, x[rs2] as i32);
                x[rd] = if b == 0 { u64::MAX } else { a.wrapping_div(b) as i64 as u64 };
            }
            Op::Divuw => {
                let (a, b) = (x[rs1] as u32, x[rs2] as u32);
                x[rd] = sext32(a.checked_div(b).unwrap_or(u32::MAX));
            }
            Op::Remw => {
                let (a, b) = (x[rs1] as i32, x[rs2] as i32);
                x[rd] = if b == 0 { a as i64 as u64 } else { a.wrapping_rem(b) as i64 as u64 };
            }
            Op::Remuw => {
                let (a, b) = (x[rs1] as u32, x[rs2] as u32);
                x[rd] = sext32(if b == 0 { a } else { a % b });
            }
            Op::LrW
            | Op::ScW
            | Op::AmoswapW
            | Op::AmoaddW
            | Op::AmoxorW
            | Op::AmoandW
            | Op::AmoorW
            | Op::AmominW
            | Op::AmomaxW
            | Op::AmominuW
            | Op::AmomaxuW => {
                let addr = x[rs1];
                if !addr.is_multiple_of(4) {
                    exit!(Exit::Misaligned(addr))
                }
                let cell = match mem.atomic::<AtomicU32>(addr) {
                    Ok(c) => c,
                    Err(f) => exit!(Exit::Fault(f)),
                };
                let src = x[rs2] as u32;
                let ord = Ordering::SeqCst;
                let old = match inst.op {
                    Op::LrW => {
                        let v = cell.load(ord);
                        cpu.reservation = Some(Reservation { addr, value: u64::from(v), width: 4 });
                        v
                    }
                    Op::ScW => {
                        let ok = match cpu.reservation.take() {
                            Some(r) if r.addr == addr && r.width == 4 => {
                                cell.compare_exchange(r.value as u32, src, ord, ord).is_ok()
                            }
                            _ => false,
                        };
                        u32::from(!ok)
                    }
                    Op::AmoswapW => cell.swap(src, ord),
                    Op::AmoaddW => cell.fetch_add(src, ord),
                    Op::AmoxorW => cell.fetch_xor(src, ord),
                    Op::AmoandW => cell.fetch_and(src, ord),
                    Op::AmoorW => cell.fetch_or(src, ord),
                    Op::AmominuW => cell.fetch_min(src, ord),
                    Op::AmomaxuW => cell.fetch_max(src, ord),
                    _ => {
                        // SAFETY: AtomicI32 has the same size and alignment as AtomicU32.
                        let signed = unsafe { &*std::ptr::from_ref(cell).cast::<AtomicI32>() };
                        if inst.op == Op::AmominW {
                            signed.fetch_min(src as i32, ord) as u32
                        } else {
                            signed.fetch_max(src as i32, ord) as u32
                        }
                    }
                };
                cpu.x[rd] = sext32(old);
            }
            Op::LrD
            | Op::ScD
            | Op::AmoswapD
            | Op::AmoaddD
            | Op::AmoxorD
            | Op::AmoandD
            | Op::AmoorD
            | Op::AmominD
            | Op::AmomaxD
            | Op::AmominuD
            | Op::AmomaxuD => {
                let addr = x[rs1];
                if !addr.is_multiple_of(8) {
                    exit!(Exit::Misaligned(addr))
                }
                let cell = match mem.atomic::<AtomicU64>(addr) {
                    Ok(c) => c,
                    Err(f) => exit!(Exit::Fault(f)),
                };
                let src = x[rs2];
                let ord = Ordering::SeqCst;
                let old = match inst.op {
                    Op::LrD => {
                        let v = cell.load(ord);
                        cpu.reservation = Some(Reservation { addr, value: v, width: 8 });
                        v
                    }
                    Op::ScD => {
                        let ok = match cpu.reservation.take() {
                            Some(r) if r.addr == addr && r.width == 8 => {
                                cell.compare_exchange(r.value, src, ord, ord).is_ok()
                            }
                            _ => false,
                        };
                        u64::from(!ok)
                    }
                    Op::AmoswapD => cell.swap(src, ord),
                    Op::AmoaddD => cell.fetch_add(src, ord),
                    Op::AmoxorD => cell.fetch_xor(src, ord),
                    Op::AmoandD => cell.fetch_and(src, ord),
                    Op::AmoorD => cell.fetch_or(src, ord),
                    Op::AmominuD => cell.fetch_min(src, ord),
                    Op::AmomaxuD => cell.fetch_max(src, ord),
                    _ => {
                        // SAFETY: AtomicI64 has the same size and alignment as AtomicU64.
                        let signed = unsafe { &*std::ptr::from_ref(cell).cast::<AtomicI64>() };
                        if inst.op == Op::AmominD {
                            signed.fetch_min(src as i64, ord) as u64
                        } else {
                            signed.fetch_max(src as i64, ord) as u64
                        }
                    }
                };
                cpu.x[rd] = old;
            }
            // ----- F -----
            Op::Flw => {
                let v = load!(u32);
                cpu.f[(inst.rd & 31) as usize] = boxed(v);
            }
            Op::Fsw => store!(u32, cpu.f[rs2] as u32),
            Op::Fld => {
                let v = load!(u64);
                cpu.f[(inst.rd & 31) as usize] = v;
            }
            Op::Fsd => store!(u64, cpu.f[rs2]),
            _ => {
                if let Err(e) = exec_fp(cpu, inst) {
                    exit!(e)
                }
            }
        }
        pc = pc.wrapping_add(u64::from(inst.len));
    }
    cpu.pc = pc;
    cpu.instret += insts.len() as u64;
    None
}

/// The result of floating-point operation `op` (other than loads and stores): the value of its
/// destination register. `a` is the rs1 operand from the register file the op reads it from
/// ([`int_source`]), `b` and `c` are f registers; single-precision inputs are unboxed here. `rm`
/// is ignored by ops without a rounding mode. Shared by the interpreter and the JIT's helper, so
/// both tiers have one definition of every floating-point instruction.
#[inline(always)]
pub(crate) fn fp_compute(op: Op, a: u64, b: u64, c: u64, rm: Rounding, fl: &mut u8) -> u64 {
    let (sa, sb, sc) = (unbox(a), unbox(b), unbox(c));
    match op {
        Op::FmaddS => boxed(fp::fma32(sa, sb, sc, rm, fl)),
        Op::FmsubS => boxed(fp::fma32(sa, sb, sc ^ SIGN32, rm, fl)),
        Op::FnmsubS => boxed(fp::fma32(sa ^ SIGN32, sb, sc, rm, fl)),
        Op::FnmaddS => boxed(fp::fma32(sa ^ SIGN32, sb, sc ^ SIGN32, rm, fl)),
        Op::FaddS => boxed(fp::add32(sa, sb, rm, fl)),
        Op::FsubS => boxed(fp::sub32(sa, sb, rm, fl)),
        Op::FmulS => boxed(fp::mul32(sa, sb, rm, fl)),
        Op::FdivS => boxed(fp::div32(sa, sb, rm, fl)),
        Op::FsqrtS => boxed(fp::sqrt32(sa, rm, fl)),
        Op::FsgnjS => boxed((sa & !SIGN32) | (sb & SIGN32)),
        Op::FsgnjnS => boxed((sa & !SIGN32) | (!sb & SIGN32)),
        Op::FsgnjxS => boxed(sa ^ (sb & SIGN32)),
        Op::FminS => boxed(fp::min32(sa, sb, fl)),
        Op::FmaxS => boxed(fp::max32(sa, sb, fl)),
        Op::FcvtWS => fp::f32_to_i32(sa, rm, fl) as i64 as u64,
        Op::FcvtWuS => sext32(fp::f32_to_u32(sa, rm, fl)),
        Op::FcvtLS => fp::f32_to_i64(sa, rm, fl) as u64,
        Op::FcvtLuS => fp::f32_to_u64(sa, rm, fl),
        Op::FcvtSW => boxed(fp::i32_to_f32(a as i32, rm, fl)),
        Op::FcvtSWu => boxed(fp::u32_to_f32(a as u32, rm, fl)),
        Op::FcvtSL => boxed(fp::i64_to_f32(a as i64, rm, fl)),
        Op::FcvtSLu => boxed(fp::u64_to_f32(a, rm, fl)),
        Op::FmvXW => sext32(a as u32),
        Op::FmvWX => boxed(a as u32),
        Op::FeqS => u64::from(fp::eq32(sa, sb, fl)),
        Op::FltS => u64::from(fp::lt32(sa, sb, fl)),
        Op::FleS => u64::from(fp::le32(sa, sb, fl)),
        Op::FclassS => fp::classify32(sa),
        Op::FmaddD => fp::fma64(a, b, c, rm, fl),
        Op::FmsubD => fp::fma64(a, b, c ^ SIGN64, rm, fl),
        Op::FnmsubD => fp::fma64(a ^ SIGN64, b, c, rm, fl),
        Op::FnmaddD => fp::fma64(a ^ SIGN64, b, c ^ SIGN64, rm, fl),
        Op::FaddD => fp::add64(a, b, rm, fl),
        Op::FsubD => fp::sub64(a, b, rm, fl),
        Op::FmulD => fp::mul64(a, b, rm, fl),
        Op::FdivD => fp::div64(a, b, rm, fl),
        Op::FsqrtD => fp::sqrt64(a, rm, fl),
        Op::FsgnjD => (a & !SIGN64) | (b & SIGN64),
        Op::FsgnjnD => (a & !SIGN64) | (!b & SIGN64),
        Op::FsgnjxD => a ^ (b & SIGN64),
        Op::FminD => fp::min64(a, b, fl),
        Op::FmaxD => fp::max64(a, b, fl),
        Op::FcvtSD => boxed(fp::f64_to_f32(a, rm, fl)),
        Op::FcvtDS => fp::f32_to_f64(sa, fl),
        Op::FcvtWD => fp::f64_to_i32(a, rm, fl) as i64 as u64,
        Op::FcvtWuD => sext32(fp::f64_to_u32(a, rm, fl)),
        Op::FcvtLD => fp::f64_to_i64(a, rm, fl) as u64,
        Op::FcvtLuD => fp::f64_to_u64(a, rm, fl),
        Op::FcvtDW => fp::i32_to_f64(a as i32, rm, fl),
        Op::FcvtDWu => fp::u32_to_f64(a as u32, rm, fl),
        Op::FcvtDL => fp::i64_to_f64(a as i64, rm, fl),
        Op::FcvtDLu => fp::u64_to_f64(a, rm, fl),
        Op::FmvXD => a,
        Op::FmvDX => a,
        Op::FeqD => u64::from(fp::eq64(a, b, fl)),
        Op::FltD => u64::from(fp::lt64(a, b, fl)),
        Op::FleD => u64::from(fp::le64(a, b, fl)),
        Op::FclassD => fp::classify64(a),
        _ => 0,
    }
}

/// Whether `op` reads its first operand from the integer registers.
pub(crate) fn int_source(op: Op) -> bool {
    matches!(
        op,
        Op::FcvtSW
            | Op::FcvtSWu
            | Op::FcvtSL
            | Op::FcvtSLu
            | Op::FmvWX
            | Op::FcvtDW
            | Op::FcvtDWu
            | Op::FcvtDL
            | Op::FcvtDLu
            | Op::FmvDX
    )
}

/// Whether `op` has a rounding-mode field (and so is illegal with a reserved one).
pub(crate) fn uses_rm(op: Op) -> bool {
    matches!(
        op,
        Op::FmaddS
            | Op::FmsubS
            | Op::FnmsubS
            | Op::FnmaddS
            | Op::FaddS
            | Op::FsubS
            | Op::FmulS
            | Op::FdivS
            | Op::FsqrtS
            | Op::FcvtWS
            | Op::FcvtWuS
            | Op::FcvtLS
            | Op::FcvtLuS
            | Op::FcvtSW
            | Op::FcvtSWu
            | Op::FcvtSL
            | Op::FcvtSLu
            | Op::FmaddD
            | Op::FmsubD
            | Op::FnmsubD
            | Op::FnmaddD
            | Op::FaddD
            | Op::FsubD
            | Op::FmulD
            | Op::FdivD
            | Op::FsqrtD
            | Op::FcvtSD
            | Op::FcvtWD
            | Op::FcvtWuD
            | Op::FcvtLD
            | Op::FcvtLuD
            | Op::FcvtDW
            | Op::FcvtDWu
            | Op::FcvtDL
            | Op::FcvtDLu
    )
}

/// Resolves an instruction's rounding mode (7 = the dynamic `frm`); `None` if reserved.
#[inline(always)]
pub(crate) fn rounding(inst_rm: u8, frm: u8) -> Option<Rounding> {
    Rounding::from_bits(if inst_rm == 7 { frm } else { inst_rm })
}

/// Floating-point operations other than loads and stores.
#[inline(always)]
pub(crate) fn exec_fp(cpu: &mut Cpu, inst: &Inst) -> Result<(), Exit> {
    let rm = match rounding(inst.rm, cpu.frm) {
        Some(r) => r,
        None if uses_rm(inst.op) => return Err(Exit::Illegal),
        None => Rounding::Rne,
    };
    let a = if int_source(inst.op) { cpu.reg(inst.rs1 as usize) } else { cpu.f[(inst.rs1 & 31) as usize] };
    let (b, c) = (cpu.f[(inst.rs2 & 31) as usize], cpu.f[(inst.rs3 & 31) as usize]);
    let mut fl = 0u8;
    let v = fp_compute(inst.op, a, b, c, rm, &mut fl);
    if crate::interp::writes_xreg(inst.op) {
        cpu.x[(inst.rd & 63) as usize] = v;
    } else {
        cpu.f[(inst.rd & 31) as usize] = v;
    }
    cpu.fflags |= fl;
    Ok(())
}

/// The `time` CSR: a 10 MHz counter, the timebase of common riscv64 platforms.
fn time_ticks() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes one timespec into `ts`.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64) * 10_000_000 + (ts.tv_nsec as u64) / 100
}
