//! The balloon's interrupt, decided: what its handler makes of the ISR byte it
//! read, and what the main loop does about the source afterwards.
//!
//! The handler reads the legacy ISR register first (the read lowers the
//! level-sensitive INTx line) and hands the byte to [`BalloonInterrupt::on_interrupt`]:
//! a configuration bit records a change for the main loop, and the storm guard
//! ([`crate::irq_storm`]) is told whether the device had work (any ISR bit). Its
//! verdict says whether the interrupt is ended or held for the main loop to turn
//! the source off. The main loop's [`BalloonInterrupt::turn`] turns a held source
//! off, turns it on again after the back-off, and says what to log, whether to
//! read `num_pages` now (a change was signalled, or the source is off and the
//! device is polled), whether to run the balloon's round at once and when to come
//! back. Lock-free, for a `static` the interrupt handler uses.

use core::sync::atomic::{AtomicBool, Ordering};

use super::legacy::isr_config_changed;
use crate::irq_storm::{Event, SourceControl, StormGuard, Verdict, STORM_LIMIT, STORM_WINDOW_US};

/// While the source is off, `num_pages` is read this often, microseconds.
pub const OFF_POLL_US: u64 = 100_000;

/// The balloon's interrupt state, shared by its handler and the main loop.
#[derive(Debug)]
pub struct BalloonInterrupt {
    guard: StormGuard,
    config_changed: AtomicBool,
}

impl Default for BalloonInterrupt {
    fn default() -> Self {
        Self::new()
    }
}

/// What the main loop does after its turn.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BalloonTurn {
    /// One log line, if anything happened to the source.
    pub event: Option<Event>,
    /// Read the host's `num_pages` now.
    pub sync: bool,
    /// Run the balloon's round at once (a configuration change was signalled).
    pub round_now: bool,
    /// Come back at this time, microseconds (to poll an off source, or to turn
    /// it on again), `None`: no timer needed.
    pub wake_at_us: Option<u64>,
}

impl BalloonInterrupt {
    /// Nothing seen yet; the storm guard at its default limits.
    pub const fn new() -> Self {
        BalloonInterrupt {
            guard: StormGuard::new(STORM_LIMIT, STORM_WINDOW_US),
            config_changed: AtomicBool::new(false),
        }
    }

    /// The handler's decision at `now_us` from the ISR byte it read:
    /// [`Verdict::Handle`] ends the interrupt, [`Verdict::TurnOff`] holds it for
    /// the main loop. A configuration change is recorded either way.
    pub fn on_interrupt(&self, now_us: u64, isr: u8) -> Verdict {
        if isr_config_changed(isr) {
            self.config_changed.store(true, Ordering::Release);
        }
        self.guard.interrupt(now_us, isr != 0)
    }

    /// True while a signalled configuration change waits for the main loop.
    pub fn pending(&self) -> bool {
        self.config_changed.load(Ordering::Acquire)
    }

    /// The storm guard (its storms, whether the source is off).
    pub fn guard(&self) -> &StormGuard {
        &self.guard
    }

    /// The main loop's turn at `now_us`, the source reached through `ctl`.
    pub fn turn(&self, now_us: u64, ctl: &mut impl SourceControl) -> BalloonTurn {
        let t = self.guard.main_loop_turn(now_us, ctl);
        let changed = self.config_changed.swap(false, Ordering::AcqRel);
        let poll_at = t.off.then(|| now_us.saturating_add(OFF_POLL_US));
        BalloonTurn {
            event: t.event,
            sync: changed || t.off,
            round_now: changed,
            wake_at_us: match (poll_at, t.retry_at_us) {
                (Some(p), Some(r)) => Some(p.min(r)),
                (p, r) => p.or(r),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::irq::HandlerTable;
    use crate::irq_storm::{MAX_STORMS, RETRY_AFTER_US};
    use alloc::string::{String, ToString};
    use alloc::vec::Vec;

    const SOURCE: u32 = 0x1200;
    const ISR_QUEUE: u8 = 1;
    const ISR_CONFIG: u8 = 2;

    /// The interrupt controller, the line and the device's ISR, in host memory:
    /// the source is presented while it is on (in the table and enabled by
    /// RTAS) and nothing is held.
    struct Machine {
        table: HandlerTable<u8, 4>,
        irq: crate::irq::Irq,
        enabled: bool,
        held: bool,
        isr: u8,
        rtas: Vec<&'static str>,
        int_on_fails: bool,
        raised: u64,
        presented: u64,
    }

    impl Machine {
        fn new() -> Machine {
            let table = HandlerTable::new();
            let irq = table.register(SOURCE, "pci", 0).unwrap();
            Machine {
                table,
                irq,
                enabled: true,
                held: false,
                isr: 0,
                rtas: Vec::new(),
                int_on_fails: false,
                raised: 0,
                presented: 0,
            }
        }

        /// The device raises its line (with `bits` set in its ISR); the
        /// handler runs when the controller presents it.
        fn raise(&mut self, b: &BalloonInterrupt, now_us: u64, bits: u8) {
            self.raised += 1;
            self.isr |= bits;
            if !self.enabled || self.held {
                return;
            }
            if self.table.dispatch(SOURCE, 0).is_none() {
                return;
            }
            self.presented += 1;
            // The handler: the ISR first (the read clears it), then the decision.
            let isr = core::mem::take(&mut self.isr);
            if b.on_interrupt(now_us, isr) == Verdict::TurnOff {
                self.held = true;
            }
        }
    }

    impl SourceControl for Machine {
        fn turn_off_held(&mut self) -> Option<Result<u32, (u32, String)>> {
            if !self.held {
                return None;
            }
            self.table.turn_off(self.irq);
            self.enabled = false;
            self.rtas.push("ibm,int-off");
            self.held = false;
            Some(Ok(SOURCE))
        }
        fn turn_on(&mut self) -> Result<u32, (u32, String)> {
            self.rtas.push("ibm,int-on");
            if self.int_on_fails {
                return Err((SOURCE, "RTAS status -3".to_string()));
            }
            self.table
                .turn_on(self.irq)
                .map_err(|e| (SOURCE, e.to_string()))?;
            self.enabled = true;
            Ok(SOURCE)
        }
    }

    /// A storm of interrupts without work from `now`, one per microsecond,
    /// until the handler holds one; returns the time it did.
    fn storm(m: &mut Machine, b: &BalloonInterrupt, mut now: u64) -> u64 {
        while !m.held {
            now += 1;
            m.raise(b, now, 0);
            assert!(now < 1_000_000_000, "the guard never tripped");
        }
        now
    }

    #[test]
    fn a_storm_turns_the_source_off_then_on_after_the_back_off_then_off_for_good() {
        let b = BalloonInterrupt::new();
        let mut m = Machine::new();
        let mut lines = Vec::new();
        let mut now = 0u64;
        // An honest configuration change first: recorded, acted on once.
        m.raise(&b, now, ISR_CONFIG);
        assert!(b.pending());
        let t = b.turn(now, &mut m);
        assert_eq!(
            (t.sync, t.round_now, t.event.clone(), t.wake_at_us),
            (true, true, None, None)
        );
        assert!(!b.pending());
        for storm_no in 1..=MAX_STORMS {
            now = storm(&mut m, &b, now + 1_000);
            // Nothing reaches the handler while the interrupt is held.
            let before = m.presented;
            m.raise(&b, now + 1, 0);
            assert_eq!(m.presented, before);
            let t = b.turn(now + 2, &mut m);
            let back_off = RETRY_AFTER_US << (storm_no - 1);
            let retry_in = (storm_no < MAX_STORMS).then_some(back_off - 2);
            assert_eq!(
                t.event,
                Some(Event::TurnedOff {
                    source: SOURCE,
                    storm: storm_no,
                    retry_in_us: retry_in,
                })
            );
            lines.push(t.event.unwrap().to_string());
            assert!(!m.enabled && !m.table.is_live(m.irq));
            // Off: the device is polled, and nothing is presented.
            assert!(t.sync && !t.round_now);
            assert_eq!(t.wake_at_us, Some(now + 2 + OFF_POLL_US));
            m.raise(&b, now + 3, ISR_CONFIG);
            assert_eq!(m.presented, before);
            // A change the line could not signal is seen by the poll.
            let t = b.turn(now + 4, &mut m);
            assert!(t.sync && t.event.is_none());
            if storm_no == MAX_STORMS {
                break;
            }
            // Not before the back-off; at it, on again (one line).
            let t = b.turn(now + back_off - 1, &mut m);
            assert!(t.event.is_none() && !m.enabled);
            assert_eq!(m.rtas.last(), Some(&"ibm,int-off"));
            now += back_off;
            let t = b.turn(now, &mut m);
            assert_eq!(t.event, Some(Event::TurnedOn { source: SOURCE }));
            assert!(!t.event.as_ref().unwrap().is_error());
            assert!(m.enabled && m.table.is_live(m.irq));
            assert_eq!((t.sync, t.wake_at_us), (false, None));
            // The change that came while it was off raised the line again.
            m.raise(&b, now + 10, 0);
            let t = b.turn(now + 11, &mut m);
            assert!(t.round_now && t.event.is_none());
        }
        // Off for good: never tried again, still polled.
        let t = b.turn(u64::MAX / 2, &mut m);
        assert!(t.event.is_none() && t.sync && !m.enabled);
        assert_eq!(t.wake_at_us, Some(u64::MAX / 2 + OFF_POLL_US));
        let ons = m.rtas.iter().filter(|&&c| c == "ibm,int-on").count();
        let offs = m.rtas.iter().filter(|&&c| c == "ibm,int-off").count();
        assert_eq!((ons, offs), (MAX_STORMS as usize - 1, MAX_STORMS as usize));
        assert_eq!(lines.len(), MAX_STORMS as usize, "one line per storm");
        assert!(
            lines[0].contains("interrupt storm 1: source 0x1200 turned off"),
            "{}",
            lines[0]
        );
        assert!(
            lines[0].ends_with("turned on again in 999 ms"),
            "{}",
            lines[0]
        );
        assert!(lines[3].ends_with("it stays off"), "{}", lines[3]);
        // The books: every interrupt presented reached the handler exactly once
        // and was counted for the source; none went to an unknown handler.
        assert_eq!(m.table.count(m.irq, 0), m.presented);
        assert_eq!(m.table.unknown(0), 0);
        assert!(m.raised > m.presented);
        assert_eq!(b.guard().storms(), MAX_STORMS);
    }

    #[test]
    fn interrupts_with_work_never_trip_the_guard() {
        let b = BalloonInterrupt::new();
        let mut m = Machine::new();
        // A queue or configuration bit each time, at an honest rate: one per ms.
        for ms in 0..10_000u64 {
            let bits = if ms % 2 == 0 { ISR_QUEUE } else { ISR_CONFIG };
            m.raise(&b, ms * 1000, bits);
            assert!(!m.held);
        }
        let t = b.turn(10_000_000, &mut m);
        assert!(t.round_now && t.event.is_none() && b.guard().storms() == 0);
        assert_eq!(m.table.count(m.irq, 0), 10_000);
    }

    #[test]
    fn a_source_that_cannot_be_turned_on_stays_off_for_good() {
        let b = BalloonInterrupt::new();
        let mut m = Machine::new();
        let now = storm(&mut m, &b, 0);
        b.turn(now, &mut m);
        m.int_on_fails = true;
        let t = b.turn(now + RETRY_AFTER_US, &mut m);
        let e = t.event.unwrap();
        assert!(e.is_error());
        assert_eq!(
            e.to_string(),
            "source 0x1200 could not be turned on again (RTAS status -3); it stays off, the device is polled"
        );
        assert_eq!(b.guard().retry_at_us(), None);
        let t = b.turn(now + 100 * RETRY_AFTER_US, &mut m);
        assert!(t.event.is_none() && t.sync);
        assert_eq!(m.rtas.iter().filter(|&&c| c == "ibm,int-on").count(), 1);
    }

    #[test]
    fn a_source_that_cannot_be_turned_off_says_so_with_the_status() {
        struct Stuck;
        impl SourceControl for Stuck {
            fn turn_off_held(&mut self) -> Option<Result<u32, (u32, String)>> {
                Some(Err((7, "RTAS status -1".to_string())))
            }
            fn turn_on(&mut self) -> Result<u32, (u32, String)> {
                Ok(7)
            }
        }
        let b = BalloonInterrupt::new();
        let t = b.turn(0, &mut Stuck);
        assert_eq!(
            t.event.unwrap().to_string(),
            "interrupt storm on source 0x7, which could not be turned off (RTAS status -1); its interrupts are ignored"
        );
    }
}
