//! Physical memory: the frame table over all RAM the tree reports minus the kernel
//! image, vectors, boot ROM, heap, stacks and the tree's reserved ranges; and
//! [`PhysMemory`], the only code that reads and writes page contents.

use alloc::vec::Vec;
use cmm::memory::{pattern_word, WORDS_PER_PAGE};
use cmm::{FrameTable, PageMemory, Region};
use kernel::devtree::MemRange;

extern "C" {
    static __kernel_end: u8;
}

/// The end of the kernel image including BSS (heap and stacks).
pub fn kernel_end() -> u64 {
    core::ptr::addr_of!(__kernel_end) as u64
}

/// Builds the frame table: RAM minus everything below the end of the image and
/// minus the reserved ranges.
pub fn frame_table(ram: &[MemRange], reserved: &[MemRange]) -> Result<FrameTable, cmm::CmmError> {
    let ram: Vec<Region> = ram
        .iter()
        .map(|m| Region::inside_bytes(m.base, m.size))
        .collect();
    let mut res: Vec<Region> = reserved
        .iter()
        .map(|m| Region::covering_bytes(m.base, m.size))
        .collect();
    res.push(Region::covering_bytes(0, kernel_end()));
    FrameTable::new(&ram, &res)
}

/// Page contents in real mode, where every RAM address is directly accessible.
pub struct PhysMemory;

/// The 512 words of the frame at `addr`.
///
/// # Safety
/// `addr` must be a 4 KiB-aligned RAM frame that the frame table handed out (never
/// the kernel image or heap), and no other reference to it may be live.
unsafe fn words<'a>(addr: u64) -> &'a mut [u64] {
    // SAFETY: forwarded from the caller: 4 KiB of RAM, aligned, unaliased.
    unsafe { core::slice::from_raw_parts_mut(addr as usize as *mut u64, WORDS_PER_PAGE as usize) }
}

impl PageMemory for PhysMemory {
    fn fill(&mut self, addr: u64, seed: u64) {
        // SAFETY: the balloon and the workload pass only frames they own.
        let w = unsafe { words(addr) };
        for (i, x) in w.iter_mut().enumerate() {
            *x = pattern_word(seed, i as u64);
        }
    }

    fn check(&self, addr: u64, seed: u64) -> bool {
        // SAFETY: as in `fill`; only read.
        let w = unsafe { words(addr) };
        w.iter()
            .enumerate()
            .all(|(i, &x)| x == pattern_word(seed, i as u64))
    }

    fn is_zero(&self, addr: u64) -> bool {
        // SAFETY: as in `fill`; only read.
        let w = unsafe { words(addr) };
        w.iter().all(|&x| x == 0)
    }

    /// Writes zeros only where the page is not already zero: reading is cheap,
    /// and a page that was never written (or that the hypervisor dropped while it
    /// was loaned) stays untouched instead of being faulted in just to be cleared.
    fn zero(&mut self, addr: u64) {
        if !self.is_zero(addr) {
            // SAFETY: as in `fill`.
            unsafe { words(addr) }.fill(0);
        }
    }
}
