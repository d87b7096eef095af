use super::*;

fn space() -> AddressSpace {
    AddressSpace::with_size(1 << 30).expect("reserve a 1 GiB test space")
}

#[test]
fn unmapped_memory_faults_with_maperr() {
    let m = space();
    let f = m.load::<u64>(0x10_0000).unwrap_err();
    assert_eq!(f, Fault { addr: 0x10_0000, access: Access::Read, mapped: false });
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
