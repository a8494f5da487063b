//! The one retry policy for busy returns, used by every caller that retries.
//!
//! H_BUSY is retried after [`BUSY_WAIT_US`]; a long-busy status (9900..=9905) after
//! the delay it hints (1 ms .. 100 s). The policy gives up, returning the last error,
//! after `max_attempts` calls or when the next wait would take the time spent since
//! the first failure past `max_total_wait_us`. Any other error is returned at once.
//! Time comes from a [`Clock`], so the policy is tested on the host with a fake one.

use crate::status::{HStatus, HcallError};

/// Wait before retrying H_BUSY, in microseconds.
pub const BUSY_WAIT_US: u64 = 10;

/// A source of time and a way to let it pass.
pub trait Clock {
    /// Microseconds since some fixed point.
    fn now_us(&self) -> u64;
    /// Waits (or lets background work run) for about `us` microseconds.
    fn delay_us(&mut self, us: u64);
}

/// How long to keep retrying busy returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Most calls in total (the first one included); 0 and 1 both mean "no retry".
    pub max_attempts: u32,
    /// Most time from the first failure until the last retry may start, in µs.
    pub max_total_wait_us: u64,
}

impl Default for RetryPolicy {
    /// 16 attempts within 1 s: plenty for H_BUSY and the 1/10/100 ms long-busy
    /// hints; a hint of 1 s or more gives up at once (the caller decides whether to
    /// come back later) rather than stall the kernel.
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 16,
            max_total_wait_us: 1_000_000,
        }
    }
}

impl RetryPolicy {
    /// One attempt, no retries.
    pub const NONE: RetryPolicy = RetryPolicy {
        max_attempts: 1,
        max_total_wait_us: 0,
    };

    /// The wait before retrying after `status`, or `None` if it is not retryable.
    pub fn wait_for(status: HStatus) -> Option<u64> {
        match status {
            HStatus::Busy => Some(BUSY_WAIT_US),
            HStatus::LongBusy { hint_ms, .. } => Some(hint_ms.saturating_mul(1000)),
            _ => None,
        }
    }

    /// Runs `f` until it succeeds, fails with a non-retryable status, or the policy
    /// gives up; returns the last result.
    pub fn run<T>(
        &self,
        clock: &mut impl Clock,
        mut f: impl FnMut() -> Result<T, HcallError>,
    ) -> Result<T, HcallError> {
        // The clock is first read at the first failure, so a call that succeeds
        // costs nothing more than the call (the time of that one call is not
        // counted against the budget).
        let mut start = None;
        let mut attempts: u32 = 0;
        loop {
            let err = match f() {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            attempts = attempts.saturating_add(1);
            let Some(wait) = Self::wait_for(err.status) else {
                return Err(err);
            };
            if attempts >= self.max_attempts {
                return Err(err);
            }
            let now = clock.now_us();
            let spent = now.saturating_sub(*start.get_or_insert(now));
            if spent.saturating_add(wait) > self.max_total_wait_us {
                return Err(err);
            }
            clock.delay_us(wait);
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use alloc::vec::Vec;

    /// A clock that only moves when the policy waits; records every wait. Also
    /// used by the tests of [`crate::retrying`].
    #[derive(Default)]
    pub(crate) struct FakeClock {
        pub(crate) now: u64,
        pub(crate) delays: Vec<u64>,
    }

    impl Clock for FakeClock {
        fn now_us(&self) -> u64 {
            self.now
        }
        fn delay_us(&mut self, us: u64) {
            self.delays.push(us);
            self.now = self.now.saturating_add(us);
        }
    }

    fn err(status: HStatus) -> HcallError {
        HcallError {
            call: "H_TEST",
            status,
        }
    }

    /// A call that returns the scripted statuses, then succeeds with the call count.
    fn scripted(script: Vec<HStatus>) -> impl FnMut() -> Result<u32, HcallError> {
        let mut calls = 0u32;
        move || {
            let next = script.get(calls as usize).copied();
            calls += 1;
            match next {
                Some(s) => Err(err(s)),
                None => Ok(calls),
            }
        }
    }

    #[test]
    fn busy_then_success() {
        let mut clock = FakeClock::default();
        let f = scripted(alloc::vec![HStatus::Busy, HStatus::Busy]);
        assert_eq!(RetryPolicy::default().run(&mut clock, f), Ok(3));
        assert_eq!(clock.delays, [BUSY_WAIT_US, BUSY_WAIT_US]);
    }

    #[test]
    fn long_busy_waits_the_hint() {
        let mut clock = FakeClock::default();
        let f = scripted(alloc::vec![
            HStatus::from_raw(9901),
            HStatus::from_raw(9900),
            HStatus::from_raw(9902)
        ]);
        assert_eq!(RetryPolicy::default().run(&mut clock, f), Ok(4));
        assert_eq!(clock.delays, [10_000, 1_000, 100_000]);
        assert_eq!(clock.now, 111_000);
    }

    #[test]
    fn gives_up_after_the_attempt_bound() {
        let mut clock = FakeClock::default();
        let mut calls = 0;
        let policy = RetryPolicy {
            max_attempts: 5,
            max_total_wait_us: u64::MAX,
        };
        let r: Result<(), _> = policy.run(&mut clock, || {
            calls += 1;
            Err(err(HStatus::Busy))
        });
        assert_eq!(r, Err(err(HStatus::Busy)));
        assert_eq!(calls, 5);
        assert_eq!(clock.delays.len(), 4);
    }

    #[test]
    fn gives_up_when_the_budget_would_be_exceeded() {
        let mut clock = FakeClock::default();
        let mut calls = 0;
        let policy = RetryPolicy {
            max_attempts: 100,
            max_total_wait_us: 250_000,
        };
        let r: Result<(), _> = policy.run(&mut clock, || {
            calls += 1;
            Err(err(HStatus::from_raw(9902)))
        });
        assert_eq!(r.unwrap_err().status, HStatus::from_raw(9902));
        // 100 ms + 100 ms fit in 250 ms, a third would not.
        assert_eq!(clock.delays, [100_000, 100_000]);
        assert_eq!(calls, 3);
        // A 100 s hint never waits under the default budget.
        let mut clock = FakeClock::default();
        let r: Result<(), _> =
            RetryPolicy::default().run(&mut clock, || Err(err(HStatus::from_raw(9905))));
        assert!(r.is_err());
        assert!(clock.delays.is_empty());
    }

    #[test]
    fn non_retryable_errors_return_at_once() {
        for st in [
            HStatus::Parameter,
            HStatus::Function,
            HStatus::Constrained,
            HStatus::Hardware,
            HStatus::Other(2),
        ] {
            let mut clock = FakeClock::default();
            let mut calls = 0;
            let r: Result<(), _> = RetryPolicy::default().run(&mut clock, || {
                calls += 1;
                Err(err(st))
            });
            assert_eq!(r, Err(err(st)));
            assert_eq!(calls, 1);
            assert!(clock.delays.is_empty());
        }
    }

    #[test]
    fn none_and_zero_attempts_call_once() {
        for policy in [
            RetryPolicy::NONE,
            RetryPolicy {
                max_attempts: 0,
                max_total_wait_us: u64::MAX,
            },
        ] {
            let mut clock = FakeClock::default();
            let mut calls = 0;
            let r: Result<(), _> = policy.run(&mut clock, || {
                calls += 1;
                Err(err(HStatus::Busy))
            });
            assert!(r.is_err());
            assert_eq!(calls, 1);
        }
    }

    #[test]
    fn wait_table() {
        assert_eq!(RetryPolicy::wait_for(HStatus::Busy), Some(10));
        for (code, us) in [
            (9900, 1_000),
            (9901, 10_000),
            (9902, 100_000),
            (9903, 1_000_000),
            (9904, 10_000_000),
            (9905, 100_000_000),
        ] {
            assert_eq!(RetryPolicy::wait_for(HStatus::from_raw(code)), Some(us));
        }
        assert_eq!(RetryPolicy::wait_for(HStatus::Success), None);
    }
}
