//! The virtio balloon on QEMU's pseries through the legacy virtio-pci transport:
//! the transitional device (1af4:1002) on its I/O BAR, two split virtqueues
//! (inflate, deflate) and, when the host offers them, the statistics and free page
//! reporting queues, whose completions are polled; only a configuration change
//! (a new `num_pages`) interrupts. The modern-only device (1af4:1045) is refused with
//! a log line. Implements [`BalloonTransport`] for the library's balloon protocol
//! with the library's ring transport ([`RingBalloon`], which checks every used
//! entry the device writes); registers and queue memory go through the
//! library's typed accessors ([`LegacyRegisters`], [`SplitQueue`]). Facts in
//! docs/virtio-balloon.md.
//!
//! The configuration-change interrupt is the function's INTx, translated through
//! its host bridge's `interrupt-map` (`kernel::xics`) and attached to the
//! interrupt controller's table; its handler reads the ISR register, which
//! lowers the line, and hands the byte to the library's decision
//! (`kernel::virtio_balloon::interrupt`): a change recorded for the main loop,
//! and a source that interrupts far more often than an honest device held, then
//! turned off from the main loop (RTAS `ibm,int-off`), `num_pages` polled, and
//! turned on again after a back-off that doubles at each storm (`ibm,int-on`),
//! off for good after a few.
//!
//! The I/O BAR is reached at its CPU address, mapped cache-inhibited and guarded
//! (`mmu::map_io`) once translation is on; QEMU dispatches the accesses as MMIO
//! (PowerVM has no virtio).
//! Queue and buffer addresses are guest-physical (no TCEs: the device does not
//! get `VIRTIO_F_IOMMU_PLATFORM`).

use alloc::alloc::{alloc_zeroed, Layout};
use core::ptr::NonNull;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use hcall::page::PAGE_BYTES;
use kernel::devtree::Platform;
use kernel::irq::Irq;
use kernel::irq_storm::{SourceControl, Verdict};
use kernel::pci::{Bridge, Function};
use kernel::timer::after_us;
use kernel::virtio_balloon::bringup;
use kernel::virtio_balloon::interrupt::BalloonInterrupt;
use kernel::virtio_balloon::kick::{KickPort, Kicker};
use kernel::virtio_balloon::legacy::{self, LegacyRegisters, LegacyRegs};
use kernel::virtio_balloon::ring::{DeviceError, DeviceRegs, ReportRing, Ring, RingBalloon};
use kernel::virtio_balloon::stats::STATS_BYTES;
use kernel::virtio_balloon::used::WINDOW;
use kernel::virtio_balloon::virtqueue::{LEGACY_ALIGN, LEGACY_PFN_SHIFT};
use kernel::virtio_balloon::{
    BalloonTransport, Queue, QueueLayout, SplitQueue, DEVICE_BALLOON_MODERN,
    DEVICE_BALLOON_TRANSITIONAL, GUEST_ORDER, PFNS_PER_BUFFER, VENDOR_VIRTIO,
};

use super::rtas_pci::{self, RtasConfig};
use super::{Driver, Probe};
use crate::clock;
use crate::irq::{self, After};
use crate::smp;
use crate::sys::System;
use crate::wait::Wake;

/// The driver list's entry. Its interrupts are counted as `pci` (the `cpu`
/// reply's `interrupts_external_pci`: PCI INTx).
pub const DRIVER: Driver = Driver {
    name: "virtio-balloon",
    irq_label: Some("pci"),
    probe,
    service,
    pending: Some(pending),
};

/// The ISR register's address (0: no interrupt attached).
static ISR: AtomicUsize = AtomicUsize::new(0);
/// What the interrupts said: a configuration change, a storm (the library's
/// decisions, `kernel::virtio_balloon::interrupt`).
static INTERRUPT: BalloonInterrupt = BalloonInterrupt::new();
static IRQ: spin::Once<Irq> = spin::Once::new();

/// The interrupt: reads the ISR first (which acknowledges it: the
/// level-sensitive line is lowered, so the EOI does not re-present it), then
/// ends it, or holds it for the main loop when it makes a storm.
fn on_interrupt() -> After {
    let isr = ISR.load(Ordering::Acquire);
    let bits = if isr == 0 {
        0
    } else {
        // SAFETY: the address of the device's ISR register (BAR0, mapped
        // cache-inhibited by `bring_up` and never unmapped); a byte read.
        unsafe { core::ptr::read_volatile(isr as *const u8) }
    };
    match INTERRUPT.on_interrupt(clock::now_us(), bits) {
        Verdict::Handle => After::End,
        Verdict::TurnOff => After::Hold,
    }
}

fn pending() -> bool {
    INTERRUPT.pending()
}

/// The interrupt source as the storm guard's main-loop turn reaches it.
struct Source(Irq);

impl SourceControl for Source {
    fn turn_off_held(&mut self) -> Option<Result<u32, (u32, alloc::string::String)>> {
        irq::quiet_held(self.0)
    }
    fn turn_on(&mut self) -> Result<u32, (u32, alloc::string::String)> {
        irq::turn_on(self.0)
    }
}

/// The main loop's turn: turns a storming source off (and on again after its
/// back-off), reads `num_pages` when a change was signalled or the source is off,
/// and runs the balloon's round at once on a signalled change.
fn service(sys: &mut System) -> bool {
    let Some(&i) = IRQ.get() else {
        return false;
    };
    let now = clock::now_us();
    let t = INTERRUPT.turn(now, &mut Source(i));
    match &t.event {
        Some(e) if e.is_error() => log::error!("virtio-balloon: {e}"),
        Some(e) => log::info!("virtio-balloon: {e}"),
        None => {}
    }
    if t.sync {
        sys.hv.inner_mut().balloon_sync();
    }
    if t.round_now {
        sys.mm.poll_now();
    }
    match t.wake_at_us {
        Some(at) => sys.timers.arm(
            Wake::Driver(DRIVER.name),
            after_us(clock::ticks(), at.saturating_sub(now), clock::hz()),
        ),
        None => sys.timers.cancel(Wake::Driver(DRIVER.name)),
    }
    false
}

/// Finds the balloon when the backend takes one, brings it up and attaches its
/// interrupt.
fn probe(p: &mut Probe<'_>) {
    if !p.balloon_wanted {
        return;
    }
    let Some((dev, bridge, devfn, isr)) = find(p.platform) else {
        return;
    };
    match p.sources.pci_source(&bridge, devfn) {
        Some(src) => {
            ISR.store(isr, Ordering::Release);
            match irq::attach(src.number, "pci", on_interrupt) {
                Ok(i) => {
                    IRQ.call_once(|| i);
                    log::info!(
                        "virtio-balloon: configuration changes interrupt (source {:#x})",
                        src.number
                    );
                }
                Err(e) => {
                    ISR.store(0, Ordering::Release);
                    log::warn!("virtio-balloon: {e}; num_pages is polled");
                }
            }
        }
        None => log::warn!("virtio-balloon: no INTx source in the tree; num_pages is polled"),
    }
    p.balloon = Some(dev);
}

/// The helper CPU that makes the inflate and deflate notifies during a
/// balloon round ([`overlapped`]), so that the boot CPU goes on with the next
/// buffers while QEMU's handler runs in the helper's vCPU thread.
const HELPER_CPU: usize = 1;
/// The requests to the helper CPU.
static KICKER: Kicker = Kicker::new();
/// The helper's job: [`serve_kicks`].
static KICK_WORK: smp::Work = smp::Work::job(serve_kicks);
/// Set inside [`overlapped`]: a notify may go to the helper CPU.
static ARMED: AtomicBool = AtomicBool::new(false);
/// The legacy register block's address (for the helper's notifies).
static REG_BASE: AtomicUsize = AtomicUsize::new(0);
/// The inflate and deflate queues' avail and used `idx` fields' addresses.
static RING_IDX: [[AtomicUsize; 2]; 2] = [const { [const { AtomicUsize::new(0) }; 2] }; 2];

/// A CPU's way to the device for [`Kicker`]: the notify register and the two
/// PFN queues' indexes.
struct HelperPort<'r> {
    regs: &'r mut LegacyRegisters<'static>,
}

impl HelperPort<'_> {
    fn idx(&self, queue: u16, which: usize) -> u16 {
        let at = RING_IDX[usize::from(queue & 1)][which].load(Ordering::Acquire);
        if at == 0 {
            return 0;
        }
        // SAFETY: the address of a 2-aligned `idx` field inside a queue's
        // memory, allocated at bring-up and never freed; a volatile read of a
        // field the driver and the device write whole.
        let raw = unsafe { core::ptr::read_volatile(at as *const u16) };
        GUEST_ORDER.loaded(raw)
    }
}

impl KickPort for HelperPort<'_> {
    fn notify(&mut self, queue: u16) {
        self.regs.notify(queue);
    }
    fn avail_idx(&self, queue: u16) -> u16 {
        self.idx(queue, 0)
    }
    fn used_idx(&self, queue: u16) -> u16 {
        self.idx(queue, 1)
    }
    fn now_ns(&self) -> u64 {
        clock::ticks_to_ns(clock::ticks())
    }
    fn stopping(&self) -> bool {
        smp::stopping()
    }
}

/// The helper CPU's job: the notifies [`Regs::kick`] asks for, until
/// [`overlapped`] ends.
fn serve_kicks(_: *const (), _: usize) {
    let base = REG_BASE.load(Ordering::Acquire);
    let Some(base) = NonNull::new(base as *mut LegacyRegs) else {
        // Never started without a device; should it be, the buffers are not
        // notified and the ring transport's 1 s timeout stops the device.
        return KICKER.abandon();
    };
    // SAFETY: the device's legacy register block, mapped at bring-up for the
    // kernel's life on every CPU; this copy writes only the notify register,
    // and only while it holds the kicker's one-notify-at-a-time flag (the
    // boot CPU's other accesses are to other registers).
    let mut regs = unsafe { LegacyRegisters::new(base) };
    KICKER.serve(&mut HelperPort { regs: &mut regs });
}

/// Runs `f` (a balloon round) with the inflate and deflate notifies handed to
/// the helper CPU when it is online and idle (docs/virtio-balloon.md §5): the
/// boot CPU then keeps a window of buffers in flight. The helper is started
/// at the first notify and sent back to idle (H_CEDE) when `f` returns, after
/// every notify asked for was made; `f` must leave nothing in flight (the
/// round's `balloon_sync` drains). On one CPU, or with the helper busy, every
/// notify is made here, one buffer at a time.
pub fn overlapped<R>(f: impl FnOnce() -> R) -> R {
    ARMED.store(true, Ordering::Release);
    let r = f();
    ARMED.store(false, Ordering::Release);
    if KICKER.running() {
        KICKER.finish();
        KICK_WORK.wait();
    }
    r
}

/// The legacy registers and the clock, as the ring transport wants them.
pub struct Regs {
    regs: LegacyRegisters<'static>,
}

impl DeviceRegs for Regs {
    /// Inside [`overlapped`], the helper CPU notifies (started here at the
    /// round's first buffer); otherwise the notify is made here.
    fn kick(&mut self, queue: u16) -> bool {
        if ARMED.load(Ordering::Acquire) && queue < 2 {
            if KICKER.running() {
                KICKER.request(queue);
                return true;
            }
            KICKER.start();
            KICKER.request(queue);
            if smp::hand_if_ceding(HELPER_CPU, &KICK_WORK) {
                return true;
            }
            // Not available: take the request back and notify here.
            KICKER.abandon();
        }
        self.regs.notify(queue);
        false
    }
    fn kicked_busy_ns(&self) -> u64 {
        KICKER.busy_ns()
    }
    fn kicked_notifies(&self) -> (u64, u64) {
        (KICKER.notifies(), KICKER.assists())
    }
    fn assist(&mut self, queue: u16) -> bool {
        KICKER.running()
            && KICKER.assist(
                &mut HelperPort {
                    regs: &mut self.regs,
                },
                queue,
            )
    }
    fn notify(&mut self, queue: u16) {
        self.regs.notify(queue);
    }
    fn read_isr(&mut self) -> u8 {
        self.regs.read_isr()
    }
    fn num_pages(&self) -> u32 {
        self.regs.num_pages()
    }
    fn write_actual(&mut self, pages: u32) {
        self.regs.write_actual(pages);
    }
    fn now_us(&self) -> u64 {
        clock::now_us()
    }
    fn now_ns(&self) -> u64 {
        clock::ticks_to_ns(clock::ticks())
    }
}

/// The legacy balloon device, set up and running.
pub struct LegacyBalloon {
    ring: RingBalloon<'static, Regs>,
}

// SAFETY: the device's register block and its rings are memory every CPU
// reaches at the same address (mapped for the kernel's life); what makes the
// raw pointers inside not `Send` is only that they are raw. The balloon lives
// in `System` and is used by one CPU at a time: the main loop, or under the
// lock `stress` shares the system with.
unsafe impl Send for LegacyBalloon {}

/// Page-aligned, zeroed memory that lives as long as the kernel (aligned for a
/// legacy virtqueue too: `LEGACY_ALIGN` is not more than a page).
fn alloc_pages(bytes: usize) -> Option<NonNull<u8>> {
    const _: () = assert!(LEGACY_ALIGN <= PAGE_BYTES);
    let layout = Layout::from_size_align(bytes, PAGE_BYTES).ok()?;
    // SAFETY: the layout has a non-zero size; the memory is never freed (the
    // device keeps using it).
    NonNull::new(unsafe { alloc_zeroed(layout) })
}

/// Finds the balloon on the PCI host bridges and brings it up: the device, its
/// host bridge's name and devfn (where its INTx is) and its ISR register's
/// address. `None` when there is none, or it cannot be used (logged).
fn find(platform: &Platform) -> Option<(LegacyBalloon, alloc::string::String, u8, usize)> {
    for phb in &platform.phbs {
        let mut bridge = match rtas_pci::bridge(phb) {
            Ok(b) => b,
            Err(e) => {
                log::warn!("pci: {}: {e}", phb.name);
                continue;
            }
        };
        for f in bridge.scan() {
            if f.vendor != VENDOR_VIRTIO {
                continue;
            }
            if f.device == DEVICE_BALLOON_MODERN {
                log::warn!(
                    "virtio-balloon: {} {:02x}.0: device {:04x}:{:04x} (modern only) is not supported: \
                     the driver needs the transitional device {:04x}:{:04x} (legacy interface); going on without it",
                    bridge.name,
                    f.devfn >> 3,
                    f.vendor,
                    f.device,
                    VENDOR_VIRTIO,
                    DEVICE_BALLOON_TRANSITIONAL
                );
                continue;
            }
            if f.device != DEVICE_BALLOON_TRANSITIONAL {
                continue;
            }
            match bring_up(&mut bridge, &f) {
                Ok((b, isr)) => return Some((b, bridge.name.clone(), f.devfn, isr)),
                Err(e) => log::warn!(
                    "virtio-balloon: {} {:02x}.0: {e}",
                    bridge.name,
                    f.devfn >> 3
                ),
            }
        }
    }
    None
}

fn bring_up(
    bridge: &mut Bridge<RtasConfig>,
    f: &Function,
) -> Result<(LegacyBalloon, usize), alloc::string::String> {
    let (bars, _) = bridge
        .setup(f)
        .map_err(|e| alloc::format!("PCI configuration through RTAS failed: {e}"))?;
    let (io, len) = bringup::legacy_io_bar(bars[0])?;
    crate::glue::mmu::map_io(io, len).map_err(|e| {
        log::error!("virtio-balloon: {e}");
        "cannot map BAR0"
    })?;
    let base = NonNull::new(io as usize as *mut LegacyRegs).ok_or("BAR0 at address 0")?;
    // SAFETY: `base` is the device's legacy register block (BAR0 through the
    // bridge's I/O window, at least BAR_LEN long), which nothing else touches.
    let mut regs = unsafe { LegacyRegisters::new(base) };
    // The order, the queues' roles and FAILED on any error are the library's;
    // here the memory each step needs.
    let (parts, features) = bringup::bring_up(&mut Setup(&mut regs), |n| {
        let q = n.queues;
        let report = match q.report {
            Some((index, vq)) => {
                Some(ReportRing::new(vq, index).ok_or("no memory for the report descriptors")?)
            }
            None => None,
        };
        // Inflate and deflate completions are polled: no interrupt for them,
        // only for configuration changes (and the statistics queue).
        let (mut inflate, mut deflate) = (q.inflate, q.deflate);
        inflate.suppress_used_interrupts();
        deflate.suppress_used_interrupts();
        let stats = match q.stats {
            Some(vq) => {
                let mem = alloc_pages(PAGE_BYTES).ok_or("no memory for the statistics buffer")?;
                // SAFETY: a page of zeroed bytes, never freed and handed to nobody
                // else; the array fits, and the reference is the only one.
                let buf = unsafe { &mut *mem.as_ptr().cast::<[u8; STATS_BYTES]>() };
                Some((vq, buf))
            }
            None => None,
        };
        const PFN_BYTES: usize = 4 * PFNS_PER_BUFFER * WINDOW;
        let mem = alloc_pages(PFN_BYTES).ok_or("no memory for the PFN buffers")?;
        // SAFETY: PFN_BYTES zeroed bytes, page-aligned, never freed and handed
        // to nobody else: exactly the [[u32; 256]; WINDOW] of the window's
        // buffers, zero is a valid u32, and the reference is the only one for
        // the kernel's lifetime.
        let pfns = unsafe { &mut *mem.as_ptr().cast::<[[u32; PFNS_PER_BUFFER]; WINDOW]>() };
        Ok((inflate, deflate, stats, report, pfns))
    })?;
    let (inflate, deflate, stats, report, pfns) = parts;
    // Where the helper CPU finds the notify register and the PFN queues'
    // indexes (`overlapped`).
    for (q, vq) in [&inflate, &deflate].into_iter().enumerate() {
        let l = vq.layout();
        RING_IDX[q][0].store(vq.address() + l.avail_idx(), Ordering::Release);
        RING_IDX[q][1].store(vq.address() + l.used_idx(), Ordering::Release);
    }
    REG_BASE.store(base.as_ptr() as usize, Ordering::Release);
    let ring = RingBalloon::new(
        Regs { regs },
        [Ring::new(inflate), Ring::new(deflate)],
        pfns,
        stats.map(|(vq, buf)| (Ring::new(vq), buf)),
    );
    let mut dev = LegacyBalloon {
        ring: match report {
            Some(r) => ring.with_reporting(r),
            None => ring,
        },
    };
    dev.write_actual(0);
    let (inflate_size, deflate_size, stats_on) = dev.ring.shape();
    log::info!(
        "virtio-balloon: legacy device at I/O {io:#x}, host features {features:#010x}, queues {inflate_size}/{deflate_size}, statistics {}, free page reporting {}, num_pages {}",
        if stats_on { "on" } else { "off" },
        if dev.reporting_on() { "on" } else { "off" },
        dev.num_pages()
    );
    Ok((dev, io as usize + legacy::ISR_OFFSET))
}

/// The registers as the library's handshake reaches them.
struct Setup<'r>(&'r mut LegacyRegisters<'static>);

impl bringup::Handshake for Setup<'_> {
    type Queue = SplitQueue<'static>;
    fn set_status(&mut self, status: u8) {
        self.0.set_status(status);
    }
    fn host_features(&mut self) -> u32 {
        self.0.host_features()
    }
    fn set_guest_features(&mut self, features: u32) {
        self.0.set_guest_features(features);
    }
    fn setup_queue(&mut self, index: u16) -> Result<SplitQueue<'static>, &'static str> {
        setup_queue(self.0, index)
    }
}

/// Selects queue `q`, gives it zeroed memory and returns it.
fn setup_queue(
    regs: &mut LegacyRegisters<'static>,
    q: u16,
) -> Result<SplitQueue<'static>, &'static str> {
    let size = regs.select_queue(q);
    let layout = QueueLayout::legacy(size).ok_or("queue size is not a power of two")?;
    let mem = alloc_pages(layout.bytes).ok_or("no memory for the virtqueues")?;
    let pfn = u32::try_from(mem.as_ptr() as usize >> LEGACY_PFN_SHIFT)
        .map_err(|_| "virtqueue above 16 TiB")?;
    regs.set_queue_pfn(pfn);
    // SAFETY: `mem` is zeroed, page-aligned (so `LEGACY_ALIGN`-aligned), `layout.bytes` long and never freed;
    // only this queue and the device use it.
    Ok(unsafe { SplitQueue::new(mem, layout, GUEST_ORDER) })
}

impl LegacyBalloon {
    /// Whether free page reporting was negotiated and still works (a device
    /// stopped after a protocol violation or a timeout, on any queue, is not
    /// used for reports either).
    pub fn reporting_on(&self) -> bool {
        self.ring.reporting_on()
    }
}

impl cmm::FreeReporter for LegacyBalloon {
    fn max_ranges(&self) -> usize {
        self.ring.max_ranges()
    }

    fn start(&mut self, ranges: &[cmm::ReportRange]) -> bool {
        self.ring.start(ranges)
    }

    fn poll(&mut self) -> cmm::ReportPoll {
        self.ring.poll()
    }
}

impl BalloonTransport for LegacyBalloon {
    type Error = DeviceError;

    fn send(&mut self, queue: Queue, pfns: &[u32]) -> Result<(), DeviceError> {
        self.ring.send(queue, pfns)
    }

    fn drain(&mut self) -> Result<(), DeviceError> {
        self.ring.drain()
    }

    fn write_actual(&mut self, pages: u32) {
        self.ring.write_actual(pages);
    }

    fn num_pages(&self) -> u32 {
        self.ring.num_pages()
    }

    fn busy_ns(&self) -> u64 {
        self.ring.busy_ns()
    }

    fn helper_notifies(&self) -> (u64, u64) {
        self.ring.helper_notifies()
    }

    fn wait_report(&mut self) -> Option<bool> {
        self.ring.wait_report()
    }

    fn stats_wanted(&mut self) -> bool {
        self.ring.stats_wanted()
    }

    fn send_stats(&mut self, entries: &[u8; STATS_BYTES]) {
        self.ring.send_stats(entries);
    }

    fn check(&mut self) -> Result<(), DeviceError> {
        self.ring.check()
    }
}
