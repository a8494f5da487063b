//! [`Retrying`]: the one retry path for hcalls. A [`Hypervisor`] decorator that
//! makes every hcall of the wrapped backend under the [`RetryPolicy`] (H_BUSY after
//! a short wait, long-busy after the hinted delay, up to the policy's bounds), so
//! the balloon, the VIO accounting and the shell get the same behaviour from the
//! real hypervisor and from the pool model. A batch of page states that stops on
//! a busy page goes on from that page; the [`BatchError`] of a batch that gives up
//! counts every page done across the attempts. The console retries its own
//! H_PUT_TERM_CHAR with the same policy ([`RetryPolicy::run`]).

use crate::hypervisor::{BackendKind, BatchError, CmoFaultStats, Hypervisor, Simulation};
use crate::page::PageState;
use crate::retry::{Clock, RetryPolicy};
use crate::status::HcallError;

/// The backend `H`, every hcall retried under `policy` with time from `C`.
#[derive(Debug)]
pub struct Retrying<H, C> {
    inner: H,
    clock: C,
    policy: RetryPolicy,
}

impl<H: Hypervisor, C: Clock> Retrying<H, C> {
    /// `inner` under the default policy.
    pub fn new(inner: H, clock: C) -> Self {
        Self::with_policy(inner, clock, RetryPolicy::default())
    }

    /// `inner` under `policy`.
    pub fn with_policy(inner: H, clock: C, policy: RetryPolicy) -> Self {
        Retrying {
            inner,
            clock,
            policy,
        }
    }

    /// The wrapped backend.
    pub fn inner(&self) -> &H {
        &self.inner
    }

    /// The wrapped backend, for what the trait does not cover.
    pub fn inner_mut(&mut self) -> &mut H {
        &mut self.inner
    }

    /// The clock (a fake one in tests).
    pub fn clock(&self) -> &C {
        &self.clock
    }
}

impl<H: Hypervisor, C: Clock> Hypervisor for Retrying<H, C> {
    crate::hypervisor_calls!(retrying);

    fn set_page_state(&mut self, addr: u64, state: PageState) -> Result<(), HcallError> {
        let h = &mut self.inner;
        self.policy
            .run(&mut self.clock, || h.set_page_state(addr, state))
    }
    fn set_page_states(&mut self, addrs: &[u64], state: PageState) -> Result<(), BatchError> {
        let h = &mut self.inner;
        let mut done = 0usize;
        let r = self.policy.run(&mut self.clock, || {
            let rest = addrs.get(done..).unwrap_or(&[]);
            h.set_page_states(rest, state).map_err(|e| {
                done = done.saturating_add(e.done).min(addrs.len());
                e.error
            })
        });
        r.map_err(|error| BatchError { done, error })
    }
}

/// The simulation hooks are not hcalls: nothing to retry, straight through.
impl<H: Simulation, C> Simulation for Retrying<H, C> {
    fn kind(&self) -> BackendKind {
        self.inner.kind()
    }
    fn note_access(&mut self, addr: u64) {
        self.inner.note_access(addr)
    }
    fn cmo_faults(&self) -> Option<CmoFaultStats> {
        self.inner.cmo_faults()
    }
    fn advance(&mut self, now_us: u64) {
        self.inner.advance(now_us)
    }
    fn wait_report(&mut self) -> Option<bool> {
        self.inner.wait_report()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::{call_every_method, Recorder, EVERY_METHOD};
    use crate::retry::tests::FakeClock;
    use crate::status::HStatus;
    use alloc::vec::Vec;

    fn retrying() -> Retrying<Recorder, FakeClock> {
        Retrying::new(Recorder::default(), FakeClock::default())
    }

    fn fail(r: &mut Retrying<Recorder, FakeClock>, n: usize, status: HStatus) {
        r.inner_mut().fail.extend(core::iter::repeat_n(status, n));
    }

    #[test]
    fn every_method_is_forwarded_once_when_nothing_fails() {
        let mut r = retrying();
        call_every_method(&mut r);
        assert_eq!(r.inner().log(), EVERY_METHOD);
        assert!(r.clock().delays.is_empty());
    }

    #[test]
    fn busy_answers_are_absorbed_and_other_errors_pass_through() {
        let mut r = retrying();
        fail(&mut r, 2, HStatus::Busy);
        assert!(r.get_mpp().is_ok());
        assert_eq!(r.inner().log(), ["get_mpp"; 3]);
        assert_eq!(r.clock().delays, [10, 10]);
        fail(&mut r, 1, HStatus::Hardware);
        assert_eq!(r.set_mpp(8 << 20, 1).unwrap_err().status, HStatus::Hardware);
        assert_eq!(r.clock().delays.len(), 2, "a hardware error is not retried");
        // A long-busy hint is waited out.
        fail(&mut r, 1, HStatus::from_raw(9901));
        r.put_tce(0x1000_0000, 0, 0x2000).unwrap();
        assert_eq!(r.clock().delays.last(), Some(&10_000));
        // An endless stream gives up after the policy's bound.
        fail(&mut r, 1000, HStatus::Busy);
        assert_eq!(r.get_tce(0x1000_0000, 0).unwrap_err().status, HStatus::Busy);
        assert_eq!(r.inner().fail.len(), 1000 - 16);
    }

    #[test]
    fn a_busy_batch_goes_on_from_the_refused_page() {
        let mut r = retrying();
        let addrs: Vec<u64> = (0..8).map(|i| 0x10_0000 + i * 4096).collect();
        // The fourth page is refused once: the retry starts from it.
        r.inner_mut().fail.extend([HStatus::Success; 3]);
        r.inner_mut().fail.push_back(HStatus::Busy);
        r.set_page_states(&addrs, PageState::Loaned).unwrap();
        assert_eq!(r.inner().loaned.len(), 8);
        assert_eq!(r.inner().log(), ["set_page_states"; 2]);
        // Giving up reports every page done across the attempts.
        r.inner_mut().clear_log();
        r.inner_mut().fail.extend([HStatus::Success; 2]);
        fail(&mut r, 1000, HStatus::Busy);
        let e = r.set_page_states(&addrs, PageState::Active).unwrap_err();
        assert_eq!(e.done, 2);
        assert_eq!(e.error.status, HStatus::Busy);
        assert_eq!(r.inner().loaned.len(), 6, "exactly the pages done changed");
        r.inner_mut().fail.clear();
        r.set_page_states(&addrs[2..4], PageState::Active).unwrap();
        assert_eq!(r.inner().loaned.len(), 4);
    }
}
