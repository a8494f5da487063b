//! The decorator with a fake model and a fake device: what the device holds is
//! always what the model holds as loaned (after a flush), a returned page is out of
//! the device before the call returns, and host mode follows `num_pages`.

use super::*;
use crate::virtio_balloon::{Queue, PFNS_PER_BUFFER};
use hcall::fake::{call_every_method, Recorder, EVERY_METHOD};
use hcall::HStatus;
use std::collections::{BTreeMap, BTreeSet};
use std::vec::Vec;

/// A model that keeps page states and a target; `refuse` makes H_PAGE_INIT fail.
#[derive(Default)]
struct FakePool {
    pages: BTreeMap<u64, PageState>,
    targets: Vec<Option<u64>>,
    refuse: bool,
    /// Accept this many more page states, then refuse.
    accept: Option<usize>,
    advanced: Vec<u64>,
}

impl Hypervisor for FakePool {
    hcall::hypervisor_calls!(succeed);

    fn set_page_state(&mut self, addr: u64, state: PageState) -> Result<(), HcallError> {
        if let Some(n) = self.accept.as_mut() {
            if *n == 0 {
                self.refuse = true;
            } else {
                *n -= 1;
            }
        }
        if self.refuse {
            return Err(HcallError {
                call: "H_PAGE_INIT",
                status: HStatus::Parameter,
            });
        }
        self.pages.insert(addr, state);
        Ok(())
    }
    fn set_page_states(&mut self, addrs: &[u64], state: PageState) -> Result<(), BatchError> {
        hcall::hypervisor::set_each(self, addrs, state)
    }
}

impl Simulation for FakePool {
    fn kind(&self) -> BackendKind {
        BackendKind::Model
    }
    fn note_access(&mut self, _: u64) {}
    fn cmo_faults(&self) -> Option<CmoFaultStats> {
        None
    }
    fn advance(&mut self, now_us: u64) {
        self.advanced.push(now_us);
    }
    fn wait_report(&mut self) -> Option<bool> {
        None
    }
}

impl ModelledPool for FakePool {
    type Error = &'static str;
    fn is_loaned(&self, addr: u64) -> bool {
        self.pages.get(&addr) == Some(&PageState::Loaned)
    }
    fn logical_bytes(&self) -> u64 {
        512 << 20
    }
    fn set_loan_target(&mut self, bytes: Option<u64>) -> Result<(), &'static str> {
        self.targets.push(bytes);
        Ok(())
    }
}

/// A device that holds what it was given and refuses a deflate of a page it
/// does not hold.
#[derive(Default)]
struct FakeDevice {
    held: BTreeSet<u32>,
    buffers: Vec<(Queue, usize)>,
    actual: Vec<u32>,
    /// `(buffers, held)` at every `actual` write.
    actual_after: Vec<(usize, usize)>,
    num_pages: u32,
    fail: bool,
}

impl BalloonTransport for FakeDevice {
    type Error = &'static str;
    fn send(&mut self, q: Queue, pfns: &[u32]) -> Result<(), &'static str> {
        if self.fail {
            return Err("device gone");
        }
        for &p in pfns {
            match q {
                Queue::Inflate => assert!(self.held.insert(p), "pfn {p} inflated twice"),
                Queue::Deflate => assert!(self.held.remove(&p), "pfn {p} deflated, not held"),
            }
        }
        self.buffers.push((q, pfns.len()));
        Ok(())
    }
    fn write_actual(&mut self, pages: u32) {
        self.actual.push(pages);
        self.actual_after
            .push((self.buffers.len(), self.held.len()));
    }
    fn num_pages(&self) -> u32 {
        self.num_pages
    }
}

impl ModelledPool for Recorder {
    type Error = &'static str;
    fn is_loaned(&self, addr: u64) -> bool {
        self.loaned.contains(&addr)
    }
    fn logical_bytes(&self) -> u64 {
        512 << 20
    }
    fn set_loan_target(&mut self, _: Option<u64>) -> Result<(), &'static str> {
        Ok(())
    }
}

#[test]
fn every_method_reaches_the_model_once() {
    let mut b = VirtioBacked::new(Recorder::default(), FakeDevice::default());
    b.follow_model();
    call_every_method(&mut b);
    assert_eq!(b.inner().log(), EVERY_METHOD);
    // The loans went to the device too (the last one at `advance`'s flush).
    assert_eq!(b.device().held.len(), 3);
}

fn backed() -> VirtioBacked<FakePool, FakeDevice> {
    VirtioBacked::new(FakePool::default(), FakeDevice::default())
}

const fn addr(pfn: u32) -> u64 {
    (pfn as u64) * 4096
}

#[test]
fn loaned_pages_are_inflated_in_buffers_of_256() {
    let mut b = backed();
    for pfn in 0..300 {
        b.set_page_state(addr(pfn), PageState::Loaned).unwrap();
    }
    assert_eq!(b.device().buffers, [(Queue::Inflate, PFNS_PER_BUFFER)]);
    assert_eq!(b.balloon().pending(), 44);
    // Background time sends the rest and writes `actual`.
    b.advance(10);
    assert_eq!(b.inner().advanced, [10]);
    assert_eq!(b.device().held.len(), 300);
    assert_eq!(b.device().actual.last(), Some(&300));
}

#[test]
fn returned_pages_leave_the_device_before_the_call_returns() {
    let mut b = backed();
    for pfn in 0..256 {
        b.set_page_state(addr(pfn), PageState::Loaned).unwrap();
    }
    assert!(b.device().held.contains(&7));
    b.set_page_state(addr(7), PageState::Active).unwrap();
    assert!(
        !b.device().held.contains(&7),
        "reused while the host holds it"
    );
    b.set_page_state(addr(8), PageState::Unused).unwrap();
    assert!(!b.device().held.contains(&8));
    b.sync();
    assert_eq!(b.device().actual.last(), Some(&254));
    // A page still pending is withdrawn, never sent.
    b.set_page_state(addr(1000), PageState::Loaned).unwrap();
    b.set_page_state(addr(1000), PageState::Active).unwrap();
    b.sync();
    assert!(!b.device().held.contains(&1000));
    assert_eq!(b.balloon().stats().pending_withdrawn, 1);
}

#[test]
fn hints_on_pages_that_were_not_loaned_touch_no_device() {
    let mut b = backed();
    b.set_page_state(addr(1), PageState::Unused).unwrap();
    b.set_page_state(addr(1), PageState::Active).unwrap();
    b.sync();
    assert!(b.device().buffers.is_empty());
    assert_eq!(b.inner().pages.get(&addr(1)), Some(&PageState::Active));
}

#[test]
fn a_refused_page_state_sends_nothing() {
    let mut b = backed();
    b.inner_mut().refuse = true;
    let e = b.set_page_state(addr(3), PageState::Loaned).unwrap_err();
    assert_eq!(e.status, HStatus::Parameter);
    b.sync();
    assert!(b.device().buffers.is_empty());
    assert!(b.device().held.is_empty());
}

#[test]
fn host_mode_applies_a_changed_num_pages_once() {
    let mut b = backed();
    b.dev.num_pages = 1000;
    b.sync();
    b.sync();
    assert_eq!(b.inner().targets, [Some(1000 * 4096)]);
    // More than the partition has is capped at its memory.
    b.dev.num_pages = u32::MAX;
    b.sync();
    assert_eq!(b.inner().targets.last(), Some(&Some(512 << 20)));
    // `hv target` takes the target over: num_pages no longer counts.
    b.follow_model();
    b.dev.num_pages = 5;
    b.sync();
    assert_eq!(b.inner().targets.len(), 2);
    // `hv host` applies the current num_pages at the next sync.
    b.follow_host();
    b.sync();
    assert_eq!(b.inner().targets.last(), Some(&Some(5 * 4096)));
}

#[test]
fn a_failing_device_is_dropped_and_the_model_goes_on() {
    let mut b = backed();
    b.dev.fail = true;
    for pfn in 0..256 {
        b.set_page_state(addr(pfn), PageState::Loaned).unwrap();
    }
    assert!(b.is_broken());
    assert_eq!(b.balloon().stats().errors, 1);
    b.dev.fail = false;
    b.set_page_state(addr(0), PageState::Active).unwrap();
    b.dev.num_pages = 77;
    b.sync();
    assert!(b.device().buffers.is_empty(), "a broken device is not used");
    assert!(b.inner().targets.is_empty());
    assert_eq!(b.inner().pages.get(&addr(0)), Some(&PageState::Active));
}

#[test]
fn random_loans_and_returns_keep_the_device_equal_to_the_loans() {
    let mut b = backed();
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    for i in 0..20_000u32 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let pfn = (x % 1500) as u32;
        let state = match x % 3 {
            0 => PageState::Loaned,
            1 => PageState::Active,
            _ => PageState::Unused,
        };
        let before = b.inner().is_loaned(addr(pfn));
        b.set_page_state(addr(pfn), state).unwrap();
        if before && state != PageState::Loaned {
            assert!(
                !b.device().held.contains(&pfn),
                "step {i}: pfn {pfn} still held"
            );
        }
        if i % 500 == 0 {
            b.sync();
        }
    }
    b.sync();
    let loaned: BTreeSet<u32> = b
        .inner()
        .pages
        .iter()
        .filter(|(_, s)| **s == PageState::Loaned)
        .map(|(a, _)| u32::try_from(a / 4096).unwrap())
        .collect();
    assert_eq!(b.device().held, loaned);
    assert_eq!(b.balloon().inflated() as usize, loaned.len());
    assert_eq!(
        b.device().actual.last().copied(),
        Some(b.balloon().inflated())
    );
}

#[test]
fn rows_name_the_backing_and_the_source() {
    let mut b = backed();
    b.dev.num_pages = 9;
    b.set_page_state(addr(1), PageState::Loaned).unwrap();
    let mut s = String::new();
    b.render(&mut s);
    assert!(s.contains("backing: virtio-balloon\n"));
    assert!(s.contains("mode_source: host\n"));
    assert!(s.contains("device_num_pages: 9\n"));
    assert!(s.contains("device_pending: 1\n"));
    b.follow_model();
    let mut s = String::new();
    b.render(&mut s);
    assert!(s.contains("mode_source: model\n"));
    let mut s = String::new();
    render_unbacked(&mut s);
    assert_eq!(s, "backing: none\nmode_source: model\n");
}

#[test]
fn a_batch_sends_256_pfns_per_buffer_and_actual_once_per_background_pass() {
    let mut b = backed();
    let addrs: Vec<u64> = (0..600).map(addr).collect();
    b.set_page_states(&addrs, PageState::Loaned).unwrap();
    assert!(b.device().actual.is_empty(), "actual waits for the pass");
    b.sync();
    assert_eq!(
        b.device().buffers,
        [
            (Queue::Inflate, 256),
            (Queue::Inflate, 256),
            (Queue::Inflate, 88)
        ]
    );
    assert_eq!(
        b.device().actual,
        [600],
        "once, after every buffer was used"
    );
    assert_eq!(b.device().actual_after, [(3, 600)]);
    // The return: 600 pages in three deflate buffers, all used before the
    // call returns; `actual` at the next pass.
    b.set_page_states(&addrs, PageState::Active).unwrap();
    assert!(
        b.device().held.is_empty(),
        "every page was deflated (its buffer used) before the call returned"
    );
    assert_eq!(
        &b.device().buffers[3..],
        [
            (Queue::Deflate, 256),
            (Queue::Deflate, 256),
            (Queue::Deflate, 88)
        ]
    );
    b.sync();
    b.sync();
    assert_eq!(&b.device().actual[1..], [0], "unchanged: not written again");
    assert_eq!(&b.device().actual_after[1..], [(6, 0)]);
}

#[test]
fn a_batch_return_skips_pages_that_were_not_loaned_and_withdraws_pending_ones() {
    let mut b = backed();
    let addrs: Vec<u64> = (0..300).map(addr).collect();
    b.set_page_states(&addrs, PageState::Loaned).unwrap();
    // 256 sent, 44 pending. Return 250..310: 6 sent, 44 pending, 10 never loaned.
    let back: Vec<u64> = (250..310).map(addr).collect();
    b.set_page_states(&back, PageState::Unused).unwrap();
    assert_eq!(
        b.device().buffers,
        [(Queue::Inflate, 256), (Queue::Deflate, 6)]
    );
    assert_eq!(b.balloon().pending(), 0);
    assert_eq!(b.balloon().stats().pending_withdrawn, 44);
    assert_eq!(b.device().held.len(), 250);
    b.sync();
    assert_eq!(b.device().actual.last(), Some(&250));
}

#[test]
fn a_batch_refused_part_way_moves_only_the_accepted_pages() {
    let mut b = backed();
    let addrs: Vec<u64> = (0..512).map(addr).collect();
    b.set_page_states(&addrs, PageState::Loaned).unwrap();
    b.inner_mut().accept = Some(300);
    let e = b.set_page_states(&addrs, PageState::Active).unwrap_err();
    assert_eq!(e.done, 300);
    assert_eq!(e.error.status, HStatus::Parameter);
    let held: Vec<u32> = b.device().held.iter().copied().collect();
    assert_eq!(
        held,
        (300..512).collect::<Vec<u32>>(),
        "the refused pages stay loaned and held"
    );
    assert_eq!(b.balloon().inflated(), 212);
}
