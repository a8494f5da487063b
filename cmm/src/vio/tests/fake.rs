//! A fake hypervisor (a TCE table, H_SET_MPP/H_GET_MPP with scripted replies,
//! injectable H_PUT_TCE failures) and a fake page source that knows which pages
//! are out.

use alloc::collections::{BTreeMap, BTreeSet};

use hcall::{
    BatchError, HStatus, HcallError, Hypervisor, MppData, MppXData, PageState, SetMppOutcome,
};

use crate::vio::PageSource;

/// What the next H_SET_MPP does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MppReply {
    /// H_SUCCESS: sets what was asked.
    Set,
    /// Fails with this status; nothing changes.
    Fail(HStatus),
    /// H_CONSTRAINED: sets this entitlement instead.
    Constrain(u64),
    /// H_CONSTRAINED, and the following H_GET_MPP fails.
    ConstrainUnknown(u64),
}

/// The fake hypervisor.
#[derive(Debug)]
pub struct FakeHv {
    /// (liobn, ioba) → TCE; cleared entries are removed.
    pub tces: BTreeMap<(u32, u64), u64>,
    /// H_PUT_TCE calls so far.
    pub put_tce_calls: u64,
    /// Call numbers (counted from 0) of H_PUT_TCE that fail with H_HARDWARE.
    pub fail_put_tce: BTreeSet<u64>,
    /// The partition's entitlement as the hypervisor knows it.
    pub entitled: u64,
    /// Its memory weight.
    pub weight: u8,
    /// What the next H_SET_MPP does.
    pub reply: MppReply,
    get_mpp_fails: bool,
}

impl FakeHv {
    pub fn new(entitled: u64) -> Self {
        FakeHv {
            tces: BTreeMap::new(),
            put_tce_calls: 0,
            fail_put_tce: BTreeSet::new(),
            entitled,
            weight: 128,
            reply: MppReply::Set,
            get_mpp_fails: false,
        }
    }

    /// Makes the `k`-th H_PUT_TCE from now fail.
    pub fn fail_in(&mut self, k: u64) {
        self.fail_put_tce.insert(self.put_tce_calls + k);
    }
}

fn err(call: &'static str, status: HStatus) -> HcallError {
    HcallError { call, status }
}

impl Hypervisor for FakeHv {
    fn get_mpp(&mut self) -> Result<MppData, HcallError> {
        if core::mem::take(&mut self.get_mpp_fails) {
            return Err(err("H_GET_MPP", HStatus::Hardware));
        }
        Ok(MppData {
            entitled_mem: self.entitled,
            mem_weight: self.weight,
            ..MppData::default()
        })
    }

    fn get_mpp_x(&mut self) -> Result<MppXData, HcallError> {
        Err(err("H_GET_MPP_X", HStatus::Function))
    }

    fn set_mpp(&mut self, entitled: u64, weight: u8) -> Result<SetMppOutcome, HcallError> {
        match core::mem::replace(&mut self.reply, MppReply::Set) {
            MppReply::Set => {
                self.entitled = entitled;
                self.weight = weight;
                Ok(SetMppOutcome::Set)
            }
            MppReply::Fail(status) => Err(err("H_SET_MPP", status)),
            MppReply::Constrain(granted) => {
                self.entitled = granted;
                Ok(SetMppOutcome::Constrained)
            }
            MppReply::ConstrainUnknown(granted) => {
                self.entitled = granted;
                self.get_mpp_fails = true;
                Ok(SetMppOutcome::Constrained)
            }
        }
    }

    fn set_page_state(&mut self, _addr: u64, _state: PageState) -> Result<(), HcallError> {
        Ok(())
    }

    fn zero_page(&mut self, _addr: u64) -> Result<(), HcallError> {
        Ok(())
    }

    fn put_tce(&mut self, liobn: u32, ioba: u64, tce: u64) -> Result<(), HcallError> {
        let n = self.put_tce_calls;
        self.put_tce_calls += 1;
        if self.fail_put_tce.remove(&n) {
            return Err(err("H_PUT_TCE", HStatus::Hardware));
        }
        if tce == 0 {
            self.tces.remove(&(liobn, ioba));
        } else {
            self.tces.insert((liobn, ioba), tce);
        }
        Ok(())
    }

    fn get_tce(&mut self, liobn: u32, ioba: u64) -> Result<u64, HcallError> {
        Ok(self.tces.get(&(liobn, ioba)).copied().unwrap_or(0))
    }

    fn set_page_states(&mut self, addrs: &[u64], state: PageState) -> Result<(), BatchError> {
        hcall::hypervisor::set_each(self, addrs, state)
    }
}

/// Pages at 0x1000_0000 upwards, at most `limit` out at once.
#[derive(Debug)]
pub struct FakePages {
    pub out: BTreeSet<u64>,
    pub limit: usize,
    next: u64,
    /// Calls to `alloc_page` so far.
    pub allocs: u64,
}

impl FakePages {
    pub fn new(limit: usize) -> Self {
        FakePages {
            out: BTreeSet::new(),
            limit,
            next: 0x1000_0000,
            allocs: 0,
        }
    }
}

impl PageSource for FakePages {
    fn alloc_page(&mut self) -> Option<u64> {
        self.allocs += 1;
        if self.out.len() >= self.limit {
            return None;
        }
        let p = self.next;
        self.next += 4096;
        self.out.insert(p);
        Some(p)
    }

    fn free_page(&mut self, addr: u64) {
        assert!(
            self.out.remove(&addr),
            "page {addr:#x} freed twice or never handed out"
        );
    }
}
