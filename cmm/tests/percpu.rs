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

// Random indices are small; truncating u64 to usize is harmless here.
#![allow(clippy::cast_possible_truncation)]

mod common;

use std::collections::{BTreeSet, HashMap};

use cmm::memory::workload_seed;
use cmm::percpu::{CACHE_BATCH, CACHE_HIGH};
use cmm::{FrameCache, FrameSet, FrameState, Owner, PageMemory};
use common::{Request, World};

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

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

struct Sim {
    w: World,
    caches: Vec<FrameCache>,
    held: Vec<Vec<u64>>,
    oracle: HashMap<u64, At>,
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
            let before = self.snapshot();
            let (mine, mut rest) = others(&mut self.caches, i);
            let got = self.w.mm.refill_cache(
                mine,
                CACHE_BATCH,
                &mut rest,
                &mut self.w.hv,
                &mut self.w.mem,
            );
            // Others drained first (table empty), then maybe the OOM chain.
            for (j, b) in before.iter().enumerate() {
                if j != i {
                    self.note_drained(j, b);
                }
            }
            self.note_balloon(&[]);
            let added: Vec<u64> = self.caches[i].free_frames()[before[i].len()..].to_vec();
            assert_eq!(added.len(), got);
            for a in added {
                self.move_frame(a, At::Free, At::Cached(i));
            }
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
            assert_eq!(c.held(), self.held[i].len() as u64);
        }
        let mut cached_or_held = 0u64;
        for (&a, &at) in &self.oracle {
            let st = t.state(a / 4096).unwrap();
            match at {
                At::Free => assert_eq!(st, FrameState::Free, "{a:#x}"),
                At::Loaned => assert_eq!(st, FrameState::Loaned, "{a:#x}"),
                At::Cached(_) | At::Held(_) => {
                    cached_or_held += 1;
                    assert_eq!(st, FrameState::Used(Owner::Kernel), "{a:#x}");
                }
            }
        }
        let c = t.counts();
        assert_eq!(c.used, cached_or_held, "used frames are exactly the CPUs'");
        assert_eq!(c.total, c.free + c.used + c.loaned);
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
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let mut sim = Sim::new(4);
        let mut want = 0u64;
        for step in 0..1500 {
            match rng.below(10) {
                0 => {
                    // The target random-walks (as `stress` drives `hv target`).
                    want = (want + rng.below(512))
                        .saturating_sub(rng.below(512))
                        .min(FRAMES);
                    sim.balloon(want);
                }
                1..=5 => sim.cpu_alloc(rng.below(CPUS as u64) as usize),
                _ => sim.cpu_free(rng.below(CPUS as u64) as usize, &mut rng),
            }
            if step % 25 == 0 {
                sim.check();
            }
        }
        sim.check();
        // Everything back: caches drained, books as at boot but for the loan.
        for i in 0..CPUS {
            while !sim.held[i].is_empty() {
                sim.cpu_free(i, &mut rng);
            }
            let before = sim.caches[i].free_frames().to_vec();
            let len = before.len();
            sim.w.mm.drain_cache(&mut sim.caches[i], len, &mut sim.w.hv);
            sim.note_drained(i, &before);
        }
        sim.check();
        assert_eq!(sim.w.mm.frames().counts().used, 0, "seed {seed}");
    }
}

#[test]
fn the_balloon_reaches_frames_sitting_in_caches() {
    let mut sim = Sim::new(1);
    // Every CPU takes frames until the table has few free ones left.
    while sim.w.mm.frames().counts().free > 200 {
        for i in 0..CPUS {
            let before = sim.snapshot();
            let (mine, mut rest) = others(&mut sim.caches, i);
            let got =
                sim.w
                    .mm
                    .refill_cache(mine, CACHE_BATCH, &mut rest, &mut sim.w.hv, &mut sim.w.mem);
            let added: Vec<u64> = sim.caches[i].free_frames()[before[i].len()..].to_vec();
            assert_eq!(added.len(), got);
            for a in added {
                sim.move_frame(a, At::Free, At::Cached(i));
            }
        }
    }
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
