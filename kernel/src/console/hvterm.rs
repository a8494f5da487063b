//! H_PUT_TERM_CHAR / H_GET_TERM_CHAR on a vty unit.

use crate::arch::hvcall::hcall;

const H_GET_TERM_CHAR: u64 = 0x54;
const H_PUT_TERM_CHAR: u64 = 0x58;
const H_BUSY: i64 = 1;

fn pack(chunk: &[u8]) -> (u64, u64) {
    let mut b = [0u8; 16];
    b[..chunk.len()].copy_from_slice(chunk);
    let hi = u64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
    let lo = u64::from_be_bytes([b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]]);
    (hi, lo)
}

/// Writes `bytes` to the vty, 16 at a time, retrying while the hypervisor is busy.
pub fn put(unit: u32, bytes: &[u8]) {
    for chunk in bytes.chunks(16) {
        let (hi, lo) = pack(chunk);
        let mut tries = 0u32;
        loop {
            let (rc, _) = hcall(
                H_PUT_TERM_CHAR,
                &[u64::from(unit), chunk.len() as u64, hi, lo],
            );
            if rc != H_BUSY || tries > 1_000_000 {
                break;
            }
            tries += 1;
        }
    }
}

/// Reads up to 16 waiting bytes; returns how many were stored in `buf`.
pub fn get(unit: u32, buf: &mut [u8; 16]) -> usize {
    let (rc, out) = hcall(H_GET_TERM_CHAR, &[u64::from(unit)]);
    if rc != 0 {
        return 0;
    }
    let n = usize::try_from(out[0]).unwrap_or(0).min(16);
    buf[..8].copy_from_slice(&out[1].to_be_bytes());
    buf[8..].copy_from_slice(&out[2].to_be_bytes());
    n
}
