//! Tests for the F and D semantics: spec rules by hand, the reference vectors taken from the
//! RISC-V instructions themselves, and the fast path against the soft path.

use super::*;

/// Runs `op` with fresh flags and returns the result and the flags it raised.
fn run<T>(op: impl FnOnce(&mut u8) -> T) -> (T, u8) {
    let mut fl = 0;
    let r = op(&mut fl);
    (r, fl)
}

fn parse_hex(s: &str) -> u64 {
    u64::from_str_radix(s, 16).unwrap_or_else(|e| panic!("bad hex {s:?}: {e}"))
}

#[expect(clippy::cast_possible_truncation, reason = "vector operands of 32-bit ops")]
fn lo(v: u64) -> u32 {
    v as u32
}

/// Evaluates one vector line's operation through the public API.
fn eval_public(op: &str, rm: Rounding, a: u64, b: u64, c: u64) -> Option<(u64, u8)> {
    let (a32, b32, c32) = (lo(a), lo(b), lo(c));
    let r = match op {
        "add32" => run(|fl| u64::from(add32(a32, b32, rm, fl))),
        "sub32" => run(|fl| u64::from(sub32(a32, b32, rm, fl))),
        "mul32" => run(|fl| u64::from(mul32(a32, b32, rm, fl))),
        "div32" => run(|fl| u64::from(div32(a32, b32, rm, fl))),
        "sqrt32" => run(|fl| u64::from(sqrt32(a32, rm, fl))),
        "fma32" => run(|fl| u64::from(fma32(a32, b32, c32, rm, fl))),
        "min32" => run(|fl| u64::from(min32(a32, b32, fl))),
        "max32" => run(|fl| u64::from(max32(a32, b32, fl))),
        "eq32" => run(|fl| u64::from(eq32(a32, b32, fl))),
        "lt32" => run(|fl| u64::from(lt32(a32, b32, fl))),
        "le32" => run(|fl| u64::from(le32(a32, b32, fl))),
        "classify32" => (classify32(a32), 0),
        "f32_to_i32" => run(|fl| u64::from(f32_to_i32(a32, rm, fl).cast_unsigned())),
        "f32_to_u32" => run(|fl| u64::from(f32_to_u32(a32, rm, fl))),
        "f32_to_i64" => run(|fl| f32_to_i64(a32, rm, fl).cast_unsigned()),
        "f32_to_u64" => run(|fl| f32_to_u64(a32, rm, fl)),
        "i32_to_f32" => run(|fl| u64::from(i32_to_f32(a32.cast_signed(), rm, fl))),
        "u32_to_f32" => run(|fl| u64::from(u32_to_f32(a32, rm, fl))),
        "i64_to_f32" => run(|fl| u64::from(i64_to_f32(a.cast_signed(), rm, fl))),
        "u64_to_f32" => run(|fl| u64::from(u64_to_f32(a, rm, fl))),
        "f32_to_f64" => run(|fl| f32_to_f64(a32, fl)),
        "f64_to_f32" => run(|fl| u64::from(f64_to_f32(a, rm, fl))),
        "add64" => run(|fl| add64(a, b, rm, fl)),
        "sub64" => run(|fl| sub64(a, b, rm, fl)),
        "mul64" => run(|fl| mul64(a, b, rm, fl)),
        "div64" => run(|fl| div64(a, b, rm, fl)),
        "sqrt64" => run(|fl| sqrt64(a, rm, fl)),
        "fma64" => run(|fl| fma64(a, b, c, rm, fl)),
        "min64" => run(|fl| min64(a, b, fl)),
        "max64" => run(|fl| max64(a, b, fl)),
        "eq64" => run(|fl| u64::from(eq64(a, b, fl))),
        "lt64" => run(|fl| u64::from(lt64(a, b, fl))),
        "le64" => run(|fl| u64::from(le64(a, b, fl))),
        "classify64" => (classify64(a), 0),
        "f64_to_i32" => run(|fl| u64::from(f64_to_i32(a, rm, fl).cast_unsigned())),
        "f64_to_u32" => run(|fl| u64::from(f64_to_u32(a, rm, fl))),
        "f64_to_i64" => run(|fl| f64_to_i64(a, rm, fl).cast_unsigned()),
        "f64_to_u64" => run(|fl| f64_to_u64(a, rm, fl)),
        "i32_to_f64" => run(|fl| i32_to_f64(a32.cast_signed(), rm, fl)),
        "u32_to_f64" => run(|fl| u32_to_f64(a32, rm, fl)),
        "i64_to_f64" => run(|fl| i64_to_f64(a.cast_signed(), rm, fl)),
        "u64_to_f64" => run(|fl| u64_to_f64(a, rm, fl)),
        _ => return None,
    };
    Some(r)
}

/// Evaluates one vector line's operation through the soft path alone, where it has one.
fn eval_soft(op: &str, rm: Rounding, a: u64, b: u64, c: u64) -> Option<(u64, u8)> {
    // Arithmetic ops are named by operation and width; conversions by their full name.
    let (f, name) = if op.contains("_to_") {
        (F32, op)
    } else if let Some(name) = op.strip_suffix("32") {
        (F32, name)
    } else {
        (F64, op.strip_suffix("64").unwrap_or(op))
    };
    let r = match name {
        "add" => run(|fl| soft_add(f, a, b, rm, fl)),
        "sub" => run(|fl| soft_add(f, a, b ^ f.sign_bit(), rm, fl)),
        "mul" => run(|fl| soft_mul(f, a, b, rm, fl)),
        "div" => run(|fl| soft_div(f, a, b, rm, fl)),
        "sqrt" => run(|fl| soft_sqrt(f, a, rm, fl)),
        "fma" => run(|fl| soft_fma(f, a, b, c, rm, fl)),
        "min" => run(|fl| soft_min_max(f, a, b, false, fl)),
        "max" => run(|fl| soft_min_max(f, a, b, true, fl)),
        "f32_to_i32" => run(|fl| soft_to_int(F32, a, rm, true, 32, fl)),
        "f32_to_u32" => run(|fl| soft_to_int(F32, a, rm, false, 32, fl)),
        "f32_to_i64" => run(|fl| soft_to_int(F32, a, rm, true, 64, fl)),
        "f32_to_u64" => run(|fl| soft_to_int(F32, a, rm, false, 64, fl)),
        "f64_to_i32" => run(|fl| soft_to_int(F64, a, rm, true, 32, fl)),
        "f64_to_u32" => run(|fl| soft_to_int(F64, a, rm, false, 32, fl)),
        "f64_to_i64" => run(|fl| soft_to_int(F64, a, rm, true, 64, fl)),
        "f64_to_u64" => run(|fl| soft_to_int(F64, a, rm, false, 64, fl)),
        "f32_to_f64" => run(|fl| soft_convert(F32, F64, a, rm, fl)),
        "f64_to_f32" => run(|fl| soft_convert(F64, F32, a, rm, fl)),
        "i64_to_f32" => run(|fl| soft_from_int(F32, a >> 63 != 0, a.cast_signed().unsigned_abs(), rm, fl)),
        "u64_to_f32" => run(|fl| soft_from_int(F32, false, a, rm, fl)),
        "i64_to_f64" => run(|fl| soft_from_int(F64, a >> 63 != 0, a.cast_signed().unsigned_abs(), rm, fl)),
        "u64_to_f64" => run(|fl| soft_from_int(F64, false, a, rm, fl)),
        _ => return None,
    };
    Some(r)
}

/// Checks every operation against `tests/data/fp_vectors.txt`, results and flags produced by
/// the RISC-V instructions themselves (see `fpgen.c` there), through the public API and through
/// the soft path alone.
#[test]
fn reference_vectors() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/fp_vectors.txt");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let (mut checked, mut soft_checked, mut failures) = (0usize, 0usize, Vec::new());
    let mut ops = std::collections::BTreeSet::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let [op, rm, a, b, c, want, want_fl] = fields[..] else {
            panic!("malformed vector line {line:?}");
        };
        let rm = Rounding::from_bits(rm.parse().expect("rounding mode")).expect("static mode");
        let (a, b, c) = (parse_hex(a), parse_hex(b), parse_hex(c));
        let want = (parse_hex(want), u8::try_from(parse_hex(want_fl)).expect("fflags"));
        let got = eval_public(op, rm, a, b, c).unwrap_or_else(|| panic!("unknown op {op}"));
        ops.insert(op);
        checked += 1;
        if got != want {
            failures.push(format!("{line}: public got {:x} {:x}", got.0, got.1));
        }
        if let Some(got) = eval_soft(op, rm, a, b, c) {
            soft_checked += 1;
            if got != want {
                failures.push(format!("{line}: soft got {:x} {:x}", got.0, got.1));
            }
        }
    }
    assert!(checked > 80_000 && ops.len() == 42, "{checked} vectors, {} ops", ops.len());
    assert!(soft_checked > 60_000, "{soft_checked} soft vectors");
    assert!(
        failures.is_empty(),
        "{} of {checked} vectors failed:\n{}",
        failures.len(),
        failures.iter().take(40).cloned().collect::<Vec<_>>().join("\n")
    );
}

const RMS: [Rounding; 5] = [Rounding::Rne, Rounding::Rtz, Rounding::Rdn, Rounding::Rup, Rounding::Rmm];

const ONE32: u32 = 0x3f80_0000;
const INF32: u32 = 0x7f80_0000;
const MAX32: u32 = 0x7f7f_ffff;
const QNAN32_PAYLOAD: u32 = 0x7fc1_2345;
const SNAN32: u32 = 0x7f80_0001;
const NEG: u32 = 0x8000_0000;
const ONE64: u64 = 0x3ff0_0000_0000_0000;
const INF64: u64 = 0x7ff0_0000_0000_0000;
const SNAN64: u64 = 0x7ff0_0000_0000_0001;

#[test]
fn rounding_mode_field() {
    for rm in 0..5 {
        assert_eq!(Rounding::from_bits(rm).map(|r| r as u8), Some(rm));
    }
    // 5 and 6 are reserved, 7 selects frm and must be resolved by the caller.
    for rm in 5..=7 {
        assert_eq!(Rounding::from_bits(rm), None);
    }
}

/// Spec, "NaN Generation and Propagation": results are the canonical NaN, NV only for sNaN.
#[test]
fn nan_results_are_canonical() {
    let rne = Rounding::Rne;
    assert_eq!(run(|fl| add32(QNAN32_PAYLOAD, ONE32, rne, fl)), (CANONICAL_NAN_32, 0));
    assert_eq!(run(|fl| mul32(ONE32, SNAN32, rne, fl)), (CANONICAL_NAN_32, NV));
    assert_eq!(run(|fl| sqrt32(QNAN32_PAYLOAD | NEG, rne, fl)), (CANONICAL_NAN_32, 0));
    assert_eq!(run(|fl| f32_to_f64(QNAN32_PAYLOAD, fl)), (CANONICAL_NAN_64, 0));
    assert_eq!(run(|fl| f32_to_f64(SNAN32, fl)), (CANONICAL_NAN_64, NV));
    assert_eq!(run(|fl| f64_to_f32(SNAN64, rne, fl)), (CANONICAL_NAN_32, NV));
    assert_eq!(run(|fl| div64(SNAN64, ONE64, rne, fl)), (CANONICAL_NAN_64, NV));
    // Invalid operations.
    assert_eq!(run(|fl| add32(INF32, INF32 | NEG, rne, fl)), (CANONICAL_NAN_32, NV));
    assert_eq!(run(|fl| mul32(INF32, 0, rne, fl)), (CANONICAL_NAN_32, NV));
    assert_eq!(run(|fl| div32(0, NEG, rne, fl)), (CANONICAL_NAN_32, NV));
    assert_eq!(run(|fl| div32(INF32, INF32, rne, fl)), (CANONICAL_NAN_32, NV));
    assert_eq!(run(|fl| sqrt32(ONE32 | NEG, rne, fl)), (CANONICAL_NAN_32, NV));
    assert_eq!(run(|fl| sqrt64(INF64 | 1 << 63, rne, fl)), (CANONICAL_NAN_64, NV));
    // The square root of −0 is −0, not invalid.
    assert_eq!(run(|fl| sqrt32(NEG, rne, fl)), (NEG, 0));
    // Division of a finite nonzero value by zero: DZ and a signed infinity.
    assert_eq!(run(|fl| div32(ONE32, NEG, rne, fl)), (INF32 | NEG, DZ));
}

/// Spec, fused multiply-add: "set the invalid operation exception flag when the multiplicands
/// are ∞ and zero, even when the addend is a quiet NaN".
#[test]
fn fma_infinity_times_zero_plus_quiet_nan_is_invalid() {
    let q = CANONICAL_NAN_32;
    for rm in RMS {
        assert_eq!(run(|fl| fma32(INF32, 0, q, rm, fl)), (q, NV));
        assert_eq!(run(|fl| fma32(NEG, INF32, q, rm, fl)), (q, NV));
        assert_eq!(run(|fl| fma64(0, INF64, CANONICAL_NAN_64, rm, fl)), (CANONICAL_NAN_64, NV));
        // A quiet NaN addend alone is not invalid.
        assert_eq!(run(|fl| fma32(ONE32, INF32, q, rm, fl)), (q, 0));
        // ∞ − ∞ through the addend is.
        assert_eq!(run(|fl| fma32(ONE32, INF32, INF32 | NEG, rm, fl)), (q, NV));
    }
}

/// F extension 2.2: fmin/fmax are minimumNumber/maximumNumber, −0 < +0.
#[test]
fn min_max_signed_zero_and_nans() {
    for (a, b) in [(NEG, 0), (0, NEG)] {
        assert_eq!(run(|fl| min32(a, b, fl)), (NEG, 0));
        assert_eq!(run(|fl| max32(a, b, fl)), (0, 0));
    }
    assert_eq!(run(|fl| min64(1 << 63, 0, fl)), (1 << 63, 0));
    assert_eq!(run(|fl| max64(0, 1 << 63, fl)), (0, 0));
    // One NaN: the other operand, NV only when the NaN is signaling.
    assert_eq!(run(|fl| min32(QNAN32_PAYLOAD, ONE32, fl)), (ONE32, 0));
    assert_eq!(run(|fl| max32(ONE32, SNAN32, fl)), (ONE32, NV));
    assert_eq!(run(|fl| max64(SNAN64, ONE64, fl)), (ONE64, NV));
    // Two NaNs: the canonical NaN.
    assert_eq!(run(|fl| min32(QNAN32_PAYLOAD, QNAN32_PAYLOAD, fl)), (CANONICAL_NAN_32, 0));
    assert_eq!(run(|fl| max32(SNAN32, QNAN32_PAYLOAD, fl)), (CANONICAL_NAN_32, NV));
    assert_eq!(run(|fl| min32(ONE32 | NEG, MAX32, fl)), (ONE32 | NEG, 0));
    assert_eq!(run(|fl| max32(ONE32 | NEG, INF32 | NEG, fl)), (ONE32 | NEG, 0));
}

/// FEQ is quiet (NV only for sNaN); FLT and FLE are signaling (NV for any NaN).
#[test]
fn comparisons() {
    assert_eq!(run(|fl| eq32(NEG, 0, fl)), (true, 0));
    assert_eq!(run(|fl| lt32(NEG, 0, fl)), (false, 0));
    assert_eq!(run(|fl| le32(NEG, 0, fl)), (true, 0));
    assert_eq!(run(|fl| lt32(ONE32 | NEG, ONE32, fl)), (true, 0));
    assert_eq!(run(|fl| le32(INF32, MAX32, fl)), (false, 0));
    assert_eq!(run(|fl| eq32(QNAN32_PAYLOAD, QNAN32_PAYLOAD, fl)), (false, 0));
    assert_eq!(run(|fl| eq32(SNAN32, ONE32, fl)), (false, NV));
    assert_eq!(run(|fl| lt32(QNAN32_PAYLOAD, ONE32, fl)), (false, NV));
    assert_eq!(run(|fl| le64(ONE64, CANONICAL_NAN_64, fl)), (false, NV));
    assert_eq!(run(|fl| eq64(CANONICAL_NAN_64, ONE64, fl)), (false, 0));
    assert_eq!(run(|fl| lt64(ONE64 | 1 << 63, 1 << 63, fl)), (true, 0));
}

/// Spec, "Single-Precision Floating-Point Classify Instruction": one bit per class.
#[test]
fn classify_every_class() {
    let cases32 = [
        (INF32 | NEG, 0),
        (ONE32 | NEG, 1),
        (1 | NEG, 2),
        (NEG, 3),
        (0, 4),
        (0x007f_ffff, 5),
        (0x0080_0000, 6),
        (INF32, 7),
        (SNAN32, 8),
        (CANONICAL_NAN_32 | NEG, 9),
    ];
    for (bits, class) in cases32 {
        assert_eq!(classify32(bits), 1 << class, "{bits:#x}");
    }
    let cases64 = [
        (INF64 | 1 << 63, 0),
        (ONE64 | 1 << 63, 1),
        (0x000f_ffff_ffff_ffff | 1 << 63, 2),
        (1 << 63, 3),
        (0, 4),
        (1, 5),
        (0x0010_0000_0000_0000, 6),
        (INF64, 7),
        (0x7ff7_ffff_ffff_ffff, 8),
        (CANONICAL_NAN_64, 9),
    ];
    for (bits, class) in cases64 {
        assert_eq!(classify64(bits), 1 << class, "{bits:#x}");
    }
}

/// Spec table "Domains of float-to-integer conversions and behavior for invalid inputs".
#[test]
fn float_to_int_saturation_table() {
    let rtz = Rounding::Rtz;
    let too_big = 0x5f80_0000; // 2^64
    let too_small = too_big | NEG;
    let expect_w = [
        (too_small, i32::MIN),
        (INF32 | NEG, i32::MIN),
        (too_big, i32::MAX),
        (INF32, i32::MAX),
        (CANONICAL_NAN_32, i32::MAX),
        (SNAN32 | NEG, i32::MAX),
    ];
    for (a, want) in expect_w {
        assert_eq!(run(|fl| f32_to_i32(a, rtz, fl)), (want, NV), "fcvt.w.s {a:#x}");
        let want64 = if want < 0 { i64::MIN } else { i64::MAX };
        assert_eq!(run(|fl| f32_to_i64(a, rtz, fl)), (want64, NV), "fcvt.l.s {a:#x}");
    }
    let expect_wu =
        [(too_small, 0), (INF32 | NEG, 0), (too_big, u32::MAX), (INF32, u32::MAX), (CANONICAL_NAN_32, u32::MAX)];
    for (a, want) in expect_wu {
        assert_eq!(run(|fl| f32_to_u32(a, rtz, fl)), (want, NV), "fcvt.wu.s {a:#x}");
        let want64 = if want == 0 { 0 } else { u64::MAX };
        assert_eq!(run(|fl| f32_to_u64(a, rtz, fl)), (want64, NV), "fcvt.lu.s {a:#x}");
    }
    // The range applies after rounding: −2^31 and 2^31−1 are valid, one past them is not.
    let rne = Rounding::Rne;
    assert_eq!(run(|fl| f64_to_i32(0xc1e0_0000_0000_0000, rne, fl)), (i32::MIN, 0));
    assert_eq!(run(|fl| f64_to_i32(0x41df_ffff_ffc0_0000, rne, fl)), (i32::MAX, 0));
    assert_eq!(run(|fl| f64_to_i32(0x41df_ffff_ffe0_0000, rne, fl)), (i32::MAX, NV));
    assert_eq!(run(|fl| f64_to_i32(0x41df_ffff_ffe0_0000, rtz, fl)), (i32::MAX, NX));
    // Negative inputs to unsigned conversions: NX if they round to 0, NV otherwise.
    assert_eq!(run(|fl| f32_to_u32(0xbf00_0000, rne, fl)), (0, NX));
    assert_eq!(run(|fl| f32_to_u32(0xbf00_0000, Rounding::Rdn, fl)), (0, NV));
    assert_eq!(run(|fl| f64_to_u64(ONE64 | 1 << 63, rtz, fl)), (0, NV));
    assert_eq!(run(|fl| f64_to_u64(1 << 63, rtz, fl)), (0, 0));
}

/// Ties and directed rounding in every mode, on integer conversions where the values are
/// easy to read: 2^24 + 1 lies halfway between the singles 2^24 and 2^24 + 2.
#[test]
fn every_mode_on_ties() {
    let tie = (1 << 24) + 1;
    let down = 0x4b80_0000; // 2^24
    let up = 0x4b80_0001; // 2^24 + 2
    // (mode, positive result, negative result)
    let cases = [
        (Rounding::Rne, down, down | NEG),
        (Rounding::Rtz, down, down | NEG),
        (Rounding::Rdn, down, up | NEG),
        (Rounding::Rup, up, down | NEG),
        (Rounding::Rmm, up, up | NEG),
    ];
    for (rm, pos, neg) in cases {
        assert_eq!(run(|fl| i32_to_f32(tie, rm, fl)), (pos, NX), "{rm:?}");
        assert_eq!(run(|fl| i32_to_f32(-tie, rm, fl)), (neg, NX), "{rm:?}");
        assert_eq!(run(|fl| i64_to_f32(i64::from(tie), rm, fl)), (pos, NX), "{rm:?}");
        assert_eq!(run(|fl| u32_to_f32(tie.cast_unsigned(), rm, fl)), (pos, NX), "{rm:?}");
    }
    // 2^24 + 3 is a tie between 2^24 + 2 (odd significand) and 2^24 + 4 (even).
    assert_eq!(run(|fl| i32_to_f32((1 << 24) + 3, Rounding::Rne, fl)), (0x4b80_0002, NX));
    // 2.5 and −2.5 to integers.
    let cases = [
        (Rounding::Rne, 2, -2),
        (Rounding::Rtz, 2, -2),
        (Rounding::Rdn, 2, -3),
        (Rounding::Rup, 3, -2),
        (Rounding::Rmm, 3, -3),
    ];
    for (rm, pos, neg) in cases {
        assert_eq!(run(|fl| f32_to_i32(0x4020_0000, rm, fl)), (pos, NX), "{rm:?}");
        assert_eq!(run(|fl| f32_to_i32(0xc020_0000, rm, fl)), (neg, NX), "{rm:?}");
        assert_eq!(run(|fl| f64_to_i64(0x4004_0000_0000_0000, rm, fl)), (i64::from(pos), NX));
    }
}

/// Overflow: RNE and RMM go to ∞; RTZ to the largest finite; RDN and RUP by sign.
#[test]
fn every_mode_on_overflow() {
    let cases = [
        (Rounding::Rne, INF32, INF32 | NEG),
        (Rounding::Rtz, MAX32, MAX32 | NEG),
        (Rounding::Rdn, MAX32, INF32 | NEG),
        (Rounding::Rup, INF32, MAX32 | NEG),
        (Rounding::Rmm, INF32, INF32 | NEG),
    ];
    let two = 0x4000_0000;
    for (rm, pos, neg) in cases {
        assert_eq!(run(|fl| mul32(MAX32, two, rm, fl)), (pos, OF | NX), "{rm:?}");
        assert_eq!(run(|fl| mul32(MAX32 | NEG, two, rm, fl)), (neg, OF | NX), "{rm:?}");
        let max64 = 0x7fef_ffff_ffff_ffff_u64;
        let want = if pos == INF32 { INF64 } else { max64 };
        assert_eq!(run(|fl| add64(max64, max64, rm, fl)), (want, OF | NX), "{rm:?}");
        // f64 → f32 of a value past the single range.
        assert_eq!(run(|fl| f64_to_f32(0x47f0_0000_0000_0000, rm, fl)), (pos, OF | NX));
    }
}

/// An exact zero sum is +0 except in RDN, where it is −0; x + x keeps the sign of zeros.
#[test]
fn exact_zero_sign() {
    for rm in RMS {
        let want = if rm == Rounding::Rdn { NEG } else { 0 };
        assert_eq!(run(|fl| add32(ONE32, ONE32 | NEG, rm, fl)), (want, 0), "{rm:?}");
        assert_eq!(run(|fl| sub32(ONE32, ONE32, rm, fl)), (want, 0), "{rm:?}");
        assert_eq!(run(|fl| add32(0, NEG, rm, fl)), (want, 0), "{rm:?}");
        assert_eq!(run(|fl| add32(NEG, NEG, rm, fl)), (NEG, 0), "{rm:?}");
        let want64 = u64::from(rm == Rounding::Rdn) << 63;
        assert_eq!(run(|fl| sub64(ONE64, ONE64, rm, fl)), (want64, 0), "{rm:?}");
        assert_eq!(run(|fl| fma64(ONE64, ONE64, ONE64 | 1 << 63, rm, fl)), (want64, 0));
    }
}

/// Spec: "tininess is detected after rounding". The double 2^-126 × (1 − 2^-25) is below the
/// smallest normal single, but rounded to 24 bits with an unbounded exponent it is exactly
/// 2^-126 in RNE and RUP, so it is not tiny there: only NX. Detecting before rounding would
/// also raise UF. In RTZ and RDN it stays below 2^-126 and underflows.
#[test]
fn tininess_after_rounding() {
    let v = 0x380f_ffff_f000_0000; // 2^-126 × (1 − 2^-25)
    let min_normal = 0x0080_0000;
    let max_subnormal = 0x007f_ffff;
    assert_eq!(run(|fl| f64_to_f32(v, Rounding::Rne, fl)), (min_normal, NX));
    assert_eq!(run(|fl| f64_to_f32(v, Rounding::Rup, fl)), (min_normal, NX));
    assert_eq!(run(|fl| f64_to_f32(v, Rounding::Rmm, fl)), (min_normal, NX));
    assert_eq!(run(|fl| f64_to_f32(v, Rounding::Rtz, fl)), (max_subnormal, UF | NX));
    assert_eq!(run(|fl| f64_to_f32(v, Rounding::Rdn, fl)), (max_subnormal, UF | NX));
    // Tiny and exact is no underflow: a subnormal result that needs no rounding.
    assert_eq!(run(|fl| mul32(0x0000_0002, 0x3f00_0000, Rounding::Rne, fl)), (1, 0));
    // Tiny and inexact is: the smallest subnormal halved rounds to zero in RNE (a tie to even).
    assert_eq!(run(|fl| mul32(1, 0x3f00_0000, Rounding::Rne, fl)), (0, UF | NX));
    assert_eq!(run(|fl| mul32(1, 0x3f00_0000, Rounding::Rup, fl)), (1, UF | NX));
}

use crate::testing::Rng;

impl Rng {
    /// A value of format `f` biased towards edge cases: zeros, subnormals, the normal and
    /// overflow boundaries, infinities, NaNs, and significands with few or trailing-one bits.
    fn operand(&mut self, f: Format) -> u64 {
        let emax = f.exp_field_max();
        let r = self.next();
        let exp = match r % 8 {
            0 => self.next() % (emax + 1),
            1 => 0,
            2 => 1 + self.next() % 3,
            3 => emax - 1 - self.next() % 3,
            4 => emax,
            _ => emax / 2 - 8 + self.next() % 17,
        };
        let mut frac = self.next() & f.frac_mask();
        match (r >> 8) % 4 {
            0 => frac &= !((1 << (self.next() % u64::from(f.frac_bits))) - 1),
            1 => frac |= (1 << (self.next() % u64::from(f.frac_bits))) - 1,
            _ => {}
        }
        f.sign(r >> 16 & 1 == 1) | exp << f.frac_bits | frac
    }
}

/// Results and flags of the public operations (fast path first) must equal the soft path's,
/// in every rounding mode, and the fast path must actually answer for ordinary operands.
#[test]
fn fast_path_agrees_with_soft_path() {
    cross_check(0x2545_f491_4f6c_dd1d, 40_000);
}

/// The same cross-check at a hundred times the size; run it with `--release --ignored`.
#[test]
#[ignore = "takes a minute in a debug build"]
fn fast_path_agrees_with_soft_path_long() {
    cross_check(0x9e37_79b9_7f4a_7c15, 4_000_000);
}

fn cross_check(seed: u64, rounds: usize) {
    let mut rng = Rng(seed);
    let mut fast_hits = 0usize;
    for i in 0..rounds {
        let rm = RMS[i % 5];
        for f in [F32, F64] {
            let (a, b) = (rng.operand(f), rng.operand(f));
            // Every fourth pair is made of nearby values to exercise cancellation and exact
            // quotients.
            let b = if i % 4 == 0 { a ^ (rng.next() & 0xff) ^ (rng.next() & f.sign_bit()) } else { b };
            let c = rng.operand(f);
            let soft: [(u64, u8); 6] = [
                run(|fl| soft_add(f, a, b, rm, fl)),
                run(|fl| soft_add(f, a, b ^ f.sign_bit(), rm, fl)),
                run(|fl| soft_mul(f, a, b, rm, fl)),
                run(|fl| soft_div(f, a, b, rm, fl)),
                run(|fl| soft_sqrt(f, a, rm, fl)),
                run(|fl| soft_fma(f, a, b, c, rm, fl)),
            ];
            let public: [(u64, u8); 6] = if f == F32 {
                let (a, b, c) = (lo(a), lo(b), lo(c));
                [
                    run(|fl| u64::from(add32(a, b, rm, fl))),
                    run(|fl| u64::from(sub32(a, b, rm, fl))),
                    run(|fl| u64::from(mul32(a, b, rm, fl))),
                    run(|fl| u64::from(div32(a, b, rm, fl))),
                    run(|fl| u64::from(sqrt32(a, rm, fl))),
                    run(|fl| u64::from(fma32(a, b, c, rm, fl))),
                ]
            } else {
                [
                    run(|fl| add64(a, b, rm, fl)),
                    run(|fl| sub64(a, b, rm, fl)),
                    run(|fl| mul64(a, b, rm, fl)),
                    run(|fl| div64(a, b, rm, fl)),
                    run(|fl| sqrt64(a, rm, fl)),
                    run(|fl| fma64(a, b, c, rm, fl)),
                ]
            };
            for (k, name) in ["add", "sub", "mul", "div", "sqrt", "fma"].iter().enumerate() {
                assert_eq!(public[k], soft[k], "{name} {f:?} {rm:?} a={a:#x} b={b:#x} c={c:#x}");
            }
            // Conversions between formats and to and from integers.
            if f == F64 {
                let got = run(|fl| u64::from(f64_to_f32(a, rm, fl)));
                assert_eq!(got, run(|fl| soft_convert(F64, F32, a, rm, fl)), "f64_to_f32 {a:#x}");
                let got = run(|fl| f64_to_i64(a, rm, fl).cast_unsigned());
                assert_eq!(got, run(|fl| soft_to_int(F64, a, rm, true, 64, fl)), "{a:#x}");
                let got = run(|fl| u64::from(f64_to_u32(a, rm, fl)));
                assert_eq!(got, run(|fl| soft_to_int(F64, a, rm, false, 32, fl)), "{a:#x}");
                let v = rng.next() >> (rng.next() % 64);
                let got = run(|fl| i64_to_f64(v.cast_signed(), rm, fl));
                let want = run(|fl| soft_from_int(F64, v >> 63 == 1, v.cast_signed().unsigned_abs(), rm, fl));
                assert_eq!(got, want, "i64_to_f64 {v:#x}");
                let got = run(|fl| u64::from(u64_to_f32(v, rm, fl)));
                assert_eq!(got, run(|fl| soft_from_int(F32, false, v, rm, fl)), "{v:#x}");
            } else {
                let got = run(|fl| f32_to_f64(lo(a), fl));
                assert_eq!(got, run(|fl| soft_convert(F32, F64, a, rm, fl)), "f32_to_f64 {a:#x}");
                let got = run(|fl| u64::from(f32_to_i32(lo(a), rm, fl).cast_unsigned()));
                assert_eq!(got, run(|fl| soft_to_int(F32, a, rm, true, 32, fl)), "{a:#x}");
                let got = run(|fl| f32_to_u64(lo(a), rm, fl));
                assert_eq!(got, run(|fl| soft_to_int(F32, a, rm, false, 64, fl)), "{a:#x}");
            }
            if rm == Rounding::Rne && f == F64 {
                let mut fl = 0;
                let (x, y) = (f64::from_bits(a), f64::from_bits(b));
                fast_hits += usize::from(fast_add64(x, y, rm, &mut fl).is_some());
                fast_hits += usize::from(fast_mul64(x, y, rm, &mut fl).is_some());
            }
        }
    }
    // Over half the edge-biased operands are ordinary normal numbers; the fast path must take
    // most of those.
    let rne_pairs = rounds / 5;
    assert!(fast_hits > rne_pairs, "fast path answered {fast_hits} of {} ops", 2 * rne_pairs);
}

/// Prints the cost per operation on ordinary operands, fast path (RNE) and soft path (RTZ,
/// inexact results). Run with `cargo test --release -p shoal-engine --lib -- --ignored
/// --nocapture fp::tests::cost_per_op`.
#[test]
#[ignore = "a micro-benchmark; prints timings"]
fn cost_per_op() {
    use std::hint::black_box;
    use std::time::Instant;
    let mut rng = Rng(7);
    let n = 1 << 12;
    // Normal operands in [1, 2) × 2^(-4..4), like typical data.
    let ops64: Vec<(u64, u64, u64)> = (0..n)
        .map(|_| {
            let mut v = || (1019 + rng.next() % 9) << 52 | (rng.next() & F64.frac_mask());
            (v(), v(), v())
        })
        .collect();
    let ops32: Vec<(u32, u32, u32)> = ops64
        .iter()
        .map(|&(a, b, c)| {
            (
                f64_to_f32(a, Rounding::Rne, &mut 0),
                f64_to_f32(b, Rounding::Rne, &mut 0),
                f64_to_f32(c, Rounding::Rne, &mut 0),
            )
        })
        .collect();
    let reps = 200;
    let time = |name: &str, f: &dyn Fn(u64, u64, u64, &mut u8) -> u64, ops: &[(u64, u64, u64)]| {
        // The best of five runs, since the machine is shared.
        let per = (0..5)
            .map(|_| {
                let start = Instant::now();
                let mut fl = 0;
                let mut acc = 0u64;
                for _ in 0..reps {
                    for &(a, b, c) in ops {
                        acc ^= f(black_box(a), black_box(b), black_box(c), &mut fl);
                    }
                }
                black_box((acc, fl));
                start.elapsed().as_secs_f64() * 1e9 / f64::from(reps) / ops.len() as f64
            })
            .fold(f64::INFINITY, f64::min);
        println!("{name:<24} {per:6.2} ns/op");
    };
    let wide32: Vec<(u64, u64, u64)> = ops32.iter().map(|&(a, b, c)| (a.into(), b.into(), c.into())).collect();
    for (mode, rm) in [("rne", Rounding::Rne), ("rtz", Rounding::Rtz)] {
        println!("-- {mode}");
        time("add64", &|a, b, _, fl| add64(a, b, rm, fl), &ops64);
        time("mul64", &|a, b, _, fl| mul64(a, b, rm, fl), &ops64);
        time("div64", &|a, b, _, fl| div64(a, b, rm, fl), &ops64);
        time("sqrt64", &|a, _, _, fl| sqrt64(a, rm, fl), &ops64);
        time("fma64", &|a, b, c, fl| fma64(a, b, c, rm, fl), &ops64);
        time("f64_to_i64", &|a, _, _, fl| f64_to_i64(a, rm, fl).cast_unsigned(), &ops64);
        time("i64_to_f64", &|a, _, _, fl| i64_to_f64(a.cast_signed(), rm, fl), &ops64);
        time("f64_to_f32", &|a, _, _, fl| f64_to_f32(a, rm, fl).into(), &ops64);
        time("add32", &|a, b, _, fl| add32(lo(a), lo(b), rm, fl).into(), &wide32);
        time("mul32", &|a, b, _, fl| mul32(lo(a), lo(b), rm, fl).into(), &wide32);
        time("div32", &|a, b, _, fl| div32(lo(a), lo(b), rm, fl).into(), &wide32);
        time("sqrt32", &|a, _, _, fl| sqrt32(lo(a), rm, fl).into(), &wide32);
        time("fma32", &|a, b, c, fl| fma32(lo(a), lo(b), lo(c), rm, fl).into(), &wide32);
    }
    time("soft add64 (rne)", &|a, b, _, fl| soft_add(F64, a, b, Rounding::Rne, fl), &ops64);
    time("soft mul64 (rne)", &|a, b, _, fl| soft_mul(F64, a, b, Rounding::Rne, fl), &ops64);
    time("eq64", &|a, b, _, fl| u64::from(eq64(a, b, fl)), &ops64);
    time("min64", &|a, b, _, fl| min64(a, b, fl), &ops64);
}
