//! Code objects: a compiled region as bytes, to keep on disk and later to send to other hosts.
//!
//! Compiled code is position independent (it reaches everything through `Cpu` and `Env`), so the
//! machine code of a region plus a little metadata is all it takes to run it again in another
//! process or on another host whose translator and host CPU match. A code object is one header
//! followed by the region's block list, that machine code and its trap sites (`jit::fault`):
//!
//! ```text
//!  offset       size           field
//!  -----------  -------------  ------------------------------------------------------------
//!            0              8  magic        b"SHOALJIT"
//!            8              4  version      FORMAT_VERSION
//!           12             32  key          the entry key the object is filed under (below)
//!           44              8  entry        guest pc of the region's entry
//!           52              4  guest_insts  guest instructions the region covers
//!           56              8  code_len     bytes of machine code
//!           64              4  trap_count   trap sites after the code
//!           68             32  region       the region key: the guest code compiled (below)
//!          100              4  block_count  blocks of the region
//!          104             32  digest       blake3(bytes 0..104 ‖ blocks ‖ code ‖ traps)
//!          136  8*block_count  blocks       start pc of each block, strictly ascending, the
//!                                           entry among them
//!            …       code_len  code         host machine code, entered at its first byte
//!            …  16*trap_count  traps        per site: offset u32, done u32 (bit 31: replay),
//!                                           guest pc u64; offsets strictly ascending, inside
//!                                           the code
//! ```
//!
//! Integers are little endian. [`decode`] accepts a byte string only if every field checks out:
//! the magic, the version, the key (it must equal the key the caller looked up), the length
//! (exactly `136 + 8 * block_count + code_len + 16 * trap_count` bytes, nothing missing and
//! nothing after), the digest, the block list and the order of the trap sites. Anything else is
//! an [`ObjectError`] naming the field, whatever the input; decoding never panics.
//!
//! The digest catches corruption (a torn write, a bad disk, a truncated transfer). It
//! authenticates nothing: whoever can write an object can write its digest. Objects are trusted
//! because of where they come from (the user's own cache directory, an authenticated peer).
//!
//! # Keys
//!
//! Keys are blake3 hashes in key-derivation mode (so that their inputs can never collide with any
//! other hash shoal makes), with every variable-length input preceded by its length so that the
//! encoding is unambiguous:
//!
//! ```text
//! fingerprint = H("shoal jit fingerprint", TRANSLATOR_VERSION ‖ crate version ‖ guest ISA
//!                  ‖ host ISA name ‖ target triple ‖ shared Cranelift flags ‖ host ISA flags)
//! region key  = H("shoal jit region key", fingerprint ‖ entry pc
//!                  ‖ for each block: guest pc ‖ length ‖ raw guest bytes)
//! entry key   = H("shoal jit entry key", fingerprint ‖ entry pc ‖ length ‖ raw guest bytes
//!                  of the entry block)
//! ```
//!
//! The region key names the machine code: it covers every guest byte the code was compiled from
//! and everything about the host and the translator that shapes it. An object is filed under its
//! entry key, which names only where the region starts, so that a run that forms the region at
//! that entry from other blocks (which blocks a region takes depends on what ran before it got
//! hot) still finds it. Such code is used only after the region is formed again from the
//! object's own block list and that region's key equals the object's region key: the guest bytes
//! are then exactly those the code was compiled from (`jit::service`).
//!
//! The host ISA flags carry the CPU features the generated code may use (AVX2, BMI2, ...), so code
//! compiled on one CPU is never run on a CPU lacking a feature it uses.

use std::fmt;

use cranelift_codegen::isa::TargetIsa;

use super::{MachineCode, MemoryModel, TrapSite};

/// The first eight bytes of every code object.
pub const MAGIC: [u8; 8] = *b"SHOALJIT";

/// The bit of a trap site's `done` word that holds its `replay` flag.
const REPLAY_BIT: u32 = 31;

/// Version of the byte layout drawn in the module docs. Bump it whenever the layout changes.
pub const FORMAT_VERSION: u32 = 4;

/// Version of the translator: region formation, code generation and the calling convention
/// (`Cpu`, `Env` layouts and exit codes) as they shape the machine code.
///
/// **Bump rule:** any change that can change the machine code produced for the same guest bytes,
/// or what that code expects of `Cpu` and `Env`, must bump this constant: a change in `codegen.rs`
/// or `region.rs`, in the layout of `Cpu` or `Env`, in the exit codes or the helper tables, or an
/// upgrade of Cranelift. Old objects then stop matching and are recompiled; forgetting it lets
/// stale code run.
pub const TRANSLATOR_VERSION: u32 = 26;

/// The guest instruction set the translator compiles, part of every fingerprint.
const GUEST_ISA: &str = "riscv64gc-linux";

/// Bytes in a code object's header, before the block list.
pub const HEADER_LEN: usize = 136;

/// Where the digest starts: it covers the header before it and everything after it.
const DIGEST_AT: usize = 104;

/// Bytes of one block's pc in the block list.
const BLOCK_LEN: usize = 8;

/// Bytes of one trap site.
const TRAP_LEN: usize = 16;

/// Key-derivation contexts: one per kind of hash, so that no two can collide.
const FINGERPRINT_CONTEXT: &str = "shoal 2025 jit fingerprint";
const REGION_KEY_CONTEXT: &str = "shoal 2025 jit region key";
const ENTRY_KEY_CONTEXT: &str = "shoal 2026 jit entry key";

/// A key: the blake3 hash naming one region's entry or its machine code for one kind of host
/// (module docs).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key([u8; 32]);

impl Key {
    /// The key with these bytes.
    pub const fn from_bytes(bytes: [u8; 32]) -> Key {
        Key(bytes)
    }

    /// The key's bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for Key {
    /// Lower-case hex, 64 digits.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key({self})")
    }
}

/// Hashes what makes machine code compiled on this host valid: the translator, the guest ISA, the
/// host ISA and every Cranelift flag, shared and ISA-specific (these carry the host CPU features
/// the code may use).
pub fn fingerprint(isa: &dyn TargetIsa, model: MemoryModel) -> [u8; 32] {
    let mut h = blake3::Hasher::new_derive_key(FINGERPRINT_CONTEXT);
    h.update(&TRANSLATOR_VERSION.to_le_bytes());
    let model = match model {
        MemoryModel::Checked => "checked",
        MemoryModel::Guarded => "guarded",
    };
    for part in
        [env!("CARGO_PKG_VERSION"), GUEST_ISA, isa.name(), &isa.triple().to_string(), &isa.flags().to_string(), model]
    {
        update_prefixed(&mut h, part.as_bytes());
    }
    let isa_flags = isa.isa_flags();
    h.update(&(isa_flags.len() as u64).to_le_bytes());
    for flag in isa_flags {
        update_prefixed(&mut h, flag.to_string().as_bytes());
    }
    *h.finalize().as_bytes()
}

/// The key of the region entered at `entry_pc` made of `blocks`: each block's guest pc and the raw
/// guest bytes it was decoded from.
///
/// The key depends on the order of `blocks`; callers pass them in ascending pc order (the order
/// `Region::blocks` iterates), so the same region always gets the same key.
pub fn region_key<'a>(fingerprint: &[u8; 32], entry_pc: u64, blocks: impl IntoIterator<Item = (u64, &'a [u8])>) -> Key {
    let mut h = blake3::Hasher::new_derive_key(REGION_KEY_CONTEXT);
    h.update(fingerprint);
    h.update(&entry_pc.to_le_bytes());
    for (pc, bytes) in blocks {
        h.update(&pc.to_le_bytes());
        update_prefixed(&mut h, bytes);
    }
    Key(*h.finalize().as_bytes())
}

/// The entry key of the region entered at `entry_pc` whose first block is `entry_bytes`: the name
/// its code object is filed under.
pub fn entry_key(fingerprint: &[u8; 32], entry_pc: u64, entry_bytes: &[u8]) -> Key {
    let mut h = blake3::Hasher::new_derive_key(ENTRY_KEY_CONTEXT);
    h.update(fingerprint);
    h.update(&entry_pc.to_le_bytes());
    update_prefixed(&mut h, entry_bytes);
    Key(*h.finalize().as_bytes())
}

/// Hashes `bytes` preceded by their length, so that consecutive fields cannot run into each other.
fn update_prefixed(h: &mut blake3::Hasher, bytes: &[u8]) {
    h.update(&(bytes.len() as u64).to_le_bytes());
    h.update(bytes);
}

/// A decoded code object: the machine code of one compiled region and what it was compiled from.
#[derive(Clone, PartialEq, Eq)]
pub struct CodeObject {
    /// The entry key the object is filed under.
    pub key: Key,
    /// The region key of the guest code the machine code was compiled from.
    pub region: Key,
    /// Guest pc of the region's entry.
    pub entry: u64,
    /// Guest instructions the region covers.
    pub guest_insts: u32,
    /// Start pcs of the region's blocks, ascending; the entry is one of them.
    pub blocks: Vec<u64>,
    /// Host machine code, entered at its first byte with the JIT's calling convention, and its
    /// trap sites.
    pub code: MachineCode,
}

impl fmt::Debug for CodeObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CodeObject")
            .field("key", &self.key)
            .field("region", &self.region)
            .field("entry", &format_args!("{:#x}", self.entry))
            .field("guest_insts", &self.guest_insts)
            .field("blocks", &self.blocks.len())
            .field("code_len", &self.code.code.len())
            .field("traps", &self.code.traps.len())
            .finish()
    }
}

/// Why bytes are not a valid code object for the key asked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ObjectError {
    /// Fewer bytes than a header.
    #[error("code object truncated: {len} bytes, shorter than its {HEADER_LEN}-byte header")]
    Truncated {
        /// Bytes there were.
        len: usize,
    },
    /// The first eight bytes are not [`MAGIC`].
    #[error("not a code object: magic {found:02x?}")]
    Magic {
        /// The bytes found instead.
        found: [u8; 8],
    },
    /// A layout this build does not read.
    #[error("code object format version {found}, this build reads version {FORMAT_VERSION}")]
    Version {
        /// The version found.
        found: u32,
    },
    /// The object was compiled under another key than the one looked up.
    #[error("code object has key {found}, expected {expected}")]
    Key {
        /// The key in the object.
        found: Key,
        /// The key asked for.
        expected: Key,
    },
    /// The block list, code and trap sites after the header are not as long as the header says:
    /// bytes missing or trailing.
    #[error("code object declares {declared} bytes of blocks, code and trap sites but holds {actual}")]
    CodeLength {
        /// Bytes the header's `block_count`, `code_len` and `trap_count` make.
        declared: u64,
        /// Bytes after the header.
        actual: u64,
    },
    /// The block list is not strictly ascending or lacks the entry.
    #[error("code object block list is out of order or lacks the entry")]
    Blocks,
    /// A trap site out of order or outside the code.
    #[error("code object trap site {index} is out of order or outside the code")]
    TrapSite {
        /// Which site.
        index: usize,
    },
    /// The digest does not match the header and code: the bytes are corrupt.
    #[error("code object digest mismatch: the object is corrupt")]
    Digest,
}

/// Serializes one compiled region in the layout drawn in the module docs.
pub fn encode(obj: &CodeObject) -> Vec<u8> {
    let code = &obj.code;
    let blocks: Vec<u8> = obj.blocks.iter().flat_map(|pc| pc.to_le_bytes()).collect();
    let mut traps = Vec::with_capacity(TRAP_LEN * code.traps.len());
    for t in &code.traps {
        traps.extend_from_slice(&t.offset.to_le_bytes());
        traps.extend_from_slice(&(t.done | u32::from(t.replay) << REPLAY_BIT).to_le_bytes());
        traps.extend_from_slice(&t.pc.to_le_bytes());
    }
    let mut out = Vec::with_capacity(HEADER_LEN + blocks.len() + code.code.len() + traps.len());
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&obj.key.0);
    out.extend_from_slice(&obj.entry.to_le_bytes());
    out.extend_from_slice(&obj.guest_insts.to_le_bytes());
    out.extend_from_slice(&(code.code.len() as u64).to_le_bytes());
    out.extend_from_slice(&u32::try_from(code.traps.len()).unwrap_or(u32::MAX).to_le_bytes());
    out.extend_from_slice(&obj.region.0);
    out.extend_from_slice(&u32::try_from(obj.blocks.len()).unwrap_or(u32::MAX).to_le_bytes());
    debug_assert_eq!(out.len(), DIGEST_AT);
    let digest = digest(&out, &[&blocks, &code.code, &traps]);
    out.extend_from_slice(digest.as_bytes());
    out.extend_from_slice(&blocks);
    out.extend_from_slice(&code.code);
    out.extend_from_slice(&traps);
    out
}

/// Parses and checks a code object that must have been compiled under `expected_key`.
pub fn decode(bytes: &[u8], expected_key: &Key) -> Result<CodeObject, ObjectError> {
    let short = || ObjectError::Truncated { len: bytes.len() };
    let (header, payload) = bytes.split_first_chunk::<HEADER_LEN>().ok_or_else(short)?;
    let (magic, rest) = header.split_first_chunk::<8>().ok_or_else(short)?;
    let (version, rest) = rest.split_first_chunk::<4>().ok_or_else(short)?;
    let (key, rest) = rest.split_first_chunk::<32>().ok_or_else(short)?;
    let (entry, rest) = rest.split_first_chunk::<8>().ok_or_else(short)?;
    let (guest_insts, rest) = rest.split_first_chunk::<4>().ok_or_else(short)?;
    let (code_len, rest) = rest.split_first_chunk::<8>().ok_or_else(short)?;
    let (trap_count, rest) = rest.split_first_chunk::<4>().ok_or_else(short)?;
    let (region, rest) = rest.split_first_chunk::<32>().ok_or_else(short)?;
    let (block_count, rest) = rest.split_first_chunk::<4>().ok_or_else(short)?;
    let (stored, _) = rest.split_first_chunk::<32>().ok_or_else(short)?;

    if *magic != MAGIC {
        return Err(ObjectError::Magic { found: *magic });
    }
    let version = u32::from_le_bytes(*version);
    if version != FORMAT_VERSION {
        return Err(ObjectError::Version { found: version });
    }
    let key = Key(*key);
    if key != *expected_key {
        return Err(ObjectError::Key { found: key, expected: *expected_key });
    }
    let code_len = u64::from_le_bytes(*code_len);
    let block_bytes = u64::from(u32::from_le_bytes(*block_count)) * BLOCK_LEN as u64;
    let trap_bytes = u64::from(u32::from_le_bytes(*trap_count)) * TRAP_LEN as u64;
    let declared = block_bytes.saturating_add(code_len).saturating_add(trap_bytes);
    let actual = payload.len() as u64;
    if declared != actual {
        return Err(ObjectError::CodeLength { declared, actual });
    }
    // Both lengths are at most the payload's length, a usize.
    let (block_list, rest) = payload.split_at(usize::try_from(block_bytes).unwrap_or(usize::MAX));
    let (code, traps) = rest.split_at(usize::try_from(code_len).unwrap_or(usize::MAX));
    let covered = header.get(..DIGEST_AT).ok_or_else(short)?;
    // `blake3::Hash` compares in constant time; nothing here needs it, but nothing is lost.
    if digest(covered, &[block_list, code, traps]) != blake3::Hash::from_bytes(*stored) {
        return Err(ObjectError::Digest);
    }
    let entry = u64::from_le_bytes(*entry);
    let mut blocks = Vec::with_capacity(block_list.len() / BLOCK_LEN);
    for raw in block_list.chunks_exact(BLOCK_LEN) {
        let (pc, _) = raw.split_first_chunk::<BLOCK_LEN>().ok_or_else(short)?;
        blocks.push(u64::from_le_bytes(*pc));
    }
    if !blocks.is_sorted_by(|a, b| a < b) || blocks.binary_search(&entry).is_err() {
        return Err(ObjectError::Blocks);
    }
    let mut sites = Vec::with_capacity(traps.len() / TRAP_LEN);
    for (index, raw) in traps.chunks_exact(TRAP_LEN).enumerate() {
        let (offset, rest) = raw.split_first_chunk::<4>().ok_or_else(short)?;
        let (done, rest) = rest.split_first_chunk::<4>().ok_or_else(short)?;
        let (pc, _) = rest.split_first_chunk::<8>().ok_or_else(short)?;
        let done = u32::from_le_bytes(*done);
        let site = TrapSite {
            offset: u32::from_le_bytes(*offset),
            done: done & !(1 << REPLAY_BIT),
            pc: u64::from_le_bytes(*pc),
            replay: done >> REPLAY_BIT != 0,
        };
        let ordered = sites.last().is_none_or(|prev: &TrapSite| prev.offset < site.offset);
        if !ordered || u64::from(site.offset) >= code_len {
            return Err(ObjectError::TrapSite { index });
        }
        sites.push(site);
    }
    Ok(CodeObject {
        key,
        region: Key(*region),
        entry,
        guest_insts: u32::from_le_bytes(*guest_insts),
        blocks,
        code: MachineCode { code: code.to_vec(), traps: sites },
    })
}

/// The digest of a header's first [`DIGEST_AT`] bytes and the payload parts after it.
fn digest(header: &[u8], payload: &[&[u8]]) -> blake3::Hash {
    let mut h = blake3::Hasher::new();
    h.update(header);
    for part in payload {
        h.update(part);
    }
    h.finalize()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> Key {
        Key([n; 32])
    }

    /// A code object filed under `key(k)` for the region at `entry` of two blocks.
    fn object(k: u8, entry: u64, guest_insts: u32, code: MachineCode) -> CodeObject {
        CodeObject { key: key(k), region: key(0xee), entry, guest_insts, blocks: vec![entry, entry + 4], code }
    }

    /// The bytes of [`object`].
    fn encoded(k: u8, entry: u64, guest_insts: u32, code: MachineCode) -> Vec<u8> {
        encode(&object(k, entry, guest_insts, code))
    }

    /// Machine-code-like bytes that differ at every position, with a trap site every 50 bytes.
    fn code(len: usize) -> MachineCode {
        MachineCode {
            code: (0..len).map(|i| (i.wrapping_mul(31) ^ (i >> 8)).to_le_bytes()[0]).collect(),
            traps: (0..len)
                .step_by(50)
                .map(|i| TrapSite {
                    offset: u32::try_from(i).unwrap(),
                    done: u32::try_from(i / 50).unwrap(),
                    pc: 0x1_0000 + i as u64,
                    replay: i % 100 == 50,
                })
                .collect(),
        }
    }

    /// Bytes after the header for `code(len)` in [`object`].
    fn payload(len: usize) -> usize {
        2 * BLOCK_LEN + len + TRAP_LEN * len.div_ceil(50)
    }

    #[test]
    fn round_trip() {
        for len in [0, 1, 17, 4096] {
            let obj = object(7, 0x1_0000_1234, 321, code(len));
            let bytes = encode(&obj);
            assert_eq!(bytes.len(), HEADER_LEN + payload(len));
            assert_eq!(decode(&bytes, &key(7)), Ok(obj));
        }
    }

    #[test]
    fn layout_matches_the_drawing() {
        let site = TrapSite { offset: 1, done: 0x0506_0708, pc: 0x1112_1314_1516_1718, replay: true };
        let code = MachineCode { code: vec![0xc3, 0x90], traps: vec![site] };
        let obj = CodeObject {
            key: key(0xab),
            region: key(0xcd),
            entry: 0x1122_3344_5566_7788,
            guest_insts: 0x99aa_bbcc,
            blocks: vec![0x10, 0x1122_3344_5566_7788],
            code,
        };
        let bytes = encode(&obj);
        assert_eq!(&bytes[0..8], b"SHOALJIT");
        assert_eq!(bytes[8..12], 4u32.to_le_bytes());
        assert_eq!(bytes[12..44], [0xab; 32]);
        assert_eq!(bytes[44..52], 0x1122_3344_5566_7788u64.to_le_bytes());
        assert_eq!(bytes[52..56], 0x99aa_bbccu32.to_le_bytes());
        assert_eq!(bytes[56..64], 2u64.to_le_bytes());
        assert_eq!(bytes[64..68], 1u32.to_le_bytes());
        assert_eq!(bytes[68..100], [0xcd; 32]);
        assert_eq!(bytes[100..104], 2u32.to_le_bytes());
        let mut h = blake3::Hasher::new();
        h.update(&bytes[..104]);
        h.update(&bytes[136..]);
        assert_eq!(bytes[104..136], *h.finalize().as_bytes());
        assert_eq!(bytes[136..144], 0x10u64.to_le_bytes());
        assert_eq!(bytes[144..152], 0x1122_3344_5566_7788u64.to_le_bytes());
        assert_eq!(bytes[152..154], [0xc3, 0x90]);
        assert_eq!(bytes[154..158], 1u32.to_le_bytes());
        assert_eq!(bytes[158..162], 0x8506_0708u32.to_le_bytes());
        assert_eq!(bytes[162..170], 0x1112_1314_1516_1718u64.to_le_bytes());
        assert_eq!(bytes.len(), 170);
    }

    #[test]
    fn block_lists_out_of_order_or_without_the_entry_are_rejected() {
        for blocks in [vec![0x1004, 0x1000], vec![0x1000, 0x1000], vec![0x1004], vec![]] {
            let obj = CodeObject { blocks, ..object(1, 0x1000, 1, code(8)) };
            assert_eq!(decode(&encode(&obj), &key(1)), Err(ObjectError::Blocks));
        }
    }

    #[test]
    fn trap_sites_out_of_order_or_outside_the_code_are_rejected() {
        let site = |offset| TrapSite { offset, done: 0, pc: 0x1000, replay: false };
        for (traps, index) in
            [(vec![site(4), site(4)], 1), (vec![site(5), site(2)], 1), (vec![site(8)], 0), (vec![site(1), site(9)], 1)]
        {
            let bytes = encoded(1, 0x1000, 1, MachineCode { code: vec![0x90; 8], traps });
            assert_eq!(decode(&bytes, &key(1)), Err(ObjectError::TrapSite { index }));
        }
    }

    #[test]
    fn every_truncation_is_rejected() {
        let bytes = encoded(1, 0x1000, 10, code(200));
        for len in 0..bytes.len() {
            let err = decode(&bytes[..len], &key(1)).expect_err("a truncated object must not decode");
            if len < HEADER_LEN {
                assert_eq!(err, ObjectError::Truncated { len });
            } else {
                let declared = payload(200) as u64;
                assert_eq!(err, ObjectError::CodeLength { declared, actual: (len - HEADER_LEN) as u64 });
            }
        }
    }

    #[test]
    fn trailing_bytes_are_rejected() {
        let mut bytes = encoded(1, 0x1000, 10, code(64));
        bytes.push(0);
        let declared = payload(64) as u64;
        assert_eq!(decode(&bytes, &key(1)), Err(ObjectError::CodeLength { declared, actual: declared + 1 }));
    }

    #[test]
    fn every_bit_flip_is_rejected() {
        let bytes = encoded(3, 0x8000_0000, 99, code(150));
        for at in 0..bytes.len() {
            for bit in 0..8 {
                let mut bad = bytes.clone();
                bad[at] ^= 1 << bit;
                let err = decode(&bad, &key(3)).expect_err("a corrupted object must not decode");
                let expected_kind = match at {
                    0..8 => matches!(err, ObjectError::Magic { .. }),
                    8..12 => matches!(err, ObjectError::Version { .. }),
                    12..44 => matches!(err, ObjectError::Key { .. }),
                    56..68 | 100..104 => matches!(err, ObjectError::CodeLength { .. }),
                    _ => err == ObjectError::Digest,
                };
                assert!(expected_kind, "flip of bit {bit} at byte {at}: {err:?}");
            }
        }
    }

    #[test]
    fn wrong_key_is_rejected() {
        let bytes = encoded(1, 0x1000, 1, code(8));
        assert_eq!(decode(&bytes, &key(2)), Err(ObjectError::Key { found: key(1), expected: key(2) }));
    }

    #[test]
    fn wrong_version_is_rejected() {
        let mut bytes = encoded(1, 0x1000, 1, code(8));
        bytes[8..12].copy_from_slice(&(FORMAT_VERSION + 1).to_le_bytes());
        assert_eq!(decode(&bytes, &key(1)), Err(ObjectError::Version { found: FORMAT_VERSION + 1 }));
    }

    #[test]
    fn wrong_magic_is_rejected() {
        let mut bytes = encoded(1, 0x1000, 1, code(8));
        bytes[..8].copy_from_slice(b"\x7fELF\x02\x01\x01\x00");
        assert_eq!(decode(&bytes, &key(1)), Err(ObjectError::Magic { found: *b"\x7fELF\x02\x01\x01\x00" }));
    }

    #[test]
    fn a_huge_declared_length_is_rejected_without_allocating() {
        let mut bytes = encoded(1, 0x1000, 1, code(8));
        bytes[56..64].copy_from_slice(&u64::MAX.to_le_bytes());
        let actual = payload(8) as u64;
        assert_eq!(decode(&bytes, &key(1)), Err(ObjectError::CodeLength { declared: u64::MAX, actual }));
        let mut bytes = encoded(1, 0x1000, 1, code(8));
        bytes[64..68].copy_from_slice(&u32::MAX.to_le_bytes());
        let declared = 2 * BLOCK_LEN as u64 + 8 + TRAP_LEN as u64 * u64::from(u32::MAX);
        assert_eq!(decode(&bytes, &key(1)), Err(ObjectError::CodeLength { declared, actual }));
        let mut bytes = encoded(1, 0x1000, 1, code(8));
        bytes[100..104].copy_from_slice(&u32::MAX.to_le_bytes());
        let declared = BLOCK_LEN as u64 * u64::from(u32::MAX) + payload(8) as u64 - 2 * BLOCK_LEN as u64;
        assert_eq!(decode(&bytes, &key(1)), Err(ObjectError::CodeLength { declared, actual }));
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for len in 0..400 {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state.to_le_bytes()[0]
                })
                .collect();
            assert!(decode(&bytes, &key(0)).is_err());
        }
    }

    #[test]
    fn key_displays_as_hex() {
        let mut bytes = [0u8; 32];
        bytes[0] = 0x0f;
        bytes[31] = 0xa0;
        let k = Key::from_bytes(bytes);
        let hex = k.to_string();
        assert_eq!(hex.len(), 64);
        assert!(hex.starts_with("0f00"));
        assert!(hex.ends_with("00a0"));
        assert_eq!(format!("{k:?}"), format!("Key({hex})"));
    }

    #[test]
    fn entry_keys_separate_every_input() {
        let fp = [5u8; 32];
        let base = entry_key(&fp, 0x1000, &[1, 2, 3, 4]);
        assert_eq!(base, entry_key(&fp, 0x1000, &[1, 2, 3, 4]));
        for (i, k) in [
            entry_key(&[6u8; 32], 0x1000, &[1, 2, 3, 4]),
            entry_key(&fp, 0x1002, &[1, 2, 3, 4]),
            entry_key(&fp, 0x1000, &[1, 2, 3, 5]),
            entry_key(&fp, 0x1000, &[1, 2, 3]),
            // Never a region key, even of the same inputs.
            region_key(&fp, 0x1000, [(0x1000, &[1u8, 2, 3, 4][..])]),
        ]
        .iter()
        .enumerate()
        {
            assert_ne!(*k, base, "variant {i}");
        }
    }

    #[test]
    fn region_keys_separate_every_input() {
        let fp = [5u8; 32];
        let base = region_key(&fp, 0x1000, [(0x1000, &[1u8, 2, 3, 4][..]), (0x1004, &[5, 6][..])]);
        assert_eq!(base, region_key(&fp, 0x1000, [(0x1000, &[1u8, 2, 3, 4][..]), (0x1004, &[5, 6][..])]));
        let others = [
            region_key(&[6u8; 32], 0x1000, [(0x1000, &[1u8, 2, 3, 4][..]), (0x1004, &[5, 6][..])]),
            region_key(&fp, 0x1004, [(0x1000, &[1u8, 2, 3, 4][..]), (0x1004, &[5, 6][..])]),
            region_key(&fp, 0x1000, [(0x1000, &[1u8, 2, 3, 4][..]), (0x1008, &[5, 6][..])]),
            region_key(&fp, 0x1000, [(0x1000, &[1u8, 2, 3, 4][..]), (0x1004, &[5, 7][..])]),
            // The same bytes split differently between blocks.
            region_key(&fp, 0x1000, [(0x1000, &[1u8, 2, 3, 4, 5][..]), (0x1004, &[6][..])]),
            region_key(&fp, 0x1000, [(0x1000, &[1u8, 2, 3, 4][..])]),
            region_key(&fp, 0x1000, [(0x1000, &[1u8, 2, 3, 4][..]), (0x1004, &[5, 6][..]), (0x1006, &[][..])]),
        ];
        for (i, k) in others.iter().enumerate() {
            assert_ne!(*k, base, "variant {i}");
        }
    }

    fn host_isa(opt_level: &str) -> std::sync::Arc<dyn TargetIsa> {
        use cranelift_codegen::settings::{self, Configurable};
        let mut flags = settings::builder();
        flags.set("opt_level", opt_level).expect("a known flag");
        flags.set("is_pic", "true").expect("a known flag");
        cranelift_native::builder().expect("a supported host").finish(settings::Flags::new(flags)).expect("an ISA")
    }

    #[test]
    fn fingerprint_follows_the_flags() {
        let speed = host_isa("speed");
        let guarded = MemoryModel::Guarded;
        assert_eq!(fingerprint(&*speed, guarded), fingerprint(&*host_isa("speed"), guarded));
        assert_ne!(fingerprint(&*speed, guarded), fingerprint(&*host_isa("none"), guarded));
        assert_ne!(fingerprint(&*speed, guarded), fingerprint(&*speed, MemoryModel::Checked));
    }

    #[test]
    fn fingerprint_follows_the_host_cpu_features() {
        use cranelift_codegen::settings;
        // A baseline ISA for the same triple lacks the CPU features detected on this host (on any CPU
        // newer than the baseline): the fingerprints differ exactly when the features do.
        let native = host_isa("speed");
        let baseline = cranelift_codegen::isa::lookup(native.triple().clone())
            .expect("a supported host")
            .finish(native.flags().clone())
            .expect("an ISA");
        let features = |isa: &dyn TargetIsa| isa.isa_flags().iter().map(settings::Value::to_string).collect::<Vec<_>>();
        assert_eq!(
            features(&*native) != features(&*baseline),
            fingerprint(&*native, MemoryModel::Guarded) != fingerprint(&*baseline, MemoryModel::Guarded),
            "native features {:?}",
            features(&*native)
        );
    }
}
