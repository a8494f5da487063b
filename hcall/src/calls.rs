//! Typed hcalls on top of [`RawHcall`]: register packing and unpacking, pure and
//! host-tested.
//!
//! Every function makes exactly one call and never retries (the one retry path is
//! [`crate::Retrying`] around the [`crate::Hypervisor`], or
//! [`crate::retry::RetryPolicy::run`] for a call outside it). A decoded result is only
//! produced for a success status; otherwise the caller gets the typed [`HcallError`].
//! The console calls are in [`crate::term`], RTAS in [`crate::rtas`].

use crate::endian::ByteOrder;
use crate::hypervisor::{check, SetMppOutcome};
use crate::mpp::{MppData, MppXData};
use crate::opcodes;
use crate::page::{PageInitFlags, PageState};
use crate::raw::{call_values, RawHcall};
use crate::retry::{Clock, RetryPolicy};
use crate::status::{HStatus, HcallError};

/// Mask of the 48-bit unallocated I/O-mapping entitlement in R7 of H_GET_MPP.
pub const MPP_UNALLOCATED_ENTITLEMENT_MASK: u64 = (1 << 48) - 1;

/// The "not applicable" sentinel of H_GET_MPP's R5 and R8.
pub const MPP_NOT_APPLICABLE: u64 = u64::MAX;

/// Decodes H_GET_MPP's r4..r10 (`regs[0]` = r4). Call only after a success status.
pub fn decode_mpp(regs: &[u64; 9]) -> MppData {
    let sentinel = |v: u64| (v != MPP_NOT_APPLICABLE).then_some(v);
    let r7 = regs[3];
    MppData {
        entitled_mem: regs[0],
        mapped_mem: sentinel(regs[1]),
        group_num: u16::try_from((regs[2] >> 16) & 0xFFFF).unwrap_or(0),
        pool_num: u16::try_from(regs[2] & 0xFFFF).unwrap_or(0),
        mem_weight: u8::try_from(r7 >> 56).unwrap_or(0),
        unallocated_mem_weight: u8::try_from((r7 >> 48) & 0xFF).unwrap_or(0),
        unallocated_entitlement: r7 & MPP_UNALLOCATED_ENTITLEMENT_MASK,
        pool_size: sentinel(regs[4]),
        loan_request: regs[5] as i64,
        backing_mem: regs[6],
    }
}

/// Packs an [`MppData`] into H_GET_MPP's r4..r12 (the inverse of [`decode_mpp`];
/// `unallocated_entitlement` is masked to its 48 bits).
pub fn encode_mpp(d: &MppData) -> [u64; 9] {
    let r6 = (u64::from(d.group_num) << 16) | u64::from(d.pool_num);
    let r7 = (u64::from(d.mem_weight) << 56)
        | (u64::from(d.unallocated_mem_weight) << 48)
        | (d.unallocated_entitlement & MPP_UNALLOCATED_ENTITLEMENT_MASK);
    [
        d.entitled_mem,
        d.mapped_mem.unwrap_or(MPP_NOT_APPLICABLE),
        r6,
        r7,
        d.pool_size.unwrap_or(MPP_NOT_APPLICABLE),
        d.loan_request as u64,
        d.backing_mem,
        0,
        0,
    ]
}

/// Decodes H_GET_MPP_X's r4..r8. Call only after a success status.
pub fn decode_mpp_x(regs: &[u64; 9]) -> MppXData {
    MppXData {
        coalesced_bytes: regs[0],
        pool_coalesced_bytes: regs[1],
        pool_purr_cycles: regs[2],
        pool_spurr_cycles: regs[3],
        pool_in_use_bytes: regs[4],
    }
}

/// Packs an [`MppXData`] into H_GET_MPP_X's r4..r12 (inverse of [`decode_mpp_x`]).
pub fn encode_mpp_x(d: &MppXData) -> [u64; 9] {
    [
        d.coalesced_bytes,
        d.pool_coalesced_bytes,
        d.pool_purr_cycles,
        d.pool_spurr_cycles,
        d.pool_in_use_bytes,
        0,
        0,
        0,
        0,
    ]
}

/// H_GET_MPP.
pub fn get_mpp(raw: &mut impl RawHcall) -> Result<MppData, HcallError> {
    let (status, regs) = call_values(raw, opcodes::H_GET_MPP, &[]);
    check("H_GET_MPP", status)?;
    Ok(decode_mpp(&regs))
}

/// H_GET_MPP_X.
pub fn get_mpp_x(raw: &mut impl RawHcall) -> Result<MppXData, HcallError> {
    let (status, regs) = call_values(raw, opcodes::H_GET_MPP_X, &[]);
    check("H_GET_MPP_X", status)?;
    Ok(decode_mpp_x(&regs))
}

/// Maps an H_SET_MPP status: H_SUCCESS → `Set`, H_CONSTRAINED → `Constrained`,
/// anything else → error.
pub fn set_mpp_outcome(status: HStatus) -> Result<SetMppOutcome, HcallError> {
    match status {
        HStatus::Success => Ok(SetMppOutcome::Set),
        HStatus::Constrained => Ok(SetMppOutcome::Constrained),
        other => Err(HcallError {
            call: "H_SET_MPP",
            status: other,
        }),
    }
}

/// H_SET_MPP(entitled bytes, weight).
pub fn set_mpp(
    raw: &mut impl RawHcall,
    entitled: u64,
    weight: u8,
) -> Result<SetMppOutcome, HcallError> {
    let (status, _) = call_values(raw, opcodes::H_SET_MPP, &[entitled, u64::from(weight)]);
    set_mpp_outcome(status)
}

/// H_PAGE_INIT(flags, dest, src): the raw form.
///
/// # Safety
///
/// `dest` (and `src` for a copy) is the real address of a 4 KiB page the caller
/// owns and nothing else uses while the hypervisor changes it: its contents (zero,
/// copy) or its CMO state (a page made Loaned may lose its contents, so nothing
/// may touch it until it is made Active again).
pub unsafe fn page_init(
    raw: &mut impl RawHcall,
    flags: PageInitFlags,
    dest: u64,
    src: u64,
) -> Result<(), HcallError> {
    // SAFETY: the caller owns `dest` and `src` as this function's contract says,
    // which is the contract of `RawHcall::hcall` for H_PAGE_INIT.
    let (status, _) = unsafe { raw.hcall(opcodes::H_PAGE_INIT, &[flags.bits(), dest, src]) };
    check("H_PAGE_INIT", status)
}

/// H_PAGE_INIT with only a page-state change for the 4 KiB page at `addr`.
///
/// # Safety
///
/// As [`page_init`] for `addr`: the caller owns the page, and after a change to
/// Loaned touches it no more until it is Active again.
pub unsafe fn set_page_state(
    raw: &mut impl RawHcall,
    addr: u64,
    state: PageState,
) -> Result<(), HcallError> {
    // SAFETY: the caller's contract is `page_init`'s for `addr`.
    unsafe { page_init(raw, state.flags(), addr, 0) }
}

/// H_PAGE_INIT(H_ZERO_PAGE) on the 4 KiB page at `addr`.
///
/// # Safety
///
/// As [`page_init`]: the caller owns the page and nothing reads it while it is
/// zeroed.
pub unsafe fn zero_page(raw: &mut impl RawHcall, addr: u64) -> Result<(), HcallError> {
    // SAFETY: the caller's contract is `page_init`'s for `addr`.
    unsafe { page_init(raw, PageInitFlags::ZERO_PAGE, addr, 0) }
}

/// H_PUT_TCE(liobn, ioba, tce).
///
/// # Safety
///
/// A TCE with permission bits lets the device behind `liobn` read or write the
/// real page it names: the caller owns that page for the device until the entry
/// is cleared (`tce` 0), and uses it only as the device's buffer meanwhile.
pub unsafe fn put_tce(
    raw: &mut impl RawHcall,
    liobn: u32,
    ioba: u64,
    tce: u64,
) -> Result<(), HcallError> {
    // SAFETY: the caller owns the page for the device, this function's contract.
    let (status, _) = unsafe { raw.hcall(opcodes::H_PUT_TCE, &[u64::from(liobn), ioba, tce]) };
    check("H_PUT_TCE", status)
}

/// H_GET_TCE(liobn, ioba) → the TCE (r4).
pub fn get_tce(raw: &mut impl RawHcall, liobn: u32, ioba: u64) -> Result<u64, HcallError> {
    let (status, regs) = call_values(raw, opcodes::H_GET_TCE, &[u64::from(liobn), ioba]);
    check("H_GET_TCE", status)?;
    Ok(regs[0])
}

/// H_SET_MODE resource 4: the byte order interrupts are taken in (LPCR\[ILE\] on
/// every processor of the partition).
pub const SET_MODE_RESOURCE_LE: u64 = 4;

/// H_SET_MODE(mflags, resource 4, 0, 0): interrupts are taken in `order` from
/// now on (mflags 1 little-endian, 0 big-endian). One call; PowerVM may answer
/// long-busy (the change is partition-wide), so the kernel makes it under the
/// retry policy ([`set_interrupt_order_retrying`]).
///
/// # Safety
///
/// Every interrupt vector the kernel has in place, and everything it calls,
/// runs in byte order `order` (the image's own), on every processor.
pub unsafe fn set_interrupt_order(
    raw: &mut impl RawHcall,
    order: ByteOrder,
) -> Result<(), HcallError> {
    let mflags = match order {
        ByteOrder::Big => 0,
        ByteOrder::Little => 1,
    };
    // SAFETY: resource 4 takes no address; the mode it sets is the caller's
    // contract.
    let (status, _) =
        unsafe { raw.hcall(opcodes::H_SET_MODE, &[mflags, SET_MODE_RESOURCE_LE, 0, 0]) };
    check("H_SET_MODE", status)
}

/// [`set_interrupt_order`] under the default retry policy: busy and long-busy
/// answers are waited out on `clock`.
///
/// # Safety
///
/// As [`set_interrupt_order`].
pub unsafe fn set_interrupt_order_retrying(
    raw: &mut impl RawHcall,
    clock: &mut impl Clock,
    order: ByteOrder,
) -> Result<(), HcallError> {
    // SAFETY: the caller's contract is `set_interrupt_order`'s.
    RetryPolicy::default().run(clock, || unsafe { set_interrupt_order(&mut *raw, order) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::Scripted;
    use proptest::prelude::*;

    fn regs(v: &[u64]) -> [u64; 9] {
        let mut r = [0; 9];
        r[..v.len()].copy_from_slice(v);
        r
    }

    #[test]
    fn set_mode_interrupt_order_and_long_busy() {
        let mut raw = Scripted::default();
        // SAFETY: a scripted fake; no memory is touched.
        unsafe { set_interrupt_order(&mut raw, ByteOrder::Little) }.unwrap();
        // SAFETY: a scripted fake; no memory is touched.
        unsafe { set_interrupt_order(&mut raw, ByteOrder::Big) }.unwrap();
        assert_eq!(
            raw.calls,
            [
                (opcodes::H_SET_MODE, alloc::vec![1, 4, 0, 0]),
                (opcodes::H_SET_MODE, alloc::vec![0, 4, 0, 0]),
            ]
        );
        // PowerVM may answer long-busy (10 ms hint): the retrying form waits and
        // calls again.
        let mut raw = Scripted::reply(HStatus::from_raw(9901), [0; 9]);
        let mut clock = crate::retry::tests::FakeClock::default();
        // SAFETY: a scripted fake; no memory is touched.
        unsafe { set_interrupt_order_retrying(&mut raw, &mut clock, ByteOrder::Little) }.unwrap();
        assert_eq!(raw.calls.len(), 2);
        assert_eq!(clock.delays, [10_000]);
        // A refusal is returned at once.
        let mut raw = Scripted::reply(HStatus::Parameter, [0; 9]);
        // SAFETY: a scripted fake; no memory is touched.
        let e = unsafe { set_interrupt_order_retrying(&mut raw, &mut clock, ByteOrder::Little) }
            .unwrap_err();
        assert_eq!((e.call, e.status), ("H_SET_MODE", HStatus::Parameter));
        assert_eq!(raw.calls.len(), 1);
    }

    #[test]
    fn get_mpp_unpacks_every_field() {
        let r = regs(&[
            67_108_864,
            4_792_320,
            0xDEAD_BEEF_8005_0000 | 0x0000_0000_0000_0007,
            0x802A_1234_5678_9ABC,
            3_221_225_472,
            0xFFFF_FFFF_FFFF_F000,
            1_001_492_480,
        ]);
        let mut raw = Scripted::reply(HStatus::Success, r);
        let d = get_mpp(&mut raw).unwrap();
        assert_eq!(raw.calls, [(opcodes::H_GET_MPP, alloc::vec![])]);
        assert_eq!(d.entitled_mem, 67_108_864);
        assert_eq!(d.mapped_mem, Some(4_792_320));
        // Only bits 31..0 of r6 count: group is bits 31..16, pool bits 15..0.
        assert_eq!(d.group_num, 0x8005);
        assert_eq!(d.pool_num, 7);
        assert_eq!(d.mem_weight, 0x80);
        assert_eq!(d.unallocated_mem_weight, 0x2A);
        assert_eq!(d.unallocated_entitlement, 0x1234_5678_9ABC);
        assert_eq!(d.pool_size, Some(3_221_225_472));
        assert_eq!(d.loan_request, -4096);
        assert_eq!(d.backing_mem, 1_001_492_480);
    }

    #[test]
    fn get_mpp_sentinels_and_extremes() {
        let r = regs(&[0, u64::MAX, 0xFFFF_FFFF, u64::MAX, u64::MAX, 1 << 63, 0]);
        let d = get_mpp(&mut Scripted::reply(HStatus::Success, r)).unwrap();
        assert_eq!(d.mapped_mem, None);
        assert_eq!(d.pool_size, None);
        assert_eq!(d.group_num, 0xFFFF);
        assert_eq!(d.pool_num, 0xFFFF);
        assert_eq!(d.mem_weight, 255);
        assert_eq!(d.unallocated_mem_weight, 255);
        assert_eq!(d.unallocated_entitlement, (1 << 48) - 1);
        assert_eq!(d.loan_request, i64::MIN);
        // A positive loan request stays positive.
        let r = regs(&[0, 0, 0, 0, 0, 36_864, 0]);
        let d = get_mpp(&mut Scripted::reply(HStatus::Success, r)).unwrap();
        assert_eq!(d.loan_request, 36_864);
        assert_eq!(d.mapped_mem, Some(0));
        assert_eq!(d.pool_size, Some(0));
    }

    #[test]
    fn get_mpp_failure_is_an_error_not_data() {
        for st in [
            HStatus::Function,
            HStatus::Busy,
            HStatus::Constrained,
            HStatus::Other(77),
            HStatus::from_raw(9901),
        ] {
            let mut raw = Scripted::reply(st, [0x55; 9]);
            assert_eq!(
                get_mpp(&mut raw),
                Err(HcallError {
                    call: "H_GET_MPP",
                    status: st
                })
            );
            let mut raw = Scripted::reply(st, [0x55; 9]);
            assert_eq!(get_mpp_x(&mut raw).unwrap_err().status, st);
        }
    }

    #[test]
    fn get_mpp_x_unpacks() {
        let d = get_mpp_x(&mut Scripted::reply(
            HStatus::Success,
            regs(&[1, 2, 3, 4, 5, 6, 7]),
        ))
        .unwrap();
        assert_eq!(
            d,
            MppXData {
                coalesced_bytes: 1,
                pool_coalesced_bytes: 2,
                pool_purr_cycles: 3,
                pool_spurr_cycles: 4,
                pool_in_use_bytes: 5
            }
        );
    }

    #[test]
    fn set_mpp_outcomes() {
        let mut raw = Scripted::reply(HStatus::Success, [0; 9]);
        assert_eq!(set_mpp(&mut raw, 64 << 20, 200), Ok(SetMppOutcome::Set));
        assert_eq!(
            raw.calls[0],
            (opcodes::H_SET_MPP, alloc::vec![64 << 20, 200])
        );
        let mut raw = Scripted::reply(HStatus::Constrained, [0; 9]);
        assert_eq!(set_mpp(&mut raw, 1, 1), Ok(SetMppOutcome::Constrained));
        for st in [
            HStatus::Parameter,
            HStatus::Busy,
            HStatus::Hardware,
            HStatus::Other(3),
        ] {
            let mut raw = Scripted::reply(st, [0; 9]);
            assert_eq!(
                set_mpp(&mut raw, 1, 1),
                Err(HcallError {
                    call: "H_SET_MPP",
                    status: st
                })
            );
        }
    }

    #[test]
    fn page_init_flags_and_arguments() {
        let mut raw = Scripted::default();
        // SAFETY: a scripted fake; no memory is touched.
        unsafe {
            set_page_state(&mut raw, 0x1000, PageState::Loaned).unwrap();
            set_page_state(&mut raw, 0x2000, PageState::Unused).unwrap();
            set_page_state(&mut raw, 0x3000, PageState::Active).unwrap();
            zero_page(&mut raw, 0x4000).unwrap();
        }
        let want: [(u64, [u64; 3]); 4] = [
            (opcodes::H_PAGE_INIT, [0x0000_000F_0000_0000, 0x1000, 0]),
            (opcodes::H_PAGE_INIT, [0x0000_000E_0000_0000, 0x2000, 0]),
            (opcodes::H_PAGE_INIT, [0x0000_0008_0000_0000, 0x3000, 0]),
            (opcodes::H_PAGE_INIT, [0x8000, 0x4000, 0]),
        ];
        for (got, (op, args)) in raw.calls.iter().zip(want) {
            assert_eq!(got.0, op);
            assert_eq!(got.1, args);
        }
        let mut raw = Scripted::reply(HStatus::Parameter, [0; 9]);
        assert_eq!(
            // SAFETY: a scripted fake; no memory is touched.
            unsafe { zero_page(&mut raw, 0x10) },
            Err(HcallError {
                call: "H_PAGE_INIT",
                status: HStatus::Parameter
            })
        );
    }

    #[test]
    fn tce_calls() {
        let mut raw = Scripted::default();
        // SAFETY: a scripted fake; no memory is touched.
        unsafe { put_tce(&mut raw, 0x7100_0002, 0x2000, 0x1234_5003) }.unwrap();
        assert_eq!(
            raw.calls[0],
            (
                opcodes::H_PUT_TCE,
                alloc::vec![0x7100_0002, 0x2000, 0x1234_5003]
            )
        );
        let mut raw = Scripted::reply(HStatus::Success, regs(&[0xABC3]));
        assert_eq!(get_tce(&mut raw, 5, 0x1000), Ok(0xABC3));
        assert_eq!(raw.calls[0], (opcodes::H_GET_TCE, alloc::vec![5, 0x1000]));
        let mut raw = Scripted::reply(HStatus::NotEnoughResources, [0; 9]);
        assert_eq!(
            // SAFETY: a scripted fake; no memory is touched.
            unsafe { put_tce(&mut raw, 1, 0, 3) }.unwrap_err().status,
            HStatus::NotEnoughResources
        );
        let mut raw = Scripted::reply(HStatus::Parameter, regs(&[9]));
        assert_eq!(get_tce(&mut raw, 1, 0).unwrap_err().call, "H_GET_TCE");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn mpp_round_trips(r4: u64, r5: u64, r6 in 0u64..=0xFFFF_FFFF, r7: u64, r8: u64, r9: u64, r10: u64) {
            let r = regs(&[r4, r5, r6, r7, r8, r9, r10]);
            let d = decode_mpp(&r);
            prop_assert_eq!(encode_mpp(&d), r);
            prop_assert_eq!(decode_mpp(&encode_mpp(&d)), d);
        }

        #[test]
        fn mpp_x_round_trips(a: u64, b: u64, c: u64, d: u64, e: u64) {
            let r = regs(&[a, b, c, d, e]);
            prop_assert_eq!(encode_mpp_x(&decode_mpp_x(&r)), r);
        }
    }
}
