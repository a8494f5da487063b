//! The processor's counters: interrupts taken by kind, cedes and time ceded.
//! One structure of atomics, updated where the event happens (interrupt handlers
//! included: atomics need no lock) and printed by the `cpu` command. Device
//! interrupts are counted per source by the interrupt handler table
//! ([`crate::irq`]) and come in as [`DeviceRows`]: a new driver adds no field here.

use core::fmt::{self, Write};
use core::sync::atomic::{AtomicU64, Ordering};

/// Every counter about the processor the kernel prints.
#[derive(Debug, Default)]
pub struct CpuStats {
    /// Decrementer interrupts (timer deadlines).
    pub decrementer: AtomicU64,
    /// Inter-processor interrupts received (XICS source 2).
    pub external_ipi: AtomicU64,
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
    /// Device interrupts by label (from the handler table).
    pub devices: DeviceRows,
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
            external_ipi: AtomicU64::new(0),
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

    /// A snapshot; the device rows and `external_other` (sources without a
    /// handler) come from the handler table.
    pub fn counts(&self, devices: DeviceRows, external_other: u64) -> CpuCounts {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        CpuCounts {
            decrementer: g(&self.decrementer),
            devices,
            external_ipi: g(&self.external_ipi),
            external_other,
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
            devices: self.devices.plus(&o.devices),
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

/// Most device labels a [`DeviceRows`] holds (one per driver with an interrupt).
pub const MAX_DEVICE_ROWS: usize = 8;

/// Device interrupts counted by label (`vty`, `pci`, ...), in a fixed order: the
/// `interrupts_external_<label>` rows of the `cpu` reply.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeviceRows {
    rows: [(&'static str, u64); MAX_DEVICE_ROWS],
    len: usize,
}

impl DeviceRows {
    /// Adds `n` to `label`'s row, appending the row if it is new (a label past
    /// [`MAX_DEVICE_ROWS`] is dropped).
    pub fn add(&mut self, label: &'static str, n: u64) {
        if let Some(r) = self.rows[..self.len].iter_mut().find(|r| r.0 == label) {
            r.1 = r.1.saturating_add(n);
        } else if let Some(r) = self.rows.get_mut(self.len) {
            *r = (label, n);
            self.len += 1;
        }
    }

    /// The rows in order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        self.rows[..self.len].iter().copied()
    }

    /// Both sets of rows summed by label.
    pub fn plus(&self, o: &DeviceRows) -> DeviceRows {
        let mut r = *self;
        for (l, n) in o.iter() {
            r.add(l, n);
        }
        r
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
        .devices
        .iter()
        .fold(0u64, |t, (_, n)| t.saturating_add(n))
        .saturating_add(c.external_ipi)
        .saturating_add(c.external_other)
        .saturating_add(c.external_spurious);
    writeln!(w, "interrupts_decrementer: {}", c.decrementer)?;
    writeln!(w, "interrupts_external: {external}")?;
    for (label, n) in c.devices.iter() {
        writeln!(w, "interrupts_external_{label}: {n}")?;
    }
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
        CpuStats::add(&s.external_spurious, 1);
        CpuStats::add(&s.cedes, 4);
        CpuStats::add(&s.ceded_ticks, 512_000_000);
        let mut devices = DeviceRows::default();
        devices.add("vty", 3);
        devices.add("pci", 2);
        let mut out = String::new();
        write_rows(&mut out, &s.counts(devices, 4), 512_000_000, 1_024_000_000).unwrap();
        assert!(out.contains("interrupts_external: 10\n"), "{out}");
        assert!(out.contains("interrupts_external_vty: 3\ninterrupts_external_pci: 2\n"));
        assert!(out.contains("interrupts_external_other: 4\n"));
        assert!(out.contains("cedes: 4\n"));
        assert!(out.contains("ceded_us: 1000000\n"));
        assert!(out.contains("ceded_permille: 500\n"));
    }

    #[test]
    fn device_rows_sum_by_label_keep_their_order_and_drop_past_the_capacity() {
        let mut a = DeviceRows::default();
        a.add("vty", 1);
        a.add("pci", 2);
        let mut b = DeviceRows::default();
        b.add("pci", 5);
        b.add("null", 7);
        let sum: alloc::vec::Vec<_> = a.plus(&b).iter().collect();
        assert_eq!(sum, [("vty", 1), ("pci", 7), ("null", 7)]);
        let labels = ["a", "b", "c", "d", "e", "f", "g", "h", "i"];
        let mut full = DeviceRows::default();
        for l in labels {
            full.add(l, 1);
        }
        assert_eq!(full.iter().count(), MAX_DEVICE_ROWS);
        assert!(full.iter().all(|(l, _)| l != "i"));
        full.add("a", u64::MAX);
        assert_eq!(full.iter().next(), Some(("a", u64::MAX)));
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
