//! Differential tests: generated instruction streams run in the interpreter alone and with every
//! region compiled (`Engine::Jit`) must end with identical registers, flags, memory and
//! instruction counts. Streams are bounded (a counted loop, forward branches only otherwise) so
//! every case terminates. `SHOAL_JIT_CASES` sets how many cases run (default 300).
#![expect(
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap,
    clippy::cast_sign_loss,
    reason = "instruction fields are built from bounded random numbers and masked to their widths"
)]

use std::sync::atomic::AtomicU32;

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
            // Loads and stores around x31 (the data page): aligned or not, within the page.
            let off = g.below(4000) as i32;
            match g.below(4) {
                0 => i(0x03, g.pick(&[0u32, 1, 2, 3, 4, 5, 6]), rd, 31, off),
                1 => s(g.pick(&[0u32, 1, 2, 3]), 31, rs2, off),
                2 => i(0x07, g.pick(&[2u32, 3]), fpreg(g), 31, off),
                // fsw/fsd: the store encoding with the FP store opcode.
                _ => (s(g.pick(&[2u32, 3]), 31, fpreg(g), off) & !0x7f) | 0x27,
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

fn machine(code: &[u32], g: &mut Rng) -> (AddressSpace, Cpu) {
    let m = AddressSpace::with_size(1 << 24).unwrap();
    m.map_anon(CODE, 0x4000, perm::RW, VmaKind::Anon).unwrap();
    let bytes: Vec<u8> = code.iter().flat_map(|w| w.to_le_bytes()).collect();
    m.write_bytes(CODE, &bytes).unwrap();
    m.protect(CODE, 0x4000, perm::R | perm::X).unwrap();
    m.map_anon(DATA, 0x1000, perm::RW, VmaKind::Anon).unwrap();
    let data: Vec<u8> = (0..4096).map(|_| g.next() as u8).collect();
    m.write_bytes(DATA, &data).unwrap();
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
    run_interp(Interp::with_engine(engine), engine, mem, cpu)
}

fn run_interp(mut it: Interp, engine: Engine, mem: &AddressSpace, mut cpu: Cpu) -> (Cpu, Exit) {
    let attention = AtomicU32::new(0);
    loop {
        let exit = it.run(&mut cpu, mem, &attention, 1_000_000);
        if exit != Exit::Budget {
            if engine == Engine::Jit {
                // The comparison proves nothing unless compiled code really ran.
                assert!(it.jit_stats().regions > 0, "no region was compiled");
            }
            EVICTIONS.fetch_add(it.jit_stats().evictions, std::sync::atomic::Ordering::Relaxed);
            return (cpu, exit);
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
    let (m1, cpu) = machine(&code, &mut g);
    let m2 = m1.duplicate().unwrap();
    let (a, ea) = run(Engine::Interp, &m1, cpu.clone());
    let service = std::sync::Arc::new(crate::jit::JitService::start(None).unwrap());
    let mut config = crate::interp::JitConfig::for_engine(Engine::Jit, service).unwrap();
    if let Some(bytes) = jit_memory {
        config.arena_bytes = bytes;
    }
    let (b, eb) = run_interp(Interp::with_jit(Some(config)), Engine::Jit, &m2, cpu);
    let ctx = || format!("seed {seed:#x}, program {:08x?}", code);
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

#[test]
fn jit_matches_interpreter_on_generated_programs() {
    let cases: u64 = std::env::var("SHOAL_JIT_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(300);
    for n in 0..cases {
        check_case(0x9e37_79b9_7f4a_7c15_u64.wrapping_mul(n + 1));
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
    let (a, ea) = run(Engine::Interp, &m, cpu.clone());
    let (b, eb) = run(Engine::Jit, &m, cpu);
    assert!(matches!(ea, Exit::Fault(f) if f.addr == DATA + 0x2000), "{ea:?}");
    assert_eq!(ea, eb);
    assert_eq!(a.pc, CODE + 8, "the fault is at the load");
    assert_eq!((a.pc, a.x, a.instret), (b.pc, b.x, b.instret));
}

#[test]
fn a_spinning_compiled_loop_sees_attention() {
    // loop: addi x1,x1,1 ; jal x0, loop
    let code = [i(0x13, 0, 1, 1, 1), 0xffdff06f];
    let m = AddressSpace::with_size(1 << 24).unwrap();
    m.map_anon(CODE, 0x1000, perm::RW, VmaKind::Anon).unwrap();
    m.write_bytes(CODE, &code.iter().flat_map(|w| w.to_le_bytes()).collect::<Vec<_>>()).unwrap();
    m.protect(CODE, 0x1000, perm::R | perm::X).unwrap();
    let attention = std::sync::Arc::new(AtomicU32::new(0));
    let a2 = attention.clone();
    let setter = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(50));
        a2.store(1, std::sync::atomic::Ordering::Release);
    });
    let mut it = Interp::with_engine(Engine::Jit);
    let mut cpu = Cpu { pc: CODE, ..Cpu::default() };
    let exit = loop {
        let e = it.run(&mut cpu, &m, &attention, u64::MAX);
        if e != Exit::Budget {
            break e;
        }
    };
    setter.join().unwrap();
    assert_eq!(exit, Exit::Interrupted);
    assert!(cpu.x[1] > 1000, "the loop ran compiled for a while");
    assert!(cpu.pc == CODE || cpu.pc == CODE + 4);
    assert_eq!(cpu.instret, cpu.x[1] * 2 - u64::from(cpu.pc == CODE + 4), "every instruction counted");
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
