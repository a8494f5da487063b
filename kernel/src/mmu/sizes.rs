//! Page sizes, segment sizes, and the CPU node's `ibm,segment-page-sizes`
//! (`docs/hash-mmu.md`): which base page sizes a segment may have, how the SLB
//! encodes each, and for each the actual page sizes with their HPTE `LP` code.

use alloc::vec::Vec;

/// A page size the kernel knows how to map.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum PageSize {
    /// 4 KiB.
    K4,
    /// 64 KiB.
    K64,
    /// 16 MiB.
    M16,
}

impl PageSize {
    /// log2 of the size in bytes.
    pub const fn shift(self) -> u32 {
        match self {
            PageSize::K4 => 12,
            PageSize::K64 => 16,
            PageSize::M16 => 24,
        }
    }

    /// The size in bytes.
    pub const fn bytes(self) -> u64 {
        1 << self.shift()
    }

    /// The page size whose log2 is `shift`, if the design uses it. (16 GiB pages,
    /// which PowerVM can offer, are left out: they cannot be loaned 4 KiB at a time.)
    pub fn from_shift(shift: u32) -> Option<PageSize> {
        match shift {
            12 => Some(PageSize::K4),
            16 => Some(PageSize::K64),
            24 => Some(PageSize::M16),
            _ => None,
        }
    }
}

/// A segment size: the SLB entry's and the HPTE's `B` field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SegmentSize {
    /// 256 MiB segments (`B` = 0b00).
    M256,
    /// 1 TiB segments (`B` = 0b01).
    T1,
}

impl SegmentSize {
    /// Its name in the boot log and `version`: `256M` or `1T`.
    pub const fn name(self) -> &'static str {
        match self {
            SegmentSize::M256 => "256M",
            SegmentSize::T1 => "1T",
        }
    }

    /// log2 of the segment size in bytes.
    pub const fn shift(self) -> u32 {
        match self {
            SegmentSize::M256 => 28,
            SegmentSize::T1 => 40,
        }
    }

    /// The two-bit `B` field.
    pub const fn b_field(self) -> u64 {
        match self {
            SegmentSize::M256 => 0,
            SegmentSize::T1 => 1,
        }
    }

    /// The ESID (segment number) of an effective address.
    pub const fn esid(self, ea: u64) -> u64 {
        ea >> self.shift()
    }

    /// The offset of `ea` inside its segment.
    pub const fn offset(self, ea: u64) -> u64 {
        ea & ((1 << self.shift()) - 1)
    }
}

/// One actual page size allowed in a segment of some base page size, with its
/// `LP` encoding in the HPTE.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ActualSize {
    /// log2 of the page size.
    pub shift: u32,
    /// The `LP` code (the `penc` of `ibm,segment-page-sizes`).
    pub penc: u32,
}

/// One base page size of `ibm,segment-page-sizes`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BaseSize {
    /// log2 of the base page size.
    pub shift: u32,
    /// The SLB `L||LP` bits for segments of this base size (already in place:
    /// `0x100` is `L`, `0x30` is `LP`).
    pub slb_enc: u32,
    /// Actual page sizes in such a segment.
    pub actual: Vec<ActualSize>,
}

/// The decoded `ibm,segment-page-sizes`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SegmentPageSizes {
    /// In the order the tree lists them.
    pub bases: Vec<BaseSize>,
}

/// Why `ibm,segment-page-sizes` could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SizesError {
    /// The property ended in the middle of an entry.
    Truncated,
    /// An entry claims more actual sizes than the design accepts (16).
    TooManySizes(u32),
}

impl core::fmt::Display for SizesError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            SizesError::Truncated => write!(f, "ibm,segment-page-sizes is truncated"),
            SizesError::TooManySizes(n) => {
                write!(
                    f,
                    "ibm,segment-page-sizes lists {n} sizes for one base size"
                )
            }
        }
    }
}

impl SegmentPageSizes {
    /// Decodes the property from its big-endian cells: per base size `shift,
    /// slb_enc, count`, then `count` pairs `shift, penc`.
    pub fn parse(cells: &[u32]) -> Result<SegmentPageSizes, SizesError> {
        let mut bases = Vec::new();
        let mut it = cells.iter().copied();
        while let Some(shift) = it.next() {
            let slb_enc = it.next().ok_or(SizesError::Truncated)?;
            let count = it.next().ok_or(SizesError::Truncated)?;
            if count > 16 {
                return Err(SizesError::TooManySizes(count));
            }
            let mut actual = Vec::new();
            for _ in 0..count {
                let s = it.next().ok_or(SizesError::Truncated)?;
                let penc = it.next().ok_or(SizesError::Truncated)?;
                actual.push(ActualSize { shift: s, penc });
            }
            bases.push(BaseSize {
                shift,
                slb_enc,
                actual,
            });
        }
        Ok(SegmentPageSizes { bases })
    }

    /// The largest page size the design uses that the tree offers as a base size
    /// with itself as an actual size (a segment of such pages only): the linear
    /// map's page size, with the SLB encoding and the `LP` code. 4 KiB when the
    /// tree offers nothing usable (every hash MMU has it, with code 0).
    pub fn linear_map_size(&self) -> (PageSize, u32, u32) {
        self.bases
            .iter()
            .filter_map(|b| {
                let size = PageSize::from_shift(b.shift)?;
                let own = b.actual.iter().find(|a| a.shift == b.shift)?;
                Some((size, b.slb_enc, own.penc))
            })
            .max_by_key(|&(s, _, _)| s)
            .unwrap_or((PageSize::K4, 0, 0))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn segment_names_say_their_size() {
        for seg in [SegmentSize::M256, SegmentSize::T1] {
            let bytes = 1u64 << seg.shift();
            let named = match seg.name() {
                "256M" => 256 << 20,
                "1T" => 1 << 40,
                other => panic!("{other}"),
            };
            assert_eq!(bytes, named);
        }
    }

    use super::*;

    /// QEMU 7.2's POWER9 under TCG (the repository's device tree fixture).
    const QEMU_P9: [u32; 10] = [0x0c, 0x00, 0x01, 0x0c, 0x00, 0x10, 0x110, 0x01, 0x10, 0x01];

    #[test]
    fn qemu_offers_4k_and_64k() {
        let s = SegmentPageSizes::parse(&QEMU_P9).unwrap();
        assert_eq!(s.bases.len(), 2);
        assert_eq!(s.bases[1].slb_enc, 0x110);
        assert_eq!(s.bases[1].actual, [ActualSize { shift: 16, penc: 1 }]);
        assert_eq!(s.linear_map_size(), (PageSize::K64, 0x110, 1));
    }

    #[test]
    fn power_vm_style_list_picks_16m_and_never_16g() {
        // 4K (4K, 64K, 16M), 64K (64K, 16M), 16M (16M), 16G (16G).
        let cells = [
            12, 0x000, 3, 12, 0x0, 16, 0x7, 24, 0x38, //
            16, 0x110, 2, 16, 0x1, 24, 0x8, //
            24, 0x100, 1, 24, 0x0, //
            34, 0x120, 1, 34, 0x3,
        ];
        let s = SegmentPageSizes::parse(&cells).unwrap();
        assert_eq!(s.bases.len(), 4);
        assert_eq!(s.linear_map_size(), (PageSize::M16, 0x100, 0));
    }

    #[test]
    fn bad_lists_are_refused() {
        assert_eq!(
            SegmentPageSizes::parse(&[12, 0, 2, 12, 0]),
            Err(SizesError::Truncated)
        );
        assert_eq!(
            SegmentPageSizes::parse(&[12, 0, 99]),
            Err(SizesError::TooManySizes(99))
        );
        let empty = SegmentPageSizes::parse(&[]).unwrap();
        assert_eq!(empty.linear_map_size(), (PageSize::K4, 0, 0));
    }

    #[test]
    fn segments() {
        assert_eq!(SegmentSize::M256.esid(0x1_2345_6789), 0x12);
        assert_eq!(SegmentSize::M256.offset(0x1_2345_6789), 0x0345_6789);
        assert_eq!(SegmentSize::T1.esid(0x2000_8000_0000), 0x20);
        assert_eq!(SegmentSize::T1.offset(0x2000_8000_0000), 0x8000_0000);
    }
}
