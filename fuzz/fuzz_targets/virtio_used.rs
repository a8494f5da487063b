#![no_main]
//! Fuzz target `virtio_used`: see `fuzz_entries::virtio::virtio_used` for the input and the oracle.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| fuzz_entries::virtio::virtio_used(data));
