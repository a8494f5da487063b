//! The two operands of `slbmte` (`docs/hash-mmu.md`).
//!
//! `RS` (VSID data): `B` in bits 0:1, the VSID from bit 51 (256 MiB segments,
//! VSID shifted left 12) or bit 39 (1 TiB, shifted 24) up, then `Ks` `Kp` `N`
//! `L` `C` and `LP` in bits 52:59 (`Ks` 0x800, `Kp` 0x400, `N` 0x200, `L||LP`
//! as `ibm,segment-page-sizes` gives them, 0x100 and 0x30). `RB` (ESID data):
//! the ESID in bits 0:35 (256 MiB) or 0:23 (1 TiB), valid bit 0x0800_0000, the
//! SLB slot in the low 12 bits.

use super::hash::Vsid;
use super::sizes::SegmentSize;

/// `V` in the ESID data.
const SLB_ESID_VALID: u64 = 0x0800_0000;
/// `Kp`: the key for problem state (the kernel runs privileged and uses `Ks` = 0,
/// so `PP` = 00 means read/write for it).
const SLB_VSID_KP: u64 = 0x400;

/// An SLB entry, ready for `slbmte RS, RB`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlbEntry {
    /// `RS`: VSID data.
    pub vsid_data: u64,
    /// `RB`: ESID data with the slot number.
    pub esid_data: u64,
}

impl SlbEntry {
    /// The entry for segment `esid` with VSID `vsid`, base page size encoding
    /// `slb_enc`, in slot `slot`. `None` if the slot is beyond 4095.
    pub fn new(
        segment: SegmentSize,
        esid: u64,
        vsid: Vsid,
        slb_enc: u32,
        slot: u32,
    ) -> Option<SlbEntry> {
        if slot > 0xfff {
            return None;
        }
        let vsid_shift = match segment {
            SegmentSize::M256 => 12,
            SegmentSize::T1 => 24,
        };
        let vsid_data = (segment.b_field() << 62)
            | (vsid.0 << vsid_shift)
            | SLB_VSID_KP
            | u64::from(slb_enc & 0x130);
        let esid_data = (esid << segment.shift()) | SLB_ESID_VALID | u64::from(slot);
        Some(SlbEntry {
            vsid_data,
            esid_data,
        })
    }
}

/// The segments covering the `(base, size)` ranges, each segment once, in
/// ascending order.
pub fn segments_covering(segment: SegmentSize, ranges: &[(u64, u64)]) -> alloc::vec::Vec<u64> {
    let mut esids = alloc::vec::Vec::new();
    for &(base, size) in ranges {
        if size == 0 {
            continue;
        }
        let last = base.saturating_add(size - 1);
        for esid in segment.esid(base)..=segment.esid(last) {
            esids.push(esid);
        }
    }
    esids.sort_unstable();
    esids.dedup();
    esids
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_segment_256m_64k_pages() {
        // ESID 2 (0x2000_0000), VSID 0x123, L||LP for 64K = 0x110, slot 3.
        let e = SlbEntry::new(SegmentSize::M256, 2, Vsid(0x123), 0x110, 3).unwrap();
        assert_eq!(e.vsid_data, 0x0012_3000 | 0x400 | 0x110);
        assert_eq!(e.esid_data, 0x2000_0000 | 0x0800_0000 | 3);
    }

    #[test]
    fn one_t_segment() {
        let e = SlbEntry::new(SegmentSize::T1, 0x20, Vsid(0x5), 0x100, 0).unwrap();
        assert_eq!(e.vsid_data, (1 << 62) | (0x5 << 24) | 0x400 | 0x100);
        assert_eq!(e.esid_data, 0x2000_0000_0000 | 0x0800_0000);
        assert_eq!(SlbEntry::new(SegmentSize::T1, 0, Vsid(0), 0, 4096), None);
    }

    #[test]
    fn segments_for_4g_and_a_bar() {
        let s = segments_covering(
            SegmentSize::M256,
            &[(0, 4 << 30), (0x2000_8000_0000, 0x1000), (0, 0)],
        );
        assert_eq!(s.len(), 17);
        assert_eq!(s[15], 15);
        assert_eq!(s[16], 0x0002_0008);
        let t = segments_covering(SegmentSize::T1, &[(0, 4 << 30), (0x2000_8000_0000, 0x1000)]);
        assert_eq!(t, [0, 0x20]);
    }
}
