//! The whole `amsstat` report and the whole `sysfs` listing, assembled from the
//! rows in [`crate::render`] and [`crate::vio`] and the lparcfg lines. The formats
//! are fixed by the console contract (`docs/console.md`) and follow powerpc-utils'
//! amsstat (`docs/cmo.md` §8). The caller gathers the inputs (uptime, H_GET_MPP
//! through the shim); nothing here calls the hypervisor.

use alloc::string::String;
use core::fmt::{self, Write};

use hcall::Lparcfg;

use crate::mm::Mm;
use crate::render::{write_amsstat_cmm, write_amsstat_meminfo, write_amsstat_row, write_sysfs};
use crate::vio::VioBus;

/// What the `amsstat` report shows.
pub struct Amsstat<'a> {
    /// Microseconds since boot, for the `Time since boot` line.
    pub uptime_us: u64,
    /// Memory, the balloon's parameters and statistics.
    pub mm: &'a Mm,
    /// The lparcfg figures (H_GET_MPP, H_GET_MPP_X, CMO characteristics, DesMem).
    pub lparcfg: &'a Lparcfg,
    /// VIO entitlement accounting.
    pub vio: &'a VioBus,
}

impl Amsstat<'_> {
    /// Writes the report: the uptime line, then `System Memory Statistics:`
    /// (meminfo rows and `DesMem`), `Entitlement Information:` (the lparcfg keys
    /// amsstat greps for, in lparcfg order), `CMM Statistics:`, and the VIO bus and
    /// device sections.
    pub fn write(&self, w: &mut dyn Write) -> fmt::Result {
        let mut lines = String::new();
        self.lparcfg.render(&mut lines)?;
        let us = self.uptime_us;
        writeln!(
            w,
            "Time since boot {}.{:06} s",
            us / 1_000_000,
            us % 1_000_000
        )?;
        writeln!(w, "System Memory Statistics:")?;
        write_amsstat_meminfo(w, &self.mm.meminfo())?;
        if let Some(mb) = self.lparcfg.des_mem_mb {
            write_amsstat_row(w, "DesMem", format_args!("{mb} MB"))?;
        }
        writeln!(w, "Entitlement Information:")?;
        // amsstat splits lparcfg on white space, so "N bytes" keeps only N.
        for tok in lines.split_ascii_whitespace() {
            if let Some((k, v)) = tok.split_once('=') {
                if amsstat_shows(k) {
                    write_amsstat_row(w, k, v)?;
                }
            }
        }
        writeln!(w, "CMM Statistics:")?;
        write_amsstat_cmm(w, self.mm)?;
        self.vio.write_amsstat_bus(w)?;
        self.vio.write_amsstat_devices(w)
    }
}

/// The lparcfg keys amsstat shows under `Entitlement Information:` (its grep
/// patterns: some anchored at the start of the key, some not).
pub fn amsstat_shows(key: &str) -> bool {
    const ANCHORED: [&str; 9] = [
        "entitled_memory",
        "mapped_entitled_memory",
        "backing_memory",
        "cmo_enabled",
        "cmo_faults",
        "cmo_fault_time_usec",
        "cmo_secondary_psp",
        "coalesced_bytes",
        "pool_coalesced_bytes",
    ];
    const ANYWHERE: [&str; 2] = ["entitled_memory_pool_size", "cmo_primary_psp"];
    ANCHORED.iter().any(|p| key.starts_with(p)) || ANYWHERE.iter().any(|p| key.contains(p))
}

/// The `sysfs` listing: the CMM's files, then the VIO bus's and its devices'.
pub fn write_sysfs_tree(w: &mut dyn Write, mm: &Mm, vio: &VioBus) -> fmt::Result {
    write_sysfs(w, mm)?;
    vio.write_sysfs(w)
}
