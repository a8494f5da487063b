//! Text the console prints about memory and the balloon, written to any
//! `core::fmt::Write`: the `cmm` rows, amsstat's `CMM Statistics:` and
//! `System Memory Statistics:` rows, the `sysfs` lines, the `trace` line and the
//! `meminfo` rows. Formats are fixed by docs/console.md; every number comes from a
//! counter field, none is recomputed here beyond unit conversion.

use core::fmt::{self, Display, Write};

use crate::mm::Mm;
use crate::params::Param;
use crate::units::pages_to_kb;

/// Writes one amsstat row: printf `"%-4s %-30s %-30s\n"` with `" "`, `name:` and
/// the value, as powerpc-utils' amsstat does.
pub fn write_amsstat_row(w: &mut dyn Write, name: &str, value: impl Display) -> fmt::Result {
    write!(w, "{:<4} {name}:", " ")?;
    pad(w, name.len() + 1, 30)?;
    w.write_char(' ')?;
    let mut counted = Counted { w, chars: 0 };
    write!(counted, "{value}")?;
    let used = counted.chars;
    pad(w, used, 30)?;
    w.write_char('\n')
}

fn pad(w: &mut dyn Write, used: usize, width: usize) -> fmt::Result {
    for _ in used..width {
        w.write_char(' ')?;
    }
    Ok(())
}

/// A writer that counts the characters passing through.
struct Counted<'a> {
    w: &'a mut dyn Write,
    chars: usize,
}

impl Write for Counted<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.chars += s.chars().count();
        self.w.write_str(s)
    }
}

/// The `CMM Statistics:` rows of amsstat: every parameter (the files `sysfs` lists
/// under `/sys/module/cmm/parameters`, Linux's first), then cmm0's files. The real
/// amsstat prints whatever that directory holds, so the two must list the same.
pub fn write_amsstat_cmm(w: &mut dyn Write, mm: &Mm) -> fmt::Result {
    for p in Param::ALL {
        write_amsstat_row(w, p.name(), mm.params().get(p))?;
    }
    for (name, kb) in cmm0_files(mm) {
        write_amsstat_row(w, name, kb)?;
    }
    Ok(())
}

/// `/sys/devices/system/cmm/cmm0` files and their values (KiB).
fn cmm0_files(mm: &Mm) -> [(&'static str, u64); 3] {
    let s = mm.stats();
    [
        ("loaned_kb", pages_to_kb(s.loaned_pages)),
        ("loaned_target_kb", pages_to_kb(s.loaned_target_pages)),
        ("oom_freed_kb", pages_to_kb(s.oom_freed_pages)),
    ]
}

/// The `sysfs` lines for the CMM: every parameter, then cmm0's files.
pub fn write_sysfs(w: &mut dyn Write, mm: &Mm) -> fmt::Result {
    for p in Param::ALL {
        writeln!(
            w,
            "/sys/module/cmm/parameters/{}={}",
            p.name(),
            mm.params().get(p)
        )?;
    }
    for (name, kb) in cmm0_files(mm) {
        writeln!(w, "/sys/devices/system/cmm/cmm0/{name}={kb}")?;
    }
    Ok(())
}

/// The `cmm` command's rows: parameters, then sizes in KiB, frame counts, counters,
/// convergence and the last shortfall.
pub fn write_cmm_rows(w: &mut dyn Write, mm: &Mm) -> fmt::Result {
    for p in Param::ALL {
        writeln!(w, "{}: {}", p.name(), mm.params().get(p))?;
    }
    for (name, kb) in cmm0_files(mm) {
        writeln!(w, "{name}: {kb}")?;
    }
    let c = mm.frames().counts();
    for (name, v) in [
        ("total_pages", c.total),
        ("free_pages", c.free),
        ("used_pages", c.used),
        ("reserved_pages", c.reserved),
        ("workload_pages", c.workload),
        ("cache_pages", c.cache),
        ("reporting_pages", c.reporting),
    ] {
        writeln!(w, "{name}: {v}")?;
    }
    write_report_rows(w, mm)?;
    let s = mm.stats();
    for (name, v) in s.counters() {
        writeln!(w, "{name}: {v}")?;
    }
    writeln!(w, "loan_request: {}", s.last_loan_request)?;
    writeln!(w, "converged: {}", u8::from(mm.is_converged()))?;
    match mm.balloon().shortfall() {
        Some(why) => writeln!(w, "shortfall: {why}"),
        None => writeln!(w, "shortfall: none"),
    }
}

/// Free page reporting's rows: `reported_kb` (free memory the host has taken
/// back, in whole reported blocks not reused since), the reports the device
/// used, their ranges, reported blocks reused, failed reports.
pub fn write_report_rows(w: &mut dyn Write, mm: &Mm) -> fmt::Result {
    let f = mm.frames().report_counts();
    let r = mm.report_stats();
    let reported_kb = pages_to_kb(
        f.reported_blocks
            .saturating_mul(crate::units::FRAMES_PER_BLOCK),
    );
    for (name, v) in [
        ("reported_kb", reported_kb),
        ("reports", r.reports),
        ("reported_ranges", r.ranges),
        ("reported_reused_blocks", f.reused_blocks),
        ("report_failures", r.failures),
    ] {
        writeln!(w, "{name}: {v}")?;
    }
    Ok(())
}

/// The `trace` line printed after every balloon round; `other_kb`, when the pool
/// model runs, is what it allots the other partitions, in KiB.
pub fn write_trace(w: &mut dyn Write, t_us: u64, mm: &Mm, other_kb: Option<u64>) -> fmt::Result {
    let s = mm.stats();
    write!(
        w,
        "trace t_us={t_us} loaned_kb={} target_kb={} free_kb={}",
        pages_to_kb(s.loaned_pages),
        pages_to_kb(s.loaned_target_pages),
        pages_to_kb(mm.frames().counts().free)
    )?;
    if let Some(kb) = other_kb {
        write!(w, " other_kb={kb}")?;
    }
    writeln!(w)
}

/// The `/proc/meminfo` figures this kernel has, in KiB.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemInfo {
    /// Managed memory minus loaned memory (as on Linux, loaned pages leave MemTotal).
    pub mem_total_kb: u64,
    /// Free frames.
    pub mem_free_kb: u64,
    /// Cache-workload pages.
    pub cached_kb: u64,
    /// No swap: always 0.
    pub swap_total_kb: u64,
    /// No swap: always 0.
    pub swap_free_kb: u64,
}

impl MemInfo {
    /// The rows, in /proc/meminfo order.
    pub fn rows(&self) -> [(&'static str, u64); 5] {
        [
            ("MemTotal", self.mem_total_kb),
            ("MemFree", self.mem_free_kb),
            ("Cached", self.cached_kb),
            ("SwapTotal", self.swap_total_kb),
            ("SwapFree", self.swap_free_kb),
        ]
    }
}

impl Mm {
    /// The meminfo figures.
    pub fn meminfo(&self) -> MemInfo {
        let c = self.frames().counts();
        // Frames held for a free-page report are free memory the guest keeps.
        let free = c.free.saturating_add(c.reporting);
        MemInfo {
            mem_total_kb: pages_to_kb(free.saturating_add(c.used)),
            mem_free_kb: pages_to_kb(free),
            cached_kb: pages_to_kb(c.cache),
            swap_total_kb: 0,
            swap_free_kb: 0,
        }
    }
}

/// `/proc/meminfo` rows: `MemTotal:       NNNNNNNN kB`.
pub fn write_meminfo(w: &mut dyn Write, m: &MemInfo) -> fmt::Result {
    for (name, kb) in m.rows() {
        write_meminfo_row(w, name, kb)?;
    }
    Ok(())
}

/// One `/proc/meminfo` row: `name:` padded to 16 columns, the value right-aligned
/// in 8, then ` kB`.
pub fn write_meminfo_row(w: &mut dyn Write, name: &str, kb: u64) -> fmt::Result {
    write!(w, "{name}:")?;
    pad(w, name.len() + 1, 16)?;
    writeln!(w, "{kb:>8} kB")
}

/// The meminfo rows of amsstat's `System Memory Statistics:` (`name: N kB`).
pub fn write_amsstat_meminfo(w: &mut dyn Write, m: &MemInfo) -> fmt::Result {
    for (name, kb) in m.rows() {
        write_amsstat_row(w, name, format_args!("{kb} kB"))?;
    }
    Ok(())
}
