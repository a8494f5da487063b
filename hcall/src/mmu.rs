//! The hashed page table hcalls: H_ENTER, H_READ (four entries at a time),
//! H_REMOVE and H_REGISTER_PROC_TBL. A partition cannot write its page table; it
//! asks the hypervisor with these. The entries' encoding is the kernel's
//! (`kernel::mmu::hpte`); here are the registers.
//!
//! Entering or removing a translation changes what addresses mean to the running
//! kernel, so [`enter`] and [`remove`] are `unsafe`: their callers state why the
//! change is sound. Reading is not.

use crate::opcodes::{H_ENTER, H_READ, H_REGISTER_PROC_TBL, H_REMOVE};
use crate::raw::{call_values, RawHcall};
use crate::status::raw::H_NOT_FOUND;
use crate::status::{HStatus, HcallError};

/// H_READ flag: return the four entries from `ptex & !3` (LoPAR's H_READ_4).
pub const H_READ_4: u64 = 1 << (63 - 26);

/// H_REGISTER_PROC_TBL flags for "a new table: hash MMU with segments" (LoPAR;
/// `docs/hash-mmu.md`).
pub const PROC_TABLE_NEW_HASH: u64 = 0x18;

/// One hashed page table entry as the hcalls carry it: `V` then `R`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RawHpte {
    /// First doubleword (`pteh`).
    pub v: u64,
    /// Second doubleword (`ptel`).
    pub r: u64,
}

fn check(call: &'static str, status: HStatus) -> Result<(), HcallError> {
    crate::hypervisor::check(call, status)
}

/// H_ENTER without `H_EXACT`: the hypervisor puts `hpte` into a free slot of the
/// group that starts at `ptex` and returns the slot's index.
///
/// # Safety
///
/// The entry maps the real page in `hpte.r` at the virtual page in `hpte.v`. The
/// caller must own that real page (or device range) for as long as the entry
/// stays, and must not already rely on a different translation of that virtual
/// page: the hypervisor does not check either.
pub unsafe fn enter<R: RawHcall + ?Sized>(
    raw: &mut R,
    ptex: u64,
    hpte: RawHpte,
) -> Result<u64, HcallError> {
    // SAFETY: the caller owns the page and the virtual page is free, this
    // function's contract.
    let (status, rets) = unsafe { raw.hcall(H_ENTER, &[0, ptex, hpte.v, hpte.r]) };
    check("H_ENTER", status)?;
    Ok(rets[0])
}

/// H_READ with [`H_READ_4`]: the four entries from `ptex & !3`.
pub fn read4<R: RawHcall + ?Sized>(raw: &mut R, ptex: u64) -> Result<[RawHpte; 4], HcallError> {
    let (status, rets) = call_values(raw, H_READ, &[H_READ_4, ptex]);
    check("H_READ", status)?;
    Ok(core::array::from_fn(|i| RawHpte {
        v: rets[2 * i],
        r: rets[2 * i + 1],
    }))
}

/// H_REMOVE of the entry at `ptex` (no AVPN check): the entry it removed, or
/// `None` when the slot was already empty (H_NOT_FOUND).
///
/// # Safety
///
/// The removed translation is gone at once, on every processor: nothing the
/// caller will touch (code, stack, data, devices) may depend on it.
pub unsafe fn remove<R: RawHcall + ?Sized>(
    raw: &mut R,
    ptex: u64,
) -> Result<Option<RawHpte>, HcallError> {
    // SAFETY: nothing depends on the translation, this function's contract.
    let (status, rets) = unsafe { raw.hcall(H_REMOVE, &[0, ptex, 0]) };
    if status.to_raw() == H_NOT_FOUND {
        return Ok(None);
    }
    check("H_REMOVE", status)?;
    Ok(Some(RawHpte {
        v: rets[0],
        r: rets[1],
    }))
}

/// H_REGISTER_PROC_TBL saying the partition uses the hashed page table with
/// segments (ISA 3.0 processors ask before the first H_ENTER).
pub fn register_hash_with_segments<R: RawHcall + ?Sized>(raw: &mut R) -> Result<(), HcallError> {
    // SAFETY: "hash with segments" names no table (base and size 0), and it is
    // the MMU mode the kernel runs in: no translation it relies on changes.
    let (status, _) = unsafe { raw.hcall(H_REGISTER_PROC_TBL, &[PROC_TABLE_NEW_HASH, 0, 0, 0]) };
    check("H_REGISTER_PROC_TBL", status)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::Scripted;

    #[test]
    fn enter_passes_the_entry_and_returns_the_slot() {
        let mut raw = Scripted::reply(HStatus::Success, [13, 0, 0, 0, 0, 0, 0, 0, 0]);
        let e = RawHpte { v: 0x4001, r: 0x10 };
        // SAFETY: a fake; nothing is mapped.
        assert_eq!(unsafe { enter(&mut raw, 8, e) }, Ok(13));
        assert_eq!(raw.calls, [(H_ENTER, alloc::vec![0, 8, 0x4001, 0x10])]);
        raw.replies.push_back((HStatus::from_raw(-6), [0; 9]));
        // SAFETY: as above.
        let err = unsafe { enter(&mut raw, 8, e) }.unwrap_err();
        assert_eq!((err.call, err.status.to_raw()), ("H_ENTER", -6));
    }

    #[test]
    fn read4_splits_the_pairs() {
        let mut raw = Scripted::reply(HStatus::Success, [1, 2, 3, 4, 5, 6, 7, 8, 99]);
        let e = read4(&mut raw, 12).unwrap();
        assert_eq!(
            e,
            [
                RawHpte { v: 1, r: 2 },
                RawHpte { v: 3, r: 4 },
                RawHpte { v: 5, r: 6 },
                RawHpte { v: 7, r: 8 }
            ]
        );
        assert_eq!(raw.calls, [(H_READ, alloc::vec![H_READ_4, 12])]);
        raw.replies.push_back((HStatus::Parameter, [0; 9]));
        assert_eq!(read4(&mut raw, 1 << 40).unwrap_err().call, "H_READ");
    }

    #[test]
    fn remove_reports_an_empty_slot_as_none() {
        let mut raw = Scripted::reply(HStatus::Success, [0x11, 0x22, 0, 0, 0, 0, 0, 0, 0]);
        // SAFETY: a fake; nothing depends on the entry.
        let old = unsafe { remove(&mut raw, 5) };
        assert_eq!(old, Ok(Some(RawHpte { v: 0x11, r: 0x22 })));
        raw.replies
            .push_back((HStatus::from_raw(H_NOT_FOUND), [0; 9]));
        // SAFETY: as above.
        assert_eq!(unsafe { remove(&mut raw, 5) }, Ok(None));
        raw.replies.push_back((HStatus::Hardware, [0; 9]));
        // SAFETY: as above.
        assert!(unsafe { remove(&mut raw, 5) }.is_err());
        assert_eq!(raw.calls[0], (H_REMOVE, alloc::vec![0, 5, 0]));
    }

    #[test]
    fn proc_table_registration_says_hash_with_segments() {
        let mut raw = Scripted::default();
        register_hash_with_segments(&mut raw).unwrap();
        assert_eq!(
            raw.calls,
            [(H_REGISTER_PROC_TBL, alloc::vec![0x18, 0, 0, 0])]
        );
    }
}
