//! The fixed guest address-space layout.
//!
//! Placement is deterministic: the same program lays out the same way on every host, which is what
//! lets translated code be shared between hosts. The numbers follow Linux on riscv64 with Sv39
//! (a 256 GiB user address space) without address-space randomization.

/// Size of a guest address space: 2^38 bytes, the Sv39 user range.
pub const GUEST_SPACE: u64 = 1 << 38;
/// Lowest address `mmap` hands out without a hint (vm.mmap_min_addr on Linux is 64 KiB).
pub const MMAP_MIN_ADDR: u64 = 0x1_0000;
/// One past the highest byte of the main thread's stack.
pub const STACK_TOP: u64 = GUEST_SPACE - 0x1000;
/// Stack reserved for the main thread (RLIMIT_STACK's usual 8 MiB).
pub const STACK_SIZE: u64 = 8 << 20;
/// Top of the area where `mmap` places mappings, growing down (below the stack and a gap).
pub const MMAP_BASE: u64 = STACK_TOP - STACK_SIZE - (128 << 20);
/// Where a position-independent executable is placed (Linux's ELF_ET_DYN_BASE for Sv39).
pub const PIE_BASE: u64 = 0x2a_aaaa_a000;
/// The program break may not grow into the mmap area.
pub const BRK_LIMIT: u64 = MMAP_BASE;
/// A page holding the signal-return trampoline (the vDSO's role on Linux).
pub const SIGRETURN_PAGE: u64 = MMAP_BASE;
