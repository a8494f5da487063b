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

use crate::page::PageState;
use crate::status::{HStatus, HcallError};

/// Outcome of a successful H_SET_MPP.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SetMppOutcome {
    /// H_SUCCESS: both values set as requested.
    #[default]
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

/// The [`Hypervisor`] calls other than the page-state changes, each listed once:
/// its doc, name and arguments (with the value [`crate::fake::call_every_method`]
/// passes), its result, the hcall's name (for errors), and the typed call
/// [`crate::Phyp`] makes (`page` when it takes a page address, under the contract
/// of `Phyp::new`). The trait, `Phyp`, the forwarding of every decorator
/// ([`crate::Retrying`], the kernel's `Backend` and `VirtioBacked`),
/// [`crate::fake::Recorder`] and [`crate::fake::EVERY_METHOD`] are generated from
/// this list, so a decorator cannot forget one: a new call is one entry here,
/// plus its opcode, its typed call and the pool model's answer.
///
/// `hypervisor_calls!(trait)`, `(phyp)`, `(retrying)`, `(recorder)`, `(every)`,
/// `(forward <field or method()>)` each in its place; `(succeed)` answers every
/// call with success and default results, for a test fake that is about the page
/// states.
#[macro_export]
#[doc(hidden)]
macro_rules! hypervisor_calls {
    ($($how:tt)+) => {
        $crate::__hypervisor_project! { ($($how)+)
            /// H_GET_MPP: the partition's memory performance parameters.
            get_mpp() -> $crate::MppData, "H_GET_MPP", safe $crate::calls::get_mpp;
            /// H_GET_MPP_X: extended (coalescing) statistics.
            get_mpp_x() -> $crate::MppXData, "H_GET_MPP_X", safe $crate::calls::get_mpp_x;
            /// H_SET_MPP: request a new I/O entitlement (bytes) and memory weight (0-255).
            set_mpp(entitled: u64 = 16 << 20, weight: u8 = 1) -> $crate::SetMppOutcome,
                "H_SET_MPP", safe $crate::calls::set_mpp;
            /// H_PAGE_INIT(H_ZERO_PAGE) on the 4 KiB page at `addr`.
            zero_page(addr: u64 = 0x10_3000) -> (), "H_PAGE_INIT", page $crate::calls::zero_page;
            /// H_PUT_TCE: enter `tce` (real page address | permission bits, 0 to clear) at
            /// I/O bus address `ioba` in the DMA window `liobn`.
            put_tce(liobn: u32 = 1, ioba: u64 = 0, tce: u64 = 0x10_4003) -> (),
                "H_PUT_TCE", page $crate::calls::put_tce;
            /// H_GET_TCE: read back the TCE at `ioba` in the DMA window `liobn`.
            get_tce(liobn: u32 = 1, ioba: u64 = 0) -> u64, "H_GET_TCE", safe $crate::calls::get_tce;
        }
    };
}

/// The projections of [`hypervisor_calls!`]'s list (see there).
#[macro_export]
#[doc(hidden)]
macro_rules! __hypervisor_project {
    ((trait) $($(#[$doc:meta])* $name:ident($($arg:ident: $ty:ty = $ex:expr),*) -> $ret:ty,
        $hcall:literal, $kind:ident $call:path;)*) => {
        /// The hypervisor's PAPR calls, as the balloon, the VIO accounting and the
        /// shell see them (the list is `hypervisor_calls!`).
        ///
        /// Every method is one hcall (no retrying inside: the kernel wraps its
        /// backend in [`crate::Retrying`], the one retry path). Errors carry the
        /// typed status.
        pub trait Hypervisor {
            $($(#[$doc])* fn $name(&mut self, $($arg: $ty),*) -> Result<$ret, HcallError>;)*

            /// H_PAGE_INIT with a page-state change for the 4 KiB page at real address `addr`.
            fn set_page_state(&mut self, addr: u64, state: PageState) -> Result<(), HcallError>;

            /// The same page-state change for every 4 KiB page in `addrs`, in order,
            /// stopping at the first refusal (see [`BatchError`]). A backend that cannot
            /// batch makes one [`Hypervisor::set_page_state`] per page ([`set_each`]); one
            /// that can must keep that outcome.
            fn set_page_states(&mut self, addrs: &[u64], state: PageState) -> Result<(), BatchError>;
        }
    };
    ((phyp) $($(#[$doc:meta])* $name:ident($($arg:ident: $ty:ty = $ex:expr),*) -> $ret:ty,
        $hcall:literal, $kind:ident $call:path;)*) => {
        $($crate::__hypervisor_project!(@phyp $kind $name($($arg: $ty),*) -> $ret, $call);)*
    };
    (@phyp safe $name:ident($($arg:ident: $ty:ty),*) -> $ret:ty, $call:path) => {
        fn $name(&mut self, $($arg: $ty),*) -> Result<$ret, $crate::HcallError> {
            $call(&mut self.raw, $($arg),*)
        }
    };
    (@phyp page $name:ident($($arg:ident: $ty:ty),*) -> $ret:ty, $call:path) => {
        fn $name(&mut self, $($arg: $ty),*) -> Result<$ret, $crate::HcallError> {
            // SAFETY: the page belongs to this method's caller, the contract of
            // `Phyp::new`.
            unsafe { $call(&mut self.raw, $($arg),*) }
        }
    };
    ((retrying) $($(#[$doc:meta])* $name:ident($($arg:ident: $ty:ty = $ex:expr),*) -> $ret:ty,
        $hcall:literal, $kind:ident $call:path;)*) => {
        $(fn $name(&mut self, $($arg: $ty),*) -> Result<$ret, $crate::HcallError> {
            let h = &mut self.inner;
            self.policy.run(&mut self.clock, || h.$name($($arg),*))
        })*
    };
    ((forward $via:ident()) $($(#[$doc:meta])* $name:ident($($arg:ident: $ty:ty = $ex:expr),*)
        -> $ret:ty, $hcall:literal, $kind:ident $call:path;)*) => {
        $(fn $name(&mut self, $($arg: $ty),*) -> Result<$ret, $crate::HcallError> {
            self.$via().$name($($arg),*)
        })*
    };
    ((forward $via:ident) $($(#[$doc:meta])* $name:ident($($arg:ident: $ty:ty = $ex:expr),*)
        -> $ret:ty, $hcall:literal, $kind:ident $call:path;)*) => {
        $(fn $name(&mut self, $($arg: $ty),*) -> Result<$ret, $crate::HcallError> {
            self.$via.$name($($arg),*)
        })*
    };
    ((recorder) $($(#[$doc:meta])* $name:ident($($arg:ident: $ty:ty = $ex:expr),*) -> $ret:ty,
        $hcall:literal, $kind:ident $call:path;)*) => {
        $(fn $name(&mut self, $(_: $ty),*) -> Result<$ret, $crate::HcallError> {
            self.answer(stringify!($name), $hcall)?;
            Ok(<$ret as Default>::default())
        })*
    };
    ((succeed) $($(#[$doc:meta])* $name:ident($($arg:ident: $ty:ty = $ex:expr),*) -> $ret:ty,
        $hcall:literal, $kind:ident $call:path;)*) => {
        $(fn $name(&mut self, $(_: $ty),*) -> Result<$ret, $crate::HcallError> {
            Ok(<$ret as Default>::default())
        })*
    };
    ((every) $($(#[$doc:meta])* $name:ident($($arg:ident: $ty:ty = $ex:expr),*) -> $ret:ty,
        $hcall:literal, $kind:ident $call:path;)*) => {
        /// Every method of [`Hypervisor`] and [`Simulation`], in the order
        /// [`call_every_method`] calls them.
        pub const EVERY_METHOD: &[&str] = &[
            $(stringify!($name),)*
            "set_page_state",
            "set_page_states",
            "kind",
            "note_access",
            "cmo_faults",
            "advance",
            "wait_report",
        ];

        /// Calls each method of `hv` once, in the order of [`EVERY_METHOD`], ignoring the
        /// results.
        pub fn call_every_method(hv: &mut dyn Backend) {
            $(let _ = hv.$name($($ex),*);)*
            let _ = hv.set_page_state(0x10_0000, PageState::Loaned);
            let _ = hv.set_page_states(&[0x10_1000, 0x10_2000], PageState::Loaned);
            let _ = hv.kind();
            hv.note_access(0x10_5000);
            let _ = hv.cmo_faults();
            hv.advance(1_000);
            let _ = hv.wait_report();
        }
    };
}

hypervisor_calls!(trait);

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
    fn wait_report(&mut self) -> Option<bool>;
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
