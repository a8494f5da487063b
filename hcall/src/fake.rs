//! Fakes for host tests: [`Recorder`], a [`Backend`] that records every method
//! called on it, for testing code that wraps a backend (a decorator such as
//! [`crate::Retrying`]) or calls one; [`Scripted`], a [`RawHcall`] that answers from a
//! queue and records the calls, for testing code that makes raw hcalls.
//!
//! Built with the `fake` feature (and in this crate's own tests). A decorator's test
//! puts a [`Recorder`] under it, runs [`call_every_method`] on the decorator and
//! compares the recorder's log with [`EVERY_METHOD`]: a method the decorator answers
//! itself, or sends to a different method underneath, shows as a difference.
//!
//! ```
//! use hcall::fake::{call_every_method, Recorder, EVERY_METHOD};
//! use hcall::retry::Clock;
//! use hcall::Retrying;
//!
//! struct NoClock;
//! impl Clock for NoClock {
//!     fn now_us(&self) -> u64 { 0 }
//!     fn delay_us(&mut self, _: u64) {}
//! }
//! let mut r = Retrying::new(Recorder::default(), NoClock);
//! call_every_method(&mut r);
//! assert_eq!(r.inner().log(), EVERY_METHOD);
//! ```

use alloc::collections::{BTreeSet, VecDeque};
use alloc::vec::Vec;
use core::cell::RefCell;

use crate::hypervisor::{BackendKind, BatchError, CmoFaultStats, Hypervisor, Simulation};
use crate::page::PageState;
use crate::raw::RawHcall;
use crate::status::{HStatus, HcallError};
use crate::Backend;

/// Replies from a queue (default: H_SUCCESS with zero registers) and records calls.
#[derive(Debug, Default)]
pub struct Scripted {
    /// The replies still to give, in order.
    pub replies: VecDeque<(HStatus, [u64; 9])>,
    /// Every call made: opcode and arguments.
    pub calls: Vec<(u64, Vec<u64>)>,
}

impl Scripted {
    /// A fake whose first call gets `status` and `regs`.
    pub fn reply(status: HStatus, regs: [u64; 9]) -> Self {
        let mut s = Self::default();
        s.replies.push_back((status, regs));
        s
    }
}

impl RawHcall for Scripted {
    /// Records the call; touches no memory, whatever the arguments say.
    unsafe fn hcall(&mut self, opcode: u64, args: &[u64]) -> (HStatus, [u64; 9]) {
        self.calls.push((opcode, args.to_vec()));
        self.replies
            .pop_front()
            .unwrap_or((HStatus::Success, [0; 9]))
    }
}

crate::hypervisor_calls!(every);

/// The H_GET_MPP figures of the seed lparcfg the tests of several crates print
/// and check (a partition with 64 MiB entitled in a 3 GiB pool, 9 pages asked
/// back).
pub fn seed_mpp() -> crate::MppData {
    crate::MppData {
        entitled_mem: 67_108_864,
        mapped_mem: Some(4_792_320),
        group_num: 32773,
        pool_num: 0,
        mem_weight: 128,
        unallocated_mem_weight: 0,
        unallocated_entitlement: 0,
        pool_size: Some(3_221_225_472),
        loan_request: -36_864,
        backing_mem: 1_001_492_480,
    }
}

/// A backend that logs each method called and answers from a script: each hcall
/// (and each page of a batch) takes the next status of [`Recorder::fail`], if any,
/// and fails with it; otherwise it succeeds. Loaned pages are kept, so a caller's
/// page bookkeeping can be checked against it.
#[derive(Debug)]
pub struct Recorder {
    log: RefCell<Vec<&'static str>>,
    /// Statuses the next calls fail with, in order.
    pub fail: VecDeque<HStatus>,
    /// The pages the recorder holds as loaned.
    pub loaned: BTreeSet<u64>,
    /// What [`Simulation::kind`] answers.
    pub kind: BackendKind,
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder {
            log: RefCell::new(Vec::new()),
            fail: VecDeque::new(),
            loaned: BTreeSet::new(),
            kind: BackendKind::Model,
        }
    }
}

impl Recorder {
    /// The methods called so far, in order.
    pub fn log(&self) -> Vec<&'static str> {
        self.log.borrow().clone()
    }

    /// Forgets the log.
    pub fn clear_log(&mut self) {
        self.log.get_mut().clear();
    }

    fn note(&self, method: &'static str) {
        self.log.borrow_mut().push(method);
    }

    fn answer(&mut self, method: &'static str, call: &'static str) -> Result<(), HcallError> {
        self.note(method);
        self.take(call)
    }

    fn take(&mut self, call: &'static str) -> Result<(), HcallError> {
        match self.fail.pop_front() {
            Some(status) if !status.is_success() => Err(HcallError { call, status }),
            _ => Ok(()),
        }
    }

    fn apply(&mut self, addr: u64, state: PageState) {
        if state == PageState::Loaned {
            self.loaned.insert(addr);
        } else {
            self.loaned.remove(&addr);
        }
    }
}

impl Hypervisor for Recorder {
    crate::hypervisor_calls!(recorder);

    fn set_page_state(&mut self, addr: u64, state: PageState) -> Result<(), HcallError> {
        self.answer("set_page_state", "H_PAGE_INIT")?;
        self.apply(addr, state);
        Ok(())
    }
    fn set_page_states(&mut self, addrs: &[u64], state: PageState) -> Result<(), BatchError> {
        self.note("set_page_states");
        for (done, &addr) in addrs.iter().enumerate() {
            self.take("H_PAGE_INIT")
                .map_err(|error| BatchError { done, error })?;
            self.apply(addr, state);
        }
        Ok(())
    }
}

impl Simulation for Recorder {
    fn kind(&self) -> BackendKind {
        self.note("kind");
        self.kind
    }
    fn note_access(&mut self, _addr: u64) {
        self.note("note_access");
    }
    fn cmo_faults(&self) -> Option<CmoFaultStats> {
        self.note("cmo_faults");
        Some(CmoFaultStats::default())
    }
    fn advance(&mut self, _now_us: u64) {
        self.note("advance");
    }
    fn wait_report(&mut self) -> Option<bool> {
        self.note("wait_report");
        None
    }
}
