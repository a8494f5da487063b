#![no_main]
//! Fuzz target `rtas`: see `fuzz_entries::firmware::rtas` for the input and the oracle.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| fuzz_entries::firmware::rtas(data));
