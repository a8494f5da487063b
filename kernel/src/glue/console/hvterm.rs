//! The vty through the shim's H_PUT_TERM_CHAR / H_GET_TERM_CHAR.

use hcall::{term, RetryPolicy};

use hcall::raw::sc1::Sc1;

use crate::hv::KernelClock;

/// Writes `bytes` to the vty; a busy hypervisor is retried under the one retry
/// policy (long-busy hints are waited out), and output is dropped when it gives up.
pub fn put(unit: u32, bytes: &[u8]) {
    let mut raw = Sc1::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let r = RetryPolicy::default().run(&mut KernelClock, || {
            term::put_term_chars(&mut raw, u64::from(unit), rest)
        });
        match r {
            Ok(n) => rest = rest.get(n..).unwrap_or(&[]),
            Err(_) => return,
        }
    }
}

/// Reads up to 16 waiting bytes; returns how many were stored in `buf`.
pub fn get(unit: u32, buf: &mut [u8; 16]) -> usize {
    term::get_term_chars(&mut Sc1::new(), u64::from(unit), buf).unwrap_or(0)
}
