#![no_main]
//! Fuzz target `mpp`: see `fuzz_entries::firmware::mpp` for the input and the oracle.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| fuzz_entries::firmware::mpp(data));
