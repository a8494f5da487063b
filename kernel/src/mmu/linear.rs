//! The bolted linear map (`docs/hash-mmu.md`): every page of RAM, and the MMIO
//! ranges the drivers use, entered in the hashed page table through the
//! hypervisor with the effective address equal to the real address.
//!
//! [`Geometry`] holds what the CPU node says (table size, page size and its
//! codes, segment size); [`enter_range`] walks a range page by page, tries the
//! primary PTE group and then the secondary, and counts what it entered. The
//! hypervisor is behind [`PageTable`], so the walk is tested on the host against
//! a fake table with full groups.

use super::hash::{first_slot, Hash, Vsid};
use super::hpte::{Hpte, HpteError, HpteR, HpteV, VirtualPage};
use super::sizes::{PageSize, SegmentSize};

/// H_ENTER's answer when the PTE group has no free slot.
pub const H_PTEG_FULL: i64 = -6;

/// What the kernel needs from the hypervisor to fill the page table.
pub trait PageTable {
    /// H_ENTER without `H_EXACT`: the hypervisor picks a free slot in the
    /// group starting at `ptex`; `Ok(slot index)` or `Err(status)`.
    fn enter(&mut self, ptex: u64, hpte: Hpte) -> Result<u64, i64>;
}

/// The MMU as the CPU node describes it, and the kernel's choices.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    /// log2 of the page table size (`ibm,pft-size`).
    pub pft_shift: u32,
    /// The linear map's page size.
    pub page: PageSize,
    /// Its SLB `L||LP` encoding.
    pub slb_enc: u32,
    /// Its HPTE `LP` code.
    pub penc: u32,
    /// The segment size.
    pub segment: SegmentSize,
}

/// Why mapping failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapError {
    /// The range is not aligned to the page size.
    Unaligned(u64),
    /// Both PTE groups of a page are full.
    GroupsFull(u64),
    /// The hypervisor refused an entry.
    Refused {
        /// The page.
        addr: u64,
        /// Its status.
        status: i64,
    },
    /// The segment is beyond the VSIDs the kernel hands out.
    NoVsid(u64),
    /// The entry could not be encoded.
    Encoding(u64, HpteError),
}

impl core::fmt::Display for MapError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            MapError::Unaligned(a) => write!(f, "{a:#x} is not aligned to the page size"),
            MapError::GroupsFull(a) => write!(f, "both PTE groups of {a:#x} are full"),
            MapError::Refused { addr, status } => {
                write!(f, "H_ENTER refused {addr:#x} with status {status}")
            }
            MapError::NoVsid(a) => write!(f, "no VSID for the segment of {a:#x}"),
            MapError::Encoding(a, e) => write!(f, "{a:#x}: {e}"),
        }
    }
}

/// Counts of one walk.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MapStats {
    /// Entries placed through the primary hash.
    pub primary: u64,
    /// Entries placed through the secondary hash.
    pub secondary: u64,
}

impl MapStats {
    /// All entries.
    pub fn total(&self) -> u64 {
        self.primary.saturating_add(self.secondary)
    }
}

/// Enters one page: effective address `ea` = real address, with `rflags`.
pub fn enter_page(
    hv: &mut impl PageTable,
    g: &Geometry,
    ea: u64,
    rflags: HpteR,
    stats: &mut MapStats,
) -> Result<(), MapError> {
    let esid = g.segment.esid(ea);
    let vsid = Vsid::for_esid(esid).ok_or(MapError::NoVsid(ea))?;
    let vp = VirtualPage {
        vsid: vsid.0,
        segment: g.segment,
        offset: ea,
        page: g.page,
        penc: g.penc,
    };
    let hash = Hash::new(vsid, g.segment, ea, g.page);
    for (group, vflags) in [
        (hash.primary_group(g.pft_shift), HpteV::BOLTED),
        (
            hash.secondary_group(g.pft_shift),
            HpteV::BOLTED | HpteV::SECONDARY,
        ),
    ] {
        let hpte = Hpte::new(vp, ea, vflags, rflags).map_err(|e| MapError::Encoding(ea, e))?;
        match hv.enter(first_slot(group), hpte) {
            Ok(_) => {
                if vflags.contains(HpteV::SECONDARY) {
                    stats.secondary += 1;
                } else {
                    stats.primary += 1;
                }
                return Ok(());
            }
            Err(H_PTEG_FULL) => continue,
            Err(status) => return Err(MapError::Refused { addr: ea, status }),
        }
    }
    Err(MapError::GroupsFull(ea))
}

/// Enters `[base, base + size)` page by page (both aligned to the page size).
pub fn enter_range(
    hv: &mut impl PageTable,
    g: &Geometry,
    base: u64,
    size: u64,
    rflags: HpteR,
    stats: &mut MapStats,
) -> Result<(), MapError> {
    let page = g.page.bytes();
    if !base.is_multiple_of(page) {
        return Err(MapError::Unaligned(base));
    }
    if !size.is_multiple_of(page) {
        return Err(MapError::Unaligned(size));
    }
    let mut ea = base;
    let end = base.checked_add(size).ok_or(MapError::Unaligned(size))?;
    while ea < end {
        enter_page(hv, g, ea, rflags, stats)?;
        ea += page;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// A page table with eight slots per group, like the hypervisor's.
    struct FakeTable {
        pft_shift: u32,
        slots: HashMap<u64, Hpte>,
        refuse: Option<i64>,
    }

    impl FakeTable {
        fn new(pft_shift: u32) -> Self {
            FakeTable {
                pft_shift,
                slots: HashMap::new(),
                refuse: None,
            }
        }
    }

    impl PageTable for FakeTable {
        fn enter(&mut self, ptex: u64, hpte: Hpte) -> Result<u64, i64> {
            if let Some(s) = self.refuse {
                return Err(s);
            }
            assert_eq!(ptex % 8, 0, "the group's first slot");
            assert!(ptex >> 3 <= super::super::hash::group_mask(self.pft_shift));
            for slot in ptex..ptex + 8 {
                if let std::collections::hash_map::Entry::Vacant(e) = self.slots.entry(slot) {
                    e.insert(hpte);
                    return Ok(slot);
                }
            }
            Err(H_PTEG_FULL)
        }
    }

    fn qemu_geometry(pft_shift: u32) -> Geometry {
        Geometry {
            pft_shift,
            page: PageSize::K64,
            slb_enc: 0x110,
            penc: 1,
            segment: SegmentSize::T1,
        }
    }

    #[test]
    fn four_gib_of_64k_pages_all_enter_and_stay_distinct() {
        // QEMU sizes the table for 4 GiB at 2^25 bytes.
        let g = qemu_geometry(25);
        let mut t = FakeTable::new(25);
        let mut stats = MapStats::default();
        enter_range(&mut t, &g, 0, 4 << 30, HpteR::RAM, &mut stats).unwrap();
        assert_eq!(stats.total(), 65536);
        assert_eq!(t.slots.len(), 65536);
        // Every entry is valid, large, bolted, coherent, and maps its own address.
        let mut addrs: Vec<u64> = t
            .slots
            .values()
            .map(|e| {
                assert_eq!(e.v & 0x17 & !0x2, 0x15);
                assert_eq!(e.r & 0x78, 0x10);
                e.real_address(PageSize::K64)
            })
            .collect();
        addrs.sort_unstable();
        addrs.dedup();
        assert_eq!(addrs.len(), 65536);
    }

    #[test]
    fn a_full_primary_group_overflows_into_the_secondary() {
        // 2^18 bytes = 2048 groups. In segment 0 (VSID 0) the primary hash of a
        // 64 KiB page is its page index, so pages 2048 apart share group 0: the
        // first 8 fill it, the next 8 go to the secondary group (~0 & 2047 =
        // 2047), the 17th finds both full.
        let g = qemu_geometry(18);
        let mut t = FakeTable::new(18);
        let mut stats = MapStats::default();
        let stride = 2048 * 0x1_0000;
        for k in 0..16 {
            enter_page(&mut t, &g, k * stride, HpteR::RAM, &mut stats).unwrap();
        }
        assert_eq!((stats.primary, stats.secondary), (8, 8));
        assert!((0..8).all(|s| t.slots[&s].v & 0x2 == 0));
        assert!((2047 * 8..2048 * 8).all(|s| t.slots[&s].v & 0x2 != 0));
        let e = enter_page(&mut t, &g, 16 * stride, HpteR::RAM, &mut stats);
        assert_eq!(e, Err(MapError::GroupsFull(16 * stride)));
    }

    #[test]
    fn refusals_and_bad_ranges_are_errors() {
        let g = qemu_geometry(22);
        let mut t = FakeTable::new(22);
        let mut stats = MapStats::default();
        assert_eq!(
            enter_range(&mut t, &g, 0x1000, 0x10000, HpteR::RAM, &mut stats),
            Err(MapError::Unaligned(0x1000))
        );
        t.refuse = Some(-4);
        assert_eq!(
            enter_range(
                &mut t,
                &g,
                0x2000_8000_0000,
                0x10000,
                HpteR::MMIO,
                &mut stats
            ),
            Err(MapError::Refused {
                addr: 0x2000_8000_0000,
                status: -4
            })
        );
        assert_eq!(stats.total(), 0);
    }
}
