//! The [`Hypervisor`] and [`Simulation`] implementations of the model: CMO calls
//! answered from the model's state, TCE and zero-page calls passed to the real
//! hypervisor and watched; the model's time and the kernel's page touches.

use super::pages::Touch;
use super::{bytes, FailKind, PoolModel, FAULT_LATENCY_US, GROUP_NUM, POOL_NUM};
use hcall::calls::MPP_UNALLOCATED_ENTITLEMENT_MASK;
use hcall::hypervisor::{
    BackendKind, BatchError, CmoFaultStats, Hypervisor, SetMppOutcome, Simulation,
};
use hcall::mpp::{MppData, MppXData};
use hcall::page::{PageState, PAGE_SIZE};
use hcall::raw::RawHcall;
use hcall::status::{HStatus, HcallError};

/// TCE permission bits (read, write): a TCE with neither maps nothing.
const TCE_VALID: u64 = 0x3;

impl<R: RawHcall> PoolModel<R> {
    fn injected(&mut self, kind: FailKind) -> Result<(), HcallError> {
        match self.take_failure(kind) {
            Some(status) => Err(HcallError {
                call: kind.hcall(),
                status,
            }),
            None => Ok(()),
        }
    }

    /// The page index of a page-aligned address inside self's memory.
    fn page_index(&self, addr: u64) -> Option<usize> {
        if !addr.is_multiple_of(PAGE_SIZE) {
            return None;
        }
        usize::try_from(addr / PAGE_SIZE)
            .ok()
            .filter(|&i| i < self.pages.len())
    }

    fn touch(&mut self, i: usize) {
        match self.pages.touch(i) {
            Touch::Fault => {
                self.stats.cmo_faults = self.stats.cmo_faults.saturating_add(1);
                self.stats.cmo_fault_time_usec = self
                    .stats
                    .cmo_fault_time_usec
                    .saturating_add(FAULT_LATENCY_US);
                self.enforce_pool();
            }
            Touch::Loaned => {
                self.stats.loaned_touches = self.stats.loaned_touches.saturating_add(1);
            }
            Touch::Resident | Touch::OutOfRange => {}
        }
    }

    /// The H_GET_MPP answer: see the module doc of `model` for each field.
    /// Unallocated weight and I/O entitlement are what this partition could still
    /// add with H_SET_MPP: `255 − weight`, and (max entitlement − entitlement) in
    /// 4 KiB pages (LoPAR's unit).
    pub fn mpp_data(&self) -> MppData {
        let max_ent = self.max_entitled_pages();
        MppData {
            entitled_mem: bytes(self.me.entitled),
            mapped_mem: Some(self.mapped_bytes()),
            group_num: GROUP_NUM,
            pool_num: POOL_NUM,
            mem_weight: self.me.weight,
            unallocated_mem_weight: 255 - self.me.weight,
            unallocated_entitlement: max_ent.saturating_sub(self.me.entitled)
                & MPP_UNALLOCATED_ENTITLEMENT_MASK,
            pool_size: Some(self.pool_bytes()),
            loan_request: self.loan_request_bytes(),
            backing_mem: self.resident_bytes(),
        }
    }
}

impl<R: RawHcall> Hypervisor for PoolModel<R> {
    fn get_mpp(&mut self) -> Result<MppData, HcallError> {
        self.injected(FailKind::GetMpp)?;
        Ok(self.mpp_data())
    }

    /// Coalescing is not modelled: zeros, except the pool bytes in use (every
    /// partition's resident memory).
    fn get_mpp_x(&mut self) -> Result<MppXData, HcallError> {
        self.injected(FailKind::GetMppX)?;
        Ok(MppXData {
            pool_in_use_bytes: self
                .others_allotment_bytes()
                .saturating_add(self.resident_bytes()),
            ..MppXData::default()
        })
    }

    /// Entitlement 0 or not whole pages: H_PARAMETER, nothing changes. Otherwise the
    /// entitlement is clamped to `[min(4 MiB, L), min(L, pool − others' entitlements)]`
    /// (H_CONSTRAINED if it had to be) and set with the weight.
    fn set_mpp(&mut self, entitled: u64, weight: u8) -> Result<SetMppOutcome, HcallError> {
        if let Some(status) = self.take_failure(FailKind::SetMpp) {
            return match status {
                HStatus::Constrained => Ok(SetMppOutcome::Constrained),
                status => Err(HcallError {
                    call: "H_SET_MPP",
                    status,
                }),
            };
        }
        if entitled == 0 || !entitled.is_multiple_of(PAGE_SIZE) {
            return Err(HcallError {
                call: "H_SET_MPP",
                status: HStatus::Parameter,
            });
        }
        let want = entitled / PAGE_SIZE;
        let max = self.max_entitled_pages();
        let min = (super::MIN_ENTITLED / PAGE_SIZE).min(max);
        let got = want.clamp(min, max);
        self.me.entitled = got;
        self.me.weight = weight;
        self.after_change();
        Ok(if got == want {
            SetMppOutcome::Set
        } else {
            SetMppOutcome::Constrained
        })
    }

    /// Unaligned or beyond memory: H_PARAMETER. No call reaches the real hypervisor
    /// (QEMU/TCG would refuse the state bits).
    fn set_page_state(&mut self, addr: u64, state: PageState) -> Result<(), HcallError> {
        self.injected(FailKind::PageInit)?;
        let i = self.page_index(addr).ok_or(HcallError {
            call: "H_PAGE_INIT",
            status: HStatus::Parameter,
        })?;
        if self.pages.set_state(i, state) {
            self.enforce_pool();
        }
        Ok(())
    }

    /// The batch in one pass: each page is checked (and an injected failure
    /// consumed) as a single call would be, and stops the batch at the first
    /// refusal. A page that became resident pages others out only when the
    /// pool is over its limit, as after a single call: which pages go out
    /// depends on the states at that moment (an Unused page goes before an
    /// Active one), so the check cannot wait for the end of the batch.
    fn set_page_states(&mut self, addrs: &[u64], state: PageState) -> Result<(), BatchError> {
        let limit = self.pool_limit();
        let mut result = Ok(());
        // Injected failures are looked for only while one is pending.
        let injecting = self.pending_failures(FailKind::PageInit).is_some();
        for (done, &addr) in addrs.iter().enumerate() {
            let injected = if injecting {
                self.injected(FailKind::PageInit)
            } else {
                Ok(())
            };
            let index = injected.and_then(|()| {
                self.page_index(addr).ok_or(HcallError {
                    call: "H_PAGE_INIT",
                    status: HStatus::Parameter,
                })
            });
            match index {
                Ok(i) => {
                    if self.pages.set_state(i, state) && self.pages.resident() > limit {
                        self.enforce_pool();
                    }
                }
                Err(error) => {
                    result = Err(BatchError { done, error });
                    break;
                }
            }
        }
        result
    }

    /// Passed through; a paged-out page that is zeroed is backed again (no fault).
    fn zero_page(&mut self, addr: u64) -> Result<(), HcallError> {
        self.injected(FailKind::PageInit)?;
        self.real.zero_page(addr)?;
        if let Some(i) = self.page_index(addr) {
            if self.pages.fill(i) {
                self.enforce_pool();
            }
        }
        Ok(())
    }

    /// Passed through, and the model counts the mapping: a new valid TCE that would
    /// take the mapped bytes past the entitlement gets H_NOT_ENOUGH_RESOURCES without
    /// a call; mapping a paged-out page of self faults it in.
    fn put_tce(&mut self, liobn: u32, ioba: u64, tce: u64) -> Result<(), HcallError> {
        self.injected(FailKind::PutTce)?;
        let key = (liobn, ioba / PAGE_SIZE);
        let valid = tce & TCE_VALID != 0;
        if valid && !self.tces.contains(&key) {
            let after = bytes((self.tces.len() as u64).saturating_add(1));
            if after > bytes(self.me.entitled) {
                return Err(HcallError {
                    call: "H_PUT_TCE",
                    status: HStatus::NotEnoughResources,
                });
            }
        }
        self.real.put_tce(liobn, ioba, tce)?;
        if valid {
            self.tces.insert(key);
            if let Some(i) = self.page_index(tce & !(PAGE_SIZE - 1)) {
                self.touch(i);
            }
        } else {
            self.tces.remove(&key);
        }
        Ok(())
    }

    fn get_tce(&mut self, liobn: u32, ioba: u64) -> Result<u64, HcallError> {
        self.injected(FailKind::GetTce)?;
        self.real.get_tce(liobn, ioba)
    }
}

impl<R: RawHcall> Simulation for PoolModel<R> {
    fn kind(&self) -> BackendKind {
        BackendKind::Model
    }

    /// A touch of a paged-out page is a CMO fault ([`FAULT_LATENCY_US`] each) and
    /// brings it back Active; touching a loaned page is only counted.
    fn note_access(&mut self, addr: u64) {
        if let Some(i) = self.page_index(addr & !(PAGE_SIZE - 1)) {
            self.touch(i);
        }
    }

    fn cmo_faults(&self) -> Option<CmoFaultStats> {
        Some(CmoFaultStats {
            faults: self.stats.cmo_faults,
            fault_time_usec: self.stats.cmo_fault_time_usec,
        })
    }

    fn advance(&mut self, now_us: u64) {
        self.advance_to(now_us);
    }

    /// The model holds no device: a virtio balloon in front of it
    /// (`VirtioBacked`) answers for its own.
    fn wait_report(&mut self) -> Option<bool> {
        None
    }
}
