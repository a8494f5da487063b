//! Time from the timebase, at the frequency the device tree gives.

use core::sync::atomic::{AtomicU64, Ordering};

use crate::arch::cpu;

/// The timebase frequency until the device tree's is known: POWER's (and QEMU
/// pseries') 512 MHz.
const DEFAULT_TB_HZ: u64 = 512_000_000;

static TB_HZ: AtomicU64 = AtomicU64::new(DEFAULT_TB_HZ);
static TB_START: AtomicU64 = AtomicU64::new(0);

/// Sets the timebase frequency and makes "now" zero.
pub fn init(hz: u64) {
    if hz > 0 {
        TB_HZ.store(hz, Ordering::Relaxed);
    }
    TB_START.store(cpu::timebase(), Ordering::Relaxed);
}

/// The timebase frequency in Hz.
pub fn hz() -> u64 {
    TB_HZ.load(Ordering::Relaxed)
}

/// Timebase ticks since boot.
pub fn ticks() -> u64 {
    cpu::timebase().wrapping_sub(TB_START.load(Ordering::Relaxed))
}

/// Converts ticks to microseconds.
pub fn ticks_to_us(t: u64) -> u64 {
    let v = u128::from(t) * 1_000_000 / u128::from(hz());
    u64::try_from(v).unwrap_or(u64::MAX)
}

/// Converts ticks to nanoseconds.
pub fn ticks_to_ns(t: u64) -> u64 {
    let v = u128::from(t) * 1_000_000_000 / u128::from(hz());
    u64::try_from(v).unwrap_or(u64::MAX)
}

/// Microseconds since boot.
pub fn now_us() -> u64 {
    ticks_to_us(ticks())
}

/// Busy-waits for `us` microseconds (no background work: see `System::sleep_ms` for sleeping).
pub fn spin_us(us: u64) {
    let end = now_us().saturating_add(us);
    while now_us() < end {
        core::hint::spin_loop();
    }
}
