#![no_main]
//! Fuzz target `console`: see `fuzz_entries::console::console` for the input and the oracle.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| fuzz_entries::console::console(data));
