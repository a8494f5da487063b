//! The virtio balloon with the device's side as the input: whether it takes
//! each buffer, what `num_pages` reads, when it returns the statistics buffer.
//! The kernel's side is a random sequence of page-state changes through the
//! decorator that backs the pool model with the device.

use hcall::{Hypervisor, PageState, Simulation};
use kernel::hv::VirtioBacked;
use kernel::virtio_balloon::stats::{MemoryStats, STATS_BYTES};
use kernel::virtio_balloon::{BalloonTransport, Queue, PFNS_PER_BUFFER};
use powervm_sim::PoolModel;

use crate::hv::{small_model, Quiet, MODEL_PAGES};
use crate::input::Bytes;

/// The pages a device holds: one bit per page of the small partition (a set
/// without allocation; the fuzzer runs this for every page of every buffer).
struct Held {
    bits: [u64; MODEL_PAGES as usize / 64],
    count: usize,
}

impl Held {
    fn new() -> Held {
        Held {
            bits: [0; MODEL_PAGES as usize / 64],
            count: 0,
        }
    }

    /// Adds `pfn`; false if it was there. A page outside the partition fails.
    fn insert(&mut self, pfn: u32) -> bool {
        assert!(pfn < MODEL_PAGES, "pfn {pfn} is outside the partition");
        let (w, b) = (pfn as usize / 64, 1u64 << (pfn % 64));
        let new = self.bits[w] & b == 0;
        self.bits[w] |= b;
        self.count += usize::from(new);
        new
    }

    /// Takes `pfn` out; false if it was not there.
    fn remove(&mut self, pfn: u32) -> bool {
        if pfn >= MODEL_PAGES {
            return false;
        }
        let (w, b) = (pfn as usize / 64, 1u64 << (pfn % 64));
        let was = self.bits[w] & b != 0;
        self.bits[w] &= !b;
        self.count -= usize::from(was);
        was
    }

    fn len(&self) -> usize {
        self.count
    }

    /// The pages held, in order (word by word: empty words cost one test).
    fn pages(&self) -> impl Iterator<Item = u32> + '_ {
        (0u32..).zip(self.bits.iter()).flat_map(|(w, &word)| {
            let mut rest = word;
            core::iter::from_fn(move || {
                if rest == 0 {
                    return None;
                }
                let b = rest.trailing_zeros();
                rest &= rest - 1;
                Some(w * 64 + b)
            })
        })
    }
}

/// A device whose every answer is the input's; it records what it holds and
/// fails the run if the kernel gives it a page twice or takes back one it does
/// not hold.
struct Device<'a> {
    answers: Bytes<'a>,
    held: Held,
    buffers_after_failure: u32,
    failed: bool,
    /// The device holds the statistics buffer.
    stats_held: bool,
}

impl BalloonTransport for Device<'_> {
    type Error = &'static str;
    fn send(&mut self, queue: Queue, pfns: &[u32]) -> Result<(), &'static str> {
        assert!(!pfns.is_empty() && pfns.len() <= PFNS_PER_BUFFER);
        if self.failed {
            self.buffers_after_failure += 1;
        }
        if self.answers.u8() == 0xff {
            self.failed = true;
            return Err("the device did not use the buffer");
        }
        for &p in pfns {
            match queue {
                Queue::Inflate => assert!(self.held.insert(p), "pfn {p} given twice"),
                Queue::Deflate => assert!(self.held.remove(p), "pfn {p} taken back, not held"),
            }
        }
        Ok(())
    }
    fn write_actual(&mut self, pages: u32) {
        assert_eq!(
            pages as usize,
            self.held.len(),
            "actual is not what the device holds"
        );
    }
    fn num_pages(&self) -> u32 {
        // A peek: the same answer until the next buffer.
        Bytes::new(self.answers.peek()).u32()
    }
    fn stats_wanted(&mut self) -> bool {
        !self.stats_held && self.answers.u8() & 1 == 1
    }
    fn send_stats(&mut self, _entries: &[u8; STATS_BYTES]) {
        assert!(
            !self.stats_held,
            "statistics sent while the device holds the buffer"
        );
        self.stats_held = true;
        // The device keeps it until a later answer returns it.
        if self.answers.u8() & 3 == 0 {
            self.stats_held = false;
        }
    }
}

/// The kernel's operations (first half of the input) against a device whose
/// answers are the second half: the device never gets a page twice or loses one
/// it did not hold; while it works, it holds exactly the model's loaned pages
/// that are not waiting in the inflate buffer; after its first failure it is
/// never used again and the failure is counted; the model's books balance.
pub fn virtio(data: &[u8]) {
    let (ops, answers) = data.split_at(data.len() / 2);
    let dev = Device {
        answers: Bytes::new(answers),
        held: Held::new(),
        buffers_after_failure: 0,
        failed: false,
        stats_held: false,
    };
    let mut v: VirtioBacked<PoolModel<Quiet>, Device<'_>> = VirtioBacked::new(small_model(), dev);
    let mut ops = Bytes::new(ops);
    let mut now_us = 0u64;
    while !ops.is_empty() {
        let page = |b: &mut Bytes<'_>| b.below(MODEL_PAGES as usize) as u64 * 4096;
        let state = |b: &mut Bytes<'_>| match b.u8() % 3 {
            0 => PageState::Active,
            1 => PageState::Unused,
            _ => PageState::Loaned,
        };
        match ops.u8() % 8 {
            0 | 1 => {
                let (a, s) = (page(&mut ops), state(&mut ops));
                let _ = v.set_page_state(a, s);
            }
            2 => {
                let start = page(&mut ops);
                // Up to 700 pages, not past the end of the partition.
                let n = u64::from(ops.u16() % 700).min((crate::hv::MODEL_BYTES - start) / 4096);
                let s = state(&mut ops);
                let addrs: Vec<u64> = (0..n).map(|i| start + i * 4096).collect();
                let _ = v.set_page_states(&addrs, s);
            }
            3 => v.sync(),
            4 => {
                now_us += u64::from(ops.u8()) * 1000;
                v.advance(now_us);
            }
            5 => v.report_stats(|| MemoryStats {
                free: 1 << 20,
                ..MemoryStats::default()
            }),
            6 => v.follow_host(),
            _ => v.follow_model(),
        }
        check(&v, false);
    }
    check(&v, true);
}

/// The oracle after every operation (`whole`: also page by page, at the end).
fn check(v: &VirtioBacked<PoolModel<Quiet>, Device<'_>>, whole: bool) {
    let dev = v.device();
    assert_eq!(v.is_broken(), dev.failed, "a device failure not noticed");
    assert_eq!(dev.buffers_after_failure, 0, "a failed device used again");
    if dev.failed {
        assert!(
            v.balloon().stats().errors >= 1,
            "the failure was not counted"
        );
        return;
    }
    let loaned_pages = v.inner().loaned_bytes() / 4096;
    assert_eq!(
        (dev.held.len() + v.balloon().pending()) as u64,
        loaned_pages
    );
    crate::hv::check_books(v.inner());
    if whole {
        for p in dev.held.pages() {
            assert!(
                matches!(
                    v.inner().page(u64::from(p) * 4096),
                    Some((PageState::Loaned, _))
                ),
                "the device holds page {p}, which the model does not loan"
            );
        }
    }
}

/// The used ring as the device writes it, checked by the kernel's tracker: the
/// kernel publishes one buffer at a time (of a length from the input) and the
/// device writes any used index and entry it likes. A completion is accepted
/// only for the one buffer in flight, naming descriptor 0, with no more bytes
/// than the buffer, the index moved by exactly one; after the first violation
/// the run ends (the transport stops there).
pub fn virtio_used(data: &[u8]) {
    use kernel::virtio_balloon::used::{UsedElem, UsedTracker};
    let mut b = Bytes::new(data);
    let mut t = UsedTracker::new();
    let mut used_idx = 0u16;
    let mut accepted = 0u16;
    let mut buffer = None;
    while !b.is_empty() {
        if b.u8() & 1 == 0 && !t.in_flight() {
            let len = u32::from(b.u16());
            t.published(len);
            buffer = Some(len);
        }
        // The device: keep the index, move it by one, or write anything.
        used_idx = match b.u8() % 4 {
            0 => used_idx,
            1 | 2 => used_idx.wrapping_add(1),
            _ => b.u16(),
        };
        let elem = UsedElem {
            id: if b.u8() == 0xff { b.u32() } else { 0 },
            len: u32::from(b.u16()),
        };
        let before = accepted;
        match t.poll(used_idx, |slot| {
            assert_eq!(slot, before, "the tracker read the wrong slot");
            elem
        }) {
            Ok(None) => assert_eq!(used_idx, accepted),
            Ok(Some(e)) => {
                let len = buffer.take().expect("a completion with nothing in flight");
                assert_eq!(e, elem);
                assert_eq!(e.id, 0);
                assert!(e.len <= len);
                accepted = accepted.wrapping_add(1);
                assert_eq!(used_idx, accepted);
                assert!(!t.in_flight());
            }
            Err(_) => {
                assert!(
                    buffer.is_none()
                        || used_idx.wrapping_sub(accepted) > 1
                        || elem.id != 0
                        || Some(elem.len) > buffer
                );
                return;
            }
        }
    }
}
