//! Device drivers, one file each, and the list the kernel probes ([`DRIVERS`]).
//!
//! A driver's file owns its device: where it is (probe, from what boot found in
//! the device tree), its interrupt (attached to the controller's handler table,
//! `irq::attach`) or its poll (its turn in the main loop), and its I/O. The pure
//! parts (register layouts, protocols, decoding) are in the library. Adding a
//! driver is its file plus one line in [`DRIVERS`] (and its `mod` line here): the
//! interrupt controller, the main loop and the `cpu` counters take it from the
//! list.
//!
//! - [`vty`]: the hypervisor's virtual terminal, the console.
//! - [`virtio_pci_legacy`]: the virtio balloon's legacy virtio-pci transport,
//!   which backs the pool model's loans on QEMU, with its free page reporting
//!   queue, and the PCI configuration space through RTAS it is found with
//!   ([`rtas_pci`]).

pub mod rtas_pci;
pub mod virtio_pci_legacy;
pub mod vty;

use kernel::devtree::Platform;
use kernel::xics::Sources;

use crate::sys::System;

/// Every driver, probed in this order.
pub const DRIVERS: &[Driver] = &[vty::DRIVER, virtio_pci_legacy::DRIVER];

/// One driver: what the kernel calls it for.
pub struct Driver {
    /// Its name (log lines, its timer).
    pub name: &'static str,
    /// The label its interrupts are counted under (the `cpu` reply's
    /// `interrupts_external_<label>` row, shown whether or not it attached).
    pub irq_label: Option<&'static str>,
    /// Finds its device in what boot found and attaches its interrupt; a device
    /// another part of the kernel uses is handed over in [`Probe`].
    pub probe: fn(&mut Probe<'_>),
    /// Its turn in the main loop, before the background work: acts on what its
    /// interrupt recorded, or polls and arms its timer. True when it left work
    /// that should go on at once.
    pub service: fn(&mut System) -> bool,
    /// True when its interrupt recorded something [`Driver::service`] must act on
    /// (the main loop does not sleep then).
    pub pending: Option<fn() -> bool>,
}

/// What a probe gets, and where it hands over a device the kernel uses elsewhere.
pub struct Probe<'a> {
    /// Facts from the device tree.
    pub platform: &'a Platform,
    /// Interrupt sources from the device tree.
    pub sources: &'a Sources,
    /// The hypervisor backend takes a balloon device (the pool model).
    pub balloon_wanted: bool,
    /// The balloon device, for the backend.
    pub balloon: Option<virtio_pci_legacy::LegacyBalloon>,
}

/// Probes every driver of [`DRIVERS`] in order.
pub fn probe_all(p: &mut Probe<'_>) {
    for d in DRIVERS {
        (d.probe)(p);
    }
}

/// Every driver's turn in the main loop; true when one left work to go on at once.
pub fn service_all(sys: &mut System) -> bool {
    DRIVERS
        .iter()
        .fold(false, |more, d| (d.service)(sys) | more)
}

/// True when a driver's interrupt recorded something to act on.
pub fn pending() -> bool {
    DRIVERS.iter().any(|d| d.pending.is_some_and(|p| p()))
}

/// The labels of every driver's interrupts, in list order.
pub fn irq_labels() -> impl Iterator<Item = &'static str> {
    DRIVERS.iter().filter_map(|d| d.irq_label)
}
