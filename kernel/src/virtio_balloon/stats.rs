//! The balloon's statistics queue (feature `VIRTIO_BALLOON_F_STATS_VQ`, queue 2):
//! what lpar-cmm reports to the host and how the entries are laid out
//! (docs/pool-manager.md, "Guest statistics").
//!
//! The driver keeps one buffer of 10-byte entries `{u16 tag; u64 value}` (packed)
//! with the device; when the host wants fresh figures the device returns it and
//! the driver refills it and hands it back. On the legacy interface both fields
//! are in the guest's byte order (big- or little-endian with the image). QEMU 7.2 keeps
//! tags 0–9 only, so the CMO figures that have no tag of their own ride in tags
//! a kernel without swap and huge pages would leave at zero: OOM-notifier events
//! in `SWAP_IN`, allocation failures in `HTLB_PGFAIL`. CMO faults are reported
//! as major faults.

use hcall::endian::ByteOrder;

/// Feature bit: the device has a statistics queue.
pub const F_STATS_VQ: u32 = 1 << 1;
/// The statistics queue's index.
pub const STATS_QUEUE: u16 = 2;

/// Statistics tags (virtio 1.x `VIRTIO_BALLOON_S_*`).
pub mod tag {
    /// Swap-in: here, OOM-notifier events.
    pub const SWAP_IN: u16 = 0;
    /// Swap-out (not reported).
    pub const SWAP_OUT: u16 = 1;
    /// Major faults: here, CMO faults.
    pub const MAJFLT: u16 = 2;
    /// Minor faults (not reported).
    pub const MINFLT: u16 = 3;
    /// Free memory, bytes.
    pub const MEMFREE: u16 = 4;
    /// Total memory, bytes.
    pub const MEMTOT: u16 = 5;
    /// Available memory, bytes.
    pub const AVAIL: u16 = 6;
    /// Disk caches, bytes: here, the cache workload.
    pub const CACHES: u16 = 7;
    /// Huge-page allocations (not reported).
    pub const HTLB_PGALLOC: u16 = 8;
    /// Huge-page allocation failures: here, allocation failures.
    pub const HTLB_PGFAIL: u16 = 9;
}

/// Bytes of one entry.
pub const ENTRY_BYTES: usize = 10;
/// Entries lpar-cmm reports.
pub const ENTRIES: usize = 7;
/// Bytes of the buffer.
pub const STATS_BYTES: usize = ENTRIES * ENTRY_BYTES;

/// The figures, as the kernel knows them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemoryStats {
    /// Free memory, bytes.
    pub free: u64,
    /// All memory the guest holds (RAM minus loaned pages, the kernel's own
    /// reserved memory included), bytes.
    pub total: u64,
    /// Free memory plus what can be taken back at once (the cache workload).
    pub available: u64,
    /// The cache workload, bytes.
    pub caches: u64,
    /// CMO faults, cumulative.
    pub cmo_faults: u64,
    /// OOM-notifier events, cumulative.
    pub oom_events: u64,
    /// Allocation failures, cumulative.
    pub alloc_failures: u64,
}

impl MemoryStats {
    /// The figures from the kernel's own counters: `ram_bytes` of RAM, the frame
    /// table's counts, the balloon's counters and the CMO faults so far.
    pub fn from_kernel(
        ram_bytes: u64,
        frames: &cmm::FrameCounts,
        cmm: &cmm::CmmStats,
        cmo_faults: u64,
    ) -> MemoryStats {
        let page = |n: u64| n.saturating_mul(hcall::page::PAGE_SIZE);
        let free = page(frames.free);
        let caches = page(frames.cache);
        MemoryStats {
            free,
            total: ram_bytes.saturating_sub(page(frames.loaned)),
            available: free.saturating_add(caches),
            caches,
            cmo_faults,
            oom_events: cmm.oom_events,
            alloc_failures: cmm.alloc_failures,
        }
    }

    /// The `(tag, value)` entries, in buffer order.
    pub fn entries(&self) -> [(u16, u64); ENTRIES] {
        [
            (tag::SWAP_IN, self.oom_events),
            (tag::MAJFLT, self.cmo_faults),
            (tag::MEMFREE, self.free),
            (tag::MEMTOT, self.total),
            (tag::AVAIL, self.available),
            (tag::CACHES, self.caches),
            (tag::HTLB_PGFAIL, self.alloc_failures),
        ]
    }

    /// The buffer the device reads: packed entries in `order`, the guest's
    /// byte order ([`super::GUEST_ORDER`]).
    pub fn encode(&self, order: ByteOrder) -> [u8; STATS_BYTES] {
        let mut buf = [0u8; STATS_BYTES];
        for (chunk, (t, v)) in buf.chunks_exact_mut(ENTRY_BYTES).zip(self.entries()) {
            // Cannot fail: an entry is exactly 2 + 8 bytes.
            let _ = order.put_at(chunk, 0, t);
            let _ = order.put_at(chunk, 2, v);
        }
        buf
    }

    /// Reads a buffer written by [`MemoryStats::encode`] in `order` back into
    /// `(tag, value)` entries, as the device (and so QEMU's `guest-stats`) does.
    pub fn decode(buf: &[u8; STATS_BYTES], order: ByteOrder) -> [(u16, u64); ENTRIES] {
        let mut out = [(0u16, 0u64); ENTRIES];
        for (o, chunk) in out.iter_mut().zip(buf.chunks_exact(ENTRY_BYTES)) {
            *o = (
                order.get_at(chunk, 0).unwrap_or(0),
                order.get_at(chunk, 2).unwrap_or(0),
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_from_the_kernel_counters() {
        let frames = cmm::FrameCounts {
            total: 1000,
            free: 600,
            used: 300,
            loaned: 100,
            cache: 50,
            ..cmm::FrameCounts::default()
        };
        let cmm = cmm::CmmStats {
            oom_events: 4,
            alloc_failures: 2,
            ..cmm::CmmStats::default()
        };
        let s = MemoryStats::from_kernel(1100 * 4096, &frames, &cmm, 9);
        assert_eq!(s.total, 1000 * 4096);
        assert_eq!(s.free, 600 * 4096);
        assert_eq!(s.available, 650 * 4096);
        assert_eq!(s.caches, 50 * 4096);
        assert_eq!((s.cmo_faults, s.oom_events, s.alloc_failures), (9, 4, 2));
    }

    #[test]
    fn entries_are_packed_in_the_guests_byte_order() {
        let s = MemoryStats {
            free: 0x1122_3344_5566_7788,
            total: 512 << 20,
            available: 300 << 20,
            caches: 4096,
            cmo_faults: 3,
            oom_events: 2,
            alloc_failures: 1,
        };
        for order in [ByteOrder::Big, ByteOrder::Little] {
            let buf = s.encode(order);
            let got = MemoryStats::decode(&buf, order);
            assert_eq!(got, s.entries(), "{order:?}");
            assert_eq!(got[0], (tag::SWAP_IN, 2));
            assert_eq!(got[2], (tag::MEMFREE, 0x1122_3344_5566_7788));
            assert_eq!(got[6], (tag::HTLB_PGFAIL, 1));
        }
        // Hand-worked bytes of entry 2 (MEMFREE = 4): packed, the value right
        // after the tag.
        let be = s.encode(ByteOrder::Big);
        assert_eq!(
            &be[20..30],
            &[0x00, 0x04, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88]
        );
        let le = s.encode(ByteOrder::Little);
        assert_eq!(
            &le[20..30],
            &[0x04, 0x00, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11]
        );
        // Entry 0: SWAP_IN (0) = 2.
        assert_eq!(&be[..10], &[0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
        assert_eq!(&le[..10], &[0, 0, 2, 0, 0, 0, 0, 0, 0, 0]);
        // Every tag is one QEMU 7.2 keeps (below 10) and none repeats.
        let mut tags: std::vec::Vec<u16> = s.entries().iter().map(|e| e.0).collect();
        tags.sort_unstable();
        tags.dedup();
        assert_eq!(tags.len(), ENTRIES);
        assert!(tags.iter().all(|&t| t < 10));
    }

    proptest::proptest! {
        #[test]
        fn encode_then_decode_is_identity(v in proptest::array::uniform7(proptest::prelude::any::<u64>()), big in proptest::prelude::any::<bool>()) {
            let order = if big { ByteOrder::Big } else { ByteOrder::Little };
            let s = MemoryStats {
                free: v[0], total: v[1], available: v[2], caches: v[3],
                cmo_faults: v[4], oom_events: v[5], alloc_failures: v[6],
            };
            proptest::prop_assert_eq!(MemoryStats::decode(&s.encode(order), order), s.entries());
        }
    }
}
