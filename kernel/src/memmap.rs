//! RAM minus reserved ranges, in whole 4 KiB frames.

use alloc::vec::Vec;

use crate::devtree::MemRange;

/// Frame size.
pub const FRAME: u64 = 4096;

/// Returns the frame-aligned parts of `ram` that overlap none of `reserved`
/// (reserved ranges are widened to whole frames), sorted and non-overlapping.
pub fn usable(ram: &[MemRange], reserved: &[MemRange]) -> Vec<MemRange> {
    let mut out: Vec<MemRange> = Vec::new();
    let mut res: Vec<(u64, u64)> = reserved
        .iter()
        .filter(|r| r.size > 0)
        .map(|r| {
            let start = r.base & !(FRAME - 1);
            let end = r.base.saturating_add(r.size).saturating_add(FRAME - 1) & !(FRAME - 1);
            (start, end)
        })
        .collect();
    res.sort_unstable();
    for m in ram {
        let mut start = m.base.saturating_add(FRAME - 1) & !(FRAME - 1);
        let end = m.base.saturating_add(m.size) & !(FRAME - 1);
        for &(rs, re) in &res {
            if re <= start || rs >= end {
                continue;
            }
            if rs > start {
                out.push(MemRange {
                    base: start,
                    size: rs - start,
                });
            }
            start = start.max(re);
            if start >= end {
                break;
            }
        }
        if start < end {
            out.push(MemRange {
                base: start,
                size: end - start,
            });
        }
    }
    out.sort_by_key(|m| m.base);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(base: u64, size: u64) -> MemRange {
        MemRange { base, size }
    }

    #[test]
    fn holes_are_cut_and_widened_to_frames() {
        let u = usable(&[r(0, 0x100000)], &[r(0, 0x5000), r(0x8001, 0x10)]);
        assert_eq!(u, [r(0x5000, 0x3000), r(0x9000, 0x100000 - 0x9000)]);
    }

    #[test]
    fn unaligned_ram_is_trimmed() {
        let u = usable(&[r(0x800, 0x3000)], &[]);
        assert_eq!(u, [r(0x1000, 0x2000)]);
    }

    proptest::proptest! {
        #[test]
        fn result_avoids_every_reserved_byte(
            ram in proptest::collection::vec((0u64..1 << 32, 0u64..1 << 28), 1..4),
            res in proptest::collection::vec((0u64..1 << 32, 0u64..1 << 24), 0..6),
        ) {
            let ram: Vec<_> = ram.into_iter().map(|(b, s)| r(b, s)).collect();
            let res: Vec<_> = res.into_iter().map(|(b, s)| r(b, s)).collect();
            for u in usable(&ram, &res) {
                proptest::prop_assert_eq!(u.base % FRAME, 0);
                proptest::prop_assert_eq!(u.size % FRAME, 0);
                proptest::prop_assert!(u.size > 0);
                for x in &res {
                    proptest::prop_assert!(x.size == 0 || u.base >= x.base + x.size || u.base + u.size <= x.base);
                }
                proptest::prop_assert!(ram.iter().any(|m| u.base >= m.base && u.base + u.size <= m.base + m.size));
            }
        }
    }
}
