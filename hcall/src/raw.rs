//! One raw hypervisor call: the seam between the typed calls and the machine.
//!
//! [`RawHcall`] is what every typed call in this crate is written against. On the
//! target, `sc1::Sc1` (built for powerpc64 only) implements it with the `sc 1` instruction; host tests
//! implement it with fakes that return hand-built register values. Nothing here
//! interprets results: decoding lives in [`crate::calls`].

#[cfg(target_arch = "powerpc64")]
#[allow(unsafe_code)]
pub mod sc1;

use crate::opcodes;
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
    ///
    /// Calls whose arguments are all plain values go through [`call_values`],
    /// which is safe.
    ///
    /// # Safety
    ///
    /// The hypervisor trusts the arguments. Every argument `opcode` interprets as
    /// a real address (a buffer it reads or writes, a page whose contents or CMO
    /// state it changes, a page a TCE or a page table entry maps) must name
    /// memory the caller owns, at a real address equal to the address passed, for
    /// as long as the hypervisor may use it (one call for a buffer; until it is
    /// removed for a registration, a TCE or a translation). A call that changes
    /// how the partition runs (a translation, the MMU mode, the interrupt byte
    /// order) must leave every translation and vector the kernel relies on
    /// intact.
    unsafe fn hcall(&mut self, opcode: u64, args: &[u64]) -> (HStatus, [u64; 9]);
}

impl<T: RawHcall + ?Sized> RawHcall for &mut T {
    unsafe fn hcall(&mut self, opcode: u64, args: &[u64]) -> (HStatus, [u64; 9]) {
        // SAFETY: the caller keeps the contract of `RawHcall::hcall`; it is
        // passed on unchanged.
        unsafe { (**self).hcall(opcode, args) }
    }
}

/// Makes an hcall whose arguments are all plain values ([`opcodes::takes_only_values`]):
/// the hypervisor reads and writes no memory for it and changes no translation,
/// so nothing the caller passes can break memory safety. Any other opcode is
/// answered with H_PARAMETER without a call.
pub fn call_values<R: RawHcall + ?Sized>(
    raw: &mut R,
    opcode: u64,
    args: &[u64],
) -> (HStatus, [u64; 9]) {
    if !opcodes::takes_only_values(opcode) {
        return (HStatus::Parameter, [0; MAX_ARGS]);
    }
    // SAFETY: `opcode` is one of `opcodes::VALUES_ONLY`, checked above: it
    // interprets no argument as an address and changes no translation, so the
    // contract of `RawHcall::hcall` holds for any arguments.
    unsafe { raw.hcall(opcode, args) }
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

    #[test]
    fn call_values_refuses_a_call_that_takes_an_address() {
        let mut raw = crate::fake::Scripted::default();
        let (status, _) = call_values(&mut raw, opcodes::H_PAGE_INIT, &[0, 0x1000, 0]);
        assert_eq!(status, HStatus::Parameter);
        assert!(raw.calls.is_empty(), "no call was made");
        let (status, _) = call_values(&mut raw, opcodes::H_GET_MPP, &[]);
        assert_eq!(status, HStatus::Success);
        assert_eq!(raw.calls, [(opcodes::H_GET_MPP, alloc::vec![])]);
    }
}
