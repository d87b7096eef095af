//! Exact RISC-V F and D floating-point semantics, on raw IEEE 754 bit patterns.
//!
//! Every operation takes and returns the bits a guest register holds (`u32` for single, `u64`
//! for double) and ORs the exception flags it raises into an `fflags` byte. The results and
//! flags are those the RISC-V unprivileged spec (chapters "F" and "D", which defer to IEEE
//! 754-2008) requires, which is also what qemu-riscv64 produces:
//!
//! * Every NaN result is the canonical NaN (`0x7fc00000` / `0x7ff8000000000000`); payloads
//!   never propagate. NV is raised for any signaling NaN input and for invalid operations
//!   (∞−∞, 0×∞, 0/0, ∞/∞, √negative, and ∞×0+c even when `c` is a quiet NaN).
//! * Subnormals are fully supported, never flushed. Tininess is detected *after* rounding, and
//!   UF is raised only when the result is both tiny and inexact.
//! * An exact zero sum is +0 in every rounding mode except RDN, where it is −0.
//! * Conversions to integers saturate (NaN gives the largest positive value) and raise NV
//!   instead of NX when the rounded value is out of range.
//! * `fmin`/`fmax` are IEEE 754-2019 minimumNumber/maximumNumber (F extension 2.2): −0 < +0, a
//!   single NaN operand yields the other operand, two NaNs the canonical NaN, NV only for sNaN.
//!
//! FMSUB, FNMSUB and FNMADD are not provided: the caller flips sign bits of the inputs and calls
//! `fma`, `fmsub(a, b, c) = fma(a, b, −c)`, `fnmsub(a, b, c) = fma(−a, b, c)`,
//! `fnmadd(a, b, c) = fma(−a, b, −c)`. That is exact, and it is exact for NaNs too, because a
//! sign flip keeps a NaN quiet or signaling and every NaN result is canonical anyway.
//!
//! # How results are computed
//!
//! There are two paths, and both give the same bits and flags (the tests check it).
//!
//! **The fast path** uses the host's own IEEE arithmetic, which is correctly rounded to
//! nearest-even: the mode almost every instruction uses, and the answer in every mode when the
//! result is exact. What the host does not give is the flags, so the fast path only answers
//! when it can prove them cheaply:
//!
//! * The rounded result must be finite and larger in magnitude than the smallest normal number,
//!   which rules out NaN operands, overflow and tininess (an exact zero sum is also accepted).
//! * NX is decided exactly by an error-free check: TwoSum for addition; for multiplication,
//!   division (`q·b == a`) and square root (`r·r == a`) a comparison of significands' odd
//!   parts, usually settled by their bit widths alone; for single precision, products are exact
//!   in `f64`. A fused multiply-add is inexact exactly when the lowest set bit of `a·b + c`,
//!   known from the operands unless the product's and the addend's coincide, lies below the
//!   result's last place.
//! * An inexact result is accepted only in RNE.
//!
//! Conversions to integers round with exact host operations in every mode (the `2^52` addition
//! trick for RNE, the truncating conversion for RTZ) and check the range; conversions from
//! integers are exact in every mode when the integer fits the precision. Comparisons and
//! `fmin`/`fmax` use host comparisons unless a NaN (or, for min/max, equal values, which may be
//! zeros of different signs) is involved. Anything else — a directed mode with an inexact
//! result, NaN, infinity, a zero or subnormal result, possible overflow, an undecided fused
//! multiply-add — falls through to the soft path.
//!
//! **The soft path** is integer-only, in the style of Berkeley SoftFloat. An operand unpacks to
//! a sign, an exponent and an integer significand with the value `sig × 2^exp`:
//!
//! ```text
//!   bits:  sign | biased exponent E | fraction f
//!   normal     (0 < E < max): sig = 2^p' | f,  exp = E − bias − p'
//!   subnormal  (E == 0):      sig = f,         exp = 1 − bias − p'
//!   (p' = fraction bits: 23 or 52)
//! ```
//!
//! Operations compute the exact result, or a `u128` significand whose lowest bit is "jammed"
//! (ORed with every bit shifted out, the sticky bit) far below the rounding position, which
//! rounds identically. `round_pack` then normalizes it, rounds once with the requested mode
//! to the precision available at its exponent (fewer bits for subnormals), detects tininess by
//! rounding a second time with an unbounded exponent range, handles overflow by mode, and packs
//! the bits.

/// Exception flag bits, as in the `fflags` field of `fcsr`.
pub mod flags {
    /// Invalid operation.
    pub const NV: u8 = 0x10;
    /// Divide by zero.
    pub const DZ: u8 = 0x08;
    /// Overflow.
    pub const OF: u8 = 0x04;
    /// Underflow.
    pub const UF: u8 = 0x02;
    /// Inexact.
    pub const NX: u8 = 0x01;
}

#[cfg(test)]
mod tests;

use flags::{DZ, NV, NX, OF, UF};

/// A static rounding mode, encoded as in the instruction's `rm` field and in `frm`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Rounding {
    /// Round to nearest, ties to even.
    Rne = 0,
    /// Round towards zero.
    Rtz = 1,
    /// Round down, towards −∞.
    Rdn = 2,
    /// Round up, towards +∞.
    Rup = 3,
    /// Round to nearest, ties to max magnitude.
    Rmm = 4,
}

impl Rounding {
    /// Decodes an `rm` value; 5 and 6 are reserved and 7 (dynamic) must already have been
    /// replaced by `frm`, so all three give `None`.
    pub fn from_bits(rm: u8) -> Option<Rounding> {
        match rm {
            0 => Some(Rounding::Rne),
            1 => Some(Rounding::Rtz),
            2 => Some(Rounding::Rdn),
            3 => Some(Rounding::Rup),
            4 => Some(Rounding::Rmm),
            _ => None,
        }
    }
}

/// The canonical single-precision NaN.
pub const CANONICAL_NAN_32: u32 = 0x7fc0_0000;
/// The canonical double-precision NaN.
pub const CANONICAL_NAN_64: u64 = 0x7ff8_0000_0000_0000;

// ---------------------------------------------------------------------------------------------
// Formats and unpacking.

/// An IEEE binary interchange format, described by its field widths.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Format {
    /// Stored fraction bits (the precision minus one).
    frac_bits: u32,
    /// Exponent field bits.
    exp_bits: u32,
}

const F32: Format = Format { frac_bits: 23, exp_bits: 8 };
const F64: Format = Format { frac_bits: 52, exp_bits: 11 };

impl Format {
    const fn bias(self) -> i32 {
        (1 << (self.exp_bits - 1)) - 1
    }
    const fn precision(self) -> u32 {
        self.frac_bits + 1
    }
    const fn sign_bit(self) -> u64 {
        1 << (self.frac_bits + self.exp_bits)
    }
    const fn frac_mask(self) -> u64 {
        (1 << self.frac_bits) - 1
    }
    const fn exp_field_max(self) -> u64 {
        (1 << self.exp_bits) - 1
    }
    const fn sign(self, negative: bool) -> u64 {
        if negative { self.sign_bit() } else { 0 }
    }
    const fn zero(self, negative: bool) -> u64 {
        self.sign(negative)
    }
    const fn inf(self, negative: bool) -> u64 {
        self.sign(negative) | self.exp_field_max() << self.frac_bits
    }
    const fn max_finite(self, negative: bool) -> u64 {
        self.inf(negative) - 1
    }
    const fn canonical_nan(self) -> u64 {
        self.exp_field_max() << self.frac_bits | 1 << (self.frac_bits - 1)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Zero,
    /// A nonzero finite value `sig × 2^exp`.
    Finite {
        sig: u64,
        exp: i32,
    },
    Inf,
    Nan {
        signaling: bool,
    },
}

/// Splits `bits` of format `f` into its sign and what it is.
fn unpack(f: Format, bits: u64) -> (bool, Kind) {
    let negative = bits & f.sign_bit() != 0;
    let frac = bits & f.frac_mask();
    let biased = (bits >> f.frac_bits) & f.exp_field_max();
    let min_exp = 1 - f.bias() - small_i32(f.frac_bits.into());
    let kind = if biased == f.exp_field_max() {
        if frac == 0 { Kind::Inf } else { Kind::Nan { signaling: frac >> (f.frac_bits - 1) == 0 } }
    } else if biased == 0 {
        if frac == 0 { Kind::Zero } else { Kind::Finite { sig: frac, exp: min_exp } }
    } else {
        Kind::Finite { sig: frac | 1 << f.frac_bits, exp: min_exp - 1 + small_i32(biased) }
    };
    (negative, kind)
}

/// Converts a format-derived quantity (a field width or an exponent field, below 2^11) to `i32`.
#[expect(
    clippy::cast_possible_truncation,
    reason = "only called with exponent fields and bit counts, which are below 2^11"
)]
const fn small_i32(v: u64) -> i32 {
    v as i32
}

/// The low 32 bits of a result already packed in the single format.
#[expect(clippy::cast_possible_truncation, reason = "single-format results occupy the low 32 bits")]
const fn narrow(bits: u64) -> u32 {
    bits as u32
}

// ---------------------------------------------------------------------------------------------
// Rounding.

/// Shifts `sig` right by `shift` bits, rounding the discarded bits per `rm` for a value of sign
/// `negative`. Returns the rounded quotient and whether anything nonzero was discarded. Any
/// `shift` is allowed; beyond 128 the whole significand is below half a unit.
fn shift_round(sig: u128, shift: u32, negative: bool, rm: Rounding) -> (u128, bool) {
    use core::cmp::Ordering;
    if shift == 0 {
        return (sig, false);
    }
    let (q, vs_half) = if shift < 128 {
        let rem = sig & ((1u128 << shift) - 1);
        (sig >> shift, rem.cmp(&(1u128 << (shift - 1))))
    } else if shift == 128 {
        (0, sig.cmp(&(1u128 << 127)))
    } else {
        (0, Ordering::Less)
    };
    let inexact = if shift < 128 { sig & ((1u128 << shift) - 1) != 0 } else { sig != 0 };
    let up = match rm {
        Rounding::Rne => vs_half == Ordering::Greater || (vs_half == Ordering::Equal && q & 1 == 1),
        Rounding::Rmm => vs_half != Ordering::Less,
        Rounding::Rtz => false,
        Rounding::Rdn => negative && inexact,
        Rounding::Rup => !negative && inexact,
    };
    (q + u128::from(up), inexact)
}

/// Shifts right by `shift`, ORing every discarded bit into bit 0 (the sticky bit).
fn shift_right_jam(x: u128, shift: u32) -> u128 {
    if shift == 0 {
        x
    } else if shift < 128 {
        (x >> shift) | u128::from(x << (128 - shift) != 0)
    } else {
        u128::from(x != 0)
    }
}

/// Rounds the nonzero value `sig × 2^exp` of sign `negative` to format `f` with mode `rm`,
/// raising OF, UF and NX as RISC-V does, and packs it.
///
/// `sig` may carry a sticky bit in bit 0 as long as at least two bits separate it from the
/// lowest bit the format keeps; every caller leaves far more.
fn round_pack(f: Format, negative: bool, sig: u128, exp: i32, rm: Rounding, fl: &mut u8) -> u64 {
    debug_assert!(sig != 0);
    let lz = sig.leading_zeros();
    let sig = sig << lz;
    // The value lies in [2^e, 2^(e+1)).
    let e = exp + 127 - small_i32(lz.into());
    let p = f.precision();
    let emin = 1 - f.bias();
    if e >= emin {
        let (mut q, inexact) = shift_round(sig, 128 - p, negative, rm);
        let mut e = e;
        if q >> p != 0 {
            q >>= 1;
            e += 1;
        }
        if e > f.bias() {
            *fl |= OF | NX;
            let to_inf = match rm {
                Rounding::Rne | Rounding::Rmm => true,
                Rounding::Rtz => false,
                Rounding::Rdn => negative,
                Rounding::Rup => !negative,
            };
            return if to_inf { f.inf(negative) } else { f.max_finite(negative) };
        }
        if inexact {
            *fl |= NX;
        }
        let biased = u64::from((e + f.bias()).unsigned_abs());
        return f.sign(negative) | biased << f.frac_bits | (narrow_sig(q) & f.frac_mask());
    }
    // Tiny before rounding. RISC-V detects tininess after rounding: the value is tiny unless
    // rounding it to full precision with an unbounded exponent reaches 2^emin.
    let tiny = e < emin - 1 || shift_round(sig, 128 - p, negative, rm).0 >> p == 0;
    let shift = 128 - p + (emin - e).unsigned_abs();
    let (q, inexact) = shift_round(sig, shift, negative, rm);
    if inexact {
        *fl |= NX;
        if tiny {
            *fl |= UF;
        }
    }
    // A subnormal significand that rounded up to 2^(p-1) carries into the exponent field and
    // becomes the smallest normal number, which is exactly its encoding.
    f.sign(negative) | narrow_sig(q)
}

/// A rounded significand, at most `precision + 1` bits wide, as `u64`.
#[expect(clippy::cast_possible_truncation, reason = "rounded significands have at most 54 bits")]
const fn narrow_sig(q: u128) -> u64 {
    q as u64
}

// ---------------------------------------------------------------------------------------------
// The soft path: integer implementations of every operation, for any rounding mode.

/// Raises NV if any operand is a signaling NaN and returns the canonical NaN.
fn nan_result(f: Format, kinds: &[Kind], fl: &mut u8) -> u64 {
    if kinds.iter().any(|k| matches!(k, Kind::Nan { signaling: true })) {
        *fl |= NV;
    }
    f.canonical_nan()
}

fn invalid(f: Format, fl: &mut u8) -> u64 {
    *fl |= NV;
    f.canonical_nan()
}

/// The zero an exact cancellation produces: −0 only when rounding down.
fn cancel_zero(f: Format, rm: Rounding) -> u64 {
    f.zero(rm == Rounding::Rdn)
}

/// Adds two nonzero finite values `sig × 2^exp` with at most 106 significant bits each.
fn add_finite(
    f: Format,
    (na, siga, ea): (bool, u128, i32),
    (nb, sigb, eb): (bool, u128, i32),
    rm: Rounding,
    fl: &mut u8,
) -> u64 {
    // Normalize both to bit 125, leaving headroom for the carry of a sum.
    let la = siga.leading_zeros() - 2;
    let lb = sigb.leading_zeros() - 2;
    let (mut na, mut siga, mut ea) = (na, siga << la, ea - small_i32(la.into()));
    let (mut nb, mut sigb, mut eb) = (nb, sigb << lb, eb - small_i32(lb.into()));
    if ea < eb || (ea == eb && siga < sigb) {
        core::mem::swap(&mut na, &mut nb);
        core::mem::swap(&mut siga, &mut sigb);
        core::mem::swap(&mut ea, &mut eb);
    }
    // Each operand has at most 106 significant bits (a product of two 53-bit significands), so
    // after normalizing to 126 bits its low 20 bits are zero and a shift of up to 20 is exact.
    // A longer shift leaves the smaller operand below 2^105, the result above 2^124, and the
    // jammed (odd) bit 0 more than 70 bits below the rounding position. The exact result lies
    // strictly between two consecutive integers and the jammed one is the odd of them, so no
    // rounding boundary (always an even multiple) can separate them.
    let sigb = shift_right_jam(sigb, (ea - eb).unsigned_abs());
    let sum = if na == nb {
        siga + sigb
    } else {
        let d = siga - sigb;
        if d == 0 {
            return cancel_zero(f, rm);
        }
        d
    };
    round_pack(f, na, sum, ea, rm, fl)
}

fn soft_add(f: Format, a: u64, b: u64, rm: Rounding, fl: &mut u8) -> u64 {
    let (na, ka) = unpack(f, a);
    let (nb, kb) = unpack(f, b);
    match (ka, kb) {
        (Kind::Nan { .. }, _) | (_, Kind::Nan { .. }) => nan_result(f, &[ka, kb], fl),
        (Kind::Inf, Kind::Inf) if na != nb => invalid(f, fl),
        (Kind::Inf, _) => f.inf(na),
        (_, Kind::Inf) => f.inf(nb),
        (Kind::Zero, Kind::Zero) => {
            if na == nb {
                f.zero(na)
            } else {
                cancel_zero(f, rm)
            }
        }
        (Kind::Zero, Kind::Finite { .. }) => b,
        (Kind::Finite { .. }, Kind::Zero) => a,
        (Kind::Finite { sig: sa, exp: ea }, Kind::Finite { sig: sb, exp: eb }) => {
            add_finite(f, (na, sa.into(), ea), (nb, sb.into(), eb), rm, fl)
        }
    }
}

fn soft_mul(f: Format, a: u64, b: u64, rm: Rounding, fl: &mut u8) -> u64 {
    let (na, ka) = unpack(f, a);
    let (nb, kb) = unpack(f, b);
    let negative = na != nb;
    match (ka, kb) {
        (Kind::Nan { .. }, _) | (_, Kind::Nan { .. }) => nan_result(f, &[ka, kb], fl),
        (Kind::Inf, Kind::Zero) | (Kind::Zero, Kind::Inf) => invalid(f, fl),
        (Kind::Inf, _) | (_, Kind::Inf) => f.inf(negative),
        (Kind::Zero, _) | (_, Kind::Zero) => f.zero(negative),
        (Kind::Finite { sig: sa, exp: ea }, Kind::Finite { sig: sb, exp: eb }) => {
            round_pack(f, negative, u128::from(sa) * u128::from(sb), ea + eb, rm, fl)
        }
    }
}

fn soft_div(f: Format, a: u64, b: u64, rm: Rounding, fl: &mut u8) -> u64 {
    let (na, ka) = unpack(f, a);
    let (nb, kb) = unpack(f, b);
    let negative = na != nb;
    match (ka, kb) {
        (Kind::Nan { .. }, _) | (_, Kind::Nan { .. }) => nan_result(f, &[ka, kb], fl),
        (Kind::Inf, Kind::Inf) | (Kind::Zero, Kind::Zero) => invalid(f, fl),
        (Kind::Inf, _) => f.inf(negative),
        (_, Kind::Inf) | (Kind::Zero, _) => f.zero(negative),
        (Kind::Finite { .. }, Kind::Zero) => {
            *fl |= DZ;
            f.inf(negative)
        }
        (Kind::Finite { sig: sa, exp: ea }, Kind::Finite { sig: sb, exp: eb }) => {
            // Put the dividend's top bit at bit 127; the quotient then has at least 74 bits and
            // the remainder folds into its sticky bit.
            let shift = u128::from(sa).leading_zeros();
            let num = u128::from(sa) << shift;
            let den = u128::from(sb);
            let q = num / den;
            let sticky = u128::from(num % den != 0);
            round_pack(f, negative, q | sticky, ea - eb - small_i32(shift.into()), rm, fl)
        }
    }
}

fn soft_sqrt(f: Format, a: u64, rm: Rounding, fl: &mut u8) -> u64 {
    match unpack(f, a) {
        (_, k @ Kind::Nan { .. }) => nan_result(f, &[k], fl),
        (_, Kind::Zero) => a,
        (true, _) => invalid(f, fl),
        (false, Kind::Inf) => a,
        (false, Kind::Finite { sig, exp }) => {
            // Scale to about 120 bits with an even exponent so the integer root has about 60
            // bits, then fold "root² ≠ radicand" into its sticky bit.
            let mut shift = 120 - (64 - sig.leading_zeros());
            if (exp - small_i32(shift.into())) & 1 != 0 {
                shift += 1;
            }
            let radicand = u128::from(sig) << shift;
            let root = radicand.isqrt();
            let sticky = u128::from(root * root != radicand);
            let e = (exp - small_i32(shift.into())) / 2;
            round_pack(f, false, root | sticky, e, rm, fl)
        }
    }
}

fn soft_fma(f: Format, a: u64, b: u64, c: u64, rm: Rounding, fl: &mut u8) -> u64 {
    let (na, ka) = unpack(f, a);
    let (nb, kb) = unpack(f, b);
    let (nc, kc) = unpack(f, c);
    let np = na != nb;
    if matches!((ka, kb), (Kind::Inf, Kind::Zero) | (Kind::Zero, Kind::Inf)) {
        // ∞ × 0 is invalid whatever the addend, even a quiet NaN (spec, "Single-Precision
        // Floating-Point Computational Instructions").
        *fl |= NV;
    }
    match (ka, kb) {
        (Kind::Nan { .. }, _) | (_, Kind::Nan { .. }) => nan_result(f, &[ka, kb, kc], fl),
        _ if matches!(kc, Kind::Nan { .. }) => nan_result(f, &[kc], fl),
        (Kind::Inf, Kind::Zero) | (Kind::Zero, Kind::Inf) => f.canonical_nan(),
        (Kind::Inf, _) | (_, Kind::Inf) => {
            if kc == Kind::Inf && nc != np {
                invalid(f, fl)
            } else {
                f.inf(np)
            }
        }
        (Kind::Zero, _) | (_, Kind::Zero) => match kc {
            Kind::Zero if np != nc => cancel_zero(f, rm),
            Kind::Zero => f.zero(np),
            _ => c,
        },
        (Kind::Finite { sig: sa, exp: ea }, Kind::Finite { sig: sb, exp: eb }) => {
            let product = u128::from(sa) * u128::from(sb);
            match kc {
                Kind::Inf => f.inf(nc),
                Kind::Finite { sig: sc, exp: ec } => add_finite(f, (np, product, ea + eb), (nc, sc.into(), ec), rm, fl),
                // A nonzero product plus a zero of either sign is just the rounded product.
                _ => round_pack(f, np, product, ea + eb, rm, fl),
            }
        }
    }
}

/// `fmin`/`fmax`: minimumNumber/maximumNumber with −0 < +0.
fn soft_min_max(f: Format, a: u64, b: u64, max: bool, fl: &mut u8) -> u64 {
    let (na, ka) = unpack(f, a);
    let (nb, kb) = unpack(f, b);
    match (ka, kb) {
        (Kind::Nan { .. }, Kind::Nan { .. }) => nan_result(f, &[ka, kb], fl),
        (Kind::Nan { .. }, _) => {
            nan_result(f, &[ka], fl);
            b
        }
        (_, Kind::Nan { .. }) => {
            nan_result(f, &[kb], fl);
            a
        }
        _ => {
            // Ordered by sign first (so −0 < +0), then by magnitude, which for non-NaN values
            // of one sign is the order of their bit patterns.
            let a_less = if na != nb {
                na
            } else if na {
                a > b
            } else {
                a < b
            };
            if a_less == max { b } else { a }
        }
    }
}

/// Raises the flags of a comparison with a NaN operand: NV for a signaling NaN always, and for
/// a quiet one when the comparison is `signaling` (FLT, FLE). The result is always false.
fn unordered_compare(f: Format, a: u64, b: u64, signaling: bool, fl: &mut u8) -> bool {
    let snan = |bits| matches!(unpack(f, bits).1, Kind::Nan { signaling: true });
    if signaling || snan(a) || snan(b) {
        *fl |= NV;
    }
    false
}

fn soft_classify(f: Format, a: u64) -> u64 {
    let (negative, kind) = unpack(f, a);
    let subnormal_limit = 1 << f.frac_bits;
    let bit = match (negative, kind) {
        (true, Kind::Inf) => 0,
        (true, Kind::Finite { sig, .. }) if sig >= subnormal_limit => 1,
        (true, Kind::Finite { .. }) => 2,
        (true, Kind::Zero) => 3,
        (false, Kind::Zero) => 4,
        (false, Kind::Finite { sig, .. }) if sig < subnormal_limit => 5,
        (false, Kind::Finite { .. }) => 6,
        (false, Kind::Inf) => 7,
        (_, Kind::Nan { signaling: true }) => 8,
        (_, Kind::Nan { signaling: false }) => 9,
    };
    1 << bit
}

/// Converts to an integer of `bits` bits, signed or not, with RISC-V saturation. The result is
/// the integer's two's complement bit pattern, zero-extended to 64 bits.
fn soft_to_int(f: Format, a: u64, rm: Rounding, signed: bool, bits: u32, fl: &mut u8) -> u64 {
    let max_pos: u64 = if signed { (1 << (bits - 1)) - 1 } else { u64::MAX >> (64 - bits) };
    // Magnitude of the most negative value, and its bit pattern.
    let (min_mag, min_bits): (u64, u64) = if signed { (1 << (bits - 1), (1 << (bits - 1))) } else { (0, 0) };
    let (negative, kind) = unpack(f, a);
    let (mag, inexact) = match kind {
        Kind::Nan { .. } => {
            *fl |= NV;
            return max_pos;
        }
        Kind::Inf => {
            *fl |= NV;
            return if negative { min_bits } else { max_pos };
        }
        Kind::Zero => return 0,
        // At least 2^64 whatever the significand: out of range for every target.
        Kind::Finite { exp, .. } if exp >= 64 => (u128::MAX, false),
        Kind::Finite { sig, exp } if exp >= 0 => (u128::from(sig) << exp, false),
        Kind::Finite { sig, exp } => shift_round(sig.into(), exp.unsigned_abs(), negative, rm),
    };
    let limit = if negative { min_mag } else { max_pos };
    if mag > u128::from(limit) {
        *fl |= NV;
        return if negative { min_bits } else { max_pos };
    }
    if inexact {
        *fl |= NX;
    }
    let mag = narrow_sig(mag);
    let mask = u64::MAX >> (64 - bits);
    if negative { mag.wrapping_neg() & mask } else { mag }
}

/// Converts the integer `±mag` to format `f`.
fn soft_from_int(f: Format, negative: bool, mag: u64, rm: Rounding, fl: &mut u8) -> u64 {
    if mag == 0 {
        return 0;
    }
    round_pack(f, negative, mag.into(), 0, rm, fl)
}

/// Converts between formats; widening is exact, narrowing rounds.
fn soft_convert(from: Format, to: Format, a: u64, rm: Rounding, fl: &mut u8) -> u64 {
    match unpack(from, a) {
        (_, k @ Kind::Nan { .. }) => nan_result(to, &[k], fl),
        (negative, Kind::Inf) => to.inf(negative),
        (negative, Kind::Zero) => to.zero(negative),
        (negative, Kind::Finite { sig, exp }) => round_pack(to, negative, sig.into(), exp, rm, fl),
    }
}

// ---------------------------------------------------------------------------------------------
// The fast path: host arithmetic when it is provably right, `None` when the soft path must
// decide. A `None` leaves the flags untouched.

/// Whether the nonzero integer `m` has at most `p` significant bits between its highest and
/// lowest set bit, that is, whether it is exactly representable with precision `p`.
fn fits_precision(m: u128, p: u32) -> bool {
    128 - m.leading_zeros() - m.trailing_zeros() <= p
}

/// The odd part of the integer significand of a nonzero finite double (its value up to a power
/// of two), and that odd part's width in bits.
fn odd_sig64(bits: u64) -> (u64, u32) {
    let frac = bits & F64.frac_mask();
    let sig = if bits & F64.inf(false) == 0 { frac } else { frac | 1 << 52 };
    let odd = sig >> sig.trailing_zeros();
    (odd, 64 - odd.leading_zeros())
}

/// Whether the odd integers `a · b` and `c` are equal. The widths are checked first: a product
/// of widths `wa` and `wb` is `wa + wb − 1` or `wa + wb` bits wide, which settles most cases
/// without the multiplication.
fn odd_product_is((a, wa): (u64, u32), (b, wb): (u64, u32), (c, wc): (u64, u32)) -> bool {
    wa + wb - 1 <= wc && wc <= wa + wb && u128::from(a) * u128::from(b) == u128::from(c)
}

/// Accepts a host result that is rounded to nearest even: it stands for mode `rm` only when it
/// is exact, since every mode agrees on exact results.
fn accept<T>(result: T, inexact: bool, rm: Rounding, fl: &mut u8) -> Option<T> {
    if inexact {
        if rm != Rounding::Rne {
            return None;
        }
        *fl |= NX;
    }
    Some(result)
}

/// Whether `m` (a magnitude) is a finite normal value: this rules out NaN, infinity, overflow,
/// zero and any result that could be tiny.
fn normal32(m: f32) -> bool {
    m > f32::MIN_POSITIVE && m <= f32::MAX
}

fn normal64(m: f64) -> bool {
    m > f64::MIN_POSITIVE && m <= f64::MAX
}

fn fast_add32(x: f32, y: f32, rm: Rounding, fl: &mut u8) -> Option<u32> {
    let s = x + y;
    if normal32(s.abs()) {
        // TwoSum: `err` is exactly x + y − s (valid for any finite s, subnormal operands too).
        let bb = s - x;
        let err = (x - (s - bb)) + (y - bb);
        accept(s.to_bits(), err != 0.0, rm, fl)
    } else if s == 0.0 && rm != Rounding::Rdn {
        // With gradual underflow a sum that rounds to zero is exactly zero, and its sign is
        // the round-to-nearest one, which every mode but RDN shares.
        Some(s.to_bits())
    } else {
        None
    }
}

fn fast_add64(x: f64, y: f64, rm: Rounding, fl: &mut u8) -> Option<u64> {
    let s = x + y;
    if normal64(s.abs()) {
        let bb = s - x;
        let err = (x - (s - bb)) + (y - bb);
        accept(s.to_bits(), err != 0.0, rm, fl)
    } else if s == 0.0 && rm != Rounding::Rdn {
        Some(s.to_bits())
    } else {
        None
    }
}

fn fast_mul32(x: f32, y: f32, rm: Rounding, fl: &mut u8) -> Option<u32> {
    // A product of two 24-bit significands is exact in a double.
    let p = f64::from(x) * f64::from(y);
    #[expect(clippy::cast_possible_truncation, reason = "rounding to single is the operation")]
    let r = p as f32;
    if normal32(r.abs()) {
        accept(r.to_bits(), f64::from(r) != p, rm, fl)
    } else if p == 0.0 {
        // An exact product is zero only when an operand is zero; its sign is right.
        Some(r.to_bits())
    } else {
        None
    }
}

fn fast_mul64(x: f64, y: f64, rm: Rounding, fl: &mut u8) -> Option<u64> {
    let r = x * y;
    if normal64(r.abs()) {
        // The product's significant bits are those of the product of the odd parts, whose
        // width is the sum of their widths or one less; only in between is the product needed.
        let ((oa, wa), (ob, wb)) = (odd_sig64(x.to_bits()), odd_sig64(y.to_bits()));
        let inexact = wa + wb > 54 || (wa + wb == 54 && !fits_precision(u128::from(oa) * u128::from(ob), 53));
        accept(r.to_bits(), inexact, rm, fl)
    } else if r == 0.0 && (x == 0.0 || y == 0.0) {
        Some(r.to_bits())
    } else {
        None
    }
}

fn fast_div32(x: f32, y: f32, rm: Rounding, fl: &mut u8) -> Option<u32> {
    let q = x / y;
    if normal32(q.abs()) {
        // The quotient is exact exactly when q × y, computed exactly in a double, equals x.
        accept(q.to_bits(), f64::from(q) * f64::from(y) != f64::from(x), rm, fl)
    } else if q == 0.0 && (x == 0.0 || y.is_infinite()) {
        Some(q.to_bits())
    } else {
        None
    }
}

fn fast_div64(x: f64, y: f64, rm: Rounding, fl: &mut u8) -> Option<u64> {
    let q = x / y;
    if normal64(q.abs()) {
        // q × y == x exactly iff their significands agree up to a power of two: q × y is
        // within a relative 2^-53 of x, so the power of two can only be 1.
        let exact = odd_product_is(odd_sig64(q.to_bits()), odd_sig64(y.to_bits()), odd_sig64(x.to_bits()));
        accept(q.to_bits(), !exact, rm, fl)
    } else if q == 0.0 && (x == 0.0 || y.is_infinite()) {
        Some(q.to_bits())
    } else {
        None
    }
}

fn fast_sqrt32(x: f32, rm: Rounding, fl: &mut u8) -> Option<u32> {
    // Excludes NaN and negative values; ±0 and +∞ are their own exact roots, and the root of
    // any other value is normal.
    if x >= 0.0 {
        let r = x.sqrt();
        let rr = f64::from(r) * f64::from(r);
        accept(r.to_bits(), rr != f64::from(x) && x != f32::INFINITY, rm, fl)
    } else {
        None
    }
}

fn fast_sqrt64(x: f64, rm: Rounding, fl: &mut u8) -> Option<u64> {
    if x >= 0.0 {
        let r = x.sqrt();
        if x == 0.0 || x == f64::INFINITY {
            return Some(r.to_bits());
        }
        let root = odd_sig64(r.to_bits());
        let exact = odd_product_is(root, root, odd_sig64(x.to_bits()));
        accept(r.to_bits(), !exact, rm, fl)
    } else {
        None
    }
}

/// The exponent of the lowest set bit of a nonzero finite value of format `f`.
fn lowest_bit(f: Format, bits: u64) -> i32 {
    match unpack(f, bits).1 {
        Kind::Finite { sig, exp } => exp + small_i32(sig.trailing_zeros().into()),
        _ => unreachable!("only called with nonzero finite values"),
    }
}

/// `a × b + c` from the host's fused multiply-add (correctly rounded to nearest even), with NX
/// decided from lowest set bits. When the product's and the addend's lowest set bits differ,
/// the exact value's lowest set bit is the lower of them. An exact result equals `r`, whose
/// lowest set bit is at or above its unit in the last place, so a lower bit proves the result
/// inexact, and all bits at or above that unit prove it exact. When the two lowest bits
/// coincide they may cancel and the soft path decides, as it does for zero operands.
fn fast_fma(f: Format, r: u64, a: u64, b: u64, c: u64, rm: Rounding, fl: &mut u8) -> Option<u64> {
    let low_product = lowest_bit(f, a) + lowest_bit(f, b);
    let low_addend = lowest_bit(f, c);
    let ulp = lowest_bit(f, r | 1);
    let low = low_product.min(low_addend);
    if low >= ulp {
        Some(r)
    } else if low_product != low_addend {
        accept(r, true, rm, fl)
    } else {
        None
    }
}

fn fast_fma32(a: u32, b: u32, c: u32, rm: Rounding, fl: &mut u8) -> Option<u32> {
    let (x, y, z) = (f32::from_bits(a), f32::from_bits(b), f32::from_bits(c));
    let r = x.mul_add(y, z);
    // A normal result rules out NaN and infinite operands, overflow and tininess.
    if !normal32(r.abs()) || x == 0.0 || y == 0.0 || z == 0.0 {
        return None;
    }
    fast_fma(F32, r.to_bits().into(), a.into(), b.into(), c.into(), rm, fl).map(narrow)
}

fn fast_fma64(a: u64, b: u64, c: u64, rm: Rounding, fl: &mut u8) -> Option<u64> {
    let (x, y, z) = (f64::from_bits(a), f64::from_bits(b), f64::from_bits(c));
    let r = x.mul_add(y, z);
    if !normal64(r.abs()) || x == 0.0 || y == 0.0 || z == 0.0 {
        return None;
    }
    fast_fma(F64, r.to_bits(), a, b, c, rm, fl)
}

/// Rounds `x` to an integer in mode `rm` with exact host operations. The sign of a zero result
/// may be lost, which does not matter for conversion to an integer.
fn round_host(x: f64, rm: Rounding) -> f64 {
    const TWO52: f64 = 4_503_599_627_370_496.0;
    match rm {
        // Values of magnitude 2^52 and above are integers already. Below, adding 2^52 leaves no
        // fraction bits, so the host's round-to-nearest-even addition does the rounding, and
        // subtracting 2^52 again is exact.
        Rounding::Rne if x.abs() < TWO52 => ((x.abs() + TWO52) - TWO52).copysign(x),
        Rounding::Rne => x,
        // Truncation by the host's saturating conversion: exact below 2^63.
        #[expect(clippy::cast_possible_truncation, reason = "|x| < 2^63 is checked")]
        #[expect(clippy::cast_precision_loss, reason = "an integer from a double is exact")]
        Rounding::Rtz if x.abs() < TWO63 => (x as i64) as f64,
        Rounding::Rtz => x.trunc(),
        Rounding::Rdn => x.floor(),
        Rounding::Rup => x.ceil(),
        Rounding::Rmm => x.round(),
    }
}

const TWO31: f64 = 2_147_483_648.0;
const TWO32: f64 = 4_294_967_296.0;
const TWO63: f64 = 9_223_372_036_854_775_808.0;
const TWO64: f64 = 18_446_744_073_709_551_616.0;

/// Accepts `rounded`, `x` rounded to an integer by [`round_host`], when it lies in `[lo, hi)`,
/// raising NX if it differs from `x`; NaN and out-of-range values go to the soft path. Singles
/// arrive widened to doubles, which is exact.
fn fast_to_int(x: f64, rounded: f64, lo: f64, hi: f64, fl: &mut u8) -> Option<f64> {
    if rounded >= lo && rounded < hi {
        if rounded != x {
            *fl |= NX;
        }
        Some(rounded)
    } else {
        None
    }
}

/// Accepts `host`, the host's round-to-nearest-even conversion of an integer of magnitude
/// `mag`, when that is right for `rm`: always when `mag` fits `precision` bits, else only in RNE.
fn fast_from_int<T>(mag: u64, host: T, precision: u32, rm: Rounding, fl: &mut u8) -> Option<T> {
    let exact = mag == 0 || fits_precision(mag.into(), precision);
    accept(host, !exact, rm, fl)
}

// ---------------------------------------------------------------------------------------------
// The instruction-level operations.

// Single precision.

/// `fadd.s`.
#[inline]
pub fn add32(a: u32, b: u32, rm: Rounding, fl: &mut u8) -> u32 {
    let (x, y) = (f32::from_bits(a), f32::from_bits(b));
    fast_add32(x, y, rm, fl).unwrap_or_else(|| narrow(soft_add(F32, a.into(), b.into(), rm, fl)))
}

/// `fsub.s`: `a + (−b)`, which is exact for NaN operands too.
#[inline]
pub fn sub32(a: u32, b: u32, rm: Rounding, fl: &mut u8) -> u32 {
    add32(a, b ^ 0x8000_0000, rm, fl)
}

/// `fmul.s`.
#[inline]
pub fn mul32(a: u32, b: u32, rm: Rounding, fl: &mut u8) -> u32 {
    let (x, y) = (f32::from_bits(a), f32::from_bits(b));
    fast_mul32(x, y, rm, fl).unwrap_or_else(|| narrow(soft_mul(F32, a.into(), b.into(), rm, fl)))
}

/// `fdiv.s`.
#[inline]
pub fn div32(a: u32, b: u32, rm: Rounding, fl: &mut u8) -> u32 {
    let (x, y) = (f32::from_bits(a), f32::from_bits(b));
    fast_div32(x, y, rm, fl).unwrap_or_else(|| narrow(soft_div(F32, a.into(), b.into(), rm, fl)))
}

/// `fsqrt.s`.
#[inline]
pub fn sqrt32(a: u32, rm: Rounding, fl: &mut u8) -> u32 {
    fast_sqrt32(f32::from_bits(a), rm, fl).unwrap_or_else(|| narrow(soft_sqrt(F32, a.into(), rm, fl)))
}

/// `fmadd.s`: `a × b + c` with a single rounding.
#[inline]
pub fn fma32(a: u32, b: u32, c: u32, rm: Rounding, fl: &mut u8) -> u32 {
    fast_fma32(a, b, c, rm, fl).unwrap_or_else(|| narrow(soft_fma(F32, a.into(), b.into(), c.into(), rm, fl)))
}

/// `fmin.s`.
#[inline]
pub fn min32(a: u32, b: u32, fl: &mut u8) -> u32 {
    let (x, y) = (f32::from_bits(a), f32::from_bits(b));
    // Distinct ordered values: the host comparison decides. Equal values may be zeros of
    // different signs, and NaNs need the flag logic.
    if x != y && !x.is_nan() && !y.is_nan() {
        return if x < y { a } else { b };
    }
    narrow(soft_min_max(F32, a.into(), b.into(), false, fl))
}

/// `fmax.s`.
#[inline]
pub fn max32(a: u32, b: u32, fl: &mut u8) -> u32 {
    let (x, y) = (f32::from_bits(a), f32::from_bits(b));
    // Distinct ordered values: the host comparison decides. Equal values may be zeros of
    // different signs, and NaNs need the flag logic.
    if x != y && !x.is_nan() && !y.is_nan() {
        return if x > y { a } else { b };
    }
    narrow(soft_min_max(F32, a.into(), b.into(), true, fl))
}

/// `feq.s`: a quiet comparison, NV only for signaling NaNs.
#[inline]
pub fn eq32(a: u32, b: u32, fl: &mut u8) -> bool {
    let (x, y) = (f32::from_bits(a), f32::from_bits(b));
    // Host comparisons are IEEE comparisons (−0 == +0); only NaNs need the flag logic.
    if x.is_nan() || y.is_nan() {
        return unordered_compare(F32, a.into(), b.into(), false, fl);
    }
    x == y
}

/// `flt.s`: a signaling comparison, NV for any NaN.
#[inline]
pub fn lt32(a: u32, b: u32, fl: &mut u8) -> bool {
    let (x, y) = (f32::from_bits(a), f32::from_bits(b));
    // Host comparisons are IEEE comparisons (−0 == +0); only NaNs need the flag logic.
    if x.is_nan() || y.is_nan() {
        return unordered_compare(F32, a.into(), b.into(), true, fl);
    }
    x < y
}

/// `fle.s`: a signaling comparison, NV for any NaN.
#[inline]
pub fn le32(a: u32, b: u32, fl: &mut u8) -> bool {
    let (x, y) = (f32::from_bits(a), f32::from_bits(b));
    // Host comparisons are IEEE comparisons (−0 == +0); only NaNs need the flag logic.
    if x.is_nan() || y.is_nan() {
        return unordered_compare(F32, a.into(), b.into(), true, fl);
    }
    x <= y
}

/// `fclass.s`: one bit of ten, from bit 0 (−∞) to bit 9 (quiet NaN).
#[inline]
pub fn classify32(a: u32) -> u64 {
    soft_classify(F32, a.into())
}

/// `fcvt.w.s`.
#[inline]
#[expect(clippy::cast_possible_truncation, reason = "the value is an integer in i32 range")]
pub fn f32_to_i32(a: u32, rm: Rounding, fl: &mut u8) -> i32 {
    let x = f32::from_bits(a);
    match fast_to_int(x.into(), round_host(x.into(), rm), -TWO31, TWO31, fl) {
        Some(v) => v as i32,
        None => narrow(soft_to_int(F32, a.into(), rm, true, 32, fl)).cast_signed(),
    }
}

/// `fcvt.wu.s`.
#[inline]
#[expect(clippy::cast_possible_truncation, reason = "the value is an integer in u32 range")]
#[expect(clippy::cast_sign_loss, reason = "the value is an integer in u32 range")]
pub fn f32_to_u32(a: u32, rm: Rounding, fl: &mut u8) -> u32 {
    let x = f32::from_bits(a);
    match fast_to_int(x.into(), round_host(x.into(), rm), 0.0, TWO32, fl) {
        Some(v) => v as u32,
        None => narrow(soft_to_int(F32, a.into(), rm, false, 32, fl)),
    }
}

/// `fcvt.l.s`.
#[inline]
#[expect(clippy::cast_possible_truncation, reason = "the value is an integer in i64 range")]
pub fn f32_to_i64(a: u32, rm: Rounding, fl: &mut u8) -> i64 {
    let x = f32::from_bits(a);
    match fast_to_int(x.into(), round_host(x.into(), rm), -TWO63, TWO63, fl) {
        Some(v) => v as i64,
        None => soft_to_int(F32, a.into(), rm, true, 64, fl).cast_signed(),
    }
}

/// `fcvt.lu.s`.
#[inline]
#[expect(clippy::cast_possible_truncation, reason = "the value is an integer in u64 range")]
#[expect(clippy::cast_sign_loss, reason = "the value is an integer in u64 range")]
pub fn f32_to_u64(a: u32, rm: Rounding, fl: &mut u8) -> u64 {
    let x = f32::from_bits(a);
    match fast_to_int(x.into(), round_host(x.into(), rm), 0.0, TWO64, fl) {
        Some(v) => v as u64,
        None => soft_to_int(F32, a.into(), rm, false, 64, fl),
    }
}

/// `fcvt.s.w`.
#[inline]
#[expect(clippy::cast_precision_loss, reason = "rounding is the operation; NX is computed")]
pub fn i32_to_f32(v: i32, rm: Rounding, fl: &mut u8) -> u32 {
    let mag = u64::from(v.unsigned_abs());
    fast_from_int(mag, (v as f32).to_bits(), 24, rm, fl)
        .unwrap_or_else(|| narrow(soft_from_int(F32, v < 0, mag, rm, fl)))
}

/// `fcvt.s.wu`.
#[inline]
#[expect(clippy::cast_precision_loss, reason = "rounding is the operation; NX is computed")]
pub fn u32_to_f32(v: u32, rm: Rounding, fl: &mut u8) -> u32 {
    fast_from_int(v.into(), (v as f32).to_bits(), 24, rm, fl)
        .unwrap_or_else(|| narrow(soft_from_int(F32, false, v.into(), rm, fl)))
}

/// `fcvt.s.l`.
#[inline]
#[expect(clippy::cast_precision_loss, reason = "rounding is the operation; NX is computed")]
pub fn i64_to_f32(v: i64, rm: Rounding, fl: &mut u8) -> u32 {
    let mag = v.unsigned_abs();
    fast_from_int(mag, (v as f32).to_bits(), 24, rm, fl)
        .unwrap_or_else(|| narrow(soft_from_int(F32, v < 0, mag, rm, fl)))
}

/// `fcvt.s.lu`.
#[inline]
#[expect(clippy::cast_precision_loss, reason = "rounding is the operation; NX is computed")]
pub fn u64_to_f32(v: u64, rm: Rounding, fl: &mut u8) -> u32 {
    fast_from_int(v, (v as f32).to_bits(), 24, rm, fl).unwrap_or_else(|| narrow(soft_from_int(F32, false, v, rm, fl)))
}

/// `fcvt.d.s`: exact; any NaN becomes the canonical NaN, NV for a signaling one.
#[inline]
pub fn f32_to_f64(a: u32, fl: &mut u8) -> u64 {
    let x = f32::from_bits(a);
    if x.is_nan() {
        return soft_convert(F32, F64, a.into(), Rounding::Rne, fl);
    }
    f64::from(x).to_bits()
}

/// `fcvt.s.d`.
#[inline]
pub fn f64_to_f32(a: u64, rm: Rounding, fl: &mut u8) -> u32 {
    let x = f64::from_bits(a);
    #[expect(clippy::cast_possible_truncation, reason = "rounding to single is the operation")]
    let r = x as f32;
    let fast = if normal32(r.abs()) {
        accept(r.to_bits(), f64::from(r) != x, rm, fl)
    } else if x == 0.0 {
        Some(r.to_bits())
    } else {
        None
    };
    fast.unwrap_or_else(|| narrow(soft_convert(F64, F32, a, rm, fl)))
}

// Double precision.

/// `fadd.d`.
#[inline]
pub fn add64(a: u64, b: u64, rm: Rounding, fl: &mut u8) -> u64 {
    let (x, y) = (f64::from_bits(a), f64::from_bits(b));
    fast_add64(x, y, rm, fl).unwrap_or_else(|| soft_add(F64, a, b, rm, fl))
}

/// `fsub.d`: `a + (−b)`, which is exact for NaN operands too.
#[inline]
pub fn sub64(a: u64, b: u64, rm: Rounding, fl: &mut u8) -> u64 {
    add64(a, b ^ F64.sign_bit(), rm, fl)
}

/// `fmul.d`.
#[inline]
pub fn mul64(a: u64, b: u64, rm: Rounding, fl: &mut u8) -> u64 {
    let (x, y) = (f64::from_bits(a), f64::from_bits(b));
    fast_mul64(x, y, rm, fl).unwrap_or_else(|| soft_mul(F64, a, b, rm, fl))
}

/// `fdiv.d`.
#[inline]
pub fn div64(a: u64, b: u64, rm: Rounding, fl: &mut u8) -> u64 {
    let (x, y) = (f64::from_bits(a), f64::from_bits(b));
    fast_div64(x, y, rm, fl).unwrap_or_else(|| soft_div(F64, a, b, rm, fl))
}

/// `fsqrt.d`.
#[inline]
pub fn sqrt64(a: u64, rm: Rounding, fl: &mut u8) -> u64 {
    fast_sqrt64(f64::from_bits(a), rm, fl).unwrap_or_else(|| soft_sqrt(F64, a, rm, fl))
}

/// `fmadd.d`: `a × b + c` with a single rounding.
#[inline]
pub fn fma64(a: u64, b: u64, c: u64, rm: Rounding, fl: &mut u8) -> u64 {
    fast_fma64(a, b, c, rm, fl).unwrap_or_else(|| soft_fma(F64, a, b, c, rm, fl))
}

/// `fmin.d`.
#[inline]
pub fn min64(a: u64, b: u64, fl: &mut u8) -> u64 {
    let (x, y) = (f64::from_bits(a), f64::from_bits(b));
    // Distinct ordered values: the host comparison decides. Equal values may be zeros of
    // different signs, and NaNs need the flag logic.
    if x != y && !x.is_nan() && !y.is_nan() {
        return if x < y { a } else { b };
    }
    soft_min_max(F64, a, b, false, fl)
}

/// `fmax.d`.
#[inline]
pub fn max64(a: u64, b: u64, fl: &mut u8) -> u64 {
    let (x, y) = (f64::from_bits(a), f64::from_bits(b));
    // Distinct ordered values: the host comparison decides. Equal values may be zeros of
    // different signs, and NaNs need the flag logic.
    if x != y && !x.is_nan() && !y.is_nan() {
        return if x > y { a } else { b };
    }
    soft_min_max(F64, a, b, true, fl)
}

/// `feq.d`: a quiet comparison, NV only for signaling NaNs.
#[inline]
pub fn eq64(a: u64, b: u64, fl: &mut u8) -> bool {
    let (x, y) = (f64::from_bits(a), f64::from_bits(b));
    // Host comparisons are IEEE comparisons (−0 == +0); only NaNs need the flag logic.
    if x.is_nan() || y.is_nan() {
        return unordered_compare(F64, a, b, false, fl);
    }
    x == y
}

/// `flt.d`: a signaling comparison, NV for any NaN.
#[inline]
pub fn lt64(a: u64, b: u64, fl: &mut u8) -> bool {
    let (x, y) = (f64::from_bits(a), f64::from_bits(b));
    // Host comparisons are IEEE comparisons (−0 == +0); only NaNs need the flag logic.
    if x.is_nan() || y.is_nan() {
        return unordered_compare(F64, a, b, true, fl);
    }
    x < y
}

/// `fle.d`: a signaling comparison, NV for any NaN.
#[inline]
pub fn le64(a: u64, b: u64, fl: &mut u8) -> bool {
    let (x, y) = (f64::from_bits(a), f64::from_bits(b));
    // Host comparisons are IEEE comparisons (−0 == +0); only NaNs need the flag logic.
    if x.is_nan() || y.is_nan() {
        return unordered_compare(F64, a, b, true, fl);
    }
    x <= y
}

/// `fclass.d`: one bit of ten, from bit 0 (−∞) to bit 9 (quiet NaN).
#[inline]
pub fn classify64(a: u64) -> u64 {
    soft_classify(F64, a)
}

/// `fcvt.w.d`.
#[inline]
#[expect(clippy::cast_possible_truncation, reason = "the value is an integer in i32 range")]
pub fn f64_to_i32(a: u64, rm: Rounding, fl: &mut u8) -> i32 {
    let x = f64::from_bits(a);
    match fast_to_int(x, round_host(x, rm), -TWO31, TWO31, fl) {
        Some(v) => v as i32,
        None => narrow(soft_to_int(F64, a, rm, true, 32, fl)).cast_signed(),
    }
}

/// `fcvt.wu.d`.
#[inline]
#[expect(clippy::cast_possible_truncation, reason = "the value is an integer in u32 range")]
#[expect(clippy::cast_sign_loss, reason = "the value is an integer in u32 range")]
pub fn f64_to_u32(a: u64, rm: Rounding, fl: &mut u8) -> u32 {
    let x = f64::from_bits(a);
    match fast_to_int(x, round_host(x, rm), 0.0, TWO32, fl) {
        Some(v) => v as u32,
        None => narrow(soft_to_int(F64, a, rm, false, 32, fl)),
    }
}

/// `fcvt.l.d`.
#[inline]
#[expect(clippy::cast_possible_truncation, reason = "the value is an integer in i64 range")]
pub fn f64_to_i64(a: u64, rm: Rounding, fl: &mut u8) -> i64 {
    let x = f64::from_bits(a);
    match fast_to_int(x, round_host(x, rm), -TWO63, TWO63, fl) {
        Some(v) => v as i64,
        None => soft_to_int(F64, a, rm, true, 64, fl).cast_signed(),
    }
}

/// `fcvt.lu.d`.
#[inline]
#[expect(clippy::cast_possible_truncation, reason = "the value is an integer in u64 range")]
#[expect(clippy::cast_sign_loss, reason = "the value is an integer in u64 range")]
pub fn f64_to_u64(a: u64, rm: Rounding, fl: &mut u8) -> u64 {
    let x = f64::from_bits(a);
    match fast_to_int(x, round_host(x, rm), 0.0, TWO64, fl) {
        Some(v) => v as u64,
        None => soft_to_int(F64, a, rm, false, 64, fl),
    }
}

/// `fcvt.d.w`: always exact.
#[inline]
pub fn i32_to_f64(v: i32, _rm: Rounding, _fl: &mut u8) -> u64 {
    f64::from(v).to_bits()
}

/// `fcvt.d.wu`: always exact.
#[inline]
pub fn u32_to_f64(v: u32, _rm: Rounding, _fl: &mut u8) -> u64 {
    f64::from(v).to_bits()
}

/// `fcvt.d.l`.
#[inline]
#[expect(clippy::cast_precision_loss, reason = "rounding is the operation; NX is computed")]
pub fn i64_to_f64(v: i64, rm: Rounding, fl: &mut u8) -> u64 {
    let mag = v.unsigned_abs();
    fast_from_int(mag, (v as f64).to_bits(), 53, rm, fl).unwrap_or_else(|| soft_from_int(F64, v < 0, mag, rm, fl))
}

/// `fcvt.d.lu`.
#[inline]
#[expect(clippy::cast_precision_loss, reason = "rounding is the operation; NX is computed")]
pub fn u64_to_f64(v: u64, rm: Rounding, fl: &mut u8) -> u64 {
    fast_from_int(v, (v as f64).to_bits(), 53, rm, fl).unwrap_or_else(|| soft_from_int(F64, false, v, rm, fl))
}
