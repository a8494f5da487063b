//! RTAS through KVMPPC_H_RTAS (0xF000): building and reading the argument buffer.
//!
//! The buffer is an array of big-endian 32-bit cells: `token, nargs, nret, args...,
//! rets...`; its real address goes in r4. The kernel owns the buffer memory (it must
//! be real-addressable and stay put for the call); this module only fills it in,
//! makes the call through a [`RawHcall`], and reads the results back. On the host the
//! cells are stored big-endian too, so tests see the same bytes as the hypervisor.

use core::fmt;

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

/// Fills `buf` with `token, nargs, nret, args..., 0 × nret` (big-endian cells).
pub fn build(buf: &mut [u32], token: u32, args: &[u32], nret: usize) -> Result<(), RtasError> {
    let needed = RTAS_HEADER_CELLS
        .saturating_add(args.len())
        .saturating_add(nret);
    if buf.len() < needed {
        return Err(RtasError::BufferTooSmall {
            needed,
            have: buf.len(),
        });
    }
    buf[0] = token.to_be();
    buf[1] = cell_count(args.len()).to_be();
    buf[2] = cell_count(nret).to_be();
    let (arg_cells, rest) = buf[RTAS_HEADER_CELLS..].split_at_mut(args.len());
    for (d, s) in arg_cells.iter_mut().zip(args) {
        *d = s.to_be();
    }
    rest[..nret].fill(0);
    Ok(())
}

/// Reads the result cells of a buffer built by [`build`] into `rets` (as many as
/// both the buffer's `nret` and `rets.len()` allow); returns how many were read.
/// The counts are taken from the buffer's header and bounded by its length.
pub fn read_rets(buf: &[u32], rets: &mut [u32]) -> usize {
    let header = |i: usize| {
        buf.get(i)
            .map(|c| usize::try_from(u32::from_be(*c)).unwrap_or(usize::MAX))
            .unwrap_or(0)
    };
    let (nargs, nret) = (header(1), header(2));
    let start = RTAS_HEADER_CELLS.saturating_add(nargs);
    let cells = buf.get(start..).unwrap_or(&[]);
    let n = nret.min(cells.len()).min(rets.len());
    for (d, s) in rets[..n].iter_mut().zip(cells) {
        *d = u32::from_be(*s);
    }
    n
}

/// Makes the KVMPPC_H_RTAS hcall on the buffer at real address `buf_addr`.
pub fn call(raw: &mut impl RawHcall, buf_addr: u64) -> Result<(), HcallError> {
    let (status, _) = raw.hcall(opcodes::KVMPPC_H_RTAS, &[buf_addr]);
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

    #[test]
    fn build_writes_big_endian_cells() {
        let mut buf = [0xFFFF_FFFFu32; 8];
        build(&mut buf, 0x2B, &[20, 0x1000, 1026], 1).unwrap();
        let bytes: alloc::vec::Vec<u8> = buf.iter().flat_map(|c| c.to_ne_bytes()).collect();
        assert_eq!(&bytes[..4], &[0, 0, 0, 0x2B]);
        assert_eq!(&bytes[4..8], &[0, 0, 0, 3]);
        assert_eq!(&bytes[8..12], &[0, 0, 0, 1]);
        assert_eq!(&bytes[12..16], &[0, 0, 0, 20]);
        assert_eq!(&bytes[16..20], &[0, 0, 0x10, 0]);
        assert_eq!(&bytes[20..24], &[0, 0, 0x04, 0x02]);
        assert_eq!(&bytes[24..28], &[0, 0, 0, 0]);
        // Cells past the call are untouched.
        assert_eq!(buf[7], 0xFFFF_FFFF);
    }

    #[test]
    fn power_off_and_os_term_layouts() {
        // power-off: token, nargs 2, nret 1, two arguments of -1, one status cell.
        let mut buf = [0u32; 6];
        build(&mut buf, 0x2003, &[u32::MAX, u32::MAX], 1).unwrap();
        let cells: alloc::vec::Vec<u32> = buf.iter().map(|c| u32::from_be(*c)).collect();
        assert_eq!(cells, [0x2003, 2, 1, u32::MAX, u32::MAX, 0]);
        // ibm,os-term: one argument (the message address), one status cell.
        let mut buf = [0u32; 5];
        build(&mut buf, 0x201f, &[0x0123_4000], 1).unwrap();
        let cells: alloc::vec::Vec<u32> = buf.iter().map(|c| u32::from_be(*c)).collect();
        assert_eq!(cells, [0x201f, 1, 1, 0x0123_4000, 0]);
    }

    #[test]
    fn build_refuses_small_buffers() {
        let mut buf = [0u32; 4];
        assert_eq!(
            build(&mut buf, 1, &[1, 2], 1),
            Err(RtasError::BufferTooSmall { needed: 6, have: 4 })
        );
    }

    #[test]
    fn read_rets_is_bounded() {
        let mut buf = [0u32; 6];
        build(&mut buf, 7, &[1], 2).unwrap();
        buf[4] = (-3i32 as u32).to_be();
        buf[5] = 42u32.to_be();
        let mut rets = [0u32; 4];
        assert_eq!(read_rets(&buf, &mut rets), 2);
        assert_eq!(rets[..2], [(-3i32) as u32, 42]);
        assert_eq!(check_status(&rets[..2]), Err(RtasError::Status(-3)));
        assert_eq!(check_status(&[0]), Ok(()));
        assert_eq!(check_status(&[]), Ok(()));
        // A header that claims more cells than the buffer holds is bounded.
        buf[2] = 1000u32.to_be();
        assert_eq!(read_rets(&buf, &mut rets), 2);
        buf[1] = u32::MAX.to_be();
        assert_eq!(read_rets(&buf, &mut rets), 0);
        assert_eq!(read_rets(&[], &mut rets), 0);
    }

    #[test]
    fn call_passes_the_address() {
        let mut raw = Scripted::default();
        call(&mut raw, 0x1234_5000).unwrap();
        assert_eq!(
            raw.calls[0],
            (opcodes::KVMPPC_H_RTAS, alloc::vec![0x1234_5000])
        );
        let mut raw = Scripted::reply(HStatus::Parameter, [0; 9]);
        let e: RtasError = call(&mut raw, 0).unwrap_err().into();
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
