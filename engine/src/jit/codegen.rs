//! Translation of a region to Cranelift IR.
//!
//! Shape of the generated function:
//!
//! ```text
//! entry:        load the guest registers the region reads into variables; jump to the entry block
//! guest blocks: one Cranelift block per guest block; internal edges are jumps (a loop's head
//!               first checks `attention`); every way out of the region is a stub of its own
//! exit stub:    store cpu.instret; then store cpu.pc and return an exit code, or, where the
//!               guest continues at a pc outside the region, jump to
//! chain(pc, instret):
//!               unless attention is set or the slice is spent, look pc up in the region
//!               table and tail-call the region found there; otherwise store cpu.pc and
//!               return EXIT_NEXT
//! ```
//!
//! Guest registers live in Cranelift variables, and `cpu` is kept current behind them where the
//! guest state can be observed. A written register is stored before the next guest store or AMO
//! and at every exit (only its last value is). A load, ALU or floating-point instruction can run
//! twice without the guest noticing (fflags accrue), so a load that faults, or a check that
//! fails, leaves at the *restart point*: the last point where `cpu` held the whole guest state
//! with no store or AMO since, and the interpreter runs from there. With guarded memory that
//! point may be blocks, or loop iterations, back (`Flow`), so a loop that only loads keeps its
//! registers in host registers and stores them once, on the way out, as a loop of plain
//! arithmetic does; where the ways into a block that loads leave different restart points, its
//! predecessors store everything at their end. The retired-instruction count is kept the same
//! way: counted in a variable, stored to `cpu.instret` at exits, stores and where a block makes
//! `cpu` current.
//!
//! Stubs are emitted after the branches that reach them, and every block is sealed as soon as
//! its last predecessor is known, so the SSA builder only makes block parameters at real merge
//! points (loop headers).
//!
//! Semantics match the interpreter exactly (interp/exec.rs): division results from the M
//! extension's table rather than host traps, W ops on 32 bits then sign extension, and
//! floating-point instructions executed by the interpreter's own code through one helper,
//! except where an inline host instruction provably gives the same result and flags
//! (`fpfast`).
#![expect(
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap,
    clippy::cast_sign_loss,
    reason = "guest immediates and pcs are reinterpreted between signed and unsigned as RISC-V defines"
)]

mod fpfast;

use std::collections::{HashMap, HashSet};
use std::mem::offset_of;

use cranelift_codegen::control::ControlPlane;
use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::types::{F64, I8, I16, I32, I64};
use cranelift_codegen::ir::{
    AbiParam, Block, BlockArg, InstBuilder, MemFlagsData as MemFlags, SigRef, Signature, StackSlot, StackSlotData,
    StackSlotKind, TrapCode, Value,
};
use cranelift_codegen::isa::{CallConv, TargetIsa};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext, Variable};

use super::region::{End, Region};
use super::{EXIT_ATTENTION, EXIT_INTERPRET, EXIT_NEXT, Env, Slot, TABLE_SLOTS};
use crate::interp::Cpu;
use crate::mem::{GUEST_SPACE, PAGE_SHIFT, PAGE_SIZE, perm};
use crate::rv64::fp::{Rounding, flags};
use crate::rv64::{Inst, Op};

/// Why a region could not be compiled.
#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    /// The host is not supported or a setting was refused.
    #[error("cannot set up the code generator: {0}")]
    Setup(String),
    /// Cranelift rejected the function.
    #[error("code generation failed: {0}")]
    Codegen(String),
    /// The code needs relocation, which compiled regions must not.
    #[error("compiled code is not position independent")]
    NotPositionIndependent,
    /// Executable memory could not be had.
    #[error("cannot map executable memory")]
    Memory(#[source] std::io::Error),
}

/// A floating-point helper: `(cpu, rounding mode, a, b, c) -> destination value`.
pub(super) type FpFn = extern "C" fn(*mut Cpu, u64, u64, u64, u64) -> u64;

/// Computes floating-point op `OP` with the interpreter's definition (`interp::fp_compute`),
/// specialised for the op so no dispatch remains. `rm` is a valid rounding mode (compiled code
/// resolves the dynamic one and leaves reserved ones to the interpreter). Accrued exception flags
/// are ORed into `cpu.fflags`.
extern "C" fn fp_op<const OP: u8>(cpu: *mut Cpu, rm: u64, a: u64, b: u64, c: u64) -> u64 {
    let (Some(op), Some(rm)) = (Op::from_u8(OP), Rounding::from_bits(rm as u8 & 7)) else {
        return 0;
    };
    #[cfg(test)]
    FP_HELPER_CALLS.with(|n| n.set(n.get() + 1));
    let mut fl = 0;
    let v = crate::interp::fp_compute(op, a, b, c, rm, &mut fl);
    if fl != 0 {
        // SAFETY: compiled code passes the `cpu` it was called with, a live, exclusive `&mut Cpu`
        // for the whole call (see `Code::run`); only the flags byte is touched.
        unsafe { (*cpu).fflags |= fl };
    }
    v
}

#[cfg(test)]
thread_local! {
    /// Floating-point helper calls made on this thread, so tests can tell fast paths ran.
    pub(super) static FP_HELPER_CALLS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// One specialised helper per op, indexed by the op's discriminant.
pub(super) static FP_TABLE: [FpFn; Op::COUNT as usize] = [
    fp_op::<0>,
    fp_op::<1>,
    fp_op::<2>,
    fp_op::<3>,
    fp_op::<4>,
    fp_op::<5>,
    fp_op::<6>,
    fp_op::<7>,
    fp_op::<8>,
    fp_op::<9>,
    fp_op::<10>,
    fp_op::<11>,
    fp_op::<12>,
    fp_op::<13>,
    fp_op::<14>,
    fp_op::<15>,
    fp_op::<16>,
    fp_op::<17>,
    fp_op::<18>,
    fp_op::<19>,
    fp_op::<20>,
    fp_op::<21>,
    fp_op::<22>,
    fp_op::<23>,
    fp_op::<24>,
    fp_op::<25>,
    fp_op::<26>,
    fp_op::<27>,
    fp_op::<28>,
    fp_op::<29>,
    fp_op::<30>,
    fp_op::<31>,
    fp_op::<32>,
    fp_op::<33>,
    fp_op::<34>,
    fp_op::<35>,
    fp_op::<36>,
    fp_op::<37>,
    fp_op::<38>,
    fp_op::<39>,
    fp_op::<40>,
    fp_op::<41>,
    fp_op::<42>,
    fp_op::<43>,
    fp_op::<44>,
    fp_op::<45>,
    fp_op::<46>,
    fp_op::<47>,
    fp_op::<48>,
    fp_op::<49>,
    fp_op::<50>,
    fp_op::<51>,
    fp_op::<52>,
    fp_op::<53>,
    fp_op::<54>,
    fp_op::<55>,
    fp_op::<56>,
    fp_op::<57>,
    fp_op::<58>,
    fp_op::<59>,
    fp_op::<60>,
    fp_op::<61>,
    fp_op::<62>,
    fp_op::<63>,
    fp_op::<64>,
    fp_op::<65>,
    fp_op::<66>,
    fp_op::<67>,
    fp_op::<68>,
    fp_op::<69>,
    fp_op::<70>,
    fp_op::<71>,
    fp_op::<72>,
    fp_op::<73>,
    fp_op::<74>,
    fp_op::<75>,
    fp_op::<76>,
    fp_op::<77>,
    fp_op::<78>,
    fp_op::<79>,
    fp_op::<80>,
    fp_op::<81>,
    fp_op::<82>,
    fp_op::<83>,
    fp_op::<84>,
    fp_op::<85>,
    fp_op::<86>,
    fp_op::<87>,
    fp_op::<88>,
    fp_op::<89>,
    fp_op::<90>,
    fp_op::<91>,
    fp_op::<92>,
    fp_op::<93>,
    fp_op::<94>,
    fp_op::<95>,
    fp_op::<96>,
    fp_op::<97>,
    fp_op::<98>,
    fp_op::<99>,
    fp_op::<100>,
    fp_op::<101>,
    fp_op::<102>,
    fp_op::<103>,
    fp_op::<104>,
    fp_op::<105>,
    fp_op::<106>,
    fp_op::<107>,
    fp_op::<108>,
    fp_op::<109>,
    fp_op::<110>,
    fp_op::<111>,
    fp_op::<112>,
    fp_op::<113>,
    fp_op::<114>,
    fp_op::<115>,
    fp_op::<116>,
    fp_op::<117>,
    fp_op::<118>,
    fp_op::<119>,
    fp_op::<120>,
    fp_op::<121>,
    fp_op::<122>,
    fp_op::<123>,
    fp_op::<124>,
    fp_op::<125>,
    fp_op::<126>,
    fp_op::<127>,
    fp_op::<128>,
    fp_op::<129>,
    fp_op::<130>,
    fp_op::<131>,
    fp_op::<132>,
    fp_op::<133>,
    fp_op::<134>,
    fp_op::<135>,
    fp_op::<136>,
    fp_op::<137>,
    fp_op::<138>,
    fp_op::<139>,
    fp_op::<140>,
    fp_op::<141>,
    fp_op::<142>,
    fp_op::<143>,
    fp_op::<144>,
    fp_op::<145>,
    fp_op::<146>,
    fp_op::<147>,
    fp_op::<148>,
    fp_op::<149>,
    fp_op::<150>,
    fp_op::<151>,
    fp_op::<152>,
    fp_op::<153>,
    fp_op::<154>,
    fp_op::<155>,
    fp_op::<156>,
];

/// Which registers an instruction reads and writes (bit masks over x0..x31 and f0..f31).
#[derive(Clone, Copy, Default)]
struct Uses {
    xr: u32,
    xw: u32,
    fr: u32,
    fw: u32,
}

fn bit(r: u8) -> u32 {
    if r < 32 { 1 << r } else { 0 }
}

fn uses(inst: &Inst) -> Uses {
    use Op::*;
    let (rd, rs1, rs2, rs3) = (inst.rd, inst.rs1, inst.rs2, inst.rs3);
    let mut u = Uses::default();
    match inst.op {
        Lui | Auipc | Jal => u.xw = bit(rd),
        Jalr | Lb | Lh | Lw | Ld | Lbu | Lhu | Lwu | Addi | Slti | Sltiu | Xori | Ori | Andi | Slli | Srli | Srai
        | Addiw | Slliw | Srliw | Sraiw => {
            u.xr = bit(rs1);
            u.xw = bit(rd);
        }
        Beq | Bne | Blt | Bge | Bltu | Bgeu | Sb | Sh | Sw | Sd => u.xr = bit(rs1) | bit(rs2),
        Flw | Fld => {
            u.xr = bit(rs1);
            u.fw = bit(rd);
        }
        Fsw | Fsd => {
            u.xr = bit(rs1);
            u.fr = bit(rs2);
        }
        Fence => {}
        op if op.is_fp_compute() => {
            let int_src =
                matches!(op, FcvtSW | FcvtSWu | FcvtSL | FcvtSLu | FmvWX | FcvtDW | FcvtDWu | FcvtDL | FcvtDLu | FmvDX);
            let int_dst = crate::interp::writes_xreg(op);
            if int_src {
                u.xr = bit(rs1);
            } else {
                u.fr = bit(rs1) | bit(rs2) | bit(rs3);
            }
            if int_dst {
                u.xw = bit(rd);
            } else {
                u.fw = bit(rd);
            }
        }
        _ => {
            u.xr = bit(rs1) | bit(rs2);
            u.xw = bit(rd);
        }
    }
    u.xr &= !1;
    u.xw &= !1;
    u
}

/// Whether `inst` rounds as `frm` says (checked once, at the region's entry).
fn uses_dynamic_rounding(inst: &Inst) -> bool {
    inst.op.is_fp_compute() && inst.rm == 7 && crate::interp::uses_rm(inst.op)
}

/// Bit masks over the integer and the floating-point registers.
type Masks = (u32, u32);

/// A point where `cpu` held the whole guest state: its guest pc and the instructions of its guest
/// block before it, which `cpu.instret` does not count (a trap site's `pc` and `done`).
type Point = (u64, u64);

/// The restart point known where a guest block is entered, over every way into it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Restart {
    /// No way in seen yet.
    Unknown,
    /// Every way in left `cpu` at this point, and nothing since may not run again.
    At(Point),
    /// Ways in disagree.
    Mixed,
}

impl Restart {
    fn meet(self, other: Restart) -> Restart {
        match (self, other) {
            (Restart::Unknown, r) | (r, Restart::Unknown) => r,
            (Restart::At(a), Restart::At(b)) if a == b => self,
            _ => Restart::Mixed,
        }
    }
}

/// Where a region's guest blocks leave registers in host registers only.
///
/// A load that faults (or a check that refuses it) leaves at a *restart point*, where `cpu`
/// held the whole guest state and since which nothing ran that may not run again (no store, no
/// AMO): the interpreter runs from there. A store or AMO makes `cpu` current before it (it may
/// fault itself) and is a restart point after it. Every other block stores nothing on the way
/// out, and exits store what the flow says may be unstored where they leave.
///
/// With guarded memory a restart point may lie in an earlier block, even in an earlier
/// iteration of a loop: a loop that only loads keeps its registers in host registers and
/// restarts, if it faults, from where the region was entered, the interpreter *replaying*
/// the iterations since (`TrapSite::replay`). Only a block with a load whose ways in leave
/// different restart points has its predecessors make `cpu` current at their end, where the
/// values are computed (storing at the block's start instead would keep them live into it,
/// across a loop's back-edge); it is then entered *fresh*, with `cpu` current. Checked memory
/// (whose failed checks leave through the block's stub, replaying nothing) does that for every
/// block that accesses memory.
struct Flow {
    /// Blocks with a successor that needs `cpu` current: they make it current at their end.
    current_at_end: HashMap<u64, bool>,
    /// The restart point where each block is entered.
    restart_in: HashMap<u64, Point>,
    /// Blocks entered with `cpu` current (every predecessor made it current, or the region's
    /// entry): their restart point is their start, and `cpu.instret` counts up to it.
    fresh: HashMap<u64, bool>,
    /// The registers possibly unstored where each block is entered.
    unstored_in: HashMap<u64, Masks>,
}

impl Flow {
    fn of(region: &Region, guarded: bool) -> Flow {
        let preds = region.predecessors();
        // Blocks whose loads need one restart point on every way in, and where each block's
        // last store or AMO is (the restart point after it).
        let needs_point: HashMap<u64, bool> = region
            .blocks
            .iter()
            .map(|(&pc, b)| {
                let first_write = b.insts.iter().position(|i| is_store_or_amo(i.op)).unwrap_or(b.insts.len());
                let loads = b.insts[..first_write].iter().any(|i| is_memory_access(i.op));
                (pc, if guarded { loads } else { b.insts.iter().any(|i| is_memory_access(i.op)) })
            })
            .collect();
        let after_write: HashMap<u64, Option<Point>> = region
            .blocks
            .iter()
            .map(|(&pc, b)| {
                let (mut at, mut last) = (pc, None);
                for (i, inst) in b.insts.iter().enumerate() {
                    at = at.wrapping_add(u64::from(inst.len));
                    if is_store_or_amo(inst.op) {
                        last = Some((at, i as u64 + 1));
                    }
                }
                (pc, last)
            })
            .collect();
        let mut current_at_end: HashMap<u64, bool> = region.blocks.keys().map(|&pc| (pc, false)).collect();
        if !guarded {
            for (pc, _) in needs_point.iter().filter(|&(_, &n)| n) {
                for p in preds.get(pc).into_iter().flatten() {
                    current_at_end.insert(*p, true);
                }
            }
        }
        // Restart points to the fixed point; where a block that needs one gets several, its
        // predecessors make `cpu` current at their end, and the points are found again.
        let restart = loop {
            let mut restart: HashMap<u64, Restart> = region.blocks.keys().map(|&pc| (pc, Restart::Unknown)).collect();
            restart.insert(region.entry, Restart::At((region.entry, 0)));
            loop {
                let mut changed = false;
                for (&pc, blk) in &region.blocks {
                    for s in blk.successors(pc) {
                        let out = if current_at_end[&pc] {
                            Restart::At((s, 0))
                        } else if let Some(point) = after_write[&pc] {
                            Restart::At(point)
                        } else {
                            restart[&pc]
                        };
                        if let Some(into) = restart.get_mut(&s) {
                            let merged = into.meet(out);
                            if merged != *into {
                                *into = merged;
                                changed = true;
                            }
                        }
                    }
                }
                if !changed {
                    break;
                }
            }
            let mut grew = false;
            for (&pc, &r) in &restart {
                if r == Restart::Mixed && needs_point[&pc] {
                    for p in &preds[&pc] {
                        grew |= !current_at_end.insert(*p, true).unwrap_or(true);
                    }
                }
            }
            if !grew {
                break restart;
            }
        };
        let fresh: HashMap<u64, bool> = region
            .blocks
            .keys()
            .map(|&pc| {
                let made_current = preds.get(&pc).into_iter().flatten().all(|p| current_at_end[p]);
                (pc, made_current)
            })
            .collect();
        let restart_in =
            restart.into_iter().map(|(pc, r)| (pc, if let Restart::At(point) = r { point } else { (pc, 0) })).collect();
        // What each block writes, and what it writes after its last store or AMO (before which
        // the translator stores everything; an AMO's result is stored right after it).
        let writes: HashMap<u64, (Masks, Masks)> = region
            .blocks
            .iter()
            .map(|(&pc, b)| {
                let (mut all, mut after) = ((0, 0), (0, 0));
                for inst in &b.insts {
                    let u = uses(inst);
                    all = (all.0 | u.xw, all.1 | u.fw);
                    after = if is_store_or_amo(inst.op) { (0, 0) } else { (after.0 | u.xw, after.1 | u.fw) };
                }
                (pc, (all, after))
            })
            .collect();
        let mut unstored_in: HashMap<u64, Masks> = region.blocks.keys().map(|&pc| (pc, (0, 0))).collect();
        loop {
            let mut changed = false;
            for (&pc, blk) in &region.blocks {
                let (all, after) = writes[&pc];
                let out = if current_at_end[&pc] {
                    (0, 0)
                } else if after_write[&pc].is_some() {
                    after
                } else {
                    let (ix, i_f) = unstored_in[&pc];
                    (ix | all.0, i_f | all.1)
                };
                for s in blk.successors(pc) {
                    if let Some(into) = unstored_in.get_mut(&s) {
                        let merged = (into.0 | out.0, into.1 | out.1);
                        if merged != *into {
                            *into = merged;
                            changed = true;
                        }
                    }
                }
            }
            if !changed {
                return Flow { current_at_end, restart_in, fresh, unstored_in };
            }
        }
    }

    /// The registers whose value at the region's entry some path uses: read before it is
    /// written, or stored to `cpu` while unwritten. A block stores what it is entered with
    /// unstored (`unstored_in`, which on some other way in may be the entry value) at its
    /// first store, AMO or exit, unless it wrote it before: a loop that only loads rewrites
    /// its registers before it can leave, so their entry values are not loaded.
    fn live_at_entry(&self, region: &Region) -> Masks {
        // Per block: what it uses before writing it, and what it writes.
        let local: HashMap<u64, (Masks, Masks)> = region
            .blocks
            .iter()
            .map(|(&pc, b)| {
                let unstored = self.unstored_in[&pc];
                let (mut used, mut written, mut stored) = ((0, 0), (0, 0), false);
                for inst in &b.insts {
                    let u = uses(inst);
                    used = (used.0 | (u.xr & !written.0), used.1 | (u.fr & !written.1));
                    // Where the block may store (a floating-point op with a reserved static
                    // rounding mode leaves the region).
                    if !stored && (is_store_or_amo(inst.op) || inst.op.is_fp_compute()) {
                        used = (used.0 | (unstored.0 & !written.0), used.1 | (unstored.1 & !written.1));
                        stored = true;
                    }
                    written = (written.0 | u.xw, written.1 | u.fw);
                }
                if !stored {
                    used = (used.0 | (unstored.0 & !written.0), used.1 | (unstored.1 & !written.1));
                }
                (pc, (used, written))
            })
            .collect();
        let mut live_in: HashMap<u64, Masks> = local.iter().map(|(&pc, &(used, _))| (pc, used)).collect();
        loop {
            let mut changed = false;
            for (&pc, blk) in &region.blocks {
                let out = blk
                    .successors(pc)
                    .iter()
                    .filter_map(|s| live_in.get(s))
                    .fold((0, 0), |acc, l| (acc.0 | l.0, acc.1 | l.1));
                let (used, written) = local[&pc];
                let live = (used.0 | (out.0 & !written.0), used.1 | (out.1 & !written.1));
                if live != live_in[&pc] {
                    live_in.insert(pc, live);
                    changed = true;
                }
            }
            if !changed {
                return live_in[&region.entry];
            }
        }
    }
}

const X_OFF: i32 = offset_of!(Cpu, x) as i32;
const F_OFF: i32 = offset_of!(Cpu, f) as i32;
const PC_OFF: i32 = offset_of!(Cpu, pc) as i32;
const INSTRET_OFF: i32 = offset_of!(Cpu, instret) as i32;
const FRM_OFF: i32 = offset_of!(Cpu, frm) as i32;
const FFLAGS_OFF: i32 = offset_of!(Cpu, fflags) as i32;
const ARENA_OFF: i32 = offset_of!(Env, arena) as i32;
const PERMS_OFF: i32 = offset_of!(Env, perms) as i32;
const PAGES_OFF: i32 = offset_of!(Env, pages) as i32;
const ATTENTION_OFF: i32 = offset_of!(Env, attention) as i32;
const FP_TABLE_OFF: i32 = offset_of!(Env, fp_table) as i32;
const FP_THUNK_OFF: i32 = offset_of!(Env, fp_thunk) as i32;
const TABLE_OFF: i32 = offset_of!(Env, table) as i32;
const LIMIT_OFF: i32 = offset_of!(Env, limit) as i32;
const SLOT_CODE_OFF: i32 = offset_of!(Slot, code) as i32;

/// The signature of a compiled region: `(cpu, env) -> exit code` with the `tail` convention.
fn region_signature(isa: &dyn TargetIsa) -> Signature {
    let ptr = isa.pointer_type();
    let mut sig = Signature::new(CallConv::Tail);
    sig.params.push(AbiParam::new(ptr));
    sig.params.push(AbiParam::new(ptr));
    sig.returns.push(AbiParam::new(I32));
    sig
}

/// Compiles the host's entry into compiled code: `extern "C" fn(cpu, env, code) -> u32` calls
/// the region at `code` and returns its exit code.
pub(super) fn trampoline(
    isa: &dyn TargetIsa,
    ctx: &mut cranelift_codegen::Context,
    fctx: &mut FunctionBuilderContext,
) -> Result<Vec<u8>, CompileError> {
    let ptr = isa.pointer_type();
    let mut sig = Signature::new(isa.default_call_conv());
    sig.params.extend([AbiParam::new(ptr), AbiParam::new(ptr), AbiParam::new(ptr)]);
    sig.returns.push(AbiParam::new(I32));
    compile_stub(isa, ctx, fctx, sig, |b, p| {
        let region_sig = b.import_signature(region_signature(isa));
        let call = b.ins().call_indirect(region_sig, p[2], &[p[0], p[1]]);
        let code = b.inst_results(call)[0];
        b.ins().return_(&[code]);
    })
}

/// Compiles a function of one block with signature `sig`, which `body` fills from the
/// function's parameters.
fn compile_stub(
    isa: &dyn TargetIsa,
    ctx: &mut cranelift_codegen::Context,
    fctx: &mut FunctionBuilderContext,
    sig: Signature,
    body: impl FnOnce(&mut FunctionBuilder, &[Value]),
) -> Result<Vec<u8>, CompileError> {
    ctx.clear();
    ctx.func.signature = sig;
    {
        let mut b = FunctionBuilder::new(&mut ctx.func, fctx);
        let entry = b.create_block();
        b.append_block_params_for_function_params(entry);
        b.switch_to_block(entry);
        let p = b.block_params(entry).to_vec();
        body(&mut b, &p);
        b.seal_all_blocks();
        b.finalize(isa.frontend_config());
    }
    finish(isa, ctx)
}

/// A floating-point helper's signature ([`FpFn`]), the host C ABI.
fn fp_helper_signature(isa: &dyn TargetIsa) -> Signature {
    let mut sig = Signature::new(isa.default_call_conv());
    sig.params.push(AbiParam::new(isa.pointer_type()));
    sig.params.extend([AbiParam::new(I64); 4]);
    sig.returns.push(AbiParam::new(I64));
    sig
}

/// How compiled code calls a floating-point helper: through [`fp_thunk`], `(call, helper)`,
/// which keeps every register. `call` points to the helper's arguments and room for its
/// result ([`FP_CALL_BYTES`]).
fn fp_thunk_signature(isa: &dyn TargetIsa) -> Signature {
    let mut sig = Signature::new(CallConv::PreserveAll);
    sig.params.extend([AbiParam::new(isa.pointer_type()); 2]);
    sig
}

/// A helper call's arguments (`cpu, rm, a, b, c`, 8 bytes each) and then its result (at
/// [`FP_RESULT_OFF`]), as [`fp_thunk`] takes them.
const FP_CALL_BYTES: u32 = 6 * 8;
const FP_RESULT_OFF: i32 = 5 * 8;

/// Compiles the way compiled code calls floating-point helpers: `fp_thunk(call, helper)` calls
/// `helper` with the five arguments at `call`, stores its result after them, and leaves every
/// register as it was. The host C ABI lets a call clobber every floating-point register, so
/// calling the helpers directly would make a region keep its floating-point values (guest
/// registers live in host ones, `Translator::fr_float`) in memory wherever a helper call may
/// follow, even on its fast paths; the thunk saves and restores them on the helper's slow path
/// instead. (Cranelift's convention that keeps every register returns nothing: hence the result
/// in memory.)
pub(super) fn fp_thunk(
    isa: &dyn TargetIsa,
    ctx: &mut cranelift_codegen::Context,
    fctx: &mut FunctionBuilderContext,
) -> Result<Vec<u8>, CompileError> {
    compile_stub(isa, ctx, fctx, fp_thunk_signature(isa), |b, p| {
        let helper_sig = b.import_signature(fp_helper_signature(isa));
        let (call, helper) = (p[0], p[1]);
        let args: Vec<Value> = (0..5).map(|i| b.ins().load(I64, trusted(), call, 8 * i)).collect();
        let result = b.ins().call_indirect(helper_sig, helper, &args);
        let v = b.inst_results(result)[0];
        b.ins().store(trusted(), v, call, FP_RESULT_OFF);
        b.ins().return_(&[]);
    })
}

fn finish(isa: &dyn TargetIsa, ctx: &mut cranelift_codegen::Context) -> Result<Vec<u8>, CompileError> {
    let code =
        ctx.compile(isa, &mut ControlPlane::default()).map_err(|e| CompileError::Codegen(format!("{:?}", e.inner)))?;
    if !code.buffer.relocs().is_empty() {
        return Err(CompileError::NotPositionIndependent);
    }
    Ok(code.code_buffer().to_vec())
}

/// How compiled code keeps guest memory accesses within the guest's permissions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemoryModel {
    /// Every access checks the page table inline and leaves for the interpreter where the check
    /// fails (any host).
    Checked,
    /// Accesses go straight to the arena (the base checked against `GUEST_SPACE`) and the host
    /// MMU refuses what the guest may not do; `fault` turns the host fault into guest state
    /// through the region's trap sites. Needs [`super::fault::SUPPORTED`].
    Guarded,
}

/// Guest integer registers a region may use and still keep them all in host registers: x86-64
/// has 14 allocatable, less `cpu`, `env` and a couple of temporaries (hosts with more registers
/// only load a little more than they must). A region using more loads the registers it never
/// writes where it reads them ([`Translator::invariant`]).
const HOST_REGS_FOR_GUEST: u32 = 8;

/// Most guarded accesses in one region: each gets its own Cranelift trap code, and user codes
/// are one byte. A region with more is compiled [`MemoryModel::Checked`].
const MAX_TRAP_SITES: usize = 249;

/// A guest access in compiled code that may fault on the host: where it is in the code, and the
/// guest state it stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrapSite {
    /// Offset of the host instruction from the start of the region's code.
    pub offset: u32,
    /// Guest pc of the restart point: the access itself (stores, AMOs) or the last point
    /// before it where `cpu` held the whole guest state (`Flow`).
    pub pc: u64,
    /// Instructions of the restart point's guest block before it (not yet in `cpu.instret`).
    pub done: u32,
    /// Whether the restart point lies before the access's own guest block, possibly in an
    /// earlier iteration of a loop: the interpreter replays everything up to the access.
    pub replay: bool,
}

/// A compiled region: its machine code and its trap sites, sorted by offset.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MachineCode {
    /// Host machine code, entered at its first byte.
    pub code: Vec<u8>,
    /// Where guarded accesses may fault (empty for checked code).
    pub traps: Vec<TrapSite>,
}

/// Compiles `region` and returns the machine code.
pub(super) fn compile(
    isa: &dyn TargetIsa,
    ctx: &mut cranelift_codegen::Context,
    fctx: &mut FunctionBuilderContext,
    region: &Region,
    model: MemoryModel,
) -> Result<MachineCode, CompileError> {
    let accesses = region.blocks.values().flat_map(|b| &b.insts).filter(|i| is_memory_access(i.op)).count();
    let model = if accesses > MAX_TRAP_SITES { MemoryModel::Checked } else { model };
    ctx.clear();
    ctx.func.signature = region_signature(isa);
    let sites;
    {
        let mut b = FunctionBuilder::new(&mut ctx.func, fctx);
        let fp_sig = b.import_signature(fp_thunk_signature(isa));
        let region_sig = b.import_signature(region_signature(isa));
        let guarded = model == MemoryModel::Guarded;
        let mut t = Translator::new(&mut b, region, fp_sig, region_sig, fpfast::native_fma(isa), guarded);
        t.translate();
        sites = std::mem::take(&mut t.sites);
        b.seal_all_blocks();
        b.finalize(isa.frontend_config());
    }
    tracing::debug!(
        entry = format_args!("{:#x}", region.entry),
        guest_insts = region.instruction_count(),
        guest_blocks = region.blocks.len(),
        ir_insts = ctx.func.dfg.num_insts(),
        ir_blocks = ctx.func.dfg.num_blocks(),
        "compiling region"
    );
    tracing::trace!("{}", ctx.func.display());
    let compiled =
        ctx.compile(isa, &mut ControlPlane::default()).map_err(|e| CompileError::Codegen(format!("{:?}", e.inner)))?;
    if !compiled.buffer.relocs().is_empty() {
        return Err(CompileError::NotPositionIndependent);
    }
    let mut traps: Vec<TrapSite> = compiled
        .buffer
        .traps()
        .iter()
        .filter_map(|t| {
            let i = usize::from(t.code.as_raw().get()).checked_sub(1)?;
            let &(pc, done, replay) = sites.get(i)?;
            Some(TrapSite { offset: t.offset, pc, done, replay })
        })
        .collect();
    traps.sort_by_key(|t| t.offset);
    Ok(MachineCode { code: compiled.code_buffer().to_vec(), traps })
}

/// Whether `op` writes guest memory: the translator stores the registers before it.
fn is_store_or_amo(op: Op) -> bool {
    is_memory_access(op)
        && !matches!(op, Op::Lb | Op::Lh | Op::Lw | Op::Ld | Op::Lbu | Op::Lhu | Op::Lwu | Op::Flw | Op::Fld)
}

/// Whether `op` reads or writes guest memory (a trap site in guarded code).
fn is_memory_access(op: Op) -> bool {
    use Op::*;
    matches!(
        op,
        Lb | Lh
            | Lw
            | Ld
            | Lbu
            | Lhu
            | Lwu
            | Flw
            | Fld
            | Sb
            | Sh
            | Sw
            | Sd
            | Fsw
            | Fsd
            | AmoswapW
            | AmoaddW
            | AmoxorW
            | AmoandW
            | AmoorW
            | AmominW
            | AmomaxW
            | AmominuW
            | AmomaxuW
            | AmoswapD
            | AmoaddD
            | AmoxorD
            | AmoandD
            | AmoorD
            | AmominD
            | AmomaxD
            | AmominuD
            | AmomaxuD
    )
}

struct Translator<'a, 'b> {
    b: &'a mut FunctionBuilder<'b>,
    region: &'a Region,
    cpu: Value,
    env: Value,
    x: [Variable; 32],
    f: [Variable; 32],
    chain: Block,
    blocks: HashMap<u64, Block>,
    /// Branches into each guest block not yet emitted; the block is sealed when it reaches 0.
    preds_left: HashMap<u64, usize>,
    /// Guest blocks that a loop inside the region closes on (targets of back-edges): each
    /// starts with the attention check.
    loop_heads: HashSet<u64>,
    /// Internal targets of the guest block being translated.
    edges_out: Vec<u64>,
    /// Blocks whose contents wait until the branches into them exist.
    pending: Vec<Pending>,
    /// The current guest block's exit to the interpreter, once it has one.
    interpret_stub: Option<Block>,
    /// The last point (pc, instructions of its guest block before it) where `cpu` held the
    /// whole guest state and since which nothing ran that may not run again (no store, no
    /// AMO): a load that faults, or any check that fails, stops there and the interpreter
    /// repeats what followed.
    restart: Point,
    /// Whether `restart` lies before the current guest block (`Flow`): faults there replay.
    carried: bool,
    /// Whether `cpu.instret` is behind the count where the current guest block started (it was
    /// entered with a carried restart point): the first store or AMO stores it.
    instret_stale: bool,
    /// Registers written since they were last stored to `cpu` (bit masks): stored at the next
    /// point where the guest state can be observed.
    dirty_x: u32,
    dirty_f: u32,
    /// Where guest blocks store what their predecessors left unstored.
    flow: Flow,
    /// Whether the current guest block makes `cpu` current at its end (`Flow::current_at_end`).
    current_at_end: bool,
    /// The guest's retired-instruction count (an I64 variable), ahead of `cpu.instret` where
    /// `cpu` is not current.
    instret: Variable,
    /// Whether `cpu.fflags` has NX (an I8 boolean variable), which floating-point fast paths
    /// test: read once at the region's entry and again after each helper call, the only code
    /// in a region that changes the flags. Flags only accrue there, so it never goes stale in
    /// the unsafe direction.
    nx: Variable,
    /// NX, and the dynamic rounding mode `frm` is RNE (an I8 boolean variable, kept as `nx`
    /// is; `frm` cannot change within a region): what a fast path of an op rounding as `frm`
    /// says needs ([`fpfast::Fast::Guarded`]).
    nx_rne: Variable,
    /// Whether an instruction of the region rounds as `frm` says (`uses_dynamic_rounding`).
    dynamic_rounding: bool,
    /// Integer registers the region reads and never writes, where it uses more than
    /// [`HOST_REGS_FOR_GUEST`] (a bit mask). `cpu` always holds them, so each guest block loads
    /// them where it first reads them instead of keeping them live across the whole region:
    /// hoisted out of a loop, a value is live only through the loops that use it. Floating-point
    /// registers have host registers to spare.
    invariant: u32,
    /// The invariant registers loaded in the current guest block.
    loaded: [Option<Value>; 32],
    /// Values computed once per guest block and reused by its later instructions, which they
    /// dominate (the guest block is straight-line code; its side exits are emitted with the
    /// cache cleared): `Env` fields by offset, and the host address of a guest base register's
    /// value, once checked against the space's end. Cranelift would merge the copies too, but at
    /// a price in compile time.
    block_values: BlockValues,
    fp_sig: SigRef,
    /// Where a helper call's arguments and result go (`fp_thunk`), once the region makes one.
    fp_call_slot: Option<StackSlot>,
    region_sig: SigRef,
    /// Whether `fma` is one host instruction (not a library call, which needs relocation).
    native_fma: bool,
    /// [`MemoryModel::Guarded`]: guest accesses go unchecked to the arena, as trap sites.
    guarded: bool,
    /// The guest (pc, done, replay) of trap code `i + 1`.
    sites: Vec<(u64, u32, bool)>,
}

/// See [`Translator::block_values`].
#[derive(Default)]
struct BlockValues {
    env: Vec<(i32, Value)>,
    /// Base registers checked against the space's end, with their host pointers.
    bases: Vec<(Value, Value)>,
}

/// How the guest leaves a region at an exit stub.
#[derive(Clone, Copy)]
enum Leave {
    /// Return this exit code to the dispatcher.
    Return(u32),
    /// Continue at the pc (outside the region): chain to the region there if there is one.
    Chain,
}

/// A block to fill in once every branch into it is emitted.
enum Pending {
    /// Leave the region for guest `pc`, where the current guest block continues.
    Chain { block: Block, pc: u64 },
    /// The guest block's shared exit to the interpreter, with parameters (pc, instructions of
    /// the block done before it).
    Interpret { block: Block },
}

/// `nx` (an I8 boolean) and `cpu.frm` is RNE.
fn and_rne(b: &mut FunctionBuilder, cpu: Value, nx: Value) -> Value {
    let frm = b.ins().uload8(I32, trusted(), cpu, FRM_OFF);
    let rne = b.ins().icmp_imm_s(IntCC::Equal, frm, i64::from(Rounding::Rne as u8));
    b.ins().band(nx, rne)
}

/// Whether `cpu.fflags` has NX, as an I8 boolean.
fn nx_of(b: &mut FunctionBuilder, cpu: Value) -> Value {
    let fflags = b.ins().uload8(I32, trusted(), cpu, FFLAGS_OFF);
    let nx = b.ins().band_imm_s(fflags, i64::from(flags::NX));
    b.ins().icmp_imm_s(IntCC::NotEqual, nx, 0)
}

fn trusted() -> MemFlags {
    MemFlags::trusted()
}

/// Fields that never change while a region runs (the pointers of `Env`, the rounding mode
/// `cpu.frm`, the registers the region never writes): free to merge and hoist. (Where only a
/// cold block uses one, it is loaded with `trusted` flags there instead: see
/// `Translator::frm_here`.)
fn constant() -> MemFlags {
    MemFlags::trusted().with_readonly().with_can_move()
}

/// Guest memory: little-endian, possibly misaligned, never trapping (checked before).
fn guest_flags() -> MemFlags {
    let mut f = MemFlags::new();
    f.set_notrap();
    f
}

impl<'a, 'b> Translator<'a, 'b> {
    fn new(
        b: &'a mut FunctionBuilder<'b>,
        region: &'a Region,
        fp_sig: SigRef,
        region_sig: SigRef,
        native_fma: bool,
        guarded: bool,
    ) -> Self {
        let x = std::array::from_fn(|_| b.declare_var(I64));
        let f = std::array::from_fn(|_| b.declare_var(F64));
        let entry = b.create_block();
        b.append_block_params_for_function_params(entry);
        b.switch_to_block(entry);
        let params = b.block_params(entry);
        let (cpu, env) = (params[0], params[1]);
        let chain = b.create_block();
        b.append_block_param(chain, I64);
        b.append_block_param(chain, I64);
        let mut blocks = HashMap::new();
        let mut preds_left = HashMap::from([(region.entry, 1)]);
        let mut loop_heads = HashSet::new();
        for (&pc, blk) in &region.blocks {
            blocks.insert(pc, b.create_block());
            for s in blk.successors(pc) {
                if region.blocks.contains_key(&s) {
                    *preds_left.entry(s).or_insert(0) += 1;
                    if s <= pc {
                        loop_heads.insert(s);
                    }
                }
            }
        }
        let mut all = Uses::default();
        for blk in region.blocks.values() {
            for inst in &blk.insts {
                let u = uses(inst);
                all.xr |= u.xr;
                all.xw |= u.xw;
                all.fr |= u.fr;
                all.fw |= u.fw;
            }
        }
        // Every variable gets a definition in the entry block: the guest value for registers
        // live there (read, or stored while unwritten, on some path before they are written;
        // invariant ones are loaded where they are used), zero for the rest, which no path
        // reads. A load nothing uses is still emitted, so only live ones are loaded.
        let invariant = if (all.xr | all.xw).count_ones() > HOST_REGS_FOR_GUEST { all.xr & !all.xw } else { 0 };
        let flow = Flow::of(region, guarded);
        let (live_x, live_f) = flow.live_at_entry(region);
        let zero = b.ins().iconst(I64, 0);
        let instret = b.declare_var(I64);
        let count = b.ins().load(I64, trusted(), cpu, INSTRET_OFF);
        b.def_var(instret, count);
        let nx = b.declare_var(I8);
        let nx_rne = b.declare_var(I8);
        let insts = || region.blocks.values().flat_map(|b| &b.insts);
        let dynamic_rounding = insts().any(uses_dynamic_rounding);
        let (has_nx, has_nx_rne) = if insts().any(|i| i.op.is_fp_compute()) {
            let has_nx = nx_of(b, cpu);
            let has_nx_rne = if dynamic_rounding { and_rne(b, cpu, has_nx) } else { has_nx };
            (has_nx, has_nx_rne)
        } else {
            let no = b.ins().iconst(I8, 0);
            (no, no)
        };
        b.def_var(nx, has_nx);
        b.def_var(nx_rne, has_nx_rne);
        for r in 0..32 {
            let v = if live_x & (1 << r) != 0 && invariant & (1 << r) == 0 && r != 0 {
                b.ins().load(I64, trusted(), cpu, X_OFF + 8 * r as i32)
            } else {
                zero
            };
            b.def_var(x[r], v);
            let v = if live_f & (1 << r) != 0 {
                b.ins().load(F64, trusted(), cpu, F_OFF + 8 * r as i32)
            } else {
                b.ins().f64const(0.0)
            };
            b.def_var(f[r], v);
        }
        b.seal_block(entry);
        Translator {
            b,
            region,
            cpu,
            env,
            x,
            f,
            chain,
            blocks,
            preds_left,
            loop_heads,
            edges_out: Vec::new(),
            pending: Vec::new(),
            interpret_stub: None,
            restart: (region.entry, 0),
            carried: false,
            instret_stale: false,
            dirty_x: 0,
            dirty_f: 0,
            flow,
            current_at_end: false,
            instret,
            nx,
            nx_rne,
            dynamic_rounding,
            invariant,
            loaded: [None; 32],
            block_values: BlockValues::default(),
            fp_sig,
            fp_call_slot: None,
            region_sig,
            native_fma,
            guarded,
            sites: Vec::new(),
        }
    }

    fn translate(&mut self) {
        let first = self.blocks[&self.region.entry];
        if self.dynamic_rounding {
            // frm changes only through CSR instructions, which leave the region, so one check
            // at the entry covers every instruction using it: a reserved mode makes them
            // illegal, which the interpreter raises.
            let frm = self.frm();
            let valid = self.b.ins().icmp_imm_s(IntCC::UnsignedLessThanOrEqual, frm, 4);
            let reserved = self.b.create_block();
            self.b.set_cold_block(reserved);
            self.b.ins().brif(valid, first, &[], reserved, &[]);
            self.b.switch_to_block(reserved);
            self.b.seal_block(reserved);
            let entry = self.b.ins().iconst(I64, self.region.entry as i64);
            self.leave(entry, Leave::Return(EXIT_INTERPRET), 0);
        } else {
            self.b.ins().jump(first, &[]);
        }
        self.reached(self.region.entry);
        let pcs: Vec<u64> = self.region.blocks.keys().copied().collect();
        for pc in pcs {
            self.block(pc);
        }
        self.emit_chain();
    }

    /// One more branch into guest block `pc` exists; seal it when it was the last.
    fn reached(&mut self, pc: u64) {
        if let Some(n) = self.preds_left.get_mut(&pc) {
            *n -= 1;
            if *n == 0 {
                self.b.seal_block(self.blocks[&pc]);
            }
        }
    }

    /// Fills in the blocks waiting for their branches (all emitted by now), then counts the
    /// guest block's internal edges.
    fn finish_block(&mut self) {
        self.block_values = BlockValues::default();
        // Exits after the block's end store what is unstored there.
        let unstored = (self.dirty_x, self.dirty_f);
        while let Some(p) = self.pending.pop() {
            (self.dirty_x, self.dirty_f) = unstored;
            match p {
                Pending::Chain { block, pc } => {
                    self.b.seal_block(block);
                    self.b.switch_to_block(block);
                    let pcv = self.b.ins().iconst(I64, pc as i64);
                    self.leave(pcv, Leave::Chain, 0);
                }
                Pending::Interpret { block } => {
                    self.b.seal_block(block);
                    self.b.switch_to_block(block);
                    // Every way here has `cpu` current at the pc given (the restart point, or
                    // a check that stored first): nothing to store.
                    let params = self.b.block_params(block).to_vec();
                    self.b.ins().store(trusted(), params[0], self.cpu, PC_OFF);
                    self.store_instret(params[1]);
                    let code = self.b.ins().iconst(I32, i64::from(EXIT_INTERPRET));
                    self.b.ins().return_(&[code]);
                }
            }
        }
        self.interpret_stub = None;
        for pc in std::mem::take(&mut self.edges_out) {
            self.reached(pc);
        }
    }

    fn emit_chain(&mut self) {
        self.b.switch_to_block(self.chain);
        self.b.seal_block(self.chain);
        let params = self.b.block_params(self.chain).to_vec();
        let (pc, instret) = (params[0], params[1]);
        let give_up = self.b.create_block();
        let check_limit = self.b.create_block();
        let look_up = self.b.create_block();
        let call = self.b.create_block();
        let p = self.b.ins().load(I64, constant(), self.env, ATTENTION_OFF);
        let att = self.b.ins().load(I32, trusted(), p, 0);
        // Attention also covers a change of code by another thread (`Kernel::code_changed`):
        // the interpreter checks the code generation before it enters compiled code again.
        self.b.ins().brif(att, give_up, &[], check_limit, &[]);

        self.b.switch_to_block(check_limit);
        let limit = self.b.ins().load(I64, constant(), self.env, LIMIT_OFF);
        let spent = self.b.ins().icmp(IntCC::UnsignedGreaterThanOrEqual, instret, limit);
        self.b.ins().brif(spent, give_up, &[], look_up, &[]);

        // The inline target cache: slot = table[(pc >> 1) % TABLE_SLOTS], a hit if its tag is
        // pc ^ 1 (`Slot`).
        self.b.switch_to_block(look_up);
        let table = self.b.ins().load(I64, constant(), self.env, TABLE_OFF);
        let half = self.b.ins().ushr_imm_s(pc, 1);
        let idx = self.b.ins().band_imm_s(half, (TABLE_SLOTS - 1) as i64);
        let off = self.b.ins().imul_imm_s(idx, std::mem::size_of::<Slot>() as i64);
        let slot = self.b.ins().iadd(table, off);
        let tag = self.b.ins().load(I64, trusted(), slot, 0);
        let want = self.b.ins().bxor_imm_s(pc, 1);
        let hit = self.b.ins().icmp(IntCC::Equal, tag, want);
        self.b.ins().brif(hit, call, &[], give_up, &[]);

        self.b.switch_to_block(call);
        let code = self.b.ins().load(I64, trusted(), slot, SLOT_CODE_OFF);
        self.b.ins().return_call_indirect(self.region_sig, code, &[self.cpu, self.env]);

        self.b.switch_to_block(give_up);
        self.b.ins().store(trusted(), pc, self.cpu, PC_OFF);
        let next = self.b.ins().iconst(I32, i64::from(EXIT_NEXT));
        self.b.ins().return_(&[next]);
    }

    /// Stores the registers written since they were last stored, so that `cpu` holds them all:
    /// before every guest store or AMO (it may fault), at every exit and at the end of a block
    /// whose successor needs `cpu` current.
    fn sync(&mut self) {
        for r in 1..32 {
            if self.dirty_x & (1 << r) != 0 {
                let v = self.b.use_var(self.x[r]);
                self.b.ins().store(trusted(), v, self.cpu, X_OFF + 8 * r as i32);
            }
        }
        for r in 0..32 {
            if self.dirty_f & (1 << r) != 0 {
                let v = self.b.use_var(self.f[r]);
                self.b.ins().store(trusted(), v, self.cpu, F_OFF + 8 * r as i32);
            }
        }
        self.dirty_x = 0;
        self.dirty_f = 0;
    }

    /// Makes `cpu` hold the guest state before a store or AMO (which may fault, and which
    /// nothing may repeat): the registers, and the instruction count where the guest block
    /// started if it is behind.
    fn checkpoint(&mut self) {
        self.sync();
        if self.instret_stale {
            let zero = self.b.ins().iconst(I64, 0);
            self.store_instret(zero);
            self.instret_stale = false;
        }
    }

    /// Counts `n` more retired instructions.
    fn retire(&mut self, n: u64) {
        let old = self.b.use_var(self.instret);
        let v = self.b.ins().iadd_imm_s(old, n as i64);
        self.b.def_var(self.instret, v);
    }

    /// Stores the instruction count plus `more` in `cpu.instret`; returns what it stored.
    /// A plain store: loops do not carry a dependency through memory.
    fn store_instret(&mut self, more: Value) -> Value {
        let count = self.b.use_var(self.instret);
        let count = self.b.ins().iadd(count, more);
        self.b.ins().store(trusted(), count, self.cpu, INSTRET_OFF);
        count
    }

    /// Makes `cpu` hold the whole guest state: registers and the instruction count.
    fn make_current(&mut self) {
        self.sync();
        let zero = self.b.ins().iconst(I64, 0);
        self.store_instret(zero);
    }

    /// Leaves the region from the current block: stores what is not stored yet, `pc` and the
    /// instruction count (`done` more instructions of the current block), then returns or chains.
    fn leave(&mut self, pc: Value, leave: Leave, done: u64) {
        self.sync();
        let done = self.b.ins().iconst(I64, done as i64);
        let instret = self.store_instret(done);
        match leave {
            Leave::Return(code) => {
                self.b.ins().store(trusted(), pc, self.cpu, PC_OFF);
                let code = self.b.ins().iconst(I32, i64::from(code));
                self.b.ins().return_(&[code]);
            }
            Leave::Chain => {
                // `cpu.pc` is stored only where the chain stops: a region entered stores its own
                // on every way out (and a fault takes its trap site's).
                self.b.ins().jump(self.chain, &[BlockArg::Value(pc), BlockArg::Value(instret)]);
            }
        }
    }

    /// Leaves the region here with `code` at guest `pc`, after `done` more instructions of the
    /// current block; what follows in this guest block is unreachable.
    fn exit_now(&mut self, pc: u64, code: u32, done: u64) {
        let pcv = self.b.ins().iconst(I64, pc as i64);
        self.leave(pcv, Leave::Return(code), done);
        let dead = self.b.create_block();
        self.b.switch_to_block(dead);
        self.b.seal_block(dead);
    }

    /// A block that continues at guest `pc`, outside the region.
    fn chain_block(&mut self, pc: u64) -> Block {
        let block = self.b.create_block();
        self.pending.push(Pending::Chain { block, pc });
        block
    }

    /// Where control goes to reach guest pc `target`.
    fn edge(&mut self, target: u64) -> Block {
        let Some(dest) = self.blocks.get(&target).copied() else { return self.chain_block(target) };
        self.edges_out.push(target);
        dest
    }

    /// The start of a loop's head block at guest `pc`: a loop spinning here must still notice
    /// `attention`, and must load guest memory afresh on every iteration (a spin-wait has to
    /// see another thread's store), so no guest load may be merged or moved across this
    /// point. The word's address never changes, so that load is hoisted out of the loop and
    /// `env` need not stay live through it. Checked at the head rather than on the
    /// back-edge, the loop's closing branch jumps straight back. (On the back-edge, the check's
    /// way out needs every unstored register where the loop has spilled some, and the register
    /// allocator reloads and re-spills them on every iteration: XXH64's loop ran 1.5 times as
    /// long.)
    fn attention_check(&mut self, pc: u64) {
        self.b.ins().sequence_point();
        let p = self.b.ins().load(I64, constant(), self.env, ATTENTION_OFF);
        let att = self.b.ins().load(I32, trusted(), p, 0);
        let stop = self.b.create_block();
        self.b.set_cold_block(stop);
        let body = self.b.create_block();
        self.b.ins().brif(att, stop, &[], body, &[]);
        self.b.switch_to_block(stop);
        self.b.seal_block(stop);
        let unstored = (self.dirty_x, self.dirty_f);
        let pcv = self.b.ins().iconst(I64, pc as i64);
        self.leave(pcv, Leave::Return(EXIT_ATTENTION), 0);
        (self.dirty_x, self.dirty_f) = unstored;
        self.b.switch_to_block(body);
        self.b.seal_block(body);
    }

    /// The `Env` field at `offset` (one that never changes while a region runs), loaded once per
    /// guest block.
    fn env_field(&mut self, offset: i32) -> Value {
        if let Some(&(_, v)) = self.block_values.env.iter().find(|(o, _)| *o == offset) {
            return v;
        }
        let v = self.b.ins().load(I64, constant(), self.env, offset);
        self.block_values.env.push((offset, v));
        v
    }

    fn xr(&mut self, r: u8) -> Value {
        let r = usize::from(r);
        match r {
            1..32 if self.invariant & (1 << r) != 0 => {
                // Loaded where first read in the guest block (that dominates the rest of it);
                // Cranelift merges the loads and hoists them out of the loops using them.
                if let Some(v) = self.loaded[r] {
                    return v;
                }
                let v = self.b.ins().load(I64, constant(), self.cpu, X_OFF + 8 * r as i32);
                self.loaded[r] = Some(v);
                v
            }
            1..32 => self.b.use_var(self.x[r]),
            _ => self.b.ins().iconst(I64, 0),
        }
    }

    /// Floating-point register `r`'s bits (an `i64`).
    fn fr(&mut self, r: u8) -> Value {
        let v = self.fr_float(r);
        fpfast::bits_of(self.b, v)
    }

    /// Floating-point register `r` as an `f64`: its variable, which keeps it in a host
    /// floating-point register (singles are NaN-boxed in it, as in the guest register).
    fn fr_float(&mut self, r: u8) -> Value {
        self.b.use_var(self.f[usize::from(r & 31)])
    }

    fn set_x(&mut self, r: u8, v: Value) {
        if r != 0 && r < 32 {
            debug_assert_eq!(self.invariant & (1 << r), 0, "x{r} is written, so it is not invariant");
            self.b.def_var(self.x[r as usize], v);
            self.dirty_x |= 1 << r;
        }
    }

    /// Sets floating-point register `r` to the bits `v` (an `i64`) or the `f64` `v`.
    fn set_f(&mut self, r: u8, v: Value) {
        let v = if self.b.func.dfg.value_type(v) == F64 { v } else { fpfast::float_of(self.b, v) };
        self.b.def_var(self.f[(r & 31) as usize], v);
        self.dirty_f |= 1 << (r & 31);
    }

    /// The host access for a guest access of `size` bytes at `base + imm` needing `need`, at the
    /// `idx`th instruction (at `pc`) of the current guest block: a host pointer, an offset to
    /// add to it in the access, and the access's memory flags. Checked: a jump out of the region
    /// (to the interpreter, at this instruction) where the page table refuses. Guarded: the
    /// access itself is the check, a trap site.
    fn host_addr(&mut self, base: Value, imm: i64, size: u64, need: u8, pc: u64, idx: u64) -> (Value, i32, MemFlags) {
        self.checked_host_addr(base, imm, size, need, false, pc, idx)
    }

    /// As [`Self::host_addr`]; with `aligned`, a misaligned address also leaves for the
    /// interpreter (atomics: it raises the misaligned-access signal).
    #[expect(clippy::too_many_arguments, reason = "one guest access and where it is, spelled out")]
    fn checked_host_addr(
        &mut self,
        base: Value,
        imm: i64,
        size: u64,
        need: u8,
        aligned: bool,
        pc: u64,
        idx: u64,
    ) -> (Value, i32, MemFlags) {
        // A store (or AMO) is where `cpu` is made current and the guest may stop; a load stops,
        // if it must, at the restart point before it, from where the interpreter repeats it.
        let writes = need & perm::W != 0;
        let (stop_pc, stop_idx) = if writes { (pc, idx) } else { self.restart };
        if self.guarded {
            if aligned {
                let addr = self.b.ins().iadd_imm_s(base, imm);
                let low = self.b.ins().band_imm_s(addr, (size - 1) as i64);
                let fits = self.b.ins().icmp_imm_s(IntCC::Equal, low, 0);
                self.branch_or_interpret(fits, pc, idx);
            } else if writes {
                self.checkpoint();
            }
            self.sites.push((stop_pc, stop_idx as u32, !writes && self.carried));
            let code = TrapCode::user(self.sites.len() as u8).expect("regions have at most MAX_TRAP_SITES accesses");
            debug_assert!((-2048..2048).contains(&imm), "a 12-bit offset");
            let p = match self.block_values.bases.iter().find(|(b, _)| *b == base) {
                Some(&(_, p)) => p,
                None => self.guest_pointer(base, code),
            };
            return (p, imm as i32, MemFlags::new().with_trap_code(Some(code)));
        }
        let addr = self.b.ins().iadd_imm_s(base, imm);
        let page = self.b.ins().ushr_imm_s(addr, i64::from(PAGE_SHIFT));
        // Pages past the end of the space read the table's zero sentinel.
        let pages = self.env_field(PAGES_OFF);
        let page = self.b.ins().umin(page, pages);
        let perms = self.env_field(PERMS_OFF);
        let pp = self.b.ins().iadd(perms, page);
        let p = self.b.ins().uload8(I32, trusted(), pp, 0);
        let has = self.b.ins().band_imm_s(p, i64::from(need | perm::PAST_EOF));
        let granted = self.b.ins().icmp_imm_s(IntCC::Equal, has, i64::from(need));
        let ok = if size == 1 {
            granted
        } else if aligned {
            let low = self.b.ins().band_imm_s(addr, (size - 1) as i64);
            let fits = self.b.ins().icmp_imm_s(IntCC::Equal, low, 0);
            self.b.ins().band(granted, fits)
        } else {
            let off = self.b.ins().band_imm_s(addr, (PAGE_SIZE - 1) as i64);
            let fits = self.b.ins().icmp_imm_s(IntCC::UnsignedLessThanOrEqual, off, (PAGE_SIZE - size) as i64);
            self.b.ins().band(granted, fits)
        };
        if writes {
            self.branch_or_interpret(ok, pc, idx);
        } else {
            self.branch_or_restart(ok);
        }
        let arena = self.env_field(ARENA_OFF);
        (self.b.ins().iadd(arena, addr), 0, guest_flags())
    }

    /// The host pointer for guest base address `base` (guarded memory), checked once per guest
    /// block and base: a base inside the space is added to the arena, and an access at it plus a
    /// 12-bit offset lies in the space or a guard (`mem::GUARD_SIZE`) on either side. A base past
    /// the space branches to a cold block that reads the guard before the arena, as trap site
    /// `code`: the host fault hands the access to the interpreter, as any refused access.
    ///
    /// The check is a compare and a well-predicted branch, not a clamp (`umin`): the address does
    /// not depend on it, so a walk of dependent loads does not wait for it (XXH64 in `hash` runs
    /// in 0.84 of the time it took with the clamp).
    fn guest_pointer(&mut self, base: Value, code: TrapCode) -> Value {
        let arena = self.env_field(ARENA_OFF);
        let end = self.b.ins().iconst(I64, GUEST_SPACE as i64);
        let past = self.b.ins().icmp(IntCC::UnsignedGreaterThanOrEqual, base, end);
        let outside = self.b.create_block();
        let inside = self.b.create_block();
        self.b.set_cold_block(outside);
        self.b.ins().brif(past, outside, &[], inside, &[]);
        self.b.switch_to_block(outside);
        self.b.seal_block(outside);
        let flags = MemFlags::new().with_trap_code(Some(code));
        self.b.ins().load(I8, flags, arena, -(PAGE_SIZE as i32));
        self.b.ins().trap(code);
        self.b.switch_to_block(inside);
        self.b.seal_block(inside);
        let p = self.b.ins().iadd(arena, base);
        self.block_values.bases.push((base, p));
        p
    }

    /// Continues in a new block if `ok`, else stores what is not stored yet and leaves for the
    /// interpreter at the instruction at `pc`, the `idx`th of the current guest block.
    fn branch_or_interpret(&mut self, ok: Value, pc: u64, idx: u64) {
        self.checkpoint();
        self.branch_out(ok, pc, idx);
    }

    /// Continues in a new block if `ok`, else leaves for the interpreter at the restart point:
    /// `cpu` holds the state there, and what ran since can run again.
    fn branch_or_restart(&mut self, ok: Value) {
        debug_assert!(!self.carried, "checked memory restarts in the access's own block");
        let (pc, idx) = self.restart;
        self.branch_out(ok, pc, idx);
    }

    /// Continues in a new block if `ok`, else leaves for the interpreter at `pc`, the `idx`th
    /// instruction of the current guest block, with `cpu` as it is. All such exits of one guest
    /// block share a stub (the pc and count become its parameters).
    fn branch_out(&mut self, ok: Value, pc: u64, idx: u64) {
        let stub = match self.interpret_stub {
            Some(stub) => stub,
            None => {
                let block = self.b.create_block();
                self.b.append_block_param(block, I64);
                self.b.append_block_param(block, I64);
                self.b.set_cold_block(block);
                self.pending.push(Pending::Interpret { block });
                self.interpret_stub = Some(block);
                block
            }
        };
        let pcv = self.b.ins().iconst(I64, pc as i64);
        let done = self.b.ins().iconst(I64, idx as i64);
        let next = self.b.create_block();
        self.b.ins().brif(ok, next, &[], stub, &[BlockArg::Value(pcv), BlockArg::Value(done)]);
        self.b.switch_to_block(next);
        self.b.seal_block(next);
    }

    fn block(&mut self, pc: u64) {
        let blk = self.region.blocks[&pc].clone();
        let cl = self.blocks[&pc];
        self.b.switch_to_block(cl);
        (self.dirty_x, self.dirty_f) = self.flow.unstored_in[&pc];
        let fresh = self.flow.fresh[&pc];
        debug_assert!(!fresh || self.flow.unstored_in[&pc] == (0, 0), "entered with cpu current");
        self.current_at_end = self.flow.current_at_end[&pc];
        self.restart = if fresh { (pc, 0) } else { self.flow.restart_in[&pc] };
        self.carried = !fresh;
        self.instret_stale = !fresh;
        self.loaded = [None; 32];
        self.block_values = BlockValues::default();
        if self.loop_heads.contains(&pc) {
            self.attention_check(pc);
        }
        let mut at = pc;
        let n = blk.insts.len();
        for (i, inst) in blk.insts.iter().enumerate() {
            let last = i + 1 == n && blk.end == End::Transfer;
            if last {
                self.retire(n as u64);
                self.terminator(at, inst);
                self.finish_block();
                return;
            }
            self.inst(at, i as u64, inst);
            at = at.wrapping_add(u64::from(inst.len));
        }
        self.retire(n as u64);
        match blk.end {
            End::FallThrough(next) => {
                if self.current_at_end {
                    self.make_current();
                }
                let dest = self.edge(next);
                self.b.ins().jump(dest, &[]);
            }
            End::Interpret(next) => {
                let pcv = self.b.ins().iconst(I64, next as i64);
                self.leave(pcv, Leave::Return(EXIT_INTERPRET), 0);
            }
            End::Transfer => {
                // An empty transfer block cannot occur: a transfer is its last instruction.
                let pcv = self.b.ins().iconst(I64, at as i64);
                self.leave(pcv, Leave::Return(EXIT_INTERPRET), 0);
            }
        }
        self.finish_block();
    }

    fn terminator(&mut self, pc: u64, inst: &Inst) {
        let next = pc.wrapping_add(u64::from(inst.len));
        let target = pc.wrapping_add(i64::from(inst.imm) as u64);
        match inst.op {
            Op::Jal => {
                let link = self.b.ins().iconst(I64, next as i64);
                self.set_x(inst.rd, link);
                if self.current_at_end {
                    self.make_current();
                }
                let dest = self.edge(target);
                self.b.ins().jump(dest, &[]);
            }
            Op::Jalr => {
                let base = self.xr(inst.rs1);
                let t = self.b.ins().iadd_imm_s(base, i64::from(inst.imm));
                let t = self.b.ins().band_imm_s(t, !1);
                let link = self.b.ins().iconst(I64, next as i64);
                self.set_x(inst.rd, link);
                self.leave(t, Leave::Chain, 0);
            }
            _ => {
                let (a, b) = (self.xr(inst.rs1), self.xr(inst.rs2));
                let cc = match inst.op {
                    Op::Beq => IntCC::Equal,
                    Op::Bne => IntCC::NotEqual,
                    Op::Blt => IntCC::SignedLessThan,
                    Op::Bge => IntCC::SignedGreaterThanOrEqual,
                    Op::Bltu => IntCC::UnsignedLessThan,
                    _ => IntCC::UnsignedGreaterThanOrEqual,
                };
                if self.current_at_end {
                    self.make_current();
                }
                let taken = self.edge(target);
                let fall = self.edge(next);
                let c = self.b.ins().icmp(cc, a, b);
                self.b.ins().brif(c, taken, &[], fall, &[]);
            }
        }
    }

    fn inst(&mut self, pc: u64, idx: u64, inst: &Inst) {
        use Op::*;
        let imm = i64::from(inst.imm);
        let rd = inst.rd;
        macro_rules! alu_imm {
            ($f:ident) => {{
                let a = self.xr(inst.rs1);
                let v = self.b.ins().$f(a, imm);
                self.set_x(rd, v);
            }};
        }
        macro_rules! alu {
            ($f:ident) => {{
                let (a, b) = (self.xr(inst.rs1), self.xr(inst.rs2));
                let v = self.b.ins().$f(a, b);
                self.set_x(rd, v);
            }};
        }
        macro_rules! alu_w {
            ($f:ident) => {{
                let (a, b) = (self.xr(inst.rs1), self.xr(inst.rs2));
                let (a, b) = (self.b.ins().ireduce(I32, a), self.b.ins().ireduce(I32, b));
                let v = self.b.ins().$f(a, b);
                let v = self.b.ins().sextend(I64, v);
                self.set_x(rd, v);
            }};
        }
        match inst.op {
            Lui => {
                let v = self.b.ins().iconst(I64, imm);
                self.set_x(rd, v);
            }
            Auipc => {
                let v = self.b.ins().iconst(I64, pc.wrapping_add(imm as u64) as i64);
                self.set_x(rd, v);
            }
            Lb | Lh | Lw | Ld | Lbu | Lhu | Lwu | Flw | Fld => {
                let size = match inst.op {
                    Lb | Lbu => 1,
                    Lh | Lhu => 2,
                    Lw | Lwu | Flw => 4,
                    _ => 8,
                };
                let base = self.xr(inst.rs1);
                let (p, off, fl) = self.host_addr(base, imm, size, perm::R, pc, idx);
                let v = match inst.op {
                    Lb => self.b.ins().sload8(I64, fl, p, off),
                    Lbu => self.b.ins().uload8(I64, fl, p, off),
                    Lh => self.b.ins().sload16(I64, fl, p, off),
                    Lhu => self.b.ins().uload16(I64, fl, p, off),
                    Lw => self.b.ins().sload32(fl, p, off),
                    Lwu => self.b.ins().uload32(fl, p, off),
                    Flw => {
                        let v = self.b.ins().uload32(fl, p, off);
                        self.b.ins().bor_imm_s(v, 0xffff_ffff_0000_0000_u64 as i64)
                    }
                    Fld => self.b.ins().load(F64, fl, p, off),
                    _ => self.b.ins().load(I64, fl, p, off),
                };
                if matches!(inst.op, Flw | Fld) {
                    self.set_f(rd, v);
                } else {
                    self.set_x(rd, v);
                }
            }
            Sb | Sh | Sw | Sd | Fsw | Fsd => {
                let size = match inst.op {
                    Sb => 1,
                    Sh => 2,
                    Sw | Fsw => 4,
                    _ => 8,
                };
                let base = self.xr(inst.rs1);
                let v = match inst.op {
                    Fsd => self.fr_float(inst.rs2),
                    Fsw => self.fr(inst.rs2),
                    _ => self.xr(inst.rs2),
                };
                let (p, off, fl) = self.host_addr(base, imm, size, perm::W, pc, idx);
                let v = match size {
                    1 => self.b.ins().ireduce(I8, v),
                    2 => self.b.ins().ireduce(I16, v),
                    4 => self.b.ins().ireduce(I32, v),
                    _ => v,
                };
                self.b.ins().store(fl, v, p, off);
                // Nothing before the store may run twice, and it wrote no register.
                self.restart = (pc.wrapping_add(u64::from(inst.len)), idx + 1);
                self.carried = false;
            }
            Addi => alu_imm!(iadd_imm_s),
            Xori => alu_imm!(bxor_imm_s),
            Ori => alu_imm!(bor_imm_s),
            Andi => alu_imm!(band_imm_s),
            Slli => alu_imm!(ishl_imm_s),
            Srli => alu_imm!(ushr_imm_s),
            Srai => alu_imm!(sshr_imm_s),
            Slti | Sltiu => {
                let a = self.xr(inst.rs1);
                let cc = if inst.op == Slti { IntCC::SignedLessThan } else { IntCC::UnsignedLessThan };
                let c = self.b.ins().icmp_imm_s(cc, a, imm);
                let v = self.b.ins().uextend(I64, c);
                self.set_x(rd, v);
            }
            Add => alu!(iadd),
            Sub => alu!(isub),
            Sll => alu!(ishl),
            Srl => alu!(ushr),
            Sra => alu!(sshr),
            Xor => alu!(bxor),
            Or => alu!(bor),
            And => alu!(band),
            Mul => alu!(imul),
            Mulh => alu!(smulhi),
            Mulhu => alu!(umulhi),
            Slt | Sltu => {
                let (a, b) = (self.xr(inst.rs1), self.xr(inst.rs2));
                let cc = if inst.op == Slt { IntCC::SignedLessThan } else { IntCC::UnsignedLessThan };
                let c = self.b.ins().icmp(cc, a, b);
                let v = self.b.ins().uextend(I64, c);
                self.set_x(rd, v);
            }
            Mulhsu => {
                // high(a * b) with a signed and b unsigned = umulhi(a, b) - (a < 0 ? b : 0).
                let (a, b) = (self.xr(inst.rs1), self.xr(inst.rs2));
                let hi = self.b.ins().umulhi(a, b);
                let neg = self.b.ins().sshr_imm_s(a, 63);
                let corr = self.b.ins().band(neg, b);
                let v = self.b.ins().isub(hi, corr);
                self.set_x(rd, v);
            }
            Addiw | Slliw | Srliw | Sraiw => {
                let a = self.xr(inst.rs1);
                let a = self.b.ins().ireduce(I32, a);
                let v = match inst.op {
                    Addiw => self.b.ins().iadd_imm_s(a, imm),
                    Slliw => self.b.ins().ishl_imm_s(a, imm & 31),
                    Srliw => self.b.ins().ushr_imm_s(a, imm & 31),
                    _ => self.b.ins().sshr_imm_s(a, imm & 31),
                };
                let v = self.b.ins().sextend(I64, v);
                self.set_x(rd, v);
            }
            Addw => alu_w!(iadd),
            Subw => alu_w!(isub),
            Sllw => alu_w!(ishl),
            Srlw => alu_w!(ushr),
            Sraw => alu_w!(sshr),
            Mulw => alu_w!(imul),
            Div | Rem | Divw | Remw => {
                let w = matches!(inst.op, Divw | Remw);
                let ty = if w { I32 } else { I64 };
                let (mut a, mut b) = (self.xr(inst.rs1), self.xr(inst.rs2));
                if w {
                    a = self.b.ins().ireduce(I32, a);
                    b = self.b.ins().ireduce(I32, b);
                }
                let min = if w { i64::from(i32::MIN) } else { i64::MIN };
                let zero = self.b.ins().icmp_imm_s(IntCC::Equal, b, 0);
                let a_min = self.b.ins().icmp_imm_s(IntCC::Equal, a, min);
                let b_m1 = self.b.ins().icmp_imm_s(IntCC::Equal, b, -1);
                let ovf = self.b.ins().band(a_min, b_m1);
                let bad = self.b.ins().bor(zero, ovf);
                let one = self.b.ins().iconst(ty, 1);
                // A divisor of 1 for the cases the M extension defines itself: the quotient is
                // then the dividend (overflow: MIN / -1 = MIN) and the remainder 0.
                let d = self.b.ins().select(bad, one, b);
                let v = if matches!(inst.op, Div | Divw) {
                    let q = self.b.ins().sdiv(a, d);
                    let m1 = self.b.ins().iconst(ty, -1);
                    self.b.ins().select(zero, m1, q)
                } else {
                    let r = self.b.ins().srem(a, d);
                    self.b.ins().select(zero, a, r)
                };
                let v = if w { self.b.ins().sextend(I64, v) } else { v };
                self.set_x(rd, v);
            }
            Divu | Remu | Divuw | Remuw => {
                let w = matches!(inst.op, Divuw | Remuw);
                let ty = if w { I32 } else { I64 };
                let (mut a, mut b) = (self.xr(inst.rs1), self.xr(inst.rs2));
                if w {
                    a = self.b.ins().ireduce(I32, a);
                    b = self.b.ins().ireduce(I32, b);
                }
                let zero = self.b.ins().icmp_imm_s(IntCC::Equal, b, 0);
                let one = self.b.ins().iconst(ty, 1);
                let d = self.b.ins().select(zero, one, b);
                let v = if matches!(inst.op, Divu | Divuw) {
                    let q = self.b.ins().udiv(a, d);
                    let m1 = self.b.ins().iconst(ty, -1);
                    self.b.ins().select(zero, m1, q)
                } else {
                    let r = self.b.ins().urem(a, d);
                    self.b.ins().select(zero, a, r)
                };
                let v = if w { self.b.ins().sextend(I64, v) } else { v };
                self.set_x(rd, v);
            }
            AmoswapW | AmoaddW | AmoxorW | AmoandW | AmoorW | AmominW | AmomaxW | AmominuW | AmomaxuW | AmoswapD
            | AmoaddD | AmoxorD | AmoandD | AmoorD | AmominD | AmomaxD | AmominuD | AmomaxuD => {
                self.amo(pc, idx, inst);
                // Nothing before the AMO may run twice: store its result and restart after it.
                self.checkpoint();
                self.restart = (pc.wrapping_add(u64::from(inst.len)), idx + 1);
                self.carried = false;
            }
            Fence => {
                // Guest fences order memory for other guest threads: a host fence, which also
                // keeps Cranelift from moving guest accesses across it.
                self.b.ins().fence();
            }
            op if op.is_fp_compute() => self.fp(pc, idx, inst),
            _ => {
                // `region::supported` keeps everything else out of regions; leave to the
                // interpreter should one slip through.
                self.exit_now(pc, EXIT_INTERPRET, idx);
            }
        }
    }

    /// An atomic memory operation: one host atomic read-modify-write, sequentially consistent
    /// like the interpreter's. A misaligned, unmapped or read-only address leaves for the
    /// interpreter, which raises the signal.
    fn amo(&mut self, pc: u64, idx: u64, inst: &Inst) {
        use Op::*;
        use cranelift_codegen::ir::AtomicRmwOp as Rmw;
        let word = matches!(
            inst.op,
            AmoswapW | AmoaddW | AmoxorW | AmoandW | AmoorW | AmominW | AmomaxW | AmominuW | AmomaxuW
        );
        let (ty, size) = if word { (I32, 4) } else { (I64, 8) };
        let addr = self.xr(inst.rs1);
        let (p, off, flags) = self.checked_host_addr(addr, 0, size, perm::RW, true, pc, idx);
        debug_assert_eq!(off, 0, "AMOs have no offset");
        let src = self.xr(inst.rs2);
        let src = if word { self.b.ins().ireduce(I32, src) } else { src };
        let op = match inst.op {
            AmoswapW | AmoswapD => Rmw::Xchg,
            AmoaddW | AmoaddD => Rmw::Add,
            AmoxorW | AmoxorD => Rmw::Xor,
            AmoandW | AmoandD => Rmw::And,
            AmoorW | AmoorD => Rmw::Or,
            AmominW | AmominD => Rmw::Smin,
            AmomaxW | AmomaxD => Rmw::Smax,
            AmominuW | AmominuD => Rmw::Umin,
            _ => Rmw::Umax,
        };
        let flags = flags.with_aligned();
        let old = self.b.ins().atomic_rmw(ty, flags, op, p, src);
        let old = if word { self.b.ins().sextend(I64, old) } else { old };
        self.set_x(inst.rd, old);
    }

    /// A floating-point instruction: operands from the variables; the operation inline where
    /// `fpfast` has a fast path for it, else (and whenever the fast path's checks fail) in the
    /// shared helper; the result into the destination variable.
    fn fp(&mut self, pc: u64, idx: u64, inst: &Inst) {
        use crate::interp::{int_source, uses_rm};
        let op = inst.op;
        let a = if int_source(op) { self.xr(inst.rs1) } else { self.fr(inst.rs1) };
        let b = self.fr(inst.rs2);
        let c = self.fr(inst.rs3);
        if let Some(v) = self.fp_inline(op, a, b) {
            self.fp_result(op, inst.rd, v);
            return;
        }
        let (rm, mode) = if !uses_rm(op) {
            // The helper runs ops without a rounding mode in RNE.
            (self.b.ins().iconst(I64, 0), fpfast::Mode::Static(Rounding::Rne))
        } else if inst.rm == 7 {
            // Dynamic rounding, valid: the region's entry checked it (`translate`).
            let frm = self.frm();
            (frm, fpfast::Mode::Dynamic(frm))
        } else if let Some(mode) = Rounding::from_bits(inst.rm) {
            (self.b.ins().iconst(I64, i64::from(inst.rm)), fpfast::Mode::Static(mode))
        } else {
            self.exit_now(pc, EXIT_INTERPRET, idx);
            return;
        };
        let v = match fpfast::emit(self.b, op, [a, b, c], mode, self.native_fma) {
            None => self.fp_call(op, [rm, a, b, c]),
            Some(fpfast::Fast::Always(v)) => v,
            Some(fpfast::Fast::Guarded { value, valid, inexact, exact_zero, dynamic_rne }) => {
                let float = !crate::interp::writes_xreg(op);
                self.fp_guarded(value, (valid, exact_zero, dynamic_rne), inexact, float, |t| {
                    // A dynamic mode is loaded in the cold block itself (`frm_here`).
                    let rm = if matches!(mode, fpfast::Mode::Dynamic(_)) { t.frm_here() } else { rm };
                    t.fp_call(op, [rm, a, b, c])
                })
            }
        };
        self.fp_result(op, inst.rd, v);
    }

    /// The dynamic rounding mode, `cpu.frm`, widened. It is constant while the region runs
    /// (only CSR instructions change it, and they leave the region), so its loads can merge.
    /// (Only a plain `load` of such memory counts as pure, so it is widened separately.)
    fn frm(&mut self) -> Value {
        let frm = self.b.ins().load(I8, constant(), self.cpu, FRM_OFF);
        self.b.ins().uextend(I64, frm)
    }

    /// `cpu.frm`, widened, loaded right here, for a cold block. A mergeable load (`frm`) and
    /// what is computed from it would be hoisted out of the loop around the block, to take a
    /// register or a spill slot all through the loop for the rare path.
    fn frm_here(&mut self) -> Value {
        let frm = self.b.ins().load(I8, trusted(), self.cpu, FRM_OFF);
        self.b.ins().uextend(I64, frm)
    }

    /// Calls the helper of `op` with `[rm, a, b, c]`; returns the destination value. The
    /// helper's and the thunk's addresses are loaded at the call, usually in a cold block (see
    /// `frm_here`); next to a helper call two loads cost nothing.
    fn fp_call(&mut self, op: Op, [rm, a, b, c]: [Value; 4]) -> Value {
        let table = self.b.ins().load(I64, trusted(), self.env, FP_TABLE_OFF);
        let helper = self.b.ins().load(I64, trusted(), table, 8 * i32::from(op as u8));
        let thunk = self.b.ins().load(I64, trusted(), self.env, FP_THUNK_OFF);
        let slot = *self.fp_call_slot.get_or_insert_with(|| {
            self.b.create_sized_stack_slot(StackSlotData::new(StackSlotKind::ExplicitSlot, FP_CALL_BYTES, 3))
        });
        let call = self.b.ins().stack_addr(I64, slot, 0);
        for (i, v) in [self.cpu, rm, a, b, c].into_iter().enumerate() {
            self.b.ins().store(trusted(), v, call, 8 * i as i32);
        }
        self.b.ins().call_indirect(self.fp_sig, thunk, &[call, helper]);
        let v = self.b.ins().load(I64, trusted(), call, FP_RESULT_OFF);
        // The helper ORs its flags into cpu.fflags.
        let nx = nx_of(self.b, self.cpu);
        self.b.def_var(self.nx, nx);
        let nx_rne = and_rne(self.b, self.cpu, nx);
        self.b.def_var(self.nx_rne, nx_rne);
        v
    }

    /// The fast result `value` where `valid` holds and it adds no flag (NX is set already, or
    /// the result is exact) or where `exact_zero` holds, else the helper's (`slow`), laid out
    /// as `fpfast` draws it: the exactness proof, the exact-zero test and the helper call in
    /// cold blocks.
    fn fp_guarded(
        &mut self,
        value: Value,
        (valid, exact_zero, dynamic_rne): (Value, Option<Value>, bool),
        inexact: fpfast::Inexact,
        float: bool,
        slow: impl FnOnce(&mut Self) -> Value,
    ) -> Value {
        // A floating-point register's value joins as an `f64`, to stay in a host
        // floating-point register (`fr_float`).
        let value = if float { fpfast::float_of(self.b, value) } else { value };
        let join = self.b.create_block();
        self.b.append_block_param(join, if float { F64 } else { I64 });
        let helper = self.b.create_block();
        self.b.set_cold_block(helper);
        let fast = match inexact {
            fpfast::Inexact::Never => {
                debug_assert!(!dynamic_rne, "ops that never round do not depend on frm");
                valid
            }
            fpfast::Inexact::Possible | fpfast::Inexact::Unless(_) => {
                let nx = self.b.use_var(if dynamic_rne { self.nx_rne } else { self.nx });
                self.b.ins().band(valid, nx)
            }
        };
        let proof = match inexact {
            fpfast::Inexact::Unless(proof) => Some(proof),
            fpfast::Inexact::Never | fpfast::Inexact::Possible => None,
        };
        if proof.is_none() && exact_zero.is_none() {
            self.b.ins().brif(fast, join, &[BlockArg::Value(value)], helper, &[]);
        } else {
            let check = self.b.create_block();
            self.b.set_cold_block(check);
            self.b.ins().brif(fast, join, &[BlockArg::Value(value)], check, &[]);
            self.b.switch_to_block(check);
            self.b.seal_block(check);
            let proven = proof.map(|proof| {
                let exact = proof.emit(self.b);
                self.b.ins().band(valid, exact)
            });
            let ok = match (proven, exact_zero) {
                (Some(p), Some(z)) => self.b.ins().bor(p, z),
                (Some(c), None) | (None, Some(c)) => c,
                (None, None) => unreachable!("a check block has a proof or an exact-zero test"),
            };
            let ok = if dynamic_rne {
                let frm = self.frm_here();
                let rne = self.b.ins().icmp_imm_s(IntCC::Equal, frm, i64::from(Rounding::Rne as u8));
                self.b.ins().band(ok, rne)
            } else {
                ok
            };
            self.b.ins().brif(ok, join, &[BlockArg::Value(value)], helper, &[]);
        }
        self.b.switch_to_block(helper);
        self.b.seal_block(helper);
        let v = slow(self);
        let v = if float { fpfast::float_of(self.b, v) } else { v };
        self.b.ins().jump(join, &[BlockArg::Value(v)]);
        self.b.switch_to_block(join);
        self.b.seal_block(join);
        self.b.block_params(join)[0]
    }

    fn fp_result(&mut self, op: Op, rd: u8, v: Value) {
        if crate::interp::writes_xreg(op) {
            self.set_x(rd, v);
        } else {
            self.set_f(rd, v);
        }
    }

    /// Floating-point ops that only move bits (sign injection, moves): no rounding, no flags,
    /// so they are inlined. `None` for the others.
    fn fp_inline(&mut self, op: Op, a: Value, b: Value) -> Option<Value> {
        const SIGN64: i64 = i64::MIN;
        const SIGN32: i64 = 0x8000_0000;
        const BOX: i64 = 0xffff_ffff_0000_0000_u64 as i64;
        let single = matches!(op, Op::FsgnjS | Op::FsgnjnS | Op::FsgnjxS);
        let v = match op {
            Op::FmvXD | Op::FmvDX => a,
            Op::FmvXW => {
                let n = self.b.ins().ireduce(I32, a);
                self.b.ins().sextend(I64, n)
            }
            Op::FmvWX => {
                let n = self.b.ins().band_imm_s(a, 0xffff_ffff);
                self.b.ins().bor_imm_s(n, BOX)
            }
            Op::FsgnjD | Op::FsgnjnD | Op::FsgnjxD | Op::FsgnjS | Op::FsgnjnS | Op::FsgnjxS => {
                let (a, b, sign) =
                    if single { (fpfast::unbox(self.b, a), fpfast::unbox(self.b, b), SIGN32) } else { (a, b, SIGN64) };
                let mag = self.b.ins().band_imm_s(a, !sign);
                let v = match op {
                    Op::FsgnjD | Op::FsgnjS => {
                        let s = self.b.ins().band_imm_s(b, sign);
                        self.b.ins().bor(mag, s)
                    }
                    Op::FsgnjnD | Op::FsgnjnS => {
                        let nb = self.b.ins().bnot(b);
                        let s = self.b.ins().band_imm_s(nb, sign);
                        self.b.ins().bor(mag, s)
                    }
                    _ => {
                        let s = self.b.ins().band_imm_s(b, sign);
                        self.b.ins().bxor(a, s)
                    }
                };
                if single { self.b.ins().bor_imm_s(v, BOX) } else { v }
            }
            _ => return None,
        };
        Some(v)
    }
}
