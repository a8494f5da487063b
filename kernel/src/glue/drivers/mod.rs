//! Device drivers, one file each, and the list the kernel probes ([`DRIVERS`]).
//!
//! A driver's file owns its device: where it is (probe, from what boot found in
//! the device tree), its interrupt (attached to the controller's handler table,
//! `irq::attach`) or its poll (its turn in the main loop), and its I/O. The pure
//! parts (register layouts, protocols, decoding) are in the library. Adding a
//! driver is its file plus one line in [`DRIVERS`] (and its `mod` line here): the
//! interrupt controller, the main loop and the `cpu` counters take it from the
//! list. What a driver is and what the kernel does with the list is the
//! library's seam (`kernel::driver`, host-tested with a fake driver).
//!
//! - [`vty`]: the hypervisor's virtual terminal, the console.
//! - [`virtio_pci_legacy`]: the virtio balloon's legacy virtio-pci transport,
//!   which backs the pool model's loans on QEMU, with its free page reporting
//!   queue, and the PCI configuration space through RTAS it is found with
//!   ([`rtas_pci`]).
//! - [`echo_vty`]: a second vty that echoes its input.

pub mod echo_vty;
pub mod rtas_pci;
pub mod virtio_pci_legacy;
pub mod vty;

use crate::sys::System;

/// Every driver, probed in this order.
pub const DRIVERS: &[Driver] = &[vty::DRIVER, virtio_pci_legacy::DRIVER, echo_vty::DRIVER];

/// One driver: the library's seam ([`kernel::driver::Driver`]) over the
/// kernel's state and the balloon device a probe may hand over.
pub type Driver = kernel::driver::Driver<System, virtio_pci_legacy::LegacyBalloon>;

/// What a probe gets ([`kernel::driver::Probe`]).
pub type Probe<'a> = kernel::driver::Probe<'a, virtio_pci_legacy::LegacyBalloon>;

/// Probes every driver of [`DRIVERS`] in order.
pub fn probe_all(p: &mut Probe<'_>) {
    kernel::driver::probe_all(DRIVERS, p);
}

/// Every driver's turn in the main loop; true when one left work to go on at once.
pub fn service_all(sys: &mut System) -> bool {
    kernel::driver::service_all(DRIVERS, sys)
}

/// True when a driver's interrupt recorded something to act on.
pub fn pending() -> bool {
    kernel::driver::pending(DRIVERS)
}

/// The labels of every driver's interrupts, in list order.
pub fn irq_labels() -> impl Iterator<Item = &'static str> {
    kernel::driver::irq_labels(DRIVERS)
}
