//! Page-size units and the conversions between bytes, KiB, MiB and 4 KiB pages.
//!
//! Every conversion saturates or returns an error instead of wrapping: a size that
//! does not fit is always "too large", never a small number.

use crate::error::CmmError;

/// The page size the balloon and the frame table work in, and its log2: the CMO
/// page H_PAGE_INIT works on, the workspace's one page size.
pub use hcall::page::{PAGE_SHIFT, PAGE_SIZE};
/// KiB in one page.
pub const KB_PER_PAGE: u64 = PAGE_SIZE / 1024;
/// Pages in one MiB.
pub const PAGES_PER_MB: u64 = (1 << 20) / PAGE_SIZE;
/// Frames in one 2 MiB block, the unit the balloon prefers to loan whole.
pub const FRAMES_PER_BLOCK: u64 = (2 << 20) / PAGE_SIZE;
/// The highest page frame number whose address still fits in 64 bits.
pub const MAX_PFN: u64 = u64::MAX >> PAGE_SHIFT;

/// Pages → KiB (saturating).
pub const fn pages_to_kb(pages: u64) -> u64 {
    pages.saturating_mul(KB_PER_PAGE)
}

/// KiB → whole pages, truncating (Linux's right shift).
pub const fn kb_to_pages(kb: u64) -> u64 {
    kb / KB_PER_PAGE
}

/// MiB → pages (saturating).
pub const fn mb_to_pages(mb: u64) -> u64 {
    mb.saturating_mul(PAGES_PER_MB)
}

/// A page frame number → the real address of its first byte. Frame numbers above
/// [`MAX_PFN`] never exist in a [`crate::FrameTable`]; they map to `u64::MAX` rounded
/// down to a page rather than wrapping.
pub const fn pfn_to_addr(pfn: u64) -> u64 {
    if pfn > MAX_PFN {
        MAX_PFN << PAGE_SHIFT
    } else {
        pfn << PAGE_SHIFT
    }
}

/// A page-aligned real address → its frame number.
pub fn addr_to_pfn(addr: u64) -> Result<u64, CmmError> {
    if !addr.is_multiple_of(PAGE_SIZE) {
        return Err(CmmError::Unaligned { addr });
    }
    Ok(addr >> PAGE_SHIFT)
}

/// A size in bytes that must be a whole number of pages → the page count.
pub fn bytes_to_pages(bytes: u64) -> Result<u64, CmmError> {
    if !bytes.is_multiple_of(PAGE_SIZE) {
        return Err(CmmError::NotPageMultiple { bytes });
    }
    Ok(bytes / PAGE_SIZE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions() {
        assert_eq!(pages_to_kb(3), 12);
        assert_eq!(kb_to_pages(1024), 256);
        assert_eq!(kb_to_pages(7), 1);
        assert_eq!(mb_to_pages(256), 65536);
        assert_eq!(mb_to_pages(u64::MAX), u64::MAX);
        assert_eq!(FRAMES_PER_BLOCK, 512);
        assert_eq!(pfn_to_addr(2), 8192);
        assert_eq!(pfn_to_addr(u64::MAX), MAX_PFN << PAGE_SHIFT);
        assert_eq!(addr_to_pfn(8192), Ok(2));
        assert!(addr_to_pfn(8193).is_err());
        assert_eq!(bytes_to_pages(8192), Ok(2));
        assert!(bytes_to_pages(100).is_err());
    }
}
