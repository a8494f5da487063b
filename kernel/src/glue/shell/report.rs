//! Reports in the formats other tools read: `amsstat` (powerpc-utils' layout) and
//! `sysfs` (one `path=value` line per file amsstat reads on Linux).

use alloc::string::String;
use core::fmt::Write;

use super::out::emit;
use super::CmdResult;
use crate::clock;
use crate::sys::System;

/// The lparcfg keys amsstat shows under `Entitlement Information:` (its grep
/// patterns: some anchored at the start, some not).
fn amsstat_shows(key: &str) -> bool {
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

/// `amsstat`.
pub fn amsstat(sys: &mut System) -> CmdResult {
    let lpar = super::hv::lparcfg_data(sys);
    let mut lines = String::new();
    lpar.render(&mut lines)
        .map_err(|_| String::from("lparcfg rendering failed"))?;
    let us = clock::now_us();
    emit(|w| {
        writeln!(
            w,
            "Time since boot {}.{:06} s",
            us / 1_000_000,
            us % 1_000_000
        )?;
        writeln!(w, "System Memory Statistics:")?;
        cmm::render::write_amsstat_meminfo(w, &sys.mm.meminfo())?;
        if let Some(mb) = lpar.des_mem_mb {
            cmm::render::write_amsstat_row(w, "DesMem", format_args!("{mb} MB"))?;
        }
        writeln!(w, "Entitlement Information:")?;
        // amsstat splits lparcfg on white space, so "N bytes" keeps only N.
        for tok in lines.split_ascii_whitespace() {
            if let Some((k, v)) = tok.split_once('=') {
                if amsstat_shows(k) {
                    cmm::render::write_amsstat_row(w, k, v)?;
                }
            }
        }
        writeln!(w, "CMM Statistics:")?;
        cmm::render::write_amsstat_cmm(w, &sys.mm)?;
        sys.vio.write_amsstat_bus(w)?;
        sys.vio.write_amsstat_devices(w)
    })
}

/// `sysfs`.
pub fn sysfs(sys: &mut System) -> CmdResult {
    emit(|w| {
        cmm::render::write_sysfs(w, &sys.mm)?;
        sys.vio.write_sysfs(w)
    })
}
