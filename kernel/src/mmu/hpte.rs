//! The two doublewords of a hashed page table entry (`docs/hash-mmu.md`).
//!
//! `V` (first doubleword, bit 0 is the most significant): `B` (segment size) in
//! bits 0:1, the abbreviated virtual page number `AVA` in bits 2:56, four
//! software bits 57:60, `L` (large page) 61, `H` (secondary hash) 62, `V` 63.
//! `R` (second doubleword): `PP0` bit 0, the real page number in bits 7:51 whose
//! low bits carry the page size code `LP` for large pages, `R` and `C`
//! (referenced, changed) 55:56, `WIMG` 57:60, `N` (no-execute) 61, `PP` 62:63.

use bitflags::bitflags;

use super::sizes::{PageSize, SegmentSize};

bitflags! {
    /// Flag bits of the first doubleword.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct HpteV: u64 {
        /// The entry is valid.
        const VALID = 1 << 0;
        /// Found through the secondary hash.
        const SECONDARY = 1 << 1;
        /// A page larger than 4 KiB (its size is in `R`'s `LP` bits).
        const LARGE = 1 << 2;
        /// Software bit: never evicted (Linux's "bolted"; PAPR leaves these bits to the OS).
        const BOLTED = 1 << 4;
    }
}

bitflags! {
    /// Flag bits of the second doubleword.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct HpteR: u64 {
        /// Page protection, high bit (with `PP` 62:63; all zero is read/write
        /// for a supervisor whose segment key is 0).
        const PP0 = 1 << 63;
        /// Protection bits 62:63, low bit.
        const PP_LOW = 1 << 0;
        /// Protection bits 62:63, high bit.
        const PP_HIGH = 1 << 1;
        /// No-execute.
        const N = 1 << 2;
        /// Guarded: no speculative access.
        const G = 1 << 3;
        /// Memory coherence required (PAPR requires it for RAM).
        const M = 1 << 4;
        /// Caching inhibited.
        const I = 1 << 5;
        /// Write-through.
        const W = 1 << 6;
        /// Changed.
        const C = 1 << 7;
        /// Referenced.
        const R = 1 << 8;
    }
}

impl HpteR {
    /// What RAM gets: coherent, cached (`WIMG` = 0010).
    pub const RAM: HpteR = HpteR::M;
    /// What MMIO gets: cache-inhibited and guarded (`WIMG` = 01x1), no-execute.
    pub const MMIO: HpteR = HpteR::I.union(HpteR::G).union(HpteR::N);
}

/// The abbreviated virtual address field (bits 2:56 of `V`) is 55 bits wide.
const AVA_MASK: u64 = (1 << 55) - 1;
/// Bits 7:51 of `R`: the real page number of a 4 KiB page.
const RPN_MASK: u64 = 0x0fff_ffff_ffff_f000;
/// The `LP` code sits at the bottom of the real page number.
const LP_SHIFT: u32 = 12;

/// An HPTE as H_ENTER takes it: `V` in its `pteh` argument, `R` in `ptel`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hpte {
    /// First doubleword.
    pub v: u64,
    /// Second doubleword.
    pub r: u64,
}

/// Why an entry cannot be encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HpteError {
    /// The real address is not aligned to the page size.
    Unaligned,
    /// The VSID does not fit the segment size's share of the AVA.
    VsidTooWide,
    /// The real address is beyond what `R` can hold.
    AddressTooHigh,
}

impl core::fmt::Display for HpteError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            HpteError::Unaligned => "real address not aligned to the page size",
            HpteError::VsidTooWide => "VSID too wide for the segment size",
            HpteError::AddressTooHigh => "real address beyond the RPN field",
        })
    }
}

/// The `AVA` of a virtual page: the virtual address shifted right by 23, i.e.
/// the VSID above the segment offset's bits 0..(s-23). For pages larger than
/// 8 MiB the low `p - 23` bits are not compared and are left zero.
pub fn ava(vsid: u64, segment: SegmentSize, offset: u64, page: PageSize) -> Result<u64, HpteError> {
    let off_bits = segment.shift() - 23;
    let vsid_part = vsid
        .checked_shl(off_bits)
        .filter(|v| v >> off_bits == vsid && v & !AVA_MASK == 0)
        .ok_or(HpteError::VsidTooWide)?;
    let mut a = vsid_part | (segment.offset(offset) >> 23);
    if page.shift() > 23 {
        a &= !((1 << (page.shift() - 23)) - 1);
    }
    Ok(a)
}

/// A virtual page: where it is (segment and offset), its size and the size's
/// `LP` code (from `ibm,segment-page-sizes`; ignored for 4 KiB pages).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VirtualPage {
    /// The segment's VSID.
    pub vsid: u64,
    /// The segment size.
    pub segment: SegmentSize,
    /// The page's offset inside the segment (higher bits are ignored).
    pub offset: u64,
    /// The page size.
    pub page: PageSize,
    /// The page size's `LP` code.
    pub penc: u32,
}

impl Hpte {
    /// The entry mapping virtual page `vp` to real address `ra` with the given flags.
    pub fn new(vp: VirtualPage, ra: u64, vflags: HpteV, rflags: HpteR) -> Result<Hpte, HpteError> {
        let VirtualPage {
            vsid,
            segment,
            offset,
            page,
            penc,
        } = vp;
        if ra & (page.bytes() - 1) != 0 {
            return Err(HpteError::Unaligned);
        }
        if ra & !RPN_MASK != 0 {
            return Err(HpteError::AddressTooHigh);
        }
        let mut v = (segment.b_field() << 62) | (ava(vsid, segment, offset, page)? << 7);
        v |= vflags.bits() | HpteV::VALID.bits();
        let mut r = ra;
        if page != PageSize::K4 {
            v |= HpteV::LARGE.bits();
            // The code sits in the low RPN bits, which a large page's alignment frees.
            let lp = u64::from(penc & 0xff) << LP_SHIFT;
            r |= lp & (page.bytes() - 1);
        }
        Ok(Hpte {
            v,
            r: r | rflags.bits(),
        })
    }

    /// The real address this entry maps (for a page of size `page`).
    pub fn real_address(&self, page: PageSize) -> u64 {
        self.r & RPN_MASK & !(page.bytes() - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vp(vsid: u64, segment: SegmentSize, offset: u64, page: PageSize, penc: u32) -> VirtualPage {
        VirtualPage {
            vsid,
            segment,
            offset,
            page,
            penc,
        }
    }

    #[test]
    fn flag_bits_match_the_architecture() {
        // WIMG occupy bits 57:60 (0x78), N 61, PP 62:63; R and C 55:56.
        assert_eq!((HpteR::W | HpteR::I | HpteR::M | HpteR::G).bits(), 0x78);
        assert_eq!((HpteR::R | HpteR::C).bits(), 0x180);
        assert_eq!(HpteR::RAM.bits() & 0x78, 0x10);
        assert_eq!(HpteR::MMIO.bits() & 0x78, 0x28);
        assert_eq!(HpteV::all().bits(), 0x17);
    }

    #[test]
    fn four_k_page_in_a_256m_segment() {
        // VSID 0x123, offset 0x345_6000, RA 0x8765_4000. VA = 0x123 << 28 | 0x345_6000
        // = 0x1_2334_5600_0; VA >> 23 = (0x123 << 5) | (0x345_6000 >> 23) = 0x2460 | 6.
        let e = Hpte::new(
            vp(0x123, SegmentSize::M256, 0x0345_6000, PageSize::K4, 0),
            0x8765_4000,
            HpteV::BOLTED,
            HpteR::RAM,
        )
        .unwrap();
        assert_eq!(e.v, (0x2466 << 7) | 0x10 | 0x1);
        assert_eq!(e.v, 0x0012_3311);
        assert_eq!(e.r, 0x8765_4010);
        assert_eq!(e.real_address(PageSize::K4), 0x8765_4000);
    }

    #[test]
    fn sixty_four_k_page_carries_lp_and_l() {
        // QEMU's 64 KiB code is 1: RPN low bit 12 set; L set in V.
        let e = Hpte::new(
            vp(0x5, SegmentSize::M256, 0x0801_0000, PageSize::K64, 1),
            0x1_2345_0000,
            HpteV::BOLTED,
            HpteR::RAM,
        )
        .unwrap();
        // AVA = 0x5 << 5 | 0x0801_0000 >> 23 = 0xa0 | 0x10 = 0xb0.
        assert_eq!(e.v, (0xb0 << 7) | 0x10 | 0x4 | 0x1);
        assert_eq!(e.r, 0x1_2345_1010);
        assert_eq!(e.real_address(PageSize::K64), 0x1_2345_0000);
    }

    #[test]
    fn sixteen_m_page_in_a_1t_segment_masks_the_low_ava_bit() {
        // 1T segment: B = 01; AVA = VSID << 17 | offset >> 23, low bit dropped for 16M.
        let e = Hpte::new(
            vp(0x3, SegmentSize::T1, 0x0_2300_0000, PageSize::M16, 0),
            0x2_0000_0000,
            HpteV::empty(),
            HpteR::MMIO,
        )
        .unwrap();
        // offset >> 23 = 0x46; AVA = 0x6_0000 | 0x46 = 0x6_0046, masked to 0x6_0046.
        // Both are even, so try an odd one too below.
        assert_eq!(e.v, (1 << 62) | (0x6_0046 << 7) | 0x4 | 0x1);
        assert_eq!(e.r, 0x2_0000_002c);
        let odd = ava(0x3, SegmentSize::T1, 0x0_2380_0000, PageSize::M16).unwrap();
        assert_eq!(odd, 0x6_0046);
    }

    #[test]
    fn bad_entries_are_refused() {
        let mk = |ra, vsid| {
            Hpte::new(
                vp(vsid, SegmentSize::M256, 0, PageSize::K64, 1),
                ra,
                HpteV::empty(),
                HpteR::RAM,
            )
        };
        assert_eq!(mk(0x1000, 1), Err(HpteError::Unaligned));
        assert_eq!(mk(1 << 60, 1), Err(HpteError::AddressTooHigh));
        assert_eq!(mk(0, 1 << 50), Err(HpteError::VsidTooWide));
        assert!(mk(0, (1 << 50) - 1).is_ok());
    }
}
