//! The balloon's batches: up to a buffer's worth of frames picked at once from one
//! 2 MiB block (word-at-a-time in the free or loaned bitmap), then marked loaned
//! or returned together, with the table's counters updated once per batch.
//!
//! A pick changes nothing but the cursor of the block search: the frames stay
//! where they are until the hypervisor has accepted their new state and the
//! balloon marks exactly the accepted ones.

use super::blocks::{block_range, BlockCounter};
use super::FrameTable;
use crate::bitmap::Bitmap;
use crate::error::CmmError;
use crate::units::pfn_to_addr;

impl FrameTable {
    /// Fills `out` with up to `out.len()` free frames to loan, all from the block
    /// with the most free frames (a whole free 2 MiB block if there is one, kept
    /// until it is full); returns how many. They stay free until
    /// [`FrameTable::mark_loaned`].
    pub fn pick_loan_batch(&mut self, out: &mut [u64]) -> usize {
        let b = match self.loan_block {
            Some(b) if self.blocks.count(BlockCounter::Free, b) > 0 => b,
            _ => match self.blocks.best_to_loan() {
                Some(b) => b,
                None => return 0,
            },
        };
        self.loan_block = Some(b);
        self.collect(&self.free, b, out)
    }

    /// Fills `out` with up to `out.len()` loaned frames to return, all from the
    /// block with the fewest loaned frames (so whole loaned blocks stay whole);
    /// returns how many. They stay loaned until [`FrameTable::mark_returned`].
    pub fn pick_return_batch(&mut self, out: &mut [u64]) -> usize {
        let b = match self.return_block {
            Some(b) if self.blocks.count(BlockCounter::Loaned, b) > 0 => b,
            _ => match self.blocks.best_to_return() {
                Some(b) => b,
                None => return 0,
            },
        };
        self.return_block = Some(b);
        self.collect(&self.loaned, b, out)
    }

    /// The frame numbers of the first `out.len()` set bits of `bits` in block `b`.
    fn collect(&self, bits: &Bitmap, b: usize, out: &mut [u64]) -> usize {
        let r = block_range(b);
        let mut n = 0;
        for (slot, pfn) in out
            .iter_mut()
            .zip(bits.ones_in(r.start, r.end).filter_map(|i| self.pfn(i)))
        {
            *slot = pfn;
            n += 1;
        }
        n
    }

    /// The frames `pfns` (distinct, all free) are now loaned: their Loaned calls
    /// succeeded. If any is not a free frame, nothing changes.
    pub fn mark_loaned(&mut self, pfns: &[u64]) -> Result<(), CmmError> {
        self.expect_all(pfns, |t, i| t.free.get(i), "free")?;
        let mut moved = 0u64;
        for &pfn in pfns {
            let Some(i) = self.map.index_of(pfn) else {
                continue;
            };
            if self.free.clear(i) {
                self.loaned.set(i);
                self.blocks.set_free(i, false);
                self.blocks.set_loaned(i, true);
                moved += 1;
            }
        }
        let c = &mut self.counts;
        c.free = c.free.saturating_sub(moved);
        c.loaned = c.loaned.saturating_add(moved);
        Ok(())
    }

    /// The loaned frames `pfns` are back (their Active calls succeeded) and go to
    /// the free list, their poison bits cleared. If any is not a loaned frame,
    /// nothing changes.
    pub fn mark_returned(&mut self, pfns: &[u64]) -> Result<(), CmmError> {
        self.expect_all(pfns, |t, i| t.loaned.get(i), "loaned")?;
        let mut moved = 0u64;
        for &pfn in pfns {
            let Some(i) = self.map.index_of(pfn) else {
                continue;
            };
            if self.loaned.clear(i) {
                self.free.set(i);
                self.blocks.set_loaned(i, false);
                self.blocks.set_free(i, true);
                if let Some(p) = self.poisoned.as_mut() {
                    p.clear(i);
                }
                moved += 1;
            }
        }
        let c = &mut self.counts;
        c.loaned = c.loaned.saturating_sub(moved);
        c.free = c.free.saturating_add(moved);
        Ok(())
    }

    fn expect_all(
        &self,
        pfns: &[u64],
        ok: impl Fn(&Self, usize) -> bool,
        expected: &'static str,
    ) -> Result<(), CmmError> {
        for &pfn in pfns {
            let i = self.index(pfn)?;
            if !ok(self, i) {
                return Err(CmmError::WrongState {
                    addr: pfn_to_addr(pfn),
                    expected,
                });
            }
        }
        Ok(())
    }

    /// False while no frame has ever been poisoned: then no loaned frame needs
    /// its poison checked, and a batch skips the per-frame lookups.
    pub fn may_hold_poison(&self) -> bool {
        self.poisoned.is_some()
    }
}

impl FrameTable {
    /// Fills `out` with up to `out.len()` free frames at index `from` or later, in
    /// index order (a forward walk, word-at-a-time). Returns how many, and the
    /// index to continue from (the table's length once the walk is through).
    pub fn pick_free_from(&self, from: usize, out: &mut [u64]) -> (usize, usize) {
        let len = self.map.len();
        let mut n = 0;
        let mut next = len;
        for i in self.free.ones_in(from, len) {
            if n == out.len() {
                next = i;
                break;
            }
            if let Some(pfn) = self.pfn(i) {
                out[n] = pfn;
                n += 1;
            }
        }
        (n, next)
    }

    /// The length of the frame index space (frames and padding holes).
    pub fn index_len(&self) -> usize {
        self.map.len()
    }
}
