//! The virtio balloon without the hardware (docs/virtio-balloon.md): the balloon
//! protocol ([`balloon`]), notifies made by another CPU ([`kick`]), what its interrupt means ([`interrupt`]), the statistics it reports ([`stats`]), free page
//! reporting's feature, queue and descriptors ([`reporting`]), the legacy
//! split virtqueue in memory ([`virtqueue`]), the device side over the rings with
//! every used entry checked ([`ring`], [`used`]; a lying fake device for host
//! tests in `fake`),
//! the legacy virtio-pci register block behind a bounded, typed accessor
//! ([`legacy`]), and the order the device is brought up in ([`bringup`]). The glue's `drivers/virtio_pci_legacy.rs` finds the device and
//! puts these together; `kernel::hv::VirtioBacked` uses the balloon for the pool
//! model's loans.

use hcall::endian::ByteOrder;

pub mod balloon;
pub mod bringup;
#[cfg(test)]
#[allow(unsafe_code)] // the fake device reads the rings the driver wrote
pub mod fake;
pub mod interrupt;
pub mod kick;
#[allow(unsafe_code)] // volatile access to the device's register block
pub mod legacy;
pub mod reporting;
pub mod ring;
pub mod stats;
pub mod used;
#[allow(unsafe_code)] // volatile access to rings the device reads and writes
pub mod virtqueue;

pub use balloon::{BalloonState, BalloonStats, BalloonTransport};
pub use virtqueue::{QueueLayout, SplitQueue};

/// Bytes of a page as the balloon counts them (PFNs are in 4 KiB units, the
/// kernel's page).
pub const BALLOON_PAGE: u64 = hcall::page::PAGE_SIZE;

/// The byte order of everything in the legacy virtqueues (descriptors, rings,
/// PFN arrays, statistics entries): the guest's own, fixed when the driver
/// resets the device (docs/virtio-balloon.md). The configuration space is
/// little-endian whatever the guest ([`legacy`]).
pub const GUEST_ORDER: ByteOrder = ByteOrder::NATIVE;

/// Stores `pfns` into the buffer the device reads (`out`, as whole words), in
/// `order`; returns how many fitted.
pub fn store_pfns(order: ByteOrder, pfns: &[u32], out: &mut [u32]) -> usize {
    let n = pfns.len().min(out.len());
    for (d, s) in out.iter_mut().zip(&pfns[..n]) {
        *d = order.stored(*s);
    }
    n
}

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

    #[test]
    fn pfn_arrays_in_both_orders() {
        let pfns = [0x0001_2345u32, 0xABCD_EF01];
        let mut out = [0u32; 3];
        assert_eq!(store_pfns(ByteOrder::Big, &pfns, &mut out), 2);
        let bytes: std::vec::Vec<u8> = out.iter().flat_map(|w| w.to_ne_bytes()).collect();
        assert_eq!(
            &bytes[..8],
            &[0x00, 0x01, 0x23, 0x45, 0xAB, 0xCD, 0xEF, 0x01]
        );
        assert_eq!(store_pfns(ByteOrder::Little, &pfns, &mut out), 2);
        let bytes: std::vec::Vec<u8> = out.iter().flat_map(|w| w.to_ne_bytes()).collect();
        assert_eq!(
            &bytes[..8],
            &[0x45, 0x23, 0x01, 0x00, 0x01, 0xEF, 0xCD, 0xAB]
        );
        assert_eq!(store_pfns(ByteOrder::Big, &[1; 5], &mut out), 3);
    }
}
