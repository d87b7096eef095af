//! Guest memory: one sandboxed arena per guest address space.
//!
//! Layout of the host reservation made for one address space:
//!
//! ```text
//!  host base                                                   host base + GUEST_SPACE
//!  |<---------------------- guest addresses 0 .. 2^38 ----------------------->|
//!  | unmapped | exe | brk heap ->      ...      <- mmap area | stack | (top)  |
//! ```
//!
//! The whole range is reserved once with `MAP_NORESERVE`, so host memory is committed only for
//! pages a guest touches, between two guards of [`GUARD_SIZE`] bytes that are never accessible.
//! (A smaller space, for tests, still reserves all of it and leaves the rest inaccessible.) Guest
//! permissions live in a page table of one byte per guest page ([`perm`] bits), and the host
//! protection of every page mirrors them: unmapped and `PROT_NONE` pages are inaccessible on the
//! host, readable (or executable) pages read-only, writable pages read/write.
//!
//! The interpreter and the kernel check the page table before every access, so they never make
//! the host fault; a missing permission is a [`Fault`] that the caller turns into guest SIGSEGV at
//! the faulting pc. Compiled code does not check permissions: it checks only that the base
//! register of an access lies inside `GUEST_SPACE` (a base past it reads the guard instead), adds
//! the offset (so the address lies in the space or a guard) and lets the host MMU refuse the
//! access, and the JIT's fault handler turns the host fault back into the same guest state
//! (`jit::fault`).
//!
//! File mappings are host `mmap`s of the file placed at the same spot inside the arena
//! (`MAP_FIXED`), so shared mappings behave as on Linux. Unmapping puts a fresh inaccessible
//! `MAP_NORESERVE` mapping back, which drops the pages.
//!
//! **Architecture Invariant:** the host protection of a guest page never grants more than its
//! page-table entry (reads of writable pages excepted: guest write implies read), and a guest
//! address is turned into a host pointer by host code only after the page table granted the
//! access, and only for `addr + len <= GUEST_SPACE`.
#![expect(
    clippy::cast_possible_truncation,
    reason = "guest addresses and lengths are below the arena size (2^38) and host pointers are 64-bit"
)]

mod layout;
mod limit;
mod vma;

use std::collections::BTreeMap;
use std::os::fd::AsRawFd;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};

pub use layout::*;
pub use limit::{MemoryLimit, MemoryPolicy};
pub use vma::{ImageFile, Vma, VmaKind};

/// Inaccessible host memory before and after a guest address space. Compiled code accesses
/// memory at a base register inside the space plus a 12-bit offset (`jit::codegen`), so every
/// address it forms lies within the guards.
pub const GUARD_SIZE: u64 = 64 << 10;

/// Guest page size: 4 KiB, as on Linux/riscv64.
pub const PAGE_SIZE: u64 = 4096;
/// log2 of [`PAGE_SIZE`].
pub const PAGE_SHIFT: u32 = 12;

/// Page permission bits in the guest page table.
pub mod perm {
    /// Readable.
    pub const R: u8 = 1;
    /// Writable.
    pub const W: u8 = 2;
    /// Executable.
    pub const X: u8 = 4;
    /// Read and write.
    pub const RW: u8 = R | W;
    /// Set on every mapped page, even one without access (PROT_NONE), so that a fault can tell
    /// SEGV_ACCERR from SEGV_MAPERR.
    pub const MAPPED: u8 = 8;
    /// A page of a file mapping wholly past the end of the file (as it was when mapped): an
    /// access its permission bits allow is SIGBUS instead, as on Linux (one they refuse is
    /// SIGSEGV, as anywhere).
    pub const PAST_EOF: u8 = 16;
}

/// An address in a guest's address space.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct GuestAddr(pub u64);

/// What kind of access faulted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// A load.
    Read,
    /// A store.
    Write,
    /// An instruction fetch.
    Execute,
}

/// A guest memory access that the page table refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("guest {access:?} access at {addr:#x} refused")]
pub struct Fault {
    /// The first guest address of the access.
    pub addr: u64,
    /// The access kind.
    pub access: Access,
    /// Whether a page was mapped there (SEGV_ACCERR) rather than not at all (SEGV_MAPERR).
    pub mapped: bool,
    /// Whether the page lies wholly past the end of the file it maps (SIGBUS, BUS_ADRERR).
    pub past_eof: bool,
}

/// Errors of address-space management (the guest-visible ones map to errnos).
#[derive(Debug, thiserror::Error)]
pub enum MemError {
    /// The host refused to reserve the arena.
    #[error("cannot reserve {size:#x} bytes of host address space for a guest")]
    Reserve {
        /// Bytes asked for.
        size: u64,
        /// The host error.
        #[source]
        source: std::io::Error,
    },
    /// No room in the guest address space, or a range past its end.
    #[error("out of guest address space")]
    NoMemory,
    /// The mapping would take the guest past its memory limit.
    #[error("the guest's memory limit ({0} bytes) is reached")]
    Limit(u64),
    /// Invalid arguments (misaligned address, zero length, bad flags).
    #[error("invalid memory request")]
    Invalid,
    /// The host failed a mapping operation.
    #[error("host mapping failed")]
    Host(#[source] std::io::Error),
}

impl MemError {
    /// The Linux errno a guest sees for this error.
    pub fn errno(&self) -> i32 {
        match self {
            MemError::NoMemory | MemError::Limit(_) | MemError::Reserve { .. } => libc::ENOMEM,
            MemError::Invalid => libc::EINVAL,
            MemError::Host(e) => e.raw_os_error().unwrap_or(libc::ENOMEM),
        }
    }
}

/// Plain values that can be loaded from and stored to guest memory.
pub trait Pod: Copy + Default {}
impl Pod for u8 {}
impl Pod for u16 {}
impl Pod for u32 {}
impl Pod for u64 {}

/// A host mapping owned by an address space.
#[derive(Debug)]
struct HostRegion {
    ptr: *mut u8,
    len: usize,
}

impl HostRegion {
    /// Reserves `len` bytes, inaccessible until parts are mapped or protected.
    fn reserve_inaccessible(len: u64) -> Result<Self, MemError> {
        Self::reserve_with(len, libc::PROT_NONE)
    }

    fn reserve(len: u64) -> Result<Self, MemError> {
        Self::reserve_with(len, libc::PROT_READ | libc::PROT_WRITE)
    }

    fn reserve_with(len: u64, prot: libc::c_int) -> Result<Self, MemError> {
        let size = usize::try_from(len).map_err(|_| MemError::NoMemory)?;
        // SAFETY: a fresh anonymous mapping at an address of the kernel's choosing; it aliases
        // nothing.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                size,
                prot,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(MemError::Reserve { size: len, source: std::io::Error::last_os_error() });
        }
        Ok(HostRegion { ptr: ptr.cast(), len: size })
    }
}

impl Drop for HostRegion {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` are exactly the mapping made in `reserve`, unmapped only here.
        unsafe { libc::munmap(self.ptr.cast(), self.len) };
    }
}

/// Program break state.
#[derive(Debug, Clone, Copy)]
struct Brk {
    start: u64,
    cur: u64,
}

/// One guest address space: the arena, its page table and the list of mappings.
#[derive(Debug)]
pub struct AddressSpace {
    /// The guards and the space between them: guest address 0 is [`GUARD_SIZE`] bytes in.
    reservation: HostRegion,
    perms: HostRegion,
    size: u64,
    vmas: Mutex<BTreeMap<u64, Vma>>,
    brk: Mutex<Brk>,
    /// Bumped whenever executable pages change, so translated code can be dropped.
    code_generation: AtomicU64,
    /// The cap on what this address space (with the others of its guest) may map, and the NUMA
    /// node its pages should come from.
    policy: MemoryPolicy,
}

// SAFETY: the raw pointers refer to mappings owned by the address space for its whole life; all
// guest-visible mutation goes through atomics, host syscalls or the `vmas` mutex.
unsafe impl Send for AddressSpace {}
// SAFETY: as above; concurrent guest accesses are what guest threads do on real hardware.
unsafe impl Sync for AddressSpace {}

impl AddressSpace {
    /// Reserves a new, empty address space of `GUEST_SPACE` bytes.
    pub fn new() -> Result<Self, MemError> {
        Self::with_size(GUEST_SPACE)
    }

    /// Reserves a new, empty address space of `size` bytes (a multiple of the page size, at
    /// most `GUEST_SPACE`). The host reservation always spans `GUEST_SPACE` between its guards,
    /// so compiled code can check addresses against one constant whatever the size; pages past `size`
    /// stay inaccessible.
    pub fn with_size(size: u64) -> Result<Self, MemError> {
        Self::build(size, MemoryPolicy::default())
    }

    /// Reserves a new, empty address space of `GUEST_SPACE` bytes under `policy`: its mappings
    /// count against the policy's limit (with those of every other address space under it) and
    /// prefer its NUMA node.
    pub fn with_policy(policy: MemoryPolicy) -> Result<Self, MemError> {
        Self::build(GUEST_SPACE, policy)
    }

    fn build(size: u64, policy: MemoryPolicy) -> Result<Self, MemError> {
        if size == 0 || !size.is_multiple_of(PAGE_SIZE) || size > GUEST_SPACE {
            return Err(MemError::Invalid);
        }
        let reservation = HostRegion::reserve_inaccessible(GUARD_SIZE + GUEST_SPACE + GUARD_SIZE)?;
        // One byte per page, and one more that stays zero: compiled code clamps page numbers
        // past the end to it, so any address reads "no access" without a bounds branch.
        let perms = HostRegion::reserve((size >> PAGE_SHIFT) + 1)?;
        Ok(AddressSpace {
            reservation,
            perms,
            size,
            vmas: Mutex::new(BTreeMap::new()),
            brk: Mutex::new(Brk { start: 0, cur: 0 }),
            code_generation: AtomicU64::new(0),
            policy,
        })
    }

    /// Refuses (with ENOMEM) a mapping of `[start, end)` that would take the guest past its
    /// memory cap; what the range maps now is replaced, so it does not count twice.
    fn admit(&self, start: u64, end: u64) -> Result<(), MemError> {
        let Some(limit) = &self.policy.limit else { return Ok(()) };
        let vmas = self.vmas.lock().unwrap_or_else(|e| e.into_inner());
        let replaced: u64 = vmas.range(..end).map(|(_, v)| v.end.min(end).saturating_sub(v.start.max(start))).sum();
        if limit.admits((end - start).saturating_sub(replaced)) { Ok(()) } else { Err(MemError::Limit(limit.bytes())) }
    }

    /// Number of guest pages (the index of the page table's always-zero sentinel byte).
    pub fn pages(&self) -> u64 {
        self.size >> PAGE_SHIFT
    }

    /// Size of the guest address space in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Host address of the arena's first byte (the JIT adds guest addresses to it).
    #[inline]
    pub fn host_base(&self) -> *mut u8 {
        // SAFETY: the reservation is GUARD_SIZE + GUEST_SPACE + GUARD_SIZE bytes long.
        unsafe { self.reservation.ptr.add(GUARD_SIZE as usize) }
    }

    /// Host address of the page table (one permission byte per page), for compiled code.
    pub fn perm_base(&self) -> *const u8 {
        self.perms.ptr
    }

    /// The current code generation; it changes whenever executable memory changes.
    #[inline]
    pub fn code_generation(&self) -> u64 {
        self.code_generation.load(Ordering::Acquire)
    }

    /// Declares that executable code may have changed (fence.i, riscv_flush_icache).
    pub fn flush_code(&self) {
        self.code_generation.fetch_add(1, Ordering::AcqRel);
    }

    #[inline]
    fn perm_cell(&self, page: u64) -> &AtomicU8 {
        debug_assert!(page < self.size >> PAGE_SHIFT);
        // SAFETY: `page` is below the number of pages, so the byte lies inside the `perms`
        // mapping, which lives as long as `self`; AtomicU8 has the layout of u8.
        unsafe { &*self.perms.ptr.add(page as usize).cast::<AtomicU8>() }
    }

    /// Permission bits of the page holding `addr` (0 past the end of the space).
    #[inline]
    pub fn page_perm(&self, addr: u64) -> u8 {
        let page = addr >> PAGE_SHIFT;
        if page < self.size >> PAGE_SHIFT { self.perm_cell(page).load(Ordering::Relaxed) } else { 0 }
    }

    fn set_perm_range(&self, start: u64, end: u64, bits: u8) {
        for page in start >> PAGE_SHIFT..end >> PAGE_SHIFT {
            self.perm_cell(page).store(bits, Ordering::Relaxed);
        }
    }

    /// Checks that every byte of `[addr, addr+len)` has all of `need`; returns the fault otherwise.
    pub fn check(&self, addr: u64, len: u64, need: u8, access: Access) -> Result<(), Fault> {
        if len == 0 {
            return Ok(());
        }
        let end = addr.checked_add(len).filter(|&e| e <= self.size);
        let Some(end) = end else {
            return Err(Fault { addr, access, mapped: false, past_eof: false });
        };
        let mut page = addr >> PAGE_SHIFT;
        let last = (end - 1) >> PAGE_SHIFT;
        while page <= last {
            let p = self.perm_cell(page).load(Ordering::Relaxed);
            if p & (need | perm::PAST_EOF) != need {
                let at = (page << PAGE_SHIFT).max(addr);
                let past_eof = p & need == need;
                return Err(Fault { addr: at, access, mapped: p & perm::MAPPED != 0, past_eof });
            }
            page += 1;
        }
        Ok(())
    }

    /// Host pointer of a guest address already checked to be inside the space.
    #[inline]
    fn host(&self, addr: u64) -> *mut u8 {
        debug_assert!(addr < self.size);
        // SAFETY: callers checked `addr < size`, so the result stays inside the arena mapping.
        unsafe { self.host_base().add(addr as usize) }
    }

    /// Loads a value of type `T` (any alignment) with read permission.
    #[inline]
    pub fn load<T: Pod>(&self, addr: u64) -> Result<T, Fault> {
        let n = std::mem::size_of::<T>() as u64;
        let page = addr >> PAGE_SHIFT;
        let fast = page < self.size >> PAGE_SHIFT
            && (addr & (PAGE_SIZE - 1)) + n <= PAGE_SIZE
            && self.perm_cell(page).load(Ordering::Relaxed) & (perm::R | perm::PAST_EOF) == perm::R;
        if !fast {
            self.check(addr, n, perm::R, Access::Read)?;
        }
        // SAFETY: the page table granted read access to all `n` bytes, which lie inside the arena.
        Ok(unsafe { self.host(addr).cast::<T>().read_unaligned() })
    }

    /// Stores a value of type `T` (any alignment) with write permission.
    #[inline]
    pub fn store<T: Pod>(&self, addr: u64, value: T) -> Result<(), Fault> {
        let n = std::mem::size_of::<T>() as u64;
        let page = addr >> PAGE_SHIFT;
        let fast = page < self.size >> PAGE_SHIFT
            && (addr & (PAGE_SIZE - 1)) + n <= PAGE_SIZE
            && self.perm_cell(page).load(Ordering::Relaxed) & (perm::W | perm::PAST_EOF) == perm::W;
        if !fast {
            self.check(addr, n, perm::W, Access::Write)?;
        }
        // SAFETY: the page table granted write access to all `n` bytes, inside the arena.
        unsafe { self.host(addr).cast::<T>().write_unaligned(value) };
        Ok(())
    }

    /// Fetches a 16-bit instruction parcel with execute permission.
    #[inline]
    pub fn fetch16(&self, addr: u64) -> Result<u16, Fault> {
        self.check(addr, 2, perm::X, Access::Execute)?;
        // SAFETY: execute permission granted on both bytes, inside the arena.
        Ok(unsafe { self.host(addr).cast::<u16>().read_unaligned() })
    }

    /// A reference to an aligned atomic cell at `addr`, for AMOs and LR/SC.
    ///
    /// Both read and write permission are required, as for a store. The caller checks alignment;
    /// misaligned atomics are a guest fault, not a host one.
    pub fn atomic<A>(&self, addr: u64) -> Result<&A, Fault> {
        let n = std::mem::size_of::<A>() as u64;
        debug_assert_eq!(addr % n, 0);
        self.check(addr, n, perm::RW, Access::Write)?;
        // SAFETY: the bytes are inside the arena, readable and writable, and `addr` (and the
        // page-aligned arena base) is aligned to the atomic's size; the arena outlives `&self`.
        Ok(unsafe { &*self.host(addr).cast::<A>() })
    }

    /// A host byte slice view of guest memory for a syscall that reads it.
    ///
    /// The slice may change under the caller if other guest threads write concurrently, as with
    /// the kernel reading user memory.
    pub fn slice(&self, addr: u64, len: u64) -> Result<&[u8], Fault> {
        self.check(addr, len, perm::R, Access::Read)?;
        if len == 0 {
            return Ok(&[]);
        }
        // SAFETY: checked readable and inside the arena; the arena lives as long as `&self`.
        Ok(unsafe { std::slice::from_raw_parts(self.host(addr), len as usize) })
    }

    /// A host byte slice view of guest memory for a syscall that writes it.
    #[expect(clippy::mut_from_ref, reason = "guest memory is shared mutable state, like user memory seen by a kernel")]
    pub fn slice_mut(&self, addr: u64, len: u64) -> Result<&mut [u8], Fault> {
        self.check(addr, len, perm::W, Access::Write)?;
        if len == 0 {
            return Ok(&mut []);
        }
        // SAFETY: checked writable and inside the arena; concurrent guest writers are the guest's
        // own race, as on hardware.
        Ok(unsafe { std::slice::from_raw_parts_mut(self.host(addr), len as usize) })
    }

    /// Copies bytes out of guest memory.
    pub fn read_bytes(&self, addr: u64, buf: &mut [u8]) -> Result<(), Fault> {
        let src = self.slice(addr, buf.len() as u64)?;
        buf.copy_from_slice(src);
        Ok(())
    }

    /// Copies bytes into guest memory.
    pub fn write_bytes(&self, addr: u64, data: &[u8]) -> Result<(), Fault> {
        self.slice_mut(addr, data.len() as u64)?.copy_from_slice(data);
        Ok(())
    }

    /// Reads a NUL-terminated string of at most `max` bytes (without the NUL).
    pub fn read_cstr(&self, addr: u64, max: usize) -> Result<Vec<u8>, Fault> {
        let mut out = Vec::new();
        let mut a = addr;
        while out.len() < max {
            // Read up to the end of the page at once.
            let room = PAGE_SIZE - (a & (PAGE_SIZE - 1));
            let chunk = self.slice(a, room)?;
            if let Some(nul) = chunk.iter().position(|&b| b == 0) {
                out.extend_from_slice(&chunk[..nul]);
                out.truncate(max);
                return Ok(out);
            }
            out.extend_from_slice(chunk);
            a += room;
        }
        out.truncate(max);
        Ok(out)
    }

    // ----- mappings -----

    /// A snapshot of the current mappings, in address order.
    pub fn mappings(&self) -> Vec<Vma> {
        self.vmas.lock().unwrap_or_else(|e| e.into_inner()).values().cloned().collect()
    }

    /// How many pages of the mappings are resident in host memory (the guest's RSS).
    pub fn resident_pages(&self) -> u64 {
        let mut count = 0u64;
        for v in self.mappings() {
            let pages = ((v.end - v.start) / PAGE_SIZE) as usize;
            let mut resident = vec![0u8; pages];
            // SAFETY: a mapping is a page-aligned range of mapped host memory inside the arena;
            // mincore writes one byte per page into `resident`, which has exactly that many.
            if unsafe { libc::mincore(self.host(v.start).cast(), pages * PAGE_SIZE as usize, resident.as_mut_ptr()) }
                == 0
            {
                count += resident.iter().filter(|r| *r & 1 != 0).count() as u64;
            }
        }
        count
    }

    /// Puts fresh zero pages with host protection `host_prot` at `[start, start+len)`.
    fn replace_with_anon(&self, start: u64, len: u64, host_prot: libc::c_int) -> Result<(), MemError> {
        // SAFETY: the range lies inside the arena (callers check), so MAP_FIXED replaces only
        // guest pages, never host memory outside the reservation.
        let p = unsafe {
            libc::mmap(
                self.host(start).cast(),
                len as usize,
                host_prot,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | libc::MAP_FIXED,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(MemError::Host(std::io::Error::last_os_error()));
        }
        self.place(start, len);
        Ok(())
    }

    /// Gives a fresh host mapping of `[start, start + len)` the address space's NUMA node.
    fn place(&self, start: u64, len: u64) {
        if let Some(node) = self.policy.node {
            limit::prefer_node(self.host(start), len as usize, node);
        }
    }

    fn check_range(&self, start: u64, len: u64) -> Result<u64, MemError> {
        if !start.is_multiple_of(PAGE_SIZE) || len == 0 {
            return Err(MemError::Invalid);
        }
        let len = page_round_up(len).ok_or(MemError::NoMemory)?;
        let end = start.checked_add(len).ok_or(MemError::NoMemory)?;
        if end > self.size {
            return Err(MemError::NoMemory);
        }
        Ok(end)
    }

    /// Finds a free range of `len` bytes, searching down from `below`.
    pub fn find_free(&self, len: u64, below: u64) -> Option<u64> {
        let len = page_round_up(len)?;
        let vmas = self.vmas.lock().unwrap_or_else(|e| e.into_inner());
        let mut top = below.min(self.size);
        for vma in vmas.values().rev() {
            if vma.start >= top {
                continue;
            }
            if vma.end <= top && top - vma.end >= len {
                return Some(top - len);
            }
            top = top.min(vma.start);
        }
        if top >= len + MMAP_MIN_ADDR { Some(top - len) } else { None }
    }

    /// Whether any mapping overlaps `[start, start+len)`.
    pub fn overlaps(&self, start: u64, len: u64) -> bool {
        let end = start.saturating_add(len);
        let vmas = self.vmas.lock().unwrap_or_else(|e| e.into_inner());
        vmas.range(..end).next_back().is_some_and(|(_, v)| v.end > start)
    }

    /// Maps anonymous zeroed memory at a fixed, page-aligned range, replacing what was there.
    pub fn map_anon(&self, start: u64, len: u64, prot: u8, kind: VmaKind) -> Result<(), MemError> {
        self.map_anon_host(start, len, prot, kind, host_prot_for(prot))
    }

    /// As [`Self::map_anon`], with the host protection given (host code filling the pages
    /// before the guest's protection applies).
    fn map_anon_host(
        &self,
        start: u64,
        len: u64,
        prot: u8,
        kind: VmaKind,
        host_prot: libc::c_int,
    ) -> Result<(), MemError> {
        let end = self.check_range(start, len)?;
        self.admit(start, end)?;
        self.unmap_vmas(start, end);
        self.replace_with_anon(start, end - start, host_prot)?;
        self.insert_vma(Vma { start, end, prot, kind });
        self.set_perm_range(start, end, prot | perm::MAPPED);
        Ok(())
    }

    /// Sets the host protection of `[start, end)` from the page table, page by page (in runs).
    fn mirror_table(&self, start: u64, end: u64) {
        let mut run = start;
        while run < end {
            let bits = self.perm_cell(run >> PAGE_SHIFT).load(Ordering::Relaxed);
            let mut next = run + PAGE_SIZE;
            while next < end && self.perm_cell(next >> PAGE_SHIFT).load(Ordering::Relaxed) == bits {
                next += PAGE_SIZE;
            }
            self.host_protect(run, next, host_prot_for(bits));
            run = next;
        }
    }

    fn host_protect(&self, start: u64, end: u64, host_prot: libc::c_int) {
        // SAFETY: the range lies inside the arena and is mapped; only its host protection changes.
        let r = unsafe { libc::mprotect(self.host(start).cast(), (end - start) as usize, host_prot) };
        // mprotect of a mapped, page-aligned range only fails when the host runs out of memory
        // for its own bookkeeping; the page table stays authoritative for host code either way.
        if r != 0 {
            tracing::warn!(start, end, error = %std::io::Error::last_os_error(), "cannot mirror guest protection");
        }
    }

    /// Maps `len` bytes of the file that `kind` ([`VmaKind::File`]) names, at its offset, to a
    /// fixed range, replacing what was there.
    ///
    /// Shared mappings write through to the file (MAP_SHARED); private ones are copy-on-write.
    /// Bytes past the end of the file read as zero up to the page end; pages wholly past it (as
    /// the file is now) are inaccessible [`perm::PAST_EOF`] pages, where an access is SIGBUS as
    /// on Linux, and the host never maps the file there (its own access would be a host SIGBUS).
    /// A file that grows later does not make them accessible.
    pub fn map_file(&self, start: u64, len: u64, prot: u8, kind: VmaKind) -> Result<(), MemError> {
        let VmaKind::File { file, offset, shared, .. } = &kind else {
            return Err(MemError::Invalid);
        };
        let (fd, offset, shared) = (file.clone(), *offset, *shared);
        let end = self.check_range(start, len)?;
        if !offset.is_multiple_of(PAGE_SIZE) {
            return Err(MemError::Invalid);
        }
        self.admit(start, end)?;
        let off = libc::off_t::try_from(offset).map_err(|_| MemError::Invalid)?;
        // SAFETY: fstat writes one `stat` into the zeroed value we pass.
        let st = unsafe {
            let mut st: libc::stat = std::mem::zeroed();
            if libc::fstat(fd.as_raw_fd(), &mut st) != 0 {
                return Err(MemError::Host(std::io::Error::last_os_error()));
            }
            st
        };
        // Only regular files end; devices and the like are mapped whole.
        let file_end = if st.st_mode & libc::S_IFMT == libc::S_IFREG {
            let size = u64::try_from(st.st_size).unwrap_or(0);
            let covered = page_round_up(size.saturating_sub(offset)).unwrap_or(u64::MAX);
            start.saturating_add(covered).min(end)
        } else {
            end
        };
        self.unmap_vmas(start, end);
        let host_prot = host_prot_for(prot);
        let flags = libc::MAP_FIXED | if shared { libc::MAP_SHARED } else { libc::MAP_PRIVATE };
        let p = if file_end > start {
            // SAFETY: the target range lies inside the arena; MAP_FIXED replaces only guest pages.
            unsafe {
                libc::mmap(self.host(start).cast(), (file_end - start) as usize, host_prot, flags, fd.as_raw_fd(), off)
            }
        } else {
            std::ptr::null_mut()
        };
        if file_end > start && p != libc::MAP_FAILED {
            self.place(start, file_end - start);
        }
        let tail =
            if file_end < end { self.replace_with_anon(file_end, end - file_end, libc::PROT_NONE) } else { Ok(()) };
        if p == libc::MAP_FAILED || tail.is_err() {
            let err = std::io::Error::last_os_error();
            // The range must not stay a hole in the host mapping.
            self.replace_with_anon(start, end - start, libc::PROT_NONE)?;
            self.set_perm_range(start, end, 0);
            return Err(MemError::Host(err));
        }
        self.insert_vma(Vma { start, end, prot, kind });
        self.set_perm_range(start, file_end, prot | perm::MAPPED);
        self.set_perm_range(file_end, end, prot | perm::MAPPED | perm::PAST_EOF);
        Ok(())
    }

    /// Unmaps a range (munmap semantics: partial overlaps split mappings; unmapped holes are fine).
    pub fn unmap(&self, start: u64, len: u64) -> Result<(), MemError> {
        let end = self.check_range(start, len)?;
        let had_code = self.unmap_vmas(start, end);
        self.replace_with_anon(start, end - start, libc::PROT_NONE)?;
        self.set_perm_range(start, end, 0);
        if had_code {
            self.flush_code();
        }
        Ok(())
    }

    /// Changes permissions (mprotect semantics: the whole range must be mapped).
    pub fn protect(&self, start: u64, len: u64, prot: u8) -> Result<(), MemError> {
        let end = self.check_range(start, len)?;
        let mut vmas = self.vmas.lock().unwrap_or_else(|e| e.into_inner());
        // The range must be fully covered by mappings (ENOMEM otherwise, as on Linux).
        let mut at = start;
        for (_, v) in vmas.range(..end) {
            if v.end <= at {
                continue;
            }
            if v.start > at {
                return Err(MemError::NoMemory);
            }
            at = v.end;
            if at >= end {
                break;
            }
        }
        if at < end {
            return Err(MemError::NoMemory);
        }
        vma::split_at(&mut vmas, start);
        vma::split_at(&mut vmas, end);
        let mut had_code = false;
        for (_, v) in vmas.range_mut(start..end) {
            had_code |= v.prot & perm::X != 0;
            v.prot = prot;
        }
        vma::merge_around(&mut vmas, start, end);
        drop(vmas);
        for page in start >> PAGE_SHIFT..end >> PAGE_SHIFT {
            let cell = self.perm_cell(page);
            // Pages past the end of a mapped file stay SIGBUS pages.
            let past_eof = cell.load(Ordering::Relaxed) & perm::PAST_EOF;
            cell.store(prot | perm::MAPPED | past_eof, Ordering::Relaxed);
        }
        self.mirror_table(start, end);
        if had_code || prot & perm::X != 0 {
            self.flush_code();
        }
        Ok(())
    }

    /// Discards the contents of private anonymous pages (MADV_DONTNEED): they read back as zero.
    pub fn discard(&self, start: u64, len: u64) -> Result<(), MemError> {
        let end = self.check_range(start, len)?;
        let vmas = self.vmas.lock().unwrap_or_else(|e| e.into_inner());
        for (_, v) in vmas.range(..end) {
            let (s, e) = (v.start.max(start), v.end.min(end));
            if s >= e {
                continue;
            }
            // SAFETY: inside the arena; dropping pages only changes guest-visible contents.
            unsafe { libc::madvise(self.host(s).cast(), (e - s) as usize, libc::MADV_DONTNEED) };
        }
        Ok(())
    }

    /// Removes mappings in `[start, end)`, splitting at the edges. Returns whether code was dropped.
    fn unmap_vmas(&self, start: u64, end: u64) -> bool {
        let mut vmas = self.vmas.lock().unwrap_or_else(|e| e.into_inner());
        vma::split_at(&mut vmas, start);
        vma::split_at(&mut vmas, end);
        let doomed: Vec<u64> = vmas.range(start..end).map(|(&k, _)| k).collect();
        let mut had_code = false;
        let mut freed = 0;
        for k in doomed {
            if let Some(v) = vmas.remove(&k) {
                had_code |= v.prot & perm::X != 0;
                freed += v.end - v.start;
            }
        }
        if let Some(limit) = &self.policy.limit {
            limit.release(freed);
        }
        had_code
    }

    fn insert_vma(&self, vma: Vma) {
        let mut vmas = self.vmas.lock().unwrap_or_else(|e| e.into_inner());
        let (s, e) = (vma.start, vma.end);
        if let Some(limit) = &self.policy.limit {
            limit.charge(e - s);
        }
        vmas.insert(vma.start, vma);
        vma::merge_around(&mut vmas, s, e);
    }

    /// Moves or resizes a mapping (mremap semantics for private anonymous and file mappings).
    pub fn remap(
        &self,
        old: u64,
        old_len: u64,
        new_len: u64,
        may_move: bool,
        fixed: Option<u64>,
    ) -> Result<u64, MemError> {
        let old_end = self.check_range(old, old_len)?;
        let new_len = page_round_up(new_len).ok_or(MemError::NoMemory)?;
        if new_len == 0 {
            return Err(MemError::Invalid);
        }
        let vma = {
            let vmas = self.vmas.lock().unwrap_or_else(|e| e.into_inner());
            match vmas.range(..=old).next_back() {
                Some((_, v)) if v.end >= old_end => v.clone(),
                _ => return Err(MemError::Invalid),
            }
        };
        let old_len = old_end - old;
        if fixed.is_none() && new_len <= old_len {
            if new_len < old_len {
                self.unmap(old + new_len, old_len - new_len)?;
            }
            return Ok(old);
        }
        // Grow in place when the following range is free.
        if fixed.is_none() && !self.overlaps(old_end, new_len - old_len) && old + new_len <= self.size {
            let mut grown = vma.clone();
            grown.start = old_end;
            grown.end = old + new_len;
            self.extend_like(&vma, old_end, old + new_len)?;
            return Ok(old);
        }
        if !may_move {
            return Err(MemError::NoMemory);
        }
        let dest = match fixed {
            Some(d) => d,
            None => self.find_free(new_len, MMAP_BASE).ok_or(MemError::NoMemory)?,
        };
        let dest_end = self.check_range(dest, new_len)?;
        if dest < old_end && old < dest_end {
            return Err(MemError::Invalid);
        }
        // Copy the contents to an anonymous mapping at the destination.
        let keep = old_len.min(new_len);
        let mut buf = vec![0u8; keep as usize];
        // The old range is going away: let the host read it whatever the guest may.
        self.host_protect(old, old + keep, libc::PROT_READ);
        // SAFETY: the old range lies inside the arena and was just made host-readable.
        unsafe { std::ptr::copy_nonoverlapping(self.host(old), buf.as_mut_ptr(), keep as usize) };
        self.map_anon_host(dest, new_len, vma.prot, vma.kind.clone(), libc::PROT_READ | libc::PROT_WRITE)?;
        // SAFETY: the destination was just mapped read/write on the host and is inside the arena.
        unsafe { std::ptr::copy_nonoverlapping(buf.as_ptr(), self.host(dest), keep as usize) };
        self.mirror_table(dest, dest + new_len);
        self.unmap(old, old_len)?;
        Ok(dest)
    }

    fn extend_like(&self, like: &Vma, start: u64, end: u64) -> Result<(), MemError> {
        match &like.kind {
            VmaKind::File { .. } => {
                // Growing a file mapping in place maps zero pages; the file tail is not re-read.
                self.map_anon(start, end - start, like.prot, like.kind.clone())
            }
            kind => self.map_anon(start, end - start, like.prot, kind.clone()),
        }
    }

    // ----- brk -----

    /// Sets where the program break starts (just past the executable's data).
    pub fn init_brk(&self, start: u64) {
        let mut b = self.brk.lock().unwrap_or_else(|e| e.into_inner());
        *b = Brk { start, cur: start };
    }

    /// The brk syscall: moves the break if possible and returns the (possibly unchanged) break.
    pub fn set_brk(&self, want: u64) -> u64 {
        let mut b = self.brk.lock().unwrap_or_else(|e| e.into_inner());
        if want < b.start || want > BRK_LIMIT {
            return b.cur;
        }
        let old_top = page_round_up(b.cur).unwrap_or(b.cur);
        let Some(new_top) = page_round_up(want) else {
            return b.cur;
        };
        if new_top > old_top {
            if self.overlaps(old_top, new_top - old_top) {
                return b.cur;
            }
            if self.map_anon(old_top, new_top - old_top, perm::RW, VmaKind::Heap).is_err() {
                return b.cur;
            }
        } else if new_top < old_top && self.unmap(new_top, old_top - new_top).is_err() {
            return b.cur;
        }
        b.cur = want;
        b.cur
    }

    /// Copies this address space into a new one (fork): same mappings, same contents.
    ///
    /// Pages that were never touched are skipped (they read as zero in both), so forking a large,
    /// sparse address space costs only what it really uses.
    pub fn duplicate(&self) -> Result<AddressSpace, MemError> {
        let child = AddressSpace::build(self.size, self.policy.clone())?;
        let vmas = self.mappings();
        for v in &vmas {
            let len = v.end - v.start;
            match &v.kind {
                VmaKind::File { shared: true, .. } => {
                    child.map_file(v.start, len, v.prot, v.kind.clone())?;
                }
                VmaKind::File { .. } => {
                    // Private file pages may be clean and not resident yet: copy them all.
                    child.map_anon_host(v.start, len, v.prot, v.kind.clone(), libc::PROT_READ | libc::PROT_WRITE)?;
                    self.readable_while(v, || {
                        // SAFETY: both ranges are host-readable (the child's writable) memory of
                        // `len` bytes in two arenas.
                        unsafe { std::ptr::copy_nonoverlapping(self.host(v.start), child.host(v.start), len as usize) };
                    });
                    child.copy_table(self, v.start, v.end);
                }
                _ => {
                    child.map_anon_host(v.start, len, v.prot, v.kind.clone(), libc::PROT_READ | libc::PROT_WRITE)?;
                    self.readable_while(v, || copy_resident(self.host(v.start), child.host(v.start), len as usize));
                    child.copy_table(self, v.start, v.end);
                }
            }
        }
        *child.brk.lock().unwrap_or_else(|e| e.into_inner()) = *self.brk.lock().unwrap_or_else(|e| e.into_inner());
        Ok(child)
    }

    /// Takes `parent`'s page-table entries for `[start, end)` (pages past the end of a file
    /// included) and mirrors them in the host protection.
    fn copy_table(&self, parent: &AddressSpace, start: u64, end: u64) {
        for page in start >> PAGE_SHIFT..end >> PAGE_SHIFT {
            self.perm_cell(page).store(parent.perm_cell(page).load(Ordering::Relaxed), Ordering::Relaxed);
        }
        self.mirror_table(start, end);
    }

    /// Runs `f` with mapping `v` host-readable, even where the guest may not read it (pages
    /// past the end of a file read as zero here).
    fn readable_while(&self, v: &Vma, f: impl FnOnce()) {
        self.host_protect(v.start, v.end, libc::PROT_READ);
        f();
        self.mirror_table(v.start, v.end);
    }
}

/// Copies the resident pages of `len` bytes at `src` to `dst` (both page-aligned host ranges).
fn copy_resident(src: *mut u8, dst: *mut u8, len: usize) {
    let page = PAGE_SIZE as usize;
    let pages = len / page;
    let mut resident = vec![0u8; pages];
    // SAFETY: `src` is a page-aligned range of mapped host memory inside an arena; mincore only
    // writes one byte per page into `resident`, which has exactly that many.
    let known = unsafe { libc::mincore(src.cast(), len, resident.as_mut_ptr()) } == 0;
    for (i, r) in resident.iter().enumerate() {
        if known && r & 1 == 0 {
            continue;
        }
        // SAFETY: both ranges are mapped, readable/writable host memory of `len` bytes inside two
        // distinct arenas, so the page copies are in bounds and do not overlap.
        unsafe { std::ptr::copy_nonoverlapping(src.add(i * page), dst.add(i * page), page) };
    }
}

/// The host protection that mirrors guest permission bits (guest write and execute imply read;
/// pages past the end of a file grant nothing).
fn host_prot_for(prot: u8) -> libc::c_int {
    if prot & perm::PAST_EOF != 0 {
        libc::PROT_NONE
    } else if prot & perm::W != 0 {
        libc::PROT_READ | libc::PROT_WRITE
    } else if prot & (perm::R | perm::X) != 0 {
        libc::PROT_READ
    } else {
        libc::PROT_NONE
    }
}

/// Rounds up to a page multiple (None on overflow).
pub fn page_round_up(v: u64) -> Option<u64> {
    v.checked_add(PAGE_SIZE - 1).map(|x| x & !(PAGE_SIZE - 1))
}

/// Rounds down to a page multiple.
pub fn page_round_down(v: u64) -> u64 {
    v & !(PAGE_SIZE - 1)
}

/// A finished address space no longer counts against its guest's memory cap.
impl Drop for AddressSpace {
    fn drop(&mut self) {
        if let Some(limit) = &self.policy.limit {
            let vmas = self.vmas.get_mut().unwrap_or_else(|e| e.into_inner());
            limit.release(vmas.values().map(|v| v.end - v.start).sum());
        }
    }
}

#[cfg(test)]
mod tests;
