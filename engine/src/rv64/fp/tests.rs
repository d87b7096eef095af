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

#[expect(
    clippy::cast_possible_truncation,
    reason = "vector operands of 32-bit ops"
)]
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
    let (f, name) = match op.strip_suffix("32") {
        Some(name) if !op.starts_with('f') && !op.contains("_to_") || op == "fma32" => (F32, name),
        _ => match op.strip_suffix("64") {
            Some(name) if !op.contains("_to_") => (F64, name),
            _ => (F32, op),
        },
    };
    let r = match name {
        "add" => run(|fl| soft_add(f, a, b, rm, fl)),
        "sub" => run(|fl| soft_add(f, a, b ^ f.sign_bit(), rm, fl)),
        "mul" => run(|fl| soft_mul(f, a, b, rm, fl)),
        "div" => run(|fl| soft_div(f, a, b, rm, fl)),
        "sqrt" => run(|fl| soft_sqrt(f, a, rm, fl)),
        "fma" => run(|fl| soft_fma(f, a, b, c, rm, fl)),
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
        "i64_to_f32" => {
            run(|fl| soft_from_int(F32, a >> 63 != 0, a.cast_signed().unsigned_abs(), rm, fl))
        }
        "u64_to_f32" => run(|fl| soft_from_int(F32, false, a, rm, fl)),
        "i64_to_f64" => {
            run(|fl| soft_from_int(F64, a >> 63 != 0, a.cast_signed().unsigned_abs(), rm, fl))
        }
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
        let want = (
            parse_hex(want),
            u8::try_from(parse_hex(want_fl)).expect("fflags"),
        );
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
    assert!(
        checked > 80_000 && ops.len() == 42,
        "{checked} vectors, {} ops",
        ops.len()
    );
    assert!(soft_checked > 60_000, "{soft_checked} soft vectors");
    assert!(
        failures.is_empty(),
        "{} of {checked} vectors failed:\n{}",
        failures.len(),
        failures
            .iter()
            .take(40)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}
