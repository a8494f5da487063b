#![no_main]
//! Fuzz target `hv`: see `fuzz_entries::hv::hv` for the input and the oracle.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| fuzz_entries::hv::hv(data));
