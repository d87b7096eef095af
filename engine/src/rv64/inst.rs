//! The decoded form of one RV64GC instruction.
//!
//! Every encoding, 32-bit or compressed, decodes to one [`Inst`]: an [`Op`] plus its operand fields.
//! Compressed instructions decode to the operation they expand to (RISC-V unprivileged spec,
//! chapter "C" Standard Extension, table of expansions) with `len == 2`, so the execution tiers see
//! one instruction set.
//!
//! Field conventions:
//! - `rd`, `rs1`, `rs2`, `rs3` are architectural register numbers (0..=31); whether they name an
//!   integer or a floating-point register follows from the op.
//! - `imm` is the sign-extended immediate (branch and jump offsets are relative to the instruction's
//!   own pc); for `Lui` and `Auipc` it is the shifted value `imm[31:12] << 12`. For shifts it is
//!   the shift amount; for CSR ops it is the CSR number and, in the immediate forms, `rs1`
//!   holds the 5-bit zero-extended `uimm`. For `Fence` it holds the pred/succ/fm bits
//!   (`imm[11:0]` of the encoding).
//! - `rm` is the rounding-mode field of floating-point ops (7 = dynamic), and for atomics the
//!   `aq << 1 | rl` bits.

/// One operation of RV64GC (I, M, A, F, D, Zicsr, Zifencei; C decodes to these).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
#[rustfmt::skip]
pub enum Op {
    /// An encoding that is not a valid RV64GC instruction (raises SIGILL when executed).
    Illegal,
    // RV64I
    Lui, Auipc, Jal, Jalr,
    Beq, Bne, Blt, Bge, Bltu, Bgeu,
    Lb, Lh, Lw, Ld, Lbu, Lhu, Lwu,
    Sb, Sh, Sw, Sd,
    Addi, Slti, Sltiu, Xori, Ori, Andi, Slli, Srli, Srai,
    Add, Sub, Sll, Slt, Sltu, Xor, Srl, Sra, Or, And,
    Addiw, Slliw, Srliw, Sraiw,
    Addw, Subw, Sllw, Srlw, Sraw,
    Fence, FenceI, Ecall, Ebreak,
    // Zicsr
    Csrrw, Csrrs, Csrrc, Csrrwi, Csrrsi, Csrrci,
    // M
    Mul, Mulh, Mulhsu, Mulhu, Div, Divu, Rem, Remu,
    Mulw, Divw, Divuw, Remw, Remuw,
    // A
    LrW, ScW, AmoswapW, AmoaddW, AmoxorW, AmoandW, AmoorW, AmominW, AmomaxW, AmominuW, AmomaxuW,
    LrD, ScD, AmoswapD, AmoaddD, AmoxorD, AmoandD, AmoorD, AmominD, AmomaxD, AmominuD, AmomaxuD,
    // F
    Flw, Fsw,
    FmaddS, FmsubS, FnmsubS, FnmaddS,
    FaddS, FsubS, FmulS, FdivS, FsqrtS,
    FsgnjS, FsgnjnS, FsgnjxS, FminS, FmaxS,
    FcvtWS, FcvtWuS, FcvtLS, FcvtLuS,
    FcvtSW, FcvtSWu, FcvtSL, FcvtSLu,
    FmvXW, FmvWX, FeqS, FltS, FleS, FclassS,
    // D
    Fld, Fsd,
    FmaddD, FmsubD, FnmsubD, FnmaddD,
    FaddD, FsubD, FmulD, FdivD, FsqrtD,
    FsgnjD, FsgnjnD, FsgnjxD, FminD, FmaxD,
    FcvtSD, FcvtDS,
    FcvtWD, FcvtWuD, FcvtLD, FcvtLuD,
    FcvtDW, FcvtDWu, FcvtDL, FcvtDLu,
    FmvXD, FmvDX, FeqD, FltD, FleD, FclassD,
}

/// A decoded instruction. Small and `Copy` so that decoded blocks are dense arrays.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Inst {
    /// The operation.
    pub op: Op,
    /// Destination register.
    pub rd: u8,
    /// First source register (or `uimm` for CSR immediate forms).
    pub rs1: u8,
    /// Second source register.
    pub rs2: u8,
    /// Third source register (fused multiply-add only).
    pub rs3: u8,
    /// Rounding mode for floating-point ops; `aq << 1 | rl` for atomics.
    pub rm: u8,
    /// Encoded length in bytes: 2 (compressed) or 4.
    pub len: u8,
    /// Sign-extended immediate, shift amount, CSR number or fence bits (see the module docs).
    pub imm: i32,
}

impl Inst {
    /// An illegal instruction of the given encoded length.
    pub const fn illegal(len: u8) -> Self {
        Inst { op: Op::Illegal, rd: 0, rs1: 0, rs2: 0, rs3: 0, rm: 0, len, imm: 0 }
    }
}

impl Op {
    /// Number of ops; their discriminants are `0..COUNT`.
    pub const COUNT: u8 = Op::FclassD as u8 + 1;

    /// Whether this is a floating-point computation: an F or D instruction other than a load or a
    /// store. (The F and D groups of the enum start at `Flw` and `Fld`.)
    pub fn is_fp_compute(self) -> bool {
        self as u8 >= Op::FmaddS as u8 && !matches!(self, Op::Fld | Op::Fsd)
    }

    /// The op with discriminant `v`, if there is one.
    pub fn from_u8(v: u8) -> Option<Op> {
        // SAFETY: `Op` is a fieldless `repr(u8)` enum without explicit discriminants, so its
        // variants are exactly `0..COUNT` (FclassD is the last); `v` is checked to be in range.
        (v < Op::COUNT).then(|| unsafe { std::mem::transmute::<u8, Op>(v) })
    }
}
