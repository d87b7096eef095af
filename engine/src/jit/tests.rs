//! Differential tests: generated instruction streams run in the interpreter alone and with every
//! region compiled (`Engine::Jit`) must end with identical registers, flags, memory and
//! instruction counts. Streams are bounded (a counted loop, forward branches only otherwise) so
//! every case terminates. `SHOAL_JIT_CASES` sets how many cases run (default 300).
//!
//! Two generators: one for every instruction form, and one for floating point alone, which
//! draws operands from edge values (zeros, subnormals, the neighbours of the smallest normal
//! number, values near overflow and near integer limits, NaNs, infinities, badly boxed
//! singles), presets `fflags` with and without NX and uses static and dynamic rounding modes.
//! Besides, every floating-point op runs compiled on all pairs of edge values, with the flags
//! checked after each.
#![expect(
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap,
    clippy::cast_sign_loss,
    reason = "instruction fields are built from bounded random numbers and masked to their widths"
)]

use std::sync::atomic::AtomicU32;

use super::MemoryModel;
use crate::interp::{Cpu, Engine, Exit, Interp};
use crate::mem::{AddressSpace, VmaKind, perm};
use crate::testing::Rng;

const CODE: u64 = 0x1_0000;
const DATA: u64 = 0x4_0000;

fn r(op: u32, f3: u32, f7: u32, rd: u32, rs1: u32, rs2: u32) -> u32 {
    (f7 << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | op
}
fn i(op: u32, f3: u32, rd: u32, rs1: u32, imm: i32) -> u32 {
    ((imm as u32 & 0xfff) << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | op
}
fn s(f3: u32, rs1: u32, rs2: u32, imm: i32) -> u32 {
    let imm = imm as u32;
    ((imm >> 5 & 0x7f) << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12) | ((imm & 0x1f) << 7) | 0x23
}
fn b(f3: u32, rs1: u32, rs2: u32, off: i32) -> u32 {
    let o = off as u32;
    ((o >> 12 & 1) << 31)
        | ((o >> 5 & 0x3f) << 25)
        | (rs2 << 20)
        | (rs1 << 15)
        | (f3 << 12)
        | ((o >> 1 & 0xf) << 8)
        | ((o >> 11 & 1) << 7)
        | 0x63
}
fn r4(op: u32, rm: u32, fmt: u32, rd: u32, rs1: u32, rs2: u32, rs3: u32) -> u32 {
    (rs3 << 27) | (fmt << 25) | (rs2 << 20) | (rs1 << 15) | (rm << 12) | (rd << 7) | op
}

/// `jal x0, +4`. The interpreter runs whole blocks, so after a CSR instruction (which compiled
/// code leaves to it) it would also run what follows; this ends its block there, and compiled
/// code takes over again at the next instruction.
const JUMP_NEXT: u32 = 0x0040_006f;

/// Registers the generated code may write: x1..x29 (x30 counts the loop, x31 points at data).
fn xreg(g: &mut Rng) -> u32 {
    1 + g.below(29) as u32
}

fn fpreg(g: &mut Rng) -> u32 {
    g.below(32) as u32
}

/// One random straight-line instruction (no control transfer).
fn random_inst(g: &mut Rng) -> u32 {
    let (rd, rs1, rs2) = (xreg(g), xreg(g), xreg(g));
    let imm = (g.below(4096) as i32) - 2048;
    match g.below(10) {
        0..=2 => {
            // OP and OP-32 (with M): funct3/funct7 pairs that exist.
            let forms: [(u32, u32, u32); 28] = [
                (0x33, 0, 0),
                (0x33, 0, 0x20),
                (0x33, 1, 0),
                (0x33, 2, 0),
                (0x33, 3, 0),
                (0x33, 4, 0),
                (0x33, 5, 0),
                (0x33, 5, 0x20),
                (0x33, 6, 0),
                (0x33, 7, 0),
                (0x33, 0, 1),
                (0x33, 1, 1),
                (0x33, 2, 1),
                (0x33, 3, 1),
                (0x33, 4, 1),
                (0x33, 5, 1),
                (0x33, 6, 1),
                (0x33, 7, 1),
                (0x3b, 0, 0),
                (0x3b, 0, 0x20),
                (0x3b, 1, 0),
                (0x3b, 5, 0),
                (0x3b, 5, 0x20),
                (0x3b, 0, 1),
                (0x3b, 4, 1),
                (0x3b, 5, 1),
                (0x3b, 6, 1),
                (0x3b, 7, 1),
            ];
            let (op, f3, f7) = g.pick(&forms);
            r(op, f3, f7, rd, rs1, rs2)
        }
        3 => {
            let f3 = g.pick(&[0u32, 2, 3, 4, 6, 7]);
            i(0x13, f3, rd, rs1, imm)
        }
        4 => match g.below(6) {
            0 => i(0x13, 1, rd, rs1, g.below(64) as i32),
            1 => i(0x13, 5, rd, rs1, g.below(64) as i32),
            2 => i(0x13, 5, rd, rs1, 0x400 | g.below(64) as i32),
            3 => i(0x1b, 0, rd, rs1, imm),
            4 => i(0x1b, 1, rd, rs1, g.below(32) as i32),
            _ => i(0x1b, 5, rd, rs1, 0x400 | g.below(32) as i32),
        },
        5 => (g.next() as u32 & 0xfffff000) | (rd << 7) | g.pick(&[0x37u32, 0x17]),
        6 => {
            // Loads and stores around x31 (the data page): aligned or not, within the page; now
            // and then off whatever another register holds (wild pointers: past the space, below
            // zero with a negative offset, or wrapping around).
            let off = g.below(4000) as i32;
            let base = if g.below(16) == 0 { rs1 } else { 31 };
            match g.below(5) {
                0 => i(0x03, g.pick(&[0u32, 1, 2, 3, 4, 5, 6]), rd, base, off),
                1 => s(g.pick(&[0u32, 1, 2, 3]), base, rs2, off),
                2 => i(0x07, g.pick(&[2u32, 3]), fpreg(g), 31, off),
                // fsw/fsd: the store encoding with the FP store opcode.
                3 => (s(g.pick(&[2u32, 3]), 31, fpreg(g), off) & !0x7f) | 0x27,
                // AMOs (swap, add, xor, and, or, min, max, minu, maxu; random aq/rl) on the data
                // page, or now and then at whatever another register holds (faults, misaligned).
                _ => {
                    let funct5 = g.pick(&[0x01u32, 0x00, 0x04, 0x0c, 0x08, 0x10, 0x14, 0x18, 0x1c]);
                    let base = if g.below(8) == 0 { rs1 } else { 31 };
                    r(0x2f, g.pick(&[2u32, 3]), funct5 << 2 | g.below(4) as u32, rd, base, rs2)
                }
            }
        }
        _ => {
            // Floating point, both widths, static and dynamic rounding modes.
            let (fd, fa, fb, fc) = (fpreg(g), fpreg(g), fpreg(g), fpreg(g));
            let rm = g.pick(&[0u32, 1, 2, 3, 4, 7]);
            let fmt = g.below(2) as u32;
            match g.below(12) {
                0 => r(0x53, rm, fmt, fd, fa, fb),                        // fadd
                1 => r(0x53, rm, 0x04 | fmt, fd, fa, fb),                 // fsub
                2 => r(0x53, rm, 0x08 | fmt, fd, fa, fb),                 // fmul
                3 => r(0x53, rm, 0x0c | fmt, fd, fa, fb),                 // fdiv
                4 => r(0x53, rm, 0x2c | fmt, fd, fa, 0),                  // fsqrt
                5 => r(0x53, g.below(3) as u32, 0x10 | fmt, fd, fa, fb),  // fsgnj*
                6 => r(0x53, g.below(2) as u32, 0x14 | fmt, fd, fa, fb),  // fmin/fmax
                7 => r(0x53, g.below(3) as u32, 0x50 | fmt, rd, fa, fb),  // feq/flt/fle
                8 => r(0x53, rm, 0x60 | fmt, rd, fa, g.below(4) as u32),  // fcvt.{w,wu,l,lu}
                9 => r(0x53, rm, 0x68 | fmt, fd, rs1, g.below(4) as u32), // fcvt from int
                10 => r4(g.pick(&[0x43u32, 0x47, 0x4b, 0x4f]), rm, fmt, fd, fa, fb, fc),
                _ => r(0x53, 1, 0x70 | fmt, rd, fa, 0), // fclass
            }
        }
    }
}

/// A program: x30 counts a loop around a body of straight-line code with forward branches.
fn program(g: &mut Rng) -> Vec<u32> {
    let mut code = vec![i(0x13, 0, 30, 0, 1 + g.below(5) as i32)];
    let body_len = 8 + g.below(40) as usize;
    let mut body = Vec::with_capacity(body_len);
    while body.len() < body_len {
        if g.below(8) == 0 && body.len() + 3 < body_len {
            // A forward branch over 1..3 instructions.
            let skip = 1 + g.below(3) as i32;
            body.push(b(g.pick(&[0u32, 1, 4, 5, 6, 7]), xreg(g), xreg(g), 4 * (skip + 1)));
        } else {
            body.push(random_inst(g));
        }
    }
    let back = -(4 * (body.len() as i32 + 1));
    code.extend(body);
    code.push(i(0x13, 0, 30, 30, -1)); // addi x30, x30, -1
    code.push(b(1, 30, 0, back)); // bne x30, x0, loop
    code.push(0x0000_0073); // ecall
    code
}

/// An address space with `code` at `CODE` and `data` (a whole number of pages) at `DATA`.
fn address_space(code: &[u32], data: &[u8]) -> AddressSpace {
    let m = AddressSpace::with_size(1 << 24).unwrap();
    m.map_anon(CODE, 0x4000, perm::RW, VmaKind::Anon).unwrap();
    let bytes: Vec<u8> = code.iter().flat_map(|w| w.to_le_bytes()).collect();
    m.write_bytes(CODE, &bytes).unwrap();
    m.protect(CODE, 0x4000, perm::R | perm::X).unwrap();
    m.map_anon(DATA, data.len() as u64, perm::RW, VmaKind::Anon).unwrap();
    m.write_bytes(DATA, data).unwrap();
    m
}

fn machine(code: &[u32], g: &mut Rng) -> (AddressSpace, Cpu) {
    let data: Vec<u8> = (0..4096).map(|_| g.next() as u8).collect();
    let m = address_space(code, &data);
    let mut cpu = Cpu { pc: CODE, ..Cpu::default() };
    let edge = [0u64, 1, u64::MAX, i64::MIN as u64, i64::MAX as u64, 0x8000_0000, 0xffff_ffff, 7, 3];
    for x in 1..30 {
        cpu.x[x] = if g.below(3) == 0 { g.pick(&edge) } else { g.next() };
    }
    cpu.x[31] = DATA;
    let fedge = [
        0u64,
        0x8000_0000_0000_0000,
        0x7ff0_0000_0000_0000,
        0x7ff8_0000_0000_0000,
        0x7ff4_0000_0000_0000,
        0x3ff0_0000_0000_0000,
        0x0000_0000_0000_0001,
        0xffff_ffff_3f80_0000,
        0xffff_ffff_7fc0_0000,
        0xffff_ffff_0000_0001,
        0x4340_0000_0000_0000,
    ];
    for f in 0..32 {
        cpu.f[f] = if g.below(2) == 0 { g.pick(&fedge) } else { g.next() };
    }
    cpu.frm = g.pick(&[0u8, 1, 2, 3, 4, 5]);
    (m, cpu)
}

fn run(engine: Engine, mem: &AddressSpace, cpu: Cpu) -> (Cpu, Exit) {
    let (cpu, exit, _) = run_with(engine, mem, cpu);
    (cpu, exit)
}

/// Runs to the first exit that is not the budget; also returns the interpreter, for its
/// statistics.
fn run_with(engine: Engine, mem: &AddressSpace, cpu: Cpu) -> (Cpu, Exit, Interp) {
    run_interp(Interp::with_engine(engine), engine, mem, cpu)
}

/// Runs `it` to the first exit that is not the budget.
fn run_interp(mut it: Interp, engine: Engine, mem: &AddressSpace, mut cpu: Cpu) -> (Cpu, Exit, Interp) {
    let attention = AtomicU32::new(0);
    loop {
        let exit = it.run(&mut cpu, mem, &attention, 1_000_000);
        if exit != Exit::Budget {
            if engine == Engine::Jit {
                // The comparison proves nothing unless compiled code really ran.
                assert!(it.jit_stats().regions > 0, "no region was compiled");
            }
            EVICTIONS.fetch_add(it.jit_stats().evictions, std::sync::atomic::Ordering::Relaxed);
            return (cpu, exit, it);
        }
    }
}

/// Chunks of compiled code evicted by the runs of this test binary.
static EVICTIONS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn check_case(seed: u64) {
    check_case_with(seed, None);
}

/// Runs case `seed` in the interpreter and compiled, with at most `jit_memory` bytes of
/// compiled code if given.
fn check_case_with(seed: u64, jit_memory: Option<usize>) {
    let mut g = Rng(seed | 1);
    let code = program(&mut g);
    let (m, cpu) = machine(&code, &mut g);
    compare_engines_with(seed, &code, &m, cpu, jit_memory);
}

/// Runs `code` from `cpu` in the interpreter on `m1` and compiled on a copy of it; everything
/// must end the same.
fn compare_engines(seed: u64, code: &[u32], m1: &AddressSpace, cpu: Cpu) {
    compare_engines_with(seed, code, m1, cpu, None);
}

/// The memory models this host can run: guarded where it catches faults, and checked.
fn models() -> Vec<MemoryModel> {
    if super::fault::SUPPORTED { vec![MemoryModel::Guarded, MemoryModel::Checked] } else { vec![MemoryModel::Checked] }
}

/// An interpreter whose JIT compiles for `model`, synchronously.
fn jit_interp(model: MemoryModel, jit_memory: Option<usize>) -> Interp {
    let service = std::sync::Arc::new(crate::jit::JitService::start_with_model(None, model).unwrap());
    let mut config = crate::interp::JitConfig::for_engine(Engine::Jit, service).unwrap();
    if let Some(bytes) = jit_memory {
        config.arena_bytes = bytes;
    }
    Interp::with_jit(Some(config))
}

/// As [`compare_engines`], with at most `jit_memory` bytes of compiled code if given, for every
/// memory model.
fn compare_engines_with(seed: u64, code: &[u32], m1: &AddressSpace, cpu: Cpu, jit_memory: Option<usize>) {
    for model in models() {
        compare_engines_in(seed, code, m1, cpu.clone(), jit_memory, model);
    }
}

fn compare_engines_in(
    seed: u64,
    code: &[u32],
    m1: &AddressSpace,
    cpu: Cpu,
    jit_memory: Option<usize>,
    model: MemoryModel,
) {
    let m1 = m1.duplicate().unwrap();
    let m2 = m1.duplicate().unwrap();
    let (a, ea) = run(Engine::Interp, &m1, cpu.clone());
    let (b, eb, _) = run_interp(jit_interp(model, jit_memory), Engine::Jit, &m2, cpu);
    let ctx = || format!("seed {seed:#x}, {model:?}, program {:08x?}", code);
    assert_eq!(ea, eb, "exit differs: {}", ctx());
    assert_eq!(a.pc, b.pc, "pc differs: {}", ctx());
    for x in 0..32 {
        assert_eq!(a.x[x], b.x[x], "x{x} differs: {}", ctx());
    }
    for f in 0..32 {
        assert_eq!(a.f[f], b.f[f], "f{f} differs: {}", ctx());
    }
    assert_eq!(a.fflags, b.fflags, "fflags differ: {}", ctx());
    assert_eq!(a.instret, b.instret, "instret differs: {}", ctx());
    assert_eq!(m1.slice(DATA, 4096).unwrap(), m2.slice(DATA, 4096).unwrap(), "memory differs: {}", ctx());
}

fn cases() -> u64 {
    std::env::var("SHOAL_JIT_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(300)
}

#[test]
fn jit_matches_interpreter_on_generated_programs() {
    for n in 0..cases() {
        check_case(0x9e37_79b9_7f4a_7c15_u64.wrapping_mul(n + 1));
    }
}

// ---------------------------------------------------------------------------------------------
// Floating-point streams.

/// Doubles where rounding, flags or exactness change (as bit patterns).
const DOUBLE_EDGES: [u64; 46] = [
    0,                     // +0
    0x8000_0000_0000_0000, // −0
    0x0000_0000_0000_0001, // smallest subnormal
    0x000f_ffff_ffff_ffff, // largest subnormal
    0x3fef_ffff_ffff_ffff, // 1 − 2^-53: MIN_POSITIVE times it is tiny, rounded up to MIN_POSITIVE
    0x3ff0_0000_0000_0001, // 1 + 2^-52: MAX times it overflows
    0x8000_0000_0000_0001,
    0x0010_0000_0000_0000, // MIN_POSITIVE
    0x0010_0000_0000_0001, // and its neighbours
    0x8010_0000_0000_0000,
    0x0020_0000_0000_0000,
    0x2000_0000_0000_0000, // 2^-511: squares near MIN_POSITIVE
    0x06b0_0000_0000_0000, // 2^-916 = 2^(emin + 2p)
    0x06af_ffff_ffff_ffff,
    0x7fef_ffff_ffff_ffff, // MAX
    0x7fef_ffff_ffff_fffe,
    0x7fe0_0000_0000_0000, // 2^1023
    0x5ff0_0000_0000_0000, // 2^512: squares overflow
    0x7ff0_0000_0000_0000, // +inf
    0xfff0_0000_0000_0000, // −inf
    0x7ff8_0000_0000_0000, // canonical NaN
    0x7ff8_0000_0000_0001, // quiet NaN with payload
    0x7ff4_0000_0000_0000, // signaling NaN
    0xfff8_0000_0000_0000, // negative quiet NaN
    0x3ff0_0000_0000_0000, // 1
    0xbff0_0000_0000_0000, // −1
    0x3fe0_0000_0000_0000, // 0.5
    0xbfe0_0000_0000_0000, // −0.5
    0x3fef_ae14_7ae1_47ae, // 0.99
    0xbfef_ae14_7ae1_47ae, // −0.99
    0x3ff8_0000_0000_0000, // 1.5
    0x4008_0000_0000_0000, // 3
    0x3fb9_9999_9999_999a, // 0.1
    0x41e0_0000_0000_0000, // 2^31
    0x41df_ffff_ffe0_0000, // 2^31 − 0.5
    0xc1e0_0000_0000_0000, // −2^31
    0xc1e0_0000_0010_0000, // −2^31 − 0.5
    0xc1e0_0000_0020_0000, // −2^31 − 1
    0x41f0_0000_0000_0000, // 2^32
    0x41ef_ffff_fff0_0000, // 2^32 − 0.5
    0x43e0_0000_0000_0000, // 2^63
    0xc3e0_0000_0000_0000, // −2^63
    0xc3e0_0000_0000_0001, // just below −2^63
    0x43f0_0000_0000_0000, // 2^64
    0x4340_0000_0000_0000, // 2^53
    0x4340_0000_0000_0001, // 2^53 + 2
];

/// Singles where rounding, flags or exactness change.
const SINGLE_EDGES: [u32; 36] = [
    0,           // +0
    0x8000_0000, // −0
    0x0000_0001, // smallest subnormal
    0x007f_ffff, // largest subnormal
    0x3f7f_ffff, // 1 − 2^-24: MIN_POSITIVE times it is tiny, rounded up to MIN_POSITIVE
    0x3f80_0001, // 1 + 2^-23: MAX times it overflows
    0x8000_0001,
    0x0080_0000, // MIN_POSITIVE
    0x0080_0001, // and its neighbours
    0x8080_0000,
    0x0100_0000,
    0x1f80_0000, // 2^-64: squares near MIN_POSITIVE
    0x1880_0000, // 2^-78 = 2^(emin + 2p)
    0x187f_ffff,
    0x7f7f_ffff, // MAX
    0x7f7f_fffe,
    0x5f80_0000, // 2^64: squares overflow
    0x7f80_0000, // +inf
    0xff80_0000, // −inf
    0x7fc0_0000, // canonical NaN
    0x7fc0_0001, // quiet NaN with payload
    0x7fa0_0000, // signaling NaN
    0xffc0_0000, // negative quiet NaN
    0x3f80_0000, // 1
    0xbf80_0000, // −1
    0x3f00_0000, // 0.5
    0xbf00_0000, // −0.5
    0x3f7d_70a4, // 0.99
    0x3fc0_0000, // 1.5
    0x3dcc_cccd, // 0.1
    0x4f00_0000, // 2^31
    0xcf00_0000, // −2^31
    0x4f80_0000, // 2^32
    0x5f00_0000, // 2^63
    0x5f80_0001, // just above 2^64
    0x4b80_0000, // 2^24
];

/// A double: an edge, a short one (few significant bits, so results are often exact), a
/// random normal or random bits.
fn double_value(g: &mut Rng) -> u64 {
    match g.below(8) {
        0..=2 => g.pick(&DOUBLE_EDGES),
        3..=5 => {
            let m = (1 + g.below(1 << 12)) as f64;
            let e = g.below(81) as i32 - 40;
            let sign = if g.below(4) == 0 { -1.0 } else { 1.0 };
            (sign * m * 2f64.powi(e)).to_bits()
        }
        6 => (g.next() & 0x800f_ffff_ffff_ffff) | ((1 + g.below(0x7fe)) << 52),
        _ => g.next(),
    }
}

/// A single, likewise.
fn single_value(g: &mut Rng) -> u32 {
    match g.below(8) {
        0..=2 => g.pick(&SINGLE_EDGES),
        3..=5 => {
            let m = (1 + g.below(1 << 8)) as f32;
            let e = g.below(41) as i32 - 20;
            let sign = if g.below(4) == 0 { -1.0 } else { 1.0 };
            (sign * m * 2f32.powi(e)).to_bits()
        }
        6 => (g.next() as u32 & 0x807f_ffff) | ((1 + g.below(0xfe) as u32) << 23),
        _ => g.next() as u32,
    }
}

/// An integer for conversions: around the limits of singles, doubles and the integer types.
const INT_EDGES: [i64; 18] = [
    0,
    1,
    -1,
    3,
    -1000,
    1 << 24,
    (1 << 24) + 1,
    -(1 << 24) - 1,
    1 << 53,
    (1 << 53) + 1,
    -(1 << 53) - 1,
    i32::MAX as i64,
    i32::MIN as i64,
    u32::MAX as i64,
    i64::MAX,
    i64::MIN,
    0x7fff_ff80_0000_0000,
    0x1234_5678_9abc_def0,
];

fn int_value(g: &mut Rng) -> u64 {
    match g.below(4) {
        0 | 1 => g.pick(&INT_EDGES) as u64,
        2 => (g.below(1 << 20) as i64 - (1 << 19)) as u64,
        _ => g.next(),
    }
}

/// A register value for the single-precision half of the FP registers: a boxed single, now
/// and then a badly boxed one.
fn boxed_single(g: &mut Rng) -> u64 {
    let v = u64::from(single_value(g));
    match g.below(16) {
        0 => v | (g.next() & 0x7fff_ffff_0000_0000),
        1 => v,
        _ => v | 0xffff_ffff_0000_0000,
    }
}

/// One floating-point instruction. Registers f0..f15 mostly hold singles and f16..f31 doubles,
/// and operands mostly come from the half of their precision.
fn fp_inst(g: &mut Rng) -> u32 {
    let fmt = g.below(2) as u32;
    let reg = |g: &mut Rng, fmt: u32| if g.below(8) == 0 { fpreg(g) } else { 16 * fmt + g.below(16) as u32 };
    let (fd, fa, fb, fc) = (reg(g, fmt), reg(g, fmt), reg(g, fmt), reg(g, fmt));
    let (rd, rs1) = (xreg(g), xreg(g));
    // Mostly RNE, static or dynamic, as compilers emit them.
    let rm = match g.below(16) {
        0..=7 => 0,
        8..=11 => 7,
        12 | 13 => 1,
        _ => 2 + g.below(3) as u32,
    };
    match g.below(24) {
        0..=5 => r(0x53, rm, (g.below(4) as u32 * 4) | fmt, fd, fa, fb), // fadd, fsub, fmul, fdiv
        6 => r(0x53, rm, 0x2c | fmt, fd, fa, 0),                         // fsqrt
        7..=9 => r4(g.pick(&[0x43u32, 0x47, 0x4b, 0x4f]), rm, fmt, fd, fa, fb, fc),
        10 => r(0x53, g.below(3) as u32, 0x50 | fmt, rd, fa, fb), // feq, flt, fle
        11 => r(0x53, g.below(2) as u32, 0x14 | fmt, fd, fa, fb), // fmin, fmax
        12 => r(0x53, g.below(3) as u32, 0x10 | fmt, fd, fa, fb), // fsgnj*
        13 if fmt == 0 => r(0x53, rm, 0x20, reg(g, 0), reg(g, 1), 1), // fcvt.s.d
        13 => r(0x53, rm, 0x21, reg(g, 1), reg(g, 0), 0),         // fcvt.d.s
        14 | 15 => {
            // To integers, mostly truncating as C casts do.
            let rm = if g.below(2) == 0 { 1 } else { rm };
            r(0x53, rm, 0x60 | fmt, rd, fa, g.below(4) as u32)
        }
        16 | 17 => r(0x53, rm, 0x68 | fmt, fd, rs1, g.below(4) as u32), // from integers
        18 => r(0x53, 1, 0x70 | fmt, rd, fa, 0),                        // fclass
        19 if g.below(2) == 0 => r(0x53, 0, 0x70 | fmt, rd, fa, 0),     // fmv.x.{w,d}
        19 => r(0x53, 0, 0x78 | fmt, fd, rs1, 0),                       // fmv.{w,d}.x
        20 => {
            let off = 8 * g.below(500) as i32;
            if g.below(2) == 0 {
                i(0x07, 2 + fmt, fd, 31, off) // flw, fld
            } else {
                (s(2 + fmt, 31, fa, off) & !0x7f) | 0x27 // fsw, fsd
            }
        }
        21 => {
            // The interpreter changes fflags and frm between compiled instructions: clear or
            // set NX, set a rounding mode (now and then a reserved one), read the flags.
            match g.below(8) {
                0..=2 => i(0x73, 7, 0, 1, 0x001),                             // csrrci x0, fflags, NX
                3 | 4 => i(0x73, 6, 0, 1, 0x001),                             // csrrsi x0, fflags, NX
                5 => i(0x73, 5, 0, g.pick(&[0u32, 0, 1, 2, 3, 4, 5]), 0x002), // csrrwi x0, frm
                _ => i(0x73, 2, rd, 0, 0x001),                                // csrrs rd, fflags, x0
            }
        }
        _ => r(0x53, 0, (g.below(4) as u32 * 4) | fmt, fd, fa, fb), // more RNE arithmetic
    }
}

/// A counted loop around floating-point instructions.
fn fp_program(g: &mut Rng) -> Vec<u32> {
    let mut code = vec![i(0x13, 0, 30, 0, 1 + g.below(5) as i32)];
    let mut body = Vec::new();
    for _ in 0..8 + g.below(40) {
        let inst = fp_inst(g);
        body.push(inst);
        if inst & 0x7f == 0x73 {
            body.push(JUMP_NEXT);
        }
    }
    let back = -(4 * (body.len() as i32 + 1));
    code.extend(body);
    code.push(i(0x13, 0, 30, 30, -1)); // addi x30, x30, -1
    code.push(b(1, 30, 0, back)); // bne x30, x0, loop
    code.push(0x0000_0073); // ecall
    code
}

fn fp_machine(code: &[u32], g: &mut Rng) -> (AddressSpace, Cpu) {
    let data: Vec<u8> =
        (0..512).flat_map(|_| if g.below(2) == 0 { double_value(g) } else { boxed_single(g) }.to_le_bytes()).collect();
    let m = address_space(code, &data);
    let mut cpu = Cpu { pc: CODE, ..Cpu::default() };
    for x in 1..30 {
        cpu.x[x] = int_value(g);
    }
    cpu.x[31] = DATA;
    for f in 0..16 {
        cpu.f[f] = boxed_single(g);
        cpu.f[16 + f] = double_value(g);
    }
    let flags = g.below(32) as u8;
    cpu.fflags = if g.below(2) == 0 { flags | 1 } else { flags & !1 };
    cpu.frm = match g.below(50) {
        0..=29 => 0,
        30..=48 => 1 + g.below(4) as u8,
        _ => 5,
    };
    (m, cpu)
}

#[test]
fn jit_matches_interpreter_on_generated_fp_programs() {
    for n in 0..cases() {
        let seed = 0x2545_f491_4f6c_dd1d_u64.wrapping_mul(n + 1);
        let mut g = Rng(seed | 1);
        let code = fp_program(&mut g);
        let (m, cpu) = fp_machine(&code, &mut g);
        compare_engines(seed, &code, &m, cpu);
    }
}

/// Operand rows for the edge sweep: `[rs1 (f1 and x9), rs2 (f2), rs3 (f3)]`.
fn edge_rows(fmt: u32, arity: usize) -> Vec<[u64; 3]> {
    let values: Vec<u64> = if fmt == 0 {
        // Boxed singles, and two badly boxed ones.
        let mut v: Vec<u64> = SINGLE_EDGES.iter().map(|&s| u64::from(s) | 0xffff_ffff_0000_0000).collect();
        v.extend([0x0000_0000_3f80_0000, 0x7fff_ffff_3f80_0000]);
        v
    } else {
        DOUBLE_EDGES.to_vec()
    };
    // Addends for fused multiply-adds: zeros, ±1, the smallest normal and subnormal numbers,
    // an infinity and a signaling NaN.
    let addends: Vec<u64> = if fmt == 0 {
        [0u32, 0x8000_0000, 0x3f80_0000, 0xbf80_0000, 0x0080_0000, 1, 0x7f80_0000, 0x7fa0_0000]
            .map(|v| u64::from(v) | 0xffff_ffff_0000_0000)
            .to_vec()
    } else {
        vec![
            0,
            0x8000_0000_0000_0000,
            0x3ff0_0000_0000_0000,
            0xbff0_0000_0000_0000,
            0x0010_0000_0000_0000,
            1,
            0x7ff0_0000_0000_0000,
            0x7ff4_0000_0000_0000,
        ]
    };
    let mut rows = Vec::new();
    for &a in &values {
        if arity == 1 {
            rows.push([a, a, a]);
            continue;
        }
        for &b in &values {
            if arity == 2 {
                rows.push([a, b, a]);
            } else {
                rows.extend(addends.iter().map(|&c| [a, b, c]));
            }
        }
    }
    rows
}

/// Runs `inst` once per row of operands (f1, f2, f3 and x9 loaded from the row), with
/// `fflags` preset to `flags` before each, and stores f4, x10 and the flags after it; the
/// interpreter and compiled code must store the same. `inst` runs compiled in a region of its
/// own: the CSR accesses around it leave the region.
fn sweep(inst: u32, rows: &[[u64; 3]], flags: u64, frm: u8) {
    const ROW: usize = 6;
    let code = [
        i(0x07, 3, 1, 31, 0),               // fld f1, 0(x31)
        i(0x07, 3, 2, 31, 8),               // fld f2, 8(x31)
        i(0x07, 3, 3, 31, 16),              // fld f3, 16(x31)
        i(0x03, 3, 9, 31, 0),               // ld x9, 0(x31)
        i(0x73, 1, 0, 7, 0x001),            // csrrw x0, fflags, x7
        JUMP_NEXT,                          //
        inst,                               //
        i(0x73, 2, 8, 0, 0x001),            // csrrs x8, fflags, x0
        (s(3, 31, 4, 24) & !0x7f) | 0x27,   // fsd f4, 24(x31)
        s(3, 31, 10, 32),                   // sd x10, 32(x31)
        s(3, 31, 8, 40),                    // sd x8, 40(x31)
        i(0x13, 0, 31, 31, 8 * ROW as i32), // addi x31, x31, 48
        i(0x13, 0, 30, 30, -1),             // addi x30, x30, -1
        b(1, 30, 0, -4 * 13),               // bne x30, x0, loop
        0x0000_0073,                        // ecall
    ];
    let mut data: Vec<u8> = rows.iter().flat_map(|r| [r[0], r[1], r[2], 0, 0, 0]).flat_map(u64::to_le_bytes).collect();
    data.resize(data.len().next_multiple_of(0x1000), 0);
    let m1 = address_space(&code, &data);
    let m2 = m1.duplicate().unwrap();
    let mut cpu = Cpu { pc: CODE, frm, ..Cpu::default() };
    (cpu.x[7], cpu.x[30], cpu.x[31]) = (flags, rows.len() as u64, DATA);
    let (a, ea, _) = run_with(Engine::Interp, &m1, cpu.clone());
    let (b, eb, it) = run_with(Engine::Jit, &m2, cpu);
    assert_eq!((ea, eb), (Exit::Ecall, Exit::Ecall));
    // The loop head and `inst` (the rest is left to the interpreter at the CSR accesses).
    assert_eq!(it.jit_stats().regions, 2, "{inst:08x} did not run compiled");
    let words = |m: &AddressSpace| -> Vec<u64> {
        m.slice(DATA, data.len() as u64).unwrap().chunks(8).map(|w| u64::from_le_bytes(w.try_into().unwrap())).collect()
    };
    let (wa, wb) = (words(&m1), words(&m2));
    for (n, row) in rows.iter().enumerate() {
        let (ra, rb) = (&wa[ROW * n + 3..ROW * n + 6], &wb[ROW * n + 3..ROW * n + 6]);
        assert_eq!(
            ra, rb,
            "[f4, x10, fflags] differ for {inst:08x} with operands {row:016x?}, fflags {flags:#x}, frm {frm}"
        );
    }
    assert_eq!((a.x, a.f, a.fflags), (b.x, b.f, b.fflags));
}

#[test]
fn fp_edge_values_through_every_op() {
    // (rm field, frm): static RNE, dynamic RNE, dynamic RTZ, static RTZ, static RDN.
    let modes = [(0, 0), (7, 0), (7, 1), (1, 0), (2, 0)];
    let int_rows: Vec<[u64; 3]> = INT_EDGES.iter().map(|&v| [v as u64; 3]).collect();
    for fmt in [0u32, 1] {
        let (unary, binary, ternary) = (edge_rows(fmt, 1), edge_rows(fmt, 2), edge_rows(fmt, 3));
        for flags in [0, 1] {
            for (rm, frm) in modes {
                for k in 0..4 {
                    sweep(r(0x53, rm, (k * 4) | fmt, 4, 1, 2), &binary, flags, frm); // fadd .. fdiv
                    sweep(r(0x53, rm, 0x60 | fmt, 10, 1, k), &unary, flags, frm); // fcvt to integers
                    sweep(r(0x53, rm, 0x68 | fmt, 4, 9, k), &int_rows, flags, frm); // and from them
                }
                sweep(r(0x53, rm, 0x2c | fmt, 4, 1, 0), &unary, flags, frm); // fsqrt
                if fmt == 0 {
                    sweep(r(0x53, rm, 0x20, 4, 1, 1), &edge_rows(1, 1), flags, frm); // fcvt.s.d
                }
            }
            for (rm, frm) in [(0, 0), (7, 0), (1, 0)] {
                for opcode in [0x43, 0x47, 0x4b, 0x4f] {
                    sweep(r4(opcode, rm, fmt, 4, 1, 2, 3), &ternary, flags, frm);
                }
            }
            for k in 0..3 {
                sweep(r(0x53, k, 0x50 | fmt, 10, 1, 2), &binary, flags, 0); // feq, flt, fle
            }
            for k in 0..2 {
                sweep(r(0x53, k, 0x14 | fmt, 4, 1, 2), &binary, flags, 0); // fmin, fmax
            }
            sweep(r(0x53, 1, 0x70 | fmt, 10, 1, 0), &unary, flags, 0); // fclass
            if fmt == 0 {
                sweep(r(0x53, 0, 0x21, 4, 1, 0), &unary, flags, 0); // fcvt.d.s
            }
        }
    }
}

/// A loop over i = 1..=100 in the shape of numeric C code: conversions, products, a
/// quotient, sums, a fused multiply-add, a root, comparisons and single precision. With
/// `exact`, every result is an exact small integer or half; without, the quotient is 1/i².
fn numeric_loop(exact: bool) -> Vec<u32> {
    let quotient = if exact {
        r(0x53, 7, 0x0d, 3, 2, 1) // fdiv.d f3, f2, f1      i² / i
    } else {
        r(0x53, 7, 0x0d, 3, 10, 2) // fdiv.d f3, f10, f2    1 / i²
    };
    let body = [
        r(0x53, 7, 0x69, 1, 5, 2), // fcvt.d.l f1, x5
        r(0x53, 7, 0x09, 2, 1, 1), // fmul.d f2, f1, f1
        quotient,
        r(0x53, 7, 0x01, 4, 4, 3),    // fadd.d f4, f4, f3
        r4(0x43, 7, 1, 5, 1, 11, 5),  // fmadd.d f5, f1, f11, f5     f11 = 0.5
        r(0x53, 7, 0x2d, 6, 2, 0),    // fsqrt.d f6, f2
        r(0x53, 1, 0x61, 6, 4, 0),    // fcvt.w.d x6, f4, rtz
        r(0x53, 1, 0x51, 7, 1, 2),    // flt.d x7, f1, f2
        r(0x53, 0, 0x15, 7, 1, 3),    // fmin.d f7, f1, f3
        r(0x53, 7, 0x20, 8, 3, 1),    // fcvt.s.d f8, f3
        r(0x53, 7, 0x00, 9, 8, 8),    // fadd.s f9, f8, f8
        r(0x53, 0, 0x21, 12, 9, 0),   // fcvt.d.s f12, f9
        r(0x53, 1, 0x71, 8, 3, 0),    // fclass.d x8, f3
        r(0x53, 7, 0x68, 13, 5, 0),   // fcvt.s.w f13, x5
        r(0x53, 7, 0x08, 14, 13, 13), // fmul.s f14, f13, f13
        r(0x53, 2, 0x50, 9, 14, 9),   // feq.s x9, f14, f9
        i(0x13, 0, 5, 5, 1),          // addi x5, x5, 1
    ];
    let mut code = vec![i(0x13, 0, 30, 0, 100), i(0x13, 0, 5, 0, 1)];
    code.extend(body);
    code.push(i(0x13, 0, 30, 30, -1));
    code.push(b(1, 30, 0, -4 * (body.len() as i32 + 1)));
    code.push(0x0000_0073);
    code
}

/// Runs `numeric_loop(exact)` compiled with `fflags` preset and `frm = 0`; checks it against
/// the interpreter and returns the compiled run's helper calls and final flags.
fn numeric_loop_helper_calls(exact: bool, fflags: u8) -> (u64, u8) {
    let code = numeric_loop(exact);
    let m = address_space(&code, &[0; 4096]);
    let mut cpu = Cpu { pc: CODE, fflags, ..Cpu::default() };
    cpu.f[10] = 1f64.to_bits();
    cpu.f[11] = 0.5f64.to_bits();
    compare_engines(0, &code, &m, cpu.clone());
    super::codegen::FP_HELPER_CALLS.with(|n| n.set(0));
    let (end, _) = run(Engine::Jit, &m, cpu);
    (super::codegen::FP_HELPER_CALLS.with(std::cell::Cell::get), end.fflags)
}

#[test]
fn fp_fast_paths_replace_helper_calls() {
    // NX set: nothing needs the helper.
    assert_eq!(numeric_loop_helper_calls(false, 1), (0, 1));
    // NX clear and every result exact: the exactness proofs keep everything inline, and no
    // flag is raised.
    assert_eq!(numeric_loop_helper_calls(true, 0), (0, 0));
    // NX clear and inexact results: the first (fcvt.w.d of 1.25, at i = 2) goes to the
    // helper, which sets NX, and nothing after it does.
    assert_eq!(numeric_loop_helper_calls(false, 0), (1, 1));
}

#[test]
fn fp_regions_without_host_fma_use_the_helper_for_fused_ops() {
    use cranelift_codegen::settings::{self, Configurable};
    // A host whose Cranelift flags lack FMA: fused multiply-adds must go to the helper (an
    // inline `fma` would be a library call, a relocation), and so must products, quotients and
    // roots while NX is clear (their exactness proofs need `fma`).
    let mut isa = cranelift_native::builder().unwrap();
    if isa.set("has_fma", "false").is_err() {
        return; // Not an x64 host: FMA is part of the base instruction set.
    }
    let mut flags = settings::builder();
    flags.set("opt_level", "speed").unwrap();
    flags.set("is_pic", "true").unwrap();
    flags.set("preserve_frame_pointers", "true").unwrap();
    let isa = isa.finish(settings::Flags::new(flags)).unwrap();
    assert!(isa.isa_flags().iter().any(|f| f.name == "has_fma" && f.as_bool() == Some(false)));

    // NX set: the helper runs for the 100 fmadd.d; NX clear with exact results: also for
    // fmul.d, fdiv.d, fsqrt.d and fmul.s.
    for (exact, fflags, helper_calls) in [(false, 1, 100), (true, 0, 500)] {
        let code = numeric_loop(exact);
        let m = address_space(&code, &[0; 4096]);
        let mut cpu = Cpu { pc: CODE, fflags, ..Cpu::default() };
        cpu.f[10] = 1f64.to_bits();
        cpu.f[11] = 0.5f64.to_bits();
        let (expected, _) = run(Engine::Interp, &m, cpu.clone());
        // The loop (from its third instruction) is one region, left at the ecall.
        let region = super::region::form(&m, CODE + 8, &|_| true).unwrap();
        let mut ctx = cranelift_codegen::Context::new();
        let mut fctx = cranelift_frontend::FunctionBuilderContext::new();
        let bytes = super::codegen::compile(&*isa, &mut ctx, &mut fctx, &region, MemoryModel::Checked).unwrap();
        let trampoline = super::Trampoline::compile(&*isa, &mut ctx, &mut fctx).unwrap();
        let mut arena = super::CodeArena::new(1 << 20);
        let (entry, _) = arena.install(CODE + 8, &bytes.code).unwrap();
        (cpu.x[5], cpu.x[30], cpu.pc) = (1, 100, CODE + 8);
        let attention = AtomicU32::new(0);
        let table = vec![super::Slot::EMPTY; super::TABLE_SLOTS];
        let env = super::Env::new(&m, &attention, &table, u64::MAX, &trampoline);
        super::codegen::FP_HELPER_CALLS.with(|n| n.set(0));
        // SAFETY: the trampoline was compiled for this host with this signature, `entry` is a
        // region compiled from `m`, which `env` describes and which outlives the call (with an
        // empty region table: nothing to chain to); `cpu.pc` is the region's entry.
        let exit = unsafe {
            let enter: extern "C" fn(*mut Cpu, *const super::Env, usize) -> u32 = std::mem::transmute(trampoline.entry);
            enter(&mut cpu, &env, entry)
        };
        assert_eq!(super::codegen::FP_HELPER_CALLS.with(std::cell::Cell::get), helper_calls);
        assert_eq!((exit, cpu.pc), (super::EXIT_INTERPRET, expected.pc), "the loop ran to the ecall");
        assert_eq!((cpu.x, cpu.f, cpu.fflags), (expected.x, expected.f, expected.fflags));
    }
}

#[test]
fn evicting_compiled_code_changes_no_result() {
    // One 4 KiB chunk of code memory: nearly every region installed evicts the ones before it,
    // including regions the evicted ones chained to.
    for n in 0..60 {
        check_case_with(0x2545_f491_4f6c_dd1d_u64.wrapping_mul(n + 1), Some(4096));
    }
    assert!(EVICTIONS.load(std::sync::atomic::Ordering::Relaxed) > 0, "nothing was evicted");
}

/// Runs `cpu` on `m` in the interpreter, which must end with a fault at guest address `addr`,
/// then compiled in every memory model: guarded code must fault in the host exactly once (the
/// interpreter replaying to the access, if it must, rather than handing back to compiled code
/// that faults again), checked code never, and both must end as the interpreter did. Returns the
/// interpreter's final state.
fn faults_as_the_interpreter_does(m: &AddressSpace, cpu: &Cpu, addr: u64) -> Cpu {
    let (a, ea) = run(Engine::Interp, m, cpu.clone());
    assert!(matches!(ea, Exit::Fault(f) if f.addr == addr), "{ea:?}");
    for model in models() {
        let (b, eb, it) = run_interp(jit_interp(model, None), Engine::Jit, m, cpu.clone());
        assert_eq!(it.jit_stats().faults, u64::from(model == MemoryModel::Guarded), "{model:?}: host faults");
        assert_eq!(ea, eb, "{model:?}");
        assert_eq!((a.pc, &a.x[..32], a.instret), (b.pc, &b.x[..32], b.instret), "{model:?}");
    }
    a
}

#[test]
fn faults_in_compiled_code_are_precise() {
    // addi x5,x0,5 ; loop: addi x6,x6,1 ; ld x7,0(x8) ; addi x5,x5,-1 ; bne x5,x0,loop ; ecall
    // x8 points at data, then at an unmapped page on the third iteration (x8 += 0x1000 after).
    let code = [
        i(0x13, 0, 5, 0, 5),
        i(0x13, 0, 6, 6, 1),
        i(0x03, 3, 7, 8, 0),
        i(0x13, 0, 5, 5, -1),
        i(0x13, 0, 8, 8, 0x7ff),
        i(0x13, 0, 8, 8, 0x7ff),
        i(0x13, 0, 8, 8, 2),
        b(1, 5, 0, -24),
        0x0000_0073,
    ];
    let m = AddressSpace::with_size(1 << 24).unwrap();
    m.map_anon(CODE, 0x1000, perm::RW, VmaKind::Anon).unwrap();
    m.write_bytes(CODE, &code.iter().flat_map(|w| w.to_le_bytes()).collect::<Vec<_>>()).unwrap();
    m.protect(CODE, 0x1000, perm::R | perm::X).unwrap();
    m.map_anon(DATA, 0x2000, perm::RW, VmaKind::Anon).unwrap();
    let mut cpu = Cpu { pc: CODE, ..Cpu::default() };
    cpu.x[8] = DATA;
    let a = faults_as_the_interpreter_does(&m, &cpu, DATA + 0x2000);
    assert_eq!(a.pc, CODE + 8, "the fault is at the load");
}

#[test]
fn a_loop_that_only_loads_replays_from_its_entry_at_a_fault() {
    // loop: ld x6,0(x9) ; add x5,x5,x6 ; addi x9,x9,8 ; addi x7,x7,1 ; jal x0,loop — no store,
    // so the loop keeps its registers in host registers; the load faults on its 1024th
    // iteration, past the two data pages, long after the region was entered.
    let code = [i(0x03, 3, 6, 9, 0), r(0x33, 0, 0, 5, 5, 6), i(0x13, 0, 9, 9, 8), i(0x13, 0, 7, 7, 1), 0xff1f_f06f];
    let data: Vec<u8> = (0..0x2000u32).map(|n| (n * 7 + 3) as u8).collect();
    let m = address_space(&code, &data);
    let mut cpu = Cpu { pc: CODE, ..Cpu::default() };
    cpu.x[9] = DATA;
    let a = faults_as_the_interpreter_does(&m, &cpu, DATA + 0x2000);
    assert_eq!((a.pc, a.x[7], a.instret), (CODE, 1024, 1024 * 5));
}

#[test]
fn a_block_entered_past_its_restart_point_counts_from_its_own_start() {
    // a: ld x6,0(x9) ; addi x9,x9,8 ; beq x13,x0,c
    // b: sd x6,0(x10) ; ld x11,0(x12) ; addi x12,x12,16
    // c: addi x7,x7,1 ; jal x0,a
    // b is entered with its restart point in a (x13 is never zero), so its store makes
    // cpu.instret current as well as the registers; the load after the store faults on the
    // 512th iteration and restarts right after the store.
    let code = [
        i(0x03, 3, 6, 9, 0),
        i(0x13, 0, 9, 9, 8),
        b(0, 13, 0, 16),
        s(3, 10, 6, 0),
        i(0x03, 3, 11, 12, 0),
        i(0x13, 0, 12, 12, 16),
        i(0x13, 0, 7, 7, 1),
        0xfe5f_f06f,
    ];
    let data: Vec<u8> = (0..0x2000u32).map(|n| (n * 5 + 1) as u8).collect();
    let m = address_space(&code, &data);
    let mut cpu = Cpu { pc: CODE, ..Cpu::default() };
    (cpu.x[9], cpu.x[10], cpu.x[12], cpu.x[13]) = (DATA, DATA + 0x1ff8, DATA, 1);
    let a = faults_as_the_interpreter_does(&m, &cpu, DATA + 0x2000);
    assert_eq!((a.pc, a.x[7], a.instret), (CODE + 16, 512, 512 * 8 + 4));
}

#[test]
fn registers_kept_in_host_registers_by_a_loop_are_current_at_a_fault_after_it() {
    // addi x5,x0,1000 ; loop: addi x6,x6,3 ; xor x7,x6,x5 ; addi x5,x5,-1 ; bne x5,x0,loop ;
    // ld x8,0(x9) ; ecall — the loop's blocks touch no memory, so its registers stay unstored
    // until the load's block, whose load faults (x9 unmapped).
    let code = [
        i(0x13, 0, 5, 0, 1000),
        i(0x13, 0, 6, 6, 3),
        r(0x33, 4, 0, 7, 6, 5),
        i(0x13, 0, 5, 5, -1),
        b(1, 5, 0, -12),
        i(0x03, 3, 8, 9, 0),
        0x0000_0073,
    ];
    let m = address_space(&code, &[0; 4096]);
    let mut cpu = Cpu { pc: CODE, ..Cpu::default() };
    cpu.x[9] = DATA + 0x10_0000;
    let a = faults_as_the_interpreter_does(&m, &cpu, DATA + 0x10_0000);
    assert_eq!((a.pc, a.x[6], a.instret), (CODE + 20, 3000, 4001));
}

#[test]
fn a_spinning_compiled_loop_sees_attention() {
    // loop: addi x1,x1,1 ; jal x0, loop
    let code = [i(0x13, 0, 1, 1, 1), 0xffdff06f];
    let m = AddressSpace::with_size(1 << 24).unwrap();
    m.map_anon(CODE, 0x1000, perm::RW, VmaKind::Anon).unwrap();
    m.write_bytes(CODE, &code.iter().flat_map(|w| w.to_le_bytes()).collect::<Vec<_>>()).unwrap();
    m.protect(CODE, 0x1000, perm::R | perm::X).unwrap();
    let attention = AtomicU32::new(0);
    let mut it = Interp::with_engine(Engine::Jit);
    let mut cpu = Cpu { pc: CODE, ..Cpu::default() };
    assert_eq!(run_until_attention(&mut it, &mut cpu, &m, &attention), Exit::Interrupted);
    assert!(cpu.x[1] > 1000, "the loop ran compiled for a while");
    assert!(cpu.pc == CODE || cpu.pc == CODE + 4);
    assert_eq!(cpu.instret, cpu.x[1] * 2 - u64::from(cpu.pc == CODE + 4), "every instruction counted");
}

#[test]
fn a_loop_stopped_at_its_head_leaves_every_register_as_the_interpreter_would() {
    // addi x3,x0,7 ; loop: addi x1,x1,1 ; add x2,x2,x3 ; jal x0, loop
    // x3 is written before the loop and x1, x2 in it: stopping at the loop's head must store
    // them all, with the values they had there.
    let code = [i(0x13, 0, 3, 0, 7), i(0x13, 0, 1, 1, 1), r(0x33, 0, 0, 2, 2, 3), 0xff9f_f06f];
    let m = address_space(&code, &[0; 4096]);
    let attention = AtomicU32::new(0);
    let mut it = Interp::with_engine(Engine::Jit);
    let mut cpu = Cpu { pc: CODE, ..Cpu::default() };
    assert_eq!(run_until_attention(&mut it, &mut cpu, &m, &attention), Exit::Interrupted);
    assert!(cpu.x[1] > 1000, "the loop ran compiled for a while");
    assert_eq!(cpu.pc, CODE + 4, "stopped at the loop's head");
    assert_eq!((cpu.x[3], cpu.x[2]), (7, 7 * cpu.x[1]));
    assert_eq!(cpu.instret, 1 + 3 * cpu.x[1], "every instruction counted");
}

/// Runs `cpu` without an instruction budget while another thread sets `attention` after 50 ms;
/// returns the first exit that is not the end of a slice.
fn run_until_attention(it: &mut Interp, cpu: &mut Cpu, m: &AddressSpace, attention: &AtomicU32) -> Exit {
    std::thread::scope(|s| {
        s.spawn(|| {
            std::thread::sleep(std::time::Duration::from_millis(50));
            attention.store(1, std::sync::atomic::Ordering::Release);
        });
        loop {
            let e = it.run(cpu, m, attention, u64::MAX);
            if e != Exit::Budget {
                break e;
            }
        }
    })
}

#[test]
fn a_loop_chained_through_jalr_stops_on_attention_and_at_the_budget() {
    // loop: addi x1,x1,1 ; jalr x0, 0(x5)   (x5 = loop): every iteration leaves the region and
    // chains back into it through the region table, never through the dispatcher.
    let code = [i(0x13, 0, 1, 1, 1), i(0x67, 0, 0, 5, 0)];
    let m = address_space(&code, &[0; 4096]);
    let attention = AtomicU32::new(0);
    let mut it = Interp::with_engine(Engine::Jit);
    let mut cpu = Cpu { pc: CODE, ..Cpu::default() };
    cpu.x[5] = CODE;
    // A budget of 100,000 instructions ends the slice within one region's worth of it.
    assert_eq!(it.run(&mut cpu, &m, &attention, 100_000), Exit::Budget);
    assert!((100_000..100_010).contains(&cpu.instret), "stopped at {}", cpu.instret);
    assert_eq!(run_until_attention(&mut it, &mut cpu, &m, &attention), Exit::Interrupted);
    assert!(cpu.x[1] > 100_000, "the loop ran compiled for a while");
    assert_eq!(cpu.pc, CODE, "stopped at a region boundary");
    assert_eq!(cpu.instret, cpu.x[1] * 2, "every instruction counted");
}

#[test]
fn compiled_spin_loops_see_stores_from_other_threads() {
    // lw x5,0(x8) ; bne x5,x0,done ; loop: lw x5,0(x8) ; beq x5,x0,loop ; done: ecall
    // The first load dominates the loop's: a compiler that merged them would spin forever.
    let code = [i(0x03, 2, 5, 8, 0), b(1, 5, 0, 12), i(0x03, 2, 5, 8, 0), b(0, 5, 0, -4), 0x0000_0073];
    let m = std::sync::Arc::new(AddressSpace::with_size(1 << 24).unwrap());
    m.map_anon(CODE, 0x1000, perm::RW, VmaKind::Anon).unwrap();
    m.write_bytes(CODE, &code.iter().flat_map(|w| w.to_le_bytes()).collect::<Vec<_>>()).unwrap();
    m.protect(CODE, 0x1000, perm::R | perm::X).unwrap();
    m.map_anon(DATA, 0x1000, perm::RW, VmaKind::Anon).unwrap();
    let attention = std::sync::Arc::new(AtomicU32::new(0));
    let (m2, a2) = (m.clone(), attention.clone());
    let other = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(50));
        m2.store::<u32>(DATA, 1).unwrap();
        // A safety net so a broken compiler fails the test instead of hanging it.
        std::thread::sleep(std::time::Duration::from_secs(5));
        a2.store(1, std::sync::atomic::Ordering::Release);
    });
    let mut it = Interp::with_engine(Engine::Jit);
    let mut cpu = Cpu { pc: CODE, ..Cpu::default() };
    cpu.x[8] = DATA;
    let exit = loop {
        let e = it.run(&mut cpu, &m, &attention, u64::MAX);
        if e != Exit::Budget {
            break e;
        }
    };
    assert_eq!(exit, Exit::Ecall, "the spinning loop never saw the other thread's store");
    assert!(it.jit_stats().regions > 0);
    drop(other);
}

#[test]
fn wild_addresses_at_the_edges_of_the_space_match_the_interpreter() {
    // ld x5, off(x6) ; ecall — with x6 and off around both ends of the space.
    let space = 1u64 << 24;
    let cases: [(u64, i32); 8] = [
        (space + 16, -24),          // the last word of the space, off a base past its end
        (space - 8, 0),             // the same word, plainly
        (space - 4, 0),             // straddles the end: faults
        (space + 3000, -2048),      // base and address past the space, inside the arena: faults
        (8, -16),                   // below zero: faults
        (u64::MAX - 7, 16),         // wraps around to 8, a mapped word
        (u64::MAX, -2048),          // near the top of the 64-bit range: faults
        (0x7fff_ffff_ffff_0000, 0), // far past the space: faults
    ];
    for (base, off) in cases {
        let code = [i(0x03, 3, 5, 6, off), 0x0000_0073];
        let m = address_space(&code, &[0; 4096]);
        m.map_anon(0, 0x1000, perm::RW, VmaKind::Anon).unwrap();
        m.store::<u64>(8, 0x1111).unwrap();
        m.map_anon(space - 0x1000, 0x1000, perm::RW, VmaKind::Anon).unwrap();
        m.store::<u64>(space - 8, 0x2222).unwrap();
        let mut cpu = Cpu { pc: CODE, ..Cpu::default() };
        cpu.x[6] = base;
        let (a, ea) = run(Engine::Interp, &m, cpu.clone());
        for model in models() {
            let (b, eb, _) = run_interp(jit_interp(model, None), Engine::Jit, &m, cpu.clone());
            let ctx = format!("base {base:#x}, offset {off}, {model:?}");
            assert_eq!(ea, eb, "{ctx}");
            assert_eq!((a.pc, a.x, a.instret), (b.pc, b.x, b.instret), "{ctx}");
        }
    }
}

#[test]
fn a_faulting_load_repeats_only_what_followed_the_last_store() {
    // addi x5,x5,1 ; sd x5,0(x8) ; addi x5,x5,1 ; amoadd.d x6,x5,(x8) ; addi x5,x5,1 ;
    // ld x7,0(x9) ; ecall — x9 unmapped. The store and the AMO must happen once each and x5 be
    // incremented three times, with the fault at the load.
    let code = [
        i(0x13, 0, 5, 5, 1),
        s(3, 8, 5, 0),
        i(0x13, 0, 5, 5, 1),
        r(0x2f, 3, 0, 6, 8, 5),
        i(0x13, 0, 5, 5, 1),
        i(0x03, 3, 7, 9, 0),
        0x0000_0073,
    ];
    for model in models() {
        let m = address_space(&code, &[0; 4096]);
        let mut cpu = Cpu { pc: CODE, ..Cpu::default() };
        (cpu.x[5], cpu.x[8], cpu.x[9]) = (10, DATA, DATA + 0x10_0000);
        let (b, eb, it) = run_interp(jit_interp(model, None), Engine::Jit, &m, cpu);
        assert!(matches!(eb, Exit::Fault(f) if f.addr == DATA + 0x10_0000), "{model:?}: {eb:?}");
        assert_eq!((b.pc, b.instret), (CODE + 20, 5), "{model:?}: stopped at the load");
        assert_eq!((b.x[5], b.x[6]), (13, 11), "{model:?}: each instruction ran once");
        assert_eq!(m.load::<u64>(DATA).unwrap(), 11 + 12, "{model:?}: one store, one AMO");
        if model == MemoryModel::Guarded {
            assert_eq!(it.jit_stats().faults, 1);
        }
    }
}

#[test]
fn an_empty_region_table_holds_no_guest_pc() {
    let table = super::new_table();
    assert_eq!(table.len(), super::TABLE_SLOTS);
    for pc in [0u64, 2, 0x1_0000, u64::MAX - 1, 1 << 38] {
        assert!(!table[super::slot_of(pc)].holds(pc), "pc {pc:#x}");
    }
    let slot = super::Slot::new(0x1_0000, 0x1234);
    assert!(slot.holds(0x1_0000) && !slot.holds(0x1_0002) && !slot.holds(0));
}

/// A region at `CODE` of three blocks: the entry, which counts x1 and branches to the third
/// block when it reaches x2; the second, which counts x3 and jumps back to the entry (through
/// x5); and the third, which adds `third` to x4 and jumps to the entry too.
fn three_blocks(third: i32) -> Vec<u32> {
    vec![
        i(0x13, 0, 1, 1, 1),
        b(0, 1, 2, 12),
        i(0x13, 0, 3, 3, 1),
        i(0x67, 0, 0, 5, 0),
        i(0x13, 0, 4, 4, third),
        i(0x67, 0, 0, 5, 0),
    ]
}

/// The compiler thread's answer to `region` (submitted as `reshaped` says).
fn answer(service: &crate::jit::JitService, region: super::Region, reshaped: bool) -> super::Answer {
    let inbox = std::sync::Arc::new(super::Inbox::default());
    let heat = std::sync::Arc::new(AtomicU32::new(0));
    assert!(service.submit(super::Job::new(region, reshaped, 0, inbox.clone(), heat)));
    let mut done = inbox.wait();
    assert_eq!(done.len(), 1);
    done.remove(0).answer
}

#[test]
fn cached_code_is_found_by_its_entry_and_runs_only_on_the_guest_bytes_it_was_compiled_from() {
    use super::Answer;
    let dir = crate::testing::TempDir::new();
    let disk = super::cache::DiskCache::open(dir.join("code"), super::cache::DEFAULT_MAX_BYTES).unwrap();
    let service = crate::jit::JitService::start(Some(disk)).unwrap();
    let m = address_space(&three_blocks(1), &[0; 4096]);
    let all = |_: u64| true;
    let second_only = |pc: u64| pc == CODE + 8;
    let form = |follow: &dyn Fn(u64) -> bool| super::form_region(&m, CODE, follow).unwrap();
    let shape = |a: &Answer| match a {
        Answer::Code { cached, .. } => format!("code cached={cached}"),
        Answer::Reshape(blocks) => format!("reshape {blocks:x?}"),
        Answer::Failed(e) => format!("failed: {e}"),
    };
    let code_of = |a: Answer| match a {
        Answer::Code { code, .. } => code,
        other => panic!("no code: {}", shape(&other)),
    };

    let compiled = code_of(answer(&service, form(&all), false));
    // The same region formed again: its code comes from the cache.
    let again = answer(&service, form(&all), false);
    assert_eq!(shape(&again), "code cached=true");
    assert_eq!(code_of(again), compiled);
    // Formed from fewer blocks: the cache names the blocks its code was compiled from, and the
    // region formed from them gets that code.
    let fewer = answer(&service, form(&second_only), false);
    let Answer::Reshape(blocks) = fewer else { panic!("{}", shape(&fewer)) };
    assert_eq!(blocks, [CODE, CODE + 8, CODE + 16]);
    let reformed = answer(&service, form(&|pc| blocks.contains(&pc)), true);
    assert_eq!(shape(&reformed), "code cached=true");
    assert_eq!(code_of(reformed), compiled);

    // The third block's bytes change: same entry, same blocks, other code. It is compiled anew
    // and replaces the object.
    m.protect(CODE, 0x4000, perm::RW).unwrap();
    let changed: Vec<u8> = three_blocks(2)[4].to_le_bytes().to_vec();
    m.write_bytes(CODE + 16, &changed).unwrap();
    m.protect(CODE, 0x4000, perm::R | perm::X).unwrap();
    assert_eq!(shape(&answer(&service, form(&all), false)), "code cached=false");
    assert_eq!(shape(&answer(&service, form(&all), false)), "code cached=true");
    // A reshaped region that still differs (the code changed again meanwhile) is compiled as it
    // is, and its object replaces the old one.
    assert_eq!(shape(&answer(&service, form(&second_only), true)), "code cached=false");
    assert_eq!(shape(&answer(&service, form(&all), false)), format!("reshape {:x?}", [CODE, CODE + 8]));
}

#[test]
fn a_vcpu_forming_a_region_from_other_blocks_loads_the_cached_code_instead_of_compiling() {
    let dir = crate::testing::TempDir::new();
    let disk = super::cache::DiskCache::open(dir.join("code"), super::cache::DEFAULT_MAX_BYTES).unwrap();
    let service = std::sync::Arc::new(crate::jit::JitService::start(Some(disk)).unwrap());
    let m = address_space(&three_blocks(1), &[0; 4096]);
    let attention = AtomicU32::new(0);
    let start = || {
        let mut cpu = Cpu::default();
        (cpu.pc, cpu.x[2], cpu.x[5]) = (CODE, 1000, CODE);
        cpu
    };
    // Compiling on first execution, a region takes every block (the third has not run yet).
    let jit = crate::interp::JitConfig::for_engine(Engine::Jit, service.clone()).unwrap();
    let mut first = Interp::with_jit(Some(jit.clone()));
    let mut cpu = start();
    assert_eq!(first.run(&mut cpu, &m, &attention, 10_000), Exit::Budget);
    assert_eq!((first.jit_stats().regions, first.jit_stats().loaded), (1, 0));
    let expected = cpu;
    // A tiered vCPU forms the region from the blocks that ran before it got hot (two of the
    // three): the cache hands it the code compiled from all three.
    let mut tiered = Interp::with_jit(Some(crate::interp::JitConfig { threshold: 2, ..jit }));
    let mut cpu = start();
    assert_eq!(tiered.run(&mut cpu, &m, &attention, 10_000), Exit::Budget);
    assert_eq!((tiered.jit_stats().regions, tiered.jit_stats().loaded), (0, 1));
    assert_eq!(cpu.x[..32], expected.x[..32]);
}

#[test]
fn draining_puts_regions_nobody_waits_for_in_the_disk_cache() {
    let m = address_space(&three_blocks(1), &[0; 4096]);
    let region = || super::form_region(&m, CODE, &|_| true).unwrap();
    let submit = |service: &crate::jit::JitService| {
        let heat = std::sync::Arc::new(AtomicU32::new(0));
        // The requester is gone: its inbox is dropped with the job.
        assert!(service.submit(super::Job::new(region(), false, 0, std::sync::Arc::default(), heat)));
    };
    let long = std::time::Duration::from_secs(60);

    // Without a disk cache the work would be lost: no wait.
    let memory_only = crate::jit::JitService::start(None).unwrap();
    submit(&memory_only);
    assert_eq!(memory_only.drain(long).regions, 0);

    let dir = crate::testing::TempDir::new();
    let open = || super::cache::DiskCache::open(dir.join("code"), super::cache::DEFAULT_MAX_BYTES).unwrap();
    let service = crate::jit::JitService::start(Some(open())).unwrap();
    submit(&service);
    let drained = service.drain(long);
    assert_eq!(drained.left, 0);
    // The compiler may have finished before the drain began: it counts only what it waited for.
    assert!(drained.regions <= 1);
    assert_eq!(drained.regions == 1, drained.compile_time > std::time::Duration::ZERO);
    // Nothing queued: returns at once, having compiled nothing more.
    assert_eq!(service.drain(long), crate::jit::Drained::default());
    // The next process finds the code there.
    let next = crate::jit::JitService::start(Some(open())).unwrap();
    assert!(matches!(answer(&next, region(), false), super::Answer::Code { cached: true, .. }));
}

/// `jal rd, off`.
fn jal(rd: u32, off: i32) -> u32 {
    let o = off as u32;
    ((o >> 20 & 1) << 31)
        | ((o >> 1 & 0x3ff) << 21)
        | ((o >> 11 & 1) << 20)
        | ((o >> 12 & 0xff) << 12)
        | (rd << 7)
        | 0x6f
}

/// `ebreak`.
const EBREAK: u32 = 0x0010_0073;

/// A loop that calls a function until x1 reaches x2: at `CODE`, the caller; at `CODE + 0x10`,
/// the function, which jumps to an inner loop of four at `CODE + 0x3000` and, after it, to its
/// last block (a count in x10 and the return) at `CODE + 0x4400`. That block is further from the
/// caller and the function than a region reaches (`region::WINDOW`), so their regions leave it
/// by an exit, while the inner loop's region takes it in.
fn far_tail_calls() -> AddressSpace {
    let code: [(u64, &[u32]); 4] = [
        (0, &[i(0x13, 0, 1, 1, 1), jal(6, 0x0c), b(1, 1, 2, -8), EBREAK]),
        (0x10, &[i(0x13, 0, 9, 0, 4), jal(0, 0x3000 - 0x14)]),
        (0x3000, &[i(0x13, 0, 9, 9, -1), b(1, 9, 0, -4), jal(0, 0x4400 - 0x3008)]),
        (0x4400, &[i(0x13, 0, 10, 10, 1), i(0x67, 0, 0, 6, 0)]),
    ];
    let m = AddressSpace::with_size(1 << 24).unwrap();
    m.map_anon(CODE, 0x5000, perm::RW, VmaKind::Anon).unwrap();
    for (at, words) in code {
        let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
        m.write_bytes(CODE + at, &bytes).unwrap();
    }
    m.protect(CODE, 0x5000, perm::R | perm::X).unwrap();
    m
}

#[test]
fn the_regions_a_tiered_vcpu_asks_for_do_not_depend_on_how_soon_the_compiler_answers() {
    let dir = crate::testing::TempDir::new();
    let m = far_tail_calls();
    let attention = AtomicU32::new(0);
    let long = std::time::Duration::from_secs(60);
    let objects = || {
        let shards = std::fs::read_dir(dir.join("code")).unwrap();
        shards.map(|shard| std::fs::read_dir(shard.unwrap().path()).unwrap().count()).sum::<usize>()
    };
    // Runs the guest in slices of `slice` instructions; between two, the compiler finishes what
    // it was asked, and the vCPU installs it as the next slice begins. Once the guest is done,
    // the compiler finishes what is left, for the disk cache.
    let run = |slice: u64| {
        let disk = super::cache::DiskCache::open(dir.join("code"), super::cache::DEFAULT_MAX_BYTES).unwrap();
        let service = std::sync::Arc::new(crate::jit::JitService::start(Some(disk)).unwrap());
        let auto = crate::interp::JitConfig::for_engine(Engine::Auto, service.clone()).unwrap();
        let mut it = Interp::with_jit(Some(crate::interp::JitConfig { threshold: 8, ..auto }));
        let mut cpu = Cpu::default();
        (cpu.pc, cpu.x[2]) = (CODE, 300);
        for _ in 0..100_000 {
            match it.run(&mut cpu, &m, &attention, slice) {
                Exit::Budget => {
                    service.drain(long);
                }
                Exit::Breakpoint => {
                    assert_eq!(service.drain(long).left, 0);
                    assert_eq!(cpu.x[10], 300, "slice {slice}");
                    return it.jit_stats();
                }
                other => panic!("slice {slice}: {other:?} at {:#x}", cpu.pc),
            }
        }
        panic!("slice {slice}: the guest did not finish");
    };
    // In one slice: the guest is done before the compiler answers, so every block runs in the
    // interpreter, and every region asked for is compiled after it.
    assert_eq!(run(1 << 30).loaded, 0);
    let asked = objects();
    assert!(asked >= 3, "{asked} regions");
    // Answered sooner, so that regions run compiled while others are still waiting, the same
    // regions are asked for: every one is in the disk cache.
    for slice in [1, 5, 40, 300] {
        let stats = run(slice);
        assert_eq!(stats.regions, 0, "slice {slice}: {stats:?}");
        assert_eq!(objects(), asked, "slice {slice}: {stats:?}");
    }
}
