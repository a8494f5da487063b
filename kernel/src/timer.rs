//! Tickless timers: one facility for everything that waits (the balloon poll, the
//! pool model's steps, `sleep`, `cmm wait` timeouts, the console's timed poll).
//!
//! Each timer is named by a key and has at most one deadline, in timebase ticks.
//! The main loop programs the decrementer for [`Timers::next_deadline`] (through
//! [`decrementer_ticks`]), cedes, and on waking takes every due timer with
//! [`Timers::expire`]. Rules the host tests check:
//!
//! - none early: `expire(now)` returns only timers whose deadline is `<= now`;
//! - none missed: it returns every such timer, earliest first;
//! - none lost: a timer re-armed while the expired batch is being handled keeps
//!   its new deadline (expire removes the batch before anyone handles it).
//!
//! When no timer is armed nothing ticks: the decrementer is set to its largest
//! value and the kernel sleeps until an interrupt.

use alloc::vec::Vec;

/// The decrementer is a 32-bit signed down-counter: the largest positive value.
pub const DEC_MAX: u64 = 0x7fff_ffff;

/// A set of named deadlines.
#[derive(Clone, Debug)]
pub struct Timers<K> {
    armed: Vec<(K, u64)>,
}

impl<K> Default for Timers<K> {
    fn default() -> Self {
        Timers { armed: Vec::new() }
    }
}

impl<K: Copy + Eq> Timers<K> {
    /// No timer armed.
    pub const fn new() -> Self {
        Timers { armed: Vec::new() }
    }

    /// Arms `key` for `deadline`, replacing an earlier or later one.
    pub fn arm(&mut self, key: K, deadline: u64) {
        match self.armed.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = deadline,
            None => self.armed.push((key, deadline)),
        }
    }

    /// Arms `key` for `deadline` unless it is already armed for an earlier time.
    pub fn arm_no_later(&mut self, key: K, deadline: u64) {
        match self.deadline(key) {
            Some(d) if d <= deadline => {}
            _ => self.arm(key, deadline),
        }
    }

    /// Disarms `key` (nothing happens if it was not armed).
    pub fn cancel(&mut self, key: K) {
        self.armed.retain(|(k, _)| *k != key);
    }

    /// The deadline of `key`, if armed.
    pub fn deadline(&self, key: K) -> Option<u64> {
        self.armed.iter().find(|(k, _)| *k == key).map(|&(_, d)| d)
    }

    /// The earliest deadline of all, if any timer is armed.
    pub fn next_deadline(&self) -> Option<u64> {
        self.armed.iter().map(|&(_, d)| d).min()
    }

    /// Number of armed timers.
    pub fn len(&self) -> usize {
        self.armed.len()
    }

    /// True when no timer is armed.
    pub fn is_empty(&self) -> bool {
        self.armed.is_empty()
    }

    /// Removes and returns every timer due at `now` (deadline `<= now`), earliest
    /// first (ties in arming order). Timers armed afterwards, also while the
    /// returned ones are handled, stay armed for a later call.
    pub fn expire(&mut self, now: u64) -> Vec<K> {
        let mut due: Vec<(K, u64)> = Vec::new();
        self.armed.retain(|&(k, d)| {
            if d <= now {
                due.push((k, d));
                false
            } else {
                true
            }
        });
        due.sort_by_key(|&(_, d)| d);
        due.into_iter().map(|(k, _)| k).collect()
    }

    /// Removes every timer due at `now` (deadline `<= now`) and returns how
    /// many, allocating nothing: for a loop that looks at all its work on every
    /// wake-up, so the timer that woke it needs no dispatch.
    pub fn discard_due(&mut self, now: u64) -> usize {
        let before = self.armed.len();
        self.armed.retain(|&(_, d)| d > now);
        before - self.armed.len()
    }
}

/// The value to load into the decrementer at `now` for `deadline`: the ticks
/// left, at least 1 (a deadline already passed interrupts at once) and at most
/// [`DEC_MAX`] (a later deadline wakes the kernel early, which re-programs it).
/// Without a deadline, [`DEC_MAX`].
pub fn decrementer_ticks(now: u64, deadline: Option<u64>) -> u64 {
    match deadline {
        Some(d) => d.saturating_sub(now).clamp(1, DEC_MAX),
        None => DEC_MAX,
    }
}

/// `now + ms` milliseconds at `hz` ticks per second, saturating.
pub fn after_ms(now: u64, ms: u64, hz: u64) -> u64 {
    let ticks = u128::from(ms) * u128::from(hz) / 1000;
    now.saturating_add(u64::try_from(ticks).unwrap_or(u64::MAX))
}

/// `now + us` microseconds at `hz` ticks per second, saturating.
pub fn after_us(now: u64, us: u64, hz: u64) -> u64 {
    let ticks = u128::from(us) * u128::from(hz) / 1_000_000;
    now.saturating_add(u64::try_from(ticks).unwrap_or(u64::MAX))
}

/// What the idle step sees, with interrupts masked, before it cedes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IdleState {
    /// The background work or a driver left work that should go on at once.
    pub more_work: bool,
    /// An interrupt recorded an event not yet acted on (this CPU's, or a
    /// driver's).
    pub event_pending: bool,
    /// A Ctrl-C is unread (a running command must stop).
    pub ctrl_c: bool,
    /// The loop waits at the prompt for input (while a command runs, only a
    /// Ctrl-C ends the wait).
    pub for_input: bool,
    /// Input bytes wait in the console's ring.
    pub input_waiting: bool,
}

/// What the idle step does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Idle {
    /// Return to the loop at once (interrupts back on).
    RunAgain,
    /// Program the decrementer with this value and cede until an interrupt.
    Cede {
        /// The decrementer value ([`decrementer_ticks`]).
        decrementer: u64,
    },
}

/// The idle decision at `now` (timebase ticks), with `next_deadline` the
/// earliest armed timer: cede only when nothing is left to do and nothing is
/// waiting to be taken; the decrementer then wakes the kernel for the deadline.
pub fn idle_plan(s: IdleState, now: u64, next_deadline: Option<u64>) -> Idle {
    if s.more_work || s.event_pending || s.ctrl_c || (s.for_input && s.input_waiting) {
        Idle::RunAgain
    } else {
        Idle::Cede {
            decrementer: decrementer_ticks(now, next_deadline),
        }
    }
}

/// The console's poll period at the prompt when the vty has no interrupt,
/// microseconds: 10 ms is below what a typist notices.
pub const INPUT_POLL_US: u64 = 10_000;
/// The poll period while input is flowing (typeahead, a pasted script): the
/// vty holds 16 bytes, so polling every 0.2 ms drains up to 80 kB/s.
pub const INPUT_POLL_BUSY_US: u64 = 200;
// Sixteen bytes per busy period drain 80 kB/s.
const _: () = assert!(16 * 1_000_000 / INPUT_POLL_BUSY_US >= 80_000);

/// When a polled console looks again: soon while input flows (there was input
/// before this poll, or some is still waiting after it), else at the idle
/// period.
pub fn input_poll_us(had_input: bool, input_waiting: bool) -> u64 {
    if had_input || input_waiting {
        INPUT_POLL_BUSY_US
    } else {
        INPUT_POLL_US
    }
}

/// The background timers' deadlines at `now` (ticks at `hz`): the balloon's next
/// round at `next_poll_ms` (milliseconds since boot; `None`: due now), and the
/// pool model's next step `model_step_us` on when it has work (`None`: no timer).
pub fn background_deadlines(
    now: u64,
    hz: u64,
    next_poll_ms: Option<u64>,
    model_step_us: Option<u64>,
) -> (u64, Option<u64>) {
    let balloon = match next_poll_ms {
        Some(ms) => {
            let now_us = u64::try_from(u128::from(now) * 1_000_000 / u128::from(hz.max(1)))
                .unwrap_or(u64::MAX);
            after_us(now, ms.saturating_mul(1000).saturating_sub(now_us), hz)
        }
        None => now,
    };
    (balloon, model_step_us.map(|us| after_us(now, us, hz)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
    enum T {
        Poll,
        Step,
        Sleep,
    }

    #[test]
    fn a_polled_console_looks_again_sooner_while_input_flows() {
        assert_eq!(input_poll_us(false, false), INPUT_POLL_US);
        assert_eq!(input_poll_us(true, false), INPUT_POLL_BUSY_US);
        assert_eq!(input_poll_us(false, true), INPUT_POLL_BUSY_US);
        assert_eq!(input_poll_us(true, true), INPUT_POLL_BUSY_US);
    }

    #[test]
    fn discarding_due_timers_keeps_the_later_ones() {
        let mut t = Timers::new();
        t.arm(T::Poll, 100);
        t.arm(T::Step, 200);
        t.arm(T::Sleep, 300);
        assert_eq!(t.discard_due(99), 0);
        assert_eq!(t.discard_due(200), 2);
        assert_eq!(t.next_deadline(), Some(300));
        assert_eq!(t.len(), 1);
        assert_eq!(t.discard_due(u64::MAX), 1);
        assert_eq!(t.next_deadline(), None);
    }

    #[test]
    fn the_earliest_of_many_programs_the_decrementer() {
        let mut t = Timers::new();
        assert_eq!(t.next_deadline(), None);
        assert_eq!(decrementer_ticks(100, t.next_deadline()), DEC_MAX);
        t.arm(T::Poll, 5000);
        t.arm(T::Step, 1200);
        t.arm(T::Sleep, 9000);
        assert_eq!(t.next_deadline(), Some(1200));
        assert_eq!(decrementer_ticks(1000, t.next_deadline()), 200);
        // Re-arming replaces; cancelling removes.
        t.arm(T::Step, 7000);
        assert_eq!(t.next_deadline(), Some(5000));
        t.cancel(T::Poll);
        assert_eq!(t.next_deadline(), Some(7000));
        assert_eq!(t.len(), 2);
        // A passed deadline interrupts at once; a far one is clamped.
        assert_eq!(decrementer_ticks(8000, t.next_deadline()), 1);
        assert_eq!(decrementer_ticks(0, Some(u64::MAX)), DEC_MAX);
    }

    #[test]
    fn arm_no_later_keeps_the_earlier_deadline() {
        let mut t = Timers::new();
        t.arm_no_later(T::Poll, 500);
        t.arm_no_later(T::Poll, 900);
        assert_eq!(t.deadline(T::Poll), Some(500));
        t.arm_no_later(T::Poll, 100);
        assert_eq!(t.deadline(T::Poll), Some(100));
    }

    #[test]
    fn a_timer_rearmed_by_its_handler_is_not_lost() {
        let mut t = Timers::new();
        t.arm(T::Poll, 10);
        t.arm(T::Step, 10);
        let mut fired = Vec::new();
        for now in [5, 10, 15, 20, 25, 30] {
            for k in t.expire(now) {
                fired.push((now, k));
                // The periodic handler re-arms itself 10 ticks on.
                if k == T::Poll {
                    t.arm(T::Poll, now + 10);
                }
            }
        }
        assert_eq!(
            fired,
            [(10, T::Poll), (10, T::Step), (20, T::Poll), (30, T::Poll)]
        );
        assert_eq!(t.deadline(T::Poll), Some(40));
    }

    #[test]
    fn the_idle_step_cedes_only_when_nothing_is_left() {
        let quiet = IdleState::default();
        assert_eq!(
            idle_plan(quiet, 1000, Some(1200)),
            Idle::Cede { decrementer: 200 }
        );
        assert_eq!(
            idle_plan(quiet, 1000, None),
            Idle::Cede {
                decrementer: DEC_MAX
            }
        );
        for s in [
            IdleState {
                more_work: true,
                ..quiet
            },
            IdleState {
                event_pending: true,
                ..quiet
            },
            IdleState {
                ctrl_c: true,
                ..quiet
            },
            IdleState {
                for_input: true,
                input_waiting: true,
                ..quiet
            },
        ] {
            assert_eq!(idle_plan(s, 0, None), Idle::RunAgain, "{s:?}");
        }
        // Typeahead during a command does not wake it; at the prompt it does.
        let typed = IdleState {
            input_waiting: true,
            ..quiet
        };
        assert_eq!(idle_plan(typed, 0, Some(5)), Idle::Cede { decrementer: 5 });
        // A passed deadline still cedes, for one tick: the decrementer fires at once.
        assert_eq!(idle_plan(quiet, 10, Some(3)), Idle::Cede { decrementer: 1 });
    }

    #[test]
    fn background_deadlines_follow_the_balloon_and_the_model() {
        let hz = 512_000_000;
        // 1 ms = 512_000 ticks. Now is 2 ms; the next round is at 5 ms.
        let now = 1_024_000;
        assert_eq!(
            background_deadlines(now, hz, Some(5), None),
            (5 * 512_000, None)
        );
        // A round already due, or no round planned: now.
        assert_eq!(background_deadlines(now, hz, Some(1), None).0, now);
        assert_eq!(background_deadlines(now, hz, None, None).0, now);
        // The model's step: 10 ms on.
        assert_eq!(
            background_deadlines(now, hz, None, Some(10_000)).1,
            Some(now + 10 * 512_000)
        );
        // Far values saturate, a zero frequency does not divide by zero.
        assert_eq!(
            background_deadlines(now, hz, Some(u64::MAX), None).0,
            u64::MAX
        );
        let _ = background_deadlines(now, 0, Some(3), Some(3));
    }

    #[test]
    fn time_conversions_saturate() {
        assert_eq!(after_ms(10, 2, 512_000_000), 10 + 1_024_000);
        assert_eq!(after_us(0, 3, 512_000_000), 1536);
        assert_eq!(after_ms(u64::MAX - 1, 1000, 512_000_000), u64::MAX);
    }

    proptest! {
        /// Random arms, cancels and expiries against a plain model: nothing fires
        /// early, nothing due is left behind, nothing armed disappears.
        #[test]
        fn none_early_none_missed_none_lost(
            ops in proptest::collection::vec((0u8..3, 0u8..3, 0u64..1000), 1..200)
        ) {
            let mut t = Timers::new();
            let mut model: std::collections::BTreeMap<u8, u64> = Default::default();
            let mut now = 0u64;
            for (op, key, v) in ops {
                match op {
                    0 => { t.arm(key, now + v); model.insert(key, now + v); }
                    1 => { t.cancel(key); model.remove(&key); }
                    _ => {
                        now += v;
                        let fired = t.expire(now);
                        let mut want: Vec<(u64, u8)> = model
                            .iter()
                            .filter(|&(_, &d)| d <= now)
                            .map(|(&k, &d)| (d, k))
                            .collect();
                        want.sort();
                        let want_deadlines: Vec<u64> = want.iter().map(|w| w.0).collect();
                        let got_deadlines: Vec<u64> = fired.iter().map(|k| model[k]).collect();
                        prop_assert_eq!(&got_deadlines, &want_deadlines, "earliest first");
                        let mut a = fired.clone();
                        a.sort_unstable();
                        let mut b: Vec<u8> = want.iter().map(|w| w.1).collect();
                        b.sort_unstable();
                        prop_assert_eq!(a, b);
                        for k in fired { model.remove(&k); }
                    }
                }
                prop_assert_eq!(t.next_deadline(), model.values().copied().min());
                prop_assert_eq!(t.len(), model.len());
            }
        }
    }
}
