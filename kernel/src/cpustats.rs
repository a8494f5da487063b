//! The processor's counters: interrupts taken by kind, cedes and time ceded.
//! One structure of atomics, updated where the event happens (interrupt handlers
//! included: atomics need no lock) and printed by the `cpu` command.

use core::fmt::{self, Write};
use core::sync::atomic::{AtomicU64, Ordering};

/// Every counter about the processor the kernel prints.
#[derive(Debug, Default)]
pub struct CpuStats {
    /// Decrementer interrupts (timer deadlines).
    pub decrementer: AtomicU64,
    /// External interrupts accepted from the vty.
    pub external_vty: AtomicU64,
    /// External interrupts accepted from PCI INTx (the virtio balloon).
    pub external_pci: AtomicU64,
    /// External interrupts from any other source.
    pub external_other: AtomicU64,
    /// External interrupts that presented no source (XISR 0).
    pub external_spurious: AtomicU64,
    /// XICS hcalls that failed in a handler.
    pub external_errors: AtomicU64,
    /// H_CEDE calls.
    pub cedes: AtomicU64,
    /// Timebase ticks spent inside H_CEDE.
    pub ceded_ticks: AtomicU64,
    /// Timed polls of the console (when the vty has no interrupt).
    pub console_polls: AtomicU64,
}

/// A plain copy of [`CpuStats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct CpuCounts {
    pub decrementer: u64,
    pub external_vty: u64,
    pub external_pci: u64,
    pub external_other: u64,
    pub external_spurious: u64,
    pub external_errors: u64,
    pub cedes: u64,
    pub ceded_ticks: u64,
    pub console_polls: u64,
}

impl CpuStats {
    /// All zero.
    pub const fn new() -> Self {
        CpuStats {
            decrementer: AtomicU64::new(0),
            external_vty: AtomicU64::new(0),
            external_pci: AtomicU64::new(0),
            external_other: AtomicU64::new(0),
            external_spurious: AtomicU64::new(0),
            external_errors: AtomicU64::new(0),
            cedes: AtomicU64::new(0),
            ceded_ticks: AtomicU64::new(0),
            console_polls: AtomicU64::new(0),
        }
    }

    /// Adds `n` to `counter` (one of this structure's fields).
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// A snapshot.
    pub fn counts(&self) -> CpuCounts {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        CpuCounts {
            decrementer: g(&self.decrementer),
            external_vty: g(&self.external_vty),
            external_pci: g(&self.external_pci),
            external_other: g(&self.external_other),
            external_spurious: g(&self.external_spurious),
            external_errors: g(&self.external_errors),
            cedes: g(&self.cedes),
            ceded_ticks: g(&self.ceded_ticks),
            console_polls: g(&self.console_polls),
        }
    }
}

/// The `cpu` rows; `hz` converts ceded ticks to microseconds, `uptime_ticks`
/// gives the ceded share of time.
pub fn write_rows(w: &mut impl Write, c: &CpuCounts, hz: u64, uptime_ticks: u64) -> fmt::Result {
    let us = |t: u64| {
        u64::try_from(u128::from(t) * 1_000_000 / u128::from(hz.max(1))).unwrap_or(u64::MAX)
    };
    let external = c
        .external_vty
        .saturating_add(c.external_pci)
        .saturating_add(c.external_other)
        .saturating_add(c.external_spurious);
    writeln!(w, "interrupts_decrementer: {}", c.decrementer)?;
    writeln!(w, "interrupts_external: {external}")?;
    writeln!(w, "interrupts_external_vty: {}", c.external_vty)?;
    writeln!(w, "interrupts_external_pci: {}", c.external_pci)?;
    writeln!(w, "interrupts_external_other: {}", c.external_other)?;
    writeln!(w, "interrupts_spurious: {}", c.external_spurious)?;
    writeln!(w, "interrupt_errors: {}", c.external_errors)?;
    writeln!(w, "cedes: {}", c.cedes)?;
    writeln!(w, "ceded_us: {}", us(c.ceded_ticks))?;
    let permille = u128::from(c.ceded_ticks) * 1000 / u128::from(uptime_ticks.max(1));
    writeln!(w, "ceded_permille: {}", permille.min(1000))?;
    writeln!(w, "console_polls: {}", c.console_polls)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::String;

    #[test]
    fn rows_sum_external_and_convert_time() {
        let s = CpuStats::new();
        CpuStats::add(&s.external_vty, 3);
        CpuStats::add(&s.external_pci, 2);
        CpuStats::add(&s.external_spurious, 1);
        CpuStats::add(&s.cedes, 4);
        CpuStats::add(&s.ceded_ticks, 512_000_000);
        let mut out = String::new();
        write_rows(&mut out, &s.counts(), 512_000_000, 1_024_000_000).unwrap();
        assert!(out.contains("interrupts_external: 6\n"), "{out}");
        assert!(out.contains("interrupts_external_vty: 3\n"));
        assert!(out.contains("cedes: 4\n"));
        assert!(out.contains("ceded_us: 1000000\n"));
        assert!(out.contains("ceded_permille: 500\n"));
    }
}
