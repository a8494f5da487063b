//! `make bench`: the in-guest benchmarks under QEMU. `bench loan 32768` loans and
//! returns 128 MiB through the balloon; `bench hcall 32768` makes the 2 × 32768
//! bare page-state calls the same work needs. Prints both and their ratio (the
//! balloon's own overhead). Timing goals live here, never in tests.

use lpar_cmm_tests::Qemu;

fn main() {
    let pages: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(32768);
    let mut vm = Qemu::builder()
        .mem("512M")
        .append("cmm.min_mem_mb=64")
        .boot();
    let boot = vm.boot_time().map(|d| d.as_secs_f64()).unwrap_or(0.0);
    let loan = vm.ok(&format!("bench loan {pages}"));
    let hcall = vm.ok(&format!("bench hcall {pages}"));
    let loan_ns = loan.get("elapsed_ns");
    let hcall_ns = hcall.get("elapsed_ns");
    println!("boot_to_ready_ms: {:.0}", boot * 1000.0);
    println!("pages: {pages} ({} MiB)", pages * 4 / 1024);
    println!("loan_ns: {}", loan.get("loan_ns"));
    println!("return_ns: {}", loan.get("return_ns"));
    println!("balloon_elapsed_ns: {loan_ns}");
    println!("loans_per_sec: {}", loan.get("pages_per_sec"));
    println!("loan_ns_per_page: {}", loan.get("loan_ns_per_page"));
    println!("return_ns_per_page: {}", loan.get("return_ns_per_page"));
    println!("hcall_elapsed_ns: {hcall_ns}");
    if hcall_ns > 0 {
        println!(
            "balloon_to_hcall_ratio: {:.2}",
            loan_ns as f64 / hcall_ns as f64
        );
    }
    let _ = vm.poweroff();

    // The same loan through the balloon with virtio-balloon backing the model:
    // every loaned page goes to the host, every returned one comes back first.
    let mut vm = Qemu::builder()
        .mem("512M")
        .args(["-device", "virtio-balloon-pci"])
        .append("cmm.min_mem_mb=64 hv.mode=auto")
        .boot();
    let dev = vm.ok(&format!("bench loan {pages}"));
    println!("device_loan_ns: {}", dev.get("loan_ns"));
    println!("device_return_ns: {}", dev.get("return_ns"));
    println!("device_loan_ns_per_page: {}", dev.get("loan_ns_per_page"));
    println!(
        "device_return_ns_per_page: {}",
        dev.get("return_ns_per_page")
    );
    let _ = vm.poweroff();
}
