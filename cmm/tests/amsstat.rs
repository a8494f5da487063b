//! The whole `amsstat` report and `sysfs` listing (cmm::amsstat), and the 2 MiB-run
//! statistics of the `hv` report (cmm::runs), on a fake machine.

mod common;

use std::collections::BTreeSet;

use cmm::amsstat::{amsstat_shows, write_sysfs_tree, Amsstat};
use cmm::render::{write_amsstat_cmm, write_sysfs};
use cmm::runs::WholeRuns;
use cmm::vio::{DmaWindow, VioBus, VioDevice};
use cmm::Workload;
use common::{Request, World};
use hcall::sysparm::CmoCharacteristics;
use hcall::{CmoFaultStats, Lparcfg, MppXData};

fn text(f: impl FnOnce(&mut String) -> core::fmt::Result) -> String {
    let mut s = String::new();
    f(&mut s).unwrap();
    s
}

fn loaned_world() -> World {
    let mut w = World::new(4096, 64, 4);
    w.hv.request = Request::LoanPages(100);
    w.poll();
    w.alloc(10, Workload::Cache).unwrap();
    w
}

fn bus() -> VioBus {
    let devices = vec![
        VioDevice {
            name: "vty@71000000".into(),
            unit_address: 0x7100_0000,
            compatible: "hvterm1".into(),
            dma_window: None,
        },
        VioDevice {
            name: "v-scsi@71000002".into(),
            unit_address: 0x7100_0002,
            compatible: "IBM,v-scsi".into(),
            dma_window: Some(DmaWindow {
                liobn: 0x7100_0002,
                offset: 0,
                size: 8 << 20,
            }),
        },
    ];
    let mut bus = VioBus::new(16 << 20, devices).unwrap();
    assert!(bus.probe_all().is_empty());
    bus
}

/// The figures of the seed lparcfg (an LPAR in a 3 GiB pool), CMO on.
fn lparcfg(des_mem_mb: Option<u64>) -> Lparcfg {
    Lparcfg {
        des_mem_mb,
        mpp: Some(hcall::fake::seed_mpp()),
        mpp_x: Some(MppXData {
            coalesced_bytes: 8192,
            pool_coalesced_bytes: 65_536,
            pool_purr_cycles: 7,
            pool_spurr_cycles: 9,
            pool_in_use_bytes: 0,
        }),
        cmo: Some(CmoCharacteristics {
            page_shift: 12,
            primary_psp: 1,
            secondary_psp: 65535,
        }),
        faults: CmoFaultStats {
            faults: 3,
            fault_time_usec: 250,
        },
    }
}

/// The report's sections: header line → the lines under it.
fn sections(report: &str) -> Vec<(&str, Vec<&str>)> {
    let mut out: Vec<(&str, Vec<&str>)> = Vec::new();
    for line in report.lines().skip(1) {
        if !line.starts_with(' ') {
            out.push((line, Vec::new()));
        } else {
            out.last_mut()
                .expect("a row before any header")
                .1
                .push(line);
        }
    }
    out
}

/// `name: value` of one row (value with its unit, blanks trimmed).
fn row(line: &str) -> (&str, &str) {
    let (name, value) = line.trim().split_once(':').unwrap();
    (name, value.trim())
}

#[test]
fn amsstat_report_has_amsstats_sections_in_order() {
    let w = loaned_world();
    let vio = bus();
    let lp = lparcfg(Some(1024));
    let r = text(|s| {
        Amsstat {
            uptime_us: 12_000_345,
            mm: &w.mm,
            lparcfg: &lp,
            vio: &vio,
        }
        .write(s)
    });
    assert_eq!(r.lines().next(), Some("Time since boot 12.000345 s"));
    let secs = sections(&r);
    let headers: Vec<&str> = secs.iter().map(|(h, _)| *h).collect();
    assert_eq!(
        headers,
        [
            "System Memory Statistics:",
            "Entitlement Information:",
            "CMM Statistics:",
            "VIO Bus Statistics:",
            "VIO Device Statistics:"
        ]
    );

    // Memory: meminfo's rows in kB (loaned pages leave MemTotal), then DesMem in MB.
    let mem: Vec<(&str, &str)> = secs[0].1.iter().map(|l| row(l)).collect();
    assert_eq!(
        mem,
        [
            ("MemTotal", "15728 kB"),
            ("MemFree", "15688 kB"),
            ("Cached", "40 kB"),
            ("SwapTotal", "0 kB"),
            ("SwapFree", "0 kB"),
            ("DesMem", "1024 MB"),
        ]
    );

    // Entitlement: the lparcfg keys amsstat greps for, in lparcfg order, with the
    // ` bytes` suffix split off as amsstat's word splitting does.
    let ent: Vec<(&str, &str)> = secs[1].1.iter().map(|l| row(l)).collect();
    assert_eq!(
        ent,
        [
            ("entitled_memory", "67108864"),
            ("mapped_entitled_memory", "4792320"),
            ("entitled_memory_group_number", "32773"),
            ("entitled_memory_pool_number", "0"),
            ("entitled_memory_weight", "128"),
            ("entitled_memory_pool_size", "3221225472"),
            ("entitled_memory_loan_request", "-36864"),
            ("backing_memory", "1001492480"),
            ("coalesced_bytes", "8192"),
            ("pool_coalesced_bytes", "65536"),
            ("cmo_enabled", "1"),
            ("cmo_faults", "3"),
            ("cmo_fault_time_usec", "250"),
            ("cmo_primary_psp", "1"),
            ("cmo_secondary_psp", "65535"),
        ]
    );

    // The CMM and VIO sections are exactly the pieces' own output.
    let cmm_rows = text(|s| write_amsstat_cmm(s, &w.mm));
    assert_eq!(secs[2].1.join("\n") + "\n", cmm_rows);
    let bus_rows = text(|s| vio.write_amsstat_bus(s));
    assert_eq!(
        format!("VIO Bus Statistics:\n{}\n", secs[3].1.join("\n")),
        bus_rows
    );
    let dev_rows = text(|s| vio.write_amsstat_devices(s));
    assert_eq!(
        format!("VIO Device Statistics:\n{}\n", secs[4].1.join("\n")),
        dev_rows
    );
    assert!(secs[4].1.contains(&"   v-scsi@71000002:"));
    // Every row is printf "%-4s %-30s %-30s": the value column starts at 36.
    for l in secs[1].1.iter().chain(&secs[0].1) {
        assert_eq!(l.len(), 4 + 1 + 30 + 1 + 30, "{l:?}");
        assert_ne!(l.as_bytes()[36], b' ', "{l:?}");
    }
}

#[test]
fn amsstat_without_mpp_or_desmem_shows_only_cmo_enabled() {
    let w = World::new(1024, 16, 0);
    let vio = VioBus::without_cmo(Vec::new()).unwrap();
    let lp = Lparcfg::default();
    let r = text(|s| {
        Amsstat {
            uptime_us: 999_999,
            mm: &w.mm,
            lparcfg: &lp,
            vio: &vio,
        }
        .write(s)
    });
    assert!(r.starts_with("Time since boot 0.999999 s\n"), "{r}");
    let secs = sections(&r);
    assert!(secs[0].1.iter().all(|l| row(l).0 != "DesMem"));
    let ent: Vec<(&str, &str)> = secs[1].1.iter().map(|l| row(l)).collect();
    assert_eq!(ent, [("cmo_enabled", "0")]);
    assert_eq!(secs[4].1, ["     No AMS devices found."]);
}

#[test]
fn amsstat_greps_the_keys_it_knows() {
    for k in [
        "entitled_memory",
        "entitled_memory_loan_request",
        "mapped_entitled_memory",
        "backing_memory",
        "cmo_enabled",
        "cmo_faults",
        "cmo_fault_time_usec",
        "cmo_primary_psp",
        "cmo_secondary_psp",
        "coalesced_bytes",
        "pool_coalesced_bytes",
    ] {
        assert!(amsstat_shows(k), "{k}");
    }
    for k in [
        "DesMem",
        "unallocated_entitled_memory_weight",
        "unallocated_io_mapping_entitlement",
        "cmo_page_size",
        "coalesce_pool_purr",
        "coalesce_pool_spurr",
        "",
    ] {
        assert!(!amsstat_shows(k), "{k}");
    }
}

#[test]
fn sysfs_tree_is_the_cmm_files_then_the_vio_files() {
    let w = loaned_world();
    let vio = bus();
    let s = text(|s| write_sysfs_tree(s, &w.mm, &vio));
    let cmm_part = text(|s| write_sysfs(s, &w.mm));
    let vio_part = text(|s| vio.write_sysfs(s));
    assert_eq!(s, cmm_part + &vio_part);
    assert!(s
        .lines()
        .any(|l| l == "/sys/bus/vio/devices/71000002/devspec=/vdevice/v-scsi@71000002"));
    assert!(s
        .lines()
        .any(|l| l == "/sys/devices/system/cmm/cmm0/loaned_kb=400"));
    for l in s.lines() {
        let (path, value) = l.split_once('=').expect("path=value");
        assert!(path.starts_with("/sys/") && !value.is_empty(), "{l}");
    }
}

#[test]
fn whole_runs_count_only_complete_aligned_blocks() {
    let c = |v: Vec<u64>| WholeRuns::count(v);
    assert_eq!(c(vec![]), WholeRuns { runs: 0, pages: 0 });
    assert_eq!(
        c((512..1024).collect()),
        WholeRuns {
            runs: 1,
            pages: 512
        }
    );
    assert_eq!(c((0..512).collect()).runs, 1);
    assert_eq!(c((512..1023).collect()).runs, 0);
    // 512 pages, but across a 2 MiB boundary.
    assert_eq!(c((256..768).collect()).runs, 0);
    // Two whole blocks with a partial one between them.
    let v: Vec<u64> = (0..512).chain(600..700).chain(1024..1536).collect();
    assert_eq!(
        c(v),
        WholeRuns {
            runs: 2,
            pages: 1024
        }
    );
    let s = text(|s| {
        WholeRuns {
            runs: 2,
            pages: 1024,
        }
        .write_rows(s)
    });
    assert_eq!(s, "loaned_whole_runs: 2\nloaned_in_whole_runs: 1024\n");
}

#[test]
fn whole_runs_of_the_balloons_loans_match_the_hypervisors_book() {
    // 8 blocks of 2 MiB, the first 64 frames reserved: the balloon fills whole free
    // blocks first, so 1024 loaned pages are two whole runs.
    let mut w = World::new(4096, 64, 0);
    w.hv.request = Request::LoanPages(1024);
    while w.loaned() < 1024 {
        w.poll();
    }
    let runs = WholeRuns::of_loaned(w.mm.frames());
    let book: Vec<u64> =
        w.hv.book
            .borrow()
            .loaned_addrs()
            .iter()
            .map(|a| a / 4096)
            .collect();
    assert_eq!(book.len(), 1024);
    assert_eq!(runs, WholeRuns::count(book));
    assert_eq!(
        runs,
        WholeRuns {
            runs: 2,
            pages: 1024
        }
    );
}

proptest::proptest! {
    #[test]
    fn whole_runs_agree_with_a_block_by_block_check(
        blocks in proptest::collection::btree_set(0u64..16, 0..8),
        holes in proptest::collection::vec(0u64..8192, 0..6),
        extra in proptest::collection::vec(0u64..8192, 0..40),
    ) {
        let mut pfns: BTreeSet<u64> = blocks.iter().flat_map(|b| b * 512..(b + 1) * 512).collect();
        pfns.extend(&extra);
        for h in &holes {
            pfns.remove(h);
        }
        // Oracle: a block counts when every one of its 512 frames is in the set.
        let full = (0..16u64)
            .filter(|b| (b * 512..(b + 1) * 512).all(|p| pfns.contains(&p)))
            .count() as u64;
        let got = WholeRuns::count(pfns.iter().copied());
        proptest::prop_assert_eq!(got, WholeRuns { runs: full, pages: full * 512 });
    }
}
