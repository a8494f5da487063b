#![no_main]
//! Fuzz target `sysparm`: see `fuzz_entries::firmware::sysparm` for the input and the oracle.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| fuzz_entries::firmware::sysparm(data));
