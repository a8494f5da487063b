//! Notifies made by another CPU ([`Kicker`]): under TCG a virtio-pci notify
//! runs the device's handler inside the notifying vCPU's store (no ioeventfd
//! without KVM, docs/virtio-balloon.md §2), so while one vCPU notifies, that
//! vCPU does nothing else. During a balloon round the boot CPU publishes PFN
//! buffers and asks ([`Kicker::request`]); a helper CPU serves the requests
//! ([`Kicker::serve`]) and times the device, so the boot CPU fills the next
//! buffers (and frees the pages of deflate buffers already used) while the
//! device works on the last ones.
//!
//! The kicker holds no buffer and decides nothing about pages: the ring
//! transport ([`super::ring::RingBalloon`]) still checks every completion, its
//! window and its deadlines.

use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

/// The requests between the CPU that publishes buffers and the one that
/// notifies.
pub struct Kicker {
    /// Queues to notify (bit per queue number), not yet taken by the helper.
    pending: AtomicU32,
    /// The helper serves requests (between [`Kicker::start`] and the end of
    /// [`Kicker::serve`]).
    running: AtomicBool,
    /// Asks the helper to return once no request is left.
    stop: AtomicBool,
    /// A notify is being made (by the helper, or by the publishing CPU that
    /// took a request back, [`Kicker::assist`]): one at a time, so the
    /// device's time is the sum of disjoint intervals.
    notifying: AtomicBool,
    /// The device's time for the helper's notifies (ns, cumulative).
    busy_ns: AtomicU64,
    /// Notifies the helper made.
    notifies: AtomicU64,
    /// Notifies the publishing CPU made for a request ([`Kicker::assist`]).
    assists: AtomicU64,
}

/// What the helper needs from the machine.
pub trait KickPort {
    /// Notifies the device of queue `queue` (the register write).
    fn notify(&mut self, queue: u16);
    /// The queue's avail index, as the driver last published it.
    fn avail_idx(&self, queue: u16) -> u16;
    /// The queue's used index, as the device last wrote it.
    fn used_idx(&self, queue: u16) -> u16;
    /// Nanoseconds on a clock that never goes back.
    fn now_ns(&self) -> u64;
    /// The machine stops: return at once.
    fn stopping(&self) -> bool {
        false
    }
}

impl Default for Kicker {
    fn default() -> Self {
        Self::new()
    }
}

impl Kicker {
    /// No helper, nothing requested.
    pub const fn new() -> Self {
        Kicker {
            pending: AtomicU32::new(0),
            running: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            notifying: AtomicBool::new(false),
            busy_ns: AtomicU64::new(0),
            notifies: AtomicU64::new(0),
            assists: AtomicU64::new(0),
        }
    }

    /// Whether a helper serves requests now.
    pub fn running(&self) -> bool {
        self.running.load(Ordering::Acquire)
    }

    /// The helper is about to be handed [`Kicker::serve`]: requests from now
    /// on are its.
    pub fn start(&self) {
        self.stop.store(false, Ordering::Release);
        self.running.store(true, Ordering::Release);
    }

    /// Asks for a notify of `queue` (below 32), after the buffers were
    /// published (the release orders them before the request).
    pub fn request(&self, queue: u16) {
        self.pending
            .fetch_or(1u32 << (queue & 31), Ordering::AcqRel);
    }

    /// The helper could not be started: the requests are dropped (the caller
    /// notifies itself) and nothing runs.
    pub fn abandon(&self) {
        self.pending.store(0, Ordering::Release);
        self.running.store(false, Ordering::Release);
    }

    /// Asks the helper to return once every request is served; the caller
    /// then waits for it (the glue waits for the job to be done).
    pub fn finish(&self) {
        self.stop.store(true, Ordering::Release);
    }

    /// The device's time for the helper's notifies so far (ns): the sum of
    /// the intervals from each notify until the used index reached the avail
    /// index read before it. One helper notifies at a time, so the intervals
    /// do not overlap and the sum is their union.
    pub fn busy_ns(&self) -> u64 {
        self.busy_ns.load(Ordering::Acquire)
    }

    /// Notifies the helper made so far. (Under TCG one notify can serve a
    /// whole round: QEMU's handler takes buffers as long as it finds them
    /// available, and the publishing CPU keeps making them available.)
    pub fn notifies(&self) -> u64 {
        self.notifies.load(Ordering::Acquire)
    }

    /// Notifies the publishing CPU made for requests the helper had not
    /// taken ([`Kicker::assist`]) so far.
    pub fn assists(&self) -> u64 {
        self.assists.load(Ordering::Acquire)
    }

    /// Notifies `queue` and waits until the device used what was available
    /// at the notify (under TCG it has when the notify returns), timing it.
    /// The caller holds `notifying`; `count` is the counter to bump.
    fn notify_timed(&self, port: &mut impl KickPort, q: u16, count: &AtomicU64) {
        let t0 = port.now_ns();
        let target = port.avail_idx(q);
        port.notify(q);
        // The device cannot use more than was available; a device that never
        // catches up is the ring transport's timeout to find, and its finish
        // ends this wait.
        // Behind: the used index has not reached `target` (indexes wrap at
        // 2^16; the device is never more than a ring behind).
        let behind = |used: u16| target.wrapping_sub(used).wrapping_sub(1) < 0x8000;
        while behind(port.used_idx(q)) && !self.stop.load(Ordering::Acquire) && !port.stopping() {
            core::hint::spin_loop();
        }
        let ns = port.now_ns().saturating_sub(t0);
        self.busy_ns.fetch_add(ns, Ordering::AcqRel);
        count.fetch_add(1, Ordering::AcqRel);
    }

    /// Makes the notifies asked for in `mask` (and taken from `pending`)
    /// while holding `notifying`; false, taking nothing, when a notify is
    /// being made elsewhere.
    fn take_and_notify(&self, port: &mut impl KickPort, mask: u32, count: &AtomicU64) -> bool {
        if self
            .notifying
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return false;
        }
        let p = self.pending.fetch_and(!mask, Ordering::AcqRel) & mask;
        for q in (0..32u16).filter(|q| p & (1 << q) != 0) {
            self.notify_timed(port, q, count);
        }
        self.notifying.store(false, Ordering::Release);
        p != 0
    }

    /// Called by the publishing CPU while it waits for the device: when a
    /// notify of `queue` was asked for and the helper has not taken it (its
    /// vCPU thread may be waiting for a host processor), makes it here
    /// rather than wait idle. Returns whether it did.
    pub fn assist(&self, port: &mut impl KickPort, queue: u16) -> bool {
        let bit = 1u32 << (queue & 31);
        self.pending.load(Ordering::Acquire) & bit != 0
            && self.take_and_notify(port, bit, &self.assists)
    }

    /// The helper's loop: takes the requests, notifies each queue and waits
    /// until the device used what was available at the notify, until
    /// [`Kicker::finish`] and no request is left (or the machine stops).
    pub fn serve(&self, port: &mut impl KickPort) {
        loop {
            if self.pending.load(Ordering::Acquire) != 0 {
                self.take_and_notify(port, u32::MAX, &self.notifies);
                continue;
            }
            if self.stop.load(Ordering::Acquire) || port.stopping() {
                // A request made before the stop was asked is served above:
                // the pending word is read once more after the stop was seen
                // (and a notify the publishing CPU makes is over before it
                // asks the helper to stop).
                if self.pending.load(Ordering::Acquire) == 0 || port.stopping() {
                    break;
                }
                continue;
            }
            core::hint::spin_loop();
        }
        self.running.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU16;
    use std::sync::Arc;

    /// A device whose used index catches up a few spins after each notify.
    #[derive(Clone)]
    struct Port {
        avail: Arc<[AtomicU16; 2]>,
        used: Arc<[AtomicU16; 2]>,
        notified: Arc<AtomicU32>,
    }

    impl KickPort for Port {
        fn notify(&mut self, q: u16) {
            self.notified.fetch_add(1, Ordering::AcqRel);
            let a = self.avail[usize::from(q)].load(Ordering::Acquire);
            self.used[usize::from(q)].store(a, Ordering::Release);
        }
        fn avail_idx(&self, q: u16) -> u16 {
            self.avail[usize::from(q)].load(Ordering::Acquire)
        }
        fn used_idx(&self, q: u16) -> u16 {
            self.used[usize::from(q)].load(Ordering::Acquire)
        }
        fn now_ns(&self) -> u64 {
            std::time::Instant::now()
                .duration_since(*START.get_or_init(std::time::Instant::now))
                .as_nanos()
                .try_into()
                .unwrap_or(u64::MAX)
        }
    }

    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();

    #[test]
    fn every_request_made_before_finish_is_served() {
        for _ in 0..200 {
            let k = Arc::new(Kicker::new());
            let port = Port {
                avail: Arc::new([AtomicU16::new(0), AtomicU16::new(0)]),
                used: Arc::new([AtomicU16::new(0), AtomicU16::new(0)]),
                notified: Arc::new(AtomicU32::new(0)),
            };
            k.start();
            let helper = {
                let (k, mut port) = (k.clone(), port.clone());
                std::thread::spawn(move || k.serve(&mut port))
            };
            for i in 0..50u16 {
                let q = i % 2;
                port.avail[usize::from(q)].fetch_add(1, Ordering::AcqRel);
                k.request(q);
            }
            k.finish();
            helper.join().unwrap();
            // Everything published was notified and used; the helper is gone.
            assert_eq!(port.used[0].load(Ordering::Acquire), 25);
            assert_eq!(port.used[1].load(Ordering::Acquire), 25);
            assert!(!k.running());
            assert!(k.notifies() >= 1 && k.notifies() <= 50);
            assert_eq!(k.assists(), 0);
            assert_eq!(
                u64::from(port.notified.load(Ordering::Acquire)),
                k.notifies()
            );
        }
    }

    #[test]
    fn the_publishing_cpu_makes_a_notify_the_helper_has_not_taken() {
        let k = Kicker::new();
        let mut port = Port {
            avail: Arc::new([AtomicU16::new(3), AtomicU16::new(0)]),
            used: Arc::new([AtomicU16::new(0), AtomicU16::new(0)]),
            notified: Arc::new(AtomicU32::new(0)),
        };
        // No helper runs: nothing asked, nothing to assist with.
        assert!(!k.assist(&mut port, 0));
        k.request(0);
        assert!(!k.assist(&mut port, 1), "only the queue asked for");
        assert!(k.assist(&mut port, 0));
        assert_eq!(port.used[0].load(Ordering::Acquire), 3);
        assert!(!k.assist(&mut port, 0), "taken once");
        assert_eq!((k.notifies(), k.assists()), (0, 1));
        // While a notify is being made elsewhere, the request stays.
        k.request(0);
        k.notifying.store(true, Ordering::Release);
        assert!(!k.assist(&mut port, 0));
        k.notifying.store(false, Ordering::Release);
        assert!(k.assist(&mut port, 0));
    }

    /// A device that never uses a buffer: the helper still returns at finish.
    #[test]
    fn finish_ends_the_wait_for_a_device_that_never_uses() {
        struct Deaf;
        impl KickPort for Deaf {
            fn notify(&mut self, _: u16) {}
            fn avail_idx(&self, _: u16) -> u16 {
                5
            }
            fn used_idx(&self, _: u16) -> u16 {
                0
            }
            fn now_ns(&self) -> u64 {
                0
            }
        }
        let k = Arc::new(Kicker::new());
        k.start();
        k.request(0);
        let helper = {
            let k = k.clone();
            std::thread::spawn(move || k.serve(&mut Deaf))
        };
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert!(k.running(), "the helper waits for the device");
        k.finish();
        helper.join().unwrap();
        assert!(!k.running());
        assert_eq!(k.notifies(), 1);
    }
}
