//! [`Phyp`]: the [`Hypervisor`] of a real PowerVM partition, one typed hcall per method.
//!
//! Generic over [`RawHcall`] so the host tests drive it with a fake; on the target it
//! wraps `raw::sc1::Sc1`. No retrying here (see [`crate::retry`]). Its
//! [`Simulation`] side does nothing: PowerVM keeps its own time and notices touches by
//! itself, and the CMO fault counters live in the VPA, which the kernel owns.

use crate::calls;
use crate::hypervisor::{set_each, BackendKind, BatchError, CmoFaultStats, Hypervisor, Simulation};
use crate::page::PageState;
use crate::raw::RawHcall;
use crate::status::HcallError;

/// The real hypervisor behind a [`RawHcall`].
#[derive(Debug)]
pub struct Phyp<R: RawHcall> {
    raw: R,
}

impl<R: RawHcall> Phyp<R> {
    /// Wraps a raw hcall path.
    ///
    /// # Safety
    ///
    /// The [`Hypervisor`] methods are safe to call, so whoever builds a `Phyp`
    /// answers for the addresses its callers will pass: every page address given
    /// to `set_page_state(s)` or `zero_page`, and every page a `put_tce` entry
    /// names, is a 4 KiB page of the partition's memory that belongs to the
    /// caller of that method (the frame table's owner, for the balloon): nothing
    /// else uses a page while it is zeroed, a page made Loaned is not touched
    /// until it is Active again, and a page in a TCE is the device's until the
    /// entry is cleared.
    pub unsafe fn new(raw: R) -> Self {
        Phyp { raw }
    }

    /// The raw hcall path, to see what was called.
    #[cfg(any(test, feature = "fake"))]
    pub fn raw(&mut self) -> &mut R {
        &mut self.raw
    }
}

#[cfg(any(test, feature = "fake"))]
impl Phyp<crate::fake::Scripted> {
    /// Over a scripted fake, which answers from its queue and touches no memory,
    /// so any address is harmless.
    pub fn scripted(raw: crate::fake::Scripted) -> Self {
        Phyp { raw }
    }
}

impl<R: RawHcall> Hypervisor for Phyp<R> {
    crate::hypervisor_calls!(phyp);

    fn set_page_state(&mut self, addr: u64, state: PageState) -> Result<(), HcallError> {
        // SAFETY: the page belongs to this method's caller, the contract of
        // `Phyp::new`.
        unsafe { calls::set_page_state(&mut self.raw, addr, state) }
    }

    /// PAPR has no batched H_PAGE_INIT: one call per page.
    fn set_page_states(&mut self, addrs: &[u64], state: PageState) -> Result<(), BatchError> {
        set_each(self, addrs, state)
    }
}

impl<R: RawHcall> Simulation for Phyp<R> {
    fn kind(&self) -> BackendKind {
        BackendKind::Phyp
    }
    fn note_access(&mut self, _addr: u64) {}
    fn cmo_faults(&self) -> Option<CmoFaultStats> {
        None
    }
    fn advance(&mut self, _now_us: u64) {}
    /// No device holds reports behind the real hypervisor.
    fn wait_report(&mut self) -> Option<bool> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::Scripted;
    use crate::opcodes;
    use crate::page::PageInitFlags;
    use crate::status::HStatus;

    #[test]
    fn methods_make_the_matching_hcalls() {
        let mut regs = [0u64; 9];
        regs[5] = 0xFFFF_FFFF_FFFF_F000;
        regs[1] = u64::MAX;
        let mut raw = Scripted::reply(HStatus::Success, regs);
        raw.replies.push_back((HStatus::Function, [7; 9]));
        raw.replies.push_back((HStatus::Constrained, [0; 9]));
        raw.replies.push_back((HStatus::Parameter, [0; 9]));
        let mut hv = Phyp::scripted(raw);
        assert_eq!(hv.kind(), BackendKind::Phyp);
        let m = hv.get_mpp().unwrap();
        assert_eq!((m.loan_request, m.mapped_mem), (-4096, None));
        assert_eq!(hv.get_mpp_x().unwrap_err().status, HStatus::Function);
        assert_eq!(
            hv.set_mpp(1 << 26, 5),
            Ok(crate::SetMppOutcome::Constrained)
        );
        assert_eq!(
            hv.set_page_state(0x1000, PageState::Loaned),
            Err(HcallError {
                call: "H_PAGE_INIT",
                status: HStatus::Parameter
            })
        );
        hv.zero_page(0x2000).unwrap();
        hv.put_tce(3, 0x1000, 0x5003).unwrap();
        assert_eq!(hv.get_tce(3, 0x1000), Ok(0));
        hv.note_access(0x1000);
        hv.advance(1_000_000);
        assert_eq!(hv.cmo_faults(), None, "the counters are in the VPA");
        let ops: alloc::vec::Vec<u64> = hv.raw().calls.iter().map(|c| c.0).collect();
        assert_eq!(
            ops,
            [
                opcodes::H_GET_MPP,
                opcodes::H_GET_MPP_X,
                opcodes::H_SET_MPP,
                opcodes::H_PAGE_INIT,
                opcodes::H_PAGE_INIT,
                opcodes::H_PUT_TCE,
                opcodes::H_GET_TCE
            ]
        );
        assert_eq!(
            hv.raw().calls[3].1,
            [PageInitFlags::SET_LOANED.bits(), 0x1000, 0]
        );
    }

    #[test]
    fn a_batch_is_one_h_page_init_per_page_stopping_at_a_refusal() {
        let mut raw = Scripted::reply(HStatus::Success, [0; 9]);
        raw.replies.push_back((HStatus::Success, [0; 9]));
        raw.replies.push_back((HStatus::Hardware, [0; 9]));
        let mut hv = Phyp::scripted(raw);
        let e = hv
            .set_page_states(&[0x1000, 0x2000, 0x3000, 0x4000], PageState::Loaned)
            .unwrap_err();
        assert_eq!(
            e,
            crate::BatchError {
                done: 2,
                error: HcallError {
                    call: "H_PAGE_INIT",
                    status: HStatus::Hardware
                }
            }
        );
        let calls: alloc::vec::Vec<_> = hv.raw().calls.iter().map(|c| (c.0, c.1[1])).collect();
        assert_eq!(
            calls,
            [
                (opcodes::H_PAGE_INIT, 0x1000),
                (opcodes::H_PAGE_INIT, 0x2000),
                (opcodes::H_PAGE_INIT, 0x3000)
            ],
            "no call after the refusal"
        );
    }

    #[test]
    fn usable_as_a_trait_object() {
        let mut hv = Phyp::scripted(Scripted::default());
        let dynhv: &mut dyn crate::Backend = &mut hv;
        assert_eq!(dynhv.kind(), BackendKind::Phyp);
        assert!(dynhv.get_tce(1, 0).is_ok());
    }
}
