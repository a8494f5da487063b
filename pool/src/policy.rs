//! The hypervisor's policy, pure: one [`Policy::tick`] turns what the guests report
//! (memory held, demand, pressure, alive) into every partition's allotment, the
//! memory the manager lets it keep (its balloon target).
//!
//! The division is the in-guest pool model's (`powervm_sim::distribute`), so the
//! model and the manager divide memory by one algorithm (docs/pool-manager.md):
//! - shares: every partition gets at least its I/O entitlement and at most its
//!   logical memory; the rest goes where demand is, by weight (0–255);
//! - allotments move toward the shares by at most the capped rate per tick,
//!   `min(L/256, pool/512)` pages (at least one);
//! - **free before grant**: a tick grants only memory that is free at its start,
//!   `pool − Σ max(allotment, held)`. Memory a guest has been asked to give back
//!   but still holds is not free, so `Σ allotments ≤ pool` and, once the guests
//!   follow, `Σ held ≤ pool`;
//! - a guest that holds more than its allotment for more than
//!   [`Params::uncooperative_after`] ticks (not counting ticks in which its
//!   allotment is still rising toward its share, where the capped rate is to
//!   blame) is **uncooperative**: it is granted
//!   nothing more, and the shares of the others are computed on the pool without
//!   the memory it keeps, so nobody waits for it. It becomes cooperative again as
//!   soon as it holds no more than its allotment;
//! - a guest that does not answer (stopped, or its monitor lost while its QEMU
//!   lives) is **unresponsive**: its allotment and share are frozen, what it may
//!   hold (`max(allotment, held)`) stays committed, and the others are divided
//!   the rest; it takes part again as soon as it answers. A guest whose answer
//!   is merely late is left out of one tick the same way, its state unchanged;
//! - a target sent to a guest but not yet known to be replaced by a newer one
//!   it acknowledged may still be followed: it stays committed (`in_flight`),
//!   so memory taken back from a guest is granted to others only once the
//!   guest has been told.
//! - a dead guest's memory returns to the pool at once.
//!
//! Initial allotments (before any guest runs) are the division of the whole pool
//! with everybody wanting all of its logical memory; they are not a shift and are
//! not rate-capped, as a partition is started inside its pool.
//!
//! Everything is in 4 KiB pages; there is no clock, no randomness and no hashing,
//! so a replayed sequence of observations gives the same allotments.

use powervm_sim::distribute::{cap_pages, step_allotments, water_fill, Claim, Slot};

/// Page size the policy counts in (the balloon's and CMO's unit).
pub use powervm_sim::PAGE_SIZE;

const MIB_BYTES: u64 = 1 << 20;

/// One partition's fixed configuration, in pages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Spec {
    /// Its name.
    pub name: String,
    /// Logical memory: the most it can be given.
    pub logical: u64,
    /// I/O entitlement: the least it is given.
    pub entitled: u64,
    /// Memory weight, 0–255.
    pub weight: u8,
}

/// Tunables of the policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Params {
    /// Pages added to a guest's used memory to make its demand.
    pub headroom: u64,
    /// Ticks a guest may hold more than its allotment before it is uncooperative.
    pub uncooperative_after: u32,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            headroom: (32 << 20) / PAGE_SIZE,
            uncooperative_after: 10,
        }
    }
}

/// What the manager saw of one guest before a tick.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Observation {
    /// The guest is gone (its QEMU exited or its socket closed).
    pub dead: bool,
    /// Pages the guest holds (RAM minus balloon), if known.
    pub held: Option<u64>,
    /// Pages the guest uses (total minus free, from its statistics), if known.
    pub used: Option<u64>,
    /// The guest reported pressure since the last tick (OOM-notifier events,
    /// allocation failures): it wants to grow whatever its free memory says.
    pub pressure: bool,
    /// The guest does not answer (stopped, or its monitor is gone while its
    /// QEMU lives): its allotment and share stay as they are, nothing is
    /// taken from or given to it, and what it may hold stays committed.
    pub unresponsive: bool,
    /// The guest's answer is late this tick (not yet long enough to call it
    /// unresponsive): it is left out of this tick as an unresponsive one is,
    /// but its state is not changed.
    pub late: bool,
    /// The balloon target (pages) QEMU had when `held` was read, if known. A
    /// guest lags only if it held more than that (and than its allotment): its
    /// figure may be older than the latest, lower target.
    pub told: Option<u64>,
    /// The highest balloon target (pages) the guest may still be following
    /// besides its allotment: one sent before its `held` was read and not yet
    /// known to be replaced. It may grow to it, so it stays committed (0: none).
    pub in_flight: u64,
}

/// How a partition stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Holds no more than its allotment.
    Following,
    /// Holds more than its allotment, for fewer ticks than the bound.
    Lagging,
    /// Held more than its allotment for longer than the bound: capped.
    Uncooperative,
    /// Does not answer: frozen where it was until it answers again.
    Unresponsive,
    /// Gone; holds nothing.
    Dead,
}

impl State {
    /// Short name for tables and traces.
    pub fn name(self) -> &'static str {
        match self {
            State::Following => "ok",
            State::Lagging => "lagging",
            State::Uncooperative => "uncoop",
            State::Unresponsive => "unresp",
            State::Dead => "dead",
        }
    }
}

/// One partition's running state, in pages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Partition {
    /// Its configuration.
    pub spec: Spec,
    /// What it may keep (its balloon target).
    pub allotment: u64,
    /// Where the allotment is heading.
    pub share: u64,
    /// What it holds, as last observed (before the first observation: all of its
    /// logical memory, as a guest boots with all of it).
    pub held: u64,
    /// Its demand as the last tick used it (clamped to `[entitled, logical]`).
    pub demand: u64,
    /// The highest target it may still be following besides its allotment
    /// ([`Observation::in_flight`]).
    pub in_flight: u64,
    /// Consecutive ticks it held more than its allotment.
    pub lagging_ticks: u32,
    /// How it stands.
    pub state: State,
}

impl Partition {
    /// The most its allotment moves in one tick.
    pub fn cap(&self, pool: u64) -> u64 {
        cap_pages(self.spec.logical, pool)
    }

    fn alive(&self) -> bool {
        self.state != State::Dead
    }

    /// What it may hold: what it holds, its allotment or a target it may still
    /// be following, whichever is highest.
    pub fn committed(&self) -> u64 {
        self.allotment.max(self.held).max(self.in_flight)
    }

    /// What it holds, or may still take, beyond its allotment (not yet given
    /// back).
    pub fn excess(&self) -> u64 {
        self.committed() - self.allotment
    }
}

/// Why a configuration is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PolicyError {
    /// No partitions.
    Empty,
    /// An empty pool.
    ZeroPool,
    /// A partition's entitlement is above its logical memory.
    EntitledAboveLogical(String),
    /// A partition with no logical memory.
    ZeroLogical(String),
    /// Two partitions with one name.
    DuplicateName(String),
    /// The entitlements add up to more than the pool.
    EntitlementsExceedPool {
        /// Σ entitlements, pages.
        entitled: u64,
        /// The pool, pages.
        pool: u64,
    },
}

impl std::fmt::Display for PolicyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PolicyError::Empty => write!(f, "no partitions"),
            PolicyError::ZeroPool => write!(f, "the pool is empty"),
            PolicyError::EntitledAboveLogical(n) => {
                write!(
                    f,
                    "partition {n}: entitled memory is above its logical memory"
                )
            }
            PolicyError::ZeroLogical(n) => write!(f, "partition {n}: no logical memory"),
            PolicyError::DuplicateName(n) => write!(f, "partition {n} is defined twice"),
            PolicyError::EntitlementsExceedPool { entitled, pool } => write!(
                f,
                "the I/O entitlements add up to {} MiB, more than the pool's {} MiB",
                entitled / (MIB_BYTES / PAGE_SIZE),
                pool / (MIB_BYTES / PAGE_SIZE)
            ),
        }
    }
}

impl std::error::Error for PolicyError {}

/// What one tick did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TickReport {
    /// Pages free at the start of the tick (`pool − Σ max(allotment, held)`).
    pub free_at_start: u64,
    /// Pages granted (allotment increases) this tick.
    pub granted: u64,
    /// Pages taken back (allotment decreases, deaths included) this tick.
    pub taken: u64,
    /// Σ allotments after the tick.
    pub allotted: u64,
    /// Σ allotments exceeded the pool after this tick (never expected).
    pub violation: bool,
}

/// What the manager asks of a pool policy: one tick at a time, the observations in,
/// the allotments out (in [`PoolPolicy::partitions`]), with the counters the summary
/// prints. [`Policy`] is the one there is; a second policy implements this trait
/// beside it and is built in [`crate::config::Config::policy`].
pub trait PoolPolicy: std::fmt::Debug + Send {
    /// The pool, in pages.
    fn pool(&self) -> u64;
    /// The partitions, in configuration order, with their allotments.
    fn partitions(&self) -> &[Partition];
    /// Ticks run.
    fn ticks(&self) -> u64;
    /// Pages moved (Σ |Δ allotment|) over all ticks, deaths not counted.
    fn moved(&self) -> u64;
    /// Ticks after which Σ allotments exceeded the pool.
    fn violations(&self) -> u64;
    /// One tick: takes the observations (one per partition, in order) and moves the
    /// allotments.
    fn tick(&mut self, obs: &[Observation]) -> TickReport;
}

impl PoolPolicy for Policy {
    fn pool(&self) -> u64 {
        self.pool
    }
    fn partitions(&self) -> &[Partition] {
        &self.parts
    }
    fn ticks(&self) -> u64 {
        self.ticks
    }
    fn moved(&self) -> u64 {
        self.moved
    }
    fn violations(&self) -> u64 {
        self.violations
    }
    fn tick(&mut self, obs: &[Observation]) -> TickReport {
        Policy::tick(self, obs)
    }
}

/// The pool and its partitions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    pool: u64,
    params: Params,
    parts: Vec<Partition>,
    ticks: u64,
    moved: u64,
    violations: u64,
}

impl Policy {
    /// Checks the configuration and makes the initial allotments. Refused when the
    /// entitlements do not fit the pool (before anything starts).
    pub fn new(pool: u64, specs: Vec<Spec>, params: Params) -> Result<Policy, PolicyError> {
        if specs.is_empty() {
            return Err(PolicyError::Empty);
        }
        if pool == 0 {
            return Err(PolicyError::ZeroPool);
        }
        let mut entitled = 0u64;
        for (i, s) in specs.iter().enumerate() {
            if s.logical == 0 {
                return Err(PolicyError::ZeroLogical(s.name.clone()));
            }
            if s.entitled > s.logical {
                return Err(PolicyError::EntitledAboveLogical(s.name.clone()));
            }
            if specs[..i].iter().any(|o| o.name == s.name) {
                return Err(PolicyError::DuplicateName(s.name.clone()));
            }
            entitled = entitled.saturating_add(s.entitled);
        }
        if entitled > pool {
            return Err(PolicyError::EntitlementsExceedPool { entitled, pool });
        }
        let claims: Vec<Claim> = specs
            .iter()
            .map(|s| Claim {
                min: s.entitled,
                want: s.logical,
                weight: s.weight,
            })
            .collect();
        let shares = water_fill(pool, &claims);
        let parts = specs
            .into_iter()
            .zip(shares)
            .map(|(spec, share)| Partition {
                allotment: share,
                share,
                held: spec.logical,
                demand: spec.logical,
                in_flight: 0,
                lagging_ticks: 0,
                state: State::Following,
                spec,
            })
            .collect();
        Ok(Policy {
            pool,
            params,
            parts,
            ticks: 0,
            moved: 0,
            violations: 0,
        })
    }

    /// Σ allotments of the living partitions.
    pub fn allotted(&self) -> u64 {
        self.parts
            .iter()
            .filter(|p| p.alive())
            .fold(0u64, |a, p| a.saturating_add(p.allotment))
    }

    /// Pages free now: `pool − Σ max(allotment, held, in flight)`.
    pub fn free(&self) -> u64 {
        let committed = self
            .parts
            .iter()
            .filter(|p| p.alive())
            .fold(0u64, |a, p| a.saturating_add(p.committed()));
        self.pool.saturating_sub(committed)
    }

    /// One tick: takes the observations (one per partition, in order; missing ones
    /// count as "nothing new"), then moves every allotment one capped step toward
    /// its share, granting only what is free.
    pub fn tick(&mut self, obs: &[Observation]) -> TickReport {
        let before: Vec<u64> = self.parts.iter().map(|p| p.allotment).collect();
        let mut taken_by_death = 0u64;
        // Left out of this tick: unresponsive or late.
        let mut frozen_now = vec![false; self.parts.len()];
        for (i, p) in self.parts.iter_mut().enumerate() {
            let o = obs.get(i).copied().unwrap_or_default();
            if !p.alive() {
                continue;
            }
            if o.dead {
                taken_by_death = taken_by_death.saturating_add(p.allotment);
                p.state = State::Dead;
                p.allotment = 0;
                p.held = 0;
                p.share = 0;
                p.demand = 0;
                continue;
            }
            p.in_flight = o.in_flight;
            if o.unresponsive || o.late {
                if o.unresponsive {
                    p.state = State::Unresponsive;
                }
                frozen_now[i] = true;
                continue;
            }
            if let Some(h) = o.held {
                p.held = h;
            }
            let lo = p.spec.entitled;
            let hi = p.spec.logical;
            p.demand = if o.pressure {
                hi
            } else {
                match o.used {
                    Some(u) => u.saturating_add(self.params.headroom).clamp(lo, hi),
                    None => hi,
                }
            };
            let bar = o.told.map_or(p.allotment, |t| t.max(p.allotment));
            if p.held > bar {
                // While its allotment is still rising toward its share, the lag is
                // the capped rate's, not the guest's: the bound is not counted.
                if p.share <= p.allotment {
                    p.lagging_ticks = p.lagging_ticks.saturating_add(1);
                }
                p.state = if p.lagging_ticks > self.params.uncooperative_after {
                    State::Uncooperative
                } else {
                    State::Lagging
                };
            } else {
                p.lagging_ticks = 0;
                p.state = State::Following;
            }
        }
        let free_at_start = self.free();

        // Shares over the pool without what uncooperative guests keep beyond their
        // allotment: the others' shares are what they can really get.
        let kept: u64 = self
            .parts
            .iter()
            .filter(|p| p.state == State::Uncooperative)
            .fold(0u64, |a, p| a.saturating_add(p.excess()));
        // An unresponsive (or late) guest is left out of the division: what it
        // may hold (its allotment, or more if it held more or may still follow
        // a higher target) stays committed to it.
        let frozen: u64 = self
            .parts
            .iter()
            .zip(&frozen_now)
            .filter(|(p, &f)| f && p.alive())
            .fold(0u64, |a, (p, _)| a.saturating_add(p.committed()));
        let live: Vec<usize> = (0..self.parts.len())
            .filter(|&i| self.parts[i].alive() && !frozen_now[i])
            .collect();
        let claims: Vec<Claim> = live
            .iter()
            .map(|&i| {
                let p = &self.parts[i];
                let min = p.spec.entitled;
                let mut want = p.demand.clamp(min, p.spec.logical);
                if p.state == State::Uncooperative {
                    want = want.min(p.allotment).max(min);
                }
                Claim {
                    min,
                    want,
                    weight: p.spec.weight,
                }
            })
            .collect();
        let shares = water_fill(
            self.pool.saturating_sub(kept).saturating_sub(frozen),
            &claims,
        );
        for (&i, s) in live.iter().zip(shares) {
            self.parts[i].share = s;
        }

        // The capped step, on a pool from which memory not yet given back is
        // removed: what it grants comes out of `free_at_start` only.
        let not_back: u64 = live
            .iter()
            .fold(0u64, |a, &i| a.saturating_add(self.parts[i].excess()));
        let mut slots: Vec<Slot> = live
            .iter()
            .map(|&i| {
                let p = &self.parts[i];
                Slot {
                    share: p.share,
                    allotment: p.allotment,
                    cap: p.cap(self.pool),
                    weight: p.spec.weight,
                }
            })
            .collect();
        step_allotments(
            self.pool.saturating_sub(not_back).saturating_sub(frozen),
            &mut slots,
        );
        for (&i, s) in live.iter().zip(&slots) {
            self.parts[i].allotment = s.allotment;
        }

        let mut granted = 0u64;
        let mut taken = taken_by_death;
        for (p, b) in self.parts.iter().zip(before) {
            if !p.alive() {
                continue;
            }
            if p.allotment > b {
                granted += p.allotment - b;
            } else {
                taken += b - p.allotment;
            }
        }
        self.moved = self
            .moved
            .saturating_add(granted)
            .saturating_add(taken - taken_by_death);
        self.ticks += 1;
        let allotted = self.allotted();
        let violation = allotted > self.pool;
        if violation {
            self.violations += 1;
        }
        TickReport {
            free_at_start,
            granted,
            taken,
            allotted,
            violation,
        }
    }
}

#[cfg(test)]
mod tests;
