//! The balloon's device side over split virtqueues: [`RingBalloon`] implements
//! [`BalloonTransport`] with the queues in memory and the device's registers
//! behind [`DeviceRegs`], so that the same code runs on the target (the glue's
//! legacy virtio-pci registers) and in host tests (a fake device that lies).
//!
//! Nothing the device writes is believed unchecked ([`super::used`]): a used
//! entry that is not the completion of a buffer in flight is a protocol
//! violation, a buffer not used within the timeout is a timeout.
//!
//! The inflate and deflate queues keep a window of up to [`WINDOW`] PFN
//! buffers in flight when [`DeviceRegs::kick`] hands the notify to another CPU
//! (the glue's helper CPU: under TCG the notify runs the device's handler in
//! the notifying vCPU's thread, so only another vCPU lets the guest fill the
//! next buffers while the device works); with the notify made here each buffer
//! is waited for, one at a time, as on one CPU. Only one of the two queues has
//! buffers in flight at a time (a buffer of the other queue waits until they
//! were used), and [`BalloonTransport::drain`] waits for all of them. Either stops the
//! transport for good: it never touches the rings again, every later call fails
//! with [`DeviceError::Stopped`], and the caller falls back to the model
//! (`kernel::hv::VirtioBacked`).
//!
//! The free-page reporting queue, when negotiated ([`RingBalloon::with_reporting`]),
//! goes through the same check: [`RingBalloon`] implements [`cmm::FreeReporter`],
//! one report (a chain of device-writable descriptors from descriptor 0) in
//! flight at a time; a lie or a report not used in time stops the whole
//! device, and the report's blocks go back to the free list unreported.

use alloc::vec::Vec;
use core::fmt;

use cmm::{ReportPoll, ReportRange};

use super::stats::{STATS_BYTES, STATS_QUEUE};
use super::used::{UsedElem, UsedTracker, Violation, WINDOW};
use super::virtqueue::SplitQueue;
use super::{BalloonTransport, Queue, PFNS_PER_BUFFER};

/// How long the device may take to use a buffer.
pub const USE_TIMEOUT_US: u64 = 1_000_000;

/// The device's registers and the clock: what the transport needs besides the
/// queue memory.
pub trait DeviceRegs {
    /// Tells the device that queue `queue` has a new buffer.
    fn notify(&mut self, queue: u16);
    /// Reads (and so clears) the interrupt status.
    fn read_isr(&mut self) -> u8;
    /// The config field `num_pages`.
    fn num_pages(&self) -> u32;
    /// Writes the config field `actual`.
    fn write_actual(&mut self, pages: u32);
    /// Microseconds on a clock that never goes back.
    fn now_us(&self) -> u64;
    /// Nanoseconds on the same clock (what the device's busy time is measured
    /// in; the glue reads the timebase).
    fn now_ns(&self) -> u64 {
        self.now_us().saturating_mul(1000)
    }
    /// Called while waiting for the device (a spin hint on the target).
    fn relax(&mut self) {
        core::hint::spin_loop();
    }
    /// Tells the device that queue `queue` has new buffers: `false` when the
    /// notify was made here (the default), `true` when another CPU makes it
    /// (the caller then goes on without waiting, and that CPU measures the
    /// device's time, [`DeviceRegs::kicked_busy_ns`]).
    fn kick(&mut self, queue: u16) -> bool {
        self.notify(queue);
        false
    }
    /// The time the device held buffers whose notify another CPU made:
    /// cumulative, the union of the intervals from each such notify until the
    /// used index caught up with it (ns).
    fn kicked_busy_ns(&self) -> u64 {
        0
    }
    /// Notifies another CPU made for [`DeviceRegs::kick`] so far, and those
    /// this CPU made itself for requests the other had not taken
    /// ([`DeviceRegs::assist`]).
    fn kicked_notifies(&self) -> (u64, u64) {
        (0, 0)
    }
    /// While waiting for the device after [`DeviceRegs::kick`] answered
    /// true: makes a notify of `queue` the other CPU has not taken yet here,
    /// rather than wait idle (timed like the other CPU's). Returns whether it
    /// did.
    fn assist(&mut self, queue: u16) -> bool {
        let _ = queue;
        false
    }
}

/// Why the device can no longer be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceError {
    /// The device did not use a buffer of this queue in time.
    Timeout(Queue),
    /// The device broke the virtqueue protocol on this queue (`None`: the
    /// statistics queue).
    Violation(Option<Queue>, Violation),
    /// The device did not use a free-page report in time.
    ReportTimeout,
    /// The device broke the virtqueue protocol on the reporting queue.
    ReportViolation(Violation),
    /// An earlier error stopped the transport.
    Stopped,
}

impl fmt::Display for DeviceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceError::Timeout(q) => {
                write!(f, "the device did not use a {q:?} buffer in 1 s")
            }
            DeviceError::Violation(Some(q), v) => {
                write!(f, "protocol violation on the {q:?} queue: {v}")
            }
            DeviceError::Violation(None, v) => {
                write!(f, "protocol violation on the statistics queue: {v}")
            }
            DeviceError::ReportTimeout => {
                write!(f, "the device did not use a free page report in 1 s")
            }
            DeviceError::ReportViolation(v) => {
                write!(f, "protocol violation on the reporting queue: {v}")
            }
            DeviceError::Stopped => f.write_str("the device was stopped after an error"),
        }
    }
}

/// One queue and what the kernel expects of its used ring.
pub struct Ring<'a> {
    queue: SplitQueue<'a>,
    used: UsedTracker,
}

impl<'a> Ring<'a> {
    /// A queue with nothing published.
    pub fn new(queue: SplitQueue<'a>) -> Self {
        Ring {
            queue,
            used: UsedTracker::new(),
        }
    }

    /// The queue.
    pub fn queue(&self) -> &SplitQueue<'a> {
        &self.queue
    }

    /// The queue, to change it (`suppress_used_interrupts`).
    pub fn queue_mut(&mut self) -> &mut SplitQueue<'a> {
        &mut self.queue
    }

    fn publish(&mut self, addr: u64, len: u32) {
        self.queue.publish(addr, len);
        self.used.published(len);
    }

    fn publish_at(&mut self, id: usize, addr: u64, len: u32) {
        self.queue
            .publish_at(u16::try_from(id).unwrap_or(0), addr, len);
        self.used.published_at(id, len);
    }

    fn poll(&mut self) -> Result<Option<UsedElem>, Violation> {
        let q = &self.queue;
        self.used.poll(q.used_idx(), |slot| q.used_elem(slot))
    }
}

/// The free-page reporting queue: its ring, its number, the descriptors of
/// the report being built and when the one in flight must have been used.
pub struct ReportRing<'a> {
    ring: Ring<'a>,
    index: u16,
    descs: Vec<(u64, u32)>,
    deadline_us: Option<u64>,
}

impl<'a> ReportRing<'a> {
    /// Queue number `index` on `queue`, its used-buffer interrupts
    /// suppressed, taking up to [`super::reporting::MAX_RANGES`] ranges (fewer
    /// if the queue is smaller). `None` if the descriptor list cannot be
    /// allocated.
    pub fn new(mut queue: SplitQueue<'a>, index: u16) -> Option<Self> {
        queue.suppress_used_interrupts();
        let n = super::reporting::MAX_RANGES.min(usize::from(queue.layout().size));
        let mut descs = Vec::new();
        descs.try_reserve_exact(n).ok()?;
        descs.resize(n, (0, 0));
        Some(ReportRing {
            ring: Ring::new(queue),
            index,
            descs,
            deadline_us: None,
        })
    }
}

/// The balloon device over its rings.
pub struct RingBalloon<'a, R> {
    regs: R,
    rings: [Ring<'a>; 2],
    /// The PFN buffers, one per descriptor of the window (buffer `i` goes
    /// out in descriptor `i` of the queue in flight).
    pfns: &'a mut [[u32; PFNS_PER_BUFFER]; WINDOW],
    /// The queue with buffers in flight, if one has.
    active: Option<Queue>,
    /// When each buffer in flight must have been used (us).
    deadline_us: [u64; WINDOW],
    /// The statistics queue and its buffer, when negotiated.
    stats: Option<(Ring<'a>, &'a mut [u8; STATS_BYTES])>,
    /// The error that stopped the transport.
    stopped: Option<DeviceError>,
    /// Time the device held inflate and deflate buffers, cumulative (ns).
    busy_ns: u64,
    /// The free-page reporting queue, when negotiated.
    report: Option<ReportRing<'a>>,
}

impl<'a, R: DeviceRegs> RingBalloon<'a, R> {
    /// The transport over the inflate and deflate rings, the PFN buffers and,
    /// if negotiated, the statistics ring and its buffer.
    pub fn new(
        regs: R,
        rings: [Ring<'a>; 2],
        pfns: &'a mut [[u32; PFNS_PER_BUFFER]; WINDOW],
        stats: Option<(Ring<'a>, &'a mut [u8; STATS_BYTES])>,
    ) -> Self {
        RingBalloon {
            regs,
            rings,
            pfns,
            active: None,
            deadline_us: [0; WINDOW],
            stats,
            stopped: None,
            busy_ns: 0,
            report: None,
        }
    }

    /// The transport with the free-page reporting queue `report` too.
    pub fn with_reporting(mut self, report: ReportRing<'a>) -> Self {
        self.report = Some(report);
        self
    }

    /// Whether free page reporting was negotiated and the device still works.
    pub fn reporting_on(&self) -> bool {
        self.stopped.is_none() && self.report.is_some()
    }

    /// The registers.
    pub fn regs(&self) -> &R {
        &self.regs
    }

    /// The registers, to change them.
    pub fn regs_mut(&mut self) -> &mut R {
        &mut self.regs
    }

    /// The queue sizes (inflate, deflate) and whether statistics are on.
    pub fn shape(&self) -> (u16, u16, bool) {
        (
            self.rings[0].queue.layout().size,
            self.rings[1].queue.layout().size,
            self.stats.is_some(),
        )
    }

    /// The error that stopped the transport, if one did.
    pub fn stopped(&self) -> Option<DeviceError> {
        self.stopped
    }

    fn stop(&mut self, e: DeviceError) -> DeviceError {
        self.stopped.get_or_insert(e);
        e
    }

    /// PFN buffers in flight now (on the queue [`RingBalloon::active`] names).
    pub fn in_flight(&self) -> usize {
        self.active
            .map_or(0, |q| self.rings[q as usize].used.in_flight_count())
    }

    /// Takes every completion `queue`'s used ring shows, without waiting;
    /// stops the transport on a lie.
    fn reap(&mut self, queue: Queue) -> Result<(), DeviceError> {
        loop {
            match self.rings[queue as usize].poll() {
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(v) => return Err(self.stop(DeviceError::Violation(Some(queue), v))),
            }
        }
        if self.active == Some(queue) && !self.rings[queue as usize].used.in_flight() {
            self.active = None;
        }
        Ok(())
    }

    /// Waits until `queue` has fewer than `limit` buffers in flight: a
    /// timeout if one of them stays unused past its deadline.
    fn wait_below(&mut self, queue: Queue, limit: usize) -> Result<(), DeviceError> {
        loop {
            self.reap(queue)?;
            let used = &self.rings[queue as usize].used;
            if used.in_flight_count() < limit {
                return Ok(());
            }
            let oldest = (0..WINDOW)
                .filter(|&i| used.is_in_flight(i))
                .map(|i| self.deadline_us[i])
                .min()
                .unwrap_or(u64::MAX);
            if self.regs.now_us() > oldest {
                return Err(self.stop(DeviceError::Timeout(queue)));
            }
            if !self.regs.assist(queue as u16) {
                self.regs.relax();
            }
        }
    }
}

impl<R: DeviceRegs> BalloonTransport for RingBalloon<'_, R> {
    type Error = DeviceError;

    fn send(&mut self, queue: Queue, pfns: &[u32]) -> Result<(), DeviceError> {
        if self.stopped.is_some() {
            return Err(DeviceError::Stopped);
        }
        // The other queue's buffers are used first (a page deflated while its
        // inflate is in flight, or the reverse, reaches the device in order).
        if self.active.is_some_and(|q| q != queue) {
            self.drain()?;
        }
        // Anything the device wrote that is not the completion of a buffer in
        // flight is a lie; it is caught before a PFN buffer is reused.
        self.wait_below(queue, WINDOW)?;
        let Some(slot) = self.rings[queue as usize].used.free_descriptor(WINDOW) else {
            return Err(self.stop(DeviceError::Timeout(queue)));
        };
        let n = super::store_pfns(super::GUEST_ORDER, pfns, &mut self.pfns[slot][..]);
        let addr = self.pfns[slot].as_ptr() as u64;
        let len = u32::try_from(4 * n).unwrap_or(u32::MAX);
        self.rings[queue as usize].publish_at(slot, addr, len);
        self.active = Some(queue);
        self.deadline_us[slot] = self.regs.now_us().saturating_add(USE_TIMEOUT_US);
        // The device holds the buffer from the notify until the kernel sees it
        // used (under TCG QEMU handles the queue inside the notify's store).
        let t0 = self.regs.now_ns();
        if self.regs.kick(queue as u16) {
            // Another CPU notifies (and times the device): fill the next one.
            return Ok(());
        }
        let r = self.wait_below(queue, 1);
        let held = self.regs.now_ns().saturating_sub(t0);
        self.busy_ns = self.busy_ns.saturating_add(held);
        // The ISR is not read here: used-buffer interrupts are suppressed, and
        // the interrupt handler reads (and so clears) it for configuration
        // changes; one register read per buffer would be guest time for nothing.
        r
    }

    /// Waits until every PFN buffer in flight was used (or the transport
    /// stops: a lie, or one not used within its 1 s).
    fn drain(&mut self) -> Result<(), DeviceError> {
        if let Some(e) = self.stopped {
            return Err(e);
        }
        match self.active {
            Some(q) => self.wait_below(q, 1),
            None => Ok(()),
        }
    }

    fn busy_ns(&self) -> u64 {
        self.busy_ns.saturating_add(self.regs.kicked_busy_ns())
    }

    fn helper_notifies(&self) -> (u64, u64) {
        self.regs.kicked_notifies()
    }

    /// Polls the report in flight until the device used it, failed or timed
    /// out (the transport's usual 1 s bound).
    fn wait_report(&mut self) -> Option<bool> {
        use cmm::FreeReporter;
        self.report.as_ref()?.deadline_us?;
        loop {
            match self.poll() {
                ReportPoll::Busy => self.regs.relax(),
                ReportPoll::Used => return Some(true),
                ReportPoll::Failed => return Some(false),
            }
        }
    }

    fn write_actual(&mut self, pages: u32) {
        if self.stopped.is_none() {
            self.regs.write_actual(pages);
        }
    }

    fn num_pages(&self) -> u32 {
        self.regs.num_pages()
    }

    fn stats_wanted(&mut self) -> bool {
        if self.stopped.is_some() {
            return false;
        }
        let Some((ring, _)) = self.stats.as_mut() else {
            return false;
        };
        // Nothing in flight (nothing published yet): the first report goes at once.
        let in_flight = ring.used.in_flight();
        match ring.poll() {
            Ok(used) => used.is_some() || !in_flight,
            Err(v) => {
                self.stop(DeviceError::Violation(None, v));
                false
            }
        }
    }

    fn send_stats(&mut self, entries: &[u8; STATS_BYTES]) {
        if self.stopped.is_some() {
            return;
        }
        let Some((ring, buf)) = self.stats.as_mut() else {
            return;
        };
        if ring.used.in_flight() {
            // The device still holds the buffer: never overwrite it.
            return;
        }
        buf.copy_from_slice(entries);
        let addr = buf.as_ptr() as u64;
        ring.publish(addr, u32::try_from(STATS_BYTES).unwrap_or(0));
        self.regs.notify(STATS_QUEUE);
        // The device keeps this buffer until it wants the next figures.
        let _ = self.regs.read_isr();
    }

    fn check(&mut self) -> Result<(), DeviceError> {
        if let Some(e) = self.stopped {
            return Err(e);
        }
        // Completions of buffers in flight are taken; anything else the
        // device wrote on the PFN queues is a lie.
        self.reap(Queue::Inflate)?;
        self.reap(Queue::Deflate)?;
        // The reporting queue, between reports, likewise.
        if let Some(r) = self.report.as_mut() {
            if r.deadline_us.is_none() {
                if let Err(v) = r.ring.poll() {
                    return Err(self.stop(DeviceError::ReportViolation(v)));
                }
            }
        }
        Ok(())
    }
}

impl<R: DeviceRegs> cmm::FreeReporter for RingBalloon<'_, R> {
    fn max_ranges(&self) -> usize {
        match (&self.report, self.stopped) {
            (Some(r), None) => r.descs.len(),
            _ => 0,
        }
    }

    fn start(&mut self, ranges: &[ReportRange]) -> bool {
        // A page of a deflate buffer in flight is free in the frame table but
        // still the device's: the report waits until those were used.
        if self.drain().is_err() {
            return false;
        }
        let Some(r) = self.report.as_mut() else {
            return false;
        };
        if r.deadline_us.is_some() {
            return false;
        }
        // Nothing is in flight: anything the device wrote since is a lie.
        if let Err(v) = r.ring.poll() {
            self.stop(DeviceError::ReportViolation(v));
            return false;
        }
        let Some(n) = super::reporting::descriptors(ranges, &mut r.descs) else {
            return false;
        };
        let Some(chain) = r.descs.get(..n) else {
            return false;
        };
        let total = chain
            .iter()
            .try_fold(0u32, |a, &(_, len)| a.checked_add(len))
            .unwrap_or(u32::MAX);
        if !r.ring.queue.publish_writable_chain(chain) {
            return false;
        }
        r.ring.used.published(total);
        r.deadline_us = Some(self.regs.now_us().saturating_add(USE_TIMEOUT_US));
        let index = r.index;
        self.regs.notify(index);
        true
    }

    fn poll(&mut self) -> ReportPoll {
        if self.stopped.is_some() {
            return ReportPoll::Failed;
        }
        let Some(r) = self.report.as_mut() else {
            return ReportPoll::Failed;
        };
        let Some(deadline) = r.deadline_us else {
            return ReportPoll::Failed;
        };
        match r.ring.poll() {
            Ok(Some(_)) => {
                r.deadline_us = None;
                ReportPoll::Used
            }
            Ok(None) if self.regs.now_us() > deadline => {
                r.deadline_us = None;
                self.stop(DeviceError::ReportTimeout);
                ReportPoll::Failed
            }
            Ok(None) => ReportPoll::Busy,
            Err(v) => {
                r.deadline_us = None;
                self.stop(DeviceError::ReportViolation(v));
                ReportPoll::Failed
            }
        }
    }
}
