//! A first-fit allocator of I/O bus address ranges inside one device's DMA window,
//! in whole 4 KiB TCE pages.
//!
//! It only hands out address ranges; what is entered in the TCEs is the mapping
//! layer's business. Ranges are kept sorted, so the state is small whatever the
//! window size.

use alloc::vec::Vec;

use super::device::DmaWindow;
use super::units::{is_page_aligned, page_align_down, page_align_up, TCE_PAGE_SIZE};

/// The free and used TCE pages of one DMA window.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IobaSpace {
    /// First usable I/O bus address (page aligned).
    base: u64,
    /// Number of usable TCE pages.
    pages: u64,
    /// Used ranges as (first page index, page count), sorted, non-overlapping.
    used: Vec<(u64, u64)>,
}

impl IobaSpace {
    /// The whole pages of `window` (a window not page aligned loses its partial
    /// pages at either end).
    pub fn new(window: &DmaWindow) -> Self {
        let base = page_align_up(window.offset);
        let end = page_align_down(window.offset.saturating_add(window.size));
        let pages = match base {
            Some(b) if end > b => (end - b) / TCE_PAGE_SIZE,
            _ => 0,
        };
        IobaSpace {
            base: base.unwrap_or(0),
            pages,
            used: Vec::new(),
        }
    }

    /// Pages not handed out.
    pub fn free_pages(&self) -> u64 {
        self.used.iter().fold(self.pages, |f, &(_, n)| f - n)
    }

    /// The lowest free range of `count` pages (count > 0): its I/O bus address.
    pub fn alloc(&mut self, count: u64) -> Option<u64> {
        if count == 0 {
            return None;
        }
        let mut start = 0u64;
        let mut slot = self.used.len();
        for (i, &(first, n)) in self.used.iter().enumerate() {
            if first - start >= count {
                slot = i;
                break;
            }
            start = first + n;
        }
        if slot == self.used.len() && self.pages.checked_sub(start)? < count {
            return None;
        }
        self.used.insert(slot, (start, count));
        Some(self.base + start * TCE_PAGE_SIZE)
    }

    /// Returns the range at `ioba` handed out by [`IobaSpace::alloc`]; false if no
    /// such range is allocated.
    pub fn free(&mut self, ioba: u64) -> bool {
        let Some(off) = ioba.checked_sub(self.base) else {
            return false;
        };
        let first = off / TCE_PAGE_SIZE;
        match self.used.binary_search_by_key(&first, |&(f, _)| f) {
            Ok(i) if is_page_aligned(off) => {
                self.used.remove(i);
                true
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn space(offset: u64, size: u64) -> IobaSpace {
        IobaSpace::new(&DmaWindow {
            liobn: 1,
            offset,
            size,
        })
    }

    #[test]
    fn vio_ioba_first_fit() {
        let mut s = space(0x1000_0000, 16 * 4096);
        let a = s.alloc(4).unwrap();
        let b = s.alloc(4).unwrap();
        let c = s.alloc(8).unwrap();
        assert_eq!((a, b, c), (0x1000_0000, 0x1000_4000, 0x1000_8000));
        assert_eq!(s.alloc(1), None);
        assert!(s.free(b));
        assert!(!s.free(b));
        assert_eq!(s.alloc(5), None);
        assert_eq!(s.alloc(3), Some(b));
        assert_eq!(s.alloc(1), Some(b + 3 * 4096));
        assert_eq!(s.free_pages(), 0);
        assert_eq!(s.alloc(0), None);
    }

    #[test]
    fn vio_ioba_unaligned_and_tiny_windows() {
        let s = space(100, 3 * 4096);
        assert_eq!(s.pages, 2);
        assert_eq!(s.base, 4096);
        assert_eq!(space(0, 4095).pages, 0);
        assert_eq!(space(u64::MAX - 10, 1 << 20).pages, 0);
        let mut huge = space(0, u64::MAX);
        assert!(huge.alloc(u64::MAX / 4096).is_some());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        #[test]
        fn vio_ioba_ranges_never_overlap(ops in proptest::collection::vec((any::<bool>(), 1u64..6), 1..60)) {
            let mut s = space(0, 32 * 4096);
            let mut live: Vec<(u64, u64)> = Vec::new();
            for (alloc, n) in ops {
                if alloc || live.is_empty() {
                    if let Some(io) = s.alloc(n) {
                        for &(o, m) in &live {
                            prop_assert!(io + n * 4096 <= o || o + m * 4096 <= io);
                        }
                        prop_assert!(io + n * 4096 <= 32 * 4096);
                        live.push((io, n));
                    } else {
                        prop_assert!(s.free_pages() < n || !live.is_empty());
                    }
                } else {
                    let (io, _) = live.remove(usize::try_from(n).unwrap() % live.len());
                    prop_assert!(s.free(io));
                }
                let used: u64 = live.iter().map(|&(_, m)| m).sum();
                prop_assert_eq!(s.free_pages(), 32 - used);
            }
        }
    }
}
