#![no_main]
//! Fuzz target `pool_config`: see `fuzz_entries::pool::pool_config` for the input and the oracle.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| fuzz_entries::pool::pool_config(data));
