//! [`LoanedView`]: which frames are loaned, readable from a context that cannot
//! borrow the frame table (a fault handler reporting on its way out, while the
//! interrupted code holds the table mutably). The table keeps it in step with its
//! own loaned bitmap at every loan and return; the bits are atomics behind an
//! `Arc`, so a shared handle ([`LoanedView::share`]) reads them without a
//! reference into the table.

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

use super::regions::RegionMap;

/// The loaned bit of every frame of a table, shareable.
#[derive(Debug)]
pub struct LoanedView {
    map: RegionMap,
    bits: Arc<[AtomicU64]>,
}

impl LoanedView {
    /// A view of `len` frames laid out by `map`, none loaned.
    pub(super) fn new(map: RegionMap, len: usize) -> Self {
        let bits: Vec<AtomicU64> = (0..len.div_ceil(64)).map(|_| AtomicU64::new(0)).collect();
        LoanedView {
            map,
            bits: bits.into(),
        }
    }

    /// Sets (`true`) or clears the bit of table index `i`.
    pub(super) fn set(&self, i: usize, loaned: bool) {
        if let Some(w) = self.bits.get(i / 64) {
            let bit = 1u64 << (i % 64);
            if loaned {
                w.fetch_or(bit, Ordering::Relaxed);
            } else {
                w.fetch_and(!bit, Ordering::Relaxed);
            }
        }
    }

    /// True if frame `pfn` is loaned (as of the last loan or return the table
    /// recorded); false for a frame that is not RAM.
    pub fn is_loaned(&self, pfn: u64) -> bool {
        self.map.index_of(pfn).is_some_and(|i| {
            self.bits
                .get(i / 64)
                .is_some_and(|w| w.load(Ordering::Relaxed) & (1u64 << (i % 64)) != 0)
        })
    }

    /// True if the view holds exactly the bits of `loaned` (the table's check).
    pub(super) fn matches(&self, loaned: &crate::bitmap::Bitmap) -> bool {
        let words = loaned.words();
        self.bits.len() == words.len()
            && self
                .bits
                .iter()
                .zip(words)
                .all(|(a, &b)| a.load(Ordering::Relaxed) == b)
    }

    /// The loaned frames, in order.
    pub fn pfns(&self) -> impl Iterator<Item = u64> + '_ {
        self.bits.iter().enumerate().flat_map(move |(w, word)| {
            let mut bits = word.load(Ordering::Relaxed);
            core::iter::from_fn(move || {
                if bits == 0 {
                    return None;
                }
                let b = bits.trailing_zeros() as usize;
                bits &= bits - 1;
                Some(w * 64 + b)
            })
            .filter_map(|i| self.map.pfn_of(i))
        })
    }

    /// A second handle on the same bits (not a copy): it sees every later loan
    /// and return.
    pub fn share(&self) -> LoanedView {
        LoanedView {
            map: self.map.clone(),
            bits: Arc::clone(&self.bits),
        }
    }
}

/// A clone of the table gets its own bits (a copy), as its bitmaps are copies.
impl Clone for LoanedView {
    fn clone(&self) -> Self {
        let bits: Vec<AtomicU64> = self
            .bits
            .iter()
            .map(|w| AtomicU64::new(w.load(Ordering::Relaxed)))
            .collect();
        LoanedView {
            map: self.map.clone(),
            bits: bits.into(),
        }
    }
}
