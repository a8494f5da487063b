//! VSIDs and the hash functions that place an HPTE in the page table
//! (`docs/hash-mmu.md`).
//!
//! The table (HPT) is `2^pft_size` bytes of 128-byte PTE groups (PTEGs) of eight
//! 16-byte entries. For a virtual page the primary hash is, with `p` the page
//! shift and only the low 39 bits kept:
//!
//! - 256 MiB segments: `VSID ^ (offset >> p)`;
//! - 1 TiB segments: `VSID ^ (VSID << 25) ^ (offset >> p)`.
//!
//! The secondary hash is the primary's complement (39 bits). The PTEG index is
//! the hash masked with the number of PTEGs minus one.

use super::sizes::{PageSize, SegmentSize};

/// The hash functions keep 39 bits.
const HASH_MASK: u64 = (1 << 39) - 1;
/// Width of the VSIDs the kernel hands out (fits the 1 TiB and 256 MiB AVA
/// share on every processor since POWER7).
pub const VSID_BITS: u32 = 24;
/// An odd multiplier: multiplication by it is a bijection modulo 2^24, so
/// distinct ESIDs get distinct VSIDs, spread over the table.
const VSID_MULTIPLIER: u64 = 0x00c3_a5e7;

/// A segment's virtual segment ID.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Vsid(pub u64);

impl Vsid {
    /// The kernel's VSID for segment `esid` (one address space: the effective
    /// address is the real address). `None` for ESIDs beyond 2^24, where the
    /// mapping would stop being one-to-one.
    pub fn for_esid(esid: u64) -> Option<Vsid> {
        if esid >> VSID_BITS != 0 {
            return None;
        }
        Some(Vsid(
            esid.wrapping_mul(VSID_MULTIPLIER) & ((1 << VSID_BITS) - 1),
        ))
    }
}

/// The primary and secondary hash of one virtual page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hash {
    /// The primary hash (39 bits).
    pub primary: u64,
}

impl Hash {
    /// Hashes the page at segment offset `offset` (higher bits ignored) of the
    /// segment `vsid`, for pages of size `page`.
    pub fn new(vsid: Vsid, segment: SegmentSize, offset: u64, page: PageSize) -> Hash {
        let page_index = segment.offset(offset) >> page.shift();
        let h = match segment {
            SegmentSize::M256 => vsid.0 ^ page_index,
            SegmentSize::T1 => vsid.0 ^ (vsid.0 << 25) ^ page_index,
        };
        Hash {
            primary: h & HASH_MASK,
        }
    }

    /// The secondary hash: the complement of the primary (39 bits).
    pub fn secondary(self) -> u64 {
        !self.primary & HASH_MASK
    }

    /// The primary PTEG index in a table of `2^pft_shift` bytes.
    pub fn primary_group(self, pft_shift: u32) -> u64 {
        self.primary & group_mask(pft_shift)
    }

    /// The secondary PTEG index.
    pub fn secondary_group(self, pft_shift: u32) -> u64 {
        self.secondary() & group_mask(pft_shift)
    }
}

/// PTEGs in a table of `2^pft_shift` bytes, minus one (tables are at least
/// 256 KiB: 2^18).
pub fn group_mask(pft_shift: u32) -> u64 {
    let groups_shift = pft_shift.clamp(18, 46) - 7;
    (1 << groups_shift) - 1
}

/// The index of the first entry of PTE group `group` (what H_ENTER takes as
/// `ptex` when it may choose the slot).
pub fn first_slot(group: u64) -> u64 {
    group << 3
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn four_k_in_256m_worked_by_hand() {
        // VSID 0x123, offset 0x345_6000, p = 12: 0x0123 ^ 0x3456 = 0x3575.
        let h = Hash::new(Vsid(0x123), SegmentSize::M256, 0x0345_6000, PageSize::K4);
        assert_eq!(h.primary, 0x3575);
        assert_eq!(h.secondary(), 0x7f_ffff_ca8a);
        // A 4 MiB table (QEMU's ibm,pft-size 0x16 at 512 MiB): 32768 groups.
        assert_eq!(group_mask(22), 0x7fff);
        assert_eq!(h.primary_group(22), 0x3575);
        assert_eq!(h.secondary_group(22), 0x4a8a);
        assert_eq!(first_slot(0x3575), 0x1_aba8);
    }

    #[test]
    fn sixty_four_k_in_256m_worked_by_hand() {
        // p = 16: offset 0x0fff_0000 >> 16 = 0xfff; 0xabc ^ 0xfff = 0x543.
        let h = Hash::new(Vsid(0xabc), SegmentSize::M256, 0x1_0fff_0000, PageSize::K64);
        assert_eq!(h.primary, 0x543);
        assert_eq!(h.secondary_group(25), 0x3_fabc);
    }

    #[test]
    fn sixteen_m_in_256m_and_1t_worked_by_hand() {
        // p = 24: offset 0x0500_0000 >> 24 = 5; 0x10 ^ 5 = 0x15.
        let h = Hash::new(Vsid(0x10), SegmentSize::M256, 0x0500_0000, PageSize::M16);
        assert_eq!(h.primary, 0x15);
        // 1T: 0x10 ^ (0x10 << 25) ^ (0x80_0000_0000 >> 24 = 0x8000)
        //   = 0x2000_0000 ^ 0x8010 = 0x2000_8010.
        let h = Hash::new(Vsid(0x10), SegmentSize::T1, 0x80_0000_0000, PageSize::M16);
        assert_eq!(h.primary, 0x2000_8010);
        assert_eq!(h.secondary(), 0x7f_dfff_7fef);
    }

    #[test]
    fn one_t_vsid_shift_is_cut_at_39_bits() {
        // VSID 0x3f_ffff << 25 spills over bit 39: only the low 39 bits stay.
        let h = Hash::new(Vsid(0x3f_ffff), SegmentSize::T1, 0, PageSize::K4);
        assert_eq!(h.primary, (0x3f_ffff ^ (0x3f_ffff << 25)) & 0x7f_ffff_ffff);
        assert_eq!(h.primary, 0x7f_fe3f_ffff & 0x7f_ffff_ffff);
    }

    #[test]
    fn vsids_are_distinct_and_bounded() {
        let mut seen = std::collections::HashSet::new();
        for esid in 0..4096 {
            let v = Vsid::for_esid(esid).unwrap();
            assert!(v.0 < 1 << VSID_BITS);
            assert!(seen.insert(v.0), "esid {esid} reuses a VSID");
        }
        assert_eq!(Vsid::for_esid(1 << 24), None);
        assert_eq!(Vsid::for_esid(0), Some(Vsid(0)));
    }
}
