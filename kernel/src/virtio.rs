//! The virtio-balloon protocol without the hardware: the legacy split-virtqueue
//! layout, and [`BalloonState`], which batches PFNs for the inflate queue (256 per
//! buffer), takes pages back through the deflate queue, and keeps `actual` (the
//! pages the device holds) written back after every change. The device itself is
//! behind [`BalloonTransport`]; the binary's legacy PCI driver implements it, the
//! tests use a fake.

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

/// Legacy (virtio 0.9.5) I/O BAR registers, valid while MSI-X is off.
pub mod legacy {
    /// Host features (u32, read-only).
    pub const HOST_FEATURES: usize = 0x00;
    /// Guest features (u32).
    pub const GUEST_FEATURES: usize = 0x04;
    /// Queue address >> 12 (u32).
    pub const QUEUE_PFN: usize = 0x08;
    /// Queue size (u16, read-only).
    pub const QUEUE_SIZE: usize = 0x0c;
    /// Queue select (u16).
    pub const QUEUE_SELECT: usize = 0x0e;
    /// Queue notify (u16).
    pub const QUEUE_NOTIFY: usize = 0x10;
    /// Device status (u8).
    pub const STATUS: usize = 0x12;
    /// ISR status (u8, read clears).
    pub const ISR: usize = 0x13;
    /// Balloon config: `num_pages` (le32, read-only).
    pub const NUM_PAGES: usize = 0x14;
    /// Balloon config: `actual` (le32).
    pub const ACTUAL: usize = 0x18;
    /// The I/O BAR must be at least this long.
    pub const BAR_LEN: u64 = 0x1c;

    /// Status bits.
    pub const STATUS_ACK: u8 = 1;
    /// Status bits.
    pub const STATUS_DRIVER: u8 = 2;
    /// Status bits.
    pub const STATUS_DRIVER_OK: u8 = 4;
    /// Status bits: the device gave up.
    pub const STATUS_FAILED: u8 = 0x80;
}

/// The balloon's two queues.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Queue {
    /// Queue 0: pages given to the host.
    Inflate = 0,
    /// Queue 1: pages taken back.
    Deflate = 1,
}

/// Where the parts of a legacy split virtqueue of `size` entries sit, in bytes
/// from its 4 KiB-aligned start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueLayout {
    /// Entries.
    pub size: u16,
    /// The avail ring (`flags, idx, ring[size], used_event`).
    pub avail: usize,
    /// The used ring (`flags, idx, {id, len}[size], avail_event`), 4 KiB-aligned.
    pub used: usize,
    /// Total bytes, a multiple of 4 KiB.
    pub bytes: usize,
}

const fn align_4k(x: usize) -> usize {
    (x + 4095) & !4095
}

impl QueueLayout {
    /// The legacy layout: descriptors (16 bytes each) at 0, the avail ring right
    /// after, the used ring at the next 4 KiB boundary. `None` unless `size` is a
    /// power of two from 1 to 32768.
    pub fn legacy(size: u16) -> Option<QueueLayout> {
        if size == 0 || !size.is_power_of_two() {
            return None;
        }
        let n = usize::from(size);
        let avail = 16 * n;
        let used = align_4k(avail + 4 + 2 * n + 2);
        let bytes = align_4k(used + 4 + 8 * n + 2);
        Some(QueueLayout {
            size,
            avail,
            used,
            bytes,
        })
    }

    /// Offset of avail ring slot `idx` (wrapped).
    pub fn avail_slot(&self, idx: u16) -> usize {
        self.avail + 4 + 2 * usize::from(idx % self.size)
    }

    /// Offset of the avail ring's `idx` field.
    pub fn avail_idx(&self) -> usize {
        self.avail + 2
    }

    /// Offset of the used ring's `idx` field.
    pub fn used_idx(&self) -> usize {
        self.used + 2
    }
}

/// The device side of the balloon protocol.
pub trait BalloonTransport {
    /// Why the device did not take a buffer.
    type Error: core::fmt::Display;
    /// Hands `pfns` to the device on `queue` as one buffer and waits until it is used.
    fn send(&mut self, queue: Queue, pfns: &[u32]) -> Result<(), Self::Error>;
    /// Writes the config field `actual` (pages the balloon holds).
    fn write_actual(&mut self, pages: u32);
    /// Reads the config field `num_pages` (the pages the host asks for).
    fn num_pages(&self) -> u32;
}

/// The balloon's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BalloonStats {
    /// Buffers sent on the inflate queue.
    pub inflate_buffers: u64,
    /// Buffers sent on the deflate queue.
    pub deflate_buffers: u64,
    /// Pages inflated, cumulative.
    pub pages_inflated_total: u64,
    /// Pages deflated, cumulative.
    pub pages_deflated_total: u64,
    /// Loans withdrawn while still waiting in the inflate buffer.
    pub pending_withdrawn: u64,
    /// Buffers the device did not take.
    pub errors: u64,
}

/// Why a page cannot be handed to the device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PfnError {
    /// The address is above what a 32-bit PFN reaches (16 TiB).
    TooHigh(u64),
}

/// The inflate buffer being filled, the count the device holds, the stats.
#[derive(Clone, Debug)]
pub struct BalloonState {
    pending: [u32; PFNS_PER_BUFFER],
    pending_len: usize,
    inflated: u32,
    stats: BalloonStats,
}

impl Default for BalloonState {
    fn default() -> Self {
        Self::new()
    }
}

/// The 32-bit PFN of the page at `addr`.
pub fn pfn_of(addr: u64) -> Result<u32, PfnError> {
    u32::try_from(addr / BALLOON_PAGE).map_err(|_| PfnError::TooHigh(addr))
}

impl BalloonState {
    /// Nothing inflated, nothing pending.
    pub const fn new() -> Self {
        BalloonState {
            pending: [0; PFNS_PER_BUFFER],
            pending_len: 0,
            inflated: 0,
            stats: BalloonStats {
                inflate_buffers: 0,
                deflate_buffers: 0,
                pages_inflated_total: 0,
                pages_deflated_total: 0,
                pending_withdrawn: 0,
                errors: 0,
            },
        }
    }

    /// Pages the device holds (what `actual` says).
    pub fn inflated(&self) -> u32 {
        self.inflated
    }

    /// Pages waiting in the inflate buffer.
    pub fn pending(&self) -> usize {
        self.pending_len
    }

    /// The counters.
    pub fn stats(&self) -> BalloonStats {
        self.stats
    }

    /// Queues `pfn` for the inflate queue; sends the buffer once it holds 256.
    pub fn inflate<T: BalloonTransport>(&mut self, t: &mut T, pfn: u32) -> Result<(), T::Error> {
        self.pending[self.pending_len] = pfn;
        self.pending_len += 1;
        if self.pending_len == PFNS_PER_BUFFER {
            self.flush(t)?;
        }
        Ok(())
    }

    /// Sends the pending inflate buffer, if any, and writes `actual` after it.
    /// The pages are dropped from the buffer even when the device fails (they
    /// stay with the guest; the error is counted and returned).
    pub fn flush<T: BalloonTransport>(&mut self, t: &mut T) -> Result<(), T::Error> {
        if self.pending_len == 0 {
            return Ok(());
        }
        let n = self.pending_len;
        self.pending_len = 0;
        match t.send(Queue::Inflate, &self.pending[..n]) {
            Ok(()) => {
                self.stats.inflate_buffers += 1;
                self.stats.pages_inflated_total += n as u64;
                self.inflated = self
                    .inflated
                    .saturating_add(u32::try_from(n).unwrap_or(u32::MAX));
                t.write_actual(self.inflated);
                Ok(())
            }
            Err(e) => {
                self.stats.errors += 1;
                Err(e)
            }
        }
    }

    /// Takes `pfn` back before the guest reuses it: withdrawn from the pending
    /// buffer if it has not been sent yet, else deflated now (one buffer) and
    /// `actual` written back at once.
    pub fn deflate<T: BalloonTransport>(&mut self, t: &mut T, pfn: u32) -> Result<(), T::Error> {
        if let Some(i) = self.pending[..self.pending_len]
            .iter()
            .position(|&p| p == pfn)
        {
            self.pending_len -= 1;
            self.pending[i] = self.pending[self.pending_len];
            self.stats.pending_withdrawn += 1;
            return Ok(());
        }
        match t.send(Queue::Deflate, &[pfn]) {
            Ok(()) => {
                self.stats.deflate_buffers += 1;
                self.stats.pages_deflated_total += 1;
                self.inflated = self.inflated.saturating_sub(1);
                t.write_actual(self.inflated);
                Ok(())
            }
            Err(e) => {
                self.stats.errors += 1;
                Err(e)
            }
        }
    }
}

/// The loan target in bytes that the host asks for with `num_pages`, capped at
/// `mem_bytes`.
pub fn host_target_bytes(num_pages: u32, mem_bytes: u64) -> u64 {
    (u64::from(num_pages) * BALLOON_PAGE).min(mem_bytes & !(BALLOON_PAGE - 1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;
    use std::collections::BTreeSet;

    /// A device that records buffers and `actual`, and can be told to fail.
    #[derive(Default)]
    struct Fake {
        buffers: Vec<(Queue, Vec<u32>)>,
        held: BTreeSet<u32>,
        actual: Vec<u32>,
        fail: bool,
    }

    impl BalloonTransport for Fake {
        type Error = &'static str;
        fn send(&mut self, q: Queue, pfns: &[u32]) -> Result<(), &'static str> {
            if self.fail {
                return Err("broken");
            }
            for &p in pfns {
                match q {
                    Queue::Inflate => assert!(self.held.insert(p), "pfn {p} inflated twice"),
                    Queue::Deflate => assert!(self.held.remove(&p), "pfn {p} not held"),
                }
            }
            self.buffers.push((q, pfns.to_vec()));
            Ok(())
        }
        fn write_actual(&mut self, pages: u32) {
            self.actual.push(pages);
        }
        fn num_pages(&self) -> u32 {
            0
        }
    }

    #[test]
    fn inflate_sends_full_buffers_of_256() {
        let mut d = Fake::default();
        let mut b = BalloonState::new();
        for pfn in 0..600 {
            b.inflate(&mut d, pfn).unwrap();
        }
        assert_eq!(d.buffers.len(), 2);
        assert!(d
            .buffers
            .iter()
            .all(|(q, p)| *q == Queue::Inflate && p.len() == 256));
        assert_eq!(b.pending(), 88);
        assert_eq!(b.inflated(), 512);
        b.flush(&mut d).unwrap();
        assert_eq!(d.buffers[2].1.len(), 88);
        assert_eq!(b.inflated(), 600);
        assert_eq!(d.actual, vec![256, 512, 600]);
        // An empty flush sends nothing and writes nothing.
        b.flush(&mut d).unwrap();
        assert_eq!(d.buffers.len(), 3);
        assert_eq!(d.actual.len(), 3);
        assert_eq!(b.stats().inflate_buffers, 3);
        assert_eq!(b.stats().pages_inflated_total, 600);
    }

    #[test]
    fn deflate_withdraws_pending_pages_and_deflates_sent_ones() {
        let mut d = Fake::default();
        let mut b = BalloonState::new();
        for pfn in 0..300 {
            b.inflate(&mut d, pfn).unwrap();
        }
        // 0..256 were sent; 256..300 are pending.
        b.deflate(&mut d, 280).unwrap();
        assert_eq!(b.pending(), 43);
        assert_eq!(d.buffers.len(), 1, "a pending page is never sent");
        b.deflate(&mut d, 10).unwrap();
        assert_eq!(d.buffers.last().unwrap(), &(Queue::Deflate, vec![10]));
        assert_eq!(b.inflated(), 255);
        assert_eq!(
            *d.actual.last().unwrap(),
            255,
            "actual follows every deflate"
        );
        b.flush(&mut d).unwrap();
        assert_eq!(*d.actual.last().unwrap(), 298);
        assert!(!d.held.contains(&280));
        assert_eq!(d.held.len(), 255 + 43);
        assert_eq!(b.inflated() as usize, d.held.len());
        assert_eq!(b.stats().pending_withdrawn, 1);
    }

    #[test]
    fn failures_are_counted_and_leave_actual_alone() {
        let mut d = Fake {
            fail: true,
            ..Fake::default()
        };
        let mut b = BalloonState::new();
        for pfn in 0..255 {
            b.inflate(&mut d, pfn).unwrap();
        }
        assert!(b.inflate(&mut d, 255).is_err());
        assert_eq!(b.pending(), 0);
        assert_eq!(b.inflated(), 0);
        assert!(d.actual.is_empty());
        assert_eq!(b.stats().errors, 1);
    }

    #[test]
    fn model_of_random_loans_and_returns() {
        // A deterministic mix: the device always holds exactly what was sent.
        let mut d = Fake::default();
        let mut b = BalloonState::new();
        let mut loaned: BTreeSet<u32> = BTreeSet::new();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let pfn = (x % 2000) as u32;
            if loaned.insert(pfn) {
                b.inflate(&mut d, pfn).unwrap();
            } else {
                loaned.remove(&pfn);
                b.deflate(&mut d, pfn).unwrap();
            }
            if x.is_multiple_of(97) {
                b.flush(&mut d).unwrap();
            }
        }
        b.flush(&mut d).unwrap();
        assert_eq!(d.held, loaned);
        assert_eq!(b.inflated() as usize, loaned.len());
        assert_eq!(*d.actual.last().unwrap(), b.inflated());
        assert!(d.buffers.iter().all(|(_, p)| p.len() <= PFNS_PER_BUFFER));
    }

    #[test]
    fn queue_layout_matches_the_legacy_spec() {
        let l = QueueLayout::legacy(128).unwrap();
        assert_eq!(l.avail, 2048);
        assert_eq!(l.used, 4096);
        assert_eq!(l.bytes, 8192);
        assert_eq!(l.avail_idx(), 2050);
        assert_eq!(l.avail_slot(0), 2052);
        assert_eq!(l.avail_slot(129), 2054);
        assert_eq!(l.used_idx(), 4098);
        let big = QueueLayout::legacy(256).unwrap();
        assert_eq!((big.avail, big.used, big.bytes), (4096, 8192, 12288));
        assert_eq!(QueueLayout::legacy(0), None);
        assert_eq!(QueueLayout::legacy(100), None);
    }

    #[test]
    fn pfns_and_host_targets() {
        assert_eq!(pfn_of(0x1000_0000), Ok(0x1_0000));
        assert_eq!(pfn_of(1 << 44), Err(PfnError::TooHigh(1 << 44)));
        assert_eq!(host_target_bytes(65536, 512 << 20), 256 << 20);
        assert_eq!(host_target_bytes(u32::MAX, 512 << 20), 512 << 20);
    }
}
