//! The balloon's batches: up to [`BATCH`] frames picked at once from one 2 MiB
//! block (word-at-a-time in the free or loaned bitmap) into a [`FrameBatch`],
//! then the first `n` of them marked loaned or returned together, with the
//! bitmaps changed a word at a time and every counter once per batch.
//!
//! A pick changes nothing but the cursor of the block search: the frames stay
//! where they are until the hypervisor has accepted their new state and the
//! balloon marks exactly the accepted ones (docs/balloon-fast-path.md). Only the table fills a batch, so its
//! frames are distinct, ascending, in one block, and their addresses right.

use super::blocks::{block_range, BlockCounter};
use super::FrameTable;
use crate::bitmap::Bitmap;
use crate::error::CmmError;
use crate::units::{pfn_to_addr, FRAMES_PER_BLOCK};

/// Most frames in one batch (a virtio-balloon buffer holds as many PFNs).
pub const BATCH: usize = 256;

/// Up to [`BATCH`] frames of one 2 MiB block, picked by the frame table.
#[derive(Clone, Debug)]
pub struct FrameBatch {
    block: usize,
    len: usize,
    index: [usize; BATCH],
    addrs: [u64; BATCH],
}

impl Default for FrameBatch {
    fn default() -> Self {
        FrameBatch {
            block: 0,
            len: 0,
            index: [0; BATCH],
            addrs: [0; BATCH],
        }
    }
}

impl FrameBatch {
    /// An empty batch (a buffer to pick into).
    pub fn new() -> Self {
        FrameBatch::default()
    }

    /// Frames picked.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True if nothing was picked.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The real addresses of the frames picked, ascending.
    pub fn addrs(&self) -> &[u64] {
        &self.addrs[..self.len]
    }
}

impl FrameTable {
    /// Picks up to `max` (at most [`BATCH`]) free frames to loan into `batch`, all
    /// from the block with the most free frames (a whole free 2 MiB block if there
    /// is one, kept until it is full); returns how many. They stay free until
    /// [`FrameTable::mark_loaned`].
    pub fn pick_loan_batch(&mut self, batch: &mut FrameBatch, max: usize) -> usize {
        batch.len = 0;
        let b = match self.loan_block {
            Some(b) if self.blocks.count(BlockCounter::Free, b) > 0 => b,
            _ => match self.blocks.best_to_loan() {
                Some(b) => b,
                None => return 0,
            },
        };
        self.loan_block = Some(b);
        self.collect(&self.free, b, 0, batch, max)
    }

    /// Picks up to `max` loaned frames to return into `batch`, all from the block
    /// with the fewest loaned frames (so whole loaned blocks stay whole); returns
    /// how many. They stay loaned until [`FrameTable::mark_returned`].
    pub fn pick_return_batch(&mut self, batch: &mut FrameBatch, max: usize) -> usize {
        batch.len = 0;
        let b = match self.return_block {
            Some(b) if self.blocks.count(BlockCounter::Loaned, b) > 0 => b,
            _ => match self.blocks.best_to_return() {
                Some(b) => b,
                None => return 0,
            },
        };
        self.return_block = Some(b);
        // After a refused return, go on behind the refused frame until the
        // block's end, so that a page the hypervisor will not give back does
        // not hold up the others; then from the block's start again.
        if let Some(from) = self.return_from {
            if block_range(b).contains(&from) {
                let n = self.collect(&self.loaned, b, from, batch, max);
                if n > 0 {
                    return n;
                }
            }
            self.return_from = None;
        }
        self.collect(&self.loaned, b, 0, batch, max)
    }

    /// The return of frame `position` of `batch` was refused (the frames before
    /// it were marked returned): the next return batches start behind it.
    pub fn return_refused(&mut self, batch: &FrameBatch, position: usize) {
        if position < batch.len {
            self.return_from = Some(batch.index[position] + 1);
        }
    }

    /// Picks up to `max` free frames at index `from` or later, in index order,
    /// within one block (a forward walk). Returns how many, and the index to
    /// continue from (the table's length once the walk is through).
    pub fn pick_free_from(
        &self,
        from: usize,
        batch: &mut FrameBatch,
        max: usize,
    ) -> (usize, usize) {
        batch.len = 0;
        let len = self.map.len();
        let Some(i) = self.free.ones_in(from, len).next() else {
            return (0, len);
        };
        let b = i / block_len();
        let n = self.collect(&self.free, b, i, batch, max);
        let next = match batch.index[..n].last() {
            Some(&last) if n == max.min(BATCH) => last + 1,
            _ => block_range(b).end,
        };
        (n, next.min(len))
    }

    /// Fills `batch` with the first `max` set bits of `bits` in block `b`, from
    /// index `from` on, translating indices a region at a time.
    fn collect(
        &self,
        bits: &Bitmap,
        b: usize,
        from: usize,
        batch: &mut FrameBatch,
        max: usize,
    ) -> usize {
        let r = block_range(b);
        let max = max.min(BATCH);
        let mut span: Option<(core::ops::Range<usize>, u64)> = None;
        let mut n = 0;
        for i in bits.ones_in(r.start.max(from), r.end) {
            if n == max {
                break;
            }
            if !span.as_ref().is_some_and(|(s, _)| s.contains(&i)) {
                span = self.map.span_of(i);
            }
            let Some((s, first_pfn)) = &span else {
                continue;
            };
            batch.index[n] = i;
            batch.addrs[n] = pfn_to_addr(first_pfn + (i - s.start) as u64);
            n += 1;
        }
        batch.block = b;
        batch.len = n;
        n
    }

    /// The first `n` frames of `batch` (all still free) are now loaned: their
    /// Loaned calls succeeded. If any is not free any more, nothing changes.
    pub fn mark_loaned(&mut self, batch: &FrameBatch, n: usize) -> Result<(), CmmError> {
        let idx = &batch.index[..n.min(batch.len)];
        if !self.free.move_to(&mut self.loaned, idx) {
            return Err(self.not_all(batch, "free"));
        }
        for &i in idx {
            self.loaned_view.set(i, true);
        }
        let moved = idx.len();
        self.blocks
            .shift(batch.block, BlockCounter::Free, BlockCounter::Loaned, moved);
        if moved > 0 {
            self.report.taken(batch.block);
        }
        let c = &mut self.counts;
        c.free = c.free.saturating_sub(moved as u64);
        c.loaned = c.loaned.saturating_add(moved as u64);
        Ok(())
    }

    /// The first `n` frames of `batch` (all still loaned) are back — their Active
    /// calls succeeded — and go to the free list, their poison bits cleared. If
    /// any is not loaned any more, nothing changes.
    pub fn mark_returned(&mut self, batch: &FrameBatch, n: usize) -> Result<(), CmmError> {
        let idx = &batch.index[..n.min(batch.len)];
        if !self.loaned.move_to(&mut self.free, idx) {
            return Err(self.not_all(batch, "loaned"));
        }
        for &i in idx {
            self.loaned_view.set(i, false);
        }
        if let Some(p) = self.poisoned.as_mut() {
            for &i in idx {
                p.clear(i);
            }
        }
        let moved = idx.len();
        self.blocks
            .shift(batch.block, BlockCounter::Loaned, BlockCounter::Free, moved);
        self.report.freed();
        let c = &mut self.counts;
        c.loaned = c.loaned.saturating_sub(moved as u64);
        c.free = c.free.saturating_add(moved as u64);
        Ok(())
    }

    fn not_all(&self, batch: &FrameBatch, expected: &'static str) -> CmmError {
        CmmError::WrongState {
            addr: batch.addrs.first().copied().unwrap_or(0),
            expected,
        }
    }

    /// Marks the first `n` frames of `batch` (just loaned) as holding the poison
    /// pattern. The poison bitmap is allocated the first time.
    pub fn set_poisoned(&mut self, batch: &FrameBatch, n: usize) {
        let len = self.map.len();
        let p = self.poisoned.get_or_insert_with(|| Bitmap::new(len));
        for &i in &batch.index[..n.min(batch.len)] {
            p.set(i);
        }
    }

    /// Whether each of the first `n` frames of `batch` holds the poison pattern.
    pub fn poisoned_in<'a>(
        &'a self,
        batch: &'a FrameBatch,
        n: usize,
    ) -> impl Iterator<Item = bool> + 'a {
        batch.index[..n.min(batch.len)]
            .iter()
            .map(move |&i| self.poisoned.as_ref().is_some_and(|p| p.get(i)))
    }

    /// False while no frame has ever been poisoned: then no loaned frame needs
    /// its poison checked, and a batch skips the per-frame lookups.
    pub fn may_hold_poison(&self) -> bool {
        self.poisoned.is_some()
    }

    /// The length of the frame index space (frames and padding holes).
    pub fn index_len(&self) -> usize {
        self.map.len()
    }
}

fn block_len() -> usize {
    usize::try_from(FRAMES_PER_BLOCK).unwrap_or(512)
}
