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
    /// Inter-processor interrupts received (XICS source 2).
    pub external_ipi: AtomicU64,
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
    /// Lock acquisitions that had to wait.
    pub lock_waits: AtomicU64,
    /// H_CONFER calls made while waiting for a lock.
    pub confers: AtomicU64,
    /// H_PROD calls made to wake a ceded CPU.
    pub prods: AtomicU64,
}

/// A plain copy of [`CpuStats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct CpuCounts {
    pub decrementer: u64,
    pub external_vty: u64,
    pub external_pci: u64,
    pub external_ipi: u64,
    pub external_other: u64,
    pub external_spurious: u64,
    pub external_errors: u64,
    pub cedes: u64,
    pub ceded_ticks: u64,
    pub console_polls: u64,
    pub lock_waits: u64,
    pub confers: u64,
    pub prods: u64,
}

impl CpuStats {
    /// All zero.
    pub const fn new() -> Self {
        CpuStats {
            decrementer: AtomicU64::new(0),
            external_vty: AtomicU64::new(0),
            external_pci: AtomicU64::new(0),
            external_ipi: AtomicU64::new(0),
            external_other: AtomicU64::new(0),
            external_spurious: AtomicU64::new(0),
            external_errors: AtomicU64::new(0),
            cedes: AtomicU64::new(0),
            ceded_ticks: AtomicU64::new(0),
            console_polls: AtomicU64::new(0),
            lock_waits: AtomicU64::new(0),
            confers: AtomicU64::new(0),
            prods: AtomicU64::new(0),
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
            external_ipi: g(&self.external_ipi),
            external_other: g(&self.external_other),
            external_spurious: g(&self.external_spurious),
            external_errors: g(&self.external_errors),
            cedes: g(&self.cedes),
            ceded_ticks: g(&self.ceded_ticks),
            console_polls: g(&self.console_polls),
            lock_waits: g(&self.lock_waits),
            confers: g(&self.confers),
            prods: g(&self.prods),
        }
    }
}

impl CpuCounts {
    /// The sum of two sets of counters (saturating).
    pub fn plus(&self, o: &CpuCounts) -> CpuCounts {
        CpuCounts {
            decrementer: self.decrementer.saturating_add(o.decrementer),
            external_vty: self.external_vty.saturating_add(o.external_vty),
            external_pci: self.external_pci.saturating_add(o.external_pci),
            external_ipi: self.external_ipi.saturating_add(o.external_ipi),
            external_other: self.external_other.saturating_add(o.external_other),
            external_spurious: self.external_spurious.saturating_add(o.external_spurious),
            external_errors: self.external_errors.saturating_add(o.external_errors),
            cedes: self.cedes.saturating_add(o.cedes),
            ceded_ticks: self.ceded_ticks.saturating_add(o.ceded_ticks),
            console_polls: self.console_polls.saturating_add(o.console_polls),
            lock_waits: self.lock_waits.saturating_add(o.lock_waits),
            confers: self.confers.saturating_add(o.confers),
            prods: self.prods.saturating_add(o.prods),
        }
    }
}

/// One CPU's block in the `cpu` reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CpuBlock {
    /// The kernel's CPU index (0 = the boot CPU).
    pub index: usize,
    /// Its interrupt server number.
    pub server: u32,
    /// `online`, `failed`, ...
    pub state: &'static str,
    /// Whether its VPA is registered.
    pub vpa_registered: bool,
    /// Whether it is inside H_CEDE right now.
    pub ceding: bool,
    /// Its counters.
    pub counts: CpuCounts,
    /// Timebase ticks since it came online (0 when it never did).
    pub online_ticks: u64,
}

/// The whole `cpu` reply after its first lines: `cpus_online`, `cpus_present`,
/// the total rows (summed over every CPU; `ceded_permille` over the time every
/// online CPU has been up), then one block per CPU headed `cpu <index>:` with
/// its rows indented by three spaces.
pub fn write_blocks(
    w: &mut impl Write,
    blocks: &[CpuBlock],
    present: usize,
    hz: u64,
) -> fmt::Result {
    let online = blocks.iter().filter(|b| b.state == "online").count();
    writeln!(w, "cpus_online: {online}")?;
    writeln!(w, "cpus_present: {present}")?;
    let total = blocks
        .iter()
        .fold(CpuCounts::default(), |t, b| t.plus(&b.counts));
    let up = blocks
        .iter()
        .fold(0u64, |t, b| t.saturating_add(b.online_ticks));
    write_rows(w, &total, hz, up)?;
    for b in blocks {
        writeln!(w, "cpu {}:", b.index)?;
        writeln!(w, "   server: {}", b.server)?;
        writeln!(w, "   state: {}", b.state)?;
        writeln!(w, "   vpa_registered: {}", u8::from(b.vpa_registered))?;
        writeln!(w, "   ceding: {}", u8::from(b.ceding))?;
        let mut rows = alloc::string::String::new();
        write_rows(&mut rows, &b.counts, hz, b.online_ticks)?;
        for l in rows.lines() {
            writeln!(w, "   {l}")?;
        }
    }
    Ok(())
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
        .saturating_add(c.external_ipi)
        .saturating_add(c.external_other)
        .saturating_add(c.external_spurious);
    writeln!(w, "interrupts_decrementer: {}", c.decrementer)?;
    writeln!(w, "interrupts_external: {external}")?;
    writeln!(w, "interrupts_external_vty: {}", c.external_vty)?;
    writeln!(w, "interrupts_external_pci: {}", c.external_pci)?;
    writeln!(w, "interrupts_ipi: {}", c.external_ipi)?;
    writeln!(w, "interrupts_external_other: {}", c.external_other)?;
    writeln!(w, "interrupts_spurious: {}", c.external_spurious)?;
    writeln!(w, "interrupt_errors: {}", c.external_errors)?;
    writeln!(w, "cedes: {}", c.cedes)?;
    writeln!(w, "ceded_us: {}", us(c.ceded_ticks))?;
    let permille = u128::from(c.ceded_ticks) * 1000 / u128::from(uptime_ticks.max(1));
    writeln!(w, "ceded_permille: {}", permille.min(1000))?;
    writeln!(w, "console_polls: {}", c.console_polls)?;
    writeln!(w, "lock_waits: {}", c.lock_waits)?;
    writeln!(w, "confers: {}", c.confers)?;
    writeln!(w, "prods: {}", c.prods)
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

    #[test]
    fn blocks_have_a_total_first_and_one_indented_block_per_cpu() {
        let a = CpuCounts {
            cedes: 3,
            ceded_ticks: 100,
            decrementer: 1,
            ..CpuCounts::default()
        };
        let b = CpuCounts {
            cedes: 5,
            ceded_ticks: 300,
            ..CpuCounts::default()
        };
        let blocks = [
            CpuBlock {
                index: 0,
                server: 0,
                state: "online",
                vpa_registered: true,
                ceding: false,
                counts: a,
                online_ticks: 400,
            },
            CpuBlock {
                index: 1,
                server: 8,
                state: "online",
                vpa_registered: true,
                ceding: true,
                counts: b,
                online_ticks: 400,
            },
        ];
        let mut out = String::new();
        write_blocks(&mut out, &blocks, 4, 100).unwrap();
        let (total, rest) = out.split_once("cpu 0:\n").unwrap();
        assert!(
            total.starts_with("cpus_online: 2\ncpus_present: 4\n"),
            "{out}"
        );
        assert!(total.contains("\ncedes: 8\n"), "{out}");
        assert!(total.contains("ceded_permille: 500\n"), "{out}");
        let (cpu0, cpu1) = rest.split_once("cpu 1:\n").unwrap();
        assert!(cpu0.contains("   cedes: 3\n") && cpu0.contains("   ceded_permille: 250\n"));
        assert!(cpu1.contains("   server: 8\n") && cpu1.contains("   cedes: 5\n"));
        assert!(cpu0.contains("   ceding: 0\n") && cpu1.contains("   ceding: 1\n"));
        assert!(cpu1.contains("   ceded_permille: 750\n"), "{out}");
    }
}
