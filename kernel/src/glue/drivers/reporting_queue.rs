//! The balloon's reporting queue (docs/free-page-reporting.md): one report in
//! flight at a time, a chain of device-writable descriptors, one per free 2 MiB
//! block, polled (no used-buffer interrupt). A report the device has not used
//! within [`USE_TIMEOUT_US`] counts as failed and reporting stops (logged once),
//! as the inflate and deflate queues treat a device that stopped answering.

use alloc::vec;
use alloc::vec::Vec;
use cmm::{ReportPoll, ReportRange};
use kernel::virtio_balloon::reporting::{descriptors, MAX_RANGES};
use kernel::virtio_balloon::SplitQueue;

use crate::clock;

/// How long the device may take to use a report.
const USE_TIMEOUT_US: u64 = 1_000_000;

/// The reporting queue and the report in flight.
pub struct ReportQueue {
    vq: SplitQueue<'static>,
    index: u16,
    descs: Vec<(u64, u32)>,
    /// When the report in flight must have been used (`None`: none in flight).
    deadline: Option<u64>,
    broken: bool,
}

impl ReportQueue {
    /// The queue `vq`, number `index`, its used-buffer interrupts suppressed.
    /// `None` if the descriptor buffer cannot be allocated.
    pub fn new(mut vq: SplitQueue<'static>, index: u16) -> Option<Self> {
        vq.suppress_used_interrupts();
        let n = MAX_RANGES.min(usize::from(vq.layout().size));
        let mut descs = Vec::new();
        descs.try_reserve_exact(n).ok()?;
        descs.extend(vec![(0u64, 0u32); n]);
        Some(ReportQueue {
            vq,
            index,
            descs,
            deadline: None,
            broken: false,
        })
    }

    /// The queue's number (to notify).
    pub fn index(&self) -> u16 {
        self.index
    }

    /// A report was not used in time: the queue is no longer used.
    pub fn is_broken(&self) -> bool {
        self.broken
    }

    /// Most ranges one report may carry (0 once broken).
    pub fn max_ranges(&self) -> usize {
        if self.broken {
            0
        } else {
            self.descs.len()
        }
    }

    /// Publishes `ranges` as one chain; the caller notifies. False (nothing
    /// published) when broken, a report is in flight, or the ranges do not fit.
    pub fn publish(&mut self, ranges: &[ReportRange]) -> bool {
        if self.broken || self.deadline.is_some() {
            return false;
        }
        let Some(n) = descriptors(ranges, &mut self.descs) else {
            return false;
        };
        let Some(chain) = self.descs.get(..n) else {
            return false;
        };
        if !self.vq.publish_writable_chain(chain) {
            return false;
        }
        self.deadline = Some(clock::now_us().saturating_add(USE_TIMEOUT_US));
        true
    }

    /// Whether the device used the report in flight.
    pub fn poll(&mut self) -> ReportPoll {
        let Some(deadline) = self.deadline else {
            return ReportPoll::Failed;
        };
        if self.vq.is_used() {
            self.deadline = None;
            return ReportPoll::Used;
        }
        if clock::now_us() > deadline {
            self.deadline = None;
            self.broken = true;
            log::error!(
                "virtio-balloon: the device did not use a free page report in 1 s; reporting is off"
            );
            return ReportPoll::Failed;
        }
        ReportPoll::Busy
    }
}
