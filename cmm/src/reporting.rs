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
//!
//! One decision, two transports: on KVM/QEMU the virtio-balloon reporting
//! queue (the kernel's ring transport implements [`FreeReporter`]); on PowerVM
//! and the pool model, [`HintReporter`]: H_PAGE_INIT Unused for every page of
//! each reported block ([`Mm::report_hints_step`]), driven by the same
//! [`Mm::report_step`] from the same place in the background.

use alloc::vec::Vec;
use hcall::{Hypervisor, PageState};

use crate::frames::ReportRange;
use crate::mm::Mm;
use crate::units::PAGE_SIZE;

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
    /// The hint transport: whole free blocks were marked reported once the
    /// Unused walk after boot was through (the walk hinted them).
    hints_primed: bool,
    /// The hint transport met a refused hint and is no longer used.
    hints_off: bool,
}

/// Blocks per report on the hint transport: 1024 page-state calls, as many
/// as the Unused walk makes per background call.
pub const HINT_BLOCKS_PER_REPORT: usize = 2;

/// The PowerVM (and pool model) transport of a report: H_PAGE_INIT Unused for
/// every page of each range, at once (the hypervisor may take the pages' backing
/// without paging them out; the guest may use them again at any time, and the
/// next allocation's Active hint says so). The report is used when every hint
/// was accepted; a refused hint fails it (its blocks stay unreported) and the
/// transport is not used again, so a hypervisor that refuses hints is not asked
/// for the same blocks over and over.
pub struct HintReporter<'a> {
    hv: &'a mut dyn Hypervisor,
    max: usize,
    done: Option<bool>,
}

impl<'a> HintReporter<'a> {
    /// Reports through `hv`, up to `max` blocks a report.
    pub fn new(hv: &'a mut dyn Hypervisor, max: usize) -> Self {
        HintReporter {
            hv,
            max,
            done: None,
        }
    }
}

impl FreeReporter for HintReporter<'_> {
    fn max_ranges(&self) -> usize {
        self.max
    }

    fn start(&mut self, ranges: &[ReportRange]) -> bool {
        if self.done.is_some() {
            return false;
        }
        let mut ok = true;
        let mut addrs = [0u64; 256];
        'ranges: for r in ranges {
            let end = r.addr.saturating_add(r.len);
            let mut at = r.addr;
            while at < end {
                let mut n = 0;
                while n < addrs.len() && at < end {
                    addrs[n] = at;
                    n += 1;
                    at = at.saturating_add(PAGE_SIZE);
                }
                if self
                    .hv
                    .set_page_states(&addrs[..n], PageState::Unused)
                    .is_err()
                {
                    ok = false;
                    break 'ranges;
                }
            }
        }
        self.done = Some(ok);
        true
    }

    fn poll(&mut self) -> ReportPoll {
        match self.done.take() {
            Some(true) => ReportPoll::Used,
            _ => ReportPoll::Failed,
        }
    }
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

    pub(crate) fn finish_report(&mut self, used: bool) {
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

    /// [`Mm::report_step`] over the hint transport ([`HintReporter`], up to
    /// [`HINT_BLOCKS_PER_REPORT`] blocks a report), for a hypervisor that takes
    /// page-usage hints and no virtio reporting queue. Nothing until the Unused
    /// walk after boot is through; then, once, every whole free block is marked
    /// reported (the walk, the frees and the returns hinted every free page
    /// Unused already), so only blocks that are whole and free again after
    /// reuse are reported. After a refused hint the transport is off for good.
    pub fn report_hints_step(&mut self, hv: &mut dyn Hypervisor, max_reports: u64) -> ReportStep {
        if self.reporting.hints_off || self.unused_hints_pending() {
            return ReportStep::default();
        }
        if !self.reporting.hints_primed {
            self.reporting.hints_primed = true;
            self.frames_mut().mark_free_blocks_reported();
        }
        let failures = self.reporting.stats.failures;
        let mut t = HintReporter::new(hv, HINT_BLOCKS_PER_REPORT);
        let step = self.report_step(&mut t, max_reports);
        if self.reporting.stats.failures != failures {
            self.reporting.hints_off = true;
        }
        step
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
