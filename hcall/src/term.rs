//! The hvterm console hcalls: H_PUT_TERM_CHAR and H_GET_TERM_CHAR.
//!
//! Up to 16 bytes travel in two registers, packed big-endian: the first byte is the
//! most significant byte of the first register. The pack/unpack helpers are pure;
//! the two calls are thin wrappers over [`RawHcall`].

use crate::hypervisor::check;
use crate::opcodes;
use crate::raw::{call_values, RawHcall};
use crate::status::HcallError;

/// Most bytes one call moves.
pub const MAX_TERM_CHARS: usize = 16;

/// Packs up to 16 bytes of `bytes` into two registers; returns `(hi, lo, count)`,
/// where `count` is how many bytes were packed (the rest of the slice is left over).
pub fn pack_term_chars(bytes: &[u8]) -> (u64, u64, usize) {
    let n = bytes.len().min(MAX_TERM_CHARS);
    let mut buf = [0u8; MAX_TERM_CHARS];
    buf[..n].copy_from_slice(&bytes[..n]);
    let (hi, lo) = buf.split_at(8);
    let hi = u64::from_be_bytes(hi.try_into().unwrap_or([0; 8]));
    let lo = u64::from_be_bytes(lo.try_into().unwrap_or([0; 8]));
    (hi, lo, n)
}

/// Unpacks `count` bytes (clamped to 16) from two registers into `out`; returns the
/// number of bytes written (also bounded by `out.len()`).
pub fn unpack_term_chars(count: u64, hi: u64, lo: u64, out: &mut [u8]) -> usize {
    let mut buf = [0u8; MAX_TERM_CHARS];
    buf[..8].copy_from_slice(&hi.to_be_bytes());
    buf[8..].copy_from_slice(&lo.to_be_bytes());
    let n = usize::try_from(count)
        .unwrap_or(MAX_TERM_CHARS)
        .min(MAX_TERM_CHARS)
        .min(out.len());
    out[..n].copy_from_slice(&buf[..n]);
    n
}

/// H_PUT_TERM_CHAR: writes the first (up to) 16 bytes of `bytes` to terminal `unit`;
/// returns how many were sent. An empty slice makes no call.
pub fn put_term_chars(
    raw: &mut impl RawHcall,
    unit: u64,
    bytes: &[u8],
) -> Result<usize, HcallError> {
    if bytes.is_empty() {
        return Ok(0);
    }
    let (hi, lo, n) = pack_term_chars(bytes);
    let (status, _) = call_values(raw, opcodes::H_PUT_TERM_CHAR, &[unit, n as u64, hi, lo]);
    check("H_PUT_TERM_CHAR", status)?;
    Ok(n)
}

/// H_GET_TERM_CHAR: reads up to 16 bytes from terminal `unit` into `out`; returns how
/// many were stored (0 when nothing is waiting).
pub fn get_term_chars(
    raw: &mut impl RawHcall,
    unit: u64,
    out: &mut [u8],
) -> Result<usize, HcallError> {
    let (status, regs) = call_values(raw, opcodes::H_GET_TERM_CHAR, &[unit]);
    check("H_GET_TERM_CHAR", status)?;
    Ok(unpack_term_chars(regs[0], regs[1], regs[2], out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::Scripted;
    use crate::status::HStatus;
    use proptest::prelude::*;

    #[test]
    fn first_byte_is_most_significant() {
        let (hi, lo, n) = pack_term_chars(b"AB");
        assert_eq!((hi, lo, n), (0x4142_0000_0000_0000, 0, 2));
        let (hi, lo, n) = pack_term_chars(b"0123456789abcdefXYZ");
        assert_eq!(n, 16);
        assert_eq!(hi, u64::from_be_bytes(*b"01234567"));
        assert_eq!(lo, u64::from_be_bytes(*b"89abcdef"));
        assert_eq!(pack_term_chars(b""), (0, 0, 0));
    }

    #[test]
    fn unpack_clamps() {
        let mut out = [0u8; 16];
        let hi = u64::from_be_bytes(*b"hello, w");
        let lo = u64::from_be_bytes(*b"orld!!!!");
        assert_eq!(unpack_term_chars(5, hi, lo, &mut out), 5);
        assert_eq!(&out[..5], b"hello");
        assert_eq!(unpack_term_chars(u64::MAX, hi, lo, &mut out), 16);
        assert_eq!(&out, b"hello, world!!!!");
        let mut small = [0u8; 3];
        assert_eq!(unpack_term_chars(16, hi, lo, &mut small), 3);
        assert_eq!(&small, b"hel");
    }

    #[test]
    fn put_and_get_calls() {
        let mut raw = Scripted::default();
        assert_eq!(put_term_chars(&mut raw, 0, b"ok\n"), Ok(3));
        assert_eq!(
            raw.calls[0],
            (
                opcodes::H_PUT_TERM_CHAR,
                alloc::vec![0, 3, 0x6F6B_0A00_0000_0000, 0]
            )
        );
        assert_eq!(put_term_chars(&mut raw, 0, b""), Ok(0));
        assert_eq!(raw.calls.len(), 1);

        let mut regs = [0u64; 9];
        regs[0] = 2;
        regs[1] = 0x6869_0000_0000_0000;
        let mut raw = Scripted::reply(HStatus::Success, regs);
        let mut out = [0u8; 16];
        assert_eq!(get_term_chars(&mut raw, 0, &mut out), Ok(2));
        assert_eq!(&out[..2], b"hi");
        let mut raw = Scripted::reply(HStatus::Hardware, regs);
        assert_eq!(
            get_term_chars(&mut raw, 0, &mut out).unwrap_err().status,
            HStatus::Hardware
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn pack_unpack_round_trip(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
            let (hi, lo, n) = pack_term_chars(&bytes);
            prop_assert_eq!(n, bytes.len().min(16));
            let mut out = [0u8; 16];
            let m = unpack_term_chars(n as u64, hi, lo, &mut out);
            prop_assert_eq!(&out[..m], &bytes[..n]);
        }
    }
}
