//! Free page reporting's decision with a fake device and an oracle of every
//! frame: which blocks are reported, in what batches, never a loaned, allocated
//! or held one, reported again only after reuse; and a property test interleaving
//! allocations, frees, loans and reports that no frame is handed out while the
//! device holds it.

mod common;

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

use cmm::{FrameState, FreeReporter, Owner, ReportPoll, ReportRange, Workload};
use common::{Content, Request, World};
use hcall::PageState;
use proptest::prelude::*;

const BLOCK: u64 = 512;
const BLOCK_BYTES: u64 = 2 << 20;

/// What the fake device saw.
#[derive(Default)]
struct DeviceBook {
    /// Pages the device holds now (a report in flight).
    held: BTreeSet<u64>,
    /// Every report it used, in order.
    used: Vec<Vec<ReportRange>>,
}

/// A reporting queue: takes up to `max` ranges, answers `busy` polls with Busy
/// before it uses a report, refuses or fails when told to. Using a report drops
/// the contents of its pages (they read back as zeros).
struct FakeDevice {
    book: Rc<RefCell<DeviceBook>>,
    pages: Rc<RefCell<common::PageBook>>,
    max: usize,
    busy: u32,
    busy_left: u32,
    refuse_next: bool,
    fail_next: bool,
    in_flight: Vec<ReportRange>,
}

impl FakeDevice {
    fn new(w: &World, max: usize) -> Self {
        FakeDevice {
            book: Rc::default(),
            pages: w.hv.book.clone(),
            max,
            busy: 0,
            busy_left: 0,
            refuse_next: false,
            fail_next: false,
            in_flight: Vec::new(),
        }
    }
}

fn pages_of(r: &ReportRange) -> impl Iterator<Item = u64> {
    (r.addr..r.addr + r.len).step_by(4096)
}

impl FreeReporter for FakeDevice {
    fn max_ranges(&self) -> usize {
        self.max
    }
    fn start(&mut self, ranges: &[ReportRange]) -> bool {
        assert!(
            self.in_flight.is_empty(),
            "a second report while one is in flight"
        );
        assert!(
            !ranges.is_empty() && ranges.len() <= self.max,
            "{} ranges",
            ranges.len()
        );
        if std::mem::take(&mut self.refuse_next) {
            return false;
        }
        let mut book = self.book.borrow_mut();
        for r in ranges {
            for p in pages_of(r) {
                assert!(book.held.insert(p), "page {p:#x} reported twice at once");
            }
        }
        self.in_flight = ranges.to_vec();
        self.busy_left = self.busy;
        true
    }
    fn poll(&mut self) -> ReportPoll {
        assert!(!self.in_flight.is_empty(), "polled with nothing in flight");
        if self.busy_left > 0 {
            self.busy_left -= 1;
            return ReportPoll::Busy;
        }
        let ranges = std::mem::take(&mut self.in_flight);
        let mut book = self.book.borrow_mut();
        for r in &ranges {
            for p in pages_of(r) {
                book.held.remove(&p);
            }
        }
        if std::mem::take(&mut self.fail_next) {
            return ReportPoll::Failed;
        }
        let mut pages = self.pages.borrow_mut();
        for p in ranges.iter().flat_map(pages_of) {
            pages.contents.insert(p, Content::Zero);
        }
        book.used.push(ranges);
        ReportPoll::Used
    }
}

/// The oracle: for every 2 MiB block, whether it has been reported and not
/// taken since (and so must not be reported again).
#[derive(Default)]
struct Oracle {
    reported: BTreeSet<u64>,
    reports_seen: usize,
    reused: u64,
}

impl Oracle {
    /// Checks every report the device used since the last call against the
    /// frame states, and records the blocks as reported.
    fn absorb(&mut self, w: &World, dev: &FakeDevice) {
        let book = dev.book.borrow();
        for report in &book.used[self.reports_seen..] {
            for r in report {
                assert_eq!(r.len, BLOCK_BYTES, "not a whole block");
                assert_eq!(r.addr % BLOCK_BYTES, 0, "not block-aligned");
                let block = r.addr / BLOCK_BYTES;
                assert!(
                    self.reported.insert(block),
                    "block {block} reported again without reuse"
                );
            }
        }
        self.reports_seen = book.used.len();
        let _ = w;
    }

    /// A block lost its reported mark when one of its frames stopped being free.
    fn note_taken(&mut self, w: &World) {
        let taken: Vec<u64> = self
            .reported
            .iter()
            .copied()
            .filter(|&b| {
                (b * BLOCK..(b + 1) * BLOCK)
                    .any(|p| w.mm.frames().state(p) != Some(FrameState::Free))
            })
            .collect();
        for b in taken {
            self.reported.remove(&b);
            self.reused += 1;
        }
    }

    /// The checks that hold after every step.
    fn check(&mut self, w: &World, dev: &FakeDevice) {
        self.note_taken(w);
        w.check_invariants();
        let frames = w.mm.frames();
        // Every page the device holds is held in the table: never free,
        // allocated or loaned.
        let held = dev.book.borrow().held.clone();
        for &p in &held {
            assert_eq!(
                frames.state(p / 4096),
                Some(FrameState::Reporting),
                "the device holds {p:#x}"
            );
        }
        // And the table holds nothing the device does not.
        let table_held: BTreeSet<u64> = frames
            .all_frames()
            .filter(|&p| frames.state(p) == Some(FrameState::Reporting))
            .map(|p| p * 4096)
            .collect();
        assert_eq!(table_held, held);
        // The reported blocks are exactly the oracle's.
        let c = frames.report_counts();
        assert_eq!(c.reported_blocks, self.reported.len() as u64);
        assert_eq!(c.reused_blocks, self.reused);
        for &b in &self.reported {
            assert_eq!(frames.report_flags(b * BLOCK), Some((true, false)));
        }
    }
}

fn report_all(w: &mut World, dev: &mut FakeDevice, o: &mut Oracle) -> u64 {
    let mut reports = 0;
    loop {
        let step = w.mm.report_step(dev, 1);
        reports += step.started;
        o.absorb(w, dev);
        o.check(w, dev);
        if !step.more {
            return reports;
        }
    }
}

/// Whole free blocks of the world, by block number.
fn whole_free_blocks(w: &World) -> BTreeSet<u64> {
    let blocks = w.mm.frames().counts().total.div_ceil(BLOCK) + 1;
    (0..blocks)
        .filter(|b| {
            (b * BLOCK..(b + 1) * BLOCK).all(|p| w.mm.frames().state(p) == Some(FrameState::Free))
        })
        .collect()
}

#[test]
fn whole_free_blocks_are_reported_in_full_batches_once() {
    // 64 MiB, the first 16 frames reserved: block 0 is never whole.
    let mut w = World::new(16384, 16, 0);
    let mut dev = FakeDevice::new(&w, 4);
    let mut o = Oracle::default();
    let want = whole_free_blocks(&w);
    assert_eq!(want.len(), 31);
    assert_eq!(report_all(&mut w, &mut dev, &mut o), 8);
    let sizes: Vec<usize> = dev.book.borrow().used.iter().map(Vec::len).collect();
    assert_eq!(
        sizes,
        [4, 4, 4, 4, 4, 4, 4, 3],
        "as many ranges as the queue takes"
    );
    assert_eq!(o.reported, want);
    assert_eq!(w.mm.report_stats().reports, 8);
    assert_eq!(w.mm.report_stats().ranges, 31);
    assert_eq!(w.mm.frames().report_counts().reported_blocks, 31);
    // Nothing new: no report, and no search either.
    assert!(!w.mm.frames().report_wanted());
    assert_eq!(report_all(&mut w, &mut dev, &mut o), 0);

    // Allocate a little: the blocks touched are reused, the rest stay reported.
    w.alloc(600, Workload::Working).unwrap();
    o.check(&w, &dev);
    let reused = w.mm.frames().report_counts().reused_blocks;
    assert!((1..=3).contains(&reused), "{reused}");
    assert_eq!(
        report_all(&mut w, &mut dev, &mut o),
        0,
        "nothing whole was freed"
    );
    // Allocation hands out initialised memory, even from reported (dropped) pages.
    assert_eq!(w.verify().corrupt_pages, 0);
    w.check_contents(&[]);
    // Free: the reused blocks are whole again and reported again, once.
    w.free(None, Workload::Working).unwrap();
    o.check(&w, &dev);
    assert_eq!(report_all(&mut w, &mut dev, &mut o), 1);
    assert_eq!(o.reported, whole_free_blocks(&w));
}

#[test]
fn loaned_and_allocated_blocks_are_never_reported() {
    let mut w = World::new(8192, 0, 0);
    let mut dev = FakeDevice::new(&w, 32);
    let mut o = Oracle::default();
    // Loan 3 MiB (one whole block, half of another), hold a kernel page in a third.
    w.hv.request = Request::LoanPages(768);
    w.poll();
    assert_eq!(w.loaned(), 768);
    let kpage =
        w.mm.alloc_page(Owner::Kernel, &mut w.hv, &mut w.mem)
            .unwrap();
    report_all(&mut w, &mut dev, &mut o);
    let reported: BTreeSet<u64> = o.reported.clone();
    assert_eq!(reported, whole_free_blocks(&w));
    for p in w.mm.frames().iter(cmm::FrameSet::Loaned) {
        assert!(
            !reported.contains(&(p / BLOCK)),
            "loaned frame {p} reported"
        );
    }
    assert!(!reported.contains(&(kpage / 4096 / BLOCK)));
    assert!((13..=14).contains(&reported.len()), "{}", reported.len());

    // Loaning takes a reported block: it is reused, not reported again until free.
    w.hv.request = Request::LoanPages(768 + 512);
    w.poll();
    o.check(&w, &dev);
    assert_eq!(o.reused, 1);
    // Returning it makes it whole and free: reported again.
    w.hv.request = Request::LoanPages(768);
    w.poll();
    w.poll();
    o.check(&w, &dev);
    assert_eq!(report_all(&mut w, &mut dev, &mut o), 1);
    assert_eq!(o.reported, whole_free_blocks(&w));
    assert_eq!(o.reported.len(), reported.len());
}

#[test]
fn a_held_block_is_withheld_from_allocation_until_the_device_used_it() {
    // 4 MiB, 8 reserved frames: block 0 has 504 free frames, block 1 is whole.
    let mut w = World::new(1024, 8, 0);
    let mut dev = FakeDevice::new(&w, 8);
    dev.busy = 3;
    let mut o = Oracle::default();
    let step = w.mm.report_step(&mut dev, 4);
    assert_eq!((step.started, step.finished, step.more), (1, 0, true));
    o.check(&w, &dev);
    assert_eq!(w.mm.frames().counts().reporting, 512);
    // Every free frame can still be allocated, and none of them is held.
    w.alloc(504, Workload::Working).unwrap();
    o.check(&w, &dev);
    // Then memory is short while the report is in flight: the allocation fails
    // (the held block is not handed out) and nothing changes.
    assert!(w.alloc(1, Workload::Working).is_err());
    o.check(&w, &dev);
    assert_eq!(w.mm.report_step(&mut dev, 4).finished, 0);
    assert_eq!(w.mm.report_step(&mut dev, 4).finished, 0);
    let step = w.mm.report_step(&mut dev, 4);
    assert_eq!((step.finished, step.more), (1, false));
    o.absorb(&w, &dev);
    o.check(&w, &dev);
    assert_eq!(w.mm.frames().counts().reporting, 0);
    // Now the block is free again, and reported.
    w.alloc(512, Workload::Working).unwrap();
    o.check(&w, &dev);
    assert_eq!(o.reused, 1);
    assert_eq!(w.verify().corrupt_pages, 0);
    w.check_contents(&[]);
}

#[test]
fn a_refused_or_failed_report_leaves_the_blocks_free_and_unreported() {
    let mut w = World::new(4096, 0, 0);
    let mut dev = FakeDevice::new(&w, 2);
    let mut o = Oracle::default();
    dev.refuse_next = true;
    let step = w.mm.report_step(&mut dev, 1);
    assert_eq!((step.started, step.finished), (1, 1));
    o.check(&w, &dev);
    assert_eq!(w.mm.frames().counts().free, 4096);
    assert_eq!(w.mm.report_stats().failures, 1);
    dev.fail_next = true;
    w.mm.report_step(&mut dev, 1);
    o.check(&w, &dev);
    assert_eq!(w.mm.report_stats().failures, 2);
    assert_eq!(w.mm.frames().report_counts().reported_blocks, 0);
    // The blocks are tried again.
    assert_eq!(report_all(&mut w, &mut dev, &mut o), 4);
    assert_eq!(o.reported.len(), 8);
}

#[test]
fn a_device_without_room_gets_nothing() {
    let mut w = World::new(4096, 0, 0);
    let mut dev = FakeDevice::new(&w, 0);
    let step = w.mm.report_step(&mut dev, 8);
    assert_eq!(step.started, 0);
    assert_eq!(w.mm.frames().counts().free, 4096);
}

/// One step of the property test.
#[derive(Clone, Debug)]
enum Op {
    Alloc(u64),
    Free(u64),
    Kernel,
    FreeKernel,
    Loan(u64),
    Report(u64),
    Busy(u32),
    FailNext,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (1u64..1200).prop_map(Op::Alloc),
        (1u64..1200).prop_map(Op::Free),
        Just(Op::Kernel),
        Just(Op::FreeKernel),
        (0u64..2000).prop_map(Op::Loan),
        (1u64..4).prop_map(Op::Report),
        (0u32..3).prop_map(Op::Busy),
        Just(Op::FailNext),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn no_frame_is_handed_out_while_the_device_holds_it(
        ops in proptest::collection::vec(op(), 1..40),
        max in 1usize..6,
    ) {
        // 16 MiB, 40 frames reserved.
        let mut w = World::new(4096, 40, 0);
        let dev = Rc::new(RefCell::new(FakeDevice::new(&w, max)));
        // An allocation that finds nothing free while a report holds frames
        // waits for that report (the device uses it after its busy polls).
        let d = dev.clone();
        w.hv.report_wait = Some(Box::new(move || loop {
            match d.borrow_mut().poll() {
                ReportPoll::Busy => continue,
                ReportPoll::Used => return Some(true),
                ReportPoll::Failed => return Some(false),
            }
        }));
        let mut o = Oracle::default();
        let mut kernel: Vec<u64> = Vec::new();
        let mut handed_out: BTreeMap<u64, &'static str> = BTreeMap::new();
        for op in ops {
            match op {
                Op::Alloc(n) => {
                    let _ = w.alloc(n, Workload::Working);
                }
                Op::Free(n) => {
                    let held = w.mm.frames().counts().workload;
                    let _ = w.free(Some(n.min(held)), Workload::Working);
                }
                Op::Kernel => {
                    if let Ok(a) = w.mm.alloc_page(Owner::Kernel, &mut w.hv, &mut w.mem) {
                        kernel.push(a);
                    }
                }
                Op::FreeKernel => {
                    if let Some(a) = kernel.pop() {
                        w.mm.free_page(a, &mut w.hv).unwrap();
                    }
                }
                Op::Loan(n) => {
                    w.hv.request = Request::LoanPages(n);
                    w.poll();
                }
                Op::Report(n) => {
                    w.mm.report_step(&mut *dev.borrow_mut(), n);
                }
                Op::Busy(n) => dev.borrow_mut().busy = n,
                Op::FailNext => dev.borrow_mut().fail_next = true,
            }
            o.absorb(&w, &dev.borrow());
            o.check(&w, &dev.borrow());
            // Everything handed out (allocated or loaned) is not held.
            handed_out.clear();
            for p in w.mm.frames().all_frames() {
                match w.mm.frames().state(p) {
                    Some(FrameState::Used(_)) => { handed_out.insert(p, "used"); }
                    Some(FrameState::Loaned) => { handed_out.insert(p, "loaned"); }
                    _ => {}
                }
            }
            let held = dev.borrow().book.borrow().held.clone();
            for p in held {
                prop_assert!(!handed_out.contains_key(&(p / 4096)), "{p:#x} handed out while held");
            }
            w.check_contents(&kernel);
        }
        // Let the device finish: nothing stays held, every whole free block ends up reported.
        dev.borrow_mut().busy = 0;
        report_all(&mut w, &mut dev.borrow_mut(), &mut o);
        prop_assert_eq!(w.mm.frames().counts().reporting, 0);
        prop_assert_eq!(&o.reported, &whole_free_blocks(&w));
        prop_assert_eq!(w.verify().corrupt_pages, 0);
    }
}

/// Runs the hint transport until it has nothing more to do; returns the
/// page-state calls it made.
fn report_hints_all(w: &mut World) -> u64 {
    let calls = w.hv.page_state_calls;
    for _ in 0..10_000 {
        let step = w.mm.report_hints_step(&mut w.hv, 1);
        assert!(!w.mm.report_in_flight(), "the hint transport holds nothing");
        w.check_invariants();
        if !step.more {
            return w.hv.page_state_calls - calls;
        }
    }
    panic!("the hint transport never settled");
}

/// The same decision over the other transport: page-usage hints (H_PAGE_INIT
/// Unused for every page of a whole free block), as on PowerVM and the pool
/// model. Nothing before the Unused walk after boot is through; then the free
/// blocks count as reported (the walk hinted them); a block whole and free
/// again after reuse is hinted once, two blocks a report; a refused hint fails
/// the report (its blocks stay free and unreported) and turns the transport off.
#[test]
fn the_hint_transport_reports_whole_blocks_freed_after_reuse() {
    let mut w = World::new(16384, 16, 0);
    assert!(w.mm.unused_hints_pending());
    assert_eq!(report_hints_all(&mut w), 0, "not before the walk");
    while w.mm.unused_hints_pending() {
        w.mm.hint_unused_step(&mut w.hv, 1024);
    }
    assert_eq!(report_hints_all(&mut w), 0, "the walk hinted everything");
    assert_eq!(w.mm.frames().report_counts().reported_blocks, 31);
    assert_eq!(w.mm.report_stats().reports, 0);

    // Reuse some blocks, free them again: each whole block is hinted once more.
    w.alloc(1500, Workload::Working).unwrap();
    let reused = w.mm.frames().report_counts().reused_blocks;
    assert!((2..=5).contains(&reused), "{reused}");
    w.free(None, Workload::Working).unwrap();
    let whole_again: BTreeSet<u64> = whole_free_blocks(&w)
        .into_iter()
        .filter(|&b| w.mm.frames().report_flags(b * BLOCK) == Some((false, false)))
        .collect();
    assert_eq!(whole_again.len() as u64, reused);
    // Pretend the frees' own hints were lost: the report sets them again.
    for &b in &whole_again {
        for p in b * BLOCK..(b + 1) * BLOCK {
            w.hv.book
                .borrow_mut()
                .states
                .insert(p * 4096, PageState::Active);
        }
    }
    assert_eq!(report_hints_all(&mut w), reused * BLOCK);
    assert_eq!(w.mm.report_stats().reports, reused.div_ceil(2));
    assert_eq!(w.mm.report_stats().ranges, reused);
    for &b in &whole_again {
        assert_eq!(w.mm.frames().report_flags(b * BLOCK), Some((true, false)));
        for p in b * BLOCK..(b + 1) * BLOCK {
            assert_eq!(w.hv.book.borrow().state(p * 4096), PageState::Unused);
        }
    }
    assert_eq!(w.mm.frames().counts().free, w.mm.frames().counts().total);

    // A hypervisor that refuses a hint: the report fails, nothing is lost,
    // and the transport is not used again.
    w.alloc(600, Workload::Working).unwrap();
    w.free(None, Workload::Working).unwrap();
    w.hv.fail_page_state = 1;
    w.hv.pass_before_fail = 100;
    let calls = report_hints_all(&mut w);
    assert_eq!(calls, 101, "stopped at the refused hint");
    assert_eq!(w.mm.report_stats().failures, 1);
    assert_eq!(w.mm.frames().counts().reporting, 0);
    assert_eq!(w.mm.frames().counts().free, w.mm.frames().counts().total);
    assert_eq!(report_hints_all(&mut w), 0, "the transport is off");
    w.check_invariants();
}

/// The device's side of `wait_report`: busy for a few more polls, then it
/// uses the report; every wait is for the one report in flight.
fn device_wait(dev: &Rc<RefCell<FakeDevice>>) -> Box<dyn FnMut() -> Option<bool>> {
    let d = dev.clone();
    Box::new(move || {
        let mut d = d.borrow_mut();
        d.busy_left = d.busy_left.min(3);
        loop {
            match d.poll() {
                ReportPoll::Busy => continue,
                ReportPoll::Used => return Some(true),
                ReportPoll::Failed => return Some(false),
            }
        }
    })
}

/// An allocation that finds every free frame held by a report in flight waits
/// for that report only (through the backend's `wait_report`), then takes a
/// frame of it; no frame is handed out while the device holds it. With a
/// frame free elsewhere it does not wait at all.
#[test]
fn an_allocation_waits_only_for_the_report_holding_its_frames() {
    // 16 MiB, 16 frames reserved: block 0 has 496 free frames, 7 whole blocks.
    let mut w = World::new(4096, 16, 0);
    let dev = Rc::new(RefCell::new(FakeDevice::new(&w, 8)));
    dev.borrow_mut().busy = u32::MAX;
    let step = w.mm.report_step(&mut *dev.borrow_mut(), 1);
    assert_eq!(step.started, 1);
    assert!(w.mm.report_in_flight());
    assert_eq!(w.mm.frames().counts().reporting, 7 * BLOCK);
    // The device: busy for a few more polls, then it uses the report; every
    // wait is for this one report.
    w.hv.report_wait = Some(device_wait(&dev));
    // The fragment of block 0 first: no wait.
    let mut held_then = Vec::new();
    for _ in 0..496 {
        let a =
            w.mm.alloc_page(Owner::Kernel, &mut w.hv, &mut w.mem)
                .unwrap();
        assert!(!dev.borrow().book.borrow().held.contains(&a));
        held_then.push(a);
    }
    assert_eq!(w.hv.report_waits, 0, "waited with frames free");
    // The next one: only the report's blocks are left.
    let a =
        w.mm.alloc_page(Owner::Kernel, &mut w.hv, &mut w.mem)
            .unwrap();
    assert_eq!(w.hv.report_waits, 1);
    assert!(dev.borrow().book.borrow().held.is_empty());
    assert!(!w.mm.report_in_flight());
    assert!(a >= BLOCK_BYTES, "{a:#x}");
    assert_eq!(w.mm.report_stats().reports, 1);
    // The page came back zero from the host and is initialised anyway.
    assert_eq!(w.verify().corrupt_pages, 0);
    w.check_invariants();
    // Nothing in flight and nothing free: no wait, the OOM chain's answer.
    for _ in 0..(7 * BLOCK - 1) {
        w.mm.alloc_page(Owner::Kernel, &mut w.hv, &mut w.mem)
            .unwrap();
    }
    assert!(w
        .mm
        .alloc_page(Owner::Kernel, &mut w.hv, &mut w.mem)
        .is_err());
    assert_eq!(w.hv.report_waits, 1, "waited with no report in flight");
    w.check_invariants();
}

/// The kernel's general path through a per-CPU cache waits for the report
/// the same way: a refill that finds the table empty (and the other caches
/// too) waits for the report in flight before the OOM chain, and no frame the
/// device holds is handed out.
#[test]
fn an_allocation_through_a_cache_waits_for_the_report_before_the_oom_chain() {
    let mut w = World::new(4096, 16, 0);
    let dev = Rc::new(RefCell::new(FakeDevice::new(&w, 8)));
    dev.borrow_mut().busy = u32::MAX;
    assert_eq!(w.mm.report_step(&mut *dev.borrow_mut(), 1).started, 1);
    w.hv.report_wait = Some(device_wait(&dev));
    let mut caches = vec![cmm::FrameCache::new(), cmm::FrameCache::new()];
    for _ in 0..497 {
        let cpu = cmm::percpu::OnCpu {
            caches: &mut caches,
            me: 1,
        };
        let a =
            w.mm.alloc_page_cached(cpu, Owner::Kernel, &mut w.hv, &mut w.mem)
                .unwrap();
        assert!(!dev.borrow().book.borrow().held.contains(&a));
    }
    assert_eq!(w.hv.report_waits, 1);
    assert!(!w.mm.report_in_flight());
    assert_eq!(
        w.mm.stats().oom_events,
        0,
        "the OOM chain ran before the wait"
    );
    w.check_invariants();
}
