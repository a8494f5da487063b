//! The console's test workload: `alloc <size> [cache]`, `free <size>|all [cache]`
//! and `verify`.
//!
//! Workload pages are ordinary allocations (so they run the OOM chain when memory
//! runs out) held in the frame table's workload or cache bitmap, each filled with a
//! pattern derived from its address. `verify` checks every one, and in poison mode
//! every poisoned loaned page too — poison mode is a debugging aid that *reads*
//! loaned pages, which a production kernel must never do (a loaned page may then
//! read as zeros, which counts as intact). Only pages loaned while poison mode was
//! on carry poison; pages loaned before it was switched on are not checked.

use alloc::vec::Vec;

use hcall::Backend;

use crate::balloon::pages::poison_intact;
use crate::error::CmmError;
use crate::frames::{FrameSet, Owner};
use crate::memory::{workload_seed, PageMemory};
use crate::mm::{Mm, PageInit};
use crate::percpu::{cached_free, OnCpu};
use crate::units::pfn_to_addr;

/// Which workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Workload {
    /// Working set (`alloc <size>`).
    Working,
    /// Cache pages (`alloc <size> cache`), counted as `Cached` in meminfo.
    Cache,
}

impl Workload {
    /// The frame owner of this workload's pages.
    pub const fn owner(self) -> Owner {
        match self {
            Workload::Working => Owner::Workload,
            Workload::Cache => Owner::Cache,
        }
    }

    const fn set(self) -> FrameSet {
        match self {
            Workload::Working => FrameSet::Workload,
            Workload::Cache => FrameSet::Cache,
        }
    }
}

/// What `verify` found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// Pages whose contents were as expected.
    pub verified_pages: u64,
    /// Pages whose contents were not.
    pub corrupt_pages: u64,
    /// Of the corrupt pages, loaned ones whose poison changed (poison mode only).
    pub poisoned_corrupt: u64,
}

/// How often a long workload allocation asks whether to stop: every 4096 pages
/// (16 MiB).
pub const STOP_CHECK_PAGES: u64 = 4096;

impl Mm {
    /// Allocates `pages` workload pages, each filled with its pattern; returns the
    /// number allocated (= `pages`). Runs the OOM chain when memory runs out. If the
    /// allocation cannot complete, the pages it took are freed again and it fails.
    pub fn alloc_workload(
        &mut self,
        pages: u64,
        workload: Workload,
        hv: &mut dyn Backend,
        mem: &mut dyn PageMemory,
    ) -> Result<u64, CmmError> {
        self.alloc_workload_until(pages, workload, hv, mem, &mut || false)
    }

    /// [`Mm::alloc_workload`] that asks `stop` every [`STOP_CHECK_PAGES`] pages
    /// whether to give up (the console's Ctrl-C); on a stop the pages taken so
    /// far are freed again and it fails with [`CmmError::Interrupted`].
    pub fn alloc_workload_until(
        &mut self,
        pages: u64,
        workload: Workload,
        hv: &mut dyn Backend,
        mem: &mut dyn PageMemory,
        stop: &mut dyn FnMut() -> bool,
    ) -> Result<u64, CmmError> {
        self.alloc_workload_via(pages, workload, None, hv, mem, stop)
    }

    /// [`Mm::alloc_workload_until`] through CPU `cpu.me`'s frame cache
    /// ([`Mm::alloc_page_cached`]): the kernel's general path. The caches'
    /// free frames count as available.
    pub fn alloc_workload_cached(
        &mut self,
        pages: u64,
        workload: Workload,
        cpu: OnCpu<'_>,
        hv: &mut dyn Backend,
        mem: &mut dyn PageMemory,
        stop: &mut dyn FnMut() -> bool,
    ) -> Result<u64, CmmError> {
        self.alloc_workload_via(pages, workload, Some(cpu), hv, mem, stop)
    }

    fn alloc_workload_via(
        &mut self,
        pages: u64,
        workload: Workload,
        mut cpu: Option<OnCpu<'_>>,
        hv: &mut dyn Backend,
        mem: &mut dyn PageMemory,
        stop: &mut dyn FnMut() -> bool,
    ) -> Result<u64, CmmError> {
        let counts = self.frames().counts();
        let cached = cpu.as_ref().map_or(0, |c| cached_free(c.caches));
        // The OOM chain can at most give back what is loaned.
        let available = counts
            .free
            .saturating_add(counts.loaned)
            .saturating_add(cached);
        let too_much = CmmError::OutOfMemory {
            requested: pages,
            available,
        };
        if pages > available {
            return Err(too_much);
        }
        let mut taken: Vec<u64> = Vec::new();
        let room = usize::try_from(pages).map_err(|_| too_much.clone())?;
        taken
            .try_reserve_exact(room)
            .map_err(|_| too_much.clone())?;
        for i in 0..pages {
            let failed = if i % STOP_CHECK_PAGES == STOP_CHECK_PAGES - 1 && stop() {
                Some(CmmError::Interrupted)
            } else {
                let owner = workload.owner();
                let got = match cpu.as_mut() {
                    Some(c) => {
                        self.alloc_page_cached_with(c.again(), owner, PageInit::Workload, hv, mem)
                    }
                    None => self.alloc_page_with(owner, PageInit::Workload, hv, mem),
                };
                match got {
                    Ok(addr) => {
                        taken.push(addr);
                        None
                    }
                    Err(_) => Some(CmmError::OutOfMemory {
                        requested: pages,
                        available: taken.len() as u64,
                    }),
                }
            };
            if let Some(e) = failed {
                for addr in taken {
                    // These were allocated just above; freeing cannot fail.
                    let _ = match cpu.as_mut() {
                        Some(c) => self.free_page_cached(c.again(), addr, hv),
                        None => self.free_page(addr, hv),
                    };
                }
                return Err(e);
            }
        }
        Ok(pages)
    }

    /// Frees `pages` workload pages (`None`: all of them); returns how many were
    /// freed. Asking for more than are held is an error and frees nothing.
    pub fn free_workload(
        &mut self,
        pages: Option<u64>,
        workload: Workload,
        hv: &mut dyn Backend,
    ) -> Result<u64, CmmError> {
        self.free_workload_via(pages, workload, None, hv)
    }

    /// [`Mm::free_workload`] through CPU `cpu.me`'s frame cache
    /// ([`Mm::free_page_cached`]): the kernel's general path.
    pub fn free_workload_cached(
        &mut self,
        pages: Option<u64>,
        workload: Workload,
        cpu: OnCpu<'_>,
        hv: &mut dyn Backend,
    ) -> Result<u64, CmmError> {
        self.free_workload_via(pages, workload, Some(cpu), hv)
    }

    fn free_workload_via(
        &mut self,
        pages: Option<u64>,
        workload: Workload,
        mut cpu: Option<OnCpu<'_>>,
        hv: &mut dyn Backend,
    ) -> Result<u64, CmmError> {
        let counts = self.frames().counts();
        let held = match workload {
            Workload::Working => counts.workload,
            Workload::Cache => counts.cache,
        };
        let n = pages.unwrap_or(held);
        if n > held {
            return Err(CmmError::NotEnoughWorkload { requested: n, held });
        }
        let mut freed = 0;
        let mut after = None;
        while freed < n {
            let Some(pfn) = self.frames().next_in(workload.set(), after) else {
                break;
            };
            let addr = pfn_to_addr(pfn);
            match cpu.as_mut() {
                Some(c) => self.free_page_cached(c.again(), addr, hv)?,
                None => self.free_page(addr, hv)?,
            };
            after = Some(pfn);
            freed += 1;
        }
        Ok(freed)
    }

    /// Checks every workload page's pattern and, in poison mode, every poisoned
    /// loaned page's poison. A changed poison also counts in `poison_errors`.
    pub fn verify(&mut self, hv: &mut dyn Backend, mem: &dyn PageMemory) -> VerifyReport {
        let poison = self.params().poison();
        let mut report = VerifyReport::default();
        let (frames, stats) = self.frames_and_stats();
        let held = frames
            .iter(FrameSet::Workload)
            .chain(frames.iter(FrameSet::Cache));
        for pfn in held {
            let addr = pfn_to_addr(pfn);
            hv.note_access(addr);
            if mem.check(addr, workload_seed(addr)) {
                report.verified_pages += 1;
            } else {
                report.corrupt_pages += 1;
            }
        }
        if poison {
            // No note_access: these pages are loaned; reading them is the debug aid.
            for pfn in frames.iter(FrameSet::Loaned) {
                if !frames.is_poisoned(pfn) {
                    continue;
                }
                if poison_intact(mem, pfn_to_addr(pfn)) {
                    report.verified_pages += 1;
                } else {
                    report.corrupt_pages += 1;
                    report.poisoned_corrupt += 1;
                    stats.poison_errors = stats.poison_errors.saturating_add(1);
                }
            }
        }
        report
    }
}
