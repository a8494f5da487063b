//! The `sc 1` instruction (target only): the one place this crate talks to the machine.
//!
//! PAPR calling convention: opcode in r3, arguments in r4..r12, `sc 1`; status back in
//! r3, results in r4..r12. Across the call r0, r3..r12, CTR, LR, XER and CR0/1/5/6/7
//! are volatile (the ELF ABI volatile set); r1, r2, r13..r31 and CR2..4 are preserved.
//!
//! The hypervisor only writes registers, except where an argument is a real address
//! of a buffer it reads or writes (RTAS, system parameters, the VPA) or of a page it
//! changes or maps. Holding an [`Sc1`] promises nothing: every call through it is
//! `unsafe` ([`RawHcall::hcall`]), and the typed calls built on it state their own
//! contracts, so the obligation sits with each caller that passes an address.

use core::arch::asm;

use super::{arg_block, RawHcall, MAX_ARGS};
use crate::status::HStatus;

/// The real hypervisor, reached through `sc 1`. Zero-sized.
#[derive(Debug)]
pub struct Sc1 {
    _private: (),
}

impl Sc1 {
    /// A handle for making hcalls. Safe: a call through it is `unsafe`, with the
    /// contract of [`RawHcall::hcall`]. (An `sc 1` outside a PAPR partition's
    /// supervisor state traps; it does not touch memory.)
    pub const fn new() -> Self {
        Sc1 { _private: () }
    }
}

impl Default for Sc1 {
    fn default() -> Self {
        Self::new()
    }
}

impl RawHcall for Sc1 {
    unsafe fn hcall(&mut self, opcode: u64, args: &[u64]) -> (HStatus, [u64; 9]) {
        match arg_block(args) {
            Some(regs) => {
                // SAFETY: the caller keeps the contract of `RawHcall::hcall`,
                // which is `sc1`'s.
                let (r3, out) = unsafe { sc1(opcode, regs) };
                (HStatus::from_raw(r3), out)
            }
            None => (HStatus::Parameter, [0; MAX_ARGS]),
        }
    }
}

/// Executes `sc 1` with `opcode` in r3 and `regs` in r4..r12; returns r3 (signed) and
/// r4..r12.
///
/// # Safety
///
/// The contract of [`RawHcall::hcall`] for `opcode` and `regs`.
unsafe fn sc1(opcode: u64, regs: [u64; MAX_ARGS]) -> (i64, [u64; MAX_ARGS]) {
    let [mut r4, mut r5, mut r6, mut r7, mut r8, mut r9, mut r10, mut r11, mut r12] = regs;
    let r3: u64;
    // SAFETY: `sc 1` transfers to the hypervisor, which returns to the next
    // instruction having changed only the registers declared here (the PAPR volatile
    // set: r0, r3..r12, CTR, LR, XER, CR0/1/5/6/7); the stack pointer, TOC and
    // non-volatile registers are preserved. Memory named by an argument address is
    // covered by the contract of `RawHcall::hcall`, the only path to here.
    unsafe {
        asm!(
            "sc 1",
            inout("r3") opcode => r3,
            inout("r4") r4,
            inout("r5") r5,
            inout("r6") r6,
            inout("r7") r7,
            inout("r8") r8,
            inout("r9") r9,
            inout("r10") r10,
            inout("r11") r11,
            inout("r12") r12,
            out("r0") _,
            out("ctr") _,
            out("lr") _,
            out("xer") _,
            out("cr0") _,
            out("cr1") _,
            out("cr5") _,
            out("cr6") _,
            out("cr7") _,
            options(nostack),
        );
    }
    (r3 as i64, [r4, r5, r6, r7, r8, r9, r10, r11, r12])
}
