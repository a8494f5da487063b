//! The XICS interrupt presentation hcalls (LoPAR "Interrupt Support"): a source's
//! interrupt is presented to a processor when its priority is more favoured
//! (numerically lower) than the processor's current priority (CPPR).
//!
//! - `H_CPPR(cppr)`: sets the CPPR; 0xff accepts every priority.
//! - `H_XIRR()`: accepts the most favoured pending interrupt and returns the XIRR:
//!   the CPPR that was in force in bits 31..24, the source (XISR) in bits 23..0.
//!   Accepting raises the CPPR to the source's priority until `H_EOI`.
//! - `H_EOI(xirr)`: ends the interrupt and restores the CPPR from bits 31..24.
//! - `H_VIO_SIGNAL(unit, mode)`: enables (1) or disables (0) a VIO device's
//!   interrupt; QEMU's vty raises none until it is enabled.
//!
//! Facts: docs/interrupts.md.

use crate::hypervisor::check;
use crate::opcodes;
use crate::raw::{call_values, RawHcall};
use crate::status::HcallError;

/// The CPPR that accepts interrupts of every priority.
pub const CPPR_ACCEPT_ALL: u8 = 0xff;
/// XISR value meaning "nothing pending" (a spurious presentation).
pub const XISR_NONE: u32 = 0;
/// XISR value of an inter-processor interrupt.
pub const XISR_IPI: u32 = 2;

/// An accepted interrupt, as H_XIRR returns it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Xirr(pub u32);

impl Xirr {
    /// The interrupt source number (bits 23..0).
    pub fn source(self) -> u32 {
        self.0 & 0x00ff_ffff
    }

    /// The CPPR in force before the interrupt was accepted (bits 31..24).
    pub fn previous_cppr(self) -> u8 {
        self.0.to_be_bytes()[0]
    }

    /// True when no interrupt was pending.
    pub fn is_none(self) -> bool {
        self.source() == XISR_NONE
    }
}

/// H_CPPR: sets this processor's current priority.
pub fn set_cppr(raw: &mut impl RawHcall, cppr: u8) -> Result<(), HcallError> {
    let (status, _) = call_values(raw, opcodes::H_CPPR, &[u64::from(cppr)]);
    check("H_CPPR", status)
}

/// H_XIRR: accepts the most favoured pending interrupt.
pub fn accept(raw: &mut impl RawHcall) -> Result<Xirr, HcallError> {
    let (status, regs) = call_values(raw, opcodes::H_XIRR, &[]);
    check("H_XIRR", status)?;
    Ok(Xirr((regs[0] & 0xffff_ffff) as u32))
}

/// H_EOI: ends the interrupt `xirr` (restoring its previous CPPR).
pub fn end_of_interrupt(raw: &mut impl RawHcall, xirr: Xirr) -> Result<(), HcallError> {
    let (status, _) = call_values(raw, opcodes::H_EOI, &[u64::from(xirr.0)]);
    check("H_EOI", status)
}

/// The priority of an inter-processor interrupt (what Linux uses; lower is
/// more favoured).
pub const IPI_PRIORITY: u8 = 4;
/// The "no interrupt" priority: H_IPI with it clears a pending IPI.
pub const IPI_CLEAR: u8 = 0xff;

/// H_IPI: raises an inter-processor interrupt at `priority` on the processor
/// `server` (or clears it with [`IPI_CLEAR`]). Issue a memory barrier first
/// so the receiver sees the work it is sent for.
pub fn ipi(raw: &mut impl RawHcall, server: u32, priority: u8) -> Result<(), HcallError> {
    let (status, _) = call_values(
        raw,
        opcodes::H_IPI,
        &[u64::from(server), u64::from(priority)],
    );
    check("H_IPI", status)
}

/// H_VIO_SIGNAL: enables (`true`) or disables a VIO device's interrupt.
pub fn vio_signal(raw: &mut impl RawHcall, unit: u32, enable: bool) -> Result<(), HcallError> {
    let (status, _) = call_values(
        raw,
        opcodes::H_VIO_SIGNAL,
        &[u64::from(unit), u64::from(enable)],
    );
    check("H_VIO_SIGNAL", status)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::Scripted;
    use crate::status::HStatus;

    #[test]
    fn xirr_splits_priority_and_source() {
        let x = Xirr(0xff00_1100);
        assert_eq!(x.source(), 0x1100);
        assert_eq!(x.previous_cppr(), 0xff);
        assert!(!x.is_none());
        assert!(Xirr(0xff00_0000).is_none());
    }

    #[test]
    fn calls_pass_their_registers() {
        let mut r = [0u64; 9];
        r[0] = 0xff00_1100;
        let mut raw = Scripted::reply(HStatus::Success, r);
        let x = accept(&mut raw).unwrap();
        end_of_interrupt(&mut raw, x).unwrap();
        set_cppr(&mut raw, CPPR_ACCEPT_ALL).unwrap();
        vio_signal(&mut raw, 0x7100_0000, true).unwrap();
        ipi(&mut raw, 3, IPI_PRIORITY).unwrap();
        ipi(&mut raw, 3, IPI_CLEAR).unwrap();
        assert_eq!(
            raw.calls,
            [
                (opcodes::H_XIRR, alloc::vec![]),
                (opcodes::H_EOI, alloc::vec![0xff00_1100]),
                (opcodes::H_CPPR, alloc::vec![0xff]),
                (opcodes::H_VIO_SIGNAL, alloc::vec![0x7100_0000, 1]),
                (opcodes::H_IPI, alloc::vec![3, 4]),
                (opcodes::H_IPI, alloc::vec![3, 0xff]),
            ]
        );
    }

    #[test]
    fn a_failed_accept_is_an_error() {
        let mut raw = Scripted::reply(HStatus::Hardware, [0; 9]);
        assert!(accept(&mut raw).is_err());
    }
}
