//! Executable memory for compiled regions: a bounded cache of chunks, evicted oldest first.
//!
//! ```text
//!   chunks (oldest first)
//!   ┌──────────────┐ ┌──────────────┐ ┌────────────┬───────┐
//!   │ r1 r2 r3 ... │ │ r9 r10 ...   │ │ r17 r18    │ free  │  ← new regions go here
//!   └──────────────┘ └──────────────┘ └────────────┴───────┘
//!     evicted first when the arena is full
//! ```
//!
//! A chunk is mapped twice where the host allows it (a memfd): read/execute where code runs and
//! read/write where regions are copied in, so installing a region changes no page protection
//! (an `mprotect` on a multi-threaded process costs every other CPU a TLB shootdown). Elsewhere,
//! and with `SHOAL_PERF_MAP` (perf symbolizes only anonymous memory from its map file), a chunk
//! is read/execute except while a region is copied into it. Evicting a chunk returns the
//! guest entry pcs of its regions so that the owner clears their table slots: chains go through
//! the table only, so once the slots are clear nothing refers to the chunk and it is unmapped.
//! The owner evicts only between runs of compiled code (never while a region of this arena is on
//! the stack).

use std::collections::VecDeque;

use super::{CompileError, TrapSite};

/// Default bytes of executable memory per vCPU.
pub const DEFAULT_ARENA_BYTES: usize = 64 << 20;
/// Default size of one chunk.
const CHUNK_BYTES: usize = 1 << 20;
/// Alignment of each region's entry.
const ALIGN: usize = 16;

/// A bounded cache of executable memory for compiled regions.
#[derive(Debug)]
pub struct CodeArena {
    chunks: VecDeque<Chunk>,
    chunk_bytes: usize,
    max_bytes: usize,
    mapped: usize,
    evictions: u64,
}

#[derive(Debug)]
struct Chunk {
    map: Mapping,
    used: usize,
    /// Guest entry pcs of the regions in this chunk.
    entries: Vec<u64>,
    /// Offsets in the chunk of each region that has trap sites (start, end), with its sites, in
    /// address order.
    traps: Vec<(usize, usize, Vec<TrapSite>)>,
}

impl CodeArena {
    /// An empty arena holding at most about `max_bytes` of code (at least one chunk; chunks are
    /// at most a quarter of the whole, so eviction drops a small part at a time).
    pub fn new(max_bytes: usize) -> CodeArena {
        let chunk_bytes = (max_bytes / 4).clamp(4096, CHUNK_BYTES).next_multiple_of(4096);
        CodeArena { chunks: VecDeque::new(), chunk_bytes, max_bytes, mapped: 0, evictions: 0 }
    }

    /// Copies `code`, the region entered at guest `entry`, into executable memory. Returns the
    /// host address of its first byte and the guest entry pcs of the regions evicted to make
    /// room (whose table slots the caller must clear before running compiled code again).
    pub fn install(&mut self, entry: u64, code: &[u8]) -> Result<(usize, Vec<u64>), CompileError> {
        self.install_with_traps(entry, code, Vec::new())
    }

    /// As [`Self::install`], keeping the region's trap sites for [`Self::trap_site`].
    pub fn install_with_traps(
        &mut self,
        entry: u64,
        code: &[u8],
        traps: Vec<TrapSite>,
    ) -> Result<(usize, Vec<u64>), CompileError> {
        let need = code.len().max(1);
        let fits = self.chunks.back().is_some_and(|c| c.used.next_multiple_of(ALIGN) + need <= c.map.len);
        let mut evicted = Vec::new();
        if !fits {
            let size = need.next_multiple_of(4096).max(self.chunk_bytes);
            while !self.chunks.is_empty() && self.mapped + size > self.max_bytes {
                evicted.extend(self.evict_oldest());
            }
            self.chunks.push_back(Chunk { map: Mapping::new(size)?, used: 0, entries: Vec::new(), traps: Vec::new() });
            self.mapped += size;
        }
        let chunk = self.chunks.back_mut().expect("a chunk with room was just ensured");
        let at = chunk.used.next_multiple_of(ALIGN);
        chunk.map.write(at, code)?;
        chunk.used = at + need;
        chunk.entries.push(entry);
        if !traps.is_empty() {
            chunk.traps.push((at, at + code.len(), traps));
        }
        Ok((chunk.map.ptr as usize + at, evicted))
    }

    /// Whether no region is installed (so no table slot points here).
    pub fn is_empty(&self) -> bool {
        self.chunks.is_empty()
    }

    /// Drops every region.
    pub fn clear(&mut self) {
        self.chunks.clear();
        self.mapped = 0;
    }

    /// The trap site of the installed region instruction at host address `pc`.
    pub fn trap_site(&self, pc: usize) -> Option<TrapSite> {
        let chunk = self.chunks.iter().find(|c| (c.map.ptr as usize..c.map.ptr as usize + c.map.len).contains(&pc))?;
        let at = pc - chunk.map.ptr as usize;
        // The last region starting at or before `at` is the one holding it, if any does.
        let i = chunk.traps.partition_point(|(start, _, _)| *start <= at).checked_sub(1)?;
        let (start, end, traps) = &chunk.traps[i];
        if at >= *end {
            return None;
        }
        let offset = u32::try_from(at - start).ok()?;
        traps.binary_search_by_key(&offset, |t| t.offset).ok().map(|i| traps[i])
    }

    /// Chunks evicted so far.
    pub fn evictions(&self) -> u64 {
        self.evictions
    }

    fn evict_oldest(&mut self) -> Vec<u64> {
        let Some(chunk) = self.chunks.pop_front() else { return Vec::new() };
        self.mapped -= chunk.map.len;
        self.evictions += 1;
        chunk.entries
    }
}

/// Executable memory: a read/execute view and, when the host allows, a read/write view of the
/// same pages; without one the pages are read/execute except inside [`Mapping::write`].
#[derive(Debug)]
struct Mapping {
    ptr: *mut u8,
    /// The writable view, or null.
    alias: *mut u8,
    len: usize,
}

// SAFETY: the mapping is owned by this value; it is written only through `&mut self` and
// otherwise only executed.
unsafe impl Send for Mapping {}
// SAFETY: shared references can only read the address; writing needs `&mut self`. Running the
// code from several threads at once is fine: it is immutable while shared.
unsafe impl Sync for Mapping {}

impl Mapping {
    fn new(len: usize) -> Result<Mapping, CompileError> {
        // perf names JIT code from its map file only in anonymous memory.
        match if super::perf_map::enabled() { None } else { Self::dual(len) } {
            Some(m) => Ok(m),
            None => Self::single(len),
        }
    }

    /// One read/execute view, made writable only while a region is copied in.
    fn single(len: usize) -> Result<Mapping, CompileError> {
        // SAFETY: a fresh private anonymous mapping; nothing else refers to it.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_EXEC,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(CompileError::Memory(std::io::Error::last_os_error()));
        }
        Ok(Mapping { ptr: p.cast(), alias: std::ptr::null_mut(), len })
    }

    /// Two views of one memfd, or `None` where the host refuses any step.
    fn dual(len: usize) -> Option<Mapping> {
        let size = libc::off_t::try_from(len).ok()?;
        // SAFETY: creating, sizing and mapping a fresh memfd of our own; every mapping is new
        // (the kernel picks the address) and the descriptor is closed once both exist.
        unsafe {
            let fd = libc::memfd_create(c"shoal-jit".as_ptr(), libc::MFD_CLOEXEC);
            if fd < 0 {
                return None;
            }
            let map = |prot| libc::mmap(std::ptr::null_mut(), len, prot, libc::MAP_SHARED, fd, 0);
            let mut views = None;
            if libc::ftruncate(fd, size) == 0 {
                let exec = map(libc::PROT_READ | libc::PROT_EXEC);
                let write = map(libc::PROT_READ | libc::PROT_WRITE);
                match (exec == libc::MAP_FAILED, write == libc::MAP_FAILED) {
                    (false, false) => views = Some((exec, write)),
                    (false, true) => drop(libc::munmap(exec, len)),
                    (true, false) => drop(libc::munmap(write, len)),
                    (true, true) => {}
                }
            }
            libc::close(fd);
            let (exec, write) = views?;
            Some(Mapping { ptr: exec.cast(), alias: write.cast(), len })
        }
    }

    /// Copies `bytes` to offset `at`: through the writable view, or making the pages writable
    /// only for the copy.
    fn write(&mut self, at: usize, bytes: &[u8]) -> Result<(), CompileError> {
        assert!(at + bytes.len() <= self.len, "write past the end of a code chunk");
        if !self.alias.is_null() {
            // SAFETY: the range is inside the writable view (asserted above), which maps the
            // same pages as the executable one; no code in the range runs yet (the owner
            // installs it only after this returns), and `bytes` is a separate allocation.
            unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.alias.add(at), bytes.len()) };
            return Ok(());
        }
        let first = at & !4095;
        let span = (at + bytes.len()).next_multiple_of(4096).min(self.len) - first;
        // SAFETY: `first..first + span` lies inside our mapping; the owner guarantees that no
        // code of this mapping runs while it is written (see the module docs).
        let protect = |prot| unsafe { libc::mprotect(self.ptr.add(first).cast(), span, prot) };
        if protect(libc::PROT_READ | libc::PROT_WRITE) != 0 {
            return Err(CompileError::Memory(std::io::Error::last_os_error()));
        }
        // SAFETY: the destination range is inside the mapping (asserted above) and writable now;
        // `bytes` is a separate allocation.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.ptr.add(at), bytes.len()) };
        if protect(libc::PROT_READ | libc::PROT_EXEC) != 0 {
            return Err(CompileError::Memory(std::io::Error::last_os_error()));
        }
        Ok(())
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: the mappings made in `new`, unmapped once; its owner drops it only when no
        // code in it can run any more.
        unsafe {
            libc::munmap(self.ptr.cast(), self.len);
            if !self.alias.is_null() {
                libc::munmap(self.alias.cast(), self.len);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_arena_evicts_oldest_chunks_first() {
        let mut a = CodeArena::new(3 * 4096);
        let code = vec![0xc3u8; 3000];
        let mut evicted = Vec::new();
        for pc in 0..10u64 {
            let (addr, gone) = a.install(pc, &code).unwrap();
            assert_eq!(addr % ALIGN, 0);
            // SAFETY: `addr` points at the 3000 bytes just installed, readable.
            let first = unsafe { *(addr as *const u8) };
            assert_eq!(first, 0xc3);
            evicted.extend(gone);
        }
        // One 3000-byte region per 4 KiB chunk, three chunks at most: the first seven went.
        assert_eq!(evicted, (0..7).collect::<Vec<_>>());
        assert_eq!(a.evictions(), 7);
    }

    #[test]
    fn regions_larger_than_a_chunk_get_their_own() {
        let mut a = CodeArena::new(64 << 10);
        let (addr, gone) = a.install(1, &vec![0x90; 20_000]).unwrap();
        assert!(gone.is_empty());
        // SAFETY: the last byte of the region just installed.
        assert_eq!(unsafe { *((addr + 19_999) as *const u8) }, 0x90);
    }

    #[test]
    fn both_kinds_of_mapping_take_code() {
        let dual = Mapping::dual(8192).expect("memfd works on the test host");
        assert!(!dual.alias.is_null());
        for mut m in [dual, Mapping::single(8192).unwrap()] {
            m.write(4000, &[0xc3; 200]).unwrap();
            // SAFETY: bytes just written, in the readable executable view.
            let got = unsafe { std::slice::from_raw_parts(m.ptr.add(3999), 202) };
            assert_eq!((got[0], got[1], got[200], got[201]), (0, 0xc3, 0xc3, 0));
        }
    }

    #[test]
    fn trap_sites_are_found_by_host_address() {
        let mut a = CodeArena::new(64 << 10);
        let site = |offset, pc| TrapSite { offset, done: 1, pc, replay: false };
        let (first, _) = a.install_with_traps(0x100, &[0x90; 40], vec![site(3, 0x100), site(30, 0x104)]).unwrap();
        let (plain, _) = a.install(0x200, &[0x90; 40]).unwrap();
        let (second, _) = a.install_with_traps(0x300, &[0x90; 40], vec![site(0, 0x300)]).unwrap();
        assert_eq!(a.trap_site(first + 3), Some(site(3, 0x100)));
        assert_eq!(a.trap_site(first + 30), Some(site(30, 0x104)));
        assert_eq!(a.trap_site(first + 4), None, "not a site");
        assert_eq!(a.trap_site(plain + 3), None, "a region without sites");
        assert_eq!(a.trap_site(second), Some(site(0, 0x300)));
        assert_eq!(a.trap_site(0x10), None, "outside every chunk");
    }
}
