//! Interpreter tests on hand-assembled instruction words (encodings per the RISC-V unprivileged
//! spec, chapter 2 "RV32I Base Integer Instruction Set" and the M, A and C chapters).

use std::sync::atomic::AtomicU32;

use super::*;
use crate::mem::{VmaKind, perm};

const CODE: u64 = 0x1_0000;
const DATA: u64 = 0x2_0000;

fn machine(words: &[u32]) -> (AddressSpace, Cpu) {
    let m = AddressSpace::with_size(1 << 24).unwrap();
    m.map_anon(CODE, 0x1000, perm::RW, VmaKind::Anon).unwrap();
    let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
    m.write_bytes(CODE, &bytes).unwrap();
    m.protect(CODE, 0x1000, perm::R | perm::X).unwrap();
    m.map_anon(DATA, 0x1000, perm::RW, VmaKind::Anon).unwrap();
    let cpu = Cpu { pc: CODE, ..Cpu::default() };
    (m, cpu)
}

fn run(words: &[u32], setup: impl FnOnce(&mut Cpu)) -> (Cpu, Exit, AddressSpace) {
    let (m, mut cpu) = machine(words);
    setup(&mut cpu);
    let mut it = Interp::new();
    let exit = it.run(&mut cpu, &m, &AtomicU32::new(0), 1_000_000);
    (cpu, exit, m)
}

// Encoders for the few formats the tests use.
fn i_type(op: u32, f3: u32, rd: u32, rs1: u32, imm: i32) -> u32 {
    ((imm as u32 & 0xfff) << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | op
}
fn r_type(op: u32, f3: u32, f7: u32, rd: u32, rs1: u32, rs2: u32) -> u32 {
    (f7 << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | op
}
const ECALL: u32 = 0x0000_0073;
fn addi(rd: u32, rs1: u32, imm: i32) -> u32 {
    i_type(0x13, 0, rd, rs1, imm)
}

#[test]
fn writes_to_x0_are_discarded() {
    let (cpu, exit, _) = run(&[addi(0, 0, 5), addi(1, 0, 7), ECALL], |_| {});
    assert_eq!(exit, Exit::Ecall);
    assert_eq!(cpu.reg(0), 0);
    assert_eq!(cpu.reg(1), 7);
    assert_eq!(cpu.pc, CODE + 8, "pc points at the ecall");
}

#[test]
fn w_ops_sign_extend_their_32_bit_result() {
    // addw x3, x1, x2 with 0x7fffffff + 1 overflows to 0xffffffff80000000.
    let (cpu, _, _) = run(&[r_type(0x3b, 0, 0, 3, 1, 2), ECALL], |c| {
        c.x[1] = 0x7fff_ffff;
        c.x[2] = 1;
    });
    assert_eq!(cpu.reg(3), 0xffff_ffff_8000_0000);
}

#[test]
fn division_by_zero_and_overflow_follow_the_m_extension_table() {
    // div x3,x1,x2; rem x4,x1,x2; divu x5,x1,x2; remu x6,x1,x2
    let code = [
        r_type(0x33, 4, 1, 3, 1, 2),
        r_type(0x33, 6, 1, 4, 1, 2),
        r_type(0x33, 5, 1, 5, 1, 2),
        r_type(0x33, 7, 1, 6, 1, 2),
        ECALL,
    ];
    let (cpu, _, _) = run(&code, |c| {
        c.x[1] = 42;
        c.x[2] = 0;
    });
    assert_eq!([cpu.reg(3), cpu.reg(4), cpu.reg(5), cpu.reg(6)], [u64::MAX, 42, u64::MAX, 42]);
    let (cpu, _, _) = run(&code, |c| {
        c.x[1] = i64::MIN as u64;
        c.x[2] = u64::MAX;
    });
    assert_eq!(cpu.reg(3), i64::MIN as u64, "overflow quotient is the dividend");
    assert_eq!(cpu.reg(4), 0, "overflow remainder is zero");
}

#[test]
fn loads_from_unmapped_memory_fault_at_the_exact_pc() {
    // addi x1,x0,1 ; ld x2,0(x0) ; ecall
    let (cpu, exit, _) = run(&[addi(1, 0, 1), i_type(0x03, 3, 2, 0, 0), ECALL], |_| {});
    assert!(matches!(exit, Exit::Fault(Fault { addr: 0, mapped: false, .. })));
    assert_eq!(cpu.pc, CODE + 4);
    assert_eq!(cpu.reg(1), 1, "the instruction before the fault retired");
}

#[test]
fn illegal_instruction_stops_at_its_pc() {
    let (cpu, exit, _) = run(&[addi(1, 0, 1), 0xffff_ffff], |_| {});
    assert_eq!(exit, Exit::Illegal);
    assert_eq!(cpu.pc, CODE + 4);
}

#[test]
fn branches_loop_and_count_instructions() {
    // x1 = 10; loop: x1 -= 1; bne x1, x0, loop; ecall
    let bne_back = {
        let imm = -4i32 as u32;
        let b12 = (imm >> 12) & 1;
        let b11 = (imm >> 11) & 1;
        let b10_5 = (imm >> 5) & 0x3f;
        let b4_1 = (imm >> 1) & 0xf;
        (b12 << 31) | (b10_5 << 25) | (1 << 15) | (1 << 12) | (b4_1 << 8) | (b11 << 7) | 0x63
    };
    let (cpu, exit, _) = run(&[addi(1, 0, 10), addi(1, 1, -1), bne_back, ECALL], |_| {});
    assert_eq!(exit, Exit::Ecall);
    assert_eq!(cpu.reg(1), 0);
    assert_eq!(cpu.instret, 1 + 10 * 2);
}

#[test]
fn lr_sc_succeeds_only_with_a_matching_reservation() {
    // lr.d x3,(x1); sc.d x4,x2,(x1); sc.d x5,x2,(x1); ecall
    let lr = r_type(0x2f, 3, 0b0001000, 3, 1, 0);
    let sc = |rd| r_type(0x2f, 3, 0b0001100, rd, 1, 2);
    let (cpu, _, m) = run(&[lr, sc(4), sc(5), ECALL], |c| {
        c.x[1] = DATA;
        c.x[2] = 99;
    });
    assert_eq!(cpu.reg(4), 0, "first sc succeeds");
    assert_eq!(cpu.reg(5), 1, "second sc has no reservation");
    assert_eq!(m.load::<u64>(DATA).unwrap(), 99);
}

#[test]
fn misaligned_amo_is_reported() {
    // amoadd.w x3,x2,(x1) on an address that is not 4-aligned.
    let (_, exit, _) = run(&[r_type(0x2f, 2, 0, 3, 1, 2), ECALL], |c| c.x[1] = DATA + 2);
    assert_eq!(exit, Exit::Misaligned(DATA + 2));
}

#[test]
fn compressed_and_full_instructions_mix() {
    // c.li x10, 5 (0x4515) ; c.addi x10, 3 (0x050d) ; ecall
    let words = [0x050d_4515, ECALL];
    let (cpu, exit, _) = run(&words, |_| {});
    assert_eq!(exit, Exit::Ecall);
    assert_eq!(cpu.reg(10), 8);
    assert_eq!(cpu.pc, CODE + 4);
}

#[test]
fn fence_i_drops_stale_translations() {
    // Self-modifying code: the block at DATA (made executable) is run, rewritten, then re-run
    // after the address space says code changed.
    let m = AddressSpace::with_size(1 << 24).unwrap();
    m.map_anon(CODE, 0x1000, perm::RW | perm::X, VmaKind::Anon).unwrap();
    m.write_bytes(CODE, &[addi(10, 0, 1), ECALL].iter().flat_map(|w| w.to_le_bytes()).collect::<Vec<_>>()).unwrap();
    let mut it = Interp::new();
    let attention = AtomicU32::new(0);
    let mut cpu = Cpu { pc: CODE, ..Cpu::default() };
    it.run(&mut cpu, &m, &attention, 100);
    assert_eq!(cpu.reg(10), 1);
    m.write_bytes(CODE, &addi(10, 0, 2).to_le_bytes()).unwrap();
    m.flush_code();
    cpu.pc = CODE;
    it.run(&mut cpu, &m, &attention, 100);
    assert_eq!(cpu.reg(10), 2);
}

#[test]
fn csr_fcsr_round_trips_flags_and_rounding_mode() {
    // csrrwi x0, frm, 3 ; csrrsi x0, fflags, 5 ; csrrs x1, fcsr, x0 ; ecall
    let csr = |f3: u32, rd: u32, rs1: u32, csr: u32| (csr << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | 0x73;
    let (cpu, _, _) = run(&[csr(5, 0, 3, 2), csr(6, 0, 5, 1), csr(2, 1, 0, 3), ECALL], |_| {});
    assert_eq!(cpu.reg(1), (3 << 5) | 5);
    // Writing the read-only cycle counter is illegal.
    let (_, exit, _) = run(&[csr(1, 0, 1, 0xc00), ECALL], |_| {});
    assert_eq!(exit, Exit::Illegal);
}
