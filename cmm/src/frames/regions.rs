//! RAM regions and the dense frame index space the bitmaps are laid over.
//!
//! Each RAM region gets a run of consecutive indices. Between runs a few padding
//! indices (fewer than one 2 MiB block) keep every index congruent to its frame
//! number modulo [`FRAMES_PER_BLOCK`], so that a block of 512 indices is a
//! physically aligned 2 MiB block. Padding indices are holes: they are no frame and
//! never appear in any bitmap. Holes between regions cost nothing else.

use alloc::vec::Vec;

use crate::error::CmmError;
use crate::units::{FRAMES_PER_BLOCK, MAX_PFN, PAGE_SIZE};

/// A range of page frames: `count` frames starting at frame number `start_pfn`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    /// First frame number.
    pub start_pfn: u64,
    /// Number of frames.
    pub count: u64,
}

impl Region {
    /// The whole frames inside the byte range `base..base + size` (RAM: round inward).
    pub fn inside_bytes(base: u64, size: u64) -> Region {
        let start_pfn = base.div_ceil(PAGE_SIZE);
        let end_pfn = base.saturating_add(size) / PAGE_SIZE;
        Region {
            start_pfn,
            count: end_pfn.saturating_sub(start_pfn),
        }
    }

    /// The frames touched by the byte range `base..base + size` (reserved memory:
    /// round outward).
    pub fn covering_bytes(base: u64, size: u64) -> Region {
        let start_pfn = base / PAGE_SIZE;
        let end_pfn = base.saturating_add(size).div_ceil(PAGE_SIZE);
        Region {
            start_pfn,
            count: end_pfn.saturating_sub(start_pfn),
        }
    }

    /// One past the last frame number (saturating).
    pub fn end_pfn(&self) -> u64 {
        self.start_pfn.saturating_add(self.count)
    }
}

/// The frames of `ram` that are in none of `reserved`, as sorted, non-overlapping
/// regions (the frames a [`crate::FrameTable`] built from the same lists manages).
pub fn managed_regions(ram: &[Region], reserved: &[Region]) -> Vec<Region> {
    let mut cuts: Vec<Region> = reserved.iter().copied().filter(|r| r.count > 0).collect();
    cuts.sort_by_key(|r| r.start_pfn);
    let mut rams: Vec<Region> = ram.iter().copied().filter(|r| r.count > 0).collect();
    rams.sort_by_key(|r| r.start_pfn);
    let mut out = Vec::new();
    for r in rams {
        let mut at = r.start_pfn;
        let end = r.end_pfn();
        for c in &cuts {
            if c.end_pfn() <= at || c.start_pfn >= end {
                continue;
            }
            if c.start_pfn > at {
                out.push(Region {
                    start_pfn: at,
                    count: c.start_pfn - at,
                });
            }
            at = at.max(c.end_pfn());
        }
        if at < end {
            out.push(Region {
                start_pfn: at,
                count: end - at,
            });
        }
    }
    out
}

/// One RAM region placed in the index space.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Span {
    start_pfn: u64,
    count: usize,
    first_index: usize,
}

/// Frame number ↔ index translation for a sorted list of RAM regions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegionMap {
    spans: Vec<Span>,
    len: usize,
}

fn block_len() -> usize {
    // FRAMES_PER_BLOCK is 512.
    usize::try_from(FRAMES_PER_BLOCK).unwrap_or(512)
}

impl RegionMap {
    /// Lays the RAM regions (any order; adjacent ones are merged) into an index
    /// space. Empty regions are skipped; overlapping regions, frame numbers past
    /// [`MAX_PFN`] and a list without any frame are errors.
    pub fn new(ram: &[Region]) -> Result<Self, CmmError> {
        let mut sorted: Vec<Region> = ram.iter().copied().filter(|r| r.count > 0).collect();
        sorted.sort_by_key(|r| r.start_pfn);
        let mut merged: Vec<Region> = Vec::new();
        for r in sorted {
            let end = r
                .start_pfn
                .checked_add(r.count)
                .filter(|&e| e <= MAX_PFN.saturating_add(1))
                .ok_or(CmmError::BadRegions(
                    "region beyond the 64-bit address space",
                ))?;
            match merged.last_mut() {
                Some(prev) if prev.end_pfn() > r.start_pfn => {
                    return Err(CmmError::BadRegions("RAM regions overlap"));
                }
                Some(prev) if prev.end_pfn() == r.start_pfn => prev.count = end - prev.start_pfn,
                _ => merged.push(r),
            }
        }
        if merged.is_empty() {
            return Err(CmmError::BadRegions("no RAM"));
        }
        let block = block_len();
        let too_big = CmmError::BadRegions("too many frames for this machine's usize");
        let mut spans = Vec::with_capacity(merged.len());
        let mut next = 0usize;
        for r in merged {
            let phase =
                usize::try_from(r.start_pfn % FRAMES_PER_BLOCK).map_err(|_| too_big.clone())?;
            let pad = (phase + block - next % block) % block;
            let first_index = next.checked_add(pad).ok_or(too_big.clone())?;
            let count = usize::try_from(r.count).map_err(|_| too_big.clone())?;
            next = first_index.checked_add(count).ok_or(too_big.clone())?;
            spans.push(Span {
                start_pfn: r.start_pfn,
                count,
                first_index,
            });
        }
        Ok(RegionMap { spans, len: next })
    }

    /// Size of the index space (frames plus padding holes).
    pub fn len(&self) -> usize {
        self.len
    }

    /// True if the index space is empty (never, for a map built by [`RegionMap::new`]).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of RAM frames (indices that are not holes).
    pub fn frames(&self) -> u64 {
        self.spans.iter().map(|s| s.count as u64).sum()
    }

    /// The index of frame `pfn`, if it is RAM.
    pub fn index_of(&self, pfn: u64) -> Option<usize> {
        let at = self
            .spans
            .partition_point(|s| s.start_pfn <= pfn)
            .checked_sub(1)?;
        let span = self.spans.get(at)?;
        let offset = usize::try_from(pfn - span.start_pfn).ok()?;
        (offset < span.count).then(|| span.first_index + offset)
    }

    /// The frame number at `index`, if the index is not a hole.
    pub fn pfn_of(&self, index: usize) -> Option<u64> {
        let at = self
            .spans
            .partition_point(|s| s.first_index <= index)
            .checked_sub(1)?;
        let span = self.spans.get(at)?;
        let offset = index - span.first_index;
        (offset < span.count).then(|| span.start_pfn + offset as u64)
    }

    /// The index range of the RAM region holding `index` and the frame number of
    /// its first index, if the index is not a hole (to translate a run of
    /// indices with one lookup).
    pub fn span_of(&self, index: usize) -> Option<(core::ops::Range<usize>, u64)> {
        let at = self
            .spans
            .partition_point(|s| s.first_index <= index)
            .checked_sub(1)?;
        let span = self.spans.get(at)?;
        let r = span.first_index..span.first_index + span.count;
        r.contains(&index).then_some((r, span.start_pfn))
    }

    /// The index ranges that hold frames, in order.
    pub fn index_ranges(&self) -> impl Iterator<Item = core::ops::Range<usize>> + '_ {
        self.spans
            .iter()
            .map(|s| s.first_index..s.first_index + s.count)
    }

    /// The index range covering the frames of `r` that are RAM, split per span.
    pub fn index_ranges_of(&self, r: Region) -> impl Iterator<Item = core::ops::Range<usize>> + '_ {
        let (lo, hi) = (r.start_pfn, r.end_pfn());
        self.spans.iter().filter_map(move |s| {
            let s_end = s.start_pfn + s.count as u64;
            let a = lo.max(s.start_pfn);
            let b = hi.min(s_end);
            if a >= b {
                return None;
            }
            // Both offsets are below s.count, a usize.
            let skip = usize::try_from(a - s.start_pfn).ok()?;
            let take = usize::try_from(b - a).ok()?;
            let first = s.first_index + skip;
            Some(first..first + take)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(start_pfn: u64, count: u64) -> Region {
        Region { start_pfn, count }
    }

    #[test]
    fn one_region_from_zero() {
        let m = RegionMap::new(&[r(0, 1000)]).unwrap();
        assert_eq!(m.len(), 1000);
        assert_eq!(m.index_of(999), Some(999));
        assert_eq!(m.index_of(1000), None);
        assert_eq!(m.pfn_of(5), Some(5));
    }

    #[test]
    fn padding_keeps_block_alignment() {
        let m = RegionMap::new(&[r(10_000, 100), r(3, 10)]).unwrap();
        // First span starts at phase 3, second at 10_000 % 512 = 272.
        assert_eq!(m.index_of(3), Some(3));
        let i = m.index_of(10_000).unwrap();
        assert_eq!(i % 512, 272);
        assert_eq!(m.pfn_of(i), Some(10_000));
        assert_eq!(m.pfn_of(20), None, "padding is a hole");
        assert_eq!(m.span_of(20), None);
        assert_eq!(m.span_of(i + 5), Some((i..i + 100, 10_000)));
        assert_eq!(m.frames(), 110);
        for pfn in (3..13).chain(10_000..10_100) {
            assert_eq!(m.pfn_of(m.index_of(pfn).unwrap()), Some(pfn));
        }
    }

    #[test]
    fn adjacent_regions_merge_and_overlaps_fail() {
        let m = RegionMap::new(&[r(0, 512), r(512, 512)]).unwrap();
        assert_eq!(m.len(), 1024);
        assert!(RegionMap::new(&[r(0, 10), r(5, 10)]).is_err());
        assert!(RegionMap::new(&[]).is_err());
        assert!(RegionMap::new(&[r(0, 0)]).is_err());
        assert!(RegionMap::new(&[r(MAX_PFN, 2)]).is_err());
        assert!(RegionMap::new(&[r(u64::MAX, 2)]).is_err());
    }

    #[test]
    fn byte_rounding() {
        assert_eq!(Region::inside_bytes(100, 8192), r(1, 1));
        assert_eq!(Region::covering_bytes(100, 8192), r(0, 3));
        assert_eq!(Region::inside_bytes(0, 100), r(0, 0));
    }

    #[test]
    fn managed_is_ram_minus_reserved() {
        let ram = [r(1000, 100), r(0, 100)];
        let reserved = [r(90, 20), r(1010, 5), r(1012, 10), r(5000, 1), r(1099, 0)];
        assert_eq!(
            managed_regions(&ram, &reserved),
            [r(0, 90), r(1000, 10), r(1022, 78)]
        );
        assert_eq!(managed_regions(&ram[..1], &[r(0, 2000)]), []);
        assert_eq!(managed_regions(&ram[..1], &[]), [r(1000, 100)]);
    }

    #[test]
    fn ranges_of_a_region() {
        let m = RegionMap::new(&[r(0, 100), r(1000, 100)]).unwrap();
        let got: Vec<_> = m.index_ranges_of(r(50, 1000)).collect();
        let second = m.index_of(1000).unwrap();
        assert_eq!(got, [50..100, second..second + 50]);
    }
}
