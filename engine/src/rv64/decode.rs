//! Decoding of RV64GC machine code into [`Inst`].
//!
//! An instruction's length follows from its two low bits: `11` marks a 32-bit instruction, any
//! other value a 16-bit compressed one. [`decode`] takes the 32 bits at the pc and looks at only
//! the low 16 when the instruction is compressed, so a caller may fetch 4 bytes unconditionally
//! (where the page allows it) and let the length fall out of the decode.
//!
//! The 32-bit formats (unprivileged spec, "Base Instruction Formats"):
//!
//! ```text
//!  31        25 24   20 19   15 14  12 11        7 6      0
//! |   funct7   |  rs2  |  rs1  |funct3|     rd     | opcode |  R
//! | rs3  |fmt  |  rs2  |  rs1  |  rm  |     rd     | opcode |  R4 (fused multiply-add)
//! |     imm[11:0]      |  rs1  |funct3|     rd     | opcode |  I
//! | imm[11:5]  |  rs2  |  rs1  |funct3|  imm[4:0]  | opcode |  S
//! |imm[12|10:5]|  rs2  |  rs1  |funct3|imm[4:1|11] | opcode |  B
//! |             imm[31:12]            |     rd     | opcode |  U
//! |     imm[20|10:1|11|19:12]         |     rd     | opcode |  J
//! ```
//!
//! The compressed formats (spec chapter "C" Standard Extension); `rd'`, `rs1'` and `rs2'` are
//! 3-bit fields naming x8..x15 (or f8..f15):
//!
//! ```text
//!  15 13  12  11     7 6      2 1 0
//! |funct4    | rd/rs1 |  rs2   |op |  CR
//! |funct3|imm| rd/rs1 |  imm   |op |  CI
//! |funct3|    imm     |  rs2   |op |  CSS
//! |funct3|    imm         |rd' |op |  CIW
//! |funct3| imm |rs1'|imm|rd'   |op |  CL
//! |funct3| imm |rs1'|imm|rs2'  |op |  CS
//! |funct6     |rd'/rs1'|f2|rs2'|op |  CA
//! |funct3| off |rs1'|  off     |op |  CB
//! |funct3|     jump target     |op |  CJ
//! ```
//!
//! Compressed immediates are scrambled differently for every instruction; each decoder below
//! spells out its permutation as the spec's table gives it. A compressed instruction decodes to
//! the 32-bit operation it expands to, with `len == 2`.
//!
//! Immediates follow the conventions of [`crate::rv64::inst`]. For `Lui` and `Auipc`, `imm` is
//! the already shifted value `imm[31:12] << 12`, sign-extended from bit 31 like every other
//! immediate.
//!
//! Encodings the spec calls reserved decode to [`Op::Illegal`]; encodings it calls hints (for
//! example `c.addi x0, 3` or `c.slli64`) decode to the operation they expand to, which has no
//! architectural effect because it writes x0 or shifts by zero.

#![expect(
    clippy::cast_possible_truncation,
    reason = "register numbers and the rm field are extracted under 5-bit or narrower masks"
)]

use super::inst::{Inst, Op};

/// Decodes the instruction whose first bytes are `raw` (little-endian, as fetched).
///
/// Never fails: anything that is not a valid RV64GC instruction decodes to [`Op::Illegal`] with
/// the length its low bits announce.
pub fn decode(raw: u32) -> Inst {
    if raw & 3 == 3 { decode32(raw) } else { decode16(raw & 0xffff) }
}

/// Extracts `raw[hi:lo]`, unshifted to bit 0.
#[inline(always)]
const fn bits(raw: u32, hi: u32, lo: u32) -> u32 {
    (raw >> lo) & ((1 << (hi - lo + 1)) - 1)
}

/// Sign-extends the low `width` bits of `value`.
#[inline(always)]
const fn sext(value: u32, width: u32) -> i32 {
    let shift = 32 - width;
    ((value << shift) as i32) >> shift
}

/// The 5-bit register field at `raw[lo+4:lo]`.
#[inline(always)]
const fn reg(raw: u32, lo: u32) -> u8 {
    bits(raw, lo + 4, lo) as u8
}

/// The instruction skeleton shared by every decoder: all fields zero except the op and length.
#[inline(always)]
const fn inst(op: Op, len: u8) -> Inst {
    Inst { op, rd: 0, rs1: 0, rs2: 0, rs3: 0, rm: 0, len, imm: 0 }
}

// ---------------------------------------------------------------------------------------------
// 32-bit instructions
// ---------------------------------------------------------------------------------------------

/// Builds a 32-bit instruction from the fields every format shares.
#[inline(always)]
const fn full(op: Op, raw: u32, imm: i32) -> Inst {
    Inst { op, rd: reg(raw, 7), rs1: reg(raw, 15), rs2: reg(raw, 20), rs3: 0, rm: 0, len: 4, imm }
}

const fn imm_i(raw: u32) -> i32 {
    (raw as i32) >> 20
}

const fn imm_s(raw: u32) -> i32 {
    ((raw as i32) >> 25 << 5) | bits(raw, 11, 7) as i32
}

const fn imm_b(raw: u32) -> i32 {
    let value =
        (bits(raw, 31, 31) << 12) | (bits(raw, 7, 7) << 11) | (bits(raw, 30, 25) << 5) | (bits(raw, 11, 8) << 1);
    sext(value, 13)
}

const fn imm_u(raw: u32) -> i32 {
    (raw & 0xffff_f000) as i32
}

const fn imm_j(raw: u32) -> i32 {
    let value =
        (bits(raw, 31, 31) << 20) | (bits(raw, 19, 12) << 12) | (bits(raw, 20, 20) << 11) | (bits(raw, 30, 21) << 1);
    sext(value, 21)
}

const ILLEGAL32: Inst = Inst::illegal(4);

fn decode32(raw: u32) -> Inst {
    let funct3 = bits(raw, 14, 12);
    let funct7 = bits(raw, 31, 25);
    match bits(raw, 6, 0) {
        0x37 => full(Op::Lui, raw, imm_u(raw)).only_rd(),
        0x17 => full(Op::Auipc, raw, imm_u(raw)).only_rd(),
        0x6f => full(Op::Jal, raw, imm_j(raw)).only_rd(),
        0x67 if funct3 == 0 => full(Op::Jalr, raw, imm_i(raw)).no_rs2(),
        0x63 => {
            let op = match funct3 {
                0 => Op::Beq,
                1 => Op::Bne,
                4 => Op::Blt,
                5 => Op::Bge,
                6 => Op::Bltu,
                7 => Op::Bgeu,
                _ => return ILLEGAL32,
            };
            full(op, raw, imm_b(raw)).no_rd()
        }
        0x03 => {
            let op = match funct3 {
                0 => Op::Lb,
                1 => Op::Lh,
                2 => Op::Lw,
                3 => Op::Ld,
                4 => Op::Lbu,
                5 => Op::Lhu,
                6 => Op::Lwu,
                _ => return ILLEGAL32,
            };
            full(op, raw, imm_i(raw)).no_rs2()
        }
        0x23 => {
            let op = match funct3 {
                0 => Op::Sb,
                1 => Op::Sh,
                2 => Op::Sw,
                3 => Op::Sd,
                _ => return ILLEGAL32,
            };
            full(op, raw, imm_s(raw)).no_rd()
        }
        0x13 => op_imm(raw, funct3),
        0x1b => op_imm32(raw, funct3, funct7),
        0x33 => op_reg(raw, funct3, funct7),
        0x3b => op_reg32(raw, funct3, funct7),
        0x0f => misc_mem(raw, funct3),
        0x73 => system(raw, funct3),
        0x2f => amo(raw, funct3),
        0x07 => match funct3 {
            2 => full(Op::Flw, raw, imm_i(raw)).no_rs2(),
            3 => full(Op::Fld, raw, imm_i(raw)).no_rs2(),
            _ => ILLEGAL32,
        },
        0x27 => match funct3 {
            2 => full(Op::Fsw, raw, imm_s(raw)).no_rd(),
            3 => full(Op::Fsd, raw, imm_s(raw)).no_rd(),
            _ => ILLEGAL32,
        },
        opcode @ (0x43 | 0x47 | 0x4b | 0x4f) => fused(raw, opcode),
        0x53 => op_fp(raw, funct3, funct7),
        _ => ILLEGAL32,
    }
}

impl Inst {
    /// Clears the source fields of a format that has none (U and J).
    const fn only_rd(mut self) -> Self {
        self.rs1 = 0;
        self.rs2 = 0;
        self
    }

    /// Clears the `rs2` field where its bits belong to the immediate (I format) or select a
    /// variant (unary FP ops).
    const fn no_rs2(mut self) -> Self {
        self.rs2 = 0;
        self
    }

    /// Clears the `rd` field of a format whose bits there belong to the immediate (S and B).
    const fn no_rd(mut self) -> Self {
        self.rd = 0;
        self
    }

    /// Sets the rounding mode (FP) or the ordering bits (atomics) from a field of at most 3 bits.
    const fn with_rm(mut self, rm: u32) -> Self {
        self.rm = rm as u8;
        self
    }

    /// Sets the immediate of a format whose fields are otherwise all zero.
    const fn with_imm(mut self, imm: i32) -> Self {
        self.imm = imm;
        self
    }
}

/// OP-IMM: register-immediate arithmetic. RV64 shifts take a 6-bit shamt in `imm[5:0]`, and
/// `imm[11:6]` selects logical (0) or arithmetic (0x10) right shift.
fn op_imm(raw: u32, funct3: u32) -> Inst {
    let op = match funct3 {
        0 => Op::Addi,
        2 => Op::Slti,
        3 => Op::Sltiu,
        4 => Op::Xori,
        6 => Op::Ori,
        7 => Op::Andi,
        1 | 5 => {
            let shamt = bits(raw, 25, 20) as i32;
            let op = match (funct3, bits(raw, 31, 26)) {
                (1, 0x00) => Op::Slli,
                (5, 0x00) => Op::Srli,
                (5, 0x10) => Op::Srai,
                _ => return ILLEGAL32,
            };
            return full(op, raw, shamt).no_rs2();
        }
        _ => unreachable!("funct3 is a 3-bit field"),
    };
    full(op, raw, imm_i(raw)).no_rs2()
}

/// OP-IMM-32: the *W forms. Their shamt is 5 bits; an encoding with `shamt[5]` set is reserved,
/// which falls out of requiring the whole funct7 to match.
fn op_imm32(raw: u32, funct3: u32, funct7: u32) -> Inst {
    let op = match (funct3, funct7) {
        (0, _) => return full(Op::Addiw, raw, imm_i(raw)).no_rs2(),
        (1, 0x00) => Op::Slliw,
        (5, 0x00) => Op::Srliw,
        (5, 0x20) => Op::Sraiw,
        _ => return ILLEGAL32,
    };
    full(op, raw, bits(raw, 24, 20) as i32).no_rs2()
}

/// OP: register-register arithmetic, including M.
fn op_reg(raw: u32, funct3: u32, funct7: u32) -> Inst {
    let op = match (funct7, funct3) {
        (0x00, 0) => Op::Add,
        (0x20, 0) => Op::Sub,
        (0x00, 1) => Op::Sll,
        (0x00, 2) => Op::Slt,
        (0x00, 3) => Op::Sltu,
        (0x00, 4) => Op::Xor,
        (0x00, 5) => Op::Srl,
        (0x20, 5) => Op::Sra,
        (0x00, 6) => Op::Or,
        (0x00, 7) => Op::And,
        (0x01, 0) => Op::Mul,
        (0x01, 1) => Op::Mulh,
        (0x01, 2) => Op::Mulhsu,
        (0x01, 3) => Op::Mulhu,
        (0x01, 4) => Op::Div,
        (0x01, 5) => Op::Divu,
        (0x01, 6) => Op::Rem,
        (0x01, 7) => Op::Remu,
        _ => return ILLEGAL32,
    };
    full(op, raw, 0)
}

/// OP-32: the *W register-register forms, including M.
fn op_reg32(raw: u32, funct3: u32, funct7: u32) -> Inst {
    let op = match (funct7, funct3) {
        (0x00, 0) => Op::Addw,
        (0x20, 0) => Op::Subw,
        (0x00, 1) => Op::Sllw,
        (0x00, 5) => Op::Srlw,
        (0x20, 5) => Op::Sraw,
        (0x01, 0) => Op::Mulw,
        (0x01, 4) => Op::Divw,
        (0x01, 5) => Op::Divuw,
        (0x01, 6) => Op::Remw,
        (0x01, 7) => Op::Remuw,
        _ => return ILLEGAL32,
    };
    full(op, raw, 0)
}

/// MISC-MEM: FENCE and FENCE.I.
///
/// The spec reserves FENCE's `rs1` and `rd` and its unknown `fm` values for future fences and
/// requires base implementations to treat them as ordinary fences, so they are not checked here.
/// FENCE.I's `imm`, `rs1` and `rd` are likewise ignored (Zifencei chapter).
fn misc_mem(raw: u32, funct3: u32) -> Inst {
    match funct3 {
        0 => inst(Op::Fence, 4).with_imm(bits(raw, 31, 20) as i32),
        1 => inst(Op::FenceI, 4),
        _ => ILLEGAL32,
    }
}

/// SYSTEM: ECALL, EBREAK and Zicsr. The privileged instructions that share this opcode (MRET,
/// WFI, SFENCE.VMA, ...) are illegal in user mode and decode as such.
fn system(raw: u32, funct3: u32) -> Inst {
    let op = match funct3 {
        0 => {
            return match raw {
                0x0000_0073 => inst(Op::Ecall, 4),
                0x0010_0073 => inst(Op::Ebreak, 4),
                _ => ILLEGAL32,
            };
        }
        1 => Op::Csrrw,
        2 => Op::Csrrs,
        3 => Op::Csrrc,
        5 => Op::Csrrwi,
        6 => Op::Csrrsi,
        7 => Op::Csrrci,
        _ => return ILLEGAL32,
    };
    full(op, raw, bits(raw, 31, 20) as i32).no_rs2()
}

/// AMO: LR, SC and the AMOs, word (funct3 2) or doubleword (funct3 3). `funct5` is `raw[31:27]`;
/// `aq` (bit 26) and `rl` (bit 25) land in `rm` as `aq << 1 | rl`.
fn amo(raw: u32, funct3: u32) -> Inst {
    let double = match funct3 {
        2 => false,
        3 => true,
        _ => return ILLEGAL32,
    };
    let (word, dword) = match bits(raw, 31, 27) {
        0x02 if bits(raw, 24, 20) != 0 => return ILLEGAL32,
        0x02 => (Op::LrW, Op::LrD),
        0x03 => (Op::ScW, Op::ScD),
        0x01 => (Op::AmoswapW, Op::AmoswapD),
        0x00 => (Op::AmoaddW, Op::AmoaddD),
        0x04 => (Op::AmoxorW, Op::AmoxorD),
        0x0c => (Op::AmoandW, Op::AmoandD),
        0x08 => (Op::AmoorW, Op::AmoorD),
        0x10 => (Op::AmominW, Op::AmominD),
        0x14 => (Op::AmomaxW, Op::AmomaxD),
        0x18 => (Op::AmominuW, Op::AmominuD),
        0x1c => (Op::AmomaxuW, Op::AmomaxuD),
        _ => return ILLEGAL32,
    };
    full(if double { dword } else { word }, raw, 0).with_rm(bits(raw, 26, 25))
}

/// MADD, MSUB, NMSUB, NMADD (R4 format): `fmt` is `raw[26:25]`, 0 for single and 1 for double;
/// 2 (half) and 3 (quad) are not part of RV64GC.
fn fused(raw: u32, opcode: u32) -> Inst {
    let double = match bits(raw, 26, 25) {
        0 => false,
        1 => true,
        _ => return ILLEGAL32,
    };
    let op = match (opcode, double) {
        (0x43, false) => Op::FmaddS,
        (0x47, false) => Op::FmsubS,
        (0x4b, false) => Op::FnmsubS,
        (0x4f, false) => Op::FnmaddS,
        (0x43, true) => Op::FmaddD,
        (0x47, true) => Op::FmsubD,
        (0x4b, true) => Op::FnmsubD,
        (0x4f, true) => Op::FnmaddD,
        _ => unreachable!("only called for the four fused opcodes"),
    };
    let mut inst = full(op, raw, 0).with_rm(bits(raw, 14, 12));
    inst.rs3 = reg(raw, 27);
    inst
}

/// OP-FP. `funct7` holds the operation in its top five bits and `fmt` in its low two; where the
/// `rs2` field is not a register it selects a variant (conversions) or must be zero (FSQRT, FMV,
/// FCLASS). `funct3` is the rounding mode for ops that round, and an opcode extension otherwise;
/// in the latter case only its defined values decode and `rm` stays 0.
fn op_fp(raw: u32, funct3: u32, funct7: u32) -> Inst {
    let rs2 = bits(raw, 24, 20);
    // Ops whose funct3 is a rounding mode: the value is kept even when it is reserved (5, 6),
    // because the spec makes that an execution-time exception, raised by the executing tier.
    let rounding = |op| full(op, raw, 0).with_rm(funct3);
    let unary = |op| rounding(op).no_rs2();
    let fixed = |op| full(op, raw, 0);
    match funct7 {
        0x00 => rounding(Op::FaddS),
        0x01 => rounding(Op::FaddD),
        0x04 => rounding(Op::FsubS),
        0x05 => rounding(Op::FsubD),
        0x08 => rounding(Op::FmulS),
        0x09 => rounding(Op::FmulD),
        0x0c => rounding(Op::FdivS),
        0x0d => rounding(Op::FdivD),
        0x2c if rs2 == 0 => unary(Op::FsqrtS),
        0x2d if rs2 == 0 => unary(Op::FsqrtD),
        0x10 | 0x11 => {
            let double = funct7 == 0x11;
            let op = match (funct3, double) {
                (0, false) => Op::FsgnjS,
                (1, false) => Op::FsgnjnS,
                (2, false) => Op::FsgnjxS,
                (0, true) => Op::FsgnjD,
                (1, true) => Op::FsgnjnD,
                (2, true) => Op::FsgnjxD,
                _ => return ILLEGAL32,
            };
            fixed(op)
        }
        0x14 | 0x15 => {
            let double = funct7 == 0x15;
            let op = match (funct3, double) {
                (0, false) => Op::FminS,
                (1, false) => Op::FmaxS,
                (0, true) => Op::FminD,
                (1, true) => Op::FmaxD,
                _ => return ILLEGAL32,
            };
            fixed(op)
        }
        0x50 | 0x51 => {
            let double = funct7 == 0x51;
            let op = match (funct3, double) {
                (0, false) => Op::FleS,
                (1, false) => Op::FltS,
                (2, false) => Op::FeqS,
                (0, true) => Op::FleD,
                (1, true) => Op::FltD,
                (2, true) => Op::FeqD,
                _ => return ILLEGAL32,
            };
            fixed(op)
        }
        0x20 if rs2 == 1 => unary(Op::FcvtSD),
        0x21 if rs2 == 0 => unary(Op::FcvtDS),
        0x60 | 0x61 | 0x68 | 0x69 => {
            let op = match (funct7, rs2) {
                (0x60, 0) => Op::FcvtWS,
                (0x60, 1) => Op::FcvtWuS,
                (0x60, 2) => Op::FcvtLS,
                (0x60, 3) => Op::FcvtLuS,
                (0x61, 0) => Op::FcvtWD,
                (0x61, 1) => Op::FcvtWuD,
                (0x61, 2) => Op::FcvtLD,
                (0x61, 3) => Op::FcvtLuD,
                (0x68, 0) => Op::FcvtSW,
                (0x68, 1) => Op::FcvtSWu,
                (0x68, 2) => Op::FcvtSL,
                (0x68, 3) => Op::FcvtSLu,
                (0x69, 0) => Op::FcvtDW,
                (0x69, 1) => Op::FcvtDWu,
                (0x69, 2) => Op::FcvtDL,
                (0x69, 3) => Op::FcvtDLu,
                _ => return ILLEGAL32,
            };
            unary(op)
        }
        0x70 | 0x71 if rs2 == 0 => {
            let op = match (funct3, funct7 == 0x71) {
                (0, false) => Op::FmvXW,
                (1, false) => Op::FclassS,
                (0, true) => Op::FmvXD,
                (1, true) => Op::FclassD,
                _ => return ILLEGAL32,
            };
            fixed(op).no_rs2()
        }
        0x78 if rs2 == 0 && funct3 == 0 => fixed(Op::FmvWX).no_rs2(),
        0x79 if rs2 == 0 && funct3 == 0 => fixed(Op::FmvDX).no_rs2(),
        _ => ILLEGAL32,
    }
}

// ---------------------------------------------------------------------------------------------
// Compressed instructions
// ---------------------------------------------------------------------------------------------

const ILLEGAL16: Inst = Inst::illegal(2);

/// Builds an expanded compressed instruction.
#[inline(always)]
const fn c(op: Op, rd: u8, rs1: u8, rs2: u8, imm: i32) -> Inst {
    Inst { op, rd, rs1, rs2, rs3: 0, rm: 0, len: 2, imm }
}

/// The 3-bit register field at `raw[lo+2:lo]`, naming x8..x15.
#[inline(always)]
const fn creg(raw: u32, lo: u32) -> u8 {
    8 + bits(raw, lo + 2, lo) as u8
}

/// CI-format 6-bit immediate: `imm[5]` at bit 12, `imm[4:0]` at bits 6:2.
const fn ci_imm(raw: u32) -> u32 {
    (bits(raw, 12, 12) << 5) | bits(raw, 6, 2)
}

/// C.LD/C.SD/C.FLD/C.FSD offset: `uimm[5:3]` at bits 12:10, `uimm[7:6]` at bits 6:5.
const fn cl_d_offset(raw: u32) -> i32 {
    ((bits(raw, 12, 10) << 3) | (bits(raw, 6, 5) << 6)) as i32
}

/// C.LW/C.SW offset: `uimm[5:3]` at bits 12:10, `uimm[2]` at bit 6, `uimm[6]` at bit 5.
const fn cl_w_offset(raw: u32) -> i32 {
    ((bits(raw, 12, 10) << 3) | (bits(raw, 6, 6) << 2) | (bits(raw, 5, 5) << 6)) as i32
}

/// C.LDSP/C.FLDSP offset: `uimm[5]` at bit 12, `uimm[4:3]` at bits 6:5, `uimm[8:6]` at 4:2.
const fn ci_d_sp_offset(raw: u32) -> i32 {
    ((bits(raw, 12, 12) << 5) | (bits(raw, 6, 5) << 3) | (bits(raw, 4, 2) << 6)) as i32
}

/// C.LWSP offset: `uimm[5]` at bit 12, `uimm[4:2]` at bits 6:4, `uimm[7:6]` at bits 3:2.
const fn ci_w_sp_offset(raw: u32) -> i32 {
    ((bits(raw, 12, 12) << 5) | (bits(raw, 6, 4) << 2) | (bits(raw, 3, 2) << 6)) as i32
}

/// C.SDSP/C.FSDSP offset: `uimm[5:3]` at bits 12:10, `uimm[8:6]` at bits 9:7.
const fn css_d_offset(raw: u32) -> i32 {
    ((bits(raw, 12, 10) << 3) | (bits(raw, 9, 7) << 6)) as i32
}

/// C.SWSP offset: `uimm[5:2]` at bits 12:9, `uimm[7:6]` at bits 8:7.
const fn css_w_offset(raw: u32) -> i32 {
    ((bits(raw, 12, 9) << 2) | (bits(raw, 8, 7) << 6)) as i32
}

/// C.J offset: `offset[11|4|9:8|10|6|7|3:1|5]` at bits 12:2.
const fn cj_offset(raw: u32) -> i32 {
    let value = (bits(raw, 12, 12) << 11)
        | (bits(raw, 11, 11) << 4)
        | (bits(raw, 10, 9) << 8)
        | (bits(raw, 8, 8) << 10)
        | (bits(raw, 7, 7) << 6)
        | (bits(raw, 6, 6) << 7)
        | (bits(raw, 5, 3) << 1)
        | (bits(raw, 2, 2) << 5);
    sext(value, 12)
}

/// C.BEQZ/C.BNEZ offset: `offset[8|4:3]` at bits 12:10, `offset[7:6|2:1|5]` at bits 6:2.
const fn cb_offset(raw: u32) -> i32 {
    let value = (bits(raw, 12, 12) << 8)
        | (bits(raw, 11, 10) << 3)
        | (bits(raw, 6, 5) << 6)
        | (bits(raw, 4, 3) << 1)
        | (bits(raw, 2, 2) << 5);
    sext(value, 9)
}

/// C.ADDI4SPN immediate: `nzuimm[5:4|9:6|2|3]` at bits 12:5.
const fn ciw_imm(raw: u32) -> i32 {
    ((bits(raw, 12, 11) << 4) | (bits(raw, 10, 7) << 6) | (bits(raw, 6, 6) << 2) | (bits(raw, 5, 5) << 3)) as i32
}

/// C.ADDI16SP immediate: `nzimm[9]` at bit 12, `nzimm[4|6|8:7|5]` at bits 6:2.
const fn addi16sp_imm(raw: u32) -> i32 {
    let value = (bits(raw, 12, 12) << 9)
        | (bits(raw, 6, 6) << 4)
        | (bits(raw, 5, 5) << 6)
        | (bits(raw, 4, 3) << 7)
        | (bits(raw, 2, 2) << 5);
    sext(value, 10)
}

fn decode16(raw: u32) -> Inst {
    let funct3 = bits(raw, 15, 13);
    match bits(raw, 1, 0) {
        0 => quadrant0(raw, funct3),
        1 => quadrant1(raw, funct3),
        2 => quadrant2(raw, funct3),
        _ => unreachable!("decode16 is only called for compressed encodings"),
    }
}

/// Quadrant 0: stack-pointer-based ADDI and the CL/CS loads and stores.
fn quadrant0(raw: u32, funct3: u32) -> Inst {
    let rd = creg(raw, 2);
    let rs1 = creg(raw, 7);
    match funct3 {
        // C.ADDI4SPN; a zero immediate is reserved, which also covers the all-zero halfword the
        // spec defines as illegal forever.
        0 => match ciw_imm(raw) {
            0 => ILLEGAL16,
            imm => c(Op::Addi, rd, 2, 0, imm),
        },
        1 => c(Op::Fld, rd, rs1, 0, cl_d_offset(raw)),
        2 => c(Op::Lw, rd, rs1, 0, cl_w_offset(raw)),
        3 => c(Op::Ld, rd, rs1, 0, cl_d_offset(raw)),
        5 => c(Op::Fsd, 0, rs1, rd, cl_d_offset(raw)),
        6 => c(Op::Sw, 0, rs1, rd, cl_w_offset(raw)),
        7 => c(Op::Sd, 0, rs1, rd, cl_d_offset(raw)),
        // funct3 4 is reserved in RV64C.
        _ => ILLEGAL16,
    }
}

/// Quadrant 1: immediates, control transfers and the CA/CB arithmetic group.
fn quadrant1(raw: u32, funct3: u32) -> Inst {
    let rd = reg(raw, 7);
    let imm6 = sext(ci_imm(raw), 6);
    match funct3 {
        // C.ADDI; rd = 0 is C.NOP or a hint, imm = 0 with rd != 0 a hint.
        0 => c(Op::Addi, rd, rd, 0, imm6),
        // C.ADDIW; rd = 0 is reserved.
        1 if rd == 0 => ILLEGAL16,
        1 => c(Op::Addiw, rd, rd, 0, imm6),
        // C.LI; rd = 0 is a hint.
        2 => c(Op::Addi, rd, 0, 0, imm6),
        3 if rd == 2 => match addi16sp_imm(raw) {
            0 => ILLEGAL16,
            imm => c(Op::Addi, 2, 2, 0, imm),
        },
        // C.LUI: nzimm[17:12] is the CI immediate; zero is reserved, rd = 0 a hint.
        3 => match imm6 {
            0 => ILLEGAL16,
            imm => c(Op::Lui, rd, 0, 0, imm << 12),
        },
        4 => misc_alu(raw),
        5 => c(Op::Jal, 0, 0, 0, cj_offset(raw)),
        6 => c(Op::Beq, 0, creg(raw, 7), 0, cb_offset(raw)),
        7 => c(Op::Bne, 0, creg(raw, 7), 0, cb_offset(raw)),
        _ => unreachable!("funct3 is a 3-bit field"),
    }
}

/// The quadrant 1, funct3 4 group: C.SRLI, C.SRAI, C.ANDI and the CA register-register ops,
/// told apart by `raw[11:10]` and then by `raw[12]` and `raw[6:5]`.
fn misc_alu(raw: u32) -> Inst {
    let rd = creg(raw, 7);
    let rs2 = creg(raw, 2);
    match bits(raw, 11, 10) {
        // A zero shamt is the RV128 C.SRLI64/C.SRAI64, a hint in RV64.
        0 => c(Op::Srli, rd, rd, 0, ci_imm(raw) as i32),
        1 => c(Op::Srai, rd, rd, 0, ci_imm(raw) as i32),
        2 => c(Op::Andi, rd, rd, 0, sext(ci_imm(raw), 6)),
        _ => {
            let op = match (bits(raw, 12, 12), bits(raw, 6, 5)) {
                (0, 0) => Op::Sub,
                (0, 1) => Op::Xor,
                (0, 2) => Op::Or,
                (0, 3) => Op::And,
                (1, 0) => Op::Subw,
                (1, 1) => Op::Addw,
                _ => return ILLEGAL16,
            };
            c(op, rd, rd, rs2, 0)
        }
    }
}

/// Quadrant 2: C.SLLI, stack-pointer-based loads and stores, and the CR group.
fn quadrant2(raw: u32, funct3: u32) -> Inst {
    let rd = reg(raw, 7);
    let rs2 = reg(raw, 2);
    match funct3 {
        // C.SLLI; rd = 0 and shamt = 0 (C.SLLI64) are hints.
        0 => c(Op::Slli, rd, rd, 0, ci_imm(raw) as i32),
        1 => c(Op::Fld, rd, 2, 0, ci_d_sp_offset(raw)),
        // C.LWSP and C.LDSP with rd = 0 are reserved.
        2 | 3 if rd == 0 => ILLEGAL16,
        2 => c(Op::Lw, rd, 2, 0, ci_w_sp_offset(raw)),
        3 => c(Op::Ld, rd, 2, 0, ci_d_sp_offset(raw)),
        4 => match (bits(raw, 12, 12), rd, rs2) {
            // C.JR with rs1 = 0 is reserved.
            (0, 0, 0) => ILLEGAL16,
            (0, rs1, 0) => c(Op::Jalr, 0, rs1, 0, 0),
            // C.MV; rd = 0 is a hint.
            (0, rd, rs2) => c(Op::Add, rd, 0, rs2, 0),
            (_, 0, 0) => c(Op::Ebreak, 0, 0, 0, 0),
            (_, rs1, 0) => c(Op::Jalr, 1, rs1, 0, 0),
            // C.ADD; rd = 0 is a hint.
            (_, rd, rs2) => c(Op::Add, rd, rd, rs2, 0),
        },
        5 => c(Op::Fsd, 0, 2, rs2, css_d_offset(raw)),
        6 => c(Op::Sw, 0, 2, rs2, css_w_offset(raw)),
        7 => c(Op::Sd, 0, 2, rs2, css_d_offset(raw)),
        _ => unreachable!("funct3 is a 3-bit field"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A decoded instruction with the given fields, for comparing whole `Inst`s.
    fn expect(op: Op, rd: u8, rs1: u8, rs2: u8, imm: i32, len: u8) -> Inst {
        Inst { op, rd, rs1, rs2, rs3: 0, rm: 0, len, imm }
    }

    #[test]
    fn i_and_s_immediates_sign_extend_from_bit_31() {
        // addi x1, x0, -1 and addi x1, x0, 2047.
        assert_eq!(decode(0xfff0_0093), expect(Op::Addi, 1, 0, 0, -1, 4));
        assert_eq!(decode(0x7ff0_0093), expect(Op::Addi, 1, 0, 0, 2047, 4));
        // lb x10, -2048(x11).
        assert_eq!(decode(0x8005_8503), expect(Op::Lb, 10, 11, 0, -2048, 4));
        // sd x11, -8(x10): the immediate is split across imm[11:5] and imm[4:0].
        assert_eq!(decode(0xfeb5_3c23), expect(Op::Sd, 0, 10, 11, -8, 4));
        // fsd f1, 2047(x10).
        assert_eq!(decode(0x7e15_3fa7), expect(Op::Fsd, 0, 10, 1, 2047, 4));
    }

    #[test]
    fn b_and_j_offsets_cover_their_full_range() {
        // blt x5, x6, -4096 and bne x10, x11, +4094.
        assert_eq!(decode(0x8062_c063), expect(Op::Blt, 0, 5, 6, -4096, 4));
        assert_eq!(decode(0x7eb5_1fe3), expect(Op::Bne, 0, 10, 11, 4094, 4));
        // jal x5, -1 MiB and jal x31, +1 MiB - 2.
        assert_eq!(decode(0x8000_02ef), expect(Op::Jal, 5, 0, 0, -0x10_0000, 4));
        assert_eq!(decode(0x7fff_ffef), expect(Op::Jal, 31, 0, 0, 0xf_fffe, 4));
    }

    #[test]
    fn u_immediates_are_shifted_and_sign_extended() {
        // lui x10, 0x80000 is the most negative value; auipc x10, 0x12345 a positive one.
        assert_eq!(decode(0x8000_0537), expect(Op::Lui, 10, 0, 0, i32::MIN, 4));
        assert_eq!(decode(0x1234_5517), expect(Op::Auipc, 10, 0, 0, 0x1234_5000, 4));
    }

    #[test]
    fn shifts_take_six_bit_shamts_and_word_shifts_five() {
        // srai x10, x11, 63: funct6 0x10 selects the arithmetic shift and is not part of imm.
        assert_eq!(decode(0x43f5_d513), expect(Op::Srai, 10, 11, 0, 63, 4));
        assert_eq!(decode(0x03f5_9513), expect(Op::Slli, 10, 11, 0, 63, 4));
        assert_eq!(decode(0x41f5_d51b), expect(Op::Sraiw, 10, 11, 0, 31, 4));
        // slliw/srliw/sraiw with shamt[5] set are reserved.
        assert_eq!(decode(0x0205_151b), Inst::illegal(4));
        assert_eq!(decode(0x0205_551b), Inst::illegal(4));
        assert_eq!(decode(0x4205_551b), Inst::illegal(4));
    }

    #[test]
    fn csr_numbers_are_zero_extended_and_uimm_is_in_rs1() {
        // csrrc x10, 0xfff, x12: CSR 0xfff must not become -1.
        assert_eq!(decode(0xfff6_3573), expect(Op::Csrrc, 10, 12, 0, 0xfff, 4));
        // csrrsi x10, 0x123, 5.
        assert_eq!(decode(0x1232_e573), expect(Op::Csrrsi, 10, 5, 0, 0x123, 4));
        // csrrci x0, frm, 31.
        assert_eq!(decode(0x002f_f073), expect(Op::Csrrci, 0, 31, 0, 2, 4));
        // SYSTEM funct3 100 is not a CSR op.
        assert_eq!(decode(0x0000_4073), Inst::illegal(4));
    }

    #[test]
    fn atomics_carry_aq_and_rl_in_rm() {
        // lr.w.aqrl x10, (x11); sc.d.aq x10, x12, (x11); amoadd.w.rl x10, x12, (x11).
        assert_eq!(decode(0x1605_a52f), expect(Op::LrW, 10, 11, 0, 0, 4).with_rm(3));
        assert_eq!(decode(0x1cc5_b52f), expect(Op::ScD, 10, 11, 12, 0, 4).with_rm(2));
        assert_eq!(decode(0x02c5_a52f), expect(Op::AmoaddW, 10, 11, 12, 0, 4).with_rm(1));
        // LR with rs2 != 0 is reserved.
        assert_eq!(decode(0x1015_a52f), Inst::illegal(4));
    }

    #[test]
    fn fp_rounding_modes_are_kept_even_when_reserved() {
        // fadd.d f10, f11, f12 with rm 5, which only faults when executed.
        assert_eq!(decode(0x02c5_d553), expect(Op::FaddD, 10, 11, 12, 0, 4).with_rm(5));
        // fmadd.s f10, f11, f12, f13, rup.
        let mut fmadd = expect(Op::FmaddS, 10, 11, 12, 0, 4).with_rm(3);
        fmadd.rs3 = 13;
        assert_eq!(decode(0x68c5_b543), fmadd);
        // fcvt.d.w with rm = dyn is valid even though the conversion is exact.
        assert_eq!(decode(0xd205_7553), expect(Op::FcvtDW, 10, 10, 0, 0, 4).with_rm(7));
        // fcvt.w.s x10, f10, rtz: rs2 selects the variant and is cleared.
        assert_eq!(decode(0xc005_1553), expect(Op::FcvtWS, 10, 10, 0, 0, 4).with_rm(1));
    }

    #[test]
    fn fp_opcode_extensions_are_checked_fully() {
        // fsgnj.s with funct3 011, fcvt.w.s with rs2 = 5, fmv.x.w with funct3 010, fclass.d
        // with rs2 != 0, fsqrt.s with rs2 != 0, and fmt = half.
        for raw in [0x2000_3053, 0xc050_0053, 0xe000_2053, 0xe210_1053, 0x5810_0053, 0x0400_0053] {
            assert_eq!(decode(raw), Inst::illegal(4), "{raw:#010x}");
        }
        // fclass.s x10, f10 shares funct7 with fmv.x.w and is told apart by funct3.
        assert_eq!(decode(0xe005_1553), expect(Op::FclassS, 10, 10, 0, 0, 4));
    }

    #[test]
    fn fences_ignore_the_fields_the_spec_reserves_for_future_use() {
        assert_eq!(decode(0x0ff0_000f), expect(Op::Fence, 0, 0, 0, 0x0ff, 4));
        assert_eq!(decode(0x8330_000f), expect(Op::Fence, 0, 0, 0, 0x833, 4));
        // A reserved fm, and nonzero rs1 and rd, still make an ordinary fence.
        assert_eq!(decode(0x1ff5_050f), expect(Op::Fence, 0, 0, 0, 0x1ff, 4));
        // fence.i with a nonzero immediate is still fence.i.
        assert_eq!(decode(0x0ff0_100f), expect(Op::FenceI, 0, 0, 0, 0, 4));
    }

    #[test]
    fn system_instructions_match_exactly() {
        assert_eq!(decode(0x0000_0073), expect(Op::Ecall, 0, 0, 0, 0, 4));
        assert_eq!(decode(0x0010_0073), expect(Op::Ebreak, 0, 0, 0, 0, 4));
        // ebreak with rd != 0, and the privileged wfi.
        assert_eq!(decode(0x0010_0473), Inst::illegal(4));
        assert_eq!(decode(0x1050_0073), Inst::illegal(4));
    }

    #[test]
    fn compressed_immediates_sign_extend() {
        // c.addi x10, -32; c.li x31, 31; c.andi x8, -1; c.addiw x1, 31.
        assert_eq!(decode(0x1501), expect(Op::Addi, 10, 10, 0, -32, 2));
        assert_eq!(decode(0x4ffd), expect(Op::Addi, 31, 0, 0, 31, 2));
        assert_eq!(decode(0x987d), expect(Op::Andi, 8, 8, 0, -1, 2));
        assert_eq!(decode(0x20fd), expect(Op::Addiw, 1, 1, 0, 31, 2));
        // c.j -2048 and c.j +2046.
        assert_eq!(decode(0xb001), expect(Op::Jal, 0, 0, 0, -2048, 2));
        assert_eq!(decode(0xaffd), expect(Op::Jal, 0, 0, 0, 2046, 2));
        // c.beqz x10, -256 and c.bnez x15, +254.
        assert_eq!(decode(0xd101), expect(Op::Beq, 0, 10, 0, -256, 2));
        assert_eq!(decode(0xeffd), expect(Op::Bne, 0, 15, 0, 254, 2));
    }

    #[test]
    fn compressed_lui_and_addi16sp_share_a_funct3() {
        // c.lui x10, 0xfffe0 is lui x10, -0x20000 << 12 >> 12; c.lui x10, 0x1f is positive.
        assert_eq!(decode(0x7501), expect(Op::Lui, 10, 0, 0, -0x2_0000, 2));
        assert_eq!(decode(0x657d), expect(Op::Lui, 10, 0, 0, 0x1_f000, 2));
        // rd = 2 makes it c.addi16sp: -512 and +496.
        assert_eq!(decode(0x7101), expect(Op::Addi, 2, 2, 0, -512, 2));
        assert_eq!(decode(0x617d), expect(Op::Addi, 2, 2, 0, 496, 2));
        // A zero immediate is reserved for both; c.lui x0 with a nonzero immediate is a hint.
        assert_eq!(decode(0x6101), Inst::illegal(2));
        assert_eq!(decode(0x6501), Inst::illegal(2));
        assert_eq!(decode(0x6005), expect(Op::Lui, 0, 0, 0, 0x1000, 2));
    }

    #[test]
    fn compressed_memory_offsets_are_scaled_and_unsigned() {
        // c.addi4spn x15, x2, 1020.
        assert_eq!(decode(0x1ffc), expect(Op::Addi, 15, 2, 0, 1020, 2));
        // c.lw x10, 124(x11); c.ld x10, 248(x11); c.fsd f10, 248(x11).
        assert_eq!(decode(0x5de8), expect(Op::Lw, 10, 11, 0, 124, 2));
        assert_eq!(decode(0x7de8), expect(Op::Ld, 10, 11, 0, 248, 2));
        assert_eq!(decode(0xbde8), expect(Op::Fsd, 0, 11, 10, 248, 2));
        // c.lwsp x10, 252(x2); c.fldsp f10, 504(x2); c.sdsp x10, 504(x2); c.swsp x10, 252(x2).
        assert_eq!(decode(0x557e), expect(Op::Lw, 10, 2, 0, 252, 2));
        assert_eq!(decode(0x357e), expect(Op::Fld, 10, 2, 0, 504, 2));
        assert_eq!(decode(0xffaa), expect(Op::Sd, 0, 2, 10, 504, 2));
        assert_eq!(decode(0xdfaa), expect(Op::Sw, 0, 2, 10, 252, 2));
    }

    #[test]
    fn compressed_shifts_and_their_hints() {
        // c.srai x10, 63 and c.slli x31, 63 use shamt[5] from bit 12.
        assert_eq!(decode(0x957d), expect(Op::Srai, 10, 10, 0, 63, 2));
        assert_eq!(decode(0x1ffe), expect(Op::Slli, 31, 31, 0, 63, 2));
        // c.slli64 x10 and c.srli64 x10 are hints that shift by zero.
        assert_eq!(decode(0x0502), expect(Op::Slli, 10, 10, 0, 0, 2));
        assert_eq!(decode(0x8101), expect(Op::Srli, 10, 10, 0, 0, 2));
    }

    #[test]
    fn compressed_register_forms_and_x0() {
        // c.mv x10, x11 is add x10, x0, x11; c.add x10, x11 is add x10, x10, x11.
        assert_eq!(decode(0x852e), expect(Op::Add, 10, 0, 11, 0, 2));
        assert_eq!(decode(0x952e), expect(Op::Add, 10, 10, 11, 0, 2));
        // c.jr x1 and c.jalr x10 link through x0 and x1.
        assert_eq!(decode(0x8082), expect(Op::Jalr, 0, 1, 0, 0, 2));
        assert_eq!(decode(0x9502), expect(Op::Jalr, 1, 10, 0, 0, 2));
        assert_eq!(decode(0x9002), expect(Op::Ebreak, 0, 0, 0, 0, 2));
        // c.subw x15, x8 and c.addw x10, x11 use rd' and rs2'.
        assert_eq!(decode(0x9f81), expect(Op::Subw, 15, 15, 8, 0, 2));
        // c.li x0, 5 and c.addi x0, 3 are hints that write x0.
        assert_eq!(decode(0x4015), expect(Op::Addi, 0, 0, 0, 5, 2));
        assert_eq!(decode(0x000d), expect(Op::Addi, 0, 0, 0, 3, 2));
    }

    #[test]
    fn compressed_reserved_encodings_are_illegal() {
        // All zeros, c.addi4spn with nzuimm 0, quadrant 0 funct3 100, c.addiw x0,
        // c.lwsp x0, c.ldsp x0, c.jr x0, and the two reserved CA encodings.
        for raw in [0x0000, 0x0004, 0x8000, 0x2001, 0x4002, 0x6002, 0x8002, 0x9c41, 0x9c61] {
            assert_eq!(decode(raw), Inst::illegal(2), "{raw:#06x}");
        }
    }

    #[test]
    fn compressed_decode_ignores_the_upper_halfword() {
        assert_eq!(decode(0xdead_1501), decode(0x1501));
        assert_eq!(decode(0xffff_0000), Inst::illegal(2));
    }

    #[test]
    fn every_halfword_decodes_to_a_compressed_length() {
        for raw in 0..=0xffff_u32 {
            let inst = decode(raw);
            let expected = if raw & 3 == 3 { 4 } else { 2 };
            assert_eq!(inst.len, expected, "{raw:#06x}");
            assert!(inst.rd < 32 && inst.rs1 < 32 && inst.rs2 < 32, "{raw:#06x}");
        }
    }
}
