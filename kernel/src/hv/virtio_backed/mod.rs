//! The virtio-balloon backing of the pool model, as a decorator around the
//! [`Hypervisor`] trait: [`VirtioBacked`] wraps the model (any [`ModelledPool`])
//! and a balloon device (any [`BalloonTransport`]) and answers every call as the
//! model does, but a page the model accepts as loaned is handed to the device
//! (inflate, batched 256 PFNs per buffer) and a page leaving the loaned state is
//! taken back (deflate) before the call returns, so the kernel never reuses a page
//! the host still holds. In host mode (`hv host`) the host's `num_pages` becomes
//! the model's loan target, as the PowerVM hypervisor sets it on a real LPAR.
//!
//! The device is outside the kernel's trust boundary. A device that fails once
//! (a timeout, or a protocol violation the ring transport caught) is no longer
//! used, with one log line; the model's books stay right and the model alone
//! decides the loans from then on (only the host keeps what it was given).
//! Figures it reports that cannot be right (`num_pages` beyond RAM, or different
//! on two reads in a row) are counted as lies and not applied as read; it gets
//! statistics at most once per [`STATS_MIN_INTERVAL_US`] however often it asks.

use alloc::string::String;
use core::fmt::{Display, Write};
use hcall::{
    BackendKind, BatchError, CmoFaultStats, HcallError, Hypervisor, PageState, RawHcall, Simulation,
};
use powervm_sim::{ModelError, PoolModel};

use crate::virtio_balloon::stats::MemoryStats;
use crate::virtio_balloon::{
    host_target_bytes, pfn_of, BalloonState, BalloonTransport, PFNS_PER_BUFFER,
};

#[cfg(test)]
#[allow(unsafe_code)] // a raw-call fake that touches no memory
mod lies;
#[cfg(test)]
#[allow(unsafe_code)] // a raw-call fake that touches no memory
mod report_lies;
#[cfg(test)]
mod tests;

/// The least time between two statistics reports, however often the device asks
/// (QEMU's own polling interval is whole seconds).
pub const STATS_MIN_INTERVAL_US: u64 = 500_000;

/// What the decorator needs from the hypervisor model it wraps, beyond the
/// [`Hypervisor`] calls.
pub trait ModelledPool: Hypervisor + Simulation {
    /// Why the model refused a target.
    type Error: Display;
    /// The model holds the 4 KiB page at `addr` as loaned.
    fn is_loaned(&self, addr: u64) -> bool;
    /// This partition's logical memory in bytes (caps a host target).
    fn logical_bytes(&self) -> u64;
    /// Sets the loan target (`Some(bytes)`), or gives it back to the pool (`None`).
    fn set_loan_target(&mut self, bytes: Option<u64>) -> Result<(), Self::Error>;
}

impl<R: RawHcall> ModelledPool for PoolModel<R> {
    type Error = ModelError;
    fn is_loaned(&self, addr: u64) -> bool {
        matches!(self.page(addr), Some((PageState::Loaned, _)))
    }
    fn logical_bytes(&self) -> u64 {
        self.self_view().logical
    }
    fn set_loan_target(&mut self, bytes: Option<u64>) -> Result<(), ModelError> {
        self.set_target(bytes)
    }
}

/// Where the model's loan target comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TargetSource {
    /// The host's `num_pages` (`hv host`).
    Host,
    /// The model itself, or `hv target` / `hv auto`.
    Model,
}

/// The model `H`, backed by the balloon device `D`.
pub struct VirtioBacked<H, D> {
    inner: H,
    dev: D,
    state: BalloonState,
    source: TargetSource,
    /// The last `num_pages` applied in host mode.
    host_pages: Option<u32>,
    /// The device failed once: it is no longer used.
    broken: bool,
    /// Figures from the device that cannot be right (see the module doc).
    lies: u64,
    /// The last `num_pages` counted as beyond RAM (each value counts once).
    beyond_ram: Option<u32>,
    /// The time of the last background step ([`Hypervisor::advance`]).
    now_us: u64,
    /// When statistics were last reported.
    last_stats_us: Option<u64>,
}

impl<H: ModelledPool, D: BalloonTransport> VirtioBacked<H, D> {
    /// `inner` backed by `dev`, taking the target from the host.
    pub fn new(inner: H, dev: D) -> Self {
        VirtioBacked {
            inner,
            dev,
            state: BalloonState::new(),
            source: TargetSource::Host,
            host_pages: None,
            broken: false,
            lies: 0,
            beyond_ram: None,
            now_us: 0,
            last_stats_us: None,
        }
    }

    /// The model.
    pub fn inner(&self) -> &H {
        &self.inner
    }

    /// The model, to change it (its target source stays as it is).
    pub fn inner_mut(&mut self) -> &mut H {
        &mut self.inner
    }

    /// The device.
    pub fn device(&self) -> &D {
        &self.dev
    }

    /// The device, to use it beside the balloon (free page reporting).
    pub fn device_mut(&mut self) -> &mut D {
        &mut self.dev
    }

    /// Where the target comes from.
    pub fn source(&self) -> TargetSource {
        self.source
    }

    /// Takes the target from the host again (`hv host`); the next
    /// [`VirtioBacked::sync`] applies the current `num_pages`.
    pub fn follow_host(&mut self) {
        self.source = TargetSource::Host;
        self.host_pages = None;
    }

    /// The model's own target from now on (`hv target`, `hv auto`).
    pub fn follow_model(&mut self) {
        self.source = TargetSource::Model;
    }

    /// The device failed and is no longer used.
    pub fn is_broken(&self) -> bool {
        self.broken
    }

    /// The balloon protocol's state (`actual`, pending PFNs, counters).
    pub fn balloon(&self) -> &BalloonState {
        &self.state
    }

    /// Figures from the device that could not be right, so far.
    pub fn lies(&self) -> u64 {
        self.lies
    }

    fn check<E: Display>(&mut self, r: Result<(), E>) {
        if let Err(e) = r {
            if !self.broken {
                log::error!(
                    "virtio-balloon: {e}; the device is no longer used, the model keeps the books alone"
                );
            }
            self.broken = true;
        }
    }

    /// Follows a page-state change the model accepted.
    fn page_changed(&mut self, addr: u64, was_loaned: bool, state: PageState) {
        if self.broken {
            return;
        }
        let Ok(pfn) = pfn_of(addr) else {
            return;
        };
        let r = match (was_loaned, state) {
            (false, PageState::Loaned) => self.state.inflate(&mut self.dev, pfn),
            (true, PageState::Active | PageState::Unused) => self.state.deflate(&mut self.dev, pfn),
            _ => Ok(()),
        };
        self.check(r);
    }

    /// Follows a batch of page-state changes the model accepted: loans queue for
    /// the inflate buffer (sent at 256), returns of loaned pages go back to the
    /// device as deflate buffers of up to 256 before this returns.
    fn batch_changed(&mut self, addrs: &[u64], was_loaned: &[bool], state: PageState) {
        if self.broken {
            return;
        }
        let pfns = addrs
            .iter()
            .zip(was_loaned)
            .filter_map(|(&a, &w)| Some((pfn_of(a).ok()?, w)));
        // The pages that change sides: loans of pages not loaned, returns of
        // loaned ones (at most one buffer's worth: the caller's chunks).
        let moving = matches!(state, PageState::Loaned);
        let mut buf = [0u32; PFNS_PER_BUFFER];
        let mut n = 0;
        for (pfn, was) in pfns {
            if was != moving && n < PFNS_PER_BUFFER {
                buf[n] = pfn;
                n += 1;
            }
        }
        let r = if moving {
            self.state.inflate_batch(&mut self.dev, &buf[..n])
        } else {
            self.state.deflate_batch(&mut self.dev, &buf[..n])
        };
        self.check(r);
    }

    /// Sends the pending inflate buffer, waits until the device used every
    /// buffer in flight and writes `actual` if it changed (once per background
    /// pass: see [`BalloonState::publish_actual`]).
    fn flush(&mut self) {
        if !self.broken {
            let r = self.state.flush(&mut self.dev);
            self.check(r);
        }
        self.settle();
        if !self.broken {
            self.state.publish_actual(&mut self.dev);
        }
    }

    /// Waits until the device used every buffer in flight: before a page can
    /// leave the free list (an allocation's Active hint, an access, a
    /// report), since the pages of a deflate buffer in flight are free in
    /// the frame table but still the device's.
    fn settle(&mut self) {
        if !self.broken {
            let r = self.state.settle(&mut self.dev);
            self.check(r);
        }
    }

    /// Background work: sends pending inflates, asks the device whether it broke
    /// the protocol between buffers, and in host mode applies a changed
    /// `num_pages` as the model's target (read twice: a value that does not
    /// hold still is a lie and not applied; one beyond RAM is capped and
    /// counted).
    pub fn sync(&mut self) {
        self.flush();
        if !self.broken {
            let r = self.dev.check();
            if r.is_err() {
                self.state.count_error();
            }
            self.check(r);
        }
        if self.source != TargetSource::Host || self.broken {
            return;
        }
        let pages = self.dev.num_pages();
        if self.dev.num_pages() != pages {
            self.lies += 1;
            return;
        }
        if self.host_pages == Some(pages) {
            return;
        }
        self.host_pages = Some(pages);
        let logical = self.inner.logical_bytes();
        if u64::from(pages) * crate::virtio_balloon::BALLOON_PAGE > logical
            && self.beyond_ram != Some(pages)
        {
            self.beyond_ram = Some(pages);
            self.lies += 1;
            log::warn!(
                "virtio-balloon: the host asks for {pages} pages, more than this partition's memory"
            );
        }
        let target = host_target_bytes(pages, logical);
        match self.inner.set_loan_target(Some(target)) {
            Ok(()) => log::info!(
                "virtio-balloon: the host asks for {pages} pages: loan target {} KiB",
                target / 1024
            ),
            Err(e) => log::warn!("virtio-balloon: host target {target}: {e}"),
        }
    }

    /// Background work: when the host wants fresh statistics (the device
    /// returned the buffer), reports `figures()`; at most once per
    /// [`STATS_MIN_INTERVAL_US`].
    pub fn report_stats(&mut self, figures: impl FnOnce() -> MemoryStats) {
        if self.broken {
            return;
        }
        if let Some(last) = self.last_stats_us {
            if self.now_us.saturating_sub(last) < STATS_MIN_INTERVAL_US {
                return;
            }
        }
        if self.state.report_stats(&mut self.dev, figures) {
            self.last_stats_us = Some(self.now_us);
        }
        let r = self.dev.check();
        if r.is_err() {
            self.state.count_error();
        }
        self.check(r);
    }

    /// The `hv` rows about the backing: `backing`, `mode_source` and the
    /// device's counters.
    pub fn render(&self, out: &mut String) {
        let st = self.state.stats();
        let source = match self.source {
            TargetSource::Host => "host",
            TargetSource::Model => "model",
        };
        let _ = writeln!(out, "backing: virtio-balloon");
        let _ = writeln!(out, "mode_source: {source}");
        let _ = writeln!(out, "device_broken: {}", u8::from(self.broken));
        let _ = writeln!(out, "device_num_pages: {}", self.dev.num_pages());
        let _ = writeln!(out, "device_actual: {}", self.state.inflated());
        let _ = writeln!(out, "device_pending: {}", self.state.pending());
        let _ = writeln!(out, "device_inflate_buffers: {}", st.inflate_buffers);
        let _ = writeln!(out, "device_deflate_buffers: {}", st.deflate_buffers);
        let _ = writeln!(out, "device_pages_inflated: {}", st.pages_inflated_total);
        let _ = writeln!(out, "device_pages_deflated: {}", st.pages_deflated_total);
        let _ = writeln!(out, "device_pending_withdrawn: {}", st.pending_withdrawn);
        let _ = writeln!(out, "device_errors: {}", st.errors);
        let _ = writeln!(out, "device_lies: {}", self.lies);
        let _ = writeln!(out, "device_busy_ns: {}", self.dev.busy_ns());
        let (by_helper, assists) = self.dev.helper_notifies();
        let _ = writeln!(out, "device_helper_notifies: {by_helper}");
        let _ = writeln!(out, "device_own_notifies: {assists}");
        let _ = writeln!(out, "device_stats_reports: {}", st.stats_reports);
    }
}

/// The `hv` rows when nothing backs the model.
pub fn render_unbacked(out: &mut String) {
    let _ = writeln!(out, "backing: none");
    let _ = writeln!(out, "mode_source: model");
}

impl<H: ModelledPool, D: BalloonTransport> Hypervisor for VirtioBacked<H, D> {
    hcall::hypervisor_calls!(forward inner);

    /// One page (an allocation's Active hint, a single loan or return):
    /// nothing is in flight before it or after it returns.
    fn set_page_state(&mut self, addr: u64, state: PageState) -> Result<(), HcallError> {
        self.settle();
        let was_loaned = self.inner.is_loaned(addr);
        self.inner.set_page_state(addr, state)?;
        self.page_changed(addr, was_loaned, state);
        self.settle();
        Ok(())
    }
    /// The batch goes to the model in chunks of 256 (one device buffer each); the
    /// pages of a chunk the model accepted follow it to the device before the
    /// next chunk. Where the transport keeps buffers in flight (another CPU
    /// notifies), they may still be in flight when this returns: loaned pages
    /// are the device's anyway, and returned pages are free but cannot leave
    /// the free list before [`VirtioBacked::settle`] (every Active hint of a
    /// page that was not loaned, every access and report waits for them).
    fn set_page_states(&mut self, addrs: &[u64], state: PageState) -> Result<(), BatchError> {
        let mut offset = 0usize;
        for chunk in addrs.chunks(PFNS_PER_BUFFER) {
            let mut was = [false; PFNS_PER_BUFFER];
            for (w, &a) in was.iter_mut().zip(chunk) {
                *w = self.inner.is_loaned(a);
            }
            if state == PageState::Active && !was[..chunk.len()].iter().all(|&w| w) {
                // Pages being handed out: none may be in a buffer in flight.
                self.settle();
            }
            let r = self.inner.set_page_states(chunk, state);
            let done = match &r {
                Ok(()) => chunk.len(),
                Err(e) => e.done.min(chunk.len()),
            };
            self.batch_changed(&chunk[..done], &was[..done], state);
            if let Err(e) = r {
                return Err(BatchError {
                    done: offset + done,
                    error: e.error,
                });
            }
            offset += chunk.len();
        }
        Ok(())
    }
}

impl<H: ModelledPool, D: BalloonTransport> Simulation for VirtioBacked<H, D> {
    fn kind(&self) -> BackendKind {
        self.inner.kind()
    }
    /// The page is about to be touched: no buffer may be in flight.
    fn note_access(&mut self, addr: u64) {
        self.settle();
        self.inner.note_access(addr)
    }
    fn cmo_faults(&self) -> Option<CmoFaultStats> {
        self.inner.cmo_faults()
    }
    /// Flushes what the device still owes before the model's time moves.
    fn advance(&mut self, now_us: u64) {
        self.now_us = self.now_us.max(now_us);
        self.flush();
        self.inner.advance(now_us)
    }
    /// The device's report in flight, while the device is used; else whatever
    /// the backend underneath holds.
    fn wait_report(&mut self) -> Option<bool> {
        self.settle();
        let own = if self.broken {
            None
        } else {
            self.dev.wait_report()
        };
        own.or_else(|| self.inner.wait_report())
    }
}
