//! The vty through the shim's H_PUT_TERM_CHAR / H_GET_TERM_CHAR.

use hcall::raw::sc1::Sc1;
use hcall::term;

fn raw() -> Sc1 {
    // SAFETY: the kernel runs in supervisor state under a PAPR hypervisor, the
    // only requirement for making hcalls.
    unsafe { Sc1::new() }
}

/// Writes `bytes` to the vty, retrying while the hypervisor is busy.
pub fn put(unit: u32, bytes: &[u8]) {
    let mut raw = raw();
    let mut rest = bytes;
    let mut busy = 0u32;
    while !rest.is_empty() {
        match term::put_term_chars(&mut raw, u64::from(unit), rest) {
            Ok(n) => {
                rest = &rest[n..];
                busy = 0;
            }
            Err(e) if e.status.is_retryable() && busy < 1_000_000 => busy += 1,
            Err(_) => return,
        }
    }
}

/// Reads up to 16 waiting bytes; returns how many were stored in `buf`.
pub fn get(unit: u32, buf: &mut [u8; 16]) -> usize {
    term::get_term_chars(&mut raw(), u64::from(unit), buf).unwrap_or(0)
}
