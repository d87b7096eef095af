//! Where a guest's memory may come from: how much it may map ([`MemoryLimit`]) and which NUMA
//! node should hold it ([`MemoryPolicy::node`]).
//!
//! The cap is shared by the address spaces of one guest, as the processes of a cgroup share its
//! limit. It counts mapped bytes, as RLIMIT_AS does,
//! not resident ones: a mapping past the cap fails with ENOMEM, the way Linux refuses an
//! allocation past RLIMIT_AS, and the guest sees the failure where it allocates (malloc returns
//! NULL) instead of being killed at some later page fault.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// The memory policy of one guest's address spaces.
#[derive(Clone, Debug, Default)]
pub struct MemoryPolicy {
    /// The cap on what they map together.
    pub limit: Option<Arc<MemoryLimit>>,
    /// The NUMA node their pages should come from (the node the guest's vCPUs run on): every
    /// mapping is given a preferred-node policy (`mbind(MPOL_PREFERRED)`), so the pages land
    /// there whichever thread touches them first, and elsewhere only when the node is full.
    pub node: Option<u32>,
}

/// Asks the host kernel to take the pages of `[addr, addr + len)` from NUMA node `node` when it
/// can. A host without NUMA support refuses; the pages then come from wherever the host's default
/// policy puts them, which is said once.
pub(super) fn prefer_node(addr: *mut u8, len: usize, node: u32) {
    const MASK_WORDS: usize = 16;
    let mut mask = [0u64; MASK_WORDS];
    let Some(word) = mask.get_mut((node / 64) as usize) else { return };
    *word |= 1 << (node % 64);
    // SAFETY: mbind changes only the memory policy of a range this address space owns; the mask
    // is MASK_WORDS words long and the kernel reads at most `maxnode` bits of it.
    let rc =
        unsafe { libc::syscall(libc::SYS_mbind, addr, len, libc::MPOL_PREFERRED, mask.as_ptr(), MASK_WORDS * 64, 0) };
    if rc != 0 {
        static WARNED: std::sync::Once = std::sync::Once::new();
        let e = std::io::Error::last_os_error();
        WARNED.call_once(|| tracing::warn!("cannot prefer NUMA node {node} for guest memory: {e}"));
    }
}

/// The memory cap of one guest, shared by its address spaces.
#[derive(Debug)]
pub struct MemoryLimit {
    limit: u64,
    used: AtomicU64,
    refused: AtomicBool,
}

impl MemoryLimit {
    /// A cap of `bytes` mapped bytes.
    pub fn new(bytes: u64) -> MemoryLimit {
        MemoryLimit { limit: bytes, used: AtomicU64::new(0), refused: AtomicBool::new(false) }
    }

    /// The cap in bytes.
    pub fn bytes(&self) -> u64 {
        self.limit
    }

    /// Bytes mapped now by all the address spaces under the cap.
    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }

    /// Whether a mapping was ever refused for the cap.
    pub fn was_reached(&self) -> bool {
        self.refused.load(Ordering::Relaxed)
    }

    /// Whether `more` bytes may be mapped now; a refusal is remembered.
    pub(super) fn admits(&self, more: u64) -> bool {
        let fits = self.used().checked_add(more).is_some_and(|total| total <= self.limit);
        if !fits {
            self.refused.store(true, Ordering::Relaxed);
        }
        fits
    }

    pub(super) fn charge(&self, bytes: u64) {
        self.used.fetch_add(bytes, Ordering::Relaxed);
    }

    pub(super) fn release(&self, bytes: u64) {
        self.used.fetch_sub(bytes, Ordering::Relaxed);
    }
}
