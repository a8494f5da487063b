//! Per-CPU frame caches and the frame table under random interleavings: a
//! deterministic scheduler runs four "CPUs" and the balloon over the real code
//! (`FrameCache`, `Mm::refill_cache`, `Mm::drain_cache`,
//! `Mm::step_with_caches`), one locked step at a time in a seeded random
//! order, as the kernel's locks make them run (docs/smp.md), while an
//! independent oracle follows every frame. After every step: no frame is lost,
//! duplicated, loaned while cached or held, or used while loaned; the books are
//! exact. The balloon still reaches frames that sit in caches, and a refill
//! that finds the table empty takes the other caches' frames before the OOM
//! notifier runs.
//!
//! The kernel's general allocation goes through the same caches
//! (`Mm::alloc_page_cached`, `Mm::free_page_cached`, the workload's cached
//! variants): a second scheduler runs it with every owner, frees on another CPU
//! than the one that allocated, the background hint walk and free page
//! reporting interleaved, and the same oracle: no cached or allocated frame is
//! ever hinted Unused or reported.

// Random indices are small; truncating u64 to usize is harmless here.
#![allow(clippy::cast_possible_truncation)]

mod common;

use std::collections::{BTreeSet, HashMap};

use cmm::memory::workload_seed;
use cmm::percpu::{cached_free, OnCpu, CACHE_BATCH, CACHE_HIGH};
use cmm::{
    FrameCache, FrameSet, FrameState, FreeReporter, Owner, PageMemory, ReportPoll, ReportRange,
    Workload,
};
use common::{Request, World};
use hcall::PageState;
use powervm_sim::rng::Rng;

const CPUS: usize = 4;
const FRAMES: u64 = 4096;

/// Where the oracle believes a frame is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum At {
    Free,
    Loaned,
    Cached(usize),
    Held(usize),
}

/// The loan request's next step of a random walk (as `stress` drives `hv target`).
fn walk(want: u64, rng: &mut Rng) -> u64 {
    (want + rng.below(512))
        .saturating_sub(rng.below(512))
        .min(FRAMES)
}

struct Sim {
    w: World,
    caches: Vec<FrameCache>,
    held: Vec<Vec<u64>>,
    oracle: HashMap<u64, At>,
    /// Frames may be freed on another CPU than the one that took them (the
    /// general path): a cache's count of frames handed out is then not its
    /// CPU's holding.
    cross_cpu: bool,
}

/// The caches but `me`, as `refill_cache` takes them.
fn others(caches: &mut [FrameCache], me: usize) -> (&mut FrameCache, Vec<&mut FrameCache>) {
    let (a, b) = caches.split_at_mut(me);
    let (mine, rest) = b.split_first_mut().unwrap();
    (mine, a.iter_mut().chain(rest.iter_mut()).collect())
}

impl Sim {
    fn new(min_mem_mb: u64) -> Sim {
        let w = World::new(FRAMES, 16, min_mem_mb);
        let oracle =
            w.mm.frames()
                .iter(FrameSet::Free)
                .map(|pfn| (pfn * 4096, At::Free))
                .collect();
        Sim {
            w,
            caches: (0..CPUS).map(|_| FrameCache::new()).collect(),
            held: vec![Vec::new(); CPUS],
            oracle,
            cross_cpu: false,
        }
    }

    fn move_frame(&mut self, addr: u64, from: At, to: At) {
        let at = self.oracle.get_mut(&addr).expect("a managed frame");
        assert_eq!(*at, from, "frame {addr:#x} moved {from:?} -> {to:?}");
        *at = to;
    }

    /// Frames that left cache `i` since `before` went back to the table.
    fn note_drained(&mut self, i: usize, before: &[u64]) {
        let now: BTreeSet<u64> = self.caches[i].free_frames().iter().copied().collect();
        for &a in before {
            if !now.contains(&a) {
                self.move_frame(a, At::Cached(i), At::Free);
            }
        }
    }

    fn snapshot(&self) -> Vec<Vec<u64>> {
        self.caches
            .iter()
            .map(|c| c.free_frames().to_vec())
            .collect()
    }

    /// Frames the table's free and loaned sets gained or lost outside the CPUs.
    fn note_balloon(&mut self, before: &[Vec<u64>]) {
        for (i, b) in before.iter().enumerate() {
            self.note_drained(i, b);
        }
        let loaned: BTreeSet<u64> = self
            .w
            .mm
            .frames()
            .iter(FrameSet::Loaned)
            .map(|p| p * 4096)
            .collect();
        let addrs: Vec<u64> = self.oracle.keys().copied().collect();
        for a in addrs {
            match (self.oracle[&a], loaned.contains(&a)) {
                (At::Free, true) => self.move_frame(a, At::Free, At::Loaned),
                (At::Loaned, false) => self.move_frame(a, At::Loaned, At::Free),
                (At::Cached(_) | At::Held(_), true) => {
                    panic!("frame {a:#x} loaned while {:?}", self.oracle[&a])
                }
                _ => {}
            }
        }
    }

    /// CPU `i` allocates one page: from its cache, refilled (under the memory
    /// manager's lock) when empty; fills it with its pattern.
    fn cpu_alloc(&mut self, i: usize) {
        if self.caches[i].free_len() == 0 {
            // Others drained first (table empty), then maybe the OOM chain.
            self.refill(i);
        }
        if let Some(a) = self.caches[i].take() {
            self.move_frame(a, At::Cached(i), At::Held(i));
            self.w.mem.fill(a, workload_seed(a));
            self.held[i].push(a);
        }
    }

    /// CPU `i` frees a random page it holds, checking its pattern first; gives
    /// a batch back to the table when the cache is over its high mark.
    fn cpu_free(&mut self, i: usize, rng: &mut Rng) {
        if self.held[i].is_empty() {
            return;
        }
        let k = rng.below(self.held[i].len() as u64) as usize;
        let a = self.held[i].swap_remove(k);
        assert!(self.w.mem.check(a, workload_seed(a)), "page {a:#x} corrupt");
        self.caches[i].put(a).unwrap();
        self.move_frame(a, At::Held(i), At::Cached(i));
        if self.caches[i].over_high() {
            let before = self.caches[i].free_frames().to_vec();
            let n = self
                .w
                .mm
                .drain_cache(&mut self.caches[i], CACHE_BATCH, &mut self.w.hv);
            assert_eq!(n, CACHE_BATCH);
            self.note_drained(i, &before);
            assert!(self.caches[i].free_len() <= CACHE_HIGH);
        }
    }

    /// The balloon's round with a loan request that moves.
    fn balloon(&mut self, want: u64) {
        self.w.hv.request = Request::LoanPages(want);
        self.w.now_ms += self.w.mm.params().delay_ms();
        let before = self.snapshot();
        let mut refs: Vec<&mut FrameCache> = self.caches.iter_mut().collect();
        self.w
            .mm
            .step_with_caches(self.w.now_ms, &mut refs, &mut self.w.hv, &mut self.w.mem);
        self.note_balloon(&before);
    }

    /// Runs 1500 scheduler steps of `op`, checking the oracle every 25 and at
    /// the end.
    fn run(&mut self, rng: &mut Rng, mut op: impl FnMut(&mut Sim, &mut Rng)) {
        for step in 0..1500 {
            op(self, rng);
            if step % 25 == 0 {
                self.check();
            }
        }
        self.check();
    }

    /// Every CPU gives back what it holds (`free` frees one of CPU i's pages)
    /// and drains its cache; the oracle is checked.
    fn give_all_back(&mut self, rng: &mut Rng, free: impl Fn(&mut Sim, usize, &mut Rng)) {
        for i in 0..CPUS {
            while !self.held[i].is_empty() {
                free(self, i, rng);
            }
            self.drain_all(i);
        }
        self.check();
    }

    /// Gives every free frame of cache `i` back to the table.
    fn drain_all(&mut self, i: usize) {
        let before = self.caches[i].free_frames().to_vec();
        let len = before.len();
        self.w
            .mm
            .drain_cache(&mut self.caches[i], len, &mut self.w.hv);
        self.note_drained(i, &before);
    }

    /// Everything the oracle knows, against the table, the caches and the books.
    fn check(&self) {
        self.w.check_invariants();
        let t = self.w.mm.frames();
        let mut seen = BTreeSet::new();
        for (i, c) in self.caches.iter().enumerate() {
            for &a in c.free_frames() {
                assert!(seen.insert(a), "frame {a:#x} in two places");
                assert_eq!(self.oracle[&a], At::Cached(i));
            }
            for &a in &self.held[i] {
                assert!(seen.insert(a), "frame {a:#x} in two places");
                assert_eq!(self.oracle[&a], At::Held(i));
            }
            if !self.cross_cpu {
                assert_eq!(c.held(), self.held[i].len() as u64);
            }
        }
        let mut cached_or_held = 0u64;
        let book = self.w.hv.book.borrow();
        for (&a, &at) in &self.oracle {
            let st = t.state(a / 4096).unwrap();
            match at {
                At::Free => assert!(
                    matches!(st, FrameState::Free | FrameState::Reporting),
                    "{a:#x}: {st:?}"
                ),
                At::Loaned => assert_eq!(st, FrameState::Loaned, "{a:#x}"),
                At::Cached(_) => {
                    cached_or_held += 1;
                    assert_eq!(st, FrameState::Used(Owner::Kernel), "{a:#x}");
                }
                At::Held(_) => {
                    cached_or_held += 1;
                    assert!(matches!(st, FrameState::Used(_)), "{a:#x}: {st:?}");
                }
            }
            if matches!(at, At::Cached(_) | At::Held(_)) {
                assert_eq!(
                    book.state(a),
                    PageState::Active,
                    "cached or allocated frame {a:#x} hinted otherwise ({at:?})"
                );
            }
        }
        drop(book);
        let c = t.counts();
        assert_eq!(c.used, cached_or_held, "used frames are exactly the CPUs'");
        assert_eq!(c.total, c.free + c.used + c.loaned + c.reporting);
        assert_eq!(
            self.oracle.len() as u64,
            c.total,
            "no frame lost or invented"
        );
        let book = self.w.hv.book.borrow();
        assert_eq!(book.writes_to_loaned, 0, "a loaned page was written");
        assert_eq!(book.touched_loaned, 0, "a loaned page was touched");
    }
}

#[test]
fn random_interleavings_lose_duplicate_or_loan_no_cached_frame() {
    for seed in 1..=48u64 {
        let mut rng = Rng::new(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let mut sim = Sim::new(4);
        let mut want = 0u64;
        sim.run(&mut rng, |sim, rng| match rng.below(10) {
            0 => {
                // The target random-walks (as `stress` drives `hv target`).
                want = walk(want, rng);
                sim.balloon(want);
            }
            1..=5 => sim.cpu_alloc(rng.below(CPUS as u64) as usize),
            _ => sim.cpu_free(rng.below(CPUS as u64) as usize, rng),
        });
        // Everything back: caches drained, books as at boot but for the loan.
        sim.give_all_back(&mut rng, |sim, i, rng| sim.cpu_free(i, rng));
        assert_eq!(sim.w.mm.frames().counts().used, 0, "seed {seed}");
    }
}

#[test]
fn the_balloon_reaches_frames_sitting_in_caches() {
    let mut sim = Sim::new(1);
    // Every CPU takes frames until the table has few free ones left.
    sim.fill_caches_until(200);
    let cached: usize = sim.caches.iter().map(FrameCache::free_len).sum();
    assert!(cached > 3000, "{cached}");
    let m = sim.w.mm.meminfo_with(cached as u64);
    assert_eq!(
        m.mem_free_kb,
        (sim.w.mm.frames().counts().free + cached as u64) * 4,
        "cached frames count as free"
    );
    // A loan larger than the table's free frames: reached in one round.
    sim.balloon(2000);
    assert_eq!(sim.w.loaned(), 2000);
    assert_eq!(sim.w.target(), 2000);
    sim.check();
}

#[test]
fn an_empty_table_takes_other_caches_before_the_oom_notifier() {
    let mut sim = Sim::new(1);
    sim.balloon(1000);
    assert_eq!(sim.w.loaned(), 1000);
    // CPU 1 takes every free frame into its cache.
    loop {
        let before = sim.snapshot();
        let (mine, mut rest) = others(&mut sim.caches, 1);
        let free = sim.w.mm.frames().counts().free as usize;
        if free == 0 {
            break;
        }
        let got = sim.w.mm.refill_cache(
            mine,
            free.min(512),
            &mut rest,
            &mut sim.w.hv,
            &mut sim.w.mem,
        );
        let added: Vec<u64> = sim.caches[1].free_frames()[before[1].len()..].to_vec();
        assert_eq!(added.len(), got);
        for a in added {
            sim.move_frame(a, At::Free, At::Cached(1));
        }
    }
    sim.check();
    // CPU 0 allocates: CPU 1's free frames come back first; no OOM, no return.
    let oom_before = sim.w.mm.stats().oom_events;
    sim.cpu_alloc(0);
    assert_eq!(sim.caches[1].free_len(), 0);
    assert_eq!(sim.w.mm.stats().oom_events, oom_before);
    assert_eq!(sim.w.loaned(), 1000);
    sim.check();
    // Now everything is held: the next empty refill runs the OOM notifier,
    // which gives loaned pages back, as one CPU would.
    while sim.caches[0].free_len() > 0 || sim.w.mm.frames().counts().free > 0 {
        sim.cpu_alloc(0);
    }
    sim.cpu_alloc(0);
    assert_eq!(sim.w.mm.stats().oom_events, oom_before + 1);
    assert!(sim.w.loaned() < 1000);
    sim.check();
}

/// A free page reporting device that uses every report at its next poll,
/// checking with the oracle's eyes (the frame table's state) that every page
/// it is given is free, never cached, allocated or loaned.
#[derive(Default)]
struct Reporter {
    in_flight: Vec<ReportRange>,
    reported_pages: u64,
}

impl FreeReporter for Reporter {
    fn max_ranges(&self) -> usize {
        2
    }
    fn start(&mut self, ranges: &[ReportRange]) -> bool {
        assert!(self.in_flight.is_empty());
        self.in_flight = ranges.to_vec();
        true
    }
    fn poll(&mut self) -> ReportPoll {
        if self.in_flight.is_empty() {
            return ReportPoll::Busy;
        }
        for r in self.in_flight.drain(..) {
            self.reported_pages += r.len / 4096;
        }
        ReportPoll::Used
    }
}

/// What one general allocation or free did to the caches, told to the oracle:
/// frames that left a cache other than `mine` went back to the table; frames
/// that appeared in `mine` came from the table.
impl Sim {
    fn note_refill(&mut self, mine: usize, before: &[Vec<u64>], taken: Option<u64>) {
        for (j, b) in before.iter().enumerate() {
            if j != mine {
                self.note_drained(j, b);
            }
        }
        self.note_balloon(&[]);
        let was: BTreeSet<u64> = before[mine].iter().copied().collect();
        let now: Vec<u64> = self.caches[mine].free_frames().to_vec();
        for &a in &now {
            if !was.contains(&a) {
                self.move_frame(a, At::Free, At::Cached(mine));
            }
        }
        if let Some(a) = taken {
            if was.contains(&a) {
                self.move_frame(a, At::Cached(mine), At::Held(mine));
            } else {
                // Refilled and taken in the same call.
                self.move_frame(a, At::Free, At::Held(mine));
            }
        }
    }

    /// CPU `i` refills its cache with a batch (the other caches drained first
    /// when the table is empty, then maybe the OOM chain), told to the oracle.
    fn refill(&mut self, i: usize) {
        let before = self.snapshot();
        let (mine, mut rest) = others(&mut self.caches, i);
        let got = self.w.mm.refill_cache(
            mine,
            CACHE_BATCH,
            &mut rest,
            &mut self.w.hv,
            &mut self.w.mem,
        );
        self.note_refill(i, &before, None);
        assert_eq!(self.caches[i].free_len(), before[i].len() + got);
    }

    /// Every CPU refills its cache a batch at a time, in turn, until the table
    /// has at most `left` free frames.
    fn fill_caches_until(&mut self, left: u64) {
        while self.w.mm.frames().counts().free > left {
            for i in 0..CPUS {
                self.refill(i);
            }
        }
    }

    /// CPU `i` takes a page for `owner` on the general path.
    fn gen_alloc(&mut self, i: usize, owner: Owner) {
        let before = self.snapshot();
        let cpu = OnCpu {
            caches: &mut self.caches,
            me: i,
        };
        let got = self
            .w
            .mm
            .alloc_page_cached(cpu, owner, &mut self.w.hv, &mut self.w.mem);
        self.note_refill(i, &before, got.as_ref().ok().copied());
        if let Ok(a) = got {
            assert!(self.w.mem.is_zero(a), "page {a:#x} handed out unzeroed");
            assert_eq!(self.w.mm.frames().owner(a / 4096).unwrap(), owner);
            self.w.mem.fill(a, workload_seed(a));
            self.held[i].push(a);
        }
    }

    /// CPU `i` frees a random page held by any CPU on the general path.
    fn gen_free(&mut self, i: usize, rng: &mut Rng) {
        let from = rng.below(CPUS as u64) as usize;
        if self.held[from].is_empty() {
            return;
        }
        let k = rng.below(self.held[from].len() as u64) as usize;
        self.free_held(i, from, k);
    }

    /// CPU `i` frees page `k` of those CPU `from` holds, on the general path.
    fn free_held(&mut self, i: usize, from: usize, k: usize) {
        let a = self.held[from].swap_remove(k);
        assert!(self.w.mem.check(a, workload_seed(a)), "page {a:#x} corrupt");
        let before = self.caches[i].free_frames().to_vec();
        let cpu = OnCpu {
            caches: &mut self.caches,
            me: i,
        };
        self.w.mm.free_page_cached(cpu, a, &mut self.w.hv).unwrap();
        self.move_frame(a, At::Held(from), At::Cached(i));
        // A drain gives the oldest frames back; `a` may be among them.
        let now: BTreeSet<u64> = self.caches[i].free_frames().iter().copied().collect();
        for b in before.into_iter().chain([a]) {
            if !now.contains(&b) {
                self.move_frame(b, At::Cached(i), At::Free);
            }
        }
        assert!(self.caches[i].free_len() <= CACHE_HIGH);
    }
}

#[test]
fn the_general_path_through_caches_under_random_interleavings() {
    let owners = [Owner::Kernel, Owner::Workload, Owner::Cache];
    let mut reported = 0u64;
    for seed in 1..=32u64 {
        let mut rng = Rng::new(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let mut sim = Sim::new(4);
        sim.cross_cpu = true;
        let mut dev = Reporter::default();
        let mut want = 0u64;
        sim.run(&mut rng, |sim, rng| match rng.below(12) {
            0 => {
                want = walk(want, rng);
                sim.balloon(want);
            }
            1 => {
                sim.w.mm.hint_unused_step(&mut sim.w.hv, 256);
            }
            2 => {
                sim.w.mm.report_step(&mut dev, 1);
            }
            3..=7 => {
                let owner = owners[rng.below(3) as usize];
                sim.gen_alloc(rng.below(CPUS as u64) as usize, owner);
            }
            _ => sim.gen_free(rng.below(CPUS as u64) as usize, rng),
        });
        sim.give_all_back(&mut rng, |sim, i, _| sim.free_held(i, i, 0));
        assert_eq!(sim.w.mm.frames().counts().used, 0, "seed {seed}");
        reported += dev.reported_pages;
    }
    assert!(reported > 0, "free page reporting never ran");
}

#[test]
fn the_general_free_refuses_what_is_not_allocated_and_changes_nothing() {
    let mut sim = Sim::new(4);
    sim.gen_alloc(0, Owner::Workload);
    sim.gen_alloc(0, Owner::Kernel);
    let a = sim.held[0][0];
    let cached = sim.caches[0].free_frames()[0];
    let free = sim.w.mm.frames().iter(FrameSet::Free).next().unwrap() * 4096;
    let counts = sim.w.mm.frames().counts();
    let lens: Vec<usize> = sim.caches.iter().map(FrameCache::free_len).collect();
    for bad in [cached, free, 4096 * FRAMES * 2, a + 8] {
        let cpu = OnCpu {
            caches: &mut sim.caches,
            me: 1,
        };
        assert!(
            sim.w.mm.free_page_cached(cpu, bad, &mut sim.w.hv).is_err(),
            "{bad:#x}"
        );
    }
    let cpu = OnCpu {
        caches: &mut sim.caches,
        me: CPUS,
    };
    assert!(
        sim.w.mm.free_page_cached(cpu, a, &mut sim.w.hv).is_err(),
        "no such CPU"
    );
    assert_eq!(sim.w.mm.frames().counts(), counts);
    let lens2: Vec<usize> = sim.caches.iter().map(FrameCache::free_len).collect();
    assert_eq!(lens, lens2);
    sim.check();
}

#[test]
fn the_workload_through_caches_keeps_the_books_and_meminfo() {
    let mut sim = Sim::new(4);
    sim.cross_cpu = true;
    let total = sim.w.mm.frames().counts().total;
    let cpu = OnCpu {
        caches: &mut sim.caches,
        me: 2,
    };
    let n = sim
        .w
        .mm
        .alloc_workload_cached(
            1000,
            Workload::Working,
            cpu,
            &mut sim.w.hv,
            &mut sim.w.mem,
            &mut || false,
        )
        .unwrap();
    assert_eq!(n, 1000);
    let c = sim.w.mm.frames().counts();
    assert_eq!(c.workload, 1000);
    let cached = cached_free(&sim.caches);
    assert!(cached > 0 && cached < CACHE_BATCH as u64, "{cached}");
    assert_eq!(c.used, 1000 + cached);
    let m = sim.w.mm.meminfo_with(cached);
    assert_eq!(
        m.mem_free_kb,
        (c.free + cached) * 4,
        "cached frames are free"
    );
    assert_eq!(sim.w.verify().corrupt_pages, 0);
    // Asking for more than free + loaned + cached fails and takes nothing.
    let cpu = OnCpu {
        caches: &mut sim.caches,
        me: 0,
    };
    assert!(sim
        .w
        .mm
        .alloc_workload_cached(
            total,
            Workload::Cache,
            cpu,
            &mut sim.w.hv,
            &mut sim.w.mem,
            &mut || false
        )
        .is_err());
    assert_eq!(sim.w.mm.frames().counts(), c);
    // Freed on another CPU: into its cache, a batch at a time to the table.
    let cpu = OnCpu {
        caches: &mut sim.caches,
        me: 3,
    };
    let freed = sim
        .w
        .mm
        .free_workload_cached(None, Workload::Working, cpu, &mut sim.w.hv)
        .unwrap();
    assert_eq!(freed, 1000);
    let c = sim.w.mm.frames().counts();
    assert_eq!(c.workload, 0);
    assert!(sim.caches[3].free_len() <= CACHE_HIGH);
    assert_eq!(c.used, cached_free(&sim.caches));
    assert_eq!(c.total, c.free + c.used + c.loaned);
    // A loan larger than the table's free frames reaches into the caches.
    let free_all = c.free + c.used;
    sim.w
        .mm
        .set_param("min_mem_mb", "0", &mut sim.w.hv, &mut sim.w.mem)
        .ok();
    let mut refs: Vec<&mut FrameCache> = sim.caches.iter_mut().collect();
    sim.w.hv.request = Request::LoanPages(free_all);
    sim.w.now_ms += 10;
    sim.w
        .mm
        .step_with_caches(sim.w.now_ms, &mut refs, &mut sim.w.hv, &mut sim.w.mem);
    drop(refs);
    assert!(
        sim.w.loaned() > c.free,
        "the loan reached cached frames: {} loaned, {} were free in the table",
        sim.w.loaned(),
        c.free
    );
}

#[test]
fn a_round_takes_the_caches_only_when_it_is_short_of_free_frames() {
    let mut sim = Sim::new(1);
    // The caches take frames until the table keeps about 1000 free.
    sim.fill_caches_until(1000);
    let free = sim.w.mm.frames().counts().free;
    let cached = cached_free(&sim.caches);
    assert!(cached > 2000, "{cached}");
    let mut calls = 0;
    let round = |sim: &mut Sim, want: u64, calls: &mut u32| {
        sim.w.hv.request = Request::LoanPages(want);
        sim.w.now_ms += sim.w.mm.params().delay_ms();
        let before = sim.snapshot();
        let caches = &mut sim.caches;
        let mut reach = |mm: &mut cmm::Mm, hv: &mut dyn hcall::Backend| {
            *calls += 1;
            mm.drain_caches(caches.iter_mut(), hv)
        };
        sim.w
            .mm
            .step_reaching_caches(sim.w.now_ms, &mut reach, &mut sim.w.hv, &mut sim.w.mem);
        sim.note_balloon(&before);
        sim.check();
    };
    // Within the table's free frames: the caches are not asked for.
    round(&mut sim, free / 2, &mut calls);
    assert_eq!(calls, 0);
    assert_eq!(sim.w.loaned(), free / 2);
    assert_eq!(cached_free(&sim.caches), cached);
    // Beyond them: asked once, and the loan is reached in the same round.
    round(&mut sim, free + 1000, &mut calls);
    assert_eq!(calls, 1);
    assert_eq!(sim.w.loaned(), free + 1000);
    assert_eq!(cached_free(&sim.caches), 0);
}
