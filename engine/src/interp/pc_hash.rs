//! A hasher for maps keyed by guest pc, on the interpreter's dispatch path.
//!
//! The standard library's SipHash resists hash flooding, which guest pcs cannot mount (a guest
//! chooses its pcs, but a collision only slows that guest's own lookups) and costs several times a
//! multiply. One multiply by an odd constant spreads the pc into the high bits; folding the high
//! half down gives the low bits hashbrown indexes with the same mix (pcs are 2-byte aligned, so
//! the product's low bits alone would leave half the buckets empty).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Hashes one `u64` (a guest pc) with a multiply and a fold.
#[derive(Clone, Copy, Default, Debug)]
pub struct PcHasher(u64);

impl Hasher for PcHasher {
    fn finish(&self) -> u64 {
        self.0 ^ (self.0 >> 32)
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used for pcs; anything else still hashes every byte.
        for &b in bytes {
            self.write_u64(u64::from(b) ^ self.0.rotate_left(8));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0 ^ n).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

/// A map keyed by guest pc.
pub type PcMap<V> = HashMap<u64, V, BuildHasherDefault<PcHasher>>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::hash::BuildHasher;

    #[test]
    fn aligned_pcs_spread_over_low_and_high_bits() {
        let build = BuildHasherDefault::<PcHasher>::default();
        let hashes: Vec<u64> = (0..4096u64).map(|i| build.hash_one(0x1_0000 + 2 * i)).collect();
        let low: HashSet<u64> = hashes.iter().map(|h| h & 0xfff).collect();
        let top: HashSet<u64> = hashes.iter().map(|h| h >> 57).collect();
        assert!(low.len() > 2500, "low 12 bits take {} values of 4096", low.len());
        assert_eq!(top.len(), 128, "every top-7-bit tag occurs");
    }

    #[test]
    fn maps_work() {
        const BASE: u64 = 0x2a_aaaa_a000;
        let mut m = PcMap::default();
        for i in 0..10_000u64 {
            m.insert(BASE + 4 * i, i);
        }
        assert_eq!(m.len(), 10_000);
        assert_eq!(m.get(&(BASE + 400)), Some(&100));
        assert_eq!(m.get(&(BASE + 2)), None);
    }
}
