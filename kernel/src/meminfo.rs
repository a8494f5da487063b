//! The `meminfo` reply: the balloon's `/proc/meminfo` rows (loaned memory leaves
//! `MemTotal`, as on Linux) followed by the kernel heap's two rows, in the same
//! layout. The glue reads the heap's counters and prints the text.

use core::fmt::{self, Write};

use cmm::render::{write_meminfo as write_cmm_meminfo, write_meminfo_row};
use cmm::MemInfo;

/// The kernel heap's bytes, as the allocator counts them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HeapUsage {
    /// Bytes handed out.
    pub used: usize,
    /// Bytes still free.
    pub free: usize,
}

/// Writes the `meminfo` rows: `MemTotal` .. `SwapFree`, then `KernelHeap` (the
/// heap's size) and `KernelHeapFree`, all in kB.
pub fn write_meminfo(w: &mut dyn Write, m: &MemInfo, heap: HeapUsage) -> fmt::Result {
    write_cmm_meminfo(w, m)?;
    let kb = |bytes: usize| u64::try_from(bytes / 1024).unwrap_or(u64::MAX);
    write_meminfo_row(w, "KernelHeap", kb(heap.used.saturating_add(heap.free)))?;
    write_meminfo_row(w, "KernelHeapFree", kb(heap.free))
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::String;

    #[test]
    fn meminfo_rows_then_the_heap_in_the_same_layout() {
        let m = MemInfo {
            mem_total_kb: 15_728,
            mem_free_kb: 15_688,
            cached_kb: 40,
            swap_total_kb: 0,
            swap_free_kb: 0,
        };
        let heap = HeapUsage {
            used: 3 * 1024 + 512,
            free: 1024 * 1024,
        };
        let mut s = String::new();
        write_meminfo(&mut s, &m, heap).unwrap();
        assert_eq!(
            s,
            "MemTotal:          15728 kB\n\
             MemFree:           15688 kB\n\
             Cached:               40 kB\n\
             SwapTotal:             0 kB\n\
             SwapFree:              0 kB\n\
             KernelHeap:         1027 kB\n\
             KernelHeapFree:     1024 kB\n"
        );
    }

    #[test]
    fn a_heap_bigger_than_the_address_space_saturates() {
        let mut s = String::new();
        let heap = HeapUsage {
            used: usize::MAX,
            free: 2048,
        };
        write_meminfo(&mut s, &MemInfo::default(), heap).unwrap();
        let want = alloc::format!("KernelHeap:     {:>8} kB\n", usize::MAX / 1024);
        assert!(s.contains(&want), "{s}");
        assert!(s.ends_with("KernelHeapFree:        2 kB\n"), "{s}");
    }
}
