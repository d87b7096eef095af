//! Memory system calls: mmap, munmap, mprotect, mremap, madvise, mincore.
#![expect(
    clippy::cast_possible_truncation,
    reason = "system call arguments are narrowed to their C parameter types as the Linux ABI does, and host sizes are 64-bit"
)]

use std::sync::Arc;

use super::Errno;
use super::fd::FileKind;
use super::syscall::{Sys, SysResult};
use crate::mem::{MMAP_BASE, MemError, PAGE_SIZE, VmaKind, page_round_up, perm};

const PROT_READ: u64 = 1;
const PROT_WRITE: u64 = 2;
const PROT_EXEC: u64 = 4;
const MAP_SHARED: u64 = 0x01;
const MAP_PRIVATE: u64 = 0x02;
const MAP_SHARED_VALIDATE: u64 = 0x03;
const MAP_FIXED: u64 = 0x10;
const MAP_ANONYMOUS: u64 = 0x20;
const MAP_FIXED_NOREPLACE: u64 = 0x10_0000;
const MREMAP_MAYMOVE: u64 = 1;
const MREMAP_FIXED: u64 = 2;

/// Guest protection bits from PROT_* (PROT_WRITE implies read on RISC-V Linux, and so does exec).
pub(crate) fn prot_bits(prot: u64) -> Result<u8, Errno> {
    if prot & !(PROT_READ | PROT_WRITE | PROT_EXEC) != 0 {
        return Err(Errno::EINVAL);
    }
    let mut p = 0;
    if prot & PROT_READ != 0 {
        p |= perm::R;
    }
    if prot & PROT_WRITE != 0 {
        p |= perm::R | perm::W;
    }
    if prot & PROT_EXEC != 0 {
        p |= perm::R | perm::X;
    }
    Ok(p)
}

fn mem_errno(e: &MemError) -> Errno {
    Errno(e.errno())
}

impl Sys<'_> {
    pub fn sys_mmap(&mut self, a: &[u64; 6]) -> SysResult {
        let (addr, len, prot, flags, fd, offset) = (a[0], a[1], a[2], a[3], a[4] as i32, a[5]);
        let kind = flags & 0x03;
        if len == 0 || !matches!(kind, MAP_SHARED | MAP_PRIVATE | MAP_SHARED_VALIDATE) {
            return Err(Errno::EINVAL);
        }
        if !offset.is_multiple_of(PAGE_SIZE) {
            return Err(Errno::EINVAL);
        }
        let len = page_round_up(len).ok_or(Errno::ENOMEM)?;
        if len > self.mem.size() {
            return Err(Errno::ENOMEM);
        }
        let prot = prot_bits(prot)?;
        let fixed = flags & (MAP_FIXED | MAP_FIXED_NOREPLACE) != 0;
        if fixed && !addr.is_multiple_of(PAGE_SIZE) {
            return Err(Errno::EINVAL);
        }
        let start = if fixed {
            if addr.checked_add(len).is_none_or(|e| e > self.mem.size()) {
                return Err(Errno::ENOMEM);
            }
            if flags & MAP_FIXED_NOREPLACE != 0 && flags & MAP_FIXED == 0 && self.mem.overlaps(addr, len) {
                return Err(Errno::EEXIST);
            }
            addr
        } else {
            // A hint is honoured when the range is free, as Linux does.
            let hint = addr & !(PAGE_SIZE - 1);
            if hint >= crate::mem::MMAP_MIN_ADDR
                && hint.checked_add(len).is_some_and(|e| e <= MMAP_BASE)
                && !self.mem.overlaps(hint, len)
            {
                hint
            } else {
                self.mem.find_free(len, MMAP_BASE).ok_or(Errno::ENOMEM)?
            }
        };
        if flags & MAP_ANONYMOUS != 0 {
            // Shared anonymous memory is not shared across fork here; within one process it is
            // ordinary memory.
            self.mem.map_anon(start, len, prot, VmaKind::Anon).map_err(|e| mem_errno(&e))?;
            return Ok(start);
        }
        let file = self.file(fd as u64)?;
        if file.kind == FileKind::Directory {
            return Err(Errno::ENODEV);
        }
        // SAFETY: F_GETFL on a descriptor we hold.
        let fl = unsafe { libc::fcntl(file.raw(), libc::F_GETFL) };
        let acc = fl & libc::O_ACCMODE;
        if acc == libc::O_WRONLY {
            return Err(Errno::EACCES);
        }
        let shared = kind != MAP_PRIVATE;
        if shared && prot & perm::W != 0 && acc != libc::O_RDWR {
            return Err(Errno::EACCES);
        }
        let owned = Arc::new(super::fs::dup_fd(file.raw())?);
        let guest = file.path.clone().unwrap_or_else(|| self.kernel.roots.name_of(file.raw()));
        let name: Arc<str> = String::from_utf8_lossy(&guest).into();
        let vkind = VmaKind::File { file: owned, offset, shared, name };
        self.mem.map_file(start, len, prot, vkind).map_err(|e| mem_errno(&e))?;
        Ok(start)
    }

    pub fn sys_munmap(&mut self, a: &[u64; 6]) -> SysResult {
        if !a[0].is_multiple_of(PAGE_SIZE) || a[1] == 0 {
            return Err(Errno::EINVAL);
        }
        let len = page_round_up(a[1]).ok_or(Errno::EINVAL)?;
        if a[0].checked_add(len).is_none_or(|e| e > self.mem.size()) {
            return Err(Errno::EINVAL);
        }
        self.mem.unmap(a[0], len).map_err(|e| mem_errno(&e))?;
        Ok(0)
    }

    pub fn sys_mprotect(&mut self, a: &[u64; 6]) -> SysResult {
        if !a[0].is_multiple_of(PAGE_SIZE) {
            return Err(Errno::EINVAL);
        }
        if a[1] == 0 {
            return Ok(0);
        }
        let prot = prot_bits(a[2] & !0x0300_0000)?;
        self.mem.protect(a[0], a[1], prot).map_err(|e| mem_errno(&e))?;
        Ok(0)
    }

    pub fn sys_mremap(&mut self, a: &[u64; 6]) -> SysResult {
        let flags = a[3];
        if !a[0].is_multiple_of(PAGE_SIZE) || flags & !(MREMAP_MAYMOVE | MREMAP_FIXED | 4) != 0 {
            return Err(Errno::EINVAL);
        }
        if flags & MREMAP_FIXED != 0 && flags & MREMAP_MAYMOVE == 0 {
            return Err(Errno::EINVAL);
        }
        let fixed = (flags & MREMAP_FIXED != 0).then_some(a[4]);
        if fixed.is_some_and(|f| !f.is_multiple_of(PAGE_SIZE)) {
            return Err(Errno::EINVAL);
        }
        self.mem.remap(a[0], a[1], a[2], flags & MREMAP_MAYMOVE != 0, fixed).map_err(|e| match e {
            MemError::Invalid => Errno::EFAULT,
            e => mem_errno(&e),
        })
    }

    pub fn sys_madvise(&mut self, a: &[u64; 6]) -> SysResult {
        const MADV_DONTNEED: u64 = 4;
        const MADV_FREE: u64 = 8;
        if !a[0].is_multiple_of(PAGE_SIZE) {
            return Err(Errno::EINVAL);
        }
        if a[1] == 0 {
            return Ok(0);
        }
        if matches!(a[2], MADV_DONTNEED | MADV_FREE) {
            self.mem.discard(a[0], a[1]).map_err(|e| mem_errno(&e))?;
        }
        Ok(0)
    }

    pub fn sys_mincore(&mut self, a: &[u64; 6]) -> SysResult {
        if !a[0].is_multiple_of(PAGE_SIZE) {
            return Err(Errno::EINVAL);
        }
        let pages = a[1].div_ceil(PAGE_SIZE);
        for i in 0..pages {
            if self.mem.page_perm(a[0] + i * PAGE_SIZE) & perm::MAPPED == 0 {
                return Err(Errno::ENOMEM);
            }
        }
        let out = self.mem.slice_mut(a[2], pages)?;
        out.fill(1);
        Ok(0)
    }
}
