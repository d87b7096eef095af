use std::sync::Arc;

use super::*;

fn space() -> AddressSpace {
    AddressSpace::with_size(1 << 30).expect("reserve a 1 GiB test space")
}

#[test]
fn unmapped_memory_faults_with_maperr() {
    let m = space();
    let f = m.load::<u64>(0x10_0000).unwrap_err();
    assert_eq!(f, Fault { addr: 0x10_0000, access: Access::Read, mapped: false, past_eof: false });
}

#[test]
fn permissions_are_enforced_per_access_kind() {
    let m = space();
    m.map_anon(0x10_0000, 0x2000, perm::R, VmaKind::Anon).unwrap();
    assert_eq!(m.load::<u32>(0x10_0000).unwrap(), 0);
    let f = m.store::<u32>(0x10_0000, 1).unwrap_err();
    assert!(f.mapped);
    assert_eq!(f.access, Access::Write);
    assert!(m.fetch16(0x10_0000).is_err(), "no execute permission");
    m.protect(0x10_0000, 0x2000, perm::RW).unwrap();
    m.store::<u32>(0x10_0000, 7).unwrap();
    assert_eq!(m.load::<u32>(0x10_0000).unwrap(), 7);
}

#[test]
fn misaligned_access_across_a_page_boundary_checks_both_pages() {
    let m = space();
    m.map_anon(0x10_0000, 0x1000, perm::RW, VmaKind::Anon).unwrap();
    // The second page is unmapped: an 8-byte access straddling the boundary faults at its start.
    let f = m.store::<u64>(0x10_0ffc, 1).unwrap_err();
    assert_eq!(f.addr, 0x10_1000);
    m.map_anon(0x10_1000, 0x1000, perm::RW, VmaKind::Anon).unwrap();
    m.store::<u64>(0x10_0ffc, 0x1122_3344_5566_7788).unwrap();
    assert_eq!(m.load::<u64>(0x10_0ffc).unwrap(), 0x1122_3344_5566_7788);
    assert_eq!(m.load::<u32>(0x10_1000).unwrap(), 0x1122_3344);
}

#[test]
fn addresses_past_the_space_never_reach_the_host() {
    let m = space();
    for addr in [m.size(), m.size() - 4, u64::MAX - 3, u64::MAX] {
        assert!(m.load::<u64>(addr).is_err(), "{addr:#x}");
        assert!(m.store::<u64>(addr, 0).is_err(), "{addr:#x}");
    }
    assert!(m.slice(u64::MAX - 10, 100).is_err());
    assert!(m.map_anon(m.size() - 0x1000, 0x2000, perm::RW, VmaKind::Anon).is_err());
}

#[test]
fn unmap_splits_mappings_and_zeroes_pages() {
    let m = space();
    m.map_anon(0x10_0000, 0x3000, perm::RW, VmaKind::Anon).unwrap();
    m.store::<u8>(0x10_1000, 9).unwrap();
    m.unmap(0x10_1000, 0x1000).unwrap();
    assert!(m.load::<u8>(0x10_1000).is_err());
    assert_eq!(m.mappings().len(), 2);
    m.map_anon(0x10_1000, 0x1000, perm::RW, VmaKind::Anon).unwrap();
    assert_eq!(m.load::<u8>(0x10_1000).unwrap(), 0, "a new mapping reads as zero");
    assert_eq!(m.mappings().len(), 1, "neighbours with equal permissions merge");
}

#[test]
fn find_free_searches_down_and_skips_mappings() {
    let m = space();
    let top = 0x2000_0000;
    let a = m.find_free(0x3000, top).unwrap();
    assert_eq!(a, top - 0x3000);
    m.map_anon(a, 0x3000, perm::RW, VmaKind::Anon).unwrap();
    let b = m.find_free(0x1000, top).unwrap();
    assert_eq!(b, a - 0x1000);
}

#[test]
fn brk_grows_and_shrinks() {
    let m = space();
    m.init_brk(0x40_0000);
    assert_eq!(m.set_brk(0), 0x40_0000);
    assert_eq!(m.set_brk(0x40_2010), 0x40_2010);
    m.store::<u8>(0x40_2000, 1).unwrap();
    assert_eq!(m.set_brk(0x40_1000), 0x40_1000);
    assert!(m.load::<u8>(0x40_2000).is_err());
}

#[test]
fn remap_moves_contents() {
    let m = space();
    m.map_anon(0x10_0000, 0x1000, perm::RW, VmaKind::Anon).unwrap();
    m.map_anon(0x10_1000, 0x1000, perm::R, VmaKind::Anon).unwrap();
    m.store::<u64>(0x10_0008, 42).unwrap();
    let to = m.remap(0x10_0000, 0x1000, 0x4000, true, None).unwrap();
    assert_ne!(to, 0x10_0000, "the next page is taken, so the mapping moves");
    assert_eq!(m.load::<u64>(to + 8).unwrap(), 42);
    assert!(m.load::<u64>(0x10_0008).is_err());
}

#[test]
fn duplicate_copies_contents_independently() {
    let m = space();
    m.map_anon(0x10_0000, 0x10_0000, perm::RW, VmaKind::Anon).unwrap();
    m.store::<u64>(0x10_5000, 5).unwrap();
    let c = m.duplicate().unwrap();
    assert_eq!(c.load::<u64>(0x10_5000).unwrap(), 5);
    c.store::<u64>(0x10_5000, 6).unwrap();
    assert_eq!(m.load::<u64>(0x10_5000).unwrap(), 5);
    assert_eq!(c.load::<u64>(0x10_6000).unwrap(), 0);
}

#[test]
fn code_generation_moves_when_code_changes() {
    let m = space();
    m.map_anon(0x10_0000, 0x1000, perm::R | perm::X, VmaKind::Anon).unwrap();
    let g = m.code_generation();
    m.protect(0x10_0000, 0x1000, perm::RW).unwrap();
    assert_ne!(m.code_generation(), g);
    let g = m.code_generation();
    m.map_anon(0x10_1000, 0x1000, perm::R | perm::X, VmaKind::Anon).unwrap();
    m.unmap(0x10_1000, 0x1000).unwrap();
    assert_ne!(m.code_generation(), g);
}

#[test]
fn read_cstr_stops_at_nul_and_faults_on_unmapped() {
    let m = space();
    m.map_anon(0x10_0000, 0x1000, perm::RW, VmaKind::Anon).unwrap();
    m.write_bytes(0x10_0ffa, b"hello!").unwrap();
    // No NUL before the end of the mapping: the string runs into an unmapped page.
    assert!(m.read_cstr(0x10_0ffa, 100).is_err());
    m.write_bytes(0x10_0ff0, b"hi\0").unwrap();
    assert_eq!(m.read_cstr(0x10_0ff0, 100).unwrap(), b"hi");
}

/// What the host MMU lets this process do at guest `addr`: (read, write), probed with
/// process_vm_readv/writev on ourselves, which fail with EFAULT instead of faulting.
fn host_access(m: &AddressSpace, addr: u64) -> (bool, bool) {
    // The address is only passed to the kernel, never dereferenced here; addresses below the
    // space wrap around to negative offsets.
    let p = m.host_base().wrapping_offset(addr as isize);
    let pid = std::process::id() as libc::pid_t;
    let mut byte = 0u8;
    let local = libc::iovec { iov_base: (&raw mut byte).cast(), iov_len: 1 };
    let remote = libc::iovec { iov_base: p.cast(), iov_len: 1 };
    // SAFETY: both iovecs describe one byte; the kernel checks the remote one.
    let read = unsafe { libc::process_vm_readv(pid, &local, 1, &remote, 1, 0) } == 1;
    // Write back what was there, so a successful probe changes nothing.
    // SAFETY: as above.
    let write = read && unsafe { libc::process_vm_writev(pid, &local, 1, &remote, 1, 0) } == 1;
    (read, write)
}

#[test]
fn host_protection_mirrors_guest_permissions() {
    let m = space();
    let a = 0x10_0000;
    assert_eq!(host_access(&m, a), (false, false), "unmapped pages are inaccessible");
    m.map_anon(a, 0x3000, perm::RW, VmaKind::Anon).unwrap();
    assert_eq!(host_access(&m, a), (true, true));
    m.protect(a + 0x1000, 0x1000, perm::R).unwrap();
    assert_eq!(host_access(&m, a + 0x1000), (true, false));
    m.protect(a + 0x2000, 0x1000, 0).unwrap();
    assert_eq!(host_access(&m, a + 0x2000), (false, false));
    m.protect(a + 0x2000, 0x1000, perm::R | perm::X).unwrap();
    assert_eq!(host_access(&m, a + 0x2000), (true, false), "executable pages are host-readable");
    m.unmap(a, 0x1000).unwrap();
    assert_eq!(host_access(&m, a), (false, false));
    assert_eq!(host_access(&m, m.size()), (false, false), "the guard after the space");
    assert_eq!(host_access(&m, m.size() + GUARD_SIZE - 1), (false, false));
    assert_eq!(host_access(&m, 0u64.wrapping_sub(1)), (false, false), "the guard before the space");
    assert_eq!(host_access(&m, 0u64.wrapping_sub(GUARD_SIZE)), (false, false));
}

#[test]
fn fork_and_mremap_copy_pages_the_guest_cannot_read() {
    let m = space();
    let a = 0x10_0000;
    m.map_anon(a, 0x2000, perm::RW, VmaKind::Anon).unwrap();
    m.store::<u64>(a, 0x1234).unwrap();
    m.store::<u64>(a + 0x1000, 0x5678).unwrap();
    m.protect(a, 0x2000, 0).unwrap();
    let child = m.duplicate().unwrap();
    assert_eq!(host_access(&m, a), (false, false), "the parent's protection is back");
    assert_eq!(host_access(&child, a), (false, false), "the child mirrors it too");
    child.protect(a, 0x2000, perm::R).unwrap();
    assert_eq!(child.load::<u64>(a).unwrap(), 0x1234);
    let moved = m.remap(a, 0x2000, 0x4000, true, Some(0x20_0000)).unwrap();
    assert_eq!(host_access(&m, moved), (false, false));
    m.protect(moved, 0x4000, perm::R).unwrap();
    assert_eq!(m.load::<u64>(moved + 0x1000).unwrap(), 0x5678);
}

#[test]
fn file_pages_past_the_end_fault_as_sigbus_pages() {
    use std::io::Write;
    let path = std::env::temp_dir().join(format!("shoal-eof-{}", std::process::id()));
    let mut f = std::fs::File::create(&path).unwrap();
    f.write_all(&[7u8; 5000]).unwrap();
    let fd: std::os::fd::OwnedFd = std::fs::File::open(&path).unwrap().into();
    std::fs::remove_file(&path).unwrap();
    let m = space();
    let kind = VmaKind::File { file: std::sync::Arc::new(fd), offset: 0, shared: false, name: "f".into() };
    m.map_file(0x10_0000, 0x4000, perm::R, kind).unwrap();
    assert_eq!(m.load::<u8>(0x10_0000).unwrap(), 7);
    assert_eq!(m.load::<u8>(0x10_1fff).unwrap(), 0, "the rest of the last file page reads as zero");
    let f = m.load::<u8>(0x10_2000).unwrap_err();
    assert!(f.past_eof && f.mapped, "{f:?}");
    let w = m.store::<u8>(0x10_2000, 1).unwrap_err();
    assert!(!w.past_eof && w.mapped, "a write the mapping refuses is SIGSEGV: {w:?}");
    assert_eq!(host_access(&m, 0x10_3000), (false, false));
    m.protect(0x10_0000, 0x4000, perm::RW).unwrap();
    assert!(m.store::<u8>(0x10_3000, 1).unwrap_err().past_eof, "still past the end after mprotect");
    assert_eq!(host_access(&m, 0x10_0000), (true, true));
    assert_eq!(host_access(&m, 0x10_3000), (false, false));
    let child = m.duplicate().unwrap();
    assert_eq!(child.load::<u8>(0x10_0000).unwrap(), 7);
    assert!(child.load::<u8>(0x10_3000).unwrap_err().past_eof, "a fork keeps the SIGBUS pages");
    assert_eq!(host_access(&child, 0x10_3000), (false, false));
}

#[test]
fn a_memory_limit_caps_what_a_guest_maps_across_its_address_spaces() {
    let limit = Arc::new(MemoryLimit::new(32 * PAGE_SIZE));
    let m = AddressSpace::with_policy(MemoryPolicy { limit: Some(limit.clone()), node: None }).unwrap();
    m.map_anon(0x10_0000, 8 * PAGE_SIZE, perm::RW, VmaKind::Anon).unwrap();
    assert_eq!(limit.used(), 8 * PAGE_SIZE);
    // Mapping over an existing mapping replaces it: only the growth counts.
    m.map_anon(0x10_0000, 12 * PAGE_SIZE, perm::RW, VmaKind::Anon).unwrap();
    assert_eq!(limit.used(), 12 * PAGE_SIZE);
    assert!(!limit.was_reached());
    let e = m.map_anon(0x20_0000, 24 * PAGE_SIZE, perm::RW, VmaKind::Anon).unwrap_err();
    assert_eq!(e.errno(), libc::ENOMEM);
    assert!(limit.was_reached());
    assert!(!m.load::<u8>(0x20_0000).unwrap_err().mapped, "a refused mapping maps nothing");
    // A fork shares the cap: the child's copy counts too.
    let child = m.duplicate().unwrap();
    assert_eq!(limit.used(), 24 * PAGE_SIZE);
    assert!(child.map_anon(0x30_0000, 9 * PAGE_SIZE, perm::RW, VmaKind::Anon).is_err());
    drop(child);
    assert_eq!(limit.used(), 12 * PAGE_SIZE);
    m.unmap(0x10_0000, 4 * PAGE_SIZE).unwrap();
    assert_eq!(limit.used(), 8 * PAGE_SIZE);
    m.map_anon(0x20_0000, 8 * PAGE_SIZE, perm::RW, VmaKind::Anon).unwrap();
    assert_eq!(m.remap(0x20_0000, 8 * PAGE_SIZE, 30 * PAGE_SIZE, true, None).unwrap_err().errno(), libc::ENOMEM);
    assert_eq!(m.remap(0x20_0000, 8 * PAGE_SIZE, 9 * PAGE_SIZE, true, None).unwrap(), 0x20_0000);
    assert_eq!(limit.used(), 17 * PAGE_SIZE);
    drop(m);
    assert_eq!(limit.used(), 0);
}

/// The host places an address space's pages on its NUMA node: every mapping carries the
/// preferred-node policy (node 0 exists on every host).
#[test]
fn mappings_prefer_the_address_spaces_numa_node() {
    let m = AddressSpace::with_policy(MemoryPolicy { limit: None, node: Some(0) }).unwrap();
    m.map_anon(0x10_0000, 4 * PAGE_SIZE, perm::RW, VmaKind::Anon).unwrap();
    m.store::<u64>(0x10_0000, 1).unwrap();
    let host = m.host(0x10_0000) as usize;
    let maps = std::fs::read_to_string("/proc/self/numa_maps").unwrap_or_default();
    if maps.is_empty() {
        eprintln!("SKIPPED: this host has no /proc/self/numa_maps (a kernel without NUMA)");
        return;
    }
    let line = maps.lines().find(|l| l.starts_with(&format!("{host:x} "))).unwrap_or_else(|| panic!("{maps}"));
    assert!(line.contains("prefer:0"), "{line}");
    let plain = space();
    plain.map_anon(0x10_0000, PAGE_SIZE, perm::RW, VmaKind::Anon).unwrap();
    let host = plain.host(0x10_0000) as usize;
    let maps = std::fs::read_to_string("/proc/self/numa_maps").unwrap();
    let line = maps.lines().find(|l| l.starts_with(&format!("{host:x} "))).unwrap();
    assert!(line.contains("default"), "no node, no policy: {line}");
}
