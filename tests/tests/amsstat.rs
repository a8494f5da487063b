//! The real `amsstat` (powerpc-utils, from Debian's ppc64el package) reads a file
//! tree rebuilt from the kernel's `sysfs`, `lparcfg` and `meminfo`, and every
//! figure it prints equals the kernel's own `amsstat` at the same moment.

use lpar_cmm_tests::{amsstat, Qemu};

#[test]
fn real_amsstat_agrees_with_the_kernel() {
    let tool = match amsstat::fetch_tool() {
        Ok(t) => t,
        Err(why) => {
            // Only when the package cannot be fetched (no Debian mirror): say so,
            // on the real stderr (bypassing the test harness's capture).
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED real_amsstat_agrees_with_the_kernel: cannot fetch powerpc-ibm-utils: {why}"
            );
            return;
        }
    };
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
    let figures = amsstat::figures(&real);
    let get = |s: &str, d: &str, k: &str| figures[&(s.to_string(), d.to_string(), k.to_string())];
    assert_eq!(get("CMM Statistics", "", "loaned_kb"), 48 * 1024);
    assert_eq!(
        get("VIO Device Statistics", "v-scsi@71000002", "cmo_allocated"),
        128 * 1024
    );
    assert_eq!(get("System Memory Statistics", "", "Cached"), 4 * 1024);
    eprintln!("real amsstat: {n} figures equal the kernel's");
}
