//! Device drivers for what QEMU's pseries offers beyond the PAPR hcalls: the PCI
//! host bridge through RTAS ([`pci`]) and the virtio balloon on it
//! ([`virtio_balloon`]), which backs the pool model's loans on QEMU. The protocol
//! logic they use is in the library (`kernel::pci`, `kernel::virtio`).

pub mod pci;
pub mod virtio_balloon;
