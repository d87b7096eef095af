//! The ELF loader: maps a RISC-V ELF program (static, static-pie or dynamic) into an address space
//! and builds the Linux initial stack.
//!
//! Placement is fixed (see [`crate::mem`] layout): a position-dependent program sits at its link
//! address, a position-independent one at [`PIE_BASE`], its interpreter (`PT_INTERP`, the dynamic
//! loader) in the mmap area just below [`MMAP_BASE`], the stack ends at [`STACK_TOP`].
//!
//! The initial stack, from `sp` upwards, as the Linux ABI and the riscv64 psABI define it:
//!
//! ```text
//! sp -> argc
//!       argv[0] .. argv[argc-1], NULL
//!       envp[0] .. envp[n-1], NULL
//!       auxv pairs (type, value) .. AT_NULL
//!       padding, 16 random bytes (AT_RANDOM), argument and environment strings, AT_EXECFN string
//! STACK_TOP
//! ```

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use crate::mem::{
    AddressSpace, ImageFile, MMAP_BASE, MemError, PAGE_SIZE, PIE_BASE, STACK_SIZE, STACK_TOP, VmaKind, page_round_down,
    page_round_up, perm,
};

const EM_RISCV: u16 = 243;
const ET_EXEC: u16 = 2;
const ET_DYN: u16 = 3;
const PT_LOAD: u32 = 1;
const PT_INTERP: u32 = 3;
const PT_PHDR: u32 = 6;
const PF_X: u32 = 1;
const PF_W: u32 = 2;
const PF_R: u32 = 4;

/// auxv entry types (include/uapi/linux/auxvec.h).
mod at {
    pub const NULL: u64 = 0;
    pub const PHDR: u64 = 3;
    pub const PHENT: u64 = 4;
    pub const PHNUM: u64 = 5;
    pub const PAGESZ: u64 = 6;
    pub const BASE: u64 = 7;
    pub const FLAGS: u64 = 8;
    pub const ENTRY: u64 = 9;
    pub const UID: u64 = 11;
    pub const EUID: u64 = 12;
    pub const GID: u64 = 13;
    pub const EGID: u64 = 14;
    pub const HWCAP: u64 = 16;
    pub const CLKTCK: u64 = 17;
    pub const SECURE: u64 = 23;
    pub const RANDOM: u64 = 25;
    pub const HWCAP2: u64 = 26;
    pub const EXECFN: u64 = 31;
}

/// AT_HWCAP for RV64IMAFDC: one bit per single-letter extension, bit = letter - 'a'.
pub const HWCAP_RV64GC: u64 = hwcap(b"imafdc");

const fn hwcap(letters: &[u8]) -> u64 {
    let mut bits = 0;
    let mut i = 0;
    while i < letters.len() {
        bits |= 1 << (letters[i] - b'a');
        i += 1;
    }
    bits
}

/// Why a program could not be loaded. The messages read after the file name: "FILE: reason".
#[derive(Debug, thiserror::Error)]
pub enum LoaderError {
    /// The file could not be read.
    #[error("cannot read file")]
    Io(#[source] std::io::Error),
    /// Not an ELF file.
    #[error("not an ELF file")]
    NotElf,
    /// The file ends inside a header or segment.
    #[error("truncated ELF file")]
    Truncated,
    /// Not a 64-bit little-endian ELF.
    #[error("not a 64-bit little-endian ELF file")]
    WrongClass,
    /// An ELF for another architecture.
    #[error("wrong machine: ELF e_machine {0} is not RISC-V")]
    WrongMachine(u16),
    /// Neither an executable nor a shared object.
    #[error("ELF type {0} is not executable")]
    NotExecutable(u16),
    /// Headers that make no sense (overlapping, misaligned, huge).
    #[error("malformed ELF: {0}")]
    Malformed(&'static str),
    /// The program interpreter named by PT_INTERP could not be opened.
    #[error("cannot open program interpreter {path}")]
    Interpreter {
        /// The interpreter's path as the ELF names it.
        path: String,
        /// What went wrong.
        #[source]
        source: std::io::Error,
    },
    /// The interpreter itself is not loadable.
    #[error("bad program interpreter {path}")]
    BadInterpreter {
        /// The interpreter's path.
        path: String,
        /// Why it is bad.
        source: Box<LoaderError>,
    },
    /// Guest memory could not hold the program.
    #[error("cannot map program")]
    Memory(#[source] MemError),
}

impl LoaderError {
    /// The errno execve returns for this error.
    pub fn errno(&self) -> i32 {
        match self {
            LoaderError::Io(e) => e.raw_os_error().unwrap_or(libc::EIO),
            LoaderError::Interpreter { source, .. } => source.raw_os_error().unwrap_or(libc::ENOENT),
            LoaderError::Memory(_) => libc::ENOMEM,
            _ => libc::ENOEXEC,
        }
    }
}

/// One program header.
#[derive(Clone, Copy, Debug)]
struct Phdr {
    kind: u32,
    flags: u32,
    offset: u64,
    vaddr: u64,
    filesz: u64,
    memsz: u64,
}

/// A parsed ELF file's headers.
#[derive(Debug)]
struct Elf {
    kind: u16,
    entry: u64,
    phoff: u64,
    phnum: u16,
    phdrs: Vec<Phdr>,
}

fn u16_at(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes([b[o], b[o + 1]])
}
fn u32_at(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes(b[o..o + 4].try_into().unwrap_or_default())
}
fn u64_at(b: &[u8], o: usize) -> u64 {
    u64::from_le_bytes(b[o..o + 8].try_into().unwrap_or_default())
}

fn parse(file: &File) -> Result<Elf, LoaderError> {
    let mut head = [0u8; 64];
    let n = read_at_most(file, &mut head, 0)?;
    if n < 4 || &head[..4] != b"\x7fELF" {
        return Err(LoaderError::NotElf);
    }
    if n < 64 {
        return Err(LoaderError::Truncated);
    }
    if head[4] != 2 || head[5] != 1 {
        return Err(LoaderError::WrongClass);
    }
    let kind = u16_at(&head, 16);
    let machine = u16_at(&head, 18);
    if machine != EM_RISCV {
        return Err(LoaderError::WrongMachine(machine));
    }
    if kind != ET_EXEC && kind != ET_DYN {
        return Err(LoaderError::NotExecutable(kind));
    }
    let entry = u64_at(&head, 24);
    let phoff = u64_at(&head, 32);
    let phentsize = u16_at(&head, 54);
    let phnum = u16_at(&head, 56);
    if phentsize != 56 {
        return Err(LoaderError::Malformed("program header size is not 56"));
    }
    if phnum == 0 || phnum > 128 {
        return Err(LoaderError::Malformed("bad program header count"));
    }
    let mut table = vec![0u8; usize::from(phnum) * 56];
    if read_at_most(file, &mut table, phoff)? < table.len() {
        return Err(LoaderError::Truncated);
    }
    let phdrs = table
        .chunks_exact(56)
        .map(|p| Phdr {
            kind: u32_at(p, 0),
            flags: u32_at(p, 4),
            offset: u64_at(p, 8),
            vaddr: u64_at(p, 16),
            filesz: u64_at(p, 32),
            memsz: u64_at(p, 40),
        })
        .collect();
    Ok(Elf { kind, entry, phoff, phnum, phdrs })
}

fn read_at_most(file: &File, buf: &mut [u8], offset: u64) -> Result<usize, LoaderError> {
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], offset + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(LoaderError::Io(e)),
        }
    }
    Ok(done)
}

/// Where an image was placed.
#[derive(Debug, Clone, Copy)]
struct Placed {
    bias: u64,
    entry: u64,
    phdr: u64,
    end: u64,
}

fn span(elf: &Elf) -> Result<(u64, u64), LoaderError> {
    let mut lo = u64::MAX;
    let mut hi = 0u64;
    for p in elf.phdrs.iter().filter(|p| p.kind == PT_LOAD) {
        if p.filesz > p.memsz {
            return Err(LoaderError::Malformed("segment file size exceeds memory size"));
        }
        let end = p.vaddr.checked_add(p.memsz).ok_or(LoaderError::Malformed("segment wraps"))?;
        lo = lo.min(page_round_down(p.vaddr));
        hi = hi.max(end);
    }
    if lo == u64::MAX {
        return Err(LoaderError::Malformed("no loadable segment"));
    }
    let hi = page_round_up(hi).ok_or(LoaderError::Malformed("segment wraps"))?;
    Ok((lo, hi))
}

/// Maps the loadable segments of `elf` at `bias`. Each segment is a private copy, labelled as a
/// mapping of `name` for `/proc/self/maps`: the pages that hold file bytes show the file and its
/// offset, the zero-filled pages past them (the rest of `.bss`) show as anonymous, as on Linux.
fn map_image(mem: &AddressSpace, file: &File, name: &[u8], elf: &Elf, bias: u64) -> Result<Placed, LoaderError> {
    let meta = file.metadata().map_err(LoaderError::Io)?;
    let size = meta.len();
    let ident = Arc::new(ImageFile {
        name: String::from_utf8_lossy(name).into(),
        dev: std::os::unix::fs::MetadataExt::dev(&meta),
        ino: std::os::unix::fs::MetadataExt::ino(&meta),
    });
    let mut end = 0;
    let mut phdr = 0;
    for p in elf.phdrs.iter().filter(|p| p.kind == PT_LOAD) {
        if p.offset.checked_add(p.filesz).is_none_or(|e| e > size) {
            return Err(LoaderError::Truncated);
        }
        let start = bias.checked_add(p.vaddr).ok_or(LoaderError::Malformed("segment outside the address space"))?;
        let seg_end = start.checked_add(p.memsz).ok_or(LoaderError::Malformed("segment wraps"))?;
        let map_start = page_round_down(start);
        let map_end = page_round_up(seg_end).ok_or(LoaderError::Malformed("segment wraps"))?;
        if map_end > mem.size() || map_end <= map_start {
            return Err(LoaderError::Malformed("segment outside the address space"));
        }
        let prot = segment_prot(p.flags);
        let file_end = page_round_up(start + p.filesz).ok_or(LoaderError::Malformed("segment wraps"))?.min(map_end);
        // A read-only segment that is all file (text, read-only data) whose offset and address
        // agree within a page is mapped from the file, as Linux does: its pages are shared with
        // every guest running the same program, through the host's page cache.
        let direct = p.flags & PF_W == 0
            && p.memsz == p.filesz
            && file_end == map_end
            && p.offset % PAGE_SIZE == start % PAGE_SIZE
            && file.try_clone().is_ok_and(|f| {
                let kind = VmaKind::File {
                    file: Arc::new(std::os::fd::OwnedFd::from(f)),
                    offset: page_round_down(p.offset),
                    shared: false,
                    name: ident.name.clone(),
                };
                mem.map_file(map_start, map_end - map_start, prot, kind).is_ok()
            });
        if direct {
            end = end.max(seg_end);
            if phdr == 0 && elf.phoff >= p.offset && elf.phoff < p.offset + p.filesz {
                phdr = start + (elf.phoff - p.offset);
            }
            continue;
        }
        // Map read/write first, fill from the file, then apply the segment's protection.
        if file_end > map_start {
            let kind = VmaKind::Image { file: ident.clone(), offset: page_round_down(p.offset) };
            mem.map_anon(map_start, file_end - map_start, perm::RW, kind).map_err(LoaderError::Memory)?;
        }
        if map_end > file_end.max(map_start) {
            let from = file_end.max(map_start);
            mem.map_anon(from, map_end - from, perm::RW, VmaKind::Anon).map_err(LoaderError::Memory)?;
        }
        let mut data = vec![0u8; usize::try_from(p.filesz).map_err(|_| LoaderError::Truncated)?];
        if read_at_most(file, &mut data, p.offset)? < data.len() {
            return Err(LoaderError::Truncated);
        }
        mem.write_bytes(start, &data).map_err(|_| LoaderError::Malformed("segment outside the address space"))?;
        mem.protect(map_start, map_end - map_start, prot).map_err(LoaderError::Memory)?;
        end = end.max(seg_end);
        // The program headers live in the first segment that covers them in the file.
        if phdr == 0 && elf.phoff >= p.offset && elf.phoff < p.offset + p.filesz {
            phdr = start + (elf.phoff - p.offset);
        }
    }
    if let Some(p) = elf.phdrs.iter().find(|p| p.kind == PT_PHDR) {
        phdr = bias.wrapping_add(p.vaddr);
    }
    Ok(Placed { bias, entry: bias.wrapping_add(elf.entry), phdr, end })
}

/// The guest permissions of a segment's `p_flags`.
fn segment_prot(flags: u32) -> u8 {
    let mut prot = 0;
    if flags & PF_R != 0 {
        prot |= perm::R;
    }
    if flags & PF_W != 0 {
        prot |= perm::W;
    }
    if flags & PF_X != 0 {
        prot |= perm::X;
    }
    prot
}

/// What a loaded program needs to start.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The first pc (the interpreter's entry for dynamic programs).
    pub entry: u64,
    /// The initial stack pointer.
    pub sp: u64,
    /// Where the program break starts.
    pub brk: u64,
    /// The auxiliary vector placed on the stack, without the closing `AT_NULL` (for
    /// `/proc/self/auxv`).
    pub auxv: Vec<(u64, u64)>,
}

/// Inputs of [`load`].
#[derive(Debug)]
pub struct Image<'a> {
    /// The program file.
    pub file: &'a File,
    /// Arguments (argv), without NULs.
    pub argv: &'a [Vec<u8>],
    /// Environment strings, without NULs.
    pub envp: &'a [Vec<u8>],
    /// The program's path as given to execve (AT_EXECFN).
    pub execfn: &'a [u8],
    /// The program's absolute guest path, which names its mappings.
    pub name: &'a [u8],
    /// Host uid and gid pairs for auxv.
    pub ids: (u32, u32),
}

/// Opens a program interpreter by its PT_INTERP path: the file and the guest path naming it.
pub type OpenInterp<'a> = dyn Fn(&[u8]) -> std::io::Result<(File, Vec<u8>)> + 'a;

/// Loads `image` into the empty address space `mem` and builds the initial stack.
///
/// `open_interp` opens the program interpreter named by PT_INTERP (it applies the sysroot) and
/// returns it with the guest path that names its mappings.
pub fn load(mem: &AddressSpace, image: &Image<'_>, open_interp: &OpenInterp<'_>) -> Result<Loaded, LoaderError> {
    let elf = parse(image.file)?;
    let interp_path = match elf.phdrs.iter().find(|p| p.kind == PT_INTERP) {
        Some(p) => {
            if p.filesz == 0 || p.filesz > 4096 {
                return Err(LoaderError::Malformed("bad PT_INTERP"));
            }
            let mut buf = vec![0u8; usize::try_from(p.filesz).map_err(|_| LoaderError::Truncated)?];
            if read_at_most(image.file, &mut buf, p.offset)? < buf.len() {
                return Err(LoaderError::Truncated);
            }
            while buf.last() == Some(&0) {
                buf.pop();
            }
            Some(buf)
        }
        None => None,
    };
    let (lo, hi) = span(&elf)?;
    let bias = if elf.kind == ET_DYN { PIE_BASE - lo } else { 0 };
    if elf.kind == ET_EXEC && lo < crate::mem::MMAP_MIN_ADDR {
        return Err(LoaderError::Malformed("segment below the minimum mapping address"));
    }
    let _ = hi;
    let main = map_image(mem, image.file, image.name, &elf, bias)?;
    let brk = page_round_up(main.end).ok_or(LoaderError::Malformed("segment wraps"))?;
    mem.init_brk(brk);

    let mut interp_base = 0;
    let mut entry = main.entry;
    if let Some(path) = interp_path {
        let name = String::from_utf8_lossy(&path).into_owned();
        let (file, iname) =
            open_interp(&path).map_err(|source| LoaderError::Interpreter { path: name.clone(), source })?;
        let ielf = parse(&file).map_err(|e| LoaderError::BadInterpreter { path: name.clone(), source: Box::new(e) })?;
        let (ilo, ihi) =
            span(&ielf).map_err(|e| LoaderError::BadInterpreter { path: name.clone(), source: Box::new(e) })?;
        let base = mem.find_free(ihi - ilo, MMAP_BASE).ok_or(LoaderError::Memory(MemError::NoMemory))?;
        let ibias = if ielf.kind == ET_DYN { base - ilo } else { 0 };
        let placed = map_image(mem, &file, &iname, &ielf, ibias)
            .map_err(|e| LoaderError::BadInterpreter { path: name, source: Box::new(e) })?;
        interp_base = placed.bias;
        entry = placed.entry;
    }

    mem.map_anon(STACK_TOP - STACK_SIZE, STACK_SIZE, perm::RW, VmaKind::Stack).map_err(LoaderError::Memory)?;
    let (sp, auxv) = build_stack(mem, image, &main, elf.phnum, interp_base)?;
    Ok(Loaded { entry, sp, brk, auxv })
}

fn build_stack(
    mem: &AddressSpace,
    image: &Image<'_>,
    main: &Placed,
    phnum: u16,
    interp_base: u64,
) -> Result<(u64, Vec<(u64, u64)>), LoaderError> {
    let too_big = || LoaderError::Memory(MemError::NoMemory);
    let mut top = STACK_TOP - 8;
    let mut push_bytes = |bytes: &[u8], nul: bool| -> Result<u64, LoaderError> {
        let len = bytes.len() as u64 + u64::from(nul);
        top = top.checked_sub(len).ok_or_else(too_big)?;
        if top < STACK_TOP - STACK_SIZE / 4 {
            // Linux caps arguments and environment at a quarter of the stack limit (E2BIG).
            return Err(too_big());
        }
        mem.write_bytes(top, bytes).map_err(|_| too_big())?;
        if nul {
            mem.store::<u8>(top + bytes.len() as u64, 0).map_err(|_| too_big())?;
        }
        Ok(top)
    };
    let execfn = push_bytes(image.execfn, true)?;
    let mut env_ptrs = Vec::with_capacity(image.envp.len());
    for e in image.envp.iter().rev() {
        env_ptrs.push(push_bytes(e, true)?);
    }
    env_ptrs.reverse();
    let mut arg_ptrs = Vec::with_capacity(image.argv.len());
    for a in image.argv.iter().rev() {
        arg_ptrs.push(push_bytes(a, true)?);
    }
    arg_ptrs.reverse();
    let mut random = [0u8; 16];
    fill_random(&mut random);
    let random_at = push_bytes(&random, false)?;

    let (uid, gid) = image.ids;
    let auxv: [(u64, u64); 17] = [
        (at::PHDR, main.phdr),
        (at::PHENT, 56),
        (at::PHNUM, u64::from(phnum)),
        (at::PAGESZ, PAGE_SIZE),
        (at::BASE, interp_base),
        (at::FLAGS, 0),
        (at::ENTRY, main.entry),
        (at::UID, u64::from(uid)),
        (at::EUID, u64::from(uid)),
        (at::GID, u64::from(gid)),
        (at::EGID, u64::from(gid)),
        (at::HWCAP, HWCAP_RV64GC),
        (at::CLKTCK, 100),
        (at::SECURE, 0),
        (at::RANDOM, random_at),
        (at::HWCAP2, 0),
        (at::EXECFN, execfn),
    ];
    let words = 1 + arg_ptrs.len() + 1 + env_ptrs.len() + 1 + 2 * (auxv.len() + 1);
    let sp = (random_at - 8 * words as u64) & !15;
    let mut w = Vec::with_capacity(words);
    w.push(arg_ptrs.len() as u64);
    w.extend_from_slice(&arg_ptrs);
    w.push(0);
    w.extend_from_slice(&env_ptrs);
    w.push(0);
    for (k, v) in auxv {
        w.push(k);
        w.push(v);
    }
    w.push(at::NULL);
    w.push(0);
    let bytes: Vec<u8> = w.iter().flat_map(|v| v.to_le_bytes()).collect();
    mem.write_bytes(sp, &bytes).map_err(|_| too_big())?;
    Ok((sp, auxv.to_vec()))
}

/// Fills `buf` from the host's random source.
pub fn fill_random(buf: &mut [u8]) {
    let mut done = 0;
    while done < buf.len() {
        // SAFETY: getrandom writes at most `len - done` bytes into the rest of `buf`.
        let n = unsafe { libc::getrandom(buf[done..].as_mut_ptr().cast(), buf.len() - done, 0) };
        if n <= 0 {
            // getrandom cannot fail for small requests on Linux >= 3.17 once the pool is ready;
            // fall back to /dev/urandom rather than leave predictable bytes.
            if let Ok(mut f) = File::open("/dev/urandom") {
                let _ = f.read_exact(&mut buf[done..]);
            }
            return;
        }
        done += n as usize;
    }
}

/// Reads the first line of a `#!` script: the interpreter path and its optional single argument.
pub fn script_interpreter(file: &File) -> Option<(Vec<u8>, Option<Vec<u8>>)> {
    let mut head = [0u8; 256];
    let n = read_at_most(file, &mut head, 0).ok()?;
    if n < 2 || &head[..2] != b"#!" {
        return None;
    }
    let line = &head[2..n];
    let line = &line[..line.iter().position(|&b| b == b'\n').unwrap_or(line.len())];
    let trimmed: &[u8] = line.trim_ascii();
    if trimmed.is_empty() {
        return None;
    }
    let split = trimmed.iter().position(|b| b.is_ascii_whitespace());
    match split {
        Some(i) => {
            let arg = trimmed[i..].trim_ascii();
            Some((trimmed[..i].to_vec(), (!arg.is_empty()).then(|| arg.to_vec())))
        }
        None => Some((trimmed.to_vec(), None)),
    }
}
