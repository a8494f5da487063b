#![no_main]
//! Fuzz target `qmp`: see `fuzz_entries::pool::qmp` for the input and the oracle.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| fuzz_entries::pool::qmp(data));
