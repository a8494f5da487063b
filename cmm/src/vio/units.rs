//! Constants of the VIO CMO accounting and the page arithmetic it needs.
//!
//! The numbers are Linux's (`VIO_CMO_MIN_ENT`, `VIO_CMO_BALANCE_CHUNK`) so that the
//! figures this kernel prints compare directly with a Linux partition's. Nothing here
//! keeps state.

/// The smallest entitlement a DMA-capable device is ever left with, and the size the
/// bus keeps as a spare for hot-plug and rebalancing: 1562624 bytes. Like Linux's, it
/// is not a multiple of 4 KiB (it is 381.5 pages).
pub const MIN_ENT: u64 = 1_562_624;

/// Granularity of the balancing pass: entitlement is handed out round-robin in
/// chunks of this many bytes (128 KiB).
pub const BALANCE_CHUNK: u64 = 128 * 1024;

/// Size of one TCE (I/O translation) page in a VIO DMA window: 4 KiB.
pub const TCE_PAGE_SIZE: u64 = hcall::page::PAGE_SIZE;

/// Permission bits of a TCE: bit 0 = the device may read, bit 1 = it may write.
pub const TCE_READ_WRITE: u64 = 0b11;

/// True if `bytes` is a whole number of TCE pages (or an address on a page boundary).
pub fn is_page_aligned(bytes: u64) -> bool {
    bytes & (TCE_PAGE_SIZE - 1) == 0
}

/// `bytes` rounded up to a whole number of TCE pages, or `None` if that overflows.
pub fn page_align_up(bytes: u64) -> Option<u64> {
    if is_page_aligned(bytes) {
        Some(bytes)
    } else {
        page_align_down(bytes).checked_add(TCE_PAGE_SIZE)
    }
}

/// `bytes` rounded down to a whole number of TCE pages.
pub fn page_align_down(bytes: u64) -> u64 {
    bytes & !(TCE_PAGE_SIZE - 1)
}

/// A device's desired entitlement as the bus stores it: at least [`MIN_ENT`], rounded
/// up to a whole number of TCE pages. `None` if the rounding overflows.
pub fn normalise_desired(bytes: u64) -> Option<u64> {
    page_align_up(bytes.max(MIN_ENT))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vio_align_helpers() {
        assert_eq!(page_align_up(0), Some(0));
        assert_eq!(page_align_up(1), Some(4096));
        assert_eq!(page_align_up(4096), Some(4096));
        assert_eq!(page_align_up(u64::MAX), None);
        assert_eq!(page_align_down(8191), 4096);
        assert!(is_page_aligned(0) && is_page_aligned(8192) && !is_page_aligned(4097));
    }

    #[test]
    fn vio_desired_is_floored_and_aligned() {
        // MIN_ENT is 381.5 pages, so the smallest stored desired is 382 pages.
        assert_eq!(normalise_desired(0), Some(382 * 4096));
        assert_eq!(normalise_desired(MIN_ENT), Some(1_564_672));
        assert_eq!(normalise_desired(4 << 20), Some(4 << 20));
        assert_eq!(normalise_desired((4 << 20) + 1), Some((4 << 20) + 4096));
        assert_eq!(normalise_desired(u64::MAX), None);
    }
}
