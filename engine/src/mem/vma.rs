//! The list of guest mappings (what `/proc/self/maps` would show), kept in a map keyed by start.

use std::collections::BTreeMap;
use std::os::fd::OwnedFd;
use std::sync::Arc;

/// What backs a mapping.
#[derive(Clone, Debug)]
pub enum VmaKind {
    /// Private anonymous memory.
    Anon,
    /// The program break heap.
    Heap,
    /// The main thread's stack.
    Stack,
    /// The signal-return trampoline page, which plays the vDSO's part (shown as `[vdso]`).
    Vdso,
    /// A private copy of part of an ELF file placed by the loader; shown as a mapping of the file.
    Image {
        /// The file the segment came from.
        file: Arc<ImageFile>,
        /// Offset in the file of the mapping's first byte.
        offset: u64,
    },
    /// A mapping of a file.
    File {
        /// The open file, kept so that a forked address space can map it again.
        file: Arc<OwnedFd>,
        /// Offset in the file of the mapping's first byte.
        offset: u64,
        /// MAP_SHARED rather than MAP_PRIVATE.
        shared: bool,
        /// The guest path, for `/proc/self/maps`.
        name: Arc<str>,
    },
}

/// Identity of a loaded ELF file, as `/proc/self/maps` names it.
#[derive(Debug)]
pub struct ImageFile {
    /// The guest path.
    pub name: Arc<str>,
    /// Host device number of the file.
    pub dev: u64,
    /// Host inode number of the file.
    pub ino: u64,
}

impl VmaKind {
    fn same_backing(&self, other: &VmaKind, gap: u64) -> bool {
        match (self, other) {
            (VmaKind::Anon, VmaKind::Anon)
            | (VmaKind::Heap, VmaKind::Heap)
            | (VmaKind::Stack, VmaKind::Stack)
            | (VmaKind::Vdso, VmaKind::Vdso) => true,
            (VmaKind::Image { file: a, offset: oa }, VmaKind::Image { file: b, offset: ob }) => {
                Arc::ptr_eq(a, b) && oa + gap == *ob
            }
            (
                VmaKind::File { file: a, offset: oa, shared: sa, .. },
                VmaKind::File { file: b, offset: ob, shared: sb, .. },
            ) => Arc::ptr_eq(a, b) && sa == sb && oa + gap == *ob,
            _ => false,
        }
    }

    fn advanced(&self, by: u64) -> VmaKind {
        match self {
            VmaKind::File { file, offset, shared, name } => {
                VmaKind::File { file: file.clone(), offset: offset + by, shared: *shared, name: name.clone() }
            }
            VmaKind::Image { file, offset } => VmaKind::Image { file: file.clone(), offset: offset + by },
            k => k.clone(),
        }
    }
}

/// One mapping: `[start, end)` with guest permissions `prot` ([`super::perm`] bits).
#[derive(Clone, Debug)]
pub struct Vma {
    /// First byte (page-aligned).
    pub start: u64,
    /// One past the last byte (page-aligned).
    pub end: u64,
    /// Guest permissions.
    pub prot: u8,
    /// Backing.
    pub kind: VmaKind,
}

/// Splits the mapping containing `at` (if any, and if `at` is inside it) into two.
pub(super) fn split_at(vmas: &mut BTreeMap<u64, Vma>, at: u64) {
    let Some((&k, v)) = vmas.range_mut(..at).next_back() else {
        return;
    };
    if v.end <= at {
        return;
    }
    let tail = Vma { start: at, end: v.end, prot: v.prot, kind: v.kind.advanced(at - k) };
    v.end = at;
    vmas.insert(at, tail);
}

/// Merges neighbouring mappings with the same permissions and backing around `[start, end)`.
pub(super) fn merge_around(vmas: &mut BTreeMap<u64, Vma>, start: u64, end: u64) {
    let lo = vmas.range(..start).next_back().map_or(start, |(&k, _)| k);
    let keys: Vec<u64> = vmas.range(lo..=end).map(|(&k, _)| k).collect();
    let mut prev: Option<u64> = None;
    for k in keys {
        if let Some(p) = prev {
            let (pe, pprot, pkind_ok) = {
                let pv = &vmas[&p];
                let cv = &vmas[&k];
                (pv.end, pv.prot == cv.prot, pv.kind.same_backing(&cv.kind, cv.start - pv.start))
            };
            if pe == k && pprot && pkind_ok {
                if let Some(cur) = vmas.remove(&k)
                    && let Some(pv) = vmas.get_mut(&p)
                {
                    pv.end = cur.end;
                }
                continue;
            }
        }
        prev = Some(k);
    }
}
