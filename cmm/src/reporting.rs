//! Free page reporting (docs/free-page-reporting.md): telling the host which free
//! memory it may take back at once, the hint CMO's Unused page state gives
//! PowerVM, made real on KVM/QEMU by virtio-balloon's reporting queue.
//!
//! The decision is the library's ([`crate::frames::report`]: whole free 2 MiB
//! blocks, never a loaned, allocated or held one, reported again only after
//! reuse); the device is behind [`FreeReporter`]. [`Mm::report_step`] runs from
//! the kernel's background work, where the Unused hint walk runs: it finishes the
//! report the device has used, then picks and starts the next, a bounded number
//! per call, so a console command or an allocation never waits for it. While a
//! report is in flight its blocks are off the free list: an allocation takes
//! another block.

use alloc::vec::Vec;

use crate::frames::ReportRange;
use crate::mm::Mm;

/// What became of a report in flight.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReportPoll {
    /// The device still holds it.
    Busy,
    /// The device used it (it may have discarded every range).
    Used,
    /// The device failed: the ranges are the guest's again, not reported.
    Failed,
}

/// A device that takes free-page reports.
pub trait FreeReporter {
    /// Most ranges one report may carry (0: the device takes no reports).
    fn max_ranges(&self) -> usize;
    /// Hands `ranges` to the device as one report. `false`: the device did not
    /// take it (nothing is in flight).
    fn start(&mut self, ranges: &[ReportRange]) -> bool;
    /// Whether the device has used the report in flight.
    fn poll(&mut self) -> ReportPoll;
}

/// The report in flight and the report counters.
#[derive(Clone, Debug, Default)]
pub(crate) struct Reporting {
    /// Blocks of the report in flight (empty: none).
    in_flight: Vec<usize>,
    ranges: Vec<ReportRange>,
    stats: ReportStats,
}

/// The report counters ([`Mm::report_stats`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReportStats {
    /// Reports the device used.
    pub reports: u64,
    /// Ranges (2 MiB blocks) in those reports.
    pub ranges: u64,
    /// Reports the device refused or failed.
    pub failures: u64,
}

/// What one [`Mm::report_step`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReportStep {
    /// Reports started in this call.
    pub started: u64,
    /// Reports finished (used or failed) in this call.
    pub finished: u64,
    /// A report is still in flight, or more blocks may be reportable: call again.
    pub more: bool,
}

impl Mm {
    /// Finishes the report in flight once the device has used it and starts up
    /// to `max_reports` more, each of up to `dev.max_ranges()` whole free
    /// blocks. Never waits for the device.
    pub fn report_step(&mut self, dev: &mut dyn FreeReporter, max_reports: u64) -> ReportStep {
        let mut step = ReportStep::default();
        let max_ranges = dev.max_ranges();
        loop {
            if !self.reporting.in_flight.is_empty() {
                let used = match dev.poll() {
                    ReportPoll::Busy => {
                        step.more = true;
                        return step;
                    }
                    ReportPoll::Used => true,
                    ReportPoll::Failed => false,
                };
                self.finish_report(used);
                step.finished += 1;
            }
            if step.started >= max_reports || max_ranges == 0 {
                break;
            }
            if !self.frames().report_wanted() {
                break;
            }
            let (frames, r) = self.frames_and_reporting();
            if frames.pick_report(max_ranges, &mut r.in_flight, &mut r.ranges) == 0 {
                break;
            }
            step.started += 1;
            if !dev.start(&self.reporting.ranges) {
                self.finish_report(false);
                step.finished += 1;
                break;
            }
        }
        step.more = !self.reporting.in_flight.is_empty() || self.frames().report_wanted();
        step
    }

    fn finish_report(&mut self, used: bool) {
        let (frames, r) = self.frames_and_reporting();
        frames.report_done(&r.in_flight, used);
        let s = &mut r.stats;
        if used {
            s.reports = s.reports.saturating_add(1);
            s.ranges = s.ranges.saturating_add(r.in_flight.len() as u64);
        } else {
            s.failures = s.failures.saturating_add(1);
        }
        r.in_flight.clear();
        r.ranges.clear();
    }

    /// The report counters.
    pub fn report_stats(&self) -> ReportStats {
        self.reporting.stats
    }

    /// True while a report is in flight.
    pub fn report_in_flight(&self) -> bool {
        !self.reporting.in_flight.is_empty()
    }
}
