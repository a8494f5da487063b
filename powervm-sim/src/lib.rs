//! powervm-sim: a model of the PowerVM shared-memory pool ([`PoolModel`]) that plays
//! the hypervisor where none answers the CMO hcalls: on QEMU, which implements none
//! of them, and in host tests, with failure injection. It implements
//! [`hcall::Hypervisor`] for the PAPR calls and [`hcall::Simulation`] for what only a
//! model needs (its time, the pages the kernel touches).
//!
//! The model holds a pool of physical memory shared by this partition ("self") and any
//! number of named other partitions. Each partition has a logical memory size `L` (the
//! most it can be given), an I/O entitlement `E` (the least), a memory weight and a
//! demand `D`. Self's `L` is the RAM size and its demand is all of it: a guest
//! takes back what the pool can give (the model counts loaned pages from the
//! H_PAGE_INIT state changes it sees).
//!
//! Every time step (default [`DEFAULT_STEP_US`]):
//! 1. Shares are recomputed (see [`distribute`]): each gets at least `E`, at most
//!    `clamp(D, E, L)`, and the rest of the pool goes where demand is, by weight.
//! 2. Allotments (the memory the hypervisor actually backs) move toward the shares by
//!    at most `min(L/256, pool/512)` per step (at least one page), the rate cap of
//!    PowerVM's first release; `Σ allotment ≤ pool` always. Memory given up in one
//!    step is handed to others only in the next, so a guest that loans what it is
//!    asked for within a step is never paged.
//! 3. If the resident memory of all partitions (others: their allotment; self: pages
//!    neither loaned nor paged out) exceeds the pool, pages of self are paged out:
//!    pages hinted Unused first, then Active ones; loaned pages never.
//!
//! Self's loan request (H_GET_MPP r9) is `(L − loaned) − allotment`, so once
//! allotments converge it is 0 when all demand fits and nothing is loaned, and
//! negative ("take this much back") when loaned memory fits in the pool again; it
//! moves no faster than the cap per step, and drops as soon as pages are loaned. In target mode ([`PoolModel::set_target`],
//! the analogue of Linux's `simulate_loan_target_kb`) it is `target − loaned`.
//!
//! Touching a paged-out page ([`hcall::Simulation::note_access`]) is a CMO fault: it
//! costs a modelled [`FAULT_LATENCY_US`] and brings the page back. TCE and zero-page calls go
//! through to the real hypervisor `R` (QEMU implements them); the model only watches
//! them (mapped bytes; H_PUT_TCE beyond the entitlement gets H_NOT_ENOUGH_RESOURCES,
//! as LoPAR allows). Every CMO answer comes from the model. Failure injection
//! ([`PoolModel::fail`]) makes the next calls of a kind fail with a chosen status.
//!
//! - [`distribute`]: the pure share and allotment arithmetic.
//! - [`pages`]: the per-page state array of self.
//! - `control`: scenario changes (pool, partitions, target, failures) and errors.
//! - `command`: `hv ...` parsed into an [`HvCommand`] (with the `key=value`
//!   arguments of `hv lpar`), with the one usage string.
//! - `console`: running an `hv` command, and the `name: value` state rows.
//! - `hcalls`: the [`hcall::Hypervisor`] and [`hcall::Simulation`] implementations.
//! - [`rng`]: the seeded generator simulated workloads draw from (the kernel's
//!   `stress`, the soak's command storm, the per-CPU cache tests).

#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

/// The README's examples, compiled and run as doctests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

#[cfg(test)]
mod batch_tests;
mod command;
mod console;
mod control;
pub mod distribute;
mod hcalls;
pub mod pages;
pub mod rng;
#[cfg(test)]
mod tests;

use alloc::collections::BTreeSet;
use alloc::string::String;
use alloc::vec::Vec;

pub use command::{HvCommand, LparParams, HV_USAGE, MAX_COMMAND_STEPS};
pub use control::{FailKind, ModelError};

use distribute::{Claim, Slot};
pub use hcall::page::PAGE_SIZE;
use hcall::raw::RawHcall;
use hcall::status::HStatus;
use hcall::Phyp;
use pages::Pages;

/// Default length of one model time step, in microseconds.
pub const DEFAULT_STEP_US: u64 = 10_000;
/// Most steps one [`PoolModel::advance_to`] runs; time beyond that is dropped (counted
/// in [`ModelStats::dropped_steps`]) so a long pause cannot stall the kernel.
pub const MAX_STEPS_PER_ADVANCE: u64 = 1000;
/// Self's I/O entitlement at start (clamped to its memory).
pub const SELF_DEFAULT_ENTITLED: u64 = 64 << 20;
/// Another partition's I/O entitlement unless given (clamped to its memory).
pub const OTHER_DEFAULT_ENTITLED: u64 = 16 << 20;
/// Memory weight unless given.
pub const DEFAULT_WEIGHT: u8 = 128;
/// The least entitlement H_SET_MPP grants without H_CONSTRAINED (or all of memory, if
/// smaller).
pub const MIN_ENTITLED: u64 = 4 << 20;
/// Modelled time one CMO fault suspends the partition, in microseconds.
pub const FAULT_LATENCY_US: u64 = 200;
/// Memory group number reported by H_GET_MPP (the one in the SLES 11 amsstat seed).
pub const GROUP_NUM: u16 = 32773;
/// Shared memory pool number reported by H_GET_MPP.
pub const POOL_NUM: u16 = 0;
/// Most other partitions.
pub const MAX_PARTITIONS: usize = 64;
/// Longest partition name.
pub const MAX_NAME_LEN: usize = 32;

/// A partition as the model keeps it; all sizes in 4 KiB pages.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Lpar {
    name: String,
    logical: u64,
    entitled: u64,
    weight: u8,
    demand: u64,
    share: u64,
    allotment: u64,
}

impl Lpar {
    fn min(&self) -> u64 {
        self.entitled.min(self.logical)
    }

    fn claim(&self) -> Claim {
        let min = self.min();
        Claim {
            min,
            want: self.demand.max(min).min(self.logical),
            weight: self.weight,
        }
    }

    fn view(&self) -> LparView<'_> {
        LparView {
            name: &self.name,
            logical: bytes(self.logical),
            entitled: bytes(self.entitled),
            weight: self.weight,
            demand: bytes(self.demand),
            share: bytes(self.share),
            allotment: bytes(self.allotment),
        }
    }
}

/// A read-only view of one partition; sizes in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LparView<'a> {
    /// Its name (`self` for this partition).
    pub name: &'a str,
    /// Logical memory `L`.
    pub logical: u64,
    /// I/O entitlement `E`.
    pub entitled: u64,
    /// Memory weight.
    pub weight: u8,
    /// Demand `D` (for self: `L − loaned`).
    pub demand: u64,
    /// Current share of the pool.
    pub share: u64,
    /// Memory the hypervisor currently backs it with.
    pub allotment: u64,
}

/// How self's loan request is computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoanMode {
    /// From the pool: `(L − loaned) − allotment`.
    Auto,
    /// Steered so that this many bytes end up loaned: `target − loaned`.
    Target(u64),
}

/// The model's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ModelStats {
    /// Time steps run.
    pub steps: u64,
    /// Steps skipped because one `advance` had more than [`MAX_STEPS_PER_ADVANCE`].
    pub dropped_steps: u64,
    /// CMO faults: touches of paged-out pages.
    pub cmo_faults: u64,
    /// Modelled time spent in those faults, in µs.
    pub cmo_fault_time_usec: u64,
    /// Pages paged out, cumulative.
    pub pages_paged_out: u64,
    /// Touches (or I/O mappings) of loaned pages: the OS broke its promise.
    pub loaned_touches: u64,
    /// Calls answered by an injected failure.
    pub injected_failures: u64,
}

/// A pending injected failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Injection {
    remaining: u32,
    status: HStatus,
}

fn bytes(pages: u64) -> u64 {
    pages.saturating_mul(PAGE_SIZE)
}

/// The shared-memory pool model; the real hypervisor underneath (`Phyp` over `R`)
/// answers the calls QEMU implements.
#[derive(Debug)]
pub struct PoolModel<R: RawHcall> {
    real: Phyp<R>,
    pool: u64,
    me: Lpar,
    others: Vec<Lpar>,
    pages: Pages,
    mode: LoanMode,
    step_us: u64,
    last_us: Option<u64>,
    tces: BTreeSet<(u32, u64)>,
    failures: [Option<Injection>; FailKind::ALL.len()],
    stats: ModelStats,
}

impl<R: RawHcall> PoolModel<R> {
    /// A model for a partition with `ram_bytes` of memory starting at real address 0
    /// (rounded down to whole pages), alone in a pool of the same size, everything
    /// resident and Active. Fails if `ram_bytes` is under one page or the page array
    /// (one byte per 4 KiB page) cannot be allocated.
    pub fn new(real: Phyp<R>, ram_bytes: u64) -> Result<Self, ModelError> {
        let n = ram_bytes / PAGE_SIZE;
        if n == 0 {
            return Err(ModelError::ZeroSize("ram"));
        }
        let pages = usize::try_from(n)
            .ok()
            .and_then(Pages::new)
            .ok_or(ModelError::OutOfMemory { pages: n })?;
        let me = Lpar {
            name: String::from("self"),
            logical: n,
            entitled: (SELF_DEFAULT_ENTITLED / PAGE_SIZE).min(n),
            weight: DEFAULT_WEIGHT,
            demand: n,
            share: n,
            allotment: n,
        };
        let mut m = PoolModel {
            real,
            pool: n,
            me,
            others: Vec::new(),
            pages,
            mode: LoanMode::Auto,
            step_us: DEFAULT_STEP_US,
            last_us: None,
            tces: BTreeSet::new(),
            failures: [None; FailKind::ALL.len()],
            stats: ModelStats::default(),
        };
        m.after_change();
        Ok(m)
    }

    /// The real hypervisor underneath, which answers the calls passed through
    /// (for this crate's tests, to see what reached it).
    #[cfg(test)]
    pub(crate) fn real(&mut self) -> &mut Phyp<R> {
        &mut self.real
    }

    /// Runs the whole steps of `step_us` that fit between the previous call and
    /// `now_us` (at most [`MAX_STEPS_PER_ADVANCE`]; the rest is dropped). The first
    /// call only sets the origin; a clock that goes backwards resets it.
    pub fn advance_to(&mut self, now_us: u64) {
        let Some(last) = self.last_us else {
            self.last_us = Some(now_us);
            return;
        };
        if now_us < last {
            self.last_us = Some(now_us);
            return;
        }
        let due = (now_us - last) / self.step_us;
        self.last_us = Some(last.saturating_add(due.saturating_mul(self.step_us)));
        let run = due.min(MAX_STEPS_PER_ADVANCE);
        self.stats.dropped_steps = self.stats.dropped_steps.saturating_add(due - run);
        for _ in 0..run {
            self.step();
        }
    }

    /// True while a time step would change something: some partition's allotment
    /// has not reached its share, or this partition holds more than the pool
    /// leaves it. A settled model needs no steps, so the kernel's timer for them
    /// stays off and the idle kernel does not wake for nothing.
    pub fn has_work(&self) -> bool {
        let claims: Vec<Claim> = self.lpars().map(Lpar::claim).collect();
        let shares = distribute::water_fill(self.pool, &claims);
        let moving = self.lpars().zip(shares).any(|(l, s)| l.allotment != s);
        let limit = self.pool.saturating_sub(self.others_allotment_pages());
        moving || self.pages.resident() > limit
    }

    /// Runs one time step: shares, allotments, then paging out if over-committed.
    pub fn step(&mut self) {
        self.recompute_shares();
        let mut slots = self.slots();
        distribute::step_allotments(self.pool, &mut slots);
        self.set_allotments(&slots);
        self.stats.steps = self.stats.steps.saturating_add(1);
        self.enforce_pool();
    }

    fn lpars(&self) -> impl Iterator<Item = &Lpar> {
        core::iter::once(&self.me).chain(self.others.iter())
    }

    fn lpars_mut(&mut self) -> impl Iterator<Item = &mut Lpar> {
        core::iter::once(&mut self.me).chain(self.others.iter_mut())
    }

    fn slots(&self) -> Vec<Slot> {
        let pool = self.pool;
        self.lpars()
            .map(|l| Slot {
                share: l.share,
                allotment: l.allotment,
                cap: distribute::cap_pages(l.logical, pool),
                weight: l.weight,
            })
            .collect()
    }

    fn set_allotments(&mut self, slots: &[Slot]) {
        for (l, s) in self.lpars_mut().zip(slots) {
            l.allotment = s.allotment;
        }
    }

    fn recompute_shares(&mut self) {
        self.me.demand = self.me.logical;
        let claims: Vec<Claim> = self.lpars().map(Lpar::claim).collect();
        let shares = distribute::water_fill(self.pool, &claims);
        for (l, s) in self.lpars_mut().zip(shares) {
            l.share = s;
        }
    }

    /// After a scenario change: new shares, allotments forced into the new limits,
    /// then paging out if needed.
    fn after_change(&mut self) {
        self.recompute_shares();
        for l in self.lpars_mut() {
            l.allotment = l.allotment.min(l.logical);
        }
        let mut slots = self.slots();
        let floors: Vec<u64> = self.lpars().map(Lpar::min).collect();
        distribute::fit_allotments(self.pool, &mut slots, &floors);
        self.set_allotments(&slots);
        self.enforce_pool();
    }

    /// Pages out self's pages while all partitions together hold more than the pool.
    fn enforce_pool(&mut self) {
        let limit = self.pool_limit();
        let resident = self.pages.resident();
        if resident > limit {
            let n = self.pages.page_out(resident - limit);
            self.stats.pages_paged_out = self.stats.pages_paged_out.saturating_add(n);
        }
    }

    /// The pages self may keep resident: the pool less the others' allotments.
    fn pool_limit(&self) -> u64 {
        self.pool.saturating_sub(self.others_allotment_pages())
    }

    fn others_allotment_pages(&self) -> u64 {
        self.others
            .iter()
            .fold(0u64, |a, l| a.saturating_add(l.allotment))
    }

    /// The most entitlement self can have, in pages: its memory, and what the pool
    /// has beyond the other partitions' entitlements.
    fn max_entitled_pages(&self) -> u64 {
        let others: u64 = self
            .others
            .iter()
            .fold(0u64, |a, l| a.saturating_add(l.min()));
        self.me.logical.min(self.pool.saturating_sub(others))
    }

    fn loan_request_pages(&self) -> i128 {
        let loaned = i128::from(self.pages.loaned());
        match self.mode {
            LoanMode::Target(t) => i128::from(t / PAGE_SIZE) - loaned,
            LoanMode::Auto => i128::from(self.me.logical) - loaned - i128::from(self.me.allotment),
        }
    }

    // ----- read-only accessors (bytes unless said otherwise) -----

    /// Pool size.
    pub fn pool_bytes(&self) -> u64 {
        bytes(self.pool)
    }

    /// This partition's view (name `self`; its demand is `L`).
    pub fn self_view(&self) -> LparView<'_> {
        let mut v = self.me.view();
        v.demand = bytes(self.me.logical);
        v
    }

    /// The other partitions, in the order they were added.
    pub fn others(&self) -> impl Iterator<Item = LparView<'_>> {
        self.others.iter().map(Lpar::view)
    }

    /// Sum of the other partitions' allotments.
    pub fn others_allotment_bytes(&self) -> u64 {
        bytes(self.others_allotment_pages())
    }

    /// Sum of every partition's allotment (never above the pool).
    pub fn total_allotment_bytes(&self) -> u64 {
        bytes(
            self.lpars()
                .fold(0u64, |a, l| a.saturating_add(l.allotment)),
        )
    }

    /// Pool memory backing nobody's allotment.
    pub fn pool_free_bytes(&self) -> u64 {
        self.pool_bytes()
            .saturating_sub(self.total_allotment_bytes())
    }

    /// Self's loan request as H_GET_MPP reports it (positive: please loan).
    pub fn loan_request_bytes(&self) -> i64 {
        let b = self
            .loan_request_pages()
            .saturating_mul(i128::from(PAGE_SIZE));
        i64::try_from(b).unwrap_or(if b < 0 { i64::MIN } else { i64::MAX })
    }

    /// Bytes self has loaned.
    pub fn loaned_bytes(&self) -> u64 {
        bytes(self.pages.loaned())
    }

    /// Bytes of self backed by pool memory (H_GET_MPP's backing memory).
    pub fn resident_bytes(&self) -> u64 {
        bytes(self.pages.resident())
    }

    /// Bytes of self neither loaned nor backed.
    pub fn paged_out_bytes(&self) -> u64 {
        bytes(self.pages.paged_out())
    }

    /// Resident bytes of self hinted Unused.
    pub fn resident_unused_bytes(&self) -> u64 {
        bytes(self.pages.resident_unused())
    }

    /// Bytes currently I/O-mapped through TCEs the model saw.
    pub fn mapped_bytes(&self) -> u64 {
        bytes(self.tces.len() as u64)
    }

    /// The loan-request mode.
    pub fn mode(&self) -> LoanMode {
        self.mode
    }

    /// Step length in µs.
    pub fn step_us(&self) -> u64 {
        self.step_us
    }

    /// The counters.
    pub fn stats(&self) -> ModelStats {
        self.stats
    }

    /// The state of the page at `addr` and whether it is paged out.
    pub fn page(&self, addr: u64) -> Option<(hcall::page::PageState, bool)> {
        self.pages.get(usize::try_from(addr / PAGE_SIZE).ok()?)
    }
}
