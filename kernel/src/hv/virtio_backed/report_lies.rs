//! The reporting queue behind the same used-ring check as the inflate and
//! deflate queues: the memory manager's reports go to a fake device in host
//! memory that tells one lie each on the reporting queue. Each test asserts
//! that the report's blocks came back free and unreported (no frame lost or
//! left held), that the device was stopped with the error counted once and
//! got nothing more, and that the model's books stand.

use super::*;
use crate::virtio_balloon::fake::{device_with, FakeRegs, Lie};
use crate::virtio_balloon::ring::{DeviceError, DeviceRegs, RingBalloon};
use crate::virtio_balloon::used::Violation;
use cmm::{FrameTable, FreeReporter, Mm, Params, Region};
use hcall::HStatus;

struct Quiet;

impl hcall::RawHcall for Quiet {
    /// Touches no memory.
    unsafe fn hcall(&mut self, _: u64, _: &[u64]) -> (HStatus, [u64; 9]) {
        (HStatus::Success, [0; 9])
    }
}

/// 64 MiB: 32 whole 2 MiB blocks, all free.
const FRAMES: u64 = 16384;
const BLOCKS: u64 = FRAMES / 512;

type Backed = VirtioBacked<PoolModel<Quiet>, RingBalloon<'static, FakeRegs>>;

fn setup(lie: Lie) -> (Mm, Backed) {
    let frames = FrameTable::new(
        &[Region {
            start_pfn: 0,
            count: FRAMES,
        }],
        &[],
    )
    .unwrap();
    let mm = Mm::new(frames, Params::default());
    // SAFETY: `Quiet` touches no memory, so no address passed through matters.
    let real = unsafe { hcall::Phyp::new(Quiet) };
    let model = PoolModel::new(real, FRAMES * 4096).unwrap();
    let mut v = VirtioBacked::new(model, device_with(lie, true, true));
    v.follow_model();
    (mm, v)
}

/// Nothing lost: every frame free, none held, none reported, the table's
/// own check passes.
fn all_free_none_reported(mm: &Mm) {
    let c = mm.frames().counts();
    assert_eq!(c.free, FRAMES, "{c:?}");
    assert_eq!(c.reporting, 0);
    assert_eq!(mm.frames().report_counts().reported_blocks, 0);
    assert_eq!(mm.frames().check(), Ok(()));
}

#[test]
fn an_honest_device_gets_every_whole_free_block_once() {
    let (mut mm, mut v) = setup(Lie::Honest);
    // The fake uses a report inside the notify, as QEMU does under TCG: the
    // same step sees it used.
    let step = mm.report_step(v.device_mut(), 1);
    assert_eq!((step.started, step.finished), (1, 1));
    v.sync();
    assert!(!v.is_broken());
    let reports = &v.device().regs().reports;
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].len() as u64, BLOCKS, "one range per 2 MiB block");
    assert!(reports[0]
        .iter()
        .all(|&(a, l)| a % (2 << 20) == 0 && l == 2 << 20));
    assert_eq!(mm.frames().report_counts().reported_blocks, BLOCKS);
    assert_eq!(mm.frames().counts().free, FRAMES);
    // Nothing new: nothing is reported again.
    mm.report_step(v.device_mut(), 1);
    assert_eq!(v.device().regs().reports.len(), 1);
}

/// Starts a report, lets the device lie, then the background pass: what every
/// lie must leave behind.
fn lie_on_the_reporting_queue(lie: Lie, expect: DeviceError) {
    let (mut mm, mut v) = setup(lie);
    assert_eq!(mm.report_step(v.device_mut(), 1).started, 1);
    // The next passes: the report is finished as failed (or, for a duplicate,
    // the lie is seen between reports) and the device is stopped.
    for _ in 0..3 {
        mm.report_step(v.device_mut(), 1);
        v.sync();
    }
    assert!(v.is_broken(), "the device is still used");
    assert_eq!(v.device().stopped(), Some(expect));
    assert_eq!(v.balloon().stats().errors, 1, "counted once");
    assert!(!mm.report_in_flight());
    let notifies = v.device().regs().notifies;
    assert_eq!(v.device().max_ranges(), 0);
    mm.report_step(v.device_mut(), 1);
    assert_eq!(v.device().regs().notifies, notifies, "the device got more");
    assert_eq!(v.inner().loaned_bytes(), 0);
    assert_eq!(
        v.inner().resident_bytes() + v.inner().paged_out_bytes(),
        FRAMES * 4096
    );
    if lie != Lie::SameIdTwice {
        all_free_none_reported(&mm);
    } else {
        // The report was used honestly before the duplicate entry: its
        // blocks are reported, and free.
        assert_eq!(mm.frames().counts().free, FRAMES);
        assert_eq!(mm.frames().check(), Ok(()));
    }
}

#[test]
fn a_report_used_under_an_id_never_made_available() {
    lie_on_the_reporting_queue(
        Lie::UnknownId,
        DeviceError::ReportViolation(Violation::UnknownId(7)),
    );
}

#[test]
fn a_report_length_beyond_the_chain() {
    let len = u32::try_from(BLOCKS * (2 << 20)).unwrap();
    lie_on_the_reporting_queue(
        Lie::LenBeyondBuffer,
        DeviceError::ReportViolation(Violation::LenBeyondBuffer {
            len: len + 1,
            buffer: len,
        }),
    );
}

#[test]
fn a_used_index_past_the_ring_on_the_reporting_queue() {
    lie_on_the_reporting_queue(
        Lie::IndexJump,
        DeviceError::ReportViolation(Violation::IndexJump {
            expected: 1,
            got: 301,
        }),
    );
}

#[test]
fn a_report_returned_twice() {
    lie_on_the_reporting_queue(
        Lie::SameIdTwice,
        DeviceError::ReportViolation(Violation::NothingInFlight {
            id: 0,
            repeated: true,
        }),
    );
}

#[test]
fn a_report_never_used_times_out() {
    let (mut mm, mut v) = setup(Lie::NeverUses);
    assert_eq!(mm.report_step(v.device_mut(), 1).started, 1);
    // Busy while the clock has not passed the deadline.
    assert_eq!(v.device_mut().poll(), cmm::ReportPoll::Busy);
    assert!(mm.report_in_flight());
    // An allocation that needs its frames waits for this report only, as
    // long as the device may take (the fake's clock moves 1 ms per wait step).
    assert_eq!(hcall::Simulation::wait_report(&mut v), Some(false));
    assert!(v.device().regs().now_us() > 1_000_000);
    mm.report_step(v.device_mut(), 1);
    v.sync();
    assert!(v.is_broken());
    assert_eq!(v.device().stopped(), Some(DeviceError::ReportTimeout));
    assert_eq!(v.balloon().stats().errors, 1);
    all_free_none_reported(&mm);
}
