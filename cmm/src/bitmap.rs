//! A fixed-size bitmap with word-at-a-time searches.
//!
//! The frame table keeps every per-frame fact (free, loaned, owner) in one of these,
//! outside the frames themselves. Indices past the end read as clear and are
//! ignored on write: callers range-check, the bitmap never panics.

use alloc::vec;
use alloc::vec::Vec;

const WORD_BITS: usize = 64;

/// A set of indices `0..len`, one bit each.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bitmap {
    words: Vec<u64>,
    len: usize,
}

impl Bitmap {
    /// An all-clear bitmap of `len` bits.
    pub fn new(len: usize) -> Self {
        Bitmap {
            words: vec![0; len.div_ceil(WORD_BITS)],
            len,
        }
    }

    /// Number of bits.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True if the bitmap has no bits at all.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The bit at `i` (false past the end).
    pub fn get(&self, i: usize) -> bool {
        self.words
            .get(i / WORD_BITS)
            .is_some_and(|w| w & (1u64 << (i % WORD_BITS)) != 0)
    }

    /// Sets bit `i`; returns its previous value (false, and no change, past the end).
    pub fn set(&mut self, i: usize) -> bool {
        self.put(i, true)
    }

    /// Clears bit `i`; returns its previous value.
    pub fn clear(&mut self, i: usize) -> bool {
        self.put(i, false)
    }

    fn put(&mut self, i: usize, value: bool) -> bool {
        if i >= self.len {
            return false;
        }
        let Some(word) = self.words.get_mut(i / WORD_BITS) else {
            return false;
        };
        let mask = 1u64 << (i % WORD_BITS);
        let was = *word & mask != 0;
        if value {
            *word |= mask;
        } else {
            *word &= !mask;
        }
        was
    }

    /// The first set bit in `lo..hi` (clipped to the bitmap), scanning whole words.
    pub fn find_set_in(&self, lo: usize, hi: usize) -> Option<usize> {
        let hi = hi.min(self.len);
        if lo >= hi {
            return None;
        }
        let mut w = lo / WORD_BITS;
        // Mask off the bits below `lo` in the first word.
        let mut bits = self.words.get(w)? & (u64::MAX << (lo % WORD_BITS));
        loop {
            if bits != 0 {
                // trailing_zeros of a non-zero u64 is below 64.
                let i = w * WORD_BITS + bits.trailing_zeros() as usize;
                return (i < hi).then_some(i);
            }
            w += 1;
            if w * WORD_BITS >= hi {
                return None;
            }
            bits = *self.words.get(w)?;
        }
    }

    /// The first set bit at or after `start`, wrapping around to the beginning: the
    /// rotating-cursor search.
    pub fn find_set_from(&self, start: usize) -> Option<usize> {
        let start = if start >= self.len { 0 } else { start };
        self.find_set_in(start, self.len)
            .or_else(|| self.find_set_in(0, start))
    }

    /// The words, bit `i` at `words()[i / 64] & (1 << (i % 64))`.
    pub fn words(&self) -> &[u64] {
        &self.words
    }

    /// Number of set bits.
    pub fn count_ones(&self) -> u64 {
        self.words.iter().map(|w| u64::from(w.count_ones())).sum()
    }

    /// The set bits in ascending order.
    pub fn iter_ones(&self) -> Ones<'_> {
        self.ones_in(0, self.len)
    }

    /// The set bits in `lo..hi` (clipped) in ascending order, a word at a time:
    /// each word is read once and its set bits are taken lowest first.
    pub fn ones_in(&self, lo: usize, hi: usize) -> Ones<'_> {
        let hi = hi.min(self.len);
        let w = lo / WORD_BITS;
        let bits = if lo < hi {
            self.words
                .get(w)
                .map_or(0, |x| x & (u64::MAX << (lo % WORD_BITS)))
        } else {
            0
        };
        Ones {
            words: &self.words,
            w,
            bits,
            hi: if lo < hi { hi } else { 0 },
        }
    }
}

/// The iterator of [`Bitmap::ones_in`].
#[derive(Clone, Debug)]
pub struct Ones<'a> {
    words: &'a [u64],
    /// The word `bits` came from.
    w: usize,
    /// What is left of word `w`.
    bits: u64,
    /// One past the last index to yield.
    hi: usize,
}

impl Iterator for Ones<'_> {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        while self.bits == 0 {
            self.w += 1;
            if self.w.checked_mul(WORD_BITS)? >= self.hi {
                return None;
            }
            self.bits = *self.words.get(self.w)?;
        }
        // trailing_zeros of a non-zero u64 is below 64.
        let i = self.w * WORD_BITS + self.bits.trailing_zeros() as usize;
        if i >= self.hi {
            self.bits = 0;
            return None;
        }
        self.bits &= self.bits - 1;
        Some(i)
    }
}

impl Bitmap {
    /// Moves the bits at `indices` (ascending) from this bitmap to `to`, a word
    /// at a time: all must be set here and `to` as long; otherwise nothing
    /// changes and the answer is false.
    pub fn move_to(&mut self, to: &mut Bitmap, indices: &[usize]) -> bool {
        if to.len != self.len || !indices.iter().all(|&i| self.get(i)) {
            return false;
        }
        let mut w = usize::MAX;
        let mut mask = 0u64;
        for &i in indices {
            if i / WORD_BITS != w {
                self.flush_move(to, w, mask);
                w = i / WORD_BITS;
                mask = 0;
            }
            mask |= 1u64 << (i % WORD_BITS);
        }
        self.flush_move(to, w, mask);
        true
    }

    fn flush_move(&mut self, to: &mut Bitmap, w: usize, mask: u64) {
        if let (Some(a), Some(b)) = (self.words.get_mut(w), to.words.get_mut(w)) {
            *a &= !mask;
            *b |= mask;
        }
    }

    /// Sets every bit in `lo..hi` (clipped), whole words at a time.
    pub fn set_range(&mut self, lo: usize, hi: usize) {
        self.put_range(lo, hi, true);
    }

    /// Clears every bit in `lo..hi` (clipped), whole words at a time.
    pub fn clear_range(&mut self, lo: usize, hi: usize) {
        self.put_range(lo, hi, false);
    }

    fn put_range(&mut self, lo: usize, hi: usize, on: bool) {
        let hi = hi.min(self.len);
        let mut i = lo;
        while i < hi {
            let w = i / WORD_BITS;
            let first = i % WORD_BITS;
            let last = (hi - w * WORD_BITS).min(WORD_BITS);
            let mask = if last - first == WORD_BITS {
                u64::MAX
            } else {
                ((1u64 << (last - first)) - 1) << first
            };
            if let Some(x) = self.words.get_mut(w) {
                if on {
                    *x |= mask;
                } else {
                    *x &= !mask;
                }
            }
            i = w * WORD_BITS + last;
        }
    }

    /// Clears every bit that is set in `other`.
    pub fn clear_all_of(&mut self, other: &Bitmap) {
        for (a, b) in self.words.iter_mut().zip(&other.words) {
            *a &= !b;
        }
    }

    /// True if some index is set in both bitmaps.
    pub fn intersects(&self, other: &Bitmap) -> bool {
        self.words.iter().zip(&other.words).any(|(a, b)| a & b != 0)
    }

    /// True if every index set here is set in `other` too.
    pub fn is_subset_of(&self, other: &Bitmap) -> bool {
        self.words
            .iter()
            .enumerate()
            .all(|(w, a)| a & !other.words.get(w).copied().unwrap_or(0) == 0)
    }

    /// Number of set bits in `lo..hi` (clipped), a word at a time.
    pub fn count_ones_in(&self, lo: usize, hi: usize) -> u64 {
        let hi = hi.min(self.len);
        if lo >= hi {
            return 0;
        }
        let (first, last) = (lo / WORD_BITS, (hi - 1) / WORD_BITS);
        let mut n = 0u64;
        for w in first..=last {
            let mut x = self.words.get(w).copied().unwrap_or(0);
            if w == first {
                x &= u64::MAX << (lo % WORD_BITS);
            }
            if w == last && !hi.is_multiple_of(WORD_BITS) {
                x &= u64::MAX >> (WORD_BITS - hi % WORD_BITS);
            }
            n += u64::from(x.count_ones());
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn set_clear_find() {
        let mut b = Bitmap::new(200);
        assert_eq!(b.find_set_from(0), None);
        assert!(!b.set(5));
        assert!(b.set(5));
        b.set(130);
        b.set(199);
        assert!(!b.set(200), "past the end is ignored");
        assert!(!b.get(200));
        assert_eq!(b.find_set_in(0, 200), Some(5));
        assert_eq!(b.find_set_in(6, 200), Some(130));
        assert_eq!(b.find_set_in(6, 130), None);
        assert_eq!(b.find_set_from(131), Some(199));
        assert_eq!(b.find_set_from(1000), Some(5));
        assert!(b.clear(199));
        assert_eq!(b.find_set_from(131), Some(5), "wraps around");
        assert_eq!(b.count_ones(), 2);
        assert_eq!(b.count_ones_in(0, 130), 1);
        assert_eq!(b.iter_ones().collect::<Vec<_>>(), [5, 130]);
        assert!(Bitmap::new(0).is_empty());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        #[test]
        fn matches_a_bool_vector(len in 1usize..300, ops in prop::collection::vec((0usize..320, any::<bool>()), 0..100), lo in 0usize..320, hi in 0usize..320) {
            let mut b = Bitmap::new(len);
            let mut v = vec![false; len];
            for (i, on) in ops {
                if on { b.set(i); } else { b.clear(i); }
                if let Some(x) = v.get_mut(i) { *x = on; }
            }
            let want = (lo..hi.min(len)).find(|&i| v[i]);
            prop_assert_eq!(b.find_set_in(lo, hi), want);
            let count = (lo..hi.min(len)).filter(|&i| v[i]).count() as u64;
            prop_assert_eq!(b.count_ones_in(lo, hi), count);
            let mut r = b.clone();
            r.set_range(lo, hi);
            for (i, &x) in v.iter().enumerate() {
                prop_assert_eq!(r.get(i), x || (lo..hi).contains(&i));
            }
            let mut c = b.clone();
            c.clear_range(lo, hi);
            for (i, &x) in v.iter().enumerate() {
                prop_assert_eq!(c.get(i), x && !(lo..hi).contains(&i));
            }
            let mut moved = Bitmap::new(len);
            let ones: Vec<usize> = b.iter_ones().collect();
            let mut from = b.clone();
            prop_assert!(from.move_to(&mut moved, &ones));
            prop_assert_eq!(&moved, &b);
            prop_assert_eq!(from.count_ones(), 0);
            prop_assert_eq!(from.move_to(&mut moved, &ones), ones.is_empty());
            r.clear_all_of(&b);
            for (i, &x) in v.iter().enumerate() {
                prop_assert_eq!(r.get(i), !x && (lo..hi).contains(&i));
            }
            prop_assert_eq!(b.count_ones(), v.iter().filter(|x| **x).count() as u64);
            let ones: Vec<usize> = (lo..hi.min(len)).filter(|&i| v[i]).collect();
            prop_assert_eq!(b.ones_in(lo, hi).collect::<Vec<_>>(), ones);
        }
    }
}
