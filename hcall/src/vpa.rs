//! The Virtual Processor Area (VPA, Linux's `lppaca`): a per-processor area the
//! partition registers with `H_REGISTER_VPA` and shares with the hypervisor, and
//! `H_CEDE`, the call that gives the processor away until an interrupt.
//!
//! Only the fields lpar-cmm uses are named; the layout (big-endian in both images,
//! through [`crate::endian::FIRMWARE`]) is:
//!
//! | offset | field | who writes |
//! |---|---|---|
//! | 0x000 | eye catcher 0xD397D781 (u32) | OS |
//! | 0x004 | size (u16), at least 640 | OS |
//! | 0x0BA | `fpregs_in_use` (u8) | OS: the hypervisor must keep FP state |
//! | 0x0FE | `idle` (u8): 1 while the OS is idle (around `H_CEDE`) | OS |
//! | 0x0FF | `vmxregs_in_use` (u8) | OS |
//! | 0x100 | `yield_count` (u32) | hypervisor |
//! | 0x108 | `cmo_faults` (u64) | hypervisor, under CMO |
//! | 0x110 | `cmo_fault_time` (u64, µs) | hypervisor, under CMO |
//!
//! The area must be cache-line aligned and must not cross a 4 KiB boundary.
//! Registration passes flags `1 << 45` (function 1: register the VPA), the
//! processor's hardware id and the real address. Facts: docs/interrupts.md.

use crate::endian::FIRMWARE;
use crate::hypervisor::{check, CmoFaultStats};
use crate::opcodes;
use crate::page::PAGE_SIZE;
use crate::raw::{call_values, RawHcall};
use crate::status::HcallError;

/// Size of the area lpar-cmm registers (as Linux does).
pub const VPA_SIZE: usize = 1024;
/// The eye catcher at offset 0.
pub const VPA_EYE_CATCHER: u32 = 0xD397_D781;
/// Offset of the 16-bit size field.
pub const VPA_SIZE_OFFSET: usize = 0x04;
/// Offset of `fpregs_in_use`.
pub const VPA_FPREGS_IN_USE: usize = 0xBA;
/// Offset of the `idle` byte.
pub const VPA_IDLE: usize = 0xFE;
/// Offset of `vmxregs_in_use`.
pub const VPA_VMXREGS_IN_USE: usize = 0xFF;
/// Offset of `yield_count` (u32).
pub const VPA_YIELD_COUNT: usize = 0x100;
/// Offset of `cmo_faults` (u64).
pub const VPA_CMO_FAULTS: usize = 0x108;
/// Offset of `cmo_fault_time` (u64, microseconds).
pub const VPA_CMO_FAULT_TIME: usize = 0x110;
/// `H_REGISTER_VPA` flags: function 1 (register the VPA) in bits 47..45.
pub const REGISTER_VPA_FLAGS: u64 = 1 << 45;

/// Fills a fresh area: eye catcher, size, and "FP and VMX registers in use" (the
/// kernel's code uses both, so the hypervisor must preserve them).
pub fn init_area(area: &mut [u8; VPA_SIZE]) {
    area.fill(0);
    // Both fit the area: the offsets are constants far inside it.
    let _ = FIRMWARE.put_at(&mut area[..], 0, VPA_EYE_CATCHER);
    let size = u16::try_from(VPA_SIZE).unwrap_or(u16::MAX);
    let _ = FIRMWARE.put_at(&mut area[..], VPA_SIZE_OFFSET, size);
    area[VPA_FPREGS_IN_USE] = 1;
    area[VPA_VMXREGS_IN_USE] = 1;
}

/// True when `addr` may hold a VPA of [`VPA_SIZE`] bytes: cache-line (128 B)
/// aligned and not crossing a 4 KiB boundary.
pub fn placement_ok(addr: u64) -> bool {
    let size = VPA_SIZE as u64;
    addr.is_multiple_of(128) && (addr % PAGE_SIZE) + size <= PAGE_SIZE
}

/// Reads the CMO fault counters the hypervisor keeps in the area.
pub fn cmo_faults(area: &[u8; VPA_SIZE]) -> CmoFaultStats {
    let u64_at = |off: usize| FIRMWARE.get_at::<u64>(&area[..], off).unwrap_or(0);
    CmoFaultStats {
        faults: u64_at(VPA_CMO_FAULTS),
        fault_time_usec: u64_at(VPA_CMO_FAULT_TIME),
    }
}

/// H_REGISTER_VPA for the processor `cpu` (its hardware id) with the area at real
/// address `addr`.
///
/// # Safety
///
/// `addr` is the real address of a [`VPA_SIZE`]-byte area, placed as
/// [`placement_ok`] says and filled by [`init_area`], that the caller owns and
/// keeps for the hypervisor, which writes it while the processor runs, until the
/// area is deregistered (lpar-cmm never does: the area lives as long as the
/// kernel). The kernel reads and writes it only with volatile accesses.
pub unsafe fn register(raw: &mut impl RawHcall, cpu: u32, addr: u64) -> Result<(), HcallError> {
    let args = [REGISTER_VPA_FLAGS, u64::from(cpu), addr];
    // SAFETY: the caller gives the area to the hypervisor as this function's
    // contract says, which is `RawHcall::hcall`'s for H_REGISTER_VPA.
    let (status, _) = unsafe { raw.hcall(opcodes::H_REGISTER_VPA, &args) };
    check("H_REGISTER_VPA", status)
}

/// H_CEDE: returns after an interrupt became pending (the hypervisor enables
/// external interrupts, `MSR[EE]`, itself) or after H_PROD.
pub fn cede(raw: &mut impl RawHcall) -> Result<(), HcallError> {
    let (status, _) = call_values(raw, opcodes::H_CEDE, &[]);
    check("H_CEDE", status)
}

/// H_PROD: wakes the virtual processor `server` if it is ceded (or makes its
/// next H_CEDE return at once).
pub fn prod(raw: &mut impl RawHcall, server: u32) -> Result<(), HcallError> {
    let (status, _) = call_values(raw, opcodes::H_PROD, &[u64::from(server)]);
    check("H_PROD", status)
}

/// Whom H_CONFER gives this processor's time to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConferTo {
    /// The virtual processor `server`, if it is still preempted at `yield_count`
    /// (the count read from its VPA; odd = preempted).
    Holder {
        /// Its interrupt server number.
        server: u32,
        /// Its yield count as read.
        yield_count: u32,
    },
    /// Any virtual processor of the partition (`H_CONFER(-1, 0)`).
    All,
}

/// H_CONFER: gives the rest of this processor's time slice away.
pub fn confer(raw: &mut impl RawHcall, to: ConferTo) -> Result<(), HcallError> {
    let args = match to {
        ConferTo::Holder {
            server,
            yield_count,
        } => [u64::from(server), u64::from(yield_count)],
        ConferTo::All => [u64::MAX, 0],
    };
    let (status, _) = call_values(raw, opcodes::H_CONFER, &args);
    check("H_CONFER", status)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::Scripted;

    #[test]
    fn a_fresh_area_has_eye_catcher_size_and_register_flags() {
        let mut a = [0xAAu8; VPA_SIZE];
        init_area(&mut a);
        assert_eq!(&a[..4], &[0xD3, 0x97, 0xD7, 0x81]);
        assert_eq!(u16::from_be_bytes([a[4], a[5]]), 1024);
        assert_eq!(a[VPA_IDLE], 0);
        assert_eq!((a[VPA_FPREGS_IN_USE], a[VPA_VMXREGS_IN_USE]), (1, 1));
        assert_eq!(cmo_faults(&a), CmoFaultStats::default());
    }

    #[test]
    fn fault_counters_are_big_endian_u64s() {
        let mut a = [0u8; VPA_SIZE];
        a[0x108..0x110].copy_from_slice(&7u64.to_be_bytes());
        a[0x110..0x118].copy_from_slice(&123_456u64.to_be_bytes());
        assert_eq!(
            cmo_faults(&a),
            CmoFaultStats {
                faults: 7,
                fault_time_usec: 123_456
            }
        );
    }

    #[test]
    fn placement_needs_alignment_and_one_page() {
        assert!(placement_ok(0x40_0000));
        assert!(placement_ok(0x40_0c00));
        assert!(!placement_ok(0x40_0c80)); // crosses 4 KiB
        assert!(!placement_ok(0x40_0010)); // not a cache line
    }

    #[test]
    fn register_and_cede_registers() {
        let mut raw = Scripted::default();
        // SAFETY: a scripted fake; no memory is touched.
        unsafe { register(&mut raw, 0, 0x40_0000) }.unwrap();
        cede(&mut raw).unwrap();
        assert_eq!(
            raw.calls,
            [
                (opcodes::H_REGISTER_VPA, alloc::vec![1 << 45, 0, 0x40_0000]),
                (opcodes::H_CEDE, alloc::vec![]),
            ]
        );
    }

    #[test]
    fn prod_and_confer_registers() {
        let mut raw = Scripted::default();
        prod(&mut raw, 3).unwrap();
        confer(
            &mut raw,
            ConferTo::Holder {
                server: 2,
                yield_count: 41,
            },
        )
        .unwrap();
        confer(&mut raw, ConferTo::All).unwrap();
        assert_eq!(
            raw.calls,
            [
                (opcodes::H_PROD, alloc::vec![3]),
                (opcodes::H_CONFER, alloc::vec![2, 41]),
                (opcodes::H_CONFER, alloc::vec![u64::MAX, 0]),
            ]
        );
    }
}
