//! RTAS through KVMPPC_H_RTAS (0xF000): building and reading the argument buffer.
//!
//! The buffer is an array of big-endian 32-bit cells: `token, nargs, nret, args...,
//! rets...`; its real address goes in r4. The kernel owns the buffer memory (it must
//! be real-addressable and stay put for the call); this module only fills it in,
//! makes the call through a [`RawHcall`], and reads the results back. The buffer is
//! handled as bytes through [`crate::endian::FIRMWARE`], so both images and the host
//! tests see the same bytes as the hypervisor.

use core::fmt;

use crate::endian::FIRMWARE;
use crate::hypervisor::check;
use crate::opcodes;
use crate::raw::RawHcall;
use crate::status::HcallError;

/// Cells before the arguments: token, nargs, nret.
pub const RTAS_HEADER_CELLS: usize = 3;

/// Why an RTAS call could not be made or failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RtasError {
    /// The buffer has fewer cells than `3 + nargs + nret`.
    BufferTooSmall {
        /// Cells needed.
        needed: usize,
        /// Cells available.
        have: usize,
    },
    /// The KVMPPC_H_RTAS hcall itself failed.
    Hcall(HcallError),
    /// The RTAS status (first result cell) was negative.
    Status(i32),
}

impl fmt::Display for RtasError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RtasError::BufferTooSmall { needed, have } => {
                write!(
                    f,
                    "RTAS buffer too small: {needed} cells needed, {have} available"
                )
            }
            RtasError::Hcall(e) => write!(f, "{e}"),
            RtasError::Status(s) => write!(f, "RTAS status {s}"),
        }
    }
}

impl From<HcallError> for RtasError {
    fn from(e: HcallError) -> Self {
        RtasError::Hcall(e)
    }
}

fn cell_count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Bytes of one cell.
pub const CELL_BYTES: usize = 4;

/// Fills `buf` with the cells `token, nargs, nret, args..., 0 × nret` (big-endian).
pub fn build(buf: &mut [u8], token: u32, args: &[u32], nret: usize) -> Result<(), RtasError> {
    let needed = RTAS_HEADER_CELLS
        .saturating_add(args.len())
        .saturating_add(nret);
    let have = buf.len() / CELL_BYTES;
    if have < needed {
        return Err(RtasError::BufferTooSmall { needed, have });
    }
    let header = [token, cell_count(args.len()), cell_count(nret)];
    let zeros = core::iter::repeat_n(&0u32, nret);
    for (cell, v) in buf
        .chunks_exact_mut(CELL_BYTES)
        .zip(header.iter().chain(args).chain(zeros))
    {
        // Cannot fail: a chunk is exactly one cell.
        let _ = FIRMWARE.put(cell, *v);
    }
    Ok(())
}

/// Cell `i` of `buf`, if the buffer holds it.
fn cell(buf: &[u8], i: usize) -> Option<u32> {
    FIRMWARE.get_at(buf, i.checked_mul(CELL_BYTES)?)
}

/// Reads the result cells of a buffer built by [`build`] into `rets` (as many as
/// both the buffer's `nret` and `rets.len()` allow); returns how many were read.
/// The counts are taken from the buffer's header and bounded by its length.
pub fn read_rets(buf: &[u8], rets: &mut [u32]) -> usize {
    let header = |i: usize| cell(buf, i).map_or(0, |c| usize::try_from(c).unwrap_or(usize::MAX));
    let (nargs, nret) = (header(1), header(2));
    let start = RTAS_HEADER_CELLS.saturating_add(nargs);
    let mut n = 0;
    for (i, d) in rets.iter_mut().enumerate().take(nret) {
        match start.checked_add(i).and_then(|c| cell(buf, c)) {
            Some(v) => *d = v,
            None => break,
        }
        n += 1;
    }
    n
}

/// Makes the KVMPPC_H_RTAS hcall on the buffer at real address `buf_addr`.
///
/// # Safety
///
/// `buf_addr` is the real address of an argument buffer built by [`build`] that
/// the caller owns for the call: RTAS reads it and writes its result cells, and
/// reads or writes any memory an argument of the call names (a work area, a
/// message), which the caller owns too.
pub unsafe fn call(raw: &mut impl RawHcall, buf_addr: u64) -> Result<(), HcallError> {
    // SAFETY: the caller owns the buffer and what it names, this function's
    // contract.
    let (status, _) = unsafe { raw.hcall(opcodes::KVMPPC_H_RTAS, &[buf_addr]) };
    check("KVMPPC_H_RTAS", status)
}

/// Turns the first result cell (the RTAS status) into `Ok` or [`RtasError::Status`].
pub fn check_status(rets: &[u32]) -> Result<(), RtasError> {
    match rets.first().map(|&s| s as i32) {
        Some(s) if s < 0 => Err(RtasError::Status(s)),
        _ => Ok(()),
    }
}

/// The arguments of `ibm,get-system-parameter`: parameter, work-area real address
/// (32 bits: RTAS is called in 32-bit mode), work-area length. `None` when the area
/// is above 4 GiB or longer than 4 GiB.
pub fn get_system_parameter_args(param: u32, area_addr: u64, area_len: usize) -> Option<[u32; 3]> {
    Some([
        param,
        u32::try_from(area_addr).ok()?,
        u32::try_from(area_len).ok()?,
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::Scripted;
    use crate::status::HStatus;

    /// The cells of a byte buffer, read big-endian by hand.
    fn cells(buf: &[u8]) -> alloc::vec::Vec<u32> {
        buf.chunks_exact(4)
            .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    }

    #[test]
    fn build_writes_big_endian_cells() {
        let mut buf = [0xFFu8; 32];
        build(&mut buf, 0x2B, &[20, 0x1000, 1026], 1).unwrap();
        assert_eq!(&buf[..4], &[0, 0, 0, 0x2B]);
        assert_eq!(&buf[4..8], &[0, 0, 0, 3]);
        assert_eq!(&buf[8..12], &[0, 0, 0, 1]);
        assert_eq!(&buf[12..16], &[0, 0, 0, 20]);
        assert_eq!(&buf[16..20], &[0, 0, 0x10, 0]);
        assert_eq!(&buf[20..24], &[0, 0, 0x04, 0x02]);
        assert_eq!(&buf[24..28], &[0, 0, 0, 0]);
        // Cells past the call are untouched.
        assert_eq!(&buf[28..], &[0xFF; 4]);
    }

    #[test]
    fn power_off_and_os_term_layouts() {
        // power-off: token, nargs 2, nret 1, two arguments of -1, one status cell.
        let mut buf = [0u8; 24];
        build(&mut buf, 0x2003, &[u32::MAX, u32::MAX], 1).unwrap();
        assert_eq!(cells(&buf), [0x2003, 2, 1, u32::MAX, u32::MAX, 0]);
        // ibm,os-term: one argument (the message address), one status cell.
        let mut buf = [0u8; 20];
        build(&mut buf, 0x201f, &[0x0123_4000], 1).unwrap();
        assert_eq!(cells(&buf), [0x201f, 1, 1, 0x0123_4000, 0]);
        assert_eq!(&buf[12..16], &[0x01, 0x23, 0x40, 0x00]);
    }

    #[test]
    fn build_refuses_small_buffers() {
        let mut buf = [7u8; 18];
        assert_eq!(
            build(&mut buf, 1, &[1, 2], 1),
            Err(RtasError::BufferTooSmall { needed: 6, have: 4 })
        );
        assert_eq!(buf, [7u8; 18]);
    }

    #[test]
    fn read_rets_is_bounded() {
        let mut buf = [0u8; 24];
        build(&mut buf, 7, &[1], 2).unwrap();
        // The firmware's answers, as it stores them: status -3, then 42.
        buf[16..20].copy_from_slice(&[0xFF, 0xFF, 0xFF, 0xFD]);
        buf[20..24].copy_from_slice(&[0, 0, 0, 42]);
        let mut rets = [0u32; 4];
        assert_eq!(read_rets(&buf, &mut rets), 2);
        assert_eq!(rets[..2], [(-3i32) as u32, 42]);
        assert_eq!(check_status(&rets[..2]), Err(RtasError::Status(-3)));
        assert_eq!(check_status(&[0]), Ok(()));
        assert_eq!(check_status(&[]), Ok(()));
        // A header that claims more cells than the buffer holds is bounded.
        buf[8..12].copy_from_slice(&1000u32.to_be_bytes());
        assert_eq!(read_rets(&buf, &mut rets), 2);
        buf[4..8].copy_from_slice(&[0xFF; 4]);
        assert_eq!(read_rets(&buf, &mut rets), 0);
        assert_eq!(read_rets(&[], &mut rets), 0);
    }

    proptest::proptest! {
        #[test]
        fn build_then_read_round_trips(token in proptest::prelude::any::<u32>(),
                                       args in proptest::collection::vec(proptest::prelude::any::<u32>(), 0..8),
                                       rets in proptest::collection::vec(proptest::prelude::any::<u32>(), 0..8)) {
            let mut buf = [0u8; 4 * 19];
            build(&mut buf, token, &args, rets.len()).unwrap();
            let c = cells(&buf);
            proptest::prop_assert_eq!(c[0], token);
            proptest::prop_assert_eq!(&c[3..3 + args.len()], &args[..]);
            // The firmware writes the results; the kernel reads them back.
            for (i, r) in rets.iter().enumerate() {
                let off = 4 * (3 + args.len() + i);
                buf[off..off + 4].copy_from_slice(&r.to_be_bytes());
            }
            let mut out = alloc::vec![0u32; rets.len()];
            proptest::prop_assert_eq!(read_rets(&buf, &mut out), rets.len());
            proptest::prop_assert_eq!(out, rets);
        }
    }

    #[test]
    fn call_passes_the_address() {
        let mut raw = Scripted::default();
        // SAFETY: a scripted fake; no memory is touched.
        unsafe { call(&mut raw, 0x1234_5000) }.unwrap();
        assert_eq!(
            raw.calls[0],
            (opcodes::KVMPPC_H_RTAS, alloc::vec![0x1234_5000])
        );
        let mut raw = Scripted::reply(HStatus::Parameter, [0; 9]);
        // SAFETY: a scripted fake; no memory is touched.
        let e: RtasError = unsafe { call(&mut raw, 0) }.unwrap_err().into();
        assert_eq!(
            e,
            RtasError::Hcall(HcallError {
                call: "KVMPPC_H_RTAS",
                status: HStatus::Parameter
            })
        );
    }

    #[test]
    fn system_parameter_args() {
        assert_eq!(
            get_system_parameter_args(44, 0x8000, 1026),
            Some([44, 0x8000, 1026])
        );
        assert_eq!(get_system_parameter_args(44, 1 << 32, 16), None);
    }
}
