//! Free page reporting under QEMU: with
//! `-device virtio-balloon-pci,free-page-reporting=on` memory the guest frees goes
//! back to the host (QEMU's VmRSS falls) with no balloon target; without the
//! feature, or without the device, nothing changes; with a loan in place the
//! balloon's books and the host's RSS stay consistent.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use lpar_cmm_tests::qmp::Qmp;
use lpar_cmm_tests::Qemu;

const MIB: u64 = 1 << 20;
/// How close VmRSS must come back to where it was, in KiB.
const SLACK_KB: u64 = 16 * 1024;

fn qmp_path(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("lpar-cmm-qmp-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let p = dir.join(format!("report-{tag}.sock"));
    let _ = std::fs::remove_file(&p);
    p
}

fn boot(device: Option<&str>, qmp: Option<&PathBuf>) -> Qemu {
    let mut b = Qemu::builder()
        .mem("1G")
        .append("cmm.delay_ms=20 cmm.min_mem_mb=64");
    if let Some(d) = device {
        b = b.args(["-device", d]);
    }
    if let Some(p) = qmp {
        b = b.qmp(p);
    }
    b.boot()
}

/// Lets background work run until no report is in flight and none is started
/// for a while (the reports after boot, or after a free, are through).
fn settle(vm: &mut Qemu) -> lpar_cmm_tests::Reply {
    let mut last = vm.ok("cmm");
    for _ in 0..200 {
        vm.ok("sleep 50");
        let now = vm.ok("cmm");
        if now.get("reports") == last.get("reports") && now.get("reporting_pages") == 0 {
            return now;
        }
        last = now;
    }
    panic!("reports never settled: {}", last.text());
}

/// Polls VmRSS until it is at most `kb`, for at most `limit`; returns the time
/// it took, or `None`.
fn rss_back_to(vm: &mut Qemu, kb: u64, limit: Duration) -> Option<Duration> {
    let t0 = Instant::now();
    while t0.elapsed() < limit {
        if vm.vm_rss_kb() <= kb {
            return Some(t0.elapsed());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    None
}

#[test]
fn freed_memory_goes_back_to_the_host_without_a_target() {
    let mut vm = boot(Some("virtio-balloon-pci,free-page-reporting=on"), None);
    assert!(vm.log_contains("free page reporting on"));
    let v = vm.ok("version");
    assert_eq!(v.field("free_page_reporting").as_deref(), Some("on"));
    let c = settle(&mut vm);
    // Right after boot nearly all memory is free and reported, in whole blocks.
    assert!(c.get("reports") > 0, "{}", c.text());
    assert!(c.get("reported_kb") >= 900 * 1024, "{}", c.text());
    let before = vm.vm_rss_kb();

    vm.ok("alloc 512M");
    let touched = vm.vm_rss_kb();
    assert!(
        touched >= before + 480 * 1024,
        "touching 512 MiB raised VmRSS only from {before} to {touched} kB"
    );
    vm.ok("free all");
    let took = rss_back_to(&mut vm, before + SLACK_KB, Duration::from_secs(10));
    let after = vm.vm_rss_kb();
    eprintln!(
        "VmRSS: before {} MiB, touched {} MiB, after free {} MiB, back in {took:?}",
        before / 1024,
        touched / 1024,
        after / 1024
    );
    assert!(
        took.is_some(),
        "VmRSS did not come back within 16 MiB of {before} kB: {after} kB"
    );
    let c = settle(&mut vm);
    assert!(c.get("reported_kb") >= 900 * 1024, "{}", c.text());
    assert_eq!(c.get("loaned_kb"), 0, "no balloon target was set");
    assert_eq!(c.get("report_failures"), 0);
    let reused = c.get("reported_reused_blocks");
    assert!(reused >= 256, "512 MiB reused only {reused} blocks");

    // Reported memory is the guest's again: a second workload, verified.
    let r = vm.ok("alloc 512M");
    assert_eq!(r.get("allocated_kb"), 512 * 1024);
    assert_eq!(vm.ok("verify").get("corrupt_pages"), 0);
    vm.ok("free all");
    assert!(rss_back_to(&mut vm, before + SLACK_KB, Duration::from_secs(10)).is_some());
    let m = vm.ok("meminfo");
    assert_eq!(m.get("MemTotal"), m.get("MemFree"), "{}", m.text());
    assert_eq!(vm.poweroff(), 0);
}

/// Without the feature (or without the device) freed memory stays with QEMU as
/// before: the same decision reports whole free blocks through the other
/// transport, page-usage hints to the pool model (H_PAGE_INIT Unused), which
/// QEMU does not see.
#[test]
fn reporting_off_or_no_device_changes_nothing() {
    for device in [Some("virtio-balloon-pci"), None] {
        let mut vm = boot(device, None);
        let v = vm.ok("version");
        assert_eq!(v.field("free_page_reporting").as_deref(), Some("off"));
        assert_eq!(v.field("report_transport").as_deref(), Some("hints"));
        // After the Unused walk every free block counts as reported (the walk
        // hinted it); blocks freed again after reuse are reported as hints.
        vm.wait_hinted();
        vm.ok("alloc 512M");
        let touched = vm.vm_rss_kb();
        vm.oks(&["free all", "sleep 500"]);
        let after = vm.vm_rss_kb();
        assert!(
            after + SLACK_KB >= touched,
            "{device:?}: VmRSS fell from {touched} to {after} kB without reporting"
        );
        // The 512 MiB freed are whole free blocks again: reported as hints.
        let c = settle(&mut vm);
        assert!(c.get("reports") > 0, "{device:?}: {}", c.text());
        assert!(
            c.get("reported_kb") >= 512 * 1024,
            "{device:?}: {}",
            c.text()
        );
        assert_eq!(c.get("report_failures"), 0, "{device:?}: {}", c.text());
        assert_eq!(c.get("reporting_pages"), 0, "{device:?}: {}", c.text());
        assert_eq!(vm.ok("verify").get("corrupt_pages"), 0);
        assert_eq!(vm.poweroff(), 0);
    }
}

/// A loan in place, then a workload, then a free: the balloon's books match the
/// device and the host, loaned pages are never reported, and the host gets the
/// workload's memory back as well.
#[test]
fn balloon_and_reporting_keep_the_books() {
    let sock = qmp_path("books");
    let mut vm = boot(
        Some("virtio-balloon-pci,free-page-reporting=on"),
        Some(&sock),
    );
    let mut qmp = Qmp::connect(&sock);
    settle(&mut vm);
    qmp.balloon(768 * MIB);
    let deadline = Instant::now() + Duration::from_secs(15);
    while vm.ok("cmm").get("loaned_kb") != 256 * 1024 {
        assert!(Instant::now() < deadline, "the loan never reached 256 MiB");
        vm.ok("sleep 50");
    }
    let c = settle(&mut vm);
    let before = vm.vm_rss_kb();
    let total_kb = c.get("total_pages") * 4;
    assert!(c.get("reported_kb") + c.get("loaned_kb") <= total_kb);

    vm.ok("alloc 512M");
    assert_eq!(vm.ok("verify").get("corrupt_pages"), 0);
    vm.ok("free all");
    assert!(
        rss_back_to(&mut vm, before + SLACK_KB, Duration::from_secs(10)).is_some(),
        "VmRSS did not come back to {before} kB: {} kB",
        vm.vm_rss_kb()
    );
    let c = settle(&mut vm);
    let hv = vm.ok("hv");
    assert_eq!(c.get("loaned_kb"), 256 * 1024, "{}", c.text());
    assert_eq!(hv.get("device_actual") * 4, c.get("loaned_kb"));
    assert_eq!(hv.get("device_errors"), 0);
    assert_eq!(qmp.query_balloon(), 768 * MIB);
    // Reported and loaned memory never overlap: together at most what is managed,
    // and the reported part is free.
    assert!(c.get("reported_kb") + c.get("loaned_kb") <= total_kb);
    assert!(c.get("reported_kb") <= c.get("free_pages") * 4);
    // Giving the loan back: the pages come back to the guest, the books agree.
    qmp.balloon(1024 * MIB);
    let deadline = Instant::now() + Duration::from_secs(15);
    while vm.ok("cmm").get("loaned_kb") != 0 {
        assert!(Instant::now() < deadline, "the loan never went back to 0");
        vm.ok("sleep 50");
    }
    assert_eq!(qmp.query_balloon(), 1024 * MIB);
    vm.ok("alloc 900M");
    assert_eq!(vm.ok("verify").get("corrupt_pages"), 0);
    vm.ok("free all");
    assert_eq!(vm.poweroff(), 0);
}
