//! One raw hypervisor call: the seam between the typed calls and the machine.
//!
//! [`RawHcall`] is what every typed call in this crate is written against. On the
//! target, `sc1::Sc1` (built for powerpc64 only) implements it with the `sc 1` instruction; host tests
//! implement it with fakes that return hand-built register values. Nothing here
//! interprets results: decoding lives in [`crate::calls`].

#[cfg(target_arch = "powerpc64")]
#[allow(unsafe_code)]
pub mod sc1;

use crate::status::HStatus;

/// Maximum number of argument registers (r4..r12).
pub const MAX_ARGS: usize = 9;

/// One raw hypervisor call.
pub trait RawHcall {
    /// Makes hcall `opcode` with `args` in r4.. (at most [`MAX_ARGS`]; more is
    /// answered with H_PARAMETER without a call). Returns the decoded status (r3)
    /// and r4..r12 as they are after the call. The block is zero-filled past the
    /// arguments before the call, so with no arguments a result register the call
    /// does not write reads as zero; decoders must still ignore results unless the
    /// status is a success.
    fn hcall(&mut self, opcode: u64, args: &[u64]) -> (HStatus, [u64; 9]);
}

impl<T: RawHcall + ?Sized> RawHcall for &mut T {
    fn hcall(&mut self, opcode: u64, args: &[u64]) -> (HStatus, [u64; 9]) {
        (**self).hcall(opcode, args)
    }
}

/// Copies `args` into a zero-filled 9-register block, or `None` if there are too many.
pub fn arg_block(args: &[u64]) -> Option<[u64; MAX_ARGS]> {
    if args.len() > MAX_ARGS {
        return None;
    }
    let mut regs = [0u64; MAX_ARGS];
    regs[..args.len()].copy_from_slice(args);
    Some(regs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arg_block_pads_and_bounds() {
        assert_eq!(arg_block(&[1, 2]), Some([1, 2, 0, 0, 0, 0, 0, 0, 0]));
        assert_eq!(arg_block(&[7; 9]), Some([7; 9]));
        assert_eq!(arg_block(&[7; 10]), None);
    }
}
