#![no_main]
//! Fuzz target `fdt`: see `fuzz_entries::devtree::fdt` for the input and the oracle.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| fuzz_entries::devtree::fdt(data));
