//! The physical 4 KiB frame table: which frame is free, loaned, reserved or used,
//! and by whom.
//!
//! All of its state lives outside the frames it manages: the kernel marks free
//! frames Unused and loaned frames Loaned to the hypervisor, so nothing may be stored
//! inside them (docs/cmo.md §4.4). Per frame it keeps one bit in each of five
//! bitmaps (free, loaned, reserved, workload, cache; a used frame in neither owner
//! bitmap belongs to the kernel), plus one optional poison bit once poison mode has
//! been used: 5-6 bits per frame, against Linux's 8 bytes per loaned page in its old
//! page arrays. Searches are word-at-a-time from a rotating cursor; loaning and
//! returning go through the 2 MiB block counters of [`blocks`], a batch at a time
//! (`batch`). A free frame's contents are unknown: whoever allocates it
//! initializes it (see [`crate::mm`]), so no frame needs a "dirty" bit.
//!
//! Invariant: every frame is in exactly one of free, loaned, reserved, used and
//! held for a free-page report ([`report`]), and
//! `total == free + used + loaned + reporting` (reserved frames are not managed).

mod batch;
pub use batch::{FrameBatch, BATCH};
pub mod blocks;
mod invariants;
pub mod regions;
pub mod report;
mod view;

use crate::bitmap::Bitmap;
use crate::error::CmmError;
use crate::units::pfn_to_addr;
use blocks::{block_of, BlockCounter, Blocks};
use regions::RegionMap;
pub use regions::{managed_regions, Region};
use report::ReportBlocks;
pub use report::{ReportCounts, ReportRange};
pub use view::LoanedView;

/// Who holds a used frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Owner {
    /// The kernel itself (page tables, buffers, ...).
    Kernel,
    /// The console's working-set workload (`alloc <size>`).
    Workload,
    /// The console's cache workload (`alloc <size> cache`), shown as `Cached`.
    Cache,
}

/// The state of one frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FrameState {
    /// On the free list (hinted Unused to the hypervisor).
    Free,
    /// Loaned to the hypervisor by the balloon.
    Loaned,
    /// Not managed (kernel image, device tree, firmware).
    Reserved,
    /// Allocated.
    Used(Owner),
    /// Free, but held by the device for a free-page report: not on the free
    /// list until the device has used the report ([`report`]).
    Reporting,
}

/// A set of frames that can be walked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameSet {
    /// Free frames.
    Free,
    /// Loaned frames.
    Loaned,
    /// Reserved frames.
    Reserved,
    /// Frames held by the working-set workload.
    Workload,
    /// Frames held by the cache workload.
    Cache,
}

/// The frame counters (each kept up to date at every transition).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FrameCounts {
    /// Managed frames: `free + used + loaned`. Constant after construction.
    pub total: u64,
    /// Free frames.
    pub free: u64,
    /// Allocated frames (kernel + workload + cache).
    pub used: u64,
    /// Frames loaned to the hypervisor.
    pub loaned: u64,
    /// Reserved (unmanaged) RAM frames.
    pub reserved: u64,
    /// Used frames held by the working-set workload.
    pub workload: u64,
    /// Used frames held by the cache workload.
    pub cache: u64,
    /// Free frames the device holds for a free-page report (off the free list).
    pub reporting: u64,
}

/// The frame table.
#[derive(Clone, Debug)]
pub struct FrameTable {
    map: RegionMap,
    free: Bitmap,
    loaned: Bitmap,
    /// The loaned bitmap again, readable without borrowing the table.
    loaned_view: LoanedView,
    reserved: Bitmap,
    workload: Bitmap,
    cache: Bitmap,
    poisoned: Option<Bitmap>,
    blocks: Blocks,
    report: ReportBlocks,
    counts: FrameCounts,
    alloc_cursor: usize,
    loan_block: Option<usize>,
    return_block: Option<usize>,
    /// Where return batches start after a refused return: the frame after the
    /// refused one (see [`FrameTable::return_refused`]).
    return_from: Option<usize>,
}

fn inc(c: &mut u64) {
    *c = c.saturating_add(1);
}

fn dec(c: &mut u64) {
    *c = c.saturating_sub(1);
}

impl FrameTable {
    /// A table of the RAM regions with the reserved ranges taken out; every other
    /// frame starts free. Reserved ranges may lie partly or wholly outside RAM.
    pub fn new(ram: &[Region], reserved: &[Region]) -> Result<Self, CmmError> {
        let map = RegionMap::new(ram)?;
        let len = map.len();
        let mut t = FrameTable {
            free: Bitmap::new(len),
            loaned: Bitmap::new(len),
            loaned_view: LoanedView::new(map.clone(), len),
            reserved: Bitmap::new(len),
            workload: Bitmap::new(len),
            cache: Bitmap::new(len),
            poisoned: None,
            blocks: Blocks::new(len),
            report: ReportBlocks::new(len.div_ceil(report::BLOCK_LEN)),
            counts: FrameCounts::default(),
            alloc_cursor: 0,
            loan_block: None,
            return_block: None,
            return_from: None,
            map,
        };
        // Whole words and whole blocks at a time: this runs before the prompt,
        // over every frame of RAM.
        for r in reserved {
            for range in t.map.index_ranges_of(*r) {
                t.reserved.set_range(range.start, range.end);
            }
        }
        let spans: alloc::vec::Vec<_> = t.map.index_ranges().collect();
        for r in spans {
            t.free.set_range(r.start, r.end);
            t.blocks.add_frames(r);
        }
        t.free.clear_all_of(&t.reserved);
        for b in 0..t.blocks.len() {
            let r = blocks::block_range(b);
            let n = t.free.count_ones_in(r.start, r.end);
            t.blocks
                .set_free_count(b, u16::try_from(n).unwrap_or(u16::MAX));
        }
        t.counts.reserved = t.reserved.count_ones();
        t.counts.free = t.free.count_ones();
        t.counts.total = t.counts.free;
        if t.counts.total == 0 {
            return Err(CmmError::BadRegions("every RAM frame is reserved"));
        }
        Ok(t)
    }

    /// A shared handle on which frames are loaned, kept in step with the table
    /// (for a context that cannot borrow it: see [`LoanedView`]).
    pub fn loaned_view(&self) -> LoanedView {
        self.loaned_view.share()
    }

    /// The counters.
    pub fn counts(&self) -> FrameCounts {
        self.counts
    }

    /// The state of frame `pfn`, or `None` if it is not RAM.
    pub fn state(&self, pfn: u64) -> Option<FrameState> {
        let i = self.map.index_of(pfn)?;
        Some(if self.free.get(i) {
            FrameState::Free
        } else if self.report.is_held(block_of(i)) {
            FrameState::Reporting
        } else if self.loaned.get(i) {
            FrameState::Loaned
        } else if self.reserved.get(i) {
            FrameState::Reserved
        } else if self.workload.get(i) {
            FrameState::Used(Owner::Workload)
        } else if self.cache.get(i) {
            FrameState::Used(Owner::Cache)
        } else {
            FrameState::Used(Owner::Kernel)
        })
    }

    fn index(&self, pfn: u64) -> Result<usize, CmmError> {
        self.map.index_of(pfn).ok_or(CmmError::NotAFrame {
            addr: pfn_to_addr(pfn),
        })
    }

    fn pfn(&self, i: usize) -> Option<u64> {
        self.map.pfn_of(i)
    }

    fn owner_map(&mut self, owner: Owner) -> Option<&mut Bitmap> {
        match owner {
            Owner::Kernel => None,
            Owner::Workload => Some(&mut self.workload),
            Owner::Cache => Some(&mut self.cache),
        }
    }

    fn owner_count(&mut self, owner: Owner) -> Option<&mut u64> {
        match owner {
            Owner::Kernel => None,
            Owner::Workload => Some(&mut self.counts.workload),
            Owner::Cache => Some(&mut self.counts.cache),
        }
    }

    /// Takes a free frame for `owner` (rotating-cursor search), or `None` when no
    /// frame is free. The caller hints it Active.
    pub fn alloc(&mut self, owner: Owner) -> Option<u64> {
        let i = self.free.find_set_from(self.alloc_cursor)?;
        let pfn = self.pfn(i)?;
        self.alloc_cursor = i + 1;
        self.free.clear(i);
        self.blocks.set_free(i, false);
        self.report.taken(block_of(i));
        dec(&mut self.counts.free);
        inc(&mut self.counts.used);
        if let Some(m) = self.owner_map(owner) {
            m.set(i);
        }
        if let Some(c) = self.owner_count(owner) {
            inc(c);
        }
        Some(pfn)
    }

    /// The owner of used frame `pfn`, or an error if it is not a used frame.
    pub fn owner(&self, pfn: u64) -> Result<Owner, CmmError> {
        match self.state(pfn) {
            Some(FrameState::Used(o)) => Ok(o),
            Some(_) => Err(CmmError::WrongState {
                addr: pfn_to_addr(pfn),
                expected: "allocated",
            }),
            None => Err(CmmError::NotAFrame {
                addr: pfn_to_addr(pfn),
            }),
        }
    }

    /// Gives used frame `pfn` back to the free list; returns who held it.
    pub fn release(&mut self, pfn: u64) -> Result<Owner, CmmError> {
        let owner = self.owner(pfn)?;
        let i = self.index(pfn)?;
        if let Some(m) = self.owner_map(owner) {
            m.clear(i);
        }
        if let Some(c) = self.owner_count(owner) {
            dec(c);
        }
        self.free.set(i);
        self.blocks.set_free(i, true);
        self.report.freed();
        dec(&mut self.counts.used);
        inc(&mut self.counts.free);
        Ok(owner)
    }

    /// Gives used frame `pfn` to `owner` (a per-CPU cache's frame handed to a
    /// workload, or back); returns who held it. Not a used frame: an error, and
    /// nothing changes.
    pub fn reassign(&mut self, pfn: u64, owner: Owner) -> Result<Owner, CmmError> {
        let was = self.owner(pfn)?;
        let i = self.index(pfn)?;
        if was == owner {
            return Ok(was);
        }
        if let Some(m) = self.owner_map(was) {
            m.clear(i);
        }
        if let Some(c) = self.owner_count(was) {
            dec(c);
        }
        if let Some(m) = self.owner_map(owner) {
            m.set(i);
        }
        if let Some(c) = self.owner_count(owner) {
            inc(c);
        }
        Ok(was)
    }

    /// True if frame `pfn` was filled with the poison pattern when it was loaned.
    pub fn is_poisoned(&self, pfn: u64) -> bool {
        match (self.map.index_of(pfn), &self.poisoned) {
            (Some(i), Some(p)) => p.get(i),
            _ => false,
        }
    }

    fn set_map(&self, set: FrameSet) -> &Bitmap {
        match set {
            FrameSet::Free => &self.free,
            FrameSet::Loaned => &self.loaned,
            FrameSet::Reserved => &self.reserved,
            FrameSet::Workload => &self.workload,
            FrameSet::Cache => &self.cache,
        }
    }

    /// The first frame of `set` with a frame number above `after` (from the start
    /// with `None`), in index order.
    pub fn next_in(&self, set: FrameSet, after: Option<u64>) -> Option<u64> {
        let start = match after {
            None => 0,
            Some(pfn) => self.map.index_of(pfn)? + 1,
        };
        let i = self.set_map(set).find_set_in(start, self.map.len())?;
        self.pfn(i)
    }

    /// Every frame of `set`, in index order.
    pub fn iter(&self, set: FrameSet) -> impl Iterator<Item = u64> + '_ {
        self.set_map(set)
            .iter_ones()
            .filter_map(move |i| self.pfn(i))
    }

    /// Every RAM frame number, in index order.
    pub fn all_frames(&self) -> impl Iterator<Item = u64> + '_ {
        self.map
            .index_ranges()
            .flatten()
            .filter_map(move |i| self.pfn(i))
    }

    /// Free frames in the 2 MiB block containing `pfn` and the frames that block has.
    pub fn block_free(&self, pfn: u64) -> Option<(u16, u16)> {
        let b = block_of(self.map.index_of(pfn)?);
        Some((
            self.blocks.count(BlockCounter::Free, b),
            self.blocks.frames_in(b),
        ))
    }
}

#[cfg(test)]
mod tests;
