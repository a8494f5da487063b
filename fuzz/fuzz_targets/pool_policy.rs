#![no_main]
//! Fuzz target `pool_policy`: see `fuzz_entries::pool::pool_policy` for the input and the oracle.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| fuzz_entries::pool::pool_policy(data));
