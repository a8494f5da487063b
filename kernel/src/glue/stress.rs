//! `stress <ms> [cpus]`: every chosen CPU allocates, fills, verifies and frees
//! pages of random sizes and kinds through its own frame cache while the
//! balloon loans and returns against a target that moves (docs/smp.md).
//!
//! The boot CPU runs the command: it hands the job to the other chosen CPUs
//! (`smp::scoped`), does its own share, and between slices runs the balloon
//! (in model mode it first moves `hv target` by a random step, in host mode the
//! host's request stands) until the time is up or Ctrl-C. Then every CPU gives
//! back what it holds, the caches are drained, and the command checks the books
//! (`total = free + used + loaned`, the loaned count, every frame back where it
//! was) and runs `verify` with poison checking, which is on for the whole run.
//!
//! What is shared and its lock ([`crate::lock::Lock`]): the memory manager with
//! the hypervisor and page access (`Shared`, one lock), and each CPU's frame
//! cache (one lock each, taken by its owner for every page and by the holder of
//! the memory manager's lock to refill, drain or let the balloon reach it).
//! Lock order: memory manager, then caches (any number, any order: a cache's
//! lock is never held while waiting for another lock except under the memory
//! manager's).

use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use cmm::percpu::{CACHE_BATCH, CACHE_HIGH};
use cmm::{FrameCache, Mm, PageMemory};
use hcall::page::PAGE_SIZE;
use powervm_sim::rng::Rng;
use powervm_sim::HvCommand;

use crate::hv::Hv;
use crate::lock::Lock;
use crate::mem::PhysMemory;
use crate::percpu::{self, CpuState, MAX_CPUS};
use crate::sys::System;
use crate::{clock, console, println};

/// What the memory manager's lock protects.
pub struct Shared<'a> {
    /// Frames, balloon, statistics.
    pub mm: &'a mut Mm,
    /// The hypervisor (real or modelled).
    pub hv: &'a mut Hv,
    /// Page contents (used under the lock by the balloon's poison fill).
    pub mem: &'a mut PhysMemory,
}

/// The most pages one CPU holds at a time.
const MAX_HELD: usize = 512;
/// The most pages one allocation or free takes.
const MAX_RUN: u64 = 16;
/// The boot CPU's slice of work between two looks at the balloon and Ctrl-C.
const SLICE_OPS: u64 = 32;
/// How often the boot CPU runs the balloon (and moves the model's target).
const BACKGROUND_US: u64 = 10_000;
/// The largest step of the target's random walk: 4 MiB.
const WALK_STEP: u64 = 4 << 20;

/// A CPU's cache lock on a 128-byte line of its own: CPUs taking pages from
/// their own caches never write the same cache line.
#[repr(align(128))]
struct CacheLock(Lock<FrameCache>);

/// One CPU's figures (written once, when it finishes).
#[derive(Default)]
struct Figures {
    ops: AtomicU64,
    bytes: AtomicU64,
    verified: AtomicU64,
    corrupt: AtomicU64,
    lock_waits: AtomicU64,
    confers: AtomicU64,
}

/// A plain copy of [`Figures`].
#[derive(Clone, Copy, Default)]
struct Counts {
    ops: u64,
    bytes: u64,
    verified: u64,
    corrupt: u64,
    lock_waits: u64,
    confers: u64,
}

impl Figures {
    fn counts(&self) -> Counts {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Counts {
            ops: g(&self.ops),
            bytes: g(&self.bytes),
            verified: g(&self.verified),
            corrupt: g(&self.corrupt),
            lock_waits: g(&self.lock_waits),
            confers: g(&self.confers),
        }
    }
}

/// Everything the CPUs of one run share; it lives on the boot CPU's stack for
/// the command's whole run, and the command does not return before every
/// worker said it is done with it.
struct Job<'j, 's> {
    shared: &'j Lock<Shared<'s>>,
    /// Every CPU's frame cache, by CPU index.
    caches: &'j [CacheLock],
    mem: PhysMemory,
    stop: AtomicBool,
    seed: u64,
    figures: [Figures; MAX_CPUS],
    /// Frames a worker could not put back (there must be none).
    stray: AtomicU64,
}

/// A page a CPU holds: its address and what it was filled with (`None`: zeros).
#[derive(Clone, Copy)]
struct Page {
    addr: u64,
    seed: Option<u64>,
}

/// One CPU's side of a run.
struct Worker<'w, 'j, 's> {
    job: &'w Job<'j, 's>,
    me: usize,
    mem: PhysMemory,
    rng: Rng,
    held: Vec<Page>,
    figures: &'w Figures,
    /// Its own counts, published to `figures` when it finishes.
    counts: Counts,
    waits0: u64,
    confers0: u64,
}

impl<'w, 'j, 's> Worker<'w, 'j, 's> {
    fn new(job: &'w Job<'j, 's>, me: usize) -> Self {
        let stats = &percpu::cpu(me).stats;
        Worker {
            job,
            me,
            mem: job.mem.clone(),
            rng: Rng::new(job.seed ^ ((me as u64 + 1) << 40) | 1),
            held: Vec::with_capacity(MAX_HELD),
            counts: Counts::default(),
            figures: &job.figures[me],
            waits0: stats.lock_waits.load(Ordering::Relaxed),
            confers0: stats.confers.load(Ordering::Relaxed),
        }
    }

    /// A frame from this CPU's cache, refilled under the memory manager's lock
    /// when empty (the other caches are drained into the table first if it has
    /// none, then the OOM notifier runs, as on one CPU).
    fn take(&mut self) -> Option<u64> {
        if let Some(a) = self.job.caches[self.me].0.lock().take() {
            return Some(a);
        }
        let mut sh = self.job.shared.lock();
        let sh = &mut *sh;
        let mut mine = self.job.caches[self.me].0.lock();
        let got = if sh.mm.frames().counts().free == 0 {
            let mut guards: Vec<_> = self
                .job
                .caches
                .iter()
                .enumerate()
                .filter(|&(i, _)| i != self.me)
                .map(|(_, c)| c.0.lock())
                .collect();
            let mut others: Vec<&mut FrameCache> = guards.iter_mut().map(|g| &mut **g).collect();
            sh.mm
                .refill_cache(&mut mine, CACHE_BATCH, &mut others, sh.hv, sh.mem)
        } else {
            sh.mm
                .refill_cache(&mut mine, CACHE_BATCH, &mut [], sh.hv, sh.mem)
        };
        if got == 0 {
            return None;
        }
        mine.take()
    }

    /// Puts a page back in the cache; a batch goes back to the table when the
    /// cache is over its high mark.
    fn put(&mut self, addr: u64) {
        let over = {
            let mut c = self.job.caches[self.me].0.lock();
            if c.put(addr).is_err() {
                self.job.stray.fetch_add(1, Ordering::Relaxed);
            }
            c.over_high()
        };
        if over {
            let mut sh = self.job.shared.lock();
            let sh = &mut *sh;
            let mut c = self.job.caches[self.me].0.lock();
            if c.free_len() > CACHE_HIGH {
                sh.mm.drain_cache(&mut c, CACHE_BATCH, sh.hv);
            }
        }
    }

    /// Allocates a run of 1..=16 pages, each zeroed or filled with a pattern.
    fn alloc_run(&mut self) {
        let n = 1 + self.rng.below(MAX_RUN);
        for _ in 0..n {
            if self.held.len() >= MAX_HELD {
                break;
            }
            let Some(addr) = self.take() else {
                break;
            };
            let seed = (self.rng.below(2) == 0).then(|| self.rng.next_u64());
            match seed {
                Some(s) => self.mem.fill(addr, s),
                None => self.mem.zero(addr),
            }
            self.held.push(Page { addr, seed });
            self.counts.bytes += PAGE_SIZE;
        }
        self.counts.ops += 1;
    }

    /// Checks one page's contents and puts it back.
    fn release(&mut self, p: Page) {
        let intact = match p.seed {
            Some(s) => self.mem.check(p.addr, s),
            None => self.mem.is_zero(p.addr),
        };
        if intact {
            self.counts.verified += 1;
        } else {
            self.counts.corrupt += 1;
        }
        self.put(p.addr);
    }

    /// Frees a run of random pages it holds.
    fn free_run(&mut self) {
        let n = 1 + self.rng.below(MAX_RUN);
        for _ in 0..n {
            if self.held.is_empty() {
                break;
            }
            let k = self.rng.below(self.held.len() as u64) as usize;
            let p = self.held.swap_remove(k);
            self.release(p);
        }
        self.counts.ops += 1;
    }

    /// One operation: allocate or free, at random.
    fn step(&mut self) {
        if self.held.is_empty() || (self.held.len() < MAX_HELD && self.rng.below(2) == 0) {
            self.alloc_run();
        } else {
            self.free_run();
        }
    }

    /// Gives back every page (checked) and drains the cache to the table.
    fn finish(&mut self) {
        while let Some(p) = self.held.pop() {
            self.release(p);
        }
        let mut sh = self.job.shared.lock();
        let sh = &mut *sh;
        let mut c = self.job.caches[self.me].0.lock();
        let n = c.free_len();
        sh.mm.drain_cache(&mut c, n, sh.hv);
        drop(c);
        let stats = &percpu::cpu(self.me).stats;
        let c = &self.counts;
        let f = self.figures;
        f.ops.store(c.ops, Ordering::Relaxed);
        f.bytes.store(c.bytes, Ordering::Relaxed);
        f.verified.store(c.verified, Ordering::Relaxed);
        f.corrupt.store(c.corrupt, Ordering::Relaxed);
        f.lock_waits.store(
            stats.lock_waits.load(Ordering::Relaxed) - self.waits0,
            Ordering::Relaxed,
        );
        f.confers.store(
            stats.confers.load(Ordering::Relaxed) - self.confers0,
            Ordering::Relaxed,
        );
    }
}

/// A secondary CPU's part: steps until told to stop.
fn work(job: &Job<'_, '_>, me: usize) {
    let mut w = Worker::new(job, me);
    let was_on = crate::arch::trap::disable_interrupts();
    while !job.stop.load(Ordering::Acquire) {
        if crate::smp::stopping() {
            crate::smp::park_now();
        }
        w.step();
    }
    if was_on {
        crate::arch::trap::enable_interrupts();
    }
    w.finish();
}

/// Runs the balloon once (with the caches within its reach), after moving the
/// model's target by a random step when the model sets it.
fn background(job: &Job<'_, '_>, rng: &mut Rng, walk: bool, target: &mut u64, max: u64) {
    let mut sh = job.shared.lock();
    let sh = &mut *sh;
    if walk {
        let up = rng.below(2) == 0;
        let step = rng.below(WALK_STEP / PAGE_SIZE) * PAGE_SIZE;
        *target = if up {
            target.saturating_add(step).min(max)
        } else {
            target.saturating_sub(step)
        };
        let mut sink = String::new();
        let _ = sh
            .hv
            .inner_mut()
            .model_command(&HvCommand::Target(*target), &mut sink);
        // A new request: the balloon follows it now, not at its next poll.
        sh.mm.poll_now();
    }
    // The caches' locks only when the round needs their frames: the workers
    // keep taking and putting pages while it runs.
    let mut reach = |mm: &mut Mm, hv: &mut dyn hcall::Backend| {
        let mut back = 0u64;
        for c in job.caches {
            back = back.saturating_add(mm.drain_caches([&mut *c.0.lock()], hv));
        }
        back
    };
    crate::sys::run_background(sh.mm, sh.hv, sh.mem, &mut reach);
}

fn write_rows(c: &Counts, indent: &str) {
    println!("{indent}ops: {}", c.ops);
    println!("{indent}bytes: {}", c.bytes);
    println!("{indent}verified_pages: {}", c.verified);
    println!("{indent}corrupt_pages: {}", c.corrupt);
    println!("{indent}lock_waits: {}", c.lock_waits);
    println!("{indent}confers: {}", c.confers);
}

/// `stress <ms> [cpus]`.
pub fn stress(sys: &mut System, ms: u64, cpus: Option<u64>) -> Result<(), String> {
    let online: Vec<usize> = (0..percpu::planned())
        .filter(|&i| percpu::cpu(i).state() == CpuState::Online)
        .collect();
    let n = match cpus {
        None => online.len(),
        Some(n) => usize::try_from(n).unwrap_or(usize::MAX),
    };
    if n == 0 || n > online.len() {
        return Err(alloc::format!(
            "<cpus> must be 1..{} (CPUs online)",
            online.len()
        ));
    }
    let chosen = &online[..n];
    let before = sys.mm.frames().counts();
    let cached_before = sys.cached_free();
    let poison_was = sys.mm.params().poison();
    sys.mm
        .set_param("poison", "1", &mut sys.hv, &mut sys.mem)
        .map_err(|e| alloc::format!("poison: {e}"))?;
    let walk = sys.hv.inner().model().is_some() && !sys.hv.inner().follows_host();
    let max_target = before.total.saturating_mul(PAGE_SIZE) / 4;
    let mut target = sys.mm.stats().loaned_pages.saturating_mul(PAGE_SIZE);
    // Every CPU's own cache (the kernel's, by CPU index), each behind its own
    // lock for the run.
    let mut caches: Vec<CacheLock> = core::mem::take(&mut sys.caches)
        .into_iter()
        .map(|c| CacheLock(Lock::new(c)))
        .collect();
    let mem_copy = sys.mem.clone();
    let seed = crate::arch::cpu::timebase() | 1;
    let shared = Lock::new(Shared {
        mm: &mut sys.mm,
        hv: &mut sys.hv,
        mem: &mut sys.mem,
    });
    let job = Job {
        shared: &shared,
        caches: &caches,
        mem: mem_copy,
        stop: AtomicBool::new(false),
        seed,
        figures: [const {
            Figures {
                ops: AtomicU64::new(0),
                bytes: AtomicU64::new(0),
                verified: AtomicU64::new(0),
                corrupt: AtomicU64::new(0),
                lock_waits: AtomicU64::new(0),
                confers: AtomicU64::new(0),
            }
        }; MAX_CPUS],
        stray: AtomicU64::new(0),
    };
    let me = percpu::current();
    let mut boot = Worker::new(&job, me);
    let mut rng = Rng::new(seed.rotate_left(17) | 1);
    let t0 = clock::ticks();
    let end = kernel::timer::after_ms(t0, ms, clock::hz());
    let mut next_bg = t0;
    let bg_ticks = clock::hz() / (1_000_000 / BACKGROUND_US);
    let interrupted = crate::smp::scoped(&chosen[1..], &job, work, || {
        let interrupted = loop {
            if console::input::interrupt_pending() {
                break true;
            }
            let now = clock::ticks();
            if now >= end {
                break false;
            }
            if now >= next_bg {
                background(&job, &mut rng, walk, &mut target, max_target);
                next_bg = now.saturating_add(bg_ticks);
            }
            let was_on = crate::arch::trap::disable_interrupts();
            for _ in 0..SLICE_OPS {
                boot.step();
            }
            if was_on {
                crate::arch::trap::enable_interrupts();
            }
        };
        job.stop.store(true, Ordering::Release);
        boot.finish();
        interrupted
    });
    let elapsed_us = clock::ticks_to_us(clock::ticks() - t0);
    drop(boot);
    let figures: Vec<(usize, Counts)> = chosen
        .iter()
        .map(|&i| (i, job.figures[i].counts()))
        .collect();
    let stray = job.stray.load(Ordering::Relaxed);
    drop(job);
    sys.caches = caches
        .iter_mut()
        .map(|c| core::mem::take(c.0.get_mut()))
        .collect();
    drop(caches);
    // Poison stays on for the check of every loaned page, then as it was.
    let v = sys.mm.verify(&mut sys.hv, &sys.mem);
    if !poison_was {
        let _ = sys.mm.set_param("poison", "0", &mut sys.hv, &mut sys.mem);
    }
    let after = sys.mm.frames().counts();
    // Frames free in caches are used to the table: compare what is used
    // without them.
    let used_net = |used: u64, cached: u64| used.checked_sub(cached);
    let books = after.total == after.free + after.used + after.loaned
        && sys.mm.stats().loaned_pages == after.loaned
        && used_net(after.used, sys.cached_free()) == used_net(before.used, cached_before)
        && after.total == before.total
        && sys.mm.frames().check().is_ok()
        && stray == 0;
    let total = figures.iter().fold(Counts::default(), |t, (_, c)| Counts {
        ops: t.ops + c.ops,
        bytes: t.bytes + c.bytes,
        verified: t.verified + c.verified,
        corrupt: t.corrupt + c.corrupt,
        lock_waits: t.lock_waits + c.lock_waits,
        confers: t.confers + c.confers,
    });
    println!("cpus: {n}");
    println!("elapsed_us: {elapsed_us}");
    write_rows(&total, "");
    println!("verify_verified_pages: {}", v.verified_pages);
    println!("verify_corrupt_pages: {}", v.corrupt_pages);
    println!(
        "books: total={} free={} used={} loaned={}",
        after.total, after.free, after.used, after.loaned
    );
    println!("books_consistent: {}", u8::from(books));
    for (i, c) in &figures {
        println!("cpu {i}:");
        write_rows(c, "   ");
    }
    if interrupted {
        return Err(String::from("interrupted"));
    }
    if !books {
        return Err(String::from("the books do not add up"));
    }
    if total.corrupt > 0 || v.corrupt_pages > 0 {
        return Err(alloc::format!(
            "{} corrupt pages",
            total.corrupt + v.corrupt_pages
        ));
    }
    Ok(())
}
