#![no_main]
//! Fuzz target `flatten`: see `fuzz_entries::devtree::flatten` for the input and the oracle.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| fuzz_entries::devtree::flatten(data));
