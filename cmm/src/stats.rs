//! Every counter `cmm` prints, in one struct, each updated where its event happens
//! (never recomputed at print time), and the reason the balloon last fell short.

use core::fmt;

use hcall::{HcallError, MppContradiction};

/// Balloon and memory-manager counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CmmStats {
    /// Pages loaned now (`loaned_kb` / 4). Mirrors the frame table's loaned count.
    pub loaned_pages: u64,
    /// The current goal (`loaned_target_kb` / 4).
    pub loaned_target_pages: u64,
    /// OOM credit: pages given back on OOM since the last `reset-oom`.
    pub oom_freed_pages: u64,
    /// The loan request (bytes) of the last successful H_GET_MPP.
    pub last_loan_request: i64,
    /// Balloon rounds run (delay elapsed).
    pub polls: u64,
    /// H_GET_MPP failures (the target then stays as it was).
    pub get_mpp_failures: u64,
    /// H_GET_MPP answers refused because their figures contradict each other
    /// (the target then stays as it was).
    pub mpp_rejected: u64,
    /// Pages ever loaned.
    pub pages_loaned_total: u64,
    /// Pages ever returned (for any reason).
    pub pages_returned_total: u64,
    /// Rounds that loaned fewer pages than the target asked for.
    pub loan_shortfalls: u64,
    /// Failed H_PAGE_INIT page-state changes of every kind (Loaned, Active, Unused).
    pub page_state_failures: u64,
    /// Of those, Loaned requests (the frame stayed free).
    pub loan_failures: u64,
    /// Of those, Active requests while returning (the frame stayed loaned, retried).
    pub return_failures: u64,
    /// Of those, best-effort hints on allocation (Active) and free (Unused).
    pub hint_failures: u64,
    /// OOM notifications handled.
    pub oom_events: u64,
    /// Pages returned by OOM notifications, ever (not reset by `reset-oom`).
    pub oom_pages_total: u64,
    /// Pages returned to bring the free list back to `maxfree` (conservative).
    pub refill_pages_total: u64,
    /// Poisoned loaned pages found changed: a loaned page was used.
    pub poison_errors: u64,
    /// Page allocations that failed even after the OOM chain ran.
    pub alloc_failures: u64,
}

impl CmmStats {
    /// Every unsigned counter with its printed name, in print order.
    pub fn counters(&self) -> [(&'static str, u64); 18] {
        [
            ("loaned_pages", self.loaned_pages),
            ("loaned_target_pages", self.loaned_target_pages),
            ("oom_freed_pages", self.oom_freed_pages),
            ("polls", self.polls),
            ("get_mpp_failures", self.get_mpp_failures),
            ("mpp_rejected", self.mpp_rejected),
            ("pages_loaned_total", self.pages_loaned_total),
            ("pages_returned_total", self.pages_returned_total),
            ("loan_shortfalls", self.loan_shortfalls),
            ("page_state_failures", self.page_state_failures),
            ("loan_failures", self.loan_failures),
            ("return_failures", self.return_failures),
            ("hint_failures", self.hint_failures),
            ("oom_events", self.oom_events),
            ("oom_pages_total", self.oom_pages_total),
            ("refill_pages_total", self.refill_pages_total),
            ("poison_errors", self.poison_errors),
            ("alloc_failures", self.alloc_failures),
        ]
    }
}

/// Why the balloon could not do what the target asked (reported once per change).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shortfall {
    /// H_GET_MPP failed: the previous target stays in force.
    GetMpp(HcallError),
    /// H_GET_MPP's figures contradict each other: the previous target stays.
    Mpp(MppContradiction),
    /// No free frame left to loan.
    NoFreeFrame,
    /// Conservative policy: the free list is at `maxfree`.
    FreeListAtMaxfree,
    /// An H_PAGE_INIT(Loaned) failed: the frame stayed free.
    Loan(HcallError),
    /// An H_PAGE_INIT(Active) failed while returning: the frame stays loaned and is
    /// retried next round.
    Return(HcallError),
}

impl fmt::Display for Shortfall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Shortfall::GetMpp(e) => write!(
                f,
                "cannot read the loan request ({e}); keeping the previous target"
            ),
            Shortfall::Mpp(c) => write!(f, "{c}; keeping the previous target"),
            Shortfall::NoFreeFrame => f.write_str("no free frame left to loan"),
            Shortfall::FreeListAtMaxfree => {
                f.write_str("free list at maxfree, loaning paused (conservative policy)")
            }
            Shortfall::Loan(e) => write!(f, "loaning stopped: {e}"),
            Shortfall::Return(e) => write!(
                f,
                "returning stopped: {e}; the page stays loaned and is retried"
            ),
        }
    }
}
