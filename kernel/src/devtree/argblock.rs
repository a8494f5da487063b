//! The Open Firmware client interface's argument block, as bytes: 32-bit
//! big-endian cells (IEEE 1275 PowerPC binding) `service, nargs, nret, args...,
//! rets...`, the same in both images (through [`hcall::endian::FIRMWARE`]).
//! The glue (`glue/of/call.rs`) hands its address to the firmware.

use hcall::endian::FIRMWARE;

/// Most argument plus result cells of one call.
pub const MAX_CELLS: usize = 16;
/// Bytes of one cell.
const CELL: usize = 4;
/// Size of a block in bytes.
pub const BLOCK_BYTES: usize = CELL * (3 + MAX_CELLS);

/// One call's argument block (16-byte aligned, as firmware likes it).
#[repr(C, align(16))]
#[derive(Clone, Debug)]
pub struct ArgBlock {
    bytes: [u8; BLOCK_BYTES],
    nargs: usize,
    nret: usize,
}

impl ArgBlock {
    /// A block for the service whose name is at `service`, with `args` and
    /// room for `nret` results (zeroed). `None` when the cells do not fit.
    pub fn new(service: u32, args: &[u32], nret: usize) -> Option<ArgBlock> {
        if args.len().checked_add(nret)? > MAX_CELLS {
            return None;
        }
        let mut bytes = [0u8; BLOCK_BYTES];
        let header = [
            service,
            u32::try_from(args.len()).ok()?,
            u32::try_from(nret).ok()?,
        ];
        for (cell, v) in bytes.chunks_exact_mut(CELL).zip(header.iter().chain(args)) {
            FIRMWARE.put(cell, *v)?;
        }
        Some(ArgBlock {
            bytes,
            nargs: args.len(),
            nret,
        })
    }

    /// The bytes the firmware reads and writes.
    pub fn as_bytes(&self) -> &[u8; BLOCK_BYTES] {
        &self.bytes
    }

    /// The same, writable (the firmware's results go here).
    pub fn as_mut_bytes(&mut self) -> &mut [u8; BLOCK_BYTES] {
        &mut self.bytes
    }

    /// Copies the result cells into `rets` (at most as many as the block has
    /// room for); returns how many were copied.
    pub fn rets(&self, rets: &mut [u32]) -> usize {
        let mut n = 0;
        for (i, r) in rets.iter_mut().enumerate().take(self.nret) {
            match FIRMWARE.get_at::<u32>(&self.bytes, CELL * (3 + self.nargs + i)) {
                Some(v) => *r = v,
                None => break,
            }
            n += 1;
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn hand_worked_bytes() {
        // getprop(phandle 0x1234, name at 0x4010, buffer at 0x8000, 64 bytes), one
        // result; the service name at 0x400800.
        let b = ArgBlock::new(0x40_0800, &[0x1234, 0x4010, 0x8000, 64], 1).unwrap();
        let bytes = b.as_bytes();
        assert_eq!(
            &bytes[..32],
            &[
                0x00, 0x40, 0x08, 0x00, // service
                0, 0, 0, 4, // nargs
                0, 0, 0, 1, // nret
                0, 0, 0x12, 0x34, //
                0, 0, 0x40, 0x10, //
                0, 0, 0x80, 0x00, //
                0, 0, 0, 64, //
                0, 0, 0, 0, // result room
            ]
        );
        let mut b = b;
        // The firmware answers 63 (0x3f) bytes.
        b.as_mut_bytes()[28..32].copy_from_slice(&[0, 0, 0, 0x3f]);
        let mut rets = [0u32; 2];
        assert_eq!(b.rets(&mut rets), 1);
        assert_eq!(rets, [0x3f, 0]);
        // -1 as the firmware stores it.
        b.as_mut_bytes()[28..32].copy_from_slice(&[0xff; 4]);
        b.rets(&mut rets);
        assert_eq!(rets[0] as i32, -1);
    }

    #[test]
    fn too_many_cells_are_refused() {
        assert!(ArgBlock::new(0, &[0; 16], 1).is_none());
        assert!(ArgBlock::new(0, &[0; 10], 6).is_some());
        assert!(ArgBlock::new(0, &[], usize::MAX).is_none());
    }

    proptest! {
        #[test]
        fn encode_then_decode_is_identity(args in proptest::collection::vec(any::<u32>(), 0..8),
                                          rets in proptest::collection::vec(any::<u32>(), 0..8)) {
            let mut b = ArgBlock::new(0xfeed, &args, rets.len()).unwrap();
            for (i, a) in args.iter().enumerate() {
                let off = 4 * (3 + i);
                prop_assert_eq!(&b.as_bytes()[off..off + 4], &a.to_be_bytes()[..]);
            }
            for (i, r) in rets.iter().enumerate() {
                let off = 4 * (3 + args.len() + i);
                b.as_mut_bytes()[off..off + 4].copy_from_slice(&r.to_be_bytes());
            }
            let mut out = vec![0u32; rets.len()];
            prop_assert_eq!(b.rets(&mut out), rets.len());
            prop_assert_eq!(out, rets);
        }
    }
}
