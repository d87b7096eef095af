//! Inline fast paths for floating-point instructions, in the manner of QEMU's "hardfloat".
//!
//! Every floating-point instruction has one definition, `interp::fp_compute`, which compiled
//! code reaches through a helper call (`codegen::FP_TABLE`). For the common cases this module
//! emits the host's own instruction instead, with run-time checks that prove its result and
//! flags are the helper's; when a check fails, the helper runs. `Translator::fp` lays it out:
//!
//! ```text
//!   value = host op(operands)        valid = the result and rounding mode qualify
//!   brif valid && NX (and frm = RNE, for a dynamic mode) ─────> join(value)
//!                (a variable, read at the region's entry and after helper calls)
//!    └─> check (cold):  brif ((valid && proof that value is exact)
//!                            || an exact zero (tested on the operands))
//!                           && frm = RNE, for a dynamic mode ───────────> join(value)
//!         └─> slow (cold): helper call, flags ORed into cpu.fflags ──> join(helper result)
//! ```
//!
//! Why the fast result is the helper's, bit for bit and flag for flag:
//!
//! * Rounding. Arithmetic requires the effective mode to be round-to-nearest-even (static, or
//!   dynamic with `frm == 0` at run time, which the hot path reads with NX from one variable),
//!   which is the host's mode; IEEE 754 defines a
//!   correctly rounded result uniquely, so the host's is the soft-float one. Conversions to
//!   integers require round-towards-zero, which is what the host's truncating conversion does.
//! * NV, DZ, OF. Results must be finite (a NaN or infinite operand makes a NaN or infinite
//!   result, so this also rules those operands out, and with them invalid operations and
//!   overflow, and a zero divisor's infinity or a negative radicand's NaN: DZ and NV). A zero
//!   result is accepted only where it is exact (see each op): `0 × ∞` is a NaN, not a zero,
//!   so a zero operand alone proves nothing. Tests of the operands are left
//!   to the cold check: an operand is often the same all through a loop, and Cranelift would
//!   hoist such a test out of the loop and keep its result in a register (or a spill slot)
//!   all through it. Singles must be properly NaN-boxed.
//! * UF. A result must be normal and strictly larger in magnitude than the smallest normal
//!   number: tininess is detected after rounding, so a result that rounded up to exactly
//!   `MIN_POSITIVE` may still be tiny. A zero result is accepted only where it is exact, so it
//!   cannot hide an underflow.
//! * Subnormal operands need no test: the host computes with them as IEEE 754 does (neither
//!   x86-64 nor AArch64 flushes them unless told to, and nothing here tells it), a subnormal
//!   operand raises no RISC-V flag by itself, and the exactness proofs below hold for them.
//! * NX. The flag accrues: once `cpu.fflags` has it, an inexact result changes nothing, and
//!   programs set it with their first inexact operation. Until then the result must be proven
//!   exact by an error-free transformation ([`Proof`]) computed in the cold check block, or
//!   the helper runs, sets NX and later executions take the fast path.
//!
//! Comparisons, `fmin`/`fmax` (for ordered operands) and widening (for non-NaN operands)
//! raise no flag at all and take only the `valid` test; `fclass` and the conversions of 32-bit integers to double are
//! exact in every case and need no test.
//!
//! Fused multiply-adds are emitted only when the host has a fused multiply-add instruction
//! (`native_fma`): Cranelift would otherwise call a library function, a relocation that
//! compiled code must not contain. The exactness proofs for products, quotients and roots use
//! it too, so without it those fast paths need NX already set.

use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::types::{F32, F64, I8, I32, I64};
use cranelift_codegen::ir::{InstBuilder, MemFlagsData as MemFlags, Opcode, Type, Value, ValueDef};
use cranelift_codegen::isa::TargetIsa;
use cranelift_frontend::FunctionBuilder;

use crate::rv64::Op;
use crate::rv64::fp::{CANONICAL_NAN_32, Rounding};

/// The upper half of a NaN-boxed single.
const BOX: i64 = 0xffff_ffff_0000_0000_u64.cast_signed();

/// Whether Cranelift lowers `fma` on this host to one instruction rather than a library call.
pub(super) fn native_fma(isa: &dyn TargetIsa) -> bool {
    let flag = |name: &str| isa.isa_flags().iter().any(|f| f.name == name && f.as_bool() == Some(true));
    match isa.name() {
        // Cranelift's x64 backend uses VFMADD only with both AVX and FMA.
        "x64" => flag("has_avx") && flag("has_fma"),
        // FMADD is part of the base floating-point instruction set.
        "aarch64" => true,
        _ => false,
    }
}

/// What compiled code does for one floating-point instruction instead of calling the helper.
pub(super) enum Fast {
    /// The result, right in every case: no flags, no rounding.
    Always(Value),
    /// `value` is the result when `valid` holds and NX is set already or `inexact` says the
    /// result is exact, or when `exact_zero` holds (a zero result that is exact, checked in
    /// the cold block: its operand tests often do not depend on the loop around them, and on
    /// the hot path they would be hoisted out of it and take a register all through it);
    /// otherwise the helper must run.
    ///
    /// `dynamic_rne`: the op rounds as `frm` says and needs it to be RNE. That is not in
    /// `valid`, as it is the same all through a region: the hot path takes it with NX from
    /// one variable and only the cold check tests `frm` (loaded there: see
    /// `Translator::frm_here`).
    Guarded { value: Value, valid: Value, inexact: Inexact, exact_zero: Option<Value>, dynamic_rne: bool },
}

/// Whether a fast result may be inexact, which is acceptable only once NX is set.
pub(super) enum Inexact {
    /// Never: the result is exact whenever it is valid.
    Never,
    /// Possibly, and nothing cheap tells; NX must be set.
    Possible,
    /// Possibly, unless the proof holds.
    Unless(Proof),
}

impl Inexact {
    /// `Unless(proof)`, or `Possible` without one.
    fn unless(proof: Option<Proof>) -> Inexact {
        proof.map_or(Inexact::Possible, Inexact::Unless)
    }
}

/// An error-free check that a fast result is exact, for the cold path taken while NX is clear.
/// Each holds only for exact results and may fail for some exact ones (the helper then runs).
pub(super) enum Proof {
    /// `s = x + y` (rounded) is exact: TwoSum's error term `x + y − s` is zero. TwoSum is exact
    /// for every finite operand; an intermediate overflow makes the error infinite or NaN,
    /// never zero.
    Sum { x: Value, y: Value, s: Value, p: Precision },
    /// `r = x · y` is exact: `fma(x, y, −r)` is zero, with `|r| ≥ 2^(emin + 2p)`. With `x` in
    /// `[2^ex, 2^(ex+1))` and `y` in `[2^ey, 2^(ey+1))`, `x·y` is a multiple of
    /// `ulp(x)·ulp(y) = 2^(ex + ey + 2 − 2p)` and below `2^(ex + ey + 2)`; above the bound that
    /// multiple is at least `2^emin`, and `r` is a multiple of it too. So the exact error
    /// `x·y − r` is a multiple of `2^emin`, and a nonzero one cannot round to zero. A
    /// subnormal `x` (a multiple of `2^(emin + 1 − p)`, below `2^emin`) needs `y ≥ 2^(2p)` to
    /// reach the bound, so `ulp(y) ≥ 2^(p + 1)` and the quantum is at least `2^(emin + 2)`.
    Product { x: Value, y: Value, r: Value, p: Precision },
    /// `q = x / y` is exact: the remainder `fma(−q, y, x)` is zero, with `|x| ≥ 2^(emin + 2p)`
    /// (`x ≈ q·y`, so the remainder is a multiple of `2^emin` as for products; a subnormal
    /// `y` makes `|q| ≥ 2^(2p)`, and `q·y` a multiple of `2^(emin + 2)`).
    Quotient { x: Value, y: Value, q: Value, p: Precision },
    /// `r = √x` is exact: `fma(−r, r, x)` is zero, with `x ≥ 2^(emin + 2p)` (likewise).
    Root { x: Value, r: Value, p: Precision },
    /// `r = x · y + z` (fused) is exact: the product is exact (as for `Product`) and so `r`
    /// is the rounded sum of the product and `z`, which TwoSum then shows to be exact.
    Fused { x: Value, y: Value, z: Value, r: Value, p: Precision },
    /// `r`, a double `x` rounded to single, is exact: widening `r` gives back `x`.
    Narrowed { r: Value, x: Value },
    /// `n`, a double `x` truncated to an integer, is exact: converting `n` back gives `x`
    /// (exactly, even above `2^53`, where `x` is an integer and so `n == x` is a double).
    Integral { n: Value, signed: bool, x: Value },
    /// A conversion of the 64-bit integer `v` to precision `p` is exact: `|v| ≤ 2^p` (a
    /// sufficient condition; larger integers with trailing zeros are exact too).
    FitsPrecision { v: Value, signed: bool, p: Precision },
}

/// A floating-point format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Precision {
    Single,
    Double,
}

impl Precision {
    fn float(self) -> Type {
        match self {
            Precision::Single => F32,
            Precision::Double => F64,
        }
    }

    /// The integer type of the same width.
    fn int(self) -> Type {
        match self {
            Precision::Single => I32,
            Precision::Double => I64,
        }
    }

    fn bits(self) -> i64 {
        match self {
            Precision::Single => 32,
            Precision::Double => 64,
        }
    }

    /// Stored fraction bits.
    fn frac_bits(self) -> i64 {
        match self {
            Precision::Single => 23,
            Precision::Double => 52,
        }
    }

    /// Significand bits, the implicit one included.
    fn precision(self) -> i64 {
        self.frac_bits() + 1
    }

    /// The largest biased exponent (infinities and NaNs).
    fn exp_max(self) -> i64 {
        (1 << (self.bits() - 1 - self.frac_bits())) - 1
    }

    fn zero(self, b: &mut FunctionBuilder) -> Value {
        match self {
            Precision::Single => b.ins().f32const(0.0),
            Precision::Double => b.ins().f64const(0.0),
        }
    }

    /// `2^(emin + 2p)`, the magnitude above which products, quotients and roots have exact
    /// error terms ([`Proof`]).
    fn exact_limit(self, b: &mut FunctionBuilder) -> Value {
        match self {
            // 2^(−126 + 48) and 2^(−1022 + 106).
            Precision::Single => b.ins().f32const(f32::from_bits((127 - 78) << 23)),
            Precision::Double => b.ins().f64const(f64::from_bits((1023 - 916) << 52)),
        }
    }
}

/// A value of a precision's format: the host float and its bits (`i32` or `i64`).
#[derive(Clone, Copy)]
struct Float {
    value: Value,
    bits: Value,
}

impl Float {
    /// A host float computed from operands.
    fn host(b: &mut FunctionBuilder, p: Precision, value: Value) -> Float {
        Float { value, bits: reinterpret(b, p.int(), value) }
    }

    /// Checks on the bits. With the sign shifted out, `t = bits << 1` orders values by
    /// magnitude and the exponent field starts at bit `s = frac_bits + 1`:
    ///
    /// ```text
    ///   t == 0                            zero
    ///   0 < t < 1 << s                    subnormal
    ///   1 << s ≤ t < exp_max << s         normal (t == 1 << s: MIN_POSITIVE)
    ///   exp_max << s ≤ t                  infinity, NaN
    /// ```
    fn magnitude(self, b: &mut FunctionBuilder) -> Value {
        b.ins().ishl_imm_s(self.bits, 1)
    }

    /// Whether this result is finite and too large to be tiny: `MIN_POSITIVE < |r| ≤ MAX`.
    fn normal_result(self, b: &mut FunctionBuilder, p: Precision) -> Value {
        let s = p.frac_bits() + 1;
        let t = self.magnitude(b);
        let above_min = b.ins().iadd_imm_s(t, -(1 << s) - 1);
        b.ins().icmp_imm_u(IntCC::UnsignedLessThan, above_min, ((p.exp_max() - 1) << s) - 1)
    }

    fn is_zero(self, b: &mut FunctionBuilder) -> Value {
        let t = self.magnitude(b);
        b.ins().icmp_imm_s(IntCC::Equal, t, 0)
    }
}

/// The effective rounding mode of an instruction, as compiled code knows it.
#[derive(Clone, Copy, Debug)]
pub(super) enum Mode {
    /// Known when compiling (a static `rm`, or an op without one, which the helper runs in RNE).
    Static(Rounding),
    /// `frm`, loaded at run time (an `i64` already checked to be a valid mode).
    Dynamic(Value),
}

/// A conjunction of run-time conditions (`i8` booleans), built up with the fast path.
#[derive(Default)]
struct Conds(Option<Value>);

impl Conds {
    fn and(&mut self, b: &mut FunctionBuilder, c: Value) {
        self.0 = Some(match self.0 {
            Some(v) => b.ins().band(v, c),
            None => c,
        });
    }

    /// Requires the effective rounding mode to be `want`; `None` when it statically is not.
    fn rounding(&mut self, b: &mut FunctionBuilder, mode: Mode, want: Rounding) -> Option<()> {
        match mode {
            Mode::Static(m) => (m == want).then_some(()),
            Mode::Dynamic(frm) => {
                let c = b.ins().icmp_imm_s(IntCC::Equal, frm, i64::from(want as u8));
                self.and(b, c);
                Some(())
            }
        }
    }

    /// These conditions and `c`, leaving these as they are.
    fn and_then(&self, b: &mut FunctionBuilder, c: Value) -> Value {
        match self.0 {
            Some(v) => b.ins().band(v, c),
            None => c,
        }
    }

    fn value(self, b: &mut FunctionBuilder) -> Value {
        self.0.unwrap_or_else(|| b.ins().iconst(I8, 1))
    }
}

/// A single-precision operand's bits: the low 32 if properly NaN-boxed, else the canonical NaN
/// (zero-extended, as the interpreter's `unbox` gives it).
pub(super) fn unbox(b: &mut FunctionBuilder, v: Value) -> Value {
    let hi = b.ins().ushr_imm_s(v, 32);
    let boxed = b.ins().icmp_imm_s(IntCC::Equal, hi, 0xffff_ffff);
    let lo = b.ins().band_imm_s(v, 0xffff_ffff);
    let nan = b.ins().iconst(I64, i64::from(CANONICAL_NAN_32));
    b.ins().select(boxed, lo, nan)
}

/// An operand of precision `p` from its register value `v`. A single must be properly
/// NaN-boxed (anything else reads as the canonical NaN, left to the helper), which becomes a
/// condition in `ok`.
fn operand(b: &mut FunctionBuilder, p: Precision, v: Value, ok: &mut Conds) -> Float {
    let bits = match p {
        Precision::Single => {
            let boxed = b.ins().icmp_imm_s(IntCC::UnsignedGreaterThanOrEqual, v, BOX);
            ok.and(b, boxed);
            b.ins().ireduce(I32, v)
        }
        Precision::Double => v,
    };
    Float { value: reinterpret(b, p.float(), bits), bits }
}

/// The bits (`i64`) of the `f64` `v`.
pub(super) fn bits_of(b: &mut FunctionBuilder, v: Value) -> Value {
    reinterpret(b, I64, v)
}

/// The `f64` with the bits `v` (an `i64`).
pub(super) fn float_of(b: &mut FunctionBuilder, v: Value) -> Value {
    reinterpret(b, F64, v)
}

/// `v` reinterpreted as `ty` (of the same width). Where `v` is itself a reinterpretation of a
/// `ty` value, that value: floating-point registers live in `f64` variables, and each op
/// reads their bits and gives bits back, so without this every value would cross between
/// host register files twice per op (Cranelift keeps such pairs).
fn reinterpret(b: &mut FunctionBuilder, ty: Type, v: Value) -> Value {
    let dfg = &b.func.dfg;
    if let ValueDef::Result(inst, 0) = dfg.value_def(v)
        && dfg.insts[inst].opcode() == Opcode::Bitcast
        && let Some(&src) = dfg.inst_args(inst).first()
        && dfg.value_type(src) == ty
    {
        return src;
    }
    b.ins().bitcast(ty, MemFlags::new(), v)
}

/// The start of every computing fast path: the rounding mode must be RNE (`None` when it
/// statically is not; the condition, for a dynamic mode, see [`Fast::Guarded`]) and each
/// operand properly boxed.
fn rne_operands<const N: usize>(
    b: &mut FunctionBuilder,
    p: Precision,
    mode: Mode,
    values: [Value; N],
) -> Option<(Conds, [Float; N], bool)> {
    let dynamic_rne = dynamic_rne(mode)?;
    let mut ok = Conds::default();
    let operands = values.map(|v| operand(b, p, v, &mut ok));
    Some((ok, operands, dynamic_rne))
}

/// For an op that needs RNE: `None` when its static mode is another, else whether the mode is
/// dynamic (and so must be RNE when the op runs).
fn dynamic_rne(mode: Mode) -> Option<bool> {
    match mode {
        Mode::Static(m) => (m == Rounding::Rne).then_some(false),
        Mode::Dynamic(_) => Some(true),
    }
}

/// The register value of a result of precision `p` (singles NaN-boxed).
fn register(b: &mut FunctionBuilder, p: Precision, r: Float) -> Value {
    match p {
        Precision::Single => {
            let wide = b.ins().uextend(I64, r.bits);
            b.ins().bor_imm_s(wide, BOX)
        }
        Precision::Double => r.bits,
    }
}

/// Whether the host float `x` is ±0.
fn exactly_zero(b: &mut FunctionBuilder, p: Precision, x: Value) -> Value {
    let zero = p.zero(b);
    b.ins().fcmp(FloatCC::Equal, x, zero)
}

/// The fast path for floating-point op `op`, with its register operands (`a` from the integer
/// registers for conversions from integers) and the effective rounding mode; `None` where
/// there is none and the helper always runs.
pub(super) fn emit(b: &mut FunctionBuilder, op: Op, [a, x, y]: [Value; 3], mode: Mode, fma: bool) -> Option<Fast> {
    use Op::*;
    // The F group of ops works on singles, the D group on doubles (conversions from and to
    // integers: the float side; `fcvt.d.s` and `fcvt.s.d` name theirs).
    let p = if (FmaddS as u8..=FclassS as u8).contains(&(op as u8)) { Precision::Single } else { Precision::Double };
    let int = |bits, signed| Int { bits, signed };
    match op {
        FaddS | FaddD => arith(b, p, Arith::Add, a, x, mode, fma),
        FsubS | FsubD => arith(b, p, Arith::Sub, a, x, mode, fma),
        FmulS | FmulD => arith(b, p, Arith::Mul, a, x, mode, fma),
        FdivS | FdivD => arith(b, p, Arith::Div, a, x, mode, fma),
        FsqrtS | FsqrtD => sqrt(b, p, a, mode, fma),
        FmaddS | FmaddD if fma => fused(b, p, [a, x, y], (false, false), mode),
        FmsubS | FmsubD if fma => fused(b, p, [a, x, y], (false, true), mode),
        FnmsubS | FnmsubD if fma => fused(b, p, [a, x, y], (true, false), mode),
        FnmaddS | FnmaddD if fma => fused(b, p, [a, x, y], (true, true), mode),
        FeqS | FeqD => Some(compare(b, p, FloatCC::Equal, a, x)),
        FltS | FltD => Some(compare(b, p, FloatCC::LessThan, a, x)),
        FleS | FleD => Some(compare(b, p, FloatCC::LessThanOrEqual, a, x)),
        FminS | FminD => Some(min_max(b, p, false, a, x)),
        FmaxS | FmaxD => Some(min_max(b, p, true, a, x)),
        FcvtDS => Some(widen(b, a)),
        FcvtSD => narrow(b, a, mode),
        FcvtWS | FcvtWD => to_int(b, p, int(32, true), a, mode),
        FcvtWuS | FcvtWuD => to_int(b, p, int(32, false), a, mode),
        FcvtLS | FcvtLD => to_int(b, p, int(64, true), a, mode),
        FcvtLuS | FcvtLuD => to_int(b, p, int(64, false), a, mode),
        FcvtSW | FcvtDW => from_int(b, p, int(32, true), a, mode),
        FcvtSWu | FcvtDWu => from_int(b, p, int(32, false), a, mode),
        FcvtSL | FcvtDL => from_int(b, p, int(64, true), a, mode),
        FcvtSLu | FcvtDLu => from_int(b, p, int(64, false), a, mode),
        FclassS | FclassD => Some(Fast::Always(classify(b, p, a))),
        _ => None,
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Arith {
    Add,
    Sub,
    Mul,
    Div,
}

/// `fadd`, `fsub`, `fmul`, `fdiv` in RNE, for a normal result. Zero results are accepted
/// where they are exact: a sum is zero only when exactly zero (a nonzero multiple of the
/// smallest subnormal never rounds to zero), with the same sign in the host and the helper in
/// RNE (`x − x = +0`, `−0 + −0 = −0`); a zero product with a zero operand (the other is then
/// finite: `0 × ∞` and `0 × NaN` are NaNs), or a zero quotient of a zero dividend (over a
/// nonzero divisor, finite or infinite), is an exact signed zero. The exactness proofs of
/// products and quotients need a native `fma`.
fn arith(
    b: &mut FunctionBuilder,
    p: Precision,
    kind: Arith,
    a: Value,
    c: Value,
    mode: Mode,
    fma: bool,
) -> Option<Fast> {
    let (mut ok, [x, y], dynamic_rne) = rne_operands(b, p, mode, [a, c])?;
    // A zero sum is exact (additions that underflow are); a zero product or quotient only of a
    // zero operand or dividend, which the cold check tests.
    let (r, zero_ok, proof) = match kind {
        Arith::Add | Arith::Sub => {
            let y = if kind == Arith::Sub { b.ins().fneg(y.value) } else { y.value };
            let s = b.ins().fadd(x.value, y);
            let s = Float::host(b, p, s);
            let zero = s.is_zero(b);
            let normal = s.normal_result(b, p);
            let r_ok = b.ins().bor(normal, zero);
            ok.and(b, r_ok);
            (s, None, Some(Proof::Sum { x: x.value, y, s: s.value, p }))
        }
        Arith::Mul => {
            let r = b.ins().fmul(x.value, y.value);
            let r = Float::host(b, p, r);
            let (zx, zy) = (x.is_zero(b), y.is_zero(b));
            let zero_operand = b.ins().bor(zx, zy);
            let zero = r.is_zero(b);
            let exact_zero = b.ins().band(zero, zero_operand);
            let exact_zero = ok.and_then(b, exact_zero);
            let normal = r.normal_result(b, p);
            ok.and(b, normal);
            (r, Some(exact_zero), fma.then_some(Proof::Product { x: x.value, y: y.value, r: r.value, p }))
        }
        Arith::Div => {
            // A zero divisor makes an infinity or a NaN, which neither test accepts.
            let q = b.ins().fdiv(x.value, y.value);
            let q = Float::host(b, p, q);
            let (zero, zero_dividend) = (q.is_zero(b), x.is_zero(b));
            let exact_zero = b.ins().band(zero, zero_dividend);
            let exact_zero = ok.and_then(b, exact_zero);
            let normal = q.normal_result(b, p);
            ok.and(b, normal);
            (q, Some(exact_zero), fma.then_some(Proof::Quotient { x: x.value, y: y.value, q: q.value, p }))
        }
    };
    Some(Fast::Guarded {
        value: register(b, p, r),
        valid: ok.value(b),
        inexact: Inexact::unless(proof),
        exact_zero: zero_ok,
        dynamic_rne,
    })
}

/// `fsqrt` in RNE, for a radicand `x ≥ 0` (−0 included: `√−0 = −0`; not a NaN) and a normal
/// root, or the zero root of a zero. The exactness proof needs a native `fma`.
fn sqrt(b: &mut FunctionBuilder, p: Precision, a: Value, mode: Mode, fma: bool) -> Option<Fast> {
    let (mut ok, [x], dynamic_rne) = rne_operands(b, p, mode, [a])?;
    // A negative radicand makes a NaN, which neither test accepts; only a zero radicand (−0
    // included) has a zero root.
    let r = b.ins().sqrt(x.value);
    let proof = fma.then_some(Proof::Root { x: x.value, r, p });
    let r = Float::host(b, p, r);
    let normal = r.normal_result(b, p);
    let zero = r.is_zero(b);
    let r_ok = b.ins().bor(normal, zero);
    ok.and(b, r_ok);
    Some(Fast::Guarded {
        value: register(b, p, r),
        valid: ok.value(b),
        inexact: Inexact::unless(proof),
        exact_zero: None,
        dynamic_rne,
    })
}

/// `fmadd`, `fmsub`, `fnmsub`, `fnmadd` in RNE: `±(a·b) ± c`, as `fp_compute` defines them
/// (sign flips of `a` and `c`), for a normal result (a zero result could hide an underflowed
/// product).
fn fused(
    b: &mut FunctionBuilder,
    p: Precision,
    [a, c, d]: [Value; 3],
    (negate_product, negate_addend): (bool, bool),
    mode: Mode,
) -> Option<Fast> {
    let (mut ok, [x, y, z], dynamic_rne) = rne_operands(b, p, mode, [a, c, d])?;
    let x = if negate_product { b.ins().fneg(x.value) } else { x.value };
    let z = if negate_addend { b.ins().fneg(z.value) } else { z.value };
    let y = y.value;
    let r = b.ins().fma(x, y, z);
    let proof = Proof::Fused { x, y, z, r, p };
    let r = Float::host(b, p, r);
    let normal = r.normal_result(b, p);
    ok.and(b, normal);
    Some(Fast::Guarded {
        value: register(b, p, r),
        valid: ok.value(b),
        inexact: Inexact::Unless(proof),
        exact_zero: None,
        dynamic_rne,
    })
}

/// `feq`, `flt`, `fle` for ordered operands: IEEE comparisons (−0 == +0) with no flags. A NaN
/// raises NV for `flt`/`fle` and for a signaling one `feq`, which the helper does.
fn compare(b: &mut FunctionBuilder, p: Precision, cc: FloatCC, a: Value, c: Value) -> Fast {
    let mut ok = Conds::default();
    let x = operand(b, p, a, &mut ok).value;
    let y = operand(b, p, c, &mut ok).value;
    let ordered = b.ins().fcmp(FloatCC::Ordered, x, y);
    ok.and(b, ordered);
    let r = b.ins().fcmp(cc, x, y);
    let value = b.ins().uextend(I64, r);
    Fast::Guarded { value, valid: ok.value(b), inexact: Inexact::Never, exact_zero: None, dynamic_rne: false }
}

/// `fmin`/`fmax` for ordered operands: the smaller or larger, with −0 < +0. Equal values are
/// either the same bits or zeros of both signs, and then OR (for min, giving −0) or AND (for
/// max, giving +0) of the register values selects the right one; a NaN operand goes to the
/// helper.
fn min_max(b: &mut FunctionBuilder, p: Precision, max: bool, a: Value, c: Value) -> Fast {
    let mut ok = Conds::default();
    let x = operand(b, p, a, &mut ok).value;
    let y = operand(b, p, c, &mut ok).value;
    let ordered = b.ins().fcmp(FloatCC::Ordered, x, y);
    ok.and(b, ordered);
    let lt = b.ins().fcmp(FloatCC::LessThan, x, y);
    let gt = b.ins().fcmp(FloatCC::GreaterThan, x, y);
    let (a_wins, c_wins, tie) = if max { (gt, lt, b.ins().band(a, c)) } else { (lt, gt, b.ins().bor(a, c)) };
    let other = b.ins().select(c_wins, c, tie);
    let value = b.ins().select(a_wins, a, other);
    Fast::Guarded { value, valid: ok.value(b), inexact: Inexact::Never, exact_zero: None, dynamic_rne: false }
}

/// `fcvt.d.s`: widening is exact for every value but NaN, which goes to the helper.
fn widen(b: &mut FunctionBuilder, a: Value) -> Fast {
    let mut ok = Conds::default();
    let x = operand(b, Precision::Single, a, &mut ok).value;
    let not_nan = b.ins().fcmp(FloatCC::Ordered, x, x);
    ok.and(b, not_nan);
    let r = b.ins().fpromote(F64, x);
    let r = Float::host(b, Precision::Double, r);
    Fast::Guarded {
        value: register(b, Precision::Double, r),
        valid: ok.value(b),
        inexact: Inexact::Never,
        exact_zero: None,
        dynamic_rne: false,
    }
}

/// `fcvt.s.d` in RNE, for a normal single result (or zero from a zero, which is exact; a
/// double too small for a single rounds to a zero from a nonzero, and is left to the helper).
fn narrow(b: &mut FunctionBuilder, a: Value, mode: Mode) -> Option<Fast> {
    let dynamic_rne = dynamic_rne(mode)?;
    let mut ok = Conds::default();
    let x = operand(b, Precision::Double, a, &mut ok);
    let r = b.ins().fdemote(F32, x.value);
    let proof = Proof::Narrowed { r, x: x.value };
    let r = Float::host(b, Precision::Single, r);
    // A zero result is exact only from a zero (a nonzero double may underflow to it).
    let zero = x.is_zero(b);
    let exact_zero = ok.and_then(b, zero);
    let normal = r.normal_result(b, Precision::Single);
    ok.and(b, normal);
    Some(Fast::Guarded {
        value: register(b, Precision::Single, r),
        valid: ok.value(b),
        inexact: Inexact::Unless(proof),
        exact_zero: Some(exact_zero),
        dynamic_rne,
    })
}

/// An integer format of a conversion.
#[derive(Clone, Copy)]
struct Int {
    bits: u8,
    signed: bool,
}

impl Int {
    fn ty(self) -> Type {
        if self.bits == 32 { I32 } else { I64 }
    }

    /// The open interval of doubles whose truncation fits: beyond it the helper saturates
    /// and raises NV. (−2^63 − 2^11 is the double just below −2^63.)
    fn truncation_bounds(self) -> (f64, f64) {
        match (self.bits, self.signed) {
            (32, true) => (-2_147_483_649.0, 2_147_483_648.0),
            (32, false) => (-1.0, 4_294_967_296.0),
            (_, true) => (-9_223_372_036_854_777_856.0, 9_223_372_036_854_775_808.0),
            (_, false) => (-1.0, 18_446_744_073_709_551_616.0),
        }
    }
}

/// `fcvt.{w,wu,l,lu}.{s,d}` with RTZ (the mode C casts use), for a value whose truncation is
/// in range; NaN, infinities and out-of-range values saturate with NV in the helper. 32-bit
/// results are sign-extended, the unsigned ones too, as RISC-V defines.
fn to_int(b: &mut FunctionBuilder, p: Precision, int: Int, a: Value, mode: Mode) -> Option<Fast> {
    let mut ok = Conds::default();
    ok.rounding(b, mode, Rounding::Rtz)?;
    let x = operand(b, p, a, &mut ok).value;
    // Widening a single is exact, and the bounds are doubles.
    let x = if p == Precision::Single { b.ins().fpromote(F64, x) } else { x };
    let (lo, hi) = int.truncation_bounds();
    let (lo, hi) = (b.ins().f64const(lo), b.ins().f64const(hi));
    let above = b.ins().fcmp(FloatCC::GreaterThan, x, lo);
    let below = b.ins().fcmp(FloatCC::LessThan, x, hi);
    ok.and(b, above);
    ok.and(b, below);
    // The saturating conversions never trap; in range they truncate.
    let n = if int.signed { b.ins().fcvt_to_sint_sat(int.ty(), x) } else { b.ins().fcvt_to_uint_sat(int.ty(), x) };
    let value = if int.bits == 32 { b.ins().sextend(I64, n) } else { n };
    Some(Fast::Guarded {
        value,
        valid: ok.value(b),
        inexact: Inexact::Unless(Proof::Integral { n, signed: int.signed, x }),
        exact_zero: None,
        dynamic_rne: false,
    })
}

/// `fcvt.{s,d}.{w,wu,l,lu}`: the host's conversion rounds to nearest even. A 32-bit integer
/// always fits a double, so that conversion is exact in every mode and needs no test; the
/// others need RNE, and NX or an integer that fits the precision.
fn from_int(b: &mut FunctionBuilder, p: Precision, int: Int, a: Value, mode: Mode) -> Option<Fast> {
    let v = match (int.bits, int.signed) {
        (32, true) => {
            let n = b.ins().ireduce(I32, a);
            b.ins().sextend(I64, n)
        }
        (32, false) => b.ins().band_imm_s(a, 0xffff_ffff),
        _ => a,
    };
    let r = if int.signed { b.ins().fcvt_from_sint(p.float(), v) } else { b.ins().fcvt_from_uint(p.float(), v) };
    let r = Float::host(b, p, r);
    let value = register(b, p, r);
    if int.bits == 32 && p == Precision::Double {
        return Some(Fast::Always(value));
    }
    let dynamic_rne = dynamic_rne(mode)?;
    Some(Fast::Guarded {
        value,
        valid: b.ins().iconst(I8, 1),
        inexact: Inexact::Unless(Proof::FitsPrecision { v, signed: int.signed, p }),
        exact_zero: None,
        dynamic_rne,
    })
}

/// `fclass`: one bit of ten, from bit 0 (−∞) to bit 9 (quiet NaN), from the fields alone.
fn classify(b: &mut FunctionBuilder, p: Precision, a: Value) -> Value {
    // The bits, zero-extended; an improperly boxed single is the canonical (quiet) NaN.
    let v = if p == Precision::Single { unbox(b, a) } else { a };
    let frac_bits = p.frac_bits();
    let exp_max = p.exp_max();
    let negative = b.ins().ushr_imm_s(v, p.bits() - 1);
    let shifted = b.ins().ushr_imm_s(v, frac_bits);
    let exp = b.ins().band_imm_s(shifted, exp_max);
    let frac = b.ins().band_imm_s(v, (1 << frac_bits) - 1);
    let special = b.ins().icmp_imm_s(IntCC::Equal, exp, exp_max);
    let small = b.ins().icmp_imm_s(IntCC::Equal, exp, 0);
    let frac_zero = b.ins().icmp_imm_s(IntCC::Equal, frac, 0);
    // The bit of a positive value: 4 zero, 5 subnormal, 6 normal, 7 infinity.
    let (four, five, six, seven) =
        (b.ins().iconst(I64, 4), b.ins().iconst(I64, 5), b.ins().iconst(I64, 6), b.ins().iconst(I64, 7));
    let tiny = b.ins().select(frac_zero, four, five);
    let finite = b.ins().select(small, tiny, six);
    let positive = b.ins().select(special, seven, finite);
    // A negative value's mirrors it: 3, 2, 1, 0.
    let mirrored = b.ins().bxor_imm_s(positive, 7);
    let index = b.ins().select(negative, mirrored, positive);
    // NaNs, whatever their sign: 8 signaling, 9 quiet (the top fraction bit set).
    let quiet_bit = b.ins().ushr_imm_s(frac, frac_bits - 1);
    let nan_index = b.ins().iadd_imm_s(quiet_bit, 8);
    let nan = b.ins().band_not(special, frac_zero);
    let index = b.ins().select(nan, nan_index, index);
    let one = b.ins().iconst(I64, 1);
    b.ins().ishl(one, index)
}

impl Proof {
    /// Emits the check; true when the fast result is exact.
    pub(super) fn emit(self, b: &mut FunctionBuilder) -> Value {
        match self {
            Proof::Sum { x, y, s, p } => {
                // TwoSum (Knuth): err = (x − (s − bb)) + (y − bb), bb = s − x.
                let bb = b.ins().fsub(s, x);
                let xb = b.ins().fsub(s, bb);
                let ex = b.ins().fsub(x, xb);
                let ey = b.ins().fsub(y, bb);
                let err = b.ins().fadd(ex, ey);
                exactly_zero(b, p, err)
            }
            Proof::Product { x, y, r, p } => {
                let large = above_exact_limit(b, p, r);
                let neg = b.ins().fneg(r);
                let err = b.ins().fma(x, y, neg);
                let zero = exactly_zero(b, p, err);
                b.ins().band(large, zero)
            }
            Proof::Quotient { x, y, q, p } => {
                let large = above_exact_limit(b, p, x);
                let neg = b.ins().fneg(q);
                let rem = b.ins().fma(neg, y, x);
                let zero = exactly_zero(b, p, rem);
                b.ins().band(large, zero)
            }
            Proof::Root { x, r, p } => {
                let large = above_exact_limit(b, p, x);
                let neg = b.ins().fneg(r);
                let rem = b.ins().fma(neg, r, x);
                let zero = exactly_zero(b, p, rem);
                b.ins().band(large, zero)
            }
            Proof::Fused { x, y, z, r, p } => {
                let product = b.ins().fmul(x, y);
                let exact_product = Proof::Product { x, y, r: product, p }.emit(b);
                let exact_sum = Proof::Sum { x: product, y: z, s: r, p }.emit(b);
                b.ins().band(exact_product, exact_sum)
            }
            Proof::Narrowed { r, x } => {
                let back = b.ins().fpromote(F64, r);
                b.ins().fcmp(FloatCC::Equal, back, x)
            }
            Proof::Integral { n, signed, x } => {
                let back = if signed { b.ins().fcvt_from_sint(F64, n) } else { b.ins().fcvt_from_uint(F64, n) };
                b.ins().fcmp(FloatCC::Equal, back, x)
            }
            Proof::FitsPrecision { v, signed, p } => {
                let limit = 1_i64 << p.precision();
                if signed {
                    // −2^p ≤ v ≤ 2^p, as one unsigned comparison.
                    let biased = b.ins().iadd_imm_s(v, limit);
                    b.ins().icmp_imm_s(IntCC::UnsignedLessThanOrEqual, biased, 2 * limit)
                } else {
                    b.ins().icmp_imm_s(IntCC::UnsignedLessThanOrEqual, v, limit)
                }
            }
        }
    }
}

/// Whether `|v| ≥ 2^(emin + 2p)` ([`Proof`]).
fn above_exact_limit(b: &mut FunctionBuilder, p: Precision, v: Value) -> Value {
    let av = b.ins().fabs(v);
    let limit = p.exact_limit(b);
    b.ins().fcmp(FloatCC::GreaterThanOrEqual, av, limit)
}
