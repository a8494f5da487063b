//! Running as a real LPAR runs (issue 14): instantiated RTAS on the Open
//! Firmware paths, the real mode area kept (`rma=`), and what a real-mode access
//! outside it does.

use std::time::Duration;

use lpar_cmm_tests::{Builder, Firmware, Qemu};

fn builder(fw: Firmware, mem: &str, append: &str) -> Builder {
    Qemu::builder()
        .firmware(fw)
        .mem(mem)
        .append(append)
        .reply_timeout(Duration::from_secs(240))
        .timeout(Duration::from_secs(600))
}

/// `-m 4G rma=256M` on every boot path: the RMA is 256 MiB, everything the
/// kernel touches in real mode fits, and a workload verifies.
#[test]
fn a_256m_rma_on_4g_boots_on_every_path() {
    for (fw, rtas) in [
        (Firmware::BootRom, "hcall"),
        (Firmware::Vof, "instantiated"),
        (Firmware::Slof, "instantiated"),
    ] {
        let mut vm = builder(fw, "4G", "rma=256M").boot();
        let v = vm.ok("version");
        assert_eq!(
            v.field("rma").as_deref(),
            Some("256 MiB"),
            "{fw:?}: {}",
            v.text()
        );
        assert_eq!(v.field("rtas").as_deref(), Some(rtas), "{fw:?}");
        assert!(
            vm.log_contains("RMA 256 MiB (memory@0:"),
            "{fw:?}:\n{}",
            vm.transcript()
        );
        let total = vm.ok("meminfo").get("MemTotal");
        assert!(
            total <= 256 * 1024,
            "{fw:?}: MemTotal {total} kB beyond the RMA"
        );
        vm.ok("alloc 128M");
        assert_eq!(vm.ok("verify").get("corrupt_pages"), 0);
        assert_eq!(vm.poweroff(), 0, "{fw:?}");
    }
}

/// A refused `rma=` is logged and changes nothing.
#[test]
fn a_bad_rma_argument_changes_nothing() {
    let mut vm = builder(Firmware::BootRom, "1G", "rma=64M").boot();
    assert!(
        vm.log_contains("boot argument rma=64M is below the smallest RMA"),
        "{}",
        vm.transcript()
    );
    let v = vm.ok("version");
    assert_eq!(v.field("rma"), v.field("rma_firmware"), "{}", v.text());
    assert_eq!(v.field("rma").as_deref(), Some("1024 MiB"));
    assert_eq!(vm.poweroff(), 0);
}

/// `fault unmapped` touches an address beyond RAM; the kernel names the address
/// and the path before the failure exit (QEMU exits 1).
#[test]
fn fault_unmapped_is_reported_and_exits_1() {
    let mut vm = builder(Firmware::BootRom, "512M", "").boot();
    vm.send(b"fault unmapped\r");
    assert_eq!(vm.wait_exit(), 1);
    let t = vm.transcript();
    let addr = t
        .lines()
        .find_map(|l| l.strip_prefix("addr: "))
        .unwrap_or_else(|| panic!("no address printed:\n{t}"))
        .trim()
        .to_string();
    assert_eq!(addr, "0x30000000");
    let report = t
        .lines()
        .find(|l| l.contains("real-mode access outside the RMA"))
        .unwrap_or_else(|| panic!("no report:\n{t}"));
    assert!(report.contains(&addr), "{report}");
    assert!(report.contains("by fault unmapped"), "{report}");
    assert!(vm.stderr().contains("OS terminated"), "{}", vm.stderr());
}
