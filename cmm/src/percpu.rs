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
use crate::mm::{Mm, PageInit};
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

/// The free frames sitting in `caches`.
pub fn cached_free(caches: &[FrameCache]) -> u64 {
    caches.iter().map(|c| c.free_len() as u64).sum()
}

/// One allocation's view of the per-CPU caches: every CPU's cache by CPU index,
/// and which CPU allocates (the owner of the memory manager lends them all, as
/// it lends the manager: `&mut`).
pub struct OnCpu<'a> {
    /// Every CPU's cache, by CPU index.
    pub caches: &'a mut [FrameCache],
    /// The allocating CPU.
    pub me: usize,
}

impl<'a> OnCpu<'a> {
    /// The allocating CPU's cache and the others'.
    fn split(self) -> Result<(&'a mut FrameCache, Vec<&'a mut FrameCache>), CmmError> {
        let no_cache = CmmError::InvalidValue {
            param: "cpu",
            reason: "no frame cache for this CPU",
        };
        let me = self.me.min(self.caches.len());
        let (a, b) = self.caches.split_at_mut(me);
        let (mine, rest) = b.split_first_mut().ok_or(no_cache)?;
        let others = if mine.free_len() == 0 {
            a.iter_mut().chain(rest.iter_mut()).collect()
        } else {
            Vec::new()
        };
        Ok((mine, others))
    }

    /// The same caches again, for the next allocation.
    pub fn again(&mut self) -> OnCpu<'_> {
        OnCpu {
            caches: self.caches,
            me: self.me,
        }
    }
}

impl Mm {
    /// Moves up to `n` free frames from the table into `cache`, each hinted
    /// Active (failure counted, ignored). When the table has no free frame, it
    /// first takes the free frames of `others` (the other CPUs' caches) back to
    /// the table, then waits for a free-page report in flight to give its
    /// frames back, then runs the OOM notifier chain once, as one allocation on
    /// one CPU would. Returns how many frames the cache got; 0 counts an allocation
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
            // Frames held by a free-page report in flight come back first.
            self.take_back_report(hv);
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

    /// Gives every free frame of `caches` back to the table; returns how many.
    pub fn drain_caches<'c>(
        &mut self,
        caches: impl IntoIterator<Item = &'c mut FrameCache>,
        hv: &mut dyn Backend,
    ) -> u64 {
        let mut back = 0u64;
        for c in caches {
            let len = c.free_len();
            back = back.saturating_add(self.drain_cache(c, len, hv) as u64);
        }
        back
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
        let mut reach = |mm: &mut Mm, hv: &mut dyn Backend| {
            mm.drain_caches(caches.iter_mut().map(|c| &mut **c), hv)
        };
        self.step_reaching_caches(now_ms, &mut reach, hv, mem)
    }

    /// [`Mm::step_with_caches`] for a kernel that takes the caches only when it
    /// must: `reach` is called only when the round fell short for want of free
    /// frames; it drains every cache into the table ([`Mm::drain_cache`], the
    /// caches' locks taken then) and returns how many frames came back. When
    /// some did, the round runs again at once. So the CPUs allocating from
    /// their caches are not held up by a round that did not need them.
    pub fn step_reaching_caches(
        &mut self,
        now_ms: u64,
        reach: &mut dyn FnMut(&mut Mm, &mut dyn Backend) -> u64,
        hv: &mut dyn Backend,
        mem: &mut dyn PageMemory,
    ) -> StepReport {
        let r = self.step(now_ms, hv, mem);
        if r.shortfall != Some(Shortfall::NoFreeFrame) || reach(self, hv) == 0 {
            return r;
        }
        self.poll_now();
        let again = self.step(now_ms, hv, mem);
        StepReport {
            pages_loaned: r.pages_loaned.saturating_add(again.pages_loaned),
            pages_returned: r.pages_returned.saturating_add(again.pages_returned),
            ..again
        }
    }

    /// Takes a page for `owner` through CPU `cpu.me`'s cache, zeroed: the
    /// kernel's general allocation ([`Mm::alloc_page`] with per-CPU caches). An
    /// empty cache is refilled from the table with a batch first (the other
    /// caches' free frames come back first when the table has none, then the
    /// OOM notifier chain runs, as [`Mm::refill_cache`] says); the frame is then
    /// given to `owner` in the table, its access noted and the page zeroed.
    /// `OutOfMemory` when nothing could be had; `NotAFrame` for a CPU with no
    /// cache.
    pub fn alloc_page_cached(
        &mut self,
        cpu: OnCpu<'_>,
        owner: Owner,
        hv: &mut dyn Backend,
        mem: &mut dyn PageMemory,
    ) -> Result<u64, CmmError> {
        self.alloc_page_cached_with(cpu, owner, PageInit::Zero, hv, mem)
    }

    /// [`Mm::alloc_page_cached`], initializing the page as `init` says.
    pub(crate) fn alloc_page_cached_with(
        &mut self,
        cpu: OnCpu<'_>,
        owner: Owner,
        init: PageInit,
        hv: &mut dyn Backend,
        mem: &mut dyn PageMemory,
    ) -> Result<u64, CmmError> {
        let (mine, mut others) = cpu.split()?;
        if mine.free_len() == 0 {
            self.refill_cache(mine, CACHE_BATCH, &mut others, hv, mem);
        }
        let oom = CmmError::OutOfMemory {
            requested: 1,
            available: 0,
        };
        let addr = mine.take().ok_or(oom)?;
        let given = addr_to_pfn(addr).and_then(|pfn| self.frames_mut().reassign(pfn, owner));
        if let Err(e) = given {
            // Not a frame of this table (it cannot be): back where it was.
            mine.held = mine.held.saturating_sub(1);
            mine.free.push(addr);
            return Err(e);
        }
        self.hand_out(addr, init, hv, mem);
        Ok(addr)
    }

    /// Puts the used page at `addr` back through CPU `cpu.me`'s cache: the kernel's
    /// general free ([`Mm::free_page`] with per-CPU caches). The frame goes to the
    /// kernel in the table and into the cache, still Active (it is hinted Unused
    /// when a drain gives it back to the table); a cache over its high mark gives
    /// a batch back. Returns who held it. A frame that is not allocated (free,
    /// loaned, reserved, not RAM, or already in a cache) is an error and nothing
    /// changes. The frame may have been taken on another CPU.
    pub fn free_page_cached(
        &mut self,
        cpu: OnCpu<'_>,
        addr: u64,
        hv: &mut dyn Backend,
    ) -> Result<Owner, CmmError> {
        let pfn = addr_to_pfn(addr)?;
        self.frames().owner(pfn)?;
        if cpu.caches.iter().any(|c| c.free.contains(&addr)) {
            return Err(CmmError::WrongState {
                addr,
                expected: "allocated (it is in a CPU's cache)",
            });
        }
        let (mine, _) = cpu.split()?;
        if mine.free.try_reserve(1).is_err() {
            // No room in the cache: straight back to the table.
            return self.free_page(addr, hv);
        }
        let owner = self.frames_mut().reassign(pfn, Owner::Kernel)?;
        mine.held = mine.held.saturating_sub(1);
        mine.free.push(addr);
        if mine.over_high() {
            self.drain_cache(mine, CACHE_BATCH, hv);
        }
        Ok(owner)
    }

    /// `meminfo` with `cached_free` frames sitting free in per-CPU caches: they
    /// are free memory (the table counts them used).
    pub fn meminfo_with(&self, cached_free: u64) -> MemInfo {
        let mut m = self.meminfo();
        m.mem_free_kb = m.mem_free_kb.saturating_add(pages_to_kb(cached_free));
        m
    }
}
