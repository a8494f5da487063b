//! The one interface to "the hypervisor" that the rest of lpar-cmm is generic over.
//!
//! [`Hypervisor`] holds the PAPR calls only. [`Simulation`] holds what a simulated
//! backend needs from the kernel besides (its time, the pages the kernel touches,
//! its kind); [`Backend`] is both. Two implementations exist: `phyp::Phyp` (real
//! hcalls through a `RawHcall`: `sc 1` on the target, fakes in host tests) and the
//! `powervm-sim` crate's `PoolModel` (a model of the PowerVM shared-memory pool, used
//! on QEMU, which has no CMO hcalls, and in host tests with failure injection). The
//! traits are dyn-compatible, and no method has a default body: a decorator that
//! does not forward a call does not compile.
//!
//! Page states also change in batches ([`Hypervisor::set_page_states`]): PAPR
//! defines no batched H_PAGE_INIT, so `Phyp` makes one call per page ([`set_each`]),
//! in order, and stops at the first refusal; a backend that can batch (the model, a
//! virtio-balloon backing) keeps the same outcome. A batch
//! that stops part-way says how far it got ([`BatchError`]): exactly the pages
//! before `done` changed state, none from `done` on.

use core::fmt;

use crate::mpp::{MppData, MppXData};
use crate::page::PageState;
use crate::status::{HStatus, HcallError};

/// Outcome of a successful H_SET_MPP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetMppOutcome {
    /// H_SUCCESS: both values set as requested.
    Set,
    /// H_CONSTRAINED: values were clamped to the partition's constraints.
    Constrained,
}

/// The partition's CMO fault counters (Linux sums them from every CPU's VPA; the
/// model counts them itself). Printed by lparcfg as `cmo_faults` and
/// `cmo_fault_time_usec`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CmoFaultStats {
    /// Times the hypervisor had to page data back in for this partition.
    pub faults: u64,
    /// Total time the partition was suspended for those faults, in microseconds.
    pub fault_time_usec: u64,
}

/// A batch of page-state changes that stopped part-way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchError {
    /// How many pages at the front of the batch changed state; the page at this
    /// position was refused and it and every page after it are unchanged.
    pub done: usize,
    /// The refusal.
    pub error: HcallError,
}

impl fmt::Display for BatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} after {} pages of a batch", self.error, self.done)
    }
}

/// The hypervisor's PAPR calls, as the balloon, the VIO accounting and the shell
/// see them.
///
/// Every method is one hcall (no retrying inside: the kernel wraps its backend in
/// [`crate::Retrying`], the one retry path). Errors carry the typed status.
pub trait Hypervisor {
    /// H_GET_MPP: the partition's memory performance parameters.
    fn get_mpp(&mut self) -> Result<MppData, HcallError>;

    /// H_GET_MPP_X: extended (coalescing) statistics.
    fn get_mpp_x(&mut self) -> Result<MppXData, HcallError>;

    /// H_SET_MPP: request a new I/O entitlement (bytes) and memory weight (0-255).
    fn set_mpp(&mut self, entitled: u64, weight: u8) -> Result<SetMppOutcome, HcallError>;

    /// H_PAGE_INIT with a page-state change for the 4 KiB page at real address `addr`.
    fn set_page_state(&mut self, addr: u64, state: PageState) -> Result<(), HcallError>;

    /// The same page-state change for every 4 KiB page in `addrs`, in order,
    /// stopping at the first refusal (see [`BatchError`]). A backend that cannot
    /// batch makes one [`Hypervisor::set_page_state`] per page ([`set_each`]); one
    /// that can must keep that outcome.
    fn set_page_states(&mut self, addrs: &[u64], state: PageState) -> Result<(), BatchError>;

    /// H_PAGE_INIT(H_ZERO_PAGE) on the 4 KiB page at `addr`.
    fn zero_page(&mut self, addr: u64) -> Result<(), HcallError>;

    /// H_PUT_TCE: enter `tce` (real page address | permission bits, 0 to clear) at
    /// I/O bus address `ioba` in the DMA window `liobn`.
    fn put_tce(&mut self, liobn: u32, ioba: u64, tce: u64) -> Result<(), HcallError>;

    /// H_GET_TCE: read back the TCE at `ioba` in the DMA window `liobn`.
    fn get_tce(&mut self, liobn: u32, ioba: u64) -> Result<u64, HcallError>;
}

/// Which kind of hypervisor answers the calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackendKind {
    /// Real hcalls (`sc 1`) to PowerVM.
    Phyp,
    /// A model of the pool answers the CMO calls (on QEMU, in host tests).
    Model,
}

impl BackendKind {
    /// The short name the console prints: `phyp` or `model`.
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Phyp => "phyp",
            BackendKind::Model => "model",
        }
    }
}

/// What a backend needs from the kernel beyond the PAPR calls: a simulated
/// hypervisor runs on the kernel's time and sees the kernel's memory touches only
/// when told. A real hypervisor does both by itself, so its implementation does
/// nothing and says so with its [`BackendKind`]. No method has a default, so a
/// decorator cannot forget to forward one.
pub trait Simulation {
    /// Which kind of backend this is.
    fn kind(&self) -> BackendKind;

    /// The kernel is about to touch the 4 KiB page at `addr`. A model counts a CMO
    /// fault when the page is paged out; a real hypervisor notices by itself.
    fn note_access(&mut self, addr: u64);

    /// The CMO fault counters the backend keeps itself, or `None` when they live
    /// in the VPA (a real hypervisor reports them there and the kernel owns it).
    fn cmo_faults(&self) -> Option<CmoFaultStats>;

    /// Lets the backend's time reach `now_us` (microseconds on the kernel's clock).
    /// A real hypervisor runs by itself.
    fn advance(&mut self, now_us: u64);

    /// Waits for the free-page report a device behind the backend holds (at
    /// most the device's timeout): `Some(true)` once the device used it,
    /// `Some(false)` if it failed; `None` when there is no such device or no
    /// report in flight. An allocation that finds no free frame while a report
    /// holds some waits for that report only (docs/free-page-reporting.md).
    fn wait_report(&mut self) -> Option<bool> {
        None
    }
}

/// A whole backend as the balloon holds it: the PAPR calls and the simulation
/// hooks. Implemented for every type that has both.
pub trait Backend: Hypervisor + Simulation {}

impl<T: Hypervisor + Simulation + ?Sized> Backend for T {}

/// One [`Hypervisor::set_page_state`] per page of `addrs`, in order, stopping at
/// the first refusal: the default batch, also for backends that batch only some
/// of the time.
pub fn set_each<H: Hypervisor + ?Sized>(
    hv: &mut H,
    addrs: &[u64],
    state: PageState,
) -> Result<(), BatchError> {
    for (done, &addr) in addrs.iter().enumerate() {
        hv.set_page_state(addr, state)
            .map_err(|error| BatchError { done, error })?;
    }
    Ok(())
}

/// Turns a raw status into `Ok(())` or an [`HcallError`] for `call`.
pub fn check(call: &'static str, status: HStatus) -> Result<(), HcallError> {
    if status.is_success() {
        Ok(())
    } else {
        Err(HcallError { call, status })
    }
}
