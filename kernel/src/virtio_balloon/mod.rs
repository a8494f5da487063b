//! The virtio balloon without the hardware (docs/virtio-balloon.md): the balloon
//! protocol ([`balloon`]), the statistics it reports ([`stats`]), free page
//! reporting's feature, queue and descriptors ([`reporting`]), the legacy
//! split virtqueue in memory ([`virtqueue`]),
//! and the legacy virtio-pci register block behind a bounded, typed accessor
//! ([`legacy`]). The glue's `drivers/virtio_pci_legacy.rs` finds the device and
//! puts these together; `kernel::hv::VirtioBacked` uses the balloon for the pool
//! model's loans.

pub mod balloon;
pub mod legacy;
pub mod reporting;
pub mod stats;
pub mod virtqueue;

pub use balloon::{BalloonState, BalloonStats, BalloonTransport};
pub use virtqueue::{QueueLayout, SplitQueue};

/// Bytes of a page as the balloon counts them (PFNs are in 4 KiB units).
pub const BALLOON_PAGE: u64 = 4096;

/// PFNs per inflate buffer (as Linux uses).
pub const PFNS_PER_BUFFER: usize = 256;

/// PCI vendor of virtio devices.
pub const VENDOR_VIRTIO: u16 = 0x1af4;
/// The transitional (legacy-capable) balloon.
pub const DEVICE_BALLOON_TRANSITIONAL: u16 = 0x1002;
/// The modern-only balloon (`disable-legacy=on`).
pub const DEVICE_BALLOON_MODERN: u16 = 0x1045;

/// The balloon's two queues.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Queue {
    /// Queue 0: pages given to the host.
    Inflate = 0,
    /// Queue 1: pages taken back.
    Deflate = 1,
}

/// Why a page cannot be handed to the device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PfnError {
    /// The address is above what a 32-bit PFN reaches (16 TiB).
    TooHigh(u64),
}

/// The 32-bit PFN of the page at `addr`.
pub fn pfn_of(addr: u64) -> Result<u32, PfnError> {
    u32::try_from(addr / BALLOON_PAGE).map_err(|_| PfnError::TooHigh(addr))
}

/// The loan target in bytes that the host asks for with `num_pages`, capped at
/// `mem_bytes`.
pub fn host_target_bytes(num_pages: u32, mem_bytes: u64) -> u64 {
    (u64::from(num_pages) * BALLOON_PAGE).min(mem_bytes & !(BALLOON_PAGE - 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pfns_and_host_targets() {
        assert_eq!(pfn_of(0x1000_0000), Ok(0x1_0000));
        assert_eq!(pfn_of(1 << 44), Err(PfnError::TooHigh(1 << 44)));
        assert_eq!(host_target_bytes(65536, 512 << 20), 256 << 20);
        assert_eq!(host_target_bytes(u32::MAX, 512 << 20), 512 << 20);
    }
}
