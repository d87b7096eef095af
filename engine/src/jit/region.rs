//! Region formation: which guest blocks go into one compiled function.
//!
//! Starting at the hot entry pc, blocks are decoded (as the interpreter decodes them) and their
//! direct successors (branch targets, fall-through, direct jumps) followed, breadth first, while
//! they stay near the entry. Indirect jumps, system instructions and the instructions the JIT
//! leaves to the interpreter end a block with an exit.

use std::collections::{BTreeMap, HashMap, VecDeque};

use crate::interp::decode_block;
use crate::mem::AddressSpace;
use crate::rv64::{Inst, Op};

/// Most blocks in one region.
const MAX_BLOCKS: usize = 16;
/// Most guest instructions in one region.
const MAX_INSTS: usize = 1024;
/// How far from the entry a followed target may be.
const WINDOW: u64 = 16 * 1024;

/// How a guest block ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum End {
    /// The last instruction transfers control (branch, jump); its successors follow from it.
    Transfer,
    /// The block ran to its size limit; execution continues at this pc.
    FallThrough(u64),
    /// The instruction at this pc is left to the interpreter.
    Interpret(u64),
}

/// One guest block of a region.
#[derive(Clone, Debug)]
pub(crate) struct GuestBlock {
    pub insts: Vec<Inst>,
    pub end: End,
    /// The guest bytes of `insts`, as fetched: what the code-cache keys are made of.
    pub raw: Vec<u8>,
}

impl GuestBlock {
    /// The pcs this block, starting at `pc`, continues at by direct control flow.
    pub fn successors(&self, pc: u64) -> Vec<u64> {
        match self.end {
            End::FallThrough(next) => vec![next],
            End::Interpret(_) => Vec::new(),
            End::Transfer => {
                let Some(last) = self.insts.last() else { return Vec::new() };
                let len: u64 = self.insts.iter().map(|i| u64::from(i.len)).sum();
                successors(pc.wrapping_add(len).wrapping_sub(u64::from(last.len)), last)
            }
        }
    }
}

/// A region: its entry and blocks by start pc.
#[derive(Debug)]
pub(crate) struct Region {
    pub entry: u64,
    pub blocks: BTreeMap<u64, GuestBlock>,
}

impl Region {
    pub fn instruction_count(&self) -> usize {
        self.blocks.values().map(|b| b.insts.len()).sum()
    }

    /// The blocks of the region that continue at each block of it (every block has an entry,
    /// the region's entry possibly an empty one).
    pub fn predecessors(&self) -> HashMap<u64, Vec<u64>> {
        let mut preds: HashMap<u64, Vec<u64>> = self.blocks.keys().map(|&pc| (pc, Vec::new())).collect();
        for (&pc, blk) in &self.blocks {
            for s in blk.successors(pc) {
                if let Some(p) = preds.get_mut(&s)
                    && !p.contains(&pc)
                {
                    p.push(pc);
                }
            }
        }
        preds
    }
}

/// Whether the JIT compiles this op itself (everything else leaves the region for the
/// interpreter: system instructions, CSRs, LR/SC, fence.i, illegal encodings).
pub(crate) fn supported(op: Op) -> bool {
    use Op::*;
    !matches!(
        op,
        Illegal | Ecall | Ebreak | FenceI | Csrrw | Csrrs | Csrrc | Csrrwi | Csrrsi | Csrrci | LrW | ScW | LrD | ScD
    )
}

/// Direct successors of a block that ends in a control transfer at `last_pc`.
pub(crate) fn successors(last_pc: u64, inst: &Inst) -> Vec<u64> {
    let next = last_pc.wrapping_add(u64::from(inst.len));
    let target = last_pc.wrapping_add(i64::from(inst.imm) as u64);
    match inst.op {
        Op::Beq | Op::Bne | Op::Blt | Op::Bge | Op::Bltu | Op::Bgeu => vec![target, next],
        Op::Jal => vec![target],
        _ => Vec::new(),
    }
}

/// Forms the region entered at `entry`, or `None` if its first instruction is not compiled.
/// Successors for which `follow` says no stay outside (edges to them leave the region).
pub(crate) fn form(mem: &AddressSpace, entry: u64, follow: &dyn Fn(u64) -> bool) -> Option<Region> {
    let mut blocks = BTreeMap::new();
    let mut queue = VecDeque::from([entry]);
    let mut insts_total = 0;
    while let Some(pc) = queue.pop_front() {
        if blocks.contains_key(&pc) || blocks.len() >= MAX_BLOCKS || insts_total >= MAX_INSTS {
            continue;
        }
        let Ok(mut insts) = decode_block(pc, mem) else { continue };
        let mut at = pc;
        let mut end = None;
        for (i, inst) in insts.iter().enumerate() {
            if !supported(inst.op) {
                end = Some((i, End::Interpret(at)));
                break;
            }
            at = at.wrapping_add(u64::from(inst.len));
        }
        let end = match end {
            Some((i, e)) => {
                insts.truncate(i);
                e
            }
            None => {
                let last = insts.last().copied();
                match last {
                    Some(l) if crate::interp::ends_block(l.op) => {
                        let last_pc = at.wrapping_sub(u64::from(l.len));
                        for s in successors(last_pc, &l) {
                            if s.abs_diff(entry) <= WINDOW && follow(s) {
                                queue.push_back(s);
                            }
                        }
                        End::Transfer
                    }
                    _ => {
                        if at.abs_diff(entry) <= WINDOW && follow(at) {
                            queue.push_back(at);
                        }
                        End::FallThrough(at)
                    }
                }
            }
        };
        if pc == entry && insts.is_empty() {
            return None;
        }
        insts_total += insts.len();
        let len: u64 = insts.iter().map(|i| u64::from(i.len)).sum();
        let Some(raw) = fetch_bytes(mem, pc, len) else { continue };
        blocks.insert(pc, GuestBlock { insts, end, raw });
    }
    Some(Region { entry, blocks })
}

/// The `len` bytes of code at `pc` (all fetched once already while decoding).
fn fetch_bytes(mem: &AddressSpace, pc: u64, len: u64) -> Option<Vec<u8>> {
    let mut raw = Vec::new();
    for at in (pc..pc + len).step_by(2) {
        raw.extend_from_slice(&mem.fetch16(at).ok()?.to_le_bytes());
    }
    Some(raw)
}
