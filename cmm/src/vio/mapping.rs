//! DMA mappings: memory charged to a device's entitlement, given an I/O bus address
//! range in its DMA window, and entered page by page with H_PUT_TCE.
//!
//! Order of a map: charge → I/O address range → pages from the kernel's
//! [`PageSource`] → H_PUT_TCE per page. Pages are asked for only after the charge
//! succeeded. Any failure undoes the steps before it (TCEs cleared, pages handed
//! back, range freed, accounting restored exactly), counts one `allocs_failed`, and
//! returns the error. If clearing the TCEs fails too, nothing reachable by the
//! device is freed: the mapping is kept under an id for a later `unmap`.
//!
//! No hcall is retried here: the kernel's `Hypervisor` is `hcall::Retrying`, which
//! retries H_BUSY and long-busy under the one retry policy (LoPAR allows long-busy
//! from H_PUT_TCE under CMO while an expropriated page is restored).

use alloc::vec::Vec;

use hcall::{HcallError, Hypervisor};

use super::bus::VioBus;
use super::error::VioError;
use super::units::{is_page_aligned, page_align_up, TCE_PAGE_SIZE, TCE_READ_WRITE};

/// Where DMA pages come from and go back to: the kernel's frame allocator.
pub trait PageSource {
    /// The real address of a free 4 KiB page, or `None` when memory is exhausted.
    fn alloc_page(&mut self) -> Option<u64>;
    /// Takes back a page handed out by [`PageSource::alloc_page`].
    fn free_page(&mut self, addr: u64);
}

/// One live mapping.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mapping {
    /// Its id, unique on the bus, never reused.
    pub id: u64,
    /// The device it is charged to.
    pub unit: u32,
    /// I/O bus address of its first page.
    pub ioba: u64,
    /// Bytes charged (the size asked for, rounded up to whole pages).
    pub size: u64,
    /// Real addresses of its pages, in I/O address order.
    pub pages: Vec<u64>,
}

impl Mapping {
    /// Every TCE of the mapping as entered: (I/O bus address, value), the value
    /// being the page's real address with read and write allowed.
    pub fn tces(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        tce_addresses(self)
            .zip(&self.pages)
            .map(|(ioba, &page)| (ioba, page | TCE_READ_WRITE))
    }
}

/// Why the steps after the charge failed.
enum Failure {
    /// Everything undone except the charge.
    Undone(VioError),
    /// The TCEs could not be cleared: the mapping is kept (charged) under an id.
    Kept(VioError),
}

impl VioBus {
    /// The live mappings, by id.
    pub fn mappings(&self) -> impl Iterator<Item = &Mapping> {
        self.mappings.values()
    }

    /// How many pages [`VioBus::map`] of `size` bytes on `unit` takes from its
    /// page source: 0 when the charge would be refused (or the device is unknown),
    /// so a caller can leave its memory alone for a mapping that cannot succeed.
    pub fn pages_for_map(&self, unit: u32, size: u64) -> u64 {
        let Some(charged) = page_align_up(size) else {
            return 0;
        };
        match self.acct.available(unit) {
            Ok(available) if charged <= available => charged / TCE_PAGE_SIZE,
            _ => 0,
        }
    }

    /// Maps `size` bytes for DMA by `unit`; returns the mapping id.
    pub fn map<H, P>(
        &mut self,
        hv: &mut H,
        pages: &mut P,
        unit: u32,
        size: u64,
    ) -> Result<u64, VioError>
    where
        H: Hypervisor + ?Sized,
        P: PageSource + ?Sized,
    {
        if size == 0 {
            return Err(VioError::ZeroSize);
        }
        let liobn = self
            .device(unit)?
            .dma_window
            .ok_or(VioError::NoDmaWindow(unit))?
            .liobn;
        let charged = page_align_up(size).ok_or(VioError::Overflow)?;
        let before = self.acct.clone();
        match self.acct.charge(unit, charged) {
            Ok(()) => {}
            Err(e @ VioError::EntitlementExceeded { .. }) => {
                self.acct.note_failure(unit)?;
                return Err(e);
            }
            Err(e) => return Err(e),
        }
        match self.map_charged(hv, pages, unit, liobn, charged) {
            Ok(id) => Ok(id),
            Err(Failure::Undone(e)) => {
                self.acct = before;
                self.acct.note_failure(unit)?;
                Err(e)
            }
            Err(Failure::Kept(e)) => {
                self.acct.note_failure(unit)?;
                Err(e)
            }
        }
    }

    fn map_charged<H, P>(
        &mut self,
        hv: &mut H,
        source: &mut P,
        unit: u32,
        liobn: u32,
        charged: u64,
    ) -> Result<u64, Failure>
    where
        H: Hypervisor + ?Sized,
        P: PageSource + ?Sized,
    {
        let count = charged / TCE_PAGE_SIZE;
        let window = self
            .windows
            .get_mut(&unit)
            .ok_or(Failure::Undone(VioError::NoDmaWindow(unit)))?;
        let ioba = window
            .alloc(count)
            .ok_or(Failure::Undone(VioError::WindowFull { unit, pages: count }))?;
        let pages = match take_pages(source, count) {
            Ok(p) => p,
            Err(e) => {
                window.free(ioba);
                return Err(Failure::Undone(e));
            }
        };
        // The id is used up only if the mapping is kept.
        let id = self.next_id;
        let mapping = Mapping {
            id,
            unit,
            ioba,
            size: charged,
            pages,
        };
        if let Err(e) = enter_tces(hv, liobn, &mapping) {
            if clear_tces(hv, liobn, &mapping).is_ok() {
                window.free(ioba);
                for p in mapping.pages {
                    source.free_page(p);
                }
                return Err(Failure::Undone(VioError::Hcall(e)));
            }
            self.keep(mapping);
            return Err(Failure::Kept(VioError::UnwindFailed { id, source: e }));
        }
        self.keep(mapping);
        Ok(id)
    }

    fn keep(&mut self, mapping: Mapping) {
        self.next_id = self.next_id.saturating_add(1);
        self.mappings.insert(mapping.id, mapping);
    }

    /// Unmaps mapping `id` of `unit`: clears its TCEs, releases its range and its
    /// charge, and hands its pages back. If a TCE cannot be cleared the mapping
    /// stays as it is (and can be unmapped again).
    pub fn unmap<H, P>(
        &mut self,
        hv: &mut H,
        pages: &mut P,
        unit: u32,
        id: u64,
    ) -> Result<(), VioError>
    where
        H: Hypervisor + ?Sized,
        P: PageSource + ?Sized,
    {
        let m = self
            .mappings
            .get(&id)
            .filter(|m| m.unit == unit)
            .ok_or(VioError::NoSuchMapping { unit, id })?;
        let liobn = self
            .device(unit)?
            .dma_window
            .ok_or(VioError::NoDmaWindow(unit))?
            .liobn;
        clear_tces(hv, liobn, m)?;
        self.acct.uncharge(unit, m.size)?;
        if let Some(w) = self.windows.get_mut(&unit) {
            w.free(m.ioba);
        }
        if let Some(m) = self.mappings.remove(&id) {
            for p in m.pages {
                pages.free_page(p);
            }
        }
        Ok(())
    }

    /// Unmaps every mapping of `unit`; returns how many. Goes on past a failure and
    /// returns the first error (the failed mappings stay).
    pub fn unmap_all<H, P>(
        &mut self,
        hv: &mut H,
        pages: &mut P,
        unit: u32,
    ) -> Result<usize, VioError>
    where
        H: Hypervisor + ?Sized,
        P: PageSource + ?Sized,
    {
        self.device(unit)?;
        let ids: Vec<u64> = self
            .mappings
            .values()
            .filter(|m| m.unit == unit)
            .map(|m| m.id)
            .collect();
        let mut first_err = None;
        let mut done = 0;
        for id in ids {
            match self.unmap(hv, pages, unit, id) {
                Ok(()) => done += 1,
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        match first_err {
            None => Ok(done),
            Some(e) => Err(e),
        }
    }
}

/// `count` aligned pages from `source`, or every page taken so far handed back.
fn take_pages<P: PageSource + ?Sized>(source: &mut P, count: u64) -> Result<Vec<u64>, VioError> {
    let n = usize::try_from(count).map_err(|_| VioError::Overflow)?;
    let mut pages = Vec::new();
    if pages.try_reserve_exact(n).is_err() {
        return Err(VioError::OutOfPages);
    }
    while pages.len() < n {
        let failure = match source.alloc_page() {
            Some(p) if is_page_aligned(p) => {
                pages.push(p);
                continue;
            }
            Some(p) => {
                source.free_page(p);
                VioError::BadPage(p)
            }
            None => VioError::OutOfPages,
        };
        for p in pages {
            source.free_page(p);
        }
        return Err(failure);
    }
    Ok(pages)
}

/// Enters every page of `m` read+write; stops at the first failure.
fn enter_tces<H: Hypervisor + ?Sized>(
    hv: &mut H,
    liobn: u32,
    m: &Mapping,
) -> Result<(), HcallError> {
    for (ioba, value) in m.tces() {
        hv.put_tce(liobn, ioba, value)?;
    }
    Ok(())
}

/// Clears every TCE of `m` (also those never entered: harmless); tries them all
/// and returns the first failure.
fn clear_tces<H: Hypervisor + ?Sized>(
    hv: &mut H,
    liobn: u32,
    m: &Mapping,
) -> Result<(), HcallError> {
    let mut first = Ok(());
    for ioba in tce_addresses(m).take(m.pages.len()) {
        if let Err(e) = hv.put_tce(liobn, ioba, 0) {
            if first.is_ok() {
                first = Err(e);
            }
        }
    }
    first
}

/// The I/O bus address of each page of `m`.
fn tce_addresses(m: &Mapping) -> impl Iterator<Item = u64> + '_ {
    (0u64..).map(move |i| m.ioba + i * TCE_PAGE_SIZE)
}
