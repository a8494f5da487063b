//! An interrupt storm guard: a device that raises its interrupt far more often
//! than any honest one would (a lying host, a level-triggered line it never
//! lowers) would keep the processor in the interrupt handler. [`StormGuard`]
//! counts a source's interrupts per window; past the limit it trips, once, and
//! the handler turns the source off (docs/virtio-balloon.md, "A device that
//! lies"); the balloon's `num_pages` is then polled.
//!
//! Lock-free (atomics only), for a `static` used from the interrupt handler,
//! which never locks.

use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

/// Interrupts per window that count as a storm. An honest balloon interrupts on
/// configuration changes and statistics requests: a handful per second.
pub const STORM_LIMIT: u32 = 1000;
/// The window, microseconds.
pub const STORM_WINDOW_US: u64 = 100_000;

/// Counts one source's interrupts per window.
#[derive(Debug)]
pub struct StormGuard {
    limit: u32,
    window_us: u64,
    start_us: AtomicU64,
    count: AtomicU32,
    tripped: AtomicBool,
}

impl StormGuard {
    /// A guard that trips at more than `limit` interrupts within `window_us`.
    pub const fn new(limit: u32, window_us: u64) -> Self {
        StormGuard {
            limit,
            window_us,
            start_us: AtomicU64::new(0),
            count: AtomicU32::new(0),
            tripped: AtomicBool::new(false),
        }
    }

    /// Notes one interrupt at `now_us`; true exactly once, for the interrupt
    /// that makes a storm.
    pub fn note(&self, now_us: u64) -> bool {
        if self.tripped.load(Ordering::Acquire) {
            return false;
        }
        let start = self.start_us.load(Ordering::Relaxed);
        if now_us.saturating_sub(start) >= self.window_us {
            self.start_us.store(now_us, Ordering::Relaxed);
            self.count.store(1, Ordering::Relaxed);
            return false;
        }
        let n = self.count.load(Ordering::Relaxed).saturating_add(1);
        self.count.store(n, Ordering::Relaxed);
        if n > self.limit {
            self.tripped.store(true, Ordering::Release);
            return true;
        }
        false
    }

    /// True once the guard has tripped.
    pub fn tripped(&self) -> bool {
        self.tripped.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_honest_rate_never_trips() {
        let g = StormGuard::new(STORM_LIMIT, STORM_WINDOW_US);
        // A config change every millisecond for a minute: 100 per window.
        for ms in 0..60_000u64 {
            assert!(!g.note(ms * 1000));
        }
        assert!(!g.tripped());
    }

    #[test]
    fn a_storm_trips_once_within_one_window() {
        let g = StormGuard::new(STORM_LIMIT, STORM_WINDOW_US);
        // One interrupt every microsecond, as a line that is never lowered.
        let trips: Vec<u64> = (0..1_000_000u64).filter(|&us| g.note(us)).collect();
        assert_eq!(trips, [u64::from(STORM_LIMIT)]);
        assert!(g.tripped());
    }

    #[test]
    fn a_burst_below_the_limit_is_tolerated() {
        let g = StormGuard::new(STORM_LIMIT, STORM_WINDOW_US);
        for round in 0..10u64 {
            let base = round * STORM_WINDOW_US;
            for i in 0..u64::from(STORM_LIMIT) {
                assert!(!g.note(base + i));
            }
        }
        assert!(!g.tripped());
    }
}
