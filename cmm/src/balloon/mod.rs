//! The CMM balloon (docs/cmo.md §6): once per `delay` it reads the loan
//! request with H_GET_MPP, computes the target (§6.3, [`crate::target`]), and loans
//! or returns pages toward it as the [`crate::policy`] says; it is also the
//! memory manager's OOM notifier (§6.6).
//!
//! Where it does better than Linux (§11): a zero delay is refused; a page whose
//! Active call fails stays loaned and is retried instead of being used while the
//! hypervisor thinks it is loaned; a reason for falling short is reported once when
//! it changes, not every poll; raising `min_mem_mb`, `disable 1` and `policy off`
//! return the excess at once.
//!
//! The balloon does not own the frames or the counters: [`crate::Mm`] does, and
//! lends them for each call (see `pages::Ctx`).

pub(crate) mod pages;

use crate::params::{Param, Params, Policy};
use crate::policy::{plan, Plan, PlanInput};
use crate::stats::Shortfall;
use crate::target::{loan_ceiling, loan_target, TargetInput};
use crate::units::PAGE_SIZE;
use pages::{loan_pages, return_pages, Ctx};

/// What one call of [`crate::Mm::step`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StepReport {
    /// False if the poll interval had not elapsed (nothing else happened).
    pub polled: bool,
    /// The loan request read this round (`None`: not read, or H_GET_MPP failed).
    pub loan_request: Option<i64>,
    /// The target (docs/cmo.md §6.3) computed this round (`None` when no request was read).
    pub computed_target: Option<u64>,
    /// The target the round worked toward (before a shortfall lowered it).
    pub target: u64,
    /// Pages loaned this round.
    pub pages_loaned: u64,
    /// Pages returned this round.
    pub pages_returned: u64,
    /// Why the round fell short of the target, if it did.
    pub shortfall: Option<Shortfall>,
    /// True when `shortfall` differs from the previous round's: log it then.
    pub shortfall_changed: bool,
}

/// The balloon's own state: its parameters and its timing.
#[derive(Clone, Debug, Default)]
pub struct Balloon {
    params: Params,
    last_poll_ms: Option<u64>,
    shortfall: Option<Shortfall>,
    target_stable: bool,
}

impl Balloon {
    /// A balloon with these parameters; it polls at its first step.
    pub fn new(params: Params) -> Self {
        Balloon {
            params,
            ..Balloon::default()
        }
    }

    /// The parameters.
    pub fn params(&self) -> &Params {
        &self.params
    }

    /// The reason the last round fell short, if it did.
    pub fn shortfall(&self) -> Option<Shortfall> {
        self.shortfall
    }

    /// True if the last round computed the same target as the one before.
    pub fn target_stable(&self) -> bool {
        self.target_stable
    }

    /// True unless disabled or under policy `off`.
    pub fn active(&self) -> bool {
        !self.params.disabled() && self.params.policy() != Policy::Off
    }

    /// The most the balloon may loan now.
    pub(crate) fn ceiling(&self, total_pages: u64) -> u64 {
        if self.active() {
            loan_ceiling(total_pages, self.params.min_pages())
        } else {
            0
        }
    }

    /// Changes a parameter (validated; nothing changes on error).
    pub(crate) fn set(&mut self, name: &str, value: &str) -> Result<Param, crate::CmmError> {
        let was_disabled = self.params.disabled();
        let param = self.params.set(name, value)?;
        if was_disabled && !self.params.disabled() {
            // Restarted: poll at the next step.
            self.last_poll_ms = None;
        }
        Ok(param)
    }

    /// Makes the next step a round, whatever the delay (the hypervisor's request
    /// changed: react now rather than at the next poll).
    pub fn poll_now(&mut self) {
        self.last_poll_ms = None;
    }

    /// When the next round is due (`None`: at the next step, it never polled).
    pub fn next_poll_ms(&self) -> Option<u64> {
        self.last_poll_ms
            .map(|last| last.saturating_add(self.params.delay_ms()))
    }

    /// One balloon round if `delay` has elapsed since the last one (`now_ms` from
    /// any monotonic clock; a clock that went backwards counts as elapsed).
    pub(crate) fn step(&mut self, now_ms: u64, ctx: &mut Ctx<'_>) -> StepReport {
        if let Some(last) = self.last_poll_ms {
            if now_ms >= last && now_ms - last < self.params.delay_ms() {
                return StepReport::default();
            }
        }
        self.last_poll_ms = Some(now_ms);
        ctx.stats.polls = ctx.stats.polls.saturating_add(1);
        let previous_target = ctx.stats.loaned_target_pages;
        let mut report = StepReport {
            polled: true,
            ..StepReport::default()
        };
        let mut shortfall = None;
        if !self.active() {
            ctx.stats.loaned_target_pages = 0;
        } else {
            let counts = ctx.frames.counts();
            let logical = counts
                .total
                .saturating_add(counts.reserved)
                .saturating_mul(PAGE_SIZE);
            match ctx.hv.get_mpp() {
                Ok(mpp) if mpp.contradiction(logical).is_some() => {
                    ctx.stats.mpp_rejected = ctx.stats.mpp_rejected.saturating_add(1);
                    shortfall = mpp.contradiction(logical).map(Shortfall::Mpp);
                }
                Ok(mpp) => {
                    let t = loan_target(TargetInput {
                        loan_request_bytes: mpp.loan_request,
                        loaned_pages: counts.loaned,
                        oom_freed_pages: ctx.stats.oom_freed_pages,
                        total_pages: counts.total,
                        min_pages: self.params.min_pages(),
                    });
                    ctx.stats.last_loan_request = mpp.loan_request;
                    ctx.stats.loaned_target_pages = t;
                    report.loan_request = Some(mpp.loan_request);
                    report.computed_target = Some(t);
                }
                Err(e) => {
                    ctx.stats.get_mpp_failures = ctx.stats.get_mpp_failures.saturating_add(1);
                    shortfall = Some(Shortfall::GetMpp(e));
                }
            }
        }
        report.target = ctx.stats.loaned_target_pages;
        let (loaned, returned, why) = self.run_plan(ctx);
        report.pages_loaned = loaned;
        report.pages_returned = returned;
        report.shortfall = shortfall.or(why);
        report.shortfall_changed = report.shortfall != self.shortfall;
        self.shortfall = report.shortfall;
        self.target_stable = ctx.stats.loaned_target_pages == previous_target;
        report
    }

    /// Plans and carries out one round toward `stats.loaned_target_pages`.
    fn run_plan(&self, ctx: &mut Ctx<'_>) -> (u64, u64, Option<Shortfall>) {
        let counts = ctx.frames.counts();
        let p = plan(PlanInput {
            policy: if self.active() {
                self.params.policy()
            } else {
                Policy::Off
            },
            target: ctx.stats.loaned_target_pages,
            loaned: counts.loaned,
            free: counts.free,
            minfree: self.params.minfree(),
            maxfree: self.params.maxfree(),
        });
        match p {
            Plan::Hold => (0, 0, None),
            Plan::Loan { pages, limited } => {
                let (done, why) = loan_pages(ctx, pages, self.params.poison());
                let why = why.or(limited.then_some(Shortfall::FreeListAtMaxfree));
                if why.is_some() {
                    // Linux: a short inflate makes the target what was achieved.
                    let s = &mut *ctx.stats;
                    s.loan_shortfalls = s.loan_shortfalls.saturating_add(1);
                    s.loaned_target_pages = s.loaned_target_pages.min(s.loaned_pages);
                }
                (done, 0, why)
            }
            Plan::Return { pages, refill } => {
                let (done, why) = return_pages(ctx, pages);
                if refill {
                    let s = &mut *ctx.stats;
                    s.refill_pages_total = s.refill_pages_total.saturating_add(done);
                    s.loaned_target_pages = s.loaned_target_pages.min(s.loaned_pages);
                }
                (0, done, why)
            }
        }
    }

    /// Conservative policy, called after every allocation: when the free list has
    /// dropped below `minfree`, return loaned pages until `maxfree` frames are free.
    pub(crate) fn refill_free_list(&self, ctx: &mut Ctx<'_>) -> u64 {
        if !self.active() || self.params.policy() != Policy::Conservative {
            return 0;
        }
        let free = ctx.frames.counts().free;
        if free >= self.params.minfree() {
            return 0;
        }
        let want = self.params.maxfree().saturating_sub(free);
        let (done, _) = return_pages(ctx, want);
        ctx.stats.refill_pages_total = ctx.stats.refill_pages_total.saturating_add(done);
        ctx.stats.loaned_target_pages = ctx.stats.loaned_target_pages.min(ctx.stats.loaned_pages);
        done
    }

    /// The OOM notifier: returns `min(oom_kb / 4, loaned)` pages, adds exactly the
    /// number returned to the OOM credit, and stops further loaning until the next
    /// poll (target := what stays loaned; never raised, should a return fail).
    pub(crate) fn on_oom(&self, ctx: &mut Ctx<'_>) -> u64 {
        let n = self.params.oom_pages().min(ctx.stats.loaned_pages);
        let (freed, _) = return_pages(ctx, n);
        let s = &mut *ctx.stats;
        s.oom_events = s.oom_events.saturating_add(1);
        s.oom_freed_pages = s.oom_freed_pages.saturating_add(freed);
        s.oom_pages_total = s.oom_pages_total.saturating_add(freed);
        s.loaned_target_pages = s.loaned_target_pages.min(s.loaned_pages);
        freed
    }

    /// After a parameter change: lower the target to the new ceiling (0 when
    /// disabled or `off`) and return the excess now. Loaning waits for the next poll.
    pub(crate) fn enforce_ceiling(&self, ctx: &mut Ctx<'_>) -> (u64, Option<Shortfall>) {
        let ceiling = self.ceiling(ctx.frames.counts().total);
        let s = &mut *ctx.stats;
        s.loaned_target_pages = s.loaned_target_pages.min(ceiling);
        let excess = s.loaned_pages.saturating_sub(s.loaned_target_pages);
        return_pages(ctx, excess)
    }

    /// Returns every loaned page (shutdown, restart): what is still loaned after.
    pub(crate) fn return_all(&self, ctx: &mut Ctx<'_>) -> u64 {
        let (_, _) = return_pages(ctx, ctx.stats.loaned_pages);
        let s = &mut *ctx.stats;
        s.loaned_target_pages = s.loaned_target_pages.min(s.loaned_pages);
        s.loaned_pages
    }
}
