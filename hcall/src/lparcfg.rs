//! The CMO subset of Linux's `/proc/ppc64/lparcfg`, rendered as `key=value` lines.
//!
//! Order and units follow Linux (docs/cmo.md §2.3, §5.4): first `DesMem` (Linux
//! prints the system-parameter-20 string before the MPP data), then the H_GET_MPP
//! block (omitted as a whole when the call failed; `mapped_entitled_memory` and
//! `entitled_memory_pool_size` omitted for the -1 sentinel; pool size and backing
//! memory carry a literal ` bytes` suffix), then the H_GET_MPP_X block (only when
//! given; the pool-wide lines only when non-zero), then `cmo_enabled=0|1` always and,
//! when enabled, the fault counters and the CMO characteristics. Pure: the caller
//! gathers the inputs.

use core::fmt::{self, Write};

use crate::hypervisor::CmoFaultStats;
use crate::mpp::{MppData, MppXData};
use crate::sysparm::CmoCharacteristics;

/// Everything the CMO part of lparcfg shows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Lparcfg {
    /// `DesMem` from system parameter 20, in MB (`None`: not available, line omitted).
    pub des_mem_mb: Option<u64>,
    /// H_GET_MPP's result (`None`: the call failed, block omitted).
    pub mpp: Option<MppData>,
    /// H_GET_MPP_X's result (`None`: no XCMO or the call failed, block omitted).
    pub mpp_x: Option<MppXData>,
    /// CMO characteristics from system parameter 44 (`None`: unavailable, CMO off).
    pub cmo: Option<CmoCharacteristics>,
    /// The fault counters, shown when CMO is enabled.
    pub faults: CmoFaultStats,
}

impl Lparcfg {
    /// True if the CMO characteristics say CMO is on.
    pub fn cmo_enabled(&self) -> bool {
        self.cmo.is_some_and(|c| c.enabled())
    }

    /// Writes the lines, each ending in `\n`.
    pub fn render(&self, w: &mut impl Write) -> fmt::Result {
        if let Some(mb) = self.des_mem_mb {
            writeln!(w, "DesMem={mb}")?;
        }
        if let Some(m) = &self.mpp {
            render_mpp(w, m)?;
        }
        if let Some(x) = &self.mpp_x {
            render_mpp_x(w, x)?;
        }
        match self.cmo.filter(CmoCharacteristics::enabled) {
            Some(c) => {
                writeln!(w, "cmo_enabled=1")?;
                writeln!(w, "cmo_faults={}", self.faults.faults)?;
                writeln!(w, "cmo_fault_time_usec={}", self.faults.fault_time_usec)?;
                writeln!(w, "cmo_primary_psp={}", c.primary_psp)?;
                writeln!(w, "cmo_secondary_psp={}", c.secondary_psp)?;
                writeln!(w, "cmo_page_size={}", c.page_size())
            }
            None => writeln!(w, "cmo_enabled=0"),
        }
    }
}

/// The H_GET_MPP lines.
pub fn render_mpp(w: &mut impl Write, m: &MppData) -> fmt::Result {
    writeln!(w, "entitled_memory={}", m.entitled_mem)?;
    if let Some(mapped) = m.mapped_mem {
        writeln!(w, "mapped_entitled_memory={mapped}")?;
    }
    writeln!(w, "entitled_memory_group_number={}", m.group_num)?;
    writeln!(w, "entitled_memory_pool_number={}", m.pool_num)?;
    writeln!(w, "entitled_memory_weight={}", m.mem_weight)?;
    writeln!(
        w,
        "unallocated_entitled_memory_weight={}",
        m.unallocated_mem_weight
    )?;
    writeln!(
        w,
        "unallocated_io_mapping_entitlement={}",
        m.unallocated_entitlement
    )?;
    if let Some(pool) = m.pool_size {
        writeln!(w, "entitled_memory_pool_size={pool} bytes")?;
    }
    writeln!(w, "entitled_memory_loan_request={}", m.loan_request)?;
    writeln!(w, "backing_memory={} bytes", m.backing_mem)
}

/// The H_GET_MPP_X lines.
pub fn render_mpp_x(w: &mut impl Write, x: &MppXData) -> fmt::Result {
    writeln!(w, "coalesced_bytes={}", x.coalesced_bytes)?;
    if x.pool_coalesced_bytes != 0 {
        writeln!(w, "pool_coalesced_bytes={}", x.pool_coalesced_bytes)?;
    }
    if x.pool_purr_cycles != 0 {
        writeln!(w, "coalesce_pool_purr={}", x.pool_purr_cycles)?;
    }
    if x.pool_spurr_cycles != 0 {
        writeln!(w, "coalesce_pool_spurr={}", x.pool_spurr_cycles)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::seed_mpp;
    use alloc::string::String;
    use alloc::vec::Vec;

    fn cmo_on() -> CmoCharacteristics {
        CmoCharacteristics {
            page_shift: 12,
            primary_psp: 1,
            secondary_psp: 65535,
        }
    }

    fn render(l: &Lparcfg) -> String {
        let mut s = String::new();
        l.render(&mut s).unwrap();
        s
    }

    #[test]
    fn full_output_in_linux_order() {
        let l = Lparcfg {
            des_mem_mb: Some(2048),
            mpp: Some(seed_mpp()),
            mpp_x: None,
            cmo: Some(cmo_on()),
            faults: CmoFaultStats {
                faults: 5930,
                fault_time_usec: 8_074_654,
            },
        };
        assert_eq!(
            render(&l),
            "DesMem=2048\n\
             entitled_memory=67108864\n\
             mapped_entitled_memory=4792320\n\
             entitled_memory_group_number=32773\n\
             entitled_memory_pool_number=0\n\
             entitled_memory_weight=128\n\
             unallocated_entitled_memory_weight=0\n\
             unallocated_io_mapping_entitlement=0\n\
             entitled_memory_pool_size=3221225472 bytes\n\
             entitled_memory_loan_request=-36864\n\
             backing_memory=1001492480 bytes\n\
             cmo_enabled=1\n\
             cmo_faults=5930\n\
             cmo_fault_time_usec=8074654\n\
             cmo_primary_psp=1\n\
             cmo_secondary_psp=65535\n\
             cmo_page_size=4096\n"
        );
    }

    #[test]
    fn sentinels_omit_their_lines() {
        let mut m = seed_mpp();
        m.mapped_mem = None;
        m.pool_size = None;
        let s = render(&Lparcfg {
            mpp: Some(m),
            ..Lparcfg::default()
        });
        assert!(!s.contains("mapped_entitled_memory"));
        assert!(!s.contains("entitled_memory_pool_size"));
        assert!(s.contains("entitled_memory_loan_request=-36864\n"));
        assert!(s.ends_with("backing_memory=1001492480 bytes\ncmo_enabled=0\n"));
    }

    #[test]
    fn failed_mpp_omits_the_block_and_cmo_off_is_one_line() {
        assert_eq!(render(&Lparcfg::default()), "cmo_enabled=0\n");
        let off = Lparcfg {
            cmo: Some(CmoCharacteristics::default()),
            faults: CmoFaultStats {
                faults: 9,
                fault_time_usec: 9,
            },
            ..Lparcfg::default()
        };
        assert_eq!(render(&off), "cmo_enabled=0\n");
        assert!(!off.cmo_enabled());
    }

    #[test]
    fn mpp_x_lines_only_when_nonzero() {
        let mut l = Lparcfg {
            mpp: Some(seed_mpp()),
            mpp_x: Some(MppXData::default()),
            cmo: Some(cmo_on()),
            ..Lparcfg::default()
        };
        let s = render(&l);
        let lines: Vec<&str> = s.lines().collect();
        let i = lines
            .iter()
            .position(|l| *l == "coalesced_bytes=0")
            .unwrap();
        assert!(lines[i - 1].starts_with("backing_memory="));
        assert_eq!(lines[i + 1], "cmo_enabled=1");
        l.mpp_x = Some(MppXData {
            coalesced_bytes: 1,
            pool_coalesced_bytes: 2,
            pool_purr_cycles: 0,
            pool_spurr_cycles: 4,
            pool_in_use_bytes: 5,
        });
        let s = render(&l);
        assert!(s.contains(
            "coalesced_bytes=1\npool_coalesced_bytes=2\ncoalesce_pool_spurr=4\ncmo_enabled=1\n"
        ));
        assert!(!s.contains("coalesce_pool_purr"));
    }

    #[test]
    fn every_line_is_key_equals_value() {
        let l = Lparcfg {
            des_mem_mb: Some(1),
            mpp: Some(seed_mpp()),
            mpp_x: Some(MppXData::default()),
            cmo: Some(cmo_on()),
            faults: CmoFaultStats::default(),
        };
        for line in render(&l).lines() {
            let (k, v) = line.split_once('=').unwrap();
            assert!(
                k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                "{line}"
            );
            let num = v.strip_suffix(" bytes").unwrap_or(v);
            assert!(num.parse::<i64>().is_ok(), "{line}");
        }
    }
}
