#![no_main]
//! Fuzz target `virtio`: see `fuzz_entries::virtio::virtio` for the input and the oracle.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| fuzz_entries::virtio::virtio(data));
