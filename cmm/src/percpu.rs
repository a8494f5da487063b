//! Per-CPU caches of free frames (docs/smp.md): what lets several CPUs allocate
//! without queueing on the one lock around the memory manager.
//!
//! A [`FrameCache`] belongs to one CPU. Taking a frame from it and putting one
//! back ([`FrameCache::take`], [`FrameCache::put`]) touch only the cache, so
//! they need only the cache's own lock, which nobody else holds for long. The
//! cache is refilled from and drained to the frame table in batches
//! ([`Mm::refill_cache`], [`Mm::drain_cache`]) under the memory manager's lock.
//!
//! To the frame table a frame in a cache is used (owner [`Owner::Kernel`]): the
//! balloon never picks it, so a cached frame is never loaned, and the table's
//! books (`total = free + used + loaned`) stay exact at every step. What the
//! caches hold unallocated is still free memory to a user: [`Mm::meminfo_with`]
//! counts it as free, and the balloon reaches it: when a round falls short for
//! want of free frames, [`Mm::step_with_caches`] drains every cache and runs the
//! round again, and a refill that finds the table empty takes the other caches'
//! frames before it runs the OOM notifier chain. So `loaned_target`, the floor and
//! the OOM notifier behave as on one CPU.

use alloc::vec::Vec;

use hcall::{Backend, PageState};

use crate::balloon::StepReport;
use crate::error::CmmError;
use crate::frames::Owner;
use crate::memory::PageMemory;
use crate::mm::Mm;
use crate::render::MemInfo;
use crate::stats::Shortfall;
use crate::units::{addr_to_pfn, pages_to_kb, pfn_to_addr};

/// Frames moved per refill or drain.
pub const CACHE_BATCH: usize = 32;
/// A cache holding more free frames than this gives a batch back.
pub const CACHE_HIGH: usize = 2 * CACHE_BATCH;

/// One CPU's cache: the free frames it holds and how many it handed out.
#[derive(Clone, Debug, Default)]
pub struct FrameCache {
    free: Vec<u64>,
    held: u64,
    /// Refills that brought at least one frame.
    pub refills: u64,
    /// Drains that gave at least one frame back.
    pub drains: u64,
}

impl FrameCache {
    /// An empty cache.
    pub fn new() -> Self {
        FrameCache::default()
    }

    /// Takes a frame (its address) from the cache; `None` when it is empty. The
    /// caller initializes the page before using it.
    pub fn take(&mut self) -> Option<u64> {
        let addr = self.free.pop()?;
        self.held = self.held.saturating_add(1);
        Some(addr)
    }

    /// Puts back a frame this cache handed out. Refused (nothing changes) when
    /// the cache handed out none, or the frame is already in it.
    pub fn put(&mut self, addr: u64) -> Result<(), CmmError> {
        if self.held == 0 || self.free.contains(&addr) {
            return Err(CmmError::WrongState {
                addr,
                expected: "handed out by this cache",
            });
        }
        self.held -= 1;
        self.free.push(addr);
        Ok(())
    }

    /// Free frames in the cache.
    pub fn free_len(&self) -> usize {
        self.free.len()
    }

    /// Frames handed out and not yet put back.
    pub fn held(&self) -> u64 {
        self.held
    }

    /// The free frames' addresses.
    pub fn free_frames(&self) -> &[u64] {
        &self.free
    }

    /// True when the cache holds more than [`CACHE_HIGH`] free frames.
    pub fn over_high(&self) -> bool {
        self.free.len() > CACHE_HIGH
    }
}

impl Mm {
    /// Moves up to `n` free frames from the table into `cache`, each hinted
    /// Active (failure counted, ignored). When the table has no free frame, it
    /// first takes the free frames of `others` (the other CPUs' caches) back to
    /// the table, then runs the OOM notifier chain once, as one allocation on one
    /// CPU would. Returns how many frames the cache got; 0 counts an allocation
    /// failure.
    pub fn refill_cache(
        &mut self,
        cache: &mut FrameCache,
        n: usize,
        others: &mut [&mut FrameCache],
        hv: &mut dyn Backend,
        mem: &mut dyn PageMemory,
    ) -> usize {
        if self.frames().counts().free == 0 {
            for o in others.iter_mut() {
                let len = o.free_len();
                self.drain_cache(o, len, hv);
            }
        }
        if self.frames().counts().free == 0 {
            self.out_of_memory(hv, mem);
        }
        let mut got = 0;
        if cache.free.try_reserve(n).is_err() {
            return 0;
        }
        while got < n {
            let Some(pfn) = self.frames_mut().alloc(Owner::Kernel) else {
                break;
            };
            let addr = pfn_to_addr(pfn);
            if hv.set_page_state(addr, PageState::Active).is_err() {
                self.count_hint_failure();
            }
            cache.free.push(addr);
            got += 1;
        }
        if got == 0 {
            self.count_alloc_failure();
        } else {
            cache.refills = cache.refills.saturating_add(1);
        }
        got
    }

    /// Gives up to `n` of `cache`'s free frames back to the table, each hinted
    /// Unused (failure counted, ignored). Returns how many went back.
    pub fn drain_cache(&mut self, cache: &mut FrameCache, n: usize, hv: &mut dyn Backend) -> usize {
        let mut done = 0;
        while done < n {
            let Some(addr) = cache.free.pop() else {
                break;
            };
            let released = addr_to_pfn(addr)
                .and_then(|pfn| self.frames_mut().release(pfn))
                .is_ok();
            if !released {
                // Not a frame this table handed out: keep it where it was.
                cache.free.push(addr);
                break;
            }
            if hv.set_page_state(addr, PageState::Unused).is_err() {
                self.count_hint_failure();
            }
            done += 1;
        }
        if done > 0 {
            cache.drains = cache.drains.saturating_add(1);
        }
        done
    }

    /// The balloon's periodic work with per-CPU caches: [`Mm::step`]; if the round
    /// fell short for want of free frames while `caches` hold some, they are
    /// drained to the table and the round runs again at once, so the loan target
    /// is reached as on one CPU.
    pub fn step_with_caches(
        &mut self,
        now_ms: u64,
        caches: &mut [&mut FrameCache],
        hv: &mut dyn Backend,
        mem: &mut dyn PageMemory,
    ) -> StepReport {
        let r = self.step(now_ms, hv, mem);
        let cached: usize = caches.iter().map(|c| c.free_len()).sum();
        if r.shortfall != Some(Shortfall::NoFreeFrame) || cached == 0 {
            return r;
        }
        for c in caches.iter_mut() {
            let len = c.free_len();
            self.drain_cache(c, len, hv);
        }
        self.poll_now();
        let again = self.step(now_ms, hv, mem);
        StepReport {
            pages_loaned: r.pages_loaned.saturating_add(again.pages_loaned),
            pages_returned: r.pages_returned.saturating_add(again.pages_returned),
            ..again
        }
    }

    /// `meminfo` with `cached_free` frames sitting free in per-CPU caches: they
    /// are free memory (the table counts them used).
    pub fn meminfo_with(&self, cached_free: u64) -> MemInfo {
        let mut m = self.meminfo();
        m.mem_free_kb = m.mem_free_kb.saturating_add(pages_to_kb(cached_free));
        m
    }
}
