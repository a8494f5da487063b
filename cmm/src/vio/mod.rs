//! VIO entitled-memory accounting: the guest side of PAPR CMO for virtual I/O
//! devices (docs/cmo.md §7), as Linux's `vio.c` does it, with the quirks of
//! §11 fixed.
//!
//! The partition may have at most its I/O entitlement E mapped for DMA at once. The
//! bus splits E into a spare, a minimum per DMA-capable device, each probed device's
//! share up to what it desires (handed out round-robin by a balancing pass), and an
//! excess pool that devices borrow from beyond their share. Every mapping is charged
//! before its TCEs are entered; a mapping that cannot be charged fails and counts in
//! the device's `allocs_failed`.
//!
//! The kernel holds one [`VioBus`]: it builds it from the `/vdevice` nodes and
//! H_GET_MPP, probes the devices, and calls it for `vio map`/`unmap`/`desired`,
//! `mpp entitle`, and the `vio`, `amsstat` and `sysfs` output. Everything here is
//! pure logic over the [`hcall::Hypervisor`] trait and a [`PageSource`].
//!
//! Contract: between operations `reserve + excess == entitled`, `curr == Σ
//! allocated`, `high ≥ curr`, `excess_free ≤ excess_size`, `spare ≤ MIN_ENT`, and
//! every probed DMA device holds between MIN_ENT and its desired
//! ([`Accounting::check_invariants`]). A refused operation changes nothing but, for
//! a refused mapping, `allocs_failed`.

mod accounting;
mod balance;
mod bus;
mod charge;
mod desired;
mod device;
mod entitlement;
mod error;
mod fairshare;
mod ioba;
mod lifecycle;
mod mapping;
mod render;
mod units;

#[cfg(test)]
mod tests;

pub use accounting::{Accounting, BusCmo, DeviceCmo};
pub use bus::VioBus;
pub use device::{
    default_desired, DmaWindow, VioDevice, GENERIC_DESIRED, VETH_DESIRED, VSCSI_DESIRED,
};
pub use error::VioError;
pub use ioba::IobaSpace;
pub use mapping::{Mapping, PageSource};
pub use units::{BALANCE_CHUNK, MIN_ENT, TCE_PAGE_SIZE, TCE_READ_WRITE};
