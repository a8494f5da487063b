//! Free page reporting's side of the frame table (docs/free-page-reporting.md):
//! which free memory is told to the host, a whole 2 MiB block at a time.
//!
//! A block is *reportable* when all 512 of its frames are free, physically
//! contiguous, neither reported already nor held by the device. Picking it for a
//! report takes its frames off the free list (it is *held*: no allocation and no
//! loan can take them while the device may still discard them); when the device
//! has used the report the frames go back on the free list and the block is
//! *reported*. A reported block stays reported, and is not reported again, until
//! one of its frames is allocated or loaned (the block is then *reused*, counted);
//! once all its frames are free again it is reportable again.
//!
//! Loaned frames are never free, so never reported; a held frame is never free,
//! so never allocated, loaned or hinted. The flags are one bit per block each.

use super::blocks::{block_range, BlockCounter};
use super::FrameTable;
use crate::bitmap::Bitmap;
use crate::units::{pfn_to_addr, FRAMES_PER_BLOCK, PAGE_SIZE};

/// Bytes of one reported range (a whole block).
pub const REPORT_BLOCK_BYTES: u64 = FRAMES_PER_BLOCK * PAGE_SIZE;

/// One range of a report: a whole free 2 MiB block, physically contiguous.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReportRange {
    /// Its first byte's real address.
    pub addr: u64,
    /// Its length in bytes.
    pub len: u64,
}

/// The report counters of the frame table.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReportCounts {
    /// Blocks reported and not taken since (every frame of them free).
    pub reported_blocks: u64,
    /// Blocks the device holds now (picked for a report not yet used).
    pub held_blocks: u64,
    /// Reported blocks a frame of which was allocated or loaned since, ever.
    pub reused_blocks: u64,
}

/// The per-block report flags.
#[derive(Clone, Debug)]
pub(super) struct ReportBlocks {
    reported: Bitmap,
    held: Bitmap,
    /// Where the next search starts.
    cursor: usize,
    /// A frame became free since the last search that found nothing.
    dirty: bool,
    counts: ReportCounts,
}

impl ReportBlocks {
    /// Flags for `blocks` blocks, nothing reported; the first search looks.
    pub(super) fn new(blocks: usize) -> Self {
        ReportBlocks {
            reported: Bitmap::new(blocks),
            held: Bitmap::new(blocks),
            cursor: 0,
            dirty: true,
            counts: ReportCounts::default(),
        }
    }

    /// A frame of block `b` stopped being free (allocated or loaned): the block
    /// is no longer reported.
    pub(super) fn taken(&mut self, b: usize) {
        if self.reported.clear(b) {
            let c = &mut self.counts;
            c.reported_blocks = c.reported_blocks.saturating_sub(1);
            c.reused_blocks = c.reused_blocks.saturating_add(1);
        }
    }

    /// A frame became free: a later search may find a whole free block.
    pub(super) fn freed(&mut self) {
        self.dirty = true;
    }

    /// True if block `b` is held by the device.
    pub(super) fn is_held(&self, b: usize) -> bool {
        self.held.get(b)
    }

    /// True if block `b` is reported.
    pub(super) fn is_reported(&self, b: usize) -> bool {
        self.reported.get(b)
    }

    /// Every held block.
    pub(super) fn held_blocks(&self) -> impl Iterator<Item = usize> + '_ {
        self.held.iter_ones()
    }

    /// Every reported block.
    pub(super) fn reported_blocks(&self) -> impl Iterator<Item = usize> + '_ {
        self.reported.iter_ones()
    }

    /// The counters.
    pub(super) fn counts(&self) -> ReportCounts {
        self.counts
    }
}

/// Frame indices per block.
pub(super) const BLOCK_LEN: usize = 512;
const _: () = assert!(BLOCK_LEN as u64 == FRAMES_PER_BLOCK);

impl FrameTable {
    /// Whether a search for reportable blocks may find one (a frame was freed
    /// since the last search that found none).
    pub fn report_wanted(&self) -> bool {
        self.report.dirty
    }

    /// The report counters.
    pub fn report_counts(&self) -> ReportCounts {
        self.report.counts()
    }

    /// Picks up to `max` reportable blocks (see the module), takes their frames
    /// off the free list (held by the device from now on) and writes their block
    /// numbers to `blocks` and their ranges to `ranges` (both cleared first).
    /// Returns how many. Finding none clears [`FrameTable::report_wanted`].
    pub fn pick_report(
        &mut self,
        max: usize,
        blocks: &mut alloc::vec::Vec<usize>,
        ranges: &mut alloc::vec::Vec<ReportRange>,
    ) -> usize {
        blocks.clear();
        ranges.clear();
        let n = self.blocks.len();
        let whole = u16::try_from(BLOCK_LEN).unwrap_or(u16::MAX);
        let mut looked = 0;
        while looked < n && blocks.len() < max {
            let b = (self.report.cursor + looked) % n;
            looked += 1;
            if self.blocks.frames_in(b) != whole
                || self.blocks.count(BlockCounter::Free, b) != whole
                || self.report.is_reported(b)
                || self.report.is_held(b)
            {
                continue;
            }
            let Some(addr) = self.block_addr(b) else {
                continue;
            };
            let r = block_range(b);
            self.free.clear_range(r.start, r.end);
            self.blocks.set_free_count(b, 0);
            self.report.held.set(b);
            let c = &mut self.counts;
            c.free = c.free.saturating_sub(FRAMES_PER_BLOCK);
            c.reporting = c.reporting.saturating_add(FRAMES_PER_BLOCK);
            self.report.counts.held_blocks = self.report.counts.held_blocks.saturating_add(1);
            blocks.push(b);
            ranges.push(ReportRange {
                addr,
                len: REPORT_BLOCK_BYTES,
            });
        }
        self.report.cursor = (self.report.cursor + looked) % n.max(1);
        if blocks.is_empty() {
            self.report.dirty = false;
        }
        blocks.len()
    }

    /// Marks every whole free block that is neither held nor reported as
    /// reported (a transport already told the hypervisor of all free memory:
    /// the hint transport after the Unused walk). Returns how many.
    pub fn mark_free_blocks_reported(&mut self) -> u64 {
        let whole = u16::try_from(BLOCK_LEN).unwrap_or(u16::MAX);
        let mut n = 0u64;
        for b in 0..self.blocks.len() {
            if self.blocks.frames_in(b) == whole
                && self.blocks.count(BlockCounter::Free, b) == whole
                && !self.report.is_reported(b)
                && !self.report.is_held(b)
                && self.block_addr(b).is_some()
            {
                self.report.reported.set(b);
                n += 1;
            }
        }
        let rc = &mut self.report.counts;
        rc.reported_blocks = rc.reported_blocks.saturating_add(n);
        n
    }

    /// The device is through with the held `blocks`: their frames go back on the
    /// free list, and they are marked reported if `used` (the device used the
    /// report) or left unreported (it failed). Blocks not held are skipped.
    pub fn report_done(&mut self, blocks: &[usize], used: bool) {
        let whole = u16::try_from(BLOCK_LEN).unwrap_or(u16::MAX);
        for &b in blocks {
            if !self.report.held.clear(b) {
                continue;
            }
            let r = block_range(b);
            self.free.set_range(r.start, r.end);
            self.blocks.set_free_count(b, whole);
            let c = &mut self.counts;
            c.free = c.free.saturating_add(FRAMES_PER_BLOCK);
            c.reporting = c.reporting.saturating_sub(FRAMES_PER_BLOCK);
            let rc = &mut self.report.counts;
            rc.held_blocks = rc.held_blocks.saturating_sub(1);
            if used {
                self.report.reported.set(b);
                rc.reported_blocks = rc.reported_blocks.saturating_add(1);
            } else {
                self.report.dirty = true;
            }
        }
    }

    /// The real address of block `b` if its frames are one physically
    /// contiguous, 2 MiB-aligned run.
    fn block_addr(&self, b: usize) -> Option<u64> {
        let r = block_range(b);
        let (span, first_pfn) = self.map.span_of(r.start)?;
        if span.end < r.end {
            return None;
        }
        let pfn = first_pfn + (r.start - span.start) as u64;
        pfn.is_multiple_of(FRAMES_PER_BLOCK)
            .then(|| pfn_to_addr(pfn))
    }

    /// The block of frame `pfn` and whether it is reported, held (`None` if the
    /// frame is not RAM).
    pub fn report_flags(&self, pfn: u64) -> Option<(bool, bool)> {
        let b = super::blocks::block_of(self.map.index_of(pfn)?);
        Some((self.report.is_reported(b), self.report.is_held(b)))
    }

    /// The report part of [`FrameTable::check`].
    pub(super) fn check_report(&self) -> Result<(), &'static str> {
        let whole = u64::try_from(BLOCK_LEN).unwrap_or(512);
        let mut held = 0u64;
        for b in self.report.held_blocks() {
            let r = block_range(b);
            let busy = [
                &self.free,
                &self.loaned,
                &self.reserved,
                &self.workload,
                &self.cache,
            ];
            if busy.iter().any(|m| m.count_ones_in(r.start, r.end) != 0) {
                return Err("a held block has a frame in another state");
            }
            if self.report.is_reported(b) {
                return Err("a held block is also reported");
            }
            held += 1;
        }
        let mut reported = 0u64;
        for b in self.report.reported_blocks() {
            let r = block_range(b);
            if self.free.count_ones_in(r.start, r.end) != whole {
                return Err("a reported block has a frame that is not free");
            }
            reported += 1;
        }
        let rc = self.report.counts();
        if rc.held_blocks != held
            || rc.reported_blocks != reported
            || self.counts.reporting != held.saturating_mul(whole)
        {
            return Err("a report counter differs from the block flags");
        }
        Ok(())
    }
}
