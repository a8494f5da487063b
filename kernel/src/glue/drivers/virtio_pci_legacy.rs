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
//! The I/O BAR is reached at its CPU address, mapped cache-inhibited and guarded
//! (`mmu::map_io`) once translation is on; QEMU dispatches the accesses as MMIO
//! (PowerVM has no virtio).
//! Queue and buffer addresses are guest-physical (no TCEs: the device does not
//! get `VIRTIO_F_IOMMU_PLATFORM`).

use alloc::alloc::{alloc_zeroed, Layout};
use alloc::string::String;
use core::ptr::NonNull;
use kernel::devtree::Platform;
use kernel::pci::{BarKind, Bridge, Function};
use kernel::virtio_balloon::legacy::{self, LegacyRegisters, LegacyRegs};
use kernel::virtio_balloon::reporting;
use kernel::virtio_balloon::ring::{DeviceError, DeviceRegs, ReportRing, Ring, RingBalloon};
use kernel::virtio_balloon::stats::{F_STATS_VQ, STATS_BYTES};
use kernel::virtio_balloon::{
    BalloonTransport, Queue, QueueLayout, SplitQueue, DEVICE_BALLOON_MODERN,
    DEVICE_BALLOON_TRANSITIONAL, GUEST_ORDER, PFNS_PER_BUFFER, VENDOR_VIRTIO,
};

use super::rtas_pci::{self, RtasConfig};
use crate::clock;

/// The address of the ISR register of the device [`bring_up`] mapped (0: none).
static ISR: core::sync::atomic::AtomicUsize = core::sync::atomic::AtomicUsize::new(0);

/// Reads (and so acknowledges) the device's ISR register from the interrupt
/// handler: the read lowers the INTx line (level-sensitive), so the EOI after it
/// does not re-present the interrupt. 0 when no device was brought up.
pub fn acknowledge_interrupt() -> u8 {
    let isr = ISR.load(core::sync::atomic::Ordering::Acquire);
    if isr == 0 {
        return 0;
    }
    // SAFETY: `bring_up` stored the address of the ISR register inside the
    // device's register block, which it mapped cache-inhibited for the kernel's
    // life; a read has no effect but the acknowledgement.
    unsafe { core::ptr::read_volatile(isr as *const u8) }
}

/// The legacy registers and the clock, as the ring transport wants them.
pub struct Regs {
    regs: LegacyRegisters<'static>,
}

impl DeviceRegs for Regs {
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
    /// Where its INTx comes from (the host bridge's name, the devfn) and the
    /// address of the ISR register that acknowledges it.
    irq: (String, u8, usize),
}

// SAFETY: the device's register block and its rings are memory every CPU
// reaches at the same address (mapped for the kernel's life); what makes the
// raw pointers inside not `Send` is only that they are raw. The balloon lives
// in `System` and is used by one CPU at a time: the main loop, or under the
// lock `stress` shares the system with.
unsafe impl Send for LegacyBalloon {}

impl LegacyBalloon {
    /// The interrupt hook: the host bridge's name and devfn (to find the INTx
    /// source in the tree) and the address of the ISR register, whose read
    /// acknowledges the interrupt and tells a configuration change (bit 1).
    pub fn irq_hook(&self) -> (String, u8, usize) {
        self.irq.clone()
    }
}

/// Page-aligned, zeroed memory that lives as long as the kernel.
fn alloc_pages(bytes: usize) -> Option<NonNull<u8>> {
    let layout = Layout::from_size_align(bytes, 4096).ok()?;
    // SAFETY: the layout has a non-zero size; the memory is never freed (the
    // device keeps using it).
    NonNull::new(unsafe { alloc_zeroed(layout) })
}

/// Finds the balloon on the PCI host bridges and brings it up. `None` when there
/// is none, or it cannot be used (logged).
pub fn probe(platform: &Platform) -> Option<LegacyBalloon> {
    for phb in &platform.phbs {
        let mut bridge = match rtas_pci::bridge(phb, platform) {
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
                Ok(b) => return Some(b),
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
) -> Result<LegacyBalloon, alloc::string::String> {
    let (bars, _) = bridge
        .setup(f)
        .map_err(|e| alloc::format!("PCI configuration through RTAS failed: {e}"))?;
    let bar0 = bars[0].ok_or("no BAR0")?;
    if bar0.kind != BarKind::Io || bar0.size < legacy::BAR_LEN {
        return Err("BAR0 is not the legacy I/O BAR".into());
    }
    let io = bar0
        .cpu_addr
        .ok_or("BAR0 is outside the bridge's I/O window")?;
    crate::glue::mmu::map_io(io, bar0.size).map_err(|e| {
        log::error!("virtio-balloon: {e}");
        "cannot map BAR0"
    })?;
    let base = NonNull::new(io as usize as *mut LegacyRegs).ok_or("BAR0 at address 0")?;
    // SAFETY: `base` is the device's legacy register block (BAR0 through the
    // bridge's I/O window, at least BAR_LEN long), which nothing else touches.
    let mut regs = unsafe { LegacyRegisters::new(base) };
    ISR.store(
        io as usize + legacy::ISR_OFFSET,
        core::sync::atomic::Ordering::Release,
    );
    // Reset first: it fixes the device's endianness to the CPU's current mode.
    regs.set_status(0);
    regs.set_status(legacy::STATUS_ACK);
    regs.set_status(legacy::STATUS_ACK | legacy::STATUS_DRIVER);
    let features = regs.host_features();
    let accepted = reporting::accepted_features(features);
    regs.set_guest_features(accepted);
    let queue_count = reporting::queue_count(accepted);
    let mut qs = [None, None, None, None];
    for (q, slot) in (0u16..queue_count).zip(qs.iter_mut()) {
        match setup_queue(&mut regs, q) {
            Ok(vq) => *slot = Some(vq),
            Err(e) => {
                regs.set_status(legacy::STATUS_FAILED);
                return Err(e.into());
            }
        }
    }
    let [Some(mut inflate), Some(mut deflate), q2, q3] = qs else {
        return Err("virtqueue setup".into());
    };
    let (stats_vq, report_vq) = if accepted & F_STATS_VQ != 0 {
        (q2, q3)
    } else {
        (None, q2)
    };
    let report = match (reporting::reporting_queue(accepted), report_vq) {
        (Some(index), Some(vq)) => match ReportRing::new(vq, index) {
            Some(q) => Some(q),
            None => {
                regs.set_status(legacy::STATUS_FAILED);
                return Err("no memory for the report descriptors".into());
            }
        },
        _ => None,
    };
    // Inflate and deflate completions are polled: no interrupt for them, only
    // for configuration changes (and the statistics queue).
    inflate.suppress_used_interrupts();
    deflate.suppress_used_interrupts();
    let stats = match stats_vq {
        Some(vq) => {
            let Some(mem) = alloc_pages(4096) else {
                regs.set_status(legacy::STATUS_FAILED);
                return Err("no memory for the statistics buffer".into());
            };
            // SAFETY: 4096 zeroed bytes, never freed and handed to nobody else;
            // the array fits, and the reference is the only one.
            let buf = unsafe { &mut *mem.as_ptr().cast::<[u8; STATS_BYTES]>() };
            Some((vq, buf))
        }
        None => None,
    };
    let Some(mem) = alloc_pages(4096) else {
        regs.set_status(legacy::STATUS_FAILED);
        return Err("no memory for the PFN buffer".into());
    };
    regs.set_status(legacy::STATUS_ACK | legacy::STATUS_DRIVER | legacy::STATUS_DRIVER_OK);
    // SAFETY: 4096 zeroed bytes, 4096-aligned, never freed and handed to nobody
    // else: the 1024 bytes of a [u32; 256] fit, zero is a valid u32, and the
    // reference is the only one for the kernel's lifetime.
    let pfns = unsafe { &mut *mem.as_ptr().cast::<[u32; PFNS_PER_BUFFER]>() };
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
        irq: (
            bridge.name.clone(),
            f.devfn,
            io as usize + legacy::ISR_OFFSET,
        ),
    };
    dev.write_actual(0);
    let (inflate_size, deflate_size, stats_on) = dev.ring.shape();
    log::info!(
        "virtio-balloon: legacy device at I/O {io:#x}, host features {features:#010x}, queues {inflate_size}/{deflate_size}, statistics {}, free page reporting {}, num_pages {}",
        if stats_on { "on" } else { "off" },
        if dev.reporting_on() { "on" } else { "off" },
        dev.num_pages()
    );
    Ok(dev)
}

/// Selects queue `q`, gives it zeroed memory and returns it.
fn setup_queue(
    regs: &mut LegacyRegisters<'static>,
    q: u16,
) -> Result<SplitQueue<'static>, &'static str> {
    let size = regs.select_queue(q);
    let layout = QueueLayout::legacy(size).ok_or("queue size is not a power of two")?;
    let mem = alloc_pages(layout.bytes).ok_or("no memory for the virtqueues")?;
    let pfn = u32::try_from(mem.as_ptr() as usize >> 12).map_err(|_| "virtqueue above 16 TiB")?;
    regs.set_queue_pfn(pfn);
    // SAFETY: `mem` is zeroed, 4096-aligned, `layout.bytes` long and never freed;
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

    fn write_actual(&mut self, pages: u32) {
        self.ring.write_actual(pages);
    }

    fn num_pages(&self) -> u32 {
        self.ring.num_pages()
    }

    fn busy_ns(&self) -> u64 {
        self.ring.busy_ns()
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
