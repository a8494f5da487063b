//! The interrupt storm guard's decisions: a device that raises its interrupt far
//! more often than any honest one would (a lying host, a level-triggered line it
//! never lowers) would keep the processor in the interrupt handler. The glue
//! tells [`StormGuard::interrupt`] about each interrupt of a source and whether
//! the device had work for it (for the virtio balloon: an ISR bit was set); the
//! guard answers whether to handle it or to turn the source off (RTAS
//! `ibm,int-off`). While the source is off the device is polled;
//! [`StormGuard::retry`] says when the main loop may turn it on again
//! (`ibm,int-on`), with a back-off that doubles at each storm, and that it stays
//! off for good after [`MAX_STORMS`] storms. [`StormGuard::main_loop_turn`] is
//! the main loop's whole part, over the controller's [`SourceControl`]: it turns
//! the source off or on and says what to log and when to come back. The glue only
//! calls these and RTAS (docs/virtio-balloon.md, "A device that lies").
//!
//! Lock-free (atomics only), for a `static` used from the interrupt handler,
//! which never locks.

use alloc::string::String;
use core::fmt;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// Interrupts without work per window that count as a storm. An honest balloon
/// interrupts on configuration changes and statistics requests, a handful per
/// second, each with work.
pub const STORM_LIMIT: u32 = 1000;
/// Interrupts of any kind per window that count as a storm, [`STORM_LIMIT`]
/// times this factor: work claimed that often is a storm too.
pub const STORM_ANY_FACTOR: u32 = 10;
/// The window, microseconds.
pub const STORM_WINDOW_US: u64 = 100_000;
/// How long a source stays off after its first storm before it is tried again,
/// microseconds; doubled at each further storm.
pub const RETRY_AFTER_US: u64 = 1_000_000;
/// Storms after which the source stays off for good (the device is polled).
pub const MAX_STORMS: u32 = 4;

/// What the handler does with one interrupt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Handle it as usual.
    Handle,
    /// This interrupt makes a storm: turn the source off (do not end the
    /// interrupt until it is off, so nothing of its priority comes meanwhile).
    TurnOff,
}

/// What the main loop does about a source the guard turned off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retry {
    /// The source is on.
    On,
    /// Off; not yet time to try again.
    Wait,
    /// Off long enough: turn it on again, then call [`StormGuard::turned_on`].
    TurnOn,
    /// Off for good.
    Never,
}

/// `off_at_us` while the source is on.
const ON: u64 = u64::MAX;

/// Counts one source's interrupts per window and decides.
#[derive(Debug)]
pub struct StormGuard {
    limit: u32,
    window_us: u64,
    retry_after_us: u64,
    max_storms: u32,
    start_us: AtomicU64,
    idle: AtomicU32,
    any: AtomicU32,
    off_at_us: AtomicU64,
    storms: AtomicU32,
}

impl StormGuard {
    /// A guard that trips at more than `limit` interrupts without work (or
    /// [`STORM_ANY_FACTOR`] × `limit` of any kind) within `window_us`, with the
    /// default back-off ([`RETRY_AFTER_US`], [`MAX_STORMS`]).
    pub const fn new(limit: u32, window_us: u64) -> Self {
        StormGuard {
            limit,
            window_us,
            retry_after_us: RETRY_AFTER_US,
            max_storms: MAX_STORMS,
            start_us: AtomicU64::new(0),
            idle: AtomicU32::new(0),
            any: AtomicU32::new(0),
            off_at_us: AtomicU64::new(ON),
            storms: AtomicU32::new(0),
        }
    }

    /// The same with another back-off: off for `retry_after_us` after the
    /// first storm, doubling; off for good after `max_storms`.
    pub const fn with_retry(mut self, retry_after_us: u64, max_storms: u32) -> Self {
        self.retry_after_us = retry_after_us;
        self.max_storms = max_storms;
        self
    }

    /// Notes one interrupt at `now_us`; `had_work`: the device had something
    /// for it. [`Verdict::TurnOff`] exactly once per storm. While the source is
    /// off (it could not be turned off, say) interrupts are handled and not
    /// counted.
    pub fn interrupt(&self, now_us: u64, had_work: bool) -> Verdict {
        if self.is_off() {
            return Verdict::Handle;
        }
        let start = self.start_us.load(Ordering::Relaxed);
        if now_us.saturating_sub(start) >= self.window_us {
            self.start_us.store(now_us, Ordering::Relaxed);
            self.idle.store(u32::from(!had_work), Ordering::Relaxed);
            self.any.store(1, Ordering::Relaxed);
            return Verdict::Handle;
        }
        let any = self.any.load(Ordering::Relaxed).saturating_add(1);
        self.any.store(any, Ordering::Relaxed);
        let idle = self
            .idle
            .load(Ordering::Relaxed)
            .saturating_add(u32::from(!had_work));
        self.idle.store(idle, Ordering::Relaxed);
        if idle > self.limit || any > self.limit.saturating_mul(STORM_ANY_FACTOR) {
            self.off_at_us.store(now_us, Ordering::Release);
            self.storms.fetch_add(1, Ordering::AcqRel);
            return Verdict::TurnOff;
        }
        Verdict::Handle
    }

    /// True while the guard holds the source off (it tripped and the source
    /// was not turned on again).
    pub fn is_off(&self) -> bool {
        self.off_at_us.load(Ordering::Acquire) != ON
    }

    /// Storms so far.
    pub fn storms(&self) -> u32 {
        self.storms.load(Ordering::Acquire)
    }

    /// When an off source may be tried again (None: it is on, or off for good).
    pub fn retry_at_us(&self) -> Option<u64> {
        let off = self.off_at_us.load(Ordering::Acquire);
        let storms = self.storms();
        if off == ON || storms >= self.max_storms {
            return None;
        }
        let shift = (storms.saturating_sub(1)).min(32);
        Some(off.saturating_add(self.retry_after_us.saturating_mul(1 << shift)))
    }

    /// From the main loop at `now_us`: what to do about the source.
    pub fn retry(&self, now_us: u64) -> Retry {
        if !self.is_off() {
            return Retry::On;
        }
        match self.retry_at_us() {
            None => Retry::Never,
            Some(at) if now_us >= at => Retry::TurnOn,
            Some(_) => Retry::Wait,
        }
    }

    /// The source was turned on again at `now_us`: counting starts afresh.
    pub fn turned_on(&self, now_us: u64) {
        self.start_us.store(now_us, Ordering::Relaxed);
        self.idle.store(0, Ordering::Relaxed);
        self.any.store(0, Ordering::Relaxed);
        self.off_at_us.store(ON, Ordering::Release);
    }

    /// An off source that could not be turned on again stays off for good.
    fn give_up(&self) {
        self.storms.fetch_max(self.max_storms, Ordering::AcqRel);
    }

    /// The main loop's turn for the guarded source at `now_us`: turns off a
    /// source whose storming interrupt the handler held, turns it on again when
    /// its back-off has passed, and says what happened (one [`Event`] at most,
    /// one log line) and when to come back.
    pub fn main_loop_turn(&self, now_us: u64, ctl: &mut impl SourceControl) -> Turn {
        let mut event = ctl.turn_off_held().map(|r| match r {
            Ok(source) => Event::TurnedOff {
                source,
                storm: self.storms(),
                retry_in_us: self.retry_at_us().map(|at| at.saturating_sub(now_us)),
            },
            Err((source, why)) => Event::NotTurnedOff { source, why },
        });
        if self.retry(now_us) == Retry::TurnOn {
            event = Some(match ctl.turn_on() {
                Ok(source) => {
                    self.turned_on(now_us);
                    Event::TurnedOn { source }
                }
                Err((source, why)) => {
                    self.give_up();
                    Event::NotTurnedOn { source, why }
                }
            });
        }
        Turn {
            event,
            off: self.is_off(),
            retry_at_us: self.retry_at_us(),
        }
    }
}

/// What the main loop asks of the interrupt controller for one guarded source.
/// Errors name the source and carry the RTAS status.
pub trait SourceControl {
    /// When the source's handler held its interrupt ([`Verdict::TurnOff`]):
    /// turns the source off (RTAS `ibm,int-off`) and ends the interrupt.
    /// `None` when nothing of the source is held.
    fn turn_off_held(&mut self) -> Option<Result<u32, (u32, String)>>;
    /// Turns the source on again (RTAS `ibm,int-on`).
    fn turn_on(&mut self) -> Result<u32, (u32, String)>;
}

/// What a main-loop turn did, for its one log line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A storm: the source is off; tried again in `retry_in_us` (`None`: never).
    TurnedOff {
        /// The interrupt source.
        source: u32,
        /// Which storm this is (1 for the first).
        storm: u32,
        /// When the source is tried again.
        retry_in_us: Option<u64>,
    },
    /// A storm, but the source could not be turned off.
    NotTurnedOff {
        /// The interrupt source.
        source: u32,
        /// Why (with the RTAS status).
        why: String,
    },
    /// The back-off passed: the source is on again.
    TurnedOn {
        /// The interrupt source.
        source: u32,
    },
    /// The back-off passed, but the source could not be turned on: it stays
    /// off for good.
    NotTurnedOn {
        /// The interrupt source.
        source: u32,
        /// Why (with the RTAS status).
        why: String,
    },
}

impl Event {
    /// True for the events a user must see (an error), false for the source
    /// coming back (information).
    pub fn is_error(&self) -> bool {
        !matches!(self, Event::TurnedOn { .. })
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::TurnedOff {
                source,
                storm,
                retry_in_us,
            } => {
                write!(f, "interrupt storm {storm}: source {source:#x} turned off, the device is polled; ")?;
                match retry_in_us {
                    Some(us) => write!(f, "turned on again in {} ms", us / 1000),
                    None => f.write_str("it stays off"),
                }
            }
            Event::NotTurnedOff { source, why } => write!(
                f,
                "interrupt storm on source {source:#x}, which could not be turned off ({why}); its interrupts are ignored"
            ),
            Event::TurnedOn { source } => {
                write!(f, "source {source:#x} turned on again after its storm")
            }
            Event::NotTurnedOn { source, why } => write!(
                f,
                "source {source:#x} could not be turned on again ({why}); it stays off, the device is polled"
            ),
        }
    }
}

/// The outcome of [`StormGuard::main_loop_turn`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Turn {
    /// What happened, if anything (one log line).
    pub event: Option<Event>,
    /// The source is off: its device is to be polled.
    pub off: bool,
    /// When the source is to be tried again (a timer for the main loop).
    pub retry_at_us: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard() -> StormGuard {
        StormGuard::new(STORM_LIMIT, STORM_WINDOW_US)
    }

    #[test]
    fn an_honest_rate_never_trips() {
        let g = guard();
        // A config change every millisecond for a minute: 100 per window.
        for ms in 0..60_000u64 {
            assert_eq!(g.interrupt(ms * 1000, false), Verdict::Handle);
        }
        assert_eq!(g.storms(), 0);
        assert_eq!(g.retry(60_000_000), Retry::On);
    }

    #[test]
    fn a_storm_trips_once_within_one_window() {
        let g = guard();
        // One interrupt every microsecond, as a line that is never lowered.
        let trips: Vec<u64> = (0..1_000_000u64)
            .filter(|&us| g.interrupt(us, false) == Verdict::TurnOff)
            .collect();
        assert_eq!(trips, [u64::from(STORM_LIMIT)]);
        assert!(g.storms() == 1 && g.is_off());
    }

    #[test]
    fn a_burst_below_the_limit_is_tolerated() {
        let g = guard();
        for round in 0..10u64 {
            let base = round * STORM_WINDOW_US;
            for i in 0..u64::from(STORM_LIMIT) {
                assert_eq!(g.interrupt(base + i, false), Verdict::Handle);
            }
        }
        assert_eq!(g.storms(), 0);
    }

    #[test]
    fn interrupts_with_work_count_only_against_the_higher_limit() {
        let g = guard();
        // Ten times the limit with work, in one window: not yet a storm.
        for us in 0..u64::from(STORM_LIMIT * STORM_ANY_FACTOR) {
            assert_eq!(g.interrupt(us, true), Verdict::Handle, "at {us}");
        }
        // One more of any kind is.
        assert_eq!(
            g.interrupt(u64::from(STORM_LIMIT * STORM_ANY_FACTOR), true),
            Verdict::TurnOff
        );
        // Without work, the low limit: work in between does not hide them.
        let g = guard();
        let mut trips = 0;
        for i in 0..4 * u64::from(STORM_LIMIT) {
            if g.interrupt(i, i % 2 == 0) == Verdict::TurnOff {
                trips += 1;
                assert_eq!(i, 2 * u64::from(STORM_LIMIT) + 1, "tripped at {i}");
            }
        }
        assert_eq!(trips, 1);
    }

    #[test]
    fn an_off_source_is_retried_with_a_doubling_back_off_then_never() {
        let g = StormGuard::new(10, 1000).with_retry(1_000_000, 3);
        let mut now = 0u64;
        let mut offs = Vec::new();
        for storm in 1..=3u32 {
            // A storm: eleven interrupts without work within the window.
            let mut v = Verdict::Handle;
            while v == Verdict::Handle {
                now += 1;
                v = g.interrupt(now, false);
            }
            assert_eq!(g.storms(), storm);
            offs.push(now);
            // Interrupts while off are handled, not counted.
            assert_eq!(g.interrupt(now + 1, false), Verdict::Handle);
            if storm == 3 {
                break;
            }
            let back_off = 1_000_000u64 << (storm - 1);
            assert_eq!(g.retry(now + back_off - 1), Retry::Wait);
            assert_eq!(g.retry_at_us(), Some(now + back_off));
            now += back_off;
            assert_eq!(g.retry(now), Retry::TurnOn);
            g.turned_on(now);
            assert_eq!(g.retry(now), Retry::On);
            // A quiet source after the retry stays on.
            assert_eq!(g.interrupt(now + 5_000, true), Verdict::Handle);
            now += 10_000;
        }
        assert_eq!(offs.len(), 3);
        assert_eq!(g.retry(u64::MAX), Retry::Never);
        assert_eq!(g.retry_at_us(), None);
        assert!(g.is_off());
    }
}
