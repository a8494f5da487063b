//! The PAPR hcall shim of lpar-cmm.
//!
//! - [`status`]: hypervisor return codes as a typed enum.
//! - [`page`]: H_PAGE_INIT flags and CMO page states.
//! - [`mpp`]: H_GET_MPP / H_GET_MPP_X results.
//! - [`hypervisor`]: the [`Hypervisor`] trait everything else is generic over.
#![cfg_attr(not(test), no_std)]

extern crate alloc;

pub mod hypervisor;
pub mod mpp;
pub mod page;
pub mod status;

pub use hypervisor::{Hypervisor, SetMppOutcome};
pub use mpp::{MppData, MppXData};
pub use page::PageState;
pub use status::{HStatus, HcallError};
