//! Device drivers for what QEMU's pseries offers beyond the PAPR hcalls: PCI
//! configuration space through RTAS ([`rtas_pci`]) and the virtio balloon's
//! legacy virtio-pci transport on it ([`virtio_pci_legacy`]), which backs the
//! pool model's loans on QEMU, with its free-page reporting queue. The logic
//! they use is in the library (`kernel::pci`, `kernel::virtio_balloon`).

pub mod rtas_pci;
pub mod virtio_pci_legacy;
