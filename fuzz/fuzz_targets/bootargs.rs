#![no_main]
//! Fuzz target `bootargs`: see `fuzz_entries::console::bootargs` for the input and the oracle.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| fuzz_entries::console::bootargs(data));
