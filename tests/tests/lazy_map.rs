//! Boot cost that does not grow with RAM: an 8 GiB guest enters only
//! its first GiB in the linear map before the prompt; the rest is entered in the
//! background or on first touch, and a workload over all of RAM, started at once,
//! verifies. `fault unmapped` still reports addresses beyond RAM (tests/lpar.rs).

use std::time::Duration;

use lpar_cmm_tests::Qemu;

#[test]
fn an_8g_guest_uses_and_verifies_every_page() {
    let mut vm = Qemu::builder()
        .mem("8G")
        // With reporting on, the host gets the 8 GiB back after `free all`.
        .args(["-device", "virtio-balloon-pci,free-page-reporting=on"])
        .reply_timeout(Duration::from_secs(400))
        .timeout(Duration::from_secs(600))
        .boot();
    assert!(
        vm.log_contains("16384 64K pages bolted"),
        "{}",
        vm.transcript()
    );
    let v = vm.ok("version");
    let lazy = v.field("mmu_lazy").expect("mmu_lazy row");
    assert!(lazy.starts_with("pages=114688 "), "{lazy}");
    // Every free page, at once: most of them are entered on their first touch
    // or by the background walk racing the workload.
    // (In four parts: one `alloc` keeps a list of its pages in the 16 MiB heap.)
    let free_kb = vm.ok("meminfo").get("MemFree");
    let mib = free_kb / 1024 - 1;
    for part in [mib / 4, mib / 4, mib / 4, mib - 3 * (mib / 4)] {
        let r = vm.ok(&format!("alloc {part}M"));
        assert_eq!(r.get("allocated_kb"), part * 1024);
    }
    let r = vm.ok("verify");
    assert_eq!(r.get("verified_pages"), mib * 256);
    assert_eq!(r.get("corrupt_pages"), 0);
    // The background walk may still be entering the last pages (under load it
    // was 18 behind right after the workload): let it run, reading the row
    // again after each pause, for at most about 5 s.
    let mut lazy = String::new();
    for _ in 0..25 {
        let v = vm.ok("version");
        lazy = v.field("mmu_lazy").expect("mmu_lazy row");
        if lazy.contains(" pending=0 ") {
            break;
        }
        vm.ok("sleep 200");
    }
    assert!(lazy.contains(" pending=0 "), "{lazy}");
    eprintln!("8 GiB: {mib} MiB allocated and verified; {lazy}");
    vm.ok("free all");
    assert_eq!(vm.poweroff(), 0);
}
