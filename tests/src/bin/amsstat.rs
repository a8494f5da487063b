//! `make amsstat`: boots the kernel, sets up a small scenario (a loan, a DMA
//! mapping, a cache workload), rebuilds the Linux file tree from the kernel's
//! output and prints the real powerpc-utils `amsstat` report for it.

use lpar_cmm_tests::{amsstat, Qemu};

fn main() {
    let tool = match amsstat::fetch_tool() {
        Ok(t) => t,
        Err(why) => {
            eprintln!("cannot fetch powerpc-ibm-utils (ppc64el): {why}");
            std::process::exit(2);
        }
    };
    let mut vm = Qemu::builder()
        .vscsi()
        .vlan()
        .append("cmm.delay_ms=20 cmm.min_mem_mb=64")
        .boot();
    vm.oks(&[
        "hv target 48M",
        "cmm wait 20000",
        "vio map v-scsi@71000002 128K",
        "alloc 4M cache",
    ]);
    let snap = amsstat::snapshot(&mut vm);
    let root = amsstat::cache_dir().join("tree");
    if let Err(e) = amsstat::build_tree(&root, &snap, &tool) {
        eprintln!("cannot build the file tree: {e}");
        std::process::exit(1);
    }
    match amsstat::run_tool(&tool, &root) {
        Ok(report) => {
            print!("{report}");
            match amsstat::compare(&report, &snap.amsstat.join("\n")) {
                Ok(n) => eprintln!("({n} figures, all equal to the kernel's own amsstat)"),
                Err(e) => {
                    eprintln!("differences from the kernel's amsstat:\n{e}");
                    std::process::exit(1);
                }
            }
        }
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    }
    let _ = vm.poweroff();
}
