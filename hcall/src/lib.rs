//! The PAPR hcall shim of lpar-cmm.
//!
//! - [`status`]: hypervisor return codes as a typed enum.
//! - [`page`]: H_PAGE_INIT flags and CMO page states.
//! - [`mpp`]: H_GET_MPP / H_GET_MPP_X results; [`mpp_check`]: figures that
//!   contradict each other.
//! - [`hypervisor`]: the [`Hypervisor`] trait (the PAPR calls) everything else is
//!   generic over, and [`Simulation`] (what a simulated backend needs besides).
//! - [`opcodes`]: hcall numbers.
//! - [`raw`]: [`RawHcall`], one raw call; `raw::sc1` (target only) holds the `sc 1`.
//! - [`calls`], [`term`], [`rtas`]: typed calls (register packing, pure and tested).
//! - [`mmu`]: the hashed page table hcalls (H_ENTER, H_READ, H_REMOVE).
//! - [`phyp`]: [`Phyp`], the [`Hypervisor`] of a real PowerVM partition.
//! - [`retry`]: the one retry policy for busy returns; [`retrying`]: the
//!   [`Hypervisor`] decorator that makes every hcall under it.
//! - [`endian`]: byte order at the boundaries ([`endian::ByteOrder`], [`endian::FIRMWARE`]).
//! - [`sysparm`]: RTAS system parameters 44 (CMO) and 20 (`DesMem`).
//! - [`lparcfg`]: the CMO lines of Linux's lparcfg.
//! - [`xics`]: the XICS interrupt hcalls (H_CPPR, H_XIRR, H_EOI) and H_VIO_SIGNAL.
//! - [`vpa`]: the Virtual Processor Area (H_REGISTER_VPA) and H_CEDE.
//! - `fake` (feature `fake`): `fake::Recorder`, a recording backend for tests, and
//!   `fake::Scripted`, a raw call that answers from a queue.
//!
//! The model of the PowerVM pool that answers these calls on QEMU is the
//! `powervm-sim` crate.
#![cfg_attr(not(test), no_std)]
// `unsafe` only where a call's contract is stated, in the modules allowed below:
// the raw call (`raw`, with `sc 1`), the typed calls that take a real address or
// change how the partition runs (`calls`, `mmu`, `rtas`, `vpa`), `Phyp`, whose
// builder answers for the addresses its safe methods pass on, and the fake raw
// call.
#![deny(unsafe_code)]

extern crate alloc;

/// The README's examples, compiled and run as doctests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

#[allow(unsafe_code)] // H_PAGE_INIT, H_PUT_TCE, H_SET_MODE: unsafe fns with contracts
pub mod calls;
pub mod endian;
#[cfg(any(test, feature = "fake"))]
#[allow(unsafe_code)] // a raw call that records and touches no memory
pub mod fake;
pub mod hypervisor;
pub mod lparcfg;
#[allow(unsafe_code)] // H_ENTER, H_REMOVE, H_REGISTER_PROC_TBL change translations
pub mod mmu;
pub mod mpp;
pub mod mpp_check;
pub mod opcodes;
pub mod page;
#[allow(unsafe_code)] // `Phyp::new` answers for the page addresses of its safe methods
pub mod phyp;
#[allow(unsafe_code)] // the raw call is unsafe; `call_values` makes the value-only ones
pub mod raw;
pub mod retry;
pub mod retrying;
#[allow(unsafe_code)] // KVMPPC_H_RTAS: the buffer's real address
pub mod rtas;
pub mod status;
pub mod sysparm;
pub mod term;
#[allow(unsafe_code)] // H_REGISTER_VPA: the area's real address
pub mod vpa;
pub mod xics;

pub use hypervisor::{
    Backend, BackendKind, BatchError, CmoFaultStats, Hypervisor, SetMppOutcome, Simulation,
};
pub use lparcfg::Lparcfg;
pub use mpp::{MppData, MppXData};
pub use mpp_check::MppContradiction;
pub use page::PageState;
pub use phyp::Phyp;
pub use raw::RawHcall;
pub use retry::{Clock, RetryPolicy};
pub use retrying::Retrying;
pub use status::{HStatus, HcallError};
pub use sysparm::CmoCharacteristics;
