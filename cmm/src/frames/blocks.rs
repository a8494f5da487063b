//! Per-2 MiB-block counters, and the choice of block to loan from or return from.
//!
//! A block is [`FRAMES_PER_BLOCK`] consecutive indices (a physically aligned 2 MiB
//! range, see [`super::regions`]). For each block the table keeps how many frames it
//! has (padding holes excluded), how many are free and how many are loaned, in
//! 16-bit counters (6 bytes per 2 MiB). The balloon loans from the block with the
//! most free frames (a whole free block if there is one) and keeps filling it, and
//! returns from the block with the fewest loaned frames, so loaned memory gathers in
//! whole 2 MiB runs that the hypervisor can reclaim as large pages.

use alloc::vec;
use alloc::vec::Vec;

use crate::units::FRAMES_PER_BLOCK;

/// Which counter a search looks at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockCounter {
    /// Free frames.
    Free,
    /// Loaned frames.
    Loaned,
}

/// Counters for every 2 MiB block of the index space.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Blocks {
    frames: Vec<u16>,
    free: Vec<u16>,
    loaned: Vec<u16>,
    /// Where the next search for a block starts (rotates so ties spread out).
    cursor: usize,
}

/// The block an index lies in.
pub fn block_of(index: usize) -> usize {
    index / block_len()
}

/// The index range of block `b`.
pub fn block_range(b: usize) -> core::ops::Range<usize> {
    let lo = b.saturating_mul(block_len());
    lo..lo.saturating_add(block_len())
}

fn block_len() -> usize {
    usize::try_from(FRAMES_PER_BLOCK).unwrap_or(512)
}

impl Blocks {
    /// Counters for an index space of `len` indices; all zero until frames are added.
    pub fn new(len: usize) -> Self {
        let n = len.div_ceil(block_len());
        Blocks {
            frames: vec![0; n],
            free: vec![0; n],
            loaned: vec![0; n],
            cursor: 0,
        }
    }

    /// Records that the indices `r` are frames (not holes), a block at a time.
    pub fn add_frames(&mut self, r: core::ops::Range<usize>) {
        let mut i = r.start;
        while i < r.end {
            let b = block_of(i);
            let end = block_range(b).end.min(r.end);
            if let Some(c) = self.frames.get_mut(b) {
                let n = u16::try_from(end - i).unwrap_or(u16::MAX);
                *c = c.saturating_add(n);
            }
            i = end;
        }
    }

    /// `n` frames of block `b` moved from counter `from` to counter `to`.
    pub fn shift(&mut self, b: usize, from: BlockCounter, to: BlockCounter, n: usize) {
        let n = u16::try_from(n).unwrap_or(u16::MAX);
        if let Some(c) = self.counter_mut(from).get_mut(b) {
            *c = c.saturating_sub(n);
        }
        if let Some(c) = self.counter_mut(to).get_mut(b) {
            *c = c.saturating_add(n);
        }
    }

    fn counter_mut(&mut self, which: BlockCounter) -> &mut [u16] {
        match which {
            BlockCounter::Free => &mut self.free,
            BlockCounter::Loaned => &mut self.loaned,
        }
    }

    /// Sets the free count of block `b` (when the table is built).
    pub fn set_free_count(&mut self, b: usize, n: u16) {
        if let Some(c) = self.free.get_mut(b) {
            *c = n;
        }
    }

    /// Number of blocks.
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    /// True if there are no blocks.
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// A frame at index `i` became free (`true`) or stopped being free.
    pub fn set_free(&mut self, i: usize, free: bool) {
        bump(&mut self.free, block_of(i), free);
    }

    /// A frame at index `i` became loaned (`true`) or stopped being loaned.
    pub fn set_loaned(&mut self, i: usize, loaned: bool) {
        bump(&mut self.loaned, block_of(i), loaned);
    }

    /// The counter `which` of block `b`.
    pub fn count(&self, which: BlockCounter, b: usize) -> u16 {
        self.counter(which).get(b).copied().unwrap_or(0)
    }

    /// Frames (not holes) in block `b`.
    pub fn frames_in(&self, b: usize) -> u16 {
        self.frames.get(b).copied().unwrap_or(0)
    }

    fn counter(&self, which: BlockCounter) -> &[u16] {
        match which {
            BlockCounter::Free => &self.free,
            BlockCounter::Loaned => &self.loaned,
        }
    }

    /// The block to loan from: the one with the most free frames, stopping early at
    /// a whole free 2 MiB block. Scans from a rotating cursor; `None` if nothing is free.
    pub fn best_to_loan(&mut self) -> Option<usize> {
        let whole = u16::try_from(FRAMES_PER_BLOCK).unwrap_or(u16::MAX);
        self.scan(|free| free, |free| free >= whole, BlockCounter::Free)
    }

    /// The block to return from: the one with the fewest (but some) loaned frames.
    pub fn best_to_return(&mut self) -> Option<usize> {
        // Score: more is better, so invert the loaned count; 1 loaned frame is ideal.
        self.scan(
            |loaned| u16::MAX - loaned,
            |loaned| loaned == 1,
            BlockCounter::Loaned,
        )
    }

    /// Scans every block once from the cursor for the highest `score` among blocks
    /// whose counter is non-zero, stopping at the first `ideal` one.
    fn scan(
        &mut self,
        score: impl Fn(u16) -> u16,
        ideal: impl Fn(u16) -> bool,
        which: BlockCounter,
    ) -> Option<usize> {
        let counter = self.counter(which);
        let n = counter.len();
        let mut best: Option<(u16, usize)> = None;
        for k in 0..n {
            let b = (self.cursor + k) % n;
            let c = counter.get(b).copied().unwrap_or(0);
            if c == 0 {
                continue;
            }
            if ideal(c) {
                best = Some((u16::MAX, b));
                break;
            }
            let s = score(c);
            if best.is_none_or(|(bs, _)| s > bs) {
                best = Some((s, b));
            }
        }
        let (_, b) = best?;
        self.cursor = (b + 1) % n.max(1);
        Some(b)
    }
}

fn bump(v: &mut [u16], b: usize, up: bool) {
    if let Some(c) = v.get_mut(b) {
        *c = if up {
            c.saturating_add(1)
        } else {
            c.saturating_sub(1)
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_whole_free_block_then_fullest() {
        let mut b = Blocks::new(2048);
        b.add_frames(0..1000);
        b.add_frames(1000..2048);
        assert_eq!((b.frames_in(1), b.frames_in(3), b.len()), (512, 512, 4));
        for i in 0..10 {
            b.set_free(i, true);
        }
        for i in 1024..1536 {
            b.set_free(i, true);
        }
        for i in 1536..1600 {
            b.set_free(i, true);
        }
        assert_eq!(b.best_to_loan(), Some(2), "the whole free block wins");
        b.set_free(1024, false);
        assert_eq!(b.best_to_loan(), Some(2), "511 free still beats 64 and 10");
        for i in 1024..1536 {
            b.set_free(i, false);
        }
        assert_eq!(b.best_to_loan(), Some(3));
        for i in 1536..1600 {
            b.set_free(i, false);
        }
        assert_eq!(b.best_to_loan(), Some(0));
        for i in 0..10 {
            b.set_free(i, false);
        }
        assert_eq!(b.best_to_loan(), None);
    }

    #[test]
    fn returns_from_the_least_loaned_block() {
        let mut b = Blocks::new(1536);
        for i in 0..512 {
            b.set_loaned(i, true);
        }
        for i in 600..610 {
            b.set_loaned(i, true);
        }
        assert_eq!(b.best_to_return(), Some(1));
        for i in 600..610 {
            b.set_loaned(i, false);
        }
        assert_eq!(b.best_to_return(), Some(0));
        assert_eq!(block_range(2), 1024..1536);
        assert_eq!(block_of(1023), 1);
    }
}
