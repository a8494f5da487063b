//! The real `amsstat` (powerpc-utils, from Debian's ppc64el package) reads a file
//! tree rebuilt from the kernel's `sysfs`, `lparcfg` and `meminfo`, and every
//! figure it prints equals the kernel's own `amsstat` at the same moment.
//!
//! The test needs Debian's `powerpc-ibm-utils` package, fetched with apt. If it
//! cannot be fetched the test fails; a user without a mirror opts out explicitly
//! with `LPAR_CMM_SKIP_REAL_AMSSTAT=1` (README.md), and then it says it skipped.

use lpar_cmm_tests::{amsstat, Qemu};

/// The environment variable that skips this test on purpose.
const OPT_OUT: &str = "LPAR_CMM_SKIP_REAL_AMSSTAT";

#[test]
fn real_amsstat_agrees_with_the_kernel() {
    if std::env::var_os(OPT_OUT).is_some_and(|v| v == "1") {
        // On the real stderr, bypassing the test harness's capture.
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED real_amsstat_agrees_with_the_kernel: {OPT_OUT}=1"
        );
        return;
    }
    let tool = amsstat::fetch_tool().unwrap_or_else(|why| {
        panic!(
            "cannot fetch powerpc-ibm-utils, so the real amsstat cannot run: {why}\n\
             (set {OPT_OUT}=1 to skip this test on purpose)"
        )
    });
    let mut vm = Qemu::builder()
        .vscsi()
        .vlan()
        .append("cmm.delay_ms=20 cmm.min_mem_mb=64")
        .boot();
    vm.ok("hv target 48M");
    vm.ok("cmm wait 20000");
    vm.ok("vio map v-scsi@71000002 128K");
    vm.ok("alloc 4M cache");
    let snap = amsstat::snapshot(&mut vm);
    let root = amsstat::cache_dir().join(format!("tree-{}", std::process::id()));
    amsstat::build_tree(&root, &snap, &tool).expect("tree");
    let real = amsstat::run_tool(&tool, &root).expect("amsstat runs");
    let ours = snap.amsstat.join("\n");
    let n = amsstat::compare(&real, &ours)
        .unwrap_or_else(|e| panic!("{e}\n--- real amsstat ---\n{real}\n--- kernel ---\n{ours}"));
    let _ = std::fs::remove_dir_all(&root);
    for section in [
        "System Memory Statistics:",
        "Entitlement Information:",
        "CMM Statistics:",
        "VIO Bus Statistics:",
        "VIO Device Statistics:",
        "   v-scsi@71000002:",
        "   l-lan@71000003:",
    ] {
        assert!(
            real.lines().any(|l| l == section),
            "real amsstat printed no {section:?}:\n{real}"
        );
    }
    assert!(n >= 40, "only {n} figures compared:\n{real}");
    // Rows that must be there: a row missing from both reports would compare equal.
    let figures = amsstat::figures(&real);
    let required: &[(&str, &str, &[&str])] = &[
        (
            "System Memory Statistics",
            "",
            &[
                "MemTotal",
                "MemFree",
                "Cached",
                "SwapTotal",
                "SwapFree",
                "DesMem",
            ],
        ),
        (
            "Entitlement Information",
            "",
            &[
                "entitled_memory",
                "mapped_entitled_memory",
                "entitled_memory_group_number",
                "entitled_memory_pool_number",
                "entitled_memory_weight",
                "entitled_memory_pool_size",
                "entitled_memory_loan_request",
                "backing_memory",
                "cmo_enabled",
                "cmo_faults",
                "cmo_fault_time_usec",
                "cmo_primary_psp",
                "cmo_secondary_psp",
            ],
        ),
        (
            "CMM Statistics",
            "",
            &[
                "disable",
                "debug",
                "min_mem_mb",
                "oom_kb",
                "delay",
                "loaned_kb",
                "loaned_target_kb",
                "oom_freed_kb",
            ],
        ),
        (
            "VIO Bus Statistics",
            "",
            &[
                "cmo_entitled",
                "cmo_reserve_size",
                "cmo_excess_size",
                "cmo_excess_free",
                "cmo_spare",
                "cmo_min",
                "cmo_desired",
                "cmo_curr",
                "cmo_high",
            ],
        ),
    ];
    let device_rows = [
        "cmo_desired",
        "cmo_entitled",
        "cmo_allocated",
        "cmo_allocs_failed",
    ];
    let mut missing = Vec::new();
    for (section, device, rows) in required {
        for row in *rows {
            let key = (section.to_string(), device.to_string(), row.to_string());
            if !figures.contains_key(&key) {
                missing.push(format!("{section} / {row}"));
            }
        }
    }
    for device in ["v-scsi@71000002", "l-lan@71000003"] {
        for row in device_rows {
            let key = (
                "VIO Device Statistics".to_string(),
                device.to_string(),
                row.to_string(),
            );
            if !figures.contains_key(&key) {
                missing.push(format!("{device} / {row}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "real amsstat printed no {missing:?}:\n{real}"
    );
    let get = |s: &str, d: &str, k: &str| figures[&(s.to_string(), d.to_string(), k.to_string())];
    assert_eq!(get("CMM Statistics", "", "loaned_kb"), 48 * 1024);
    assert_eq!(
        get("VIO Device Statistics", "v-scsi@71000002", "cmo_allocated"),
        128 * 1024
    );
    assert_eq!(get("System Memory Statistics", "", "Cached"), 4 * 1024);
    eprintln!("real amsstat: {n} figures equal the kernel's");
}
