//! The frame table's invariants, checked from its bitmaps a word at a time (tests
//! call it after every operation; the balloon's debug builds after every batch).

use super::blocks::{block_range, BlockCounter};
use super::FrameTable;

impl FrameTable {
    /// Checks that every frame is in exactly one of free, loaned, reserved,
    /// held for a report and used; that owner bits are only on used frames and poison bits only on
    /// loaned ones; that every counter (table and 2 MiB blocks) equals what the
    /// bitmaps hold. Returns the first violation found.
    pub fn check(&self) -> Result<(), &'static str> {
        let (free, loaned, reserved) = (&self.free, &self.loaned, &self.reserved);
        if free.intersects(loaned) || free.intersects(reserved) || loaned.intersects(reserved) {
            return Err("a frame is in two of free, loaned, reserved");
        }
        for owner in [&self.workload, &self.cache] {
            if owner.intersects(free) || owner.intersects(loaned) || owner.intersects(reserved) {
                return Err("an owner bit on a frame that is not used");
            }
        }
        if self.workload.intersects(&self.cache) {
            return Err("a frame held by two owners");
        }
        if !self.loaned_view.matches(loaned) {
            return Err("the loaned view differs from the loaned bitmap");
        }
        if let Some(p) = &self.poisoned {
            if !p.is_subset_of(loaned) {
                return Err("a poison bit on a frame that is not loaned");
            }
        }
        let c = &self.counts;
        let counted = [
            (c.free, free.count_ones()),
            (c.loaned, loaned.count_ones()),
            (c.reserved, reserved.count_ones()),
            (c.workload, self.workload.count_ones()),
            (c.cache, self.cache.count_ones()),
        ];
        if counted.iter().any(|(have, want)| have != want) {
            return Err("a frame counter differs from its bitmap");
        }
        let sum = c
            .free
            .checked_add(c.used)
            .and_then(|s| s.checked_add(c.loaned))
            .and_then(|s| s.checked_add(c.reporting));
        if sum != Some(c.total) || c.workload.saturating_add(c.cache) > c.used {
            return Err("total is not free + used + loaned + reporting");
        }
        self.check_report()?;
        for b in 0..self.map.len().div_ceil(block_range(0).len()) {
            let r = block_range(b);
            let free_in = free.count_ones_in(r.start, r.end);
            let loaned_in = loaned.count_ones_in(r.start, r.end);
            if u64::from(self.blocks.count(BlockCounter::Free, b)) != free_in
                || u64::from(self.blocks.count(BlockCounter::Loaned, b)) != loaned_in
            {
                return Err("a 2 MiB block counter differs from the bitmaps");
            }
        }
        Ok(())
    }
}
