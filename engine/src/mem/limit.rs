//! A cap on the guest memory a group of address spaces may map: the processes of one guest share
//! it, as the processes of a cgroup share its limit. It counts mapped bytes, as RLIMIT_AS does,
//! not resident ones: a mapping past the cap fails with ENOMEM, the way Linux refuses an
//! allocation past RLIMIT_AS, and the guest sees the failure where it allocates (malloc returns
//! NULL) instead of being killed at some later page fault.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

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
