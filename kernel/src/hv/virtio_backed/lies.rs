//! A device that lies: the decorator over the kernel's ring transport and a fake
//! device in host memory (`virtio_balloon::fake`) that breaks the virtqueue
//! protocol one way per test. Each test asserts what the kernel did: no page it
//! did not hand over is loaned, returned or touched; the device is no longer
//! used; the error is counted; the model's books are intact; nothing waits
//! forever.

use super::*;
use crate::virtio_balloon::fake::{device, FakeRegs, Lie};
use crate::virtio_balloon::ring::{DeviceError, DeviceRegs, RingBalloon};
use crate::virtio_balloon::used::Violation;
use crate::virtio_balloon::Queue;
use hcall::{HStatus, Phyp};
use std::vec::Vec;

/// The hypervisor under the model: every call succeeds.
struct Quiet;

impl RawHcall for Quiet {
    /// Touches no memory.
    unsafe fn hcall(&mut self, _: u64, _: &[u64]) -> (HStatus, [u64; 9]) {
        (HStatus::Success, [0; 9])
    }
}

/// `Phyp` over [`Quiet`].
fn quiet() -> Phyp<Quiet> {
    // SAFETY: `Quiet` touches no memory, so no address passed through can matter.
    unsafe { Phyp::new(Quiet) }
}

const RAM: u64 = 64 << 20;

type Backed = VirtioBacked<PoolModel<Quiet>, RingBalloon<'static, FakeRegs>>;

fn backed(lie: Lie) -> Backed {
    let mut v = VirtioBacked::new(PoolModel::new(quiet(), RAM).unwrap(), device(lie, true));
    v.follow_model();
    v
}

fn addrs(pfns: core::ops::Range<u64>) -> Vec<u64> {
    pfns.map(|p| p * 4096).collect()
}

fn loaned(v: &Backed) -> Vec<u32> {
    (0..u32::try_from(RAM / 4096).unwrap())
        .filter(|&p| v.inner().is_loaned(u64::from(p) * 4096))
        .collect()
}

/// The model's books: every page loaned, resident or paged out, exactly once.
fn books_intact(v: &Backed, loaned_pages: u64) {
    let m = v.inner();
    assert_eq!(m.loaned_bytes(), loaned_pages * 4096);
    assert_eq!(
        m.loaned_bytes() + m.resident_bytes() + m.paged_out_bytes(),
        RAM
    );
    assert_eq!(loaned(v).len() as u64, loaned_pages);
}

/// Loans pages 100..400 (one full buffer of 256 goes to the device at once),
/// then returns 100..150: what a lying device meets first.
fn exercise(v: &mut Backed) {
    v.set_page_states(&addrs(100..400), PageState::Loaned)
        .unwrap();
    v.advance(1);
    v.set_page_states(&addrs(100..150), PageState::Active)
        .unwrap();
}

/// What every lie leaves behind: the device was stopped after its first
/// error, which was counted once; it got nothing after that (the kernel never
/// touched its rings again); every page it was told of was a page the kernel
/// loaned; the model's books stand.
fn after_the_lie(v: &mut Backed, expect: DeviceError) {
    assert_eq!(v.device().stopped(), Some(expect));
    stopped_for_good(v);
}

/// [`after_the_lie`] without the exact error.
fn stopped_for_good(v: &mut Backed) {
    assert!(v.is_broken(), "the device is still used");
    assert_eq!(
        v.balloon().stats().errors,
        1,
        "the error was not counted once"
    );
    let notifies = v.device().regs().notifies;
    // More work: nothing reaches the device any more, the model goes on.
    v.set_page_states(&addrs(500..900), PageState::Loaned)
        .unwrap();
    v.set_page_states(&addrs(100..400), PageState::Active)
        .unwrap();
    v.advance(2);
    v.sync();
    v.report_stats(MemoryStats::default);
    assert_eq!(
        v.device().regs().notifies,
        notifies,
        "a stopped device was used"
    );
    let dev = v.device().regs();
    for (q, pfns) in &dev.seen {
        for p in pfns {
            assert!(
                (100..400).contains(p) || *q == Queue::Deflate,
                "the device saw page {p} the kernel never loaned"
            );
        }
    }
    books_intact(v, 400);
    let mut rows = String::new();
    v.render(&mut rows);
    assert!(rows.contains("device_broken: 1"), "{rows}");
    assert!(rows.contains("device_errors: 1"), "{rows}");
}

#[test]
fn an_honest_device_holds_exactly_the_loaned_pages() {
    let mut v = backed(Lie::Honest);
    exercise(&mut v);
    v.sync();
    assert!(!v.is_broken());
    let held: Vec<u32> = v.device().regs().held.iter().copied().collect();
    assert_eq!(held, loaned(&v));
    assert_eq!(held.len(), 250);
    assert_eq!(v.device().regs().actual, 250);
    books_intact(&v, 250);
}

#[test]
fn a_used_entry_for_an_id_never_made_available() {
    let mut v = backed(Lie::UnknownId);
    exercise(&mut v);
    // The device never acknowledged the buffer: it holds nothing, and the
    // returns of pages it never took were not sent to it.
    assert!(v.device().regs().seen.is_empty());
    after_the_lie(
        &mut v,
        DeviceError::Violation(Some(Queue::Inflate), Violation::UnknownId(7)),
    );
}

#[test]
fn the_same_id_returned_twice() {
    let mut v = backed(Lie::SameIdTwice);
    exercise(&mut v);
    // The device writes its duplicate entry when `actual` is written (once per
    // background pass, after the second inflate buffer); the deflate went
    // through on its own queue; the pass's check catches the duplicate.
    assert_eq!(v.device().regs().seen.len(), 3);
    v.sync();
    after_the_lie(
        &mut v,
        DeviceError::Violation(
            Some(Queue::Inflate),
            Violation::NothingInFlight {
                id: 0,
                repeated: true,
            },
        ),
    );
}

#[test]
fn a_length_beyond_the_buffer() {
    let mut v = backed(Lie::LenBeyondBuffer);
    exercise(&mut v);
    after_the_lie(
        &mut v,
        DeviceError::Violation(
            Some(Queue::Inflate),
            Violation::LenBeyondBuffer {
                len: 1024 + 4096,
                buffer: 1024,
            },
        ),
    );
}

#[test]
fn a_used_index_past_the_ring() {
    let mut v = backed(Lie::IndexJump);
    exercise(&mut v);
    after_the_lie(
        &mut v,
        DeviceError::Violation(
            Some(Queue::Inflate),
            Violation::IndexJump {
                expected: 1,
                got: 301,
            },
        ),
    );
}

#[test]
fn a_device_that_never_uses_a_buffer_is_given_up_after_the_timeout() {
    let mut v = backed(Lie::NeverUses);
    exercise(&mut v);
    // The wait ended by the clock (1 ms per wait step in the fake), not forever.
    let waited = v.device().regs().now_us();
    assert!((1_000_000..1_100_000).contains(&waited), "{waited}");
    after_the_lie(&mut v, DeviceError::Timeout(Queue::Inflate));
}

#[test]
fn num_pages_beyond_ram_is_capped_and_counted() {
    let mut v = backed(Lie::NumPagesBeyondRam);
    v.follow_host();
    v.sync();
    v.sync();
    assert!(!v.is_broken());
    assert_eq!(v.lies(), 1, "a num_pages beyond RAM counts once per value");
    // The target the model got is at most its memory.
    let mut rows = String::new();
    v.inner().render(&mut rows).unwrap();
    let target: u64 = rows
        .lines()
        .find_map(|l| l.strip_prefix("target_bytes: "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(target <= RAM, "{rows}");
    books_intact(&v, 0);
}

#[test]
fn num_pages_changing_on_every_read_is_never_applied() {
    let mut v = backed(Lie::NumPagesChanging);
    v.follow_host();
    for t in 0..50 {
        v.sync();
        v.advance(t * 1000);
    }
    assert_eq!(v.lies(), 50, "every unsettled read counted");
    let mut rows = String::new();
    v.inner().render(&mut rows).unwrap();
    assert!(
        rows.contains("mode: auto"),
        "a flapping target was applied:\n{rows}"
    );
    books_intact(&v, 0);
}

#[test]
fn endless_statistics_requests_are_answered_at_a_bounded_rate() {
    let mut v = backed(Lie::EndlessStats);
    // Ten seconds of background passes, one every millisecond.
    for ms in 0..10_000u64 {
        v.advance(ms * 1000);
        v.report_stats(MemoryStats::default);
    }
    let reports = v.balloon().stats().stats_reports;
    let ceiling = 10_000_000 / super::STATS_MIN_INTERVAL_US + 1;
    assert!(reports <= ceiling && reports >= ceiling - 1, "{reports}");
    assert_eq!(v.device().regs().stats_received, reports);
    assert!(!v.is_broken());
}

/// The device with its notifies made "by another CPU": the kernel keeps a
/// window of buffers in flight and the device works only while the kernel
/// waits (`FakeRegs::async_kicks`).
fn backed_window(lie: Lie) -> Backed {
    let mut v = backed(lie);
    v.device_mut().regs_mut().async_kicks = true;
    v
}

#[test]
fn a_window_of_buffers_in_flight_keeps_the_books() {
    let mut v = backed_window(Lie::Honest);
    // 20 buffers' worth, a batch of 256 at a time, as the balloon's rounds loan.
    for b in 0..20u64 {
        v.set_page_states(&addrs(1000 + 256 * b..1256 + 256 * b), PageState::Loaned)
            .unwrap();
    }
    let window = crate::virtio_balloon::used::WINDOW;
    assert_eq!(v.device().regs().max_in_flight, window);
    assert!(v.device().in_flight() > 0, "nothing was left in flight");
    v.sync();
    assert_eq!(v.device().in_flight(), 0);
    let held: Vec<u32> = v.device().regs().held.iter().copied().collect();
    assert_eq!(held, loaned(&v));
    assert_eq!(v.device().regs().actual, 20 * 256);
    // Returns: the deflate queue waits for nothing on the inflate queue.
    for b in 0..10u64 {
        v.set_page_states(&addrs(1000 + 256 * b..1256 + 256 * b), PageState::Active)
            .unwrap();
    }
    v.sync();
    let held: Vec<u32> = v.device().regs().held.iter().copied().collect();
    assert_eq!(held, loaned(&v));
    assert_eq!(v.device().regs().actual, 10 * 256);
    books_intact(&v, 10 * 256);
    assert!(!v.is_broken());
}

/// A deterministic mix of batch loans, batch returns, allocations (a single
/// Active hint) and accesses with buffers in flight: a page is never handed
/// out or touched while the device holds it or has it in a buffer not yet
/// used, and the device ends holding exactly the loaned pages.
#[test]
fn no_page_leaves_the_free_list_while_a_buffer_holds_it() {
    let mut v = backed_window(Lie::Honest);
    let pages = 4096u64;
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut rnd = |n: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % n
    };
    for _ in 0..3000 {
        let base = 64 + rnd(pages - 320);
        let len = 1 + rnd(256);
        let batch = addrs(base..base + len);
        match rnd(4) {
            0 => {
                let free: Vec<u64> = batch
                    .into_iter()
                    .filter(|&a| !v.inner().is_loaned(a))
                    .collect();
                v.set_page_states(&free, PageState::Loaned).unwrap();
            }
            1 => {
                let lent: Vec<u64> = batch
                    .into_iter()
                    .filter(|&a| v.inner().is_loaned(a))
                    .collect();
                v.set_page_states(&lent, PageState::Active).unwrap();
            }
            2 => {
                // An allocation takes a page that is not loaned.
                if let Some(&a) = batch.iter().find(|&&a| !v.inner().is_loaned(a)) {
                    v.set_page_state(a, PageState::Active).unwrap();
                    let pfn = u32::try_from(a / 4096).unwrap();
                    assert!(
                        !v.device().regs().held.contains(&pfn),
                        "page {pfn} handed out while the device holds it"
                    );
                    assert_eq!(v.device().in_flight(), 0);
                }
            }
            _ => {
                let a = batch[0];
                if !v.inner().is_loaned(a) {
                    v.note_access(a);
                    let pfn = u32::try_from(a / 4096).unwrap();
                    assert!(
                        !v.device().regs().held.contains(&pfn),
                        "page {pfn} touched while the device holds it"
                    );
                }
            }
        }
    }
    v.sync();
    let held: Vec<u32> = v.device().regs().held.iter().copied().collect();
    assert_eq!(held, loaned(&v));
    assert!(
        v.device().regs().max_in_flight > 1,
        "never more than one buffer in flight"
    );
    assert!(!v.is_broken());
}

#[test]
fn every_lie_with_several_buffers_in_flight_stops_the_device() {
    for (lie, queue) in [
        (Lie::UnknownId, Queue::Inflate),
        (Lie::SameIdTwice, Queue::Inflate),
        (Lie::LenBeyondBuffer, Queue::Inflate),
        (Lie::IndexJump, Queue::Inflate),
        (Lie::NeverUses, Queue::Inflate),
    ] {
        let mut v = backed_window(lie);
        for b in 0..4u64 {
            v.set_page_states(&addrs(100 + 256 * b..356 + 256 * b), PageState::Loaned)
                .unwrap();
        }
        v.advance(1);
        v.sync();
        match v.device().stopped() {
            Some(DeviceError::Violation(Some(q), _)) | Some(DeviceError::Timeout(q)) => {
                assert_eq!(q, queue, "{lie:?}");
            }
            other => panic!("{lie:?}: stopped with {other:?}"),
        }
        if lie == Lie::NeverUses {
            let waited = v.device().regs().now_us();
            assert!((1_000_000..1_100_000).contains(&waited), "{waited}");
        }
        // Returns of pages the device may hold: the model takes them back,
        // nothing more reaches the device, the books stand.
        let notifies = v.device().regs().notifies;
        v.set_page_states(&addrs(100..1124), PageState::Active)
            .unwrap();
        v.sync();
        assert_eq!(
            v.device().regs().notifies,
            notifies,
            "{lie:?}: a stopped device was used"
        );
        assert_eq!(v.balloon().stats().errors, 1, "{lie:?}");
        books_intact(&v, 0);
    }
}
