//! The bodies of lpar-cmm's fuzz targets: one entry per parser or decoder that
//! takes bytes from outside the kernel's (or the pool manager's) trust boundary,
//! each checking more than "no panic" where it can (a round trip, the console's
//! one status line, the books of a state machine after a random sequence).
//!
//! `fuzz/fuzz_targets/<name>.rs` hands libFuzzer's input to the entry of the same
//! name (`make fuzz`, README); `tests/replay.rs` runs every entry over its
//! committed corpus (`fuzz/corpus/<name>/`) and every crash once found
//! (`fuzz/crashes/<name>/`) as an ordinary test, so a fixed bug stays fixed.

pub mod console;
pub mod devtree;
pub mod firmware;
pub mod hv;
pub mod input;
pub mod pool;
pub mod virtio;

/// A fuzz target's entry: any bytes in, a panic on a finding.
pub type Entry = fn(&[u8]);

/// Every target, by name (the file names under `fuzz/fuzz_targets/`).
pub const TARGETS: &[(&str, Entry)] = &[
    ("fdt", devtree::fdt),
    ("flatten", devtree::flatten),
    ("bootargs", console::bootargs),
    ("console", console::console),
    ("hv", hv::hv),
    ("sysparm", firmware::sysparm),
    ("mpp", firmware::mpp),
    ("rtas", firmware::rtas),
    ("virtio", virtio::virtio),
    ("virtio_used", virtio::virtio_used),
    ("pool_config", pool::pool_config),
    ("qmp", pool::qmp),
    ("pool_policy", pool::pool_policy),
];

/// The entry called `name`.
pub fn entry(name: &str) -> Option<Entry> {
    TARGETS.iter().find(|(n, _)| *n == name).map(|&(_, e)| e)
}
