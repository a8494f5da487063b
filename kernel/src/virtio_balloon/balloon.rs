//! The balloon protocol: [`BalloonState`] batches PFNs for the inflate queue (256
//! per buffer), takes pages back through the deflate queue, and writes `actual`
//! (the pages the device holds) back once per background pass
//! ([`BalloonState::publish_actual`]), not after every buffer: under QEMU each
//! of its four byte writes is a trip through the device model that cost as
//! much as the guest's own work on a whole buffer (docs/virtio-balloon.md §5). The device is
//! behind [`BalloonTransport`]; the glue's legacy virtio-pci driver implements it,
//! the tests use a fake.

use super::stats::{MemoryStats, STATS_BYTES};
use super::{Queue, PFNS_PER_BUFFER};

/// The device side of the balloon protocol.
pub trait BalloonTransport {
    /// Why the device did not take a buffer.
    type Error: core::fmt::Display;
    /// Hands `pfns` to the device on `queue` as one buffer. Returns once the
    /// device used it, or, when the transport keeps several buffers in flight
    /// (another CPU notifies the device), once it was handed over:
    /// [`BalloonTransport::drain`] then waits for it. The pages of a deflate
    /// buffer are the device's until then.
    fn send(&mut self, queue: Queue, pfns: &[u32]) -> Result<(), Self::Error>;
    /// Waits until the device has used every buffer handed to it.
    fn drain(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
    /// Writes the config field `actual` (pages the balloon holds).
    fn write_actual(&mut self, pages: u32);
    /// Reads the config field `num_pages` (the pages the host asks for).
    fn num_pages(&self) -> u32;
    /// Whether the device has returned the statistics buffer and waits for
    /// fresh figures. A device without the statistics queue never does.
    fn stats_wanted(&mut self) -> bool {
        false
    }
    /// Time the device has held inflate and deflate buffers, cumulative, in
    /// nanoseconds: from each notify until the buffer was used (what `make
    /// bench` subtracts from a QMP balloon step to find the guest's own share).
    fn busy_ns(&self) -> u64 {
        0
    }
    /// Notifies of inflate and deflate buffers made by another CPU (while
    /// this one kept several buffers in flight), and those this CPU made
    /// itself because the other had not taken them yet (its host thread
    /// waiting for a processor: the overlap is lost then), cumulative.
    fn helper_notifies(&self) -> (u64, u64) {
        (0, 0)
    }
    /// Hands the statistics buffer back to the device, filled with `entries`
    /// (docs/pool-manager.md, "Guest statistics"). Does not wait.
    fn send_stats(&mut self, entries: &[u8; STATS_BYTES]) {
        let _ = entries;
    }
    /// Waits for the free-page report in flight, if any (see
    /// `hcall::Simulation::wait_report`); a device without reporting has none.
    fn wait_report(&mut self) -> Option<bool> {
        None
    }
    /// A failure the device showed outside a [`BalloonTransport::send`] (a lie
    /// found between buffers, on the statistics queue): `Err` once the device
    /// must no longer be used.
    fn check(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
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
    /// Statistics buffers handed to the device.
    pub stats_reports: u64,
}

/// The inflate buffer being filled, the count the device holds, the stats.
#[derive(Clone, Debug)]
pub struct BalloonState {
    pending: [u32; PFNS_PER_BUFFER],
    pending_len: usize,
    inflated: u32,
    /// The `actual` last written to the device (`None`: never).
    written: Option<u32>,
    stats: BalloonStats,
}

impl Default for BalloonState {
    fn default() -> Self {
        Self::new()
    }
}

impl BalloonState {
    /// Nothing inflated, nothing pending.
    pub const fn new() -> Self {
        BalloonState {
            pending: [0; PFNS_PER_BUFFER],
            pending_len: 0,
            inflated: 0,
            written: None,
            stats: BalloonStats {
                inflate_buffers: 0,
                deflate_buffers: 0,
                pages_inflated_total: 0,
                pages_deflated_total: 0,
                pending_withdrawn: 0,
                errors: 0,
                stats_reports: 0,
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

    /// Counts a device error found outside a buffer (see
    /// [`BalloonTransport::check`]).
    pub fn count_error(&mut self) {
        self.stats.errors += 1;
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

    /// Queues `pfns` for the inflate queue (a slice at a time into the
    /// buffer); sends each buffer as it fills.
    pub fn inflate_batch<T: BalloonTransport>(
        &mut self,
        t: &mut T,
        mut pfns: &[u32],
    ) -> Result<(), T::Error> {
        while !pfns.is_empty() {
            let room = PFNS_PER_BUFFER - self.pending_len;
            let n = room.min(pfns.len());
            let (now, rest) = pfns.split_at(n);
            self.pending[self.pending_len..self.pending_len + n].copy_from_slice(now);
            self.pending_len += n;
            pfns = rest;
            if self.pending_len == PFNS_PER_BUFFER {
                self.flush(t)?;
            }
        }
        Ok(())
    }

    /// Sends the pending inflate buffer, if any (`actual` is written by
    /// [`BalloonState::publish_actual`]). The pages are dropped from the buffer even when the device fails (they
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
                Ok(())
            }
            Err(e) => {
                self.stats.errors += 1;
                Err(e)
            }
        }
    }

    /// Waits until the device used every buffer handed to it (see
    /// [`BalloonTransport::drain`]); a failure is counted and returned.
    pub fn settle<T: BalloonTransport>(&mut self, t: &mut T) -> Result<(), T::Error> {
        t.drain().inspect_err(|_| self.stats.errors += 1)
    }

    /// Writes `actual` (the pages the device holds) if it changed since it was
    /// last written: once per background pass, after the buffers of the pass
    /// were used. The host's `query-balloon` follows `actual`; the pages
    /// themselves are the device's (or back with the guest) as soon as their
    /// buffer was used.
    pub fn publish_actual<T: BalloonTransport>(&mut self, t: &mut T) {
        if self.written != Some(self.inflated) {
            t.write_actual(self.inflated);
            self.written = Some(self.inflated);
        }
    }

    /// When the device wants fresh statistics, fills the buffer with `figures()`
    /// and hands it back; returns whether it did.
    pub fn report_stats<T: BalloonTransport>(
        &mut self,
        t: &mut T,
        figures: impl FnOnce() -> MemoryStats,
    ) -> bool {
        if !t.stats_wanted() {
            return false;
        }
        t.send_stats(&figures().encode(super::GUEST_ORDER));
        self.stats.stats_reports += 1;
        true
    }

    /// Takes `pfn` back before the guest reuses it (see
    /// [`BalloonState::deflate_batch`]).
    pub fn deflate<T: BalloonTransport>(&mut self, t: &mut T, pfn: u32) -> Result<(), T::Error> {
        self.deflate_batch(t, &[pfn])
    }

    /// Takes `pfns` back before the guest reuses any of them: a page still in
    /// the pending inflate buffer is withdrawn (never sent); the others go to the
    /// device in deflate buffers of up to 256 (each used before this returns,
    /// unless the transport keeps buffers in flight: then the caller
    /// [`BalloonState::settle`]s before any of the pages is used). On a device error
    /// the pages of the failed buffer and after it are not counted as deflated.
    pub fn deflate_batch<T: BalloonTransport>(
        &mut self,
        t: &mut T,
        pfns: &[u32],
    ) -> Result<(), T::Error> {
        let mut buf = [0u32; PFNS_PER_BUFFER];
        let mut n = 0;
        for &pfn in pfns {
            if let Some(i) = self.pending[..self.pending_len]
                .iter()
                .position(|&p| p == pfn)
            {
                self.pending_len -= 1;
                self.pending[i] = self.pending[self.pending_len];
                self.stats.pending_withdrawn += 1;
                continue;
            }
            if n == PFNS_PER_BUFFER {
                self.send_deflate(t, &buf[..n])?;
                n = 0;
            }
            buf[n] = pfn;
            n += 1;
        }
        if n > 0 {
            self.send_deflate(t, &buf[..n])?;
        }
        Ok(())
    }

    /// One deflate buffer.
    fn send_deflate<T: BalloonTransport>(
        &mut self,
        t: &mut T,
        pfns: &[u32],
    ) -> Result<(), T::Error> {
        match t.send(Queue::Deflate, pfns) {
            Ok(()) => {
                let n = u32::try_from(pfns.len()).unwrap_or(u32::MAX);
                self.stats.deflate_buffers += 1;
                self.stats.pages_deflated_total += u64::from(n);
                self.inflated = self.inflated.saturating_sub(n);
                Ok(())
            }
            Err(e) => {
                self.stats.errors += 1;
                Err(e)
            }
        }
    }
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
        /// The device holds no statistics buffer (it returned it).
        stats_returned: bool,
        stats_sent: Vec<[u8; STATS_BYTES]>,
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
        fn stats_wanted(&mut self) -> bool {
            self.stats_returned
        }
        fn send_stats(&mut self, entries: &[u8; STATS_BYTES]) {
            assert!(
                self.stats_returned,
                "statistics sent while the device holds the buffer"
            );
            self.stats_returned = false;
            self.stats_sent.push(*entries);
        }
    }

    #[test]
    fn statistics_go_only_when_the_device_returned_the_buffer() {
        let mut d = Fake::default();
        let mut b = BalloonState::new();
        let figures = || MemoryStats {
            free: 1 << 20,
            ..MemoryStats::default()
        };
        assert!(!b.report_stats(&mut d, figures));
        d.stats_returned = true;
        assert!(b.report_stats(&mut d, figures));
        assert!(!b.report_stats(&mut d, || panic!("not asked for")));
        assert_eq!(
            d.stats_sent,
            [figures().encode(crate::virtio_balloon::GUEST_ORDER)]
        );
        assert_eq!(b.stats().stats_reports, 1);
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
        assert!(d.actual.is_empty(), "actual waits for the background pass");
        b.flush(&mut d).unwrap();
        assert_eq!(d.buffers[2].1.len(), 88);
        assert_eq!(b.inflated(), 600);
        b.publish_actual(&mut d);
        assert_eq!(d.actual, vec![600]);
        // An empty flush sends nothing; an unchanged actual is not written.
        b.flush(&mut d).unwrap();
        b.publish_actual(&mut d);
        assert_eq!(d.buffers.len(), 3);
        assert_eq!(d.actual.len(), 1);
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
        b.publish_actual(&mut d);
        assert_eq!(*d.actual.last().unwrap(), 255);
        b.flush(&mut d).unwrap();
        b.publish_actual(&mut d);
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
        b.publish_actual(&mut d);
        assert_eq!(d.actual, [0]);
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
        b.publish_actual(&mut d);
        assert_eq!(d.held, loaned);
        assert_eq!(b.inflated() as usize, loaned.len());
        assert_eq!(*d.actual.last().unwrap(), b.inflated());
        assert!(d.buffers.iter().all(|(_, p)| p.len() <= PFNS_PER_BUFFER));
    }
}
