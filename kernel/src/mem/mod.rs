//! Physical memory: the frames the kernel manages (RAM minus the image, vectors,
//! boot ROM, heap and stacks, and the device tree's reserved ranges).

use alloc::vec::Vec;
use kernel::devtree::MemRange;

extern "C" {
    static __kernel_end: u8;
}

/// The end of the kernel image including BSS (heap and stacks).
pub fn kernel_end() -> u64 {
    core::ptr::addr_of!(__kernel_end) as u64
}

/// Physical memory as the kernel manages it.
pub struct Memory {
    /// Frame-aligned usable ranges.
    pub usable: Vec<MemRange>,
    /// Number of usable frames.
    pub total_frames: u64,
}

impl Memory {
    /// Builds the frame map from RAM and the reserved ranges.
    pub fn new(ram: &[MemRange], reserved: &[MemRange]) -> Self {
        let mut res: Vec<MemRange> = reserved.to_vec();
        // Everything below the end of the image: vectors, boot ROM, kernel, BSS.
        res.push(MemRange {
            base: 0,
            size: kernel_end(),
        });
        let usable = kernel::memmap::usable(ram, &res);
        let total_frames = usable.iter().map(|m| m.size / 4096).sum();
        Memory {
            usable,
            total_frames,
        }
    }
}
