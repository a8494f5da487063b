//! The memory manager: the frame table, the page-usage hints, the balloon and the
//! OOM notifier chain, with the one set of counters ([`CmmStats`]).
//!
//! Hints (docs/cmo.md §4.4): a frame taken from the free list is marked
//! Active, a frame put back is marked Unused. Hints are best effort — a failed
//! hint is counted and never fails the allocation or the free. `alloc_page` also
//! tells the hypervisor model that the page is about to be touched
//! (`note_access`). When no frame is free, the OOM chain runs once before the
//! allocation fails.
//!
//! Initialization on allocation (as Linux's `init_on_alloc`): a free frame's
//! contents are whatever its last owner, the poison pattern or the hypervisor left
//! (a returned page is neither read nor zeroed on its way back), so every
//! allocation zeroes the page, or fills it with the workload's pattern, before
//! handing it out. No per-frame mark is needed: "free" already means "to be
//! initialized" (docs/balloon-fast-path.md).
//!
//! Time is passed in (`now_ms`); hypervisor and memory access are passed to each
//! call, so the kernel can keep them wherever it likes.

use alloc::vec;
use alloc::vec::Vec;

use hcall::{Backend, PageState};

use crate::balloon::pages::Ctx;
use crate::balloon::{Balloon, StepReport};
use crate::error::CmmError;
use crate::frames::{FrameTable, Owner};
use crate::hints::UnusedWalk;
use crate::memory::{workload_seed, PageMemory};
use crate::oom::{OomNotifier, OomReport};
use crate::params::{Param, Params};
use crate::reporting::Reporting;
use crate::stats::{CmmStats, Shortfall};
use crate::units::{addr_to_pfn, pfn_to_addr};

/// How an allocation initializes its page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PageInit {
    /// All zeros.
    Zero,
    /// The workload pattern of its address ([`crate::memory::workload_seed`]).
    Workload,
}

/// The memory manager.
#[derive(Clone, Debug)]
pub struct Mm {
    frames: FrameTable,
    stats: CmmStats,
    balloon: Balloon,
    oom_chain: Vec<OomNotifier>,
    pub(crate) unused_walk: UnusedWalk,
    pub(crate) reporting: Reporting,
}

impl Mm {
    /// A memory manager over `frames` (all non-reserved frames free, none loaned)
    /// with the balloon registered as the OOM notifier. Its free frames are still
    /// Active: [`Mm::hint_unused_step`] hints them Unused in the background.
    pub fn new(frames: FrameTable, params: Params) -> Self {
        Mm {
            frames,
            stats: CmmStats::default(),
            balloon: Balloon::new(params),
            oom_chain: vec![OomNotifier::Balloon],
            unused_walk: UnusedWalk::start(),
            reporting: Reporting::default(),
        }
    }

    /// The frame table.
    pub fn frames(&self) -> &FrameTable {
        &self.frames
    }

    /// The counters.
    pub fn stats(&self) -> &CmmStats {
        &self.stats
    }

    /// The balloon (parameters, last shortfall).
    pub fn balloon(&self) -> &Balloon {
        &self.balloon
    }

    /// The balloon's parameters.
    pub fn params(&self) -> &Params {
        self.balloon.params()
    }

    /// The OOM notifier chain, in call order.
    pub fn oom_chain(&self) -> &[OomNotifier] {
        &self.oom_chain
    }

    fn ctx<'a>(
        frames: &'a mut FrameTable,
        stats: &'a mut CmmStats,
        hv: &'a mut dyn Backend,
        mem: &'a mut dyn PageMemory,
    ) -> Ctx<'a> {
        Ctx {
            frames,
            stats,
            hv,
            mem,
        }
    }

    /// The balloon's periodic work: call it from the main loop as often as you
    /// like; it does a round only when `delay` has elapsed since the last one.
    pub fn step(
        &mut self,
        now_ms: u64,
        hv: &mut dyn Backend,
        mem: &mut dyn PageMemory,
    ) -> StepReport {
        let mut ctx = Self::ctx(&mut self.frames, &mut self.stats, hv, mem);
        self.balloon.step(now_ms, &mut ctx)
    }

    /// Makes the balloon's next `step` a round, whatever the delay (a new loan
    /// request is known: react now).
    pub fn poll_now(&mut self) {
        self.balloon.poll_now();
    }

    /// When the balloon's next round is due, on the clock `step` is given
    /// (`None`: at the next call of `step`).
    pub fn next_poll_ms(&self) -> Option<u64> {
        self.balloon.next_poll_ms()
    }

    /// `cmm set <param> <value>`: validates (nothing changes on error), applies, and
    /// returns the excess at once if the change lowered the ceiling (`disable 1`,
    /// `policy off`, a larger `min_mem_mb`). Returns which parameter changed and, if
    /// returning the excess stopped short, why.
    pub fn set_param(
        &mut self,
        name: &str,
        value: &str,
        hv: &mut dyn Backend,
        mem: &mut dyn PageMemory,
    ) -> Result<(Param, Option<Shortfall>), CmmError> {
        let param = self.balloon.set(name, value)?;
        let mut ctx = Self::ctx(&mut self.frames, &mut self.stats, hv, mem);
        let (_, why) = self.balloon.enforce_ceiling(&mut ctx);
        Ok((param, why))
    }

    /// `cmm reset-oom`: clears the OOM credit (`oom_freed_kb` back to 0).
    pub fn reset_oom(&mut self) {
        self.stats.oom_freed_pages = 0;
    }

    /// `cmm wait`'s condition: everything the target asks is loaned and the last
    /// round computed the same target as the one before.
    pub fn is_converged(&self) -> bool {
        self.stats.loaned_pages == self.stats.loaned_target_pages && self.balloon.target_stable()
    }

    /// `cmm wait`'s rule: converged ([`Mm::is_converged`]) after at least two
    /// rounds since `polls_at_start` (the round under way when the wait began
    /// may have read the target from before it, so one full round must follow).
    pub fn converged_since(&self, polls_at_start: u64) -> bool {
        self.stats.polls >= polls_at_start.saturating_add(2) && self.is_converged()
    }

    /// Runs the OOM notifier chain in order; returns how much it freed.
    pub fn out_of_memory(&mut self, hv: &mut dyn Backend, mem: &mut dyn PageMemory) -> OomReport {
        let chain = core::mem::take(&mut self.oom_chain);
        let mut report = OomReport::default();
        for n in &chain {
            let freed = match n {
                OomNotifier::Balloon => {
                    let mut ctx = Self::ctx(&mut self.frames, &mut self.stats, hv, mem);
                    self.balloon.on_oom(&mut ctx)
                }
            };
            report.freed_pages = report.freed_pages.saturating_add(freed);
        }
        self.oom_chain = chain;
        report
    }

    /// Takes a free frame for `owner` and returns its address, zeroed. Hints it
    /// Active (failure counted, ignored) and notes the access. With no free frame
    /// the OOM chain runs once; if it frees nothing, `OutOfMemory`.
    pub fn alloc_page(
        &mut self,
        owner: Owner,
        hv: &mut dyn Backend,
        mem: &mut dyn PageMemory,
    ) -> Result<u64, CmmError> {
        self.alloc_page_with(owner, PageInit::Zero, hv, mem)
    }

    /// [`Mm::alloc_page`], initializing the page as `init` says.
    pub(crate) fn alloc_page_with(
        &mut self,
        owner: Owner,
        init: PageInit,
        hv: &mut dyn Backend,
        mem: &mut dyn PageMemory,
    ) -> Result<u64, CmmError> {
        let pfn = match self
            .frames
            .alloc(owner)
            .or_else(|| self.alloc_after_report(owner, hv))
        {
            Some(pfn) => pfn,
            None => {
                let freed = self.out_of_memory(hv, mem).freed_pages;
                let retry = if freed > 0 {
                    self.frames.alloc(owner)
                } else {
                    None
                };
                match retry {
                    Some(pfn) => pfn,
                    None => {
                        self.stats.alloc_failures = self.stats.alloc_failures.saturating_add(1);
                        return Err(CmmError::OutOfMemory {
                            requested: 1,
                            available: 0,
                        });
                    }
                }
            }
        };
        let addr = pfn_to_addr(pfn);
        if hv.set_page_state(addr, PageState::Active).is_err() {
            self.count_hint_failure();
        }
        self.hand_out(addr, init, hv, mem);
        Ok(addr)
    }

    /// The end of every allocation, once the frame is Active and its owner's:
    /// notes the access, initializes the page, and lets the balloon refill the
    /// free list (policy conservative).
    pub(crate) fn hand_out(
        &mut self,
        addr: u64,
        init: PageInit,
        hv: &mut dyn Backend,
        mem: &mut dyn PageMemory,
    ) {
        hv.note_access(addr);
        match init {
            PageInit::Zero => mem.zero(addr),
            PageInit::Workload => mem.fill(addr, workload_seed(addr)),
        }
        let mut ctx = Self::ctx(&mut self.frames, &mut self.stats, hv, mem);
        self.balloon.refill_free_list(&mut ctx);
    }

    /// Puts the used frame at `addr` back on the free list, hinting it Unused
    /// (failure counted, ignored). Returns who held it. A frame that is not
    /// allocated (free, loaned, reserved, not RAM) is an error and nothing changes.
    pub fn free_page(&mut self, addr: u64, hv: &mut dyn Backend) -> Result<Owner, CmmError> {
        let pfn = addr_to_pfn(addr)?;
        self.frames.owner(pfn)?;
        if hv.set_page_state(addr, PageState::Unused).is_err() {
            self.count_hint_failure();
        }
        self.frames.release(pfn)
    }

    /// No frame was free: if a free-page report holds some, waits for that
    /// report only (the device's own bound), takes its blocks back and tries
    /// once more. `None` if no report was in flight or nothing came free.
    fn alloc_after_report(&mut self, owner: Owner, hv: &mut dyn Backend) -> Option<u64> {
        if !self.take_back_report(hv) {
            return None;
        }
        self.frames.alloc(owner)
    }

    /// If a free-page report holds frames, waits for that report only (the
    /// device's own bound) and takes its blocks back to the free list. False
    /// if no report was in flight or the wait gave nothing.
    pub(crate) fn take_back_report(&mut self, hv: &mut dyn Backend) -> bool {
        if !self.report_in_flight() {
            return false;
        }
        let Some(used) = hv.wait_report() else {
            return false;
        };
        self.finish_report(used);
        true
    }

    pub(crate) fn frames_mut(&mut self) -> &mut FrameTable {
        &mut self.frames
    }

    pub(crate) fn count_alloc_failure(&mut self) {
        self.stats.alloc_failures = self.stats.alloc_failures.saturating_add(1);
    }

    pub(crate) fn count_hint_failure(&mut self) {
        let s = &mut self.stats;
        s.page_state_failures = s.page_state_failures.saturating_add(1);
        s.hint_failures = s.hint_failures.saturating_add(1);
    }

    /// Returns every loaned page (before restart or power-off, so no page is left
    /// Loaned). Returns how many are still loaned because their Active call failed.
    pub fn return_all(&mut self, hv: &mut dyn Backend, mem: &mut dyn PageMemory) -> u64 {
        let mut ctx = Self::ctx(&mut self.frames, &mut self.stats, hv, mem);
        self.balloon.return_all(&mut ctx)
    }

    pub(crate) fn frames_and_stats(&mut self) -> (&mut FrameTable, &mut CmmStats) {
        (&mut self.frames, &mut self.stats)
    }

    pub(crate) fn frames_and_reporting(&mut self) -> (&mut FrameTable, &mut Reporting) {
        (&mut self.frames, &mut self.reporting)
    }
}
