//! Running as a real LPAR runs: instantiated RTAS on the Open
//! Firmware paths, the real mode area kept (`rma=`), translation on with the
//! hash MMU, memory above the RMA in use, and storage faults explained.

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
/// kernel touches in real mode fits, translation is on, and a workload over all
/// RAM (more than 3 GiB, most of it above the RMA) verifies.
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
        assert_eq!(
            v.field("mmu").as_deref(),
            Some("hash"),
            "{fw:?}: {}",
            v.text()
        );
        let total = vm.ok("meminfo").get("MemTotal");
        assert!(
            total > 3900 * 1024,
            "{fw:?}: MemTotal {total} kB: RAM above the RMA unused"
        );
        let a = vm.ok("alloc 3300M");
        assert_eq!(a.get("allocated_kb"), 3300 * 1024, "{fw:?}");
        let r = vm.ok("verify");
        assert_eq!(r.get("verified_pages"), 3300 * 256, "{fw:?}");
        assert_eq!(r.get("corrupt_pages"), 0, "{fw:?}");
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

/// `fault unmapped` touches an address beyond RAM: the data storage interrupt
/// prints the storage-fault report (address, DSISR, SRR0/SRR1, what the address
/// is) before the failure exit (QEMU exits 1).
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
        .find(|l| l.starts_with("storage fault: data storage at "))
        .unwrap_or_else(|| panic!("no report:\n{t}"));
    assert!(report.contains("0x0000000030000000"), "{report}");
    assert!(
        report.contains("DSISR=0x40000000 (no translation)"),
        "{report}"
    );
    assert!(report.contains("SRR1="), "{report}");
    assert!(report.ends_with("the address is beyond RAM"), "{report}");
    assert!(vm.stderr().contains("OS terminated"), "{}", vm.stderr());
}

/// The balloon loans pages above 2 GiB (most of a 3 GiB loan on a 4 GiB
/// partition must lie there) through the linear map and gives them back; then a
/// workload over all RAM verifies (with translation on: `mmu: hash`).
#[test]
fn the_balloon_loans_and_returns_pages_above_2g() {
    let mut vm = builder(Firmware::BootRom, "4G", "rma=256M").boot();
    let v = vm.ok("version");
    assert_eq!(v.field("mmu").as_deref(), Some("hash"), "{}", v.text());
    assert_eq!(v.field("rma").as_deref(), Some("256 MiB"), "{}", v.text());
    vm.ok("cmm set min_mem_mb 0");
    vm.ok("hv target 3G");
    let r = vm.cmm_wait(120_000);
    assert_eq!(r.get("loaned_kb"), 3 * 1024 * 1024, "{}", r.text());
    // 4 GiB of RAM has less than 2 GiB below 2 GiB: at least 1 GiB of this loan
    // lies above 2 GiB, far above the 256 MiB RMA.
    vm.ok("hv target 0");
    let r = vm.cmm_wait(120_000);
    assert_eq!(r.get("loaned_kb"), 0, "{}", r.text());
    vm.ok("alloc 3500M");
    assert_eq!(vm.ok("verify").get("corrupt_pages"), 0);
    assert_eq!(vm.poweroff(), 0);
}

/// Every boot path says the MMU is on; the translation-off build is gone.
#[test]
fn version_shows_the_hash_mmu() {
    let mut vm = builder(Firmware::BootRom, "512M", "").boot();
    let v = vm.ok("version");
    assert_eq!(v.field("mmu").as_deref(), Some("hash"), "{}", v.text());
    let map = v.field("mmu_map").expect("mmu_map");
    // QEMU 7.2's POWER9 offers 64 KiB pages and 1 TiB segments: 512 MiB is
    // 8192 bolted entries in one segment.
    assert!(
        map.starts_with("page=64K segment=1T entries=8192 "),
        "{map}"
    );
    assert!(vm.log_contains("translation on:"), "{}", vm.transcript());
    assert_eq!(vm.poweroff(), 0);
}

/// `mmu=off` keeps translation off (for comparisons): the kernel then keeps to
/// the RMA, and says so.
#[test]
fn mmu_off_keeps_to_the_rma() {
    let mut vm = builder(Firmware::BootRom, "1G", "rma=256M mmu=off").boot();
    let v = vm.ok("version");
    assert_eq!(v.field("mmu").as_deref(), Some("off"), "{}", v.text());
    let total = vm.ok("meminfo").get("MemTotal");
    assert!(total <= 256 * 1024, "MemTotal {total} kB beyond the RMA");
    assert!(
        vm.log_contains("MiB of RAM above the RMA left unused"),
        "{}",
        vm.transcript()
    );
    assert_eq!(vm.poweroff(), 0);
}
