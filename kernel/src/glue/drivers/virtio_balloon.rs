//! The virtio balloon on QEMU's pseries: the transitional device (1af4:1002)
//! driven through the legacy interface on its I/O BAR, with two split virtqueues
//! (inflate, deflate), polled. The modern-only device (1af4:1045) is refused with
//! a log line. Implements [`BalloonTransport`] for the library's
//! [`kernel::virtio::BalloonState`].
//!
//! Real mode: the I/O BAR is reached with plain loads and stores at its CPU
//! address, which QEMU's virtual hypervisor dispatches as MMIO (a real
//! hypervisor would need a cache-inhibited mapping; PowerVM has no virtio).
//! Queue and buffer addresses are guest-physical (no TCEs: the device does not
//! get `VIRTIO_F_IOMMU_PLATFORM`).

use alloc::alloc::{alloc_zeroed, Layout};
use core::sync::atomic::{fence, Ordering};
use kernel::devtree::Platform;
use kernel::virtio::{
    legacy, BalloonTransport, Queue, QueueLayout, DEVICE_BALLOON_MODERN,
    DEVICE_BALLOON_TRANSITIONAL, PFNS_PER_BUFFER, VENDOR_VIRTIO,
};

use super::pci::Bridge;
use crate::clock;

/// How long the device may take to use a buffer.
const USE_TIMEOUT_US: u64 = 1_000_000;

/// One split virtqueue in memory the kernel owns.
struct Vq {
    base: usize,
    layout: QueueLayout,
    next_avail: u16,
}

/// The legacy balloon device, set up and running.
pub struct LegacyBalloon {
    io: usize,
    queues: [Vq; 2],
    pfns: usize,
    /// What `actual` holds now (`None` before the first write).
    actual: Option<u32>,
}

/// Why the device could not be used.
#[derive(Clone, Copy, Debug)]
pub enum DeviceError {
    /// The device did not use a buffer in time.
    Timeout(Queue),
}

impl core::fmt::Display for DeviceError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            DeviceError::Timeout(q) => write!(f, "the device did not use a {q:?} buffer in 1 s"),
        }
    }
}

// Accessors for the I/O BAR (PCI little-endian) and for queue memory
// (guest-native endianness, which the reset fixed).

/// # Safety
/// `addr` must be a device register or queue memory this driver owns.
unsafe fn rd8(addr: usize) -> u8 {
    // SAFETY: forwarded from the caller.
    unsafe { core::ptr::read_volatile(addr as *const u8) }
}

/// # Safety
/// As [`rd8`].
unsafe fn wr8(addr: usize, v: u8) {
    // SAFETY: forwarded from the caller.
    unsafe { core::ptr::write_volatile(addr as *mut u8, v) }
}

/// # Safety
/// As [`rd8`], and `addr` 2-byte aligned.
unsafe fn rd16_le(addr: usize) -> u16 {
    // SAFETY: forwarded from the caller.
    u16::from_le(unsafe { core::ptr::read_volatile(addr as *const u16) })
}

/// # Safety
/// As [`rd16_le`].
unsafe fn wr16_le(addr: usize, v: u16) {
    // SAFETY: forwarded from the caller.
    unsafe { core::ptr::write_volatile(addr as *mut u16, v.to_le()) }
}

/// # Safety
/// As [`rd8`], and `addr` 4-byte aligned.
unsafe fn rd32_le(addr: usize) -> u32 {
    // SAFETY: forwarded from the caller.
    u32::from_le(unsafe { core::ptr::read_volatile(addr as *const u32) })
}

/// # Safety
/// As [`rd32_le`].
unsafe fn wr32_le(addr: usize, v: u32) {
    // SAFETY: forwarded from the caller.
    unsafe { core::ptr::write_volatile(addr as *mut u32, v.to_le()) }
}

/// # Safety
/// `addr` must be naturally aligned queue memory this driver owns.
unsafe fn wr_native<T>(addr: usize, v: T) {
    // SAFETY: forwarded from the caller.
    unsafe { core::ptr::write_volatile(addr as *mut T, v) }
}

/// Page-aligned, zeroed memory that lives as long as the kernel.
fn alloc_pages(bytes: usize) -> Option<usize> {
    let layout = Layout::from_size_align(bytes, 4096).ok()?;
    // SAFETY: the layout has a non-zero size; the memory is never freed (the
    // device keeps using it).
    let p = unsafe { alloc_zeroed(layout) };
    (!p.is_null()).then_some(p as usize)
}

/// Finds the balloon on the PCI host bridges and brings it up. `None` when there
/// is none, or it cannot be used (logged).
pub fn probe(platform: &Platform) -> Option<LegacyBalloon> {
    for phb in &platform.phbs {
        let bridge = match Bridge::new(phb, platform) {
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
            match bring_up(&bridge, &f) {
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

fn bring_up(bridge: &Bridge, f: &super::pci::Function) -> Result<LegacyBalloon, &'static str> {
    let bars = bridge
        .setup(f)
        .map_err(|_| "PCI configuration through RTAS failed")?;
    let bar0 = bars[0].ok_or("no BAR0")?;
    if bar0.kind != kernel::pci::BarKind::Io || bar0.size < legacy::BAR_LEN {
        return Err("BAR0 is not the legacy I/O BAR");
    }
    let io = bar0
        .cpu_addr
        .ok_or("BAR0 is outside the bridge's I/O window")? as usize;
    // SAFETY: `io` is the device's legacy register block (BAR0 through the I/O
    // window), which nothing else in the kernel touches.
    let (features, queues) = unsafe {
        // Reset first: it fixes the device's endianness to the CPU's current mode.
        wr8(io + legacy::STATUS, 0);
        wr8(io + legacy::STATUS, legacy::STATUS_ACK);
        wr8(
            io + legacy::STATUS,
            legacy::STATUS_ACK | legacy::STATUS_DRIVER,
        );
        let features = rd32_le(io + legacy::HOST_FEATURES);
        wr32_le(io + legacy::GUEST_FEATURES, 0);
        let mut qs = [None, None];
        for (q, slot) in qs.iter_mut().enumerate() {
            wr16_le(io + legacy::QUEUE_SELECT, q as u16);
            let size = rd16_le(io + legacy::QUEUE_SIZE);
            let Some(layout) = QueueLayout::legacy(size) else {
                wr8(io + legacy::STATUS, legacy::STATUS_FAILED);
                return Err("queue size is not a power of two");
            };
            let Some(base) = alloc_pages(layout.bytes) else {
                wr8(io + legacy::STATUS, legacy::STATUS_FAILED);
                return Err("no memory for the virtqueues");
            };
            let Ok(pfn) = u32::try_from(base >> 12) else {
                wr8(io + legacy::STATUS, legacy::STATUS_FAILED);
                return Err("virtqueue above 16 TiB");
            };
            wr32_le(io + legacy::QUEUE_PFN, pfn);
            *slot = Some(Vq {
                base,
                layout,
                next_avail: 0,
            });
        }
        wr8(
            io + legacy::STATUS,
            legacy::STATUS_ACK | legacy::STATUS_DRIVER | legacy::STATUS_DRIVER_OK,
        );
        let [Some(a), Some(b)] = qs else {
            return Err("virtqueue setup");
        };
        (features, [a, b])
    };
    let pfns = alloc_pages(4096).ok_or("no memory for the PFN buffer")?;
    let mut dev = LegacyBalloon {
        io,
        queues,
        pfns,
        actual: None,
    };
    dev.write_actual(0);
    log::info!(
        "virtio-balloon: legacy device at I/O {io:#x}, host features {features:#010x}, queues {}/{}, num_pages {}",
        dev.queues[0].layout.size,
        dev.queues[1].layout.size,
        dev.num_pages()
    );
    Ok(dev)
}

impl BalloonTransport for LegacyBalloon {
    type Error = DeviceError;

    fn send(&mut self, queue: Queue, pfns: &[u32]) -> Result<(), DeviceError> {
        let n = pfns.len().min(PFNS_PER_BUFFER);
        let buf = self.pfns;
        let io = self.io;
        let vq = &mut self.queues[queue as usize];
        let l = vq.layout;
        // SAFETY: `buf` is our 4 KiB PFN buffer (256 u32s fit); descriptor 0, the
        // avail and used rings are inside the queue memory we allocated, and only
        // one buffer is in flight at a time (we wait for it below).
        unsafe {
            for (i, &p) in pfns[..n].iter().enumerate() {
                wr_native::<u32>(buf + 4 * i, p);
            }
            wr_native::<u64>(vq.base, buf as u64);
            wr_native::<u32>(vq.base + 8, (4 * n) as u32);
            wr_native::<u16>(vq.base + 12, 0);
            wr_native::<u16>(vq.base + 14, 0);
            wr_native::<u16>(vq.base + l.avail_slot(vq.next_avail), 0);
            fence(Ordering::SeqCst);
            vq.next_avail = vq.next_avail.wrapping_add(1);
            wr_native::<u16>(vq.base + l.avail_idx(), vq.next_avail);
            fence(Ordering::SeqCst);
            wr16_le(io + legacy::QUEUE_NOTIFY, queue as u16);
        }
        let deadline = clock::now_us() + USE_TIMEOUT_US;
        loop {
            // SAFETY: the used ring's idx, inside our queue memory.
            let used = unsafe { core::ptr::read_volatile((vq.base + l.used_idx()) as *const u16) };
            if used == vq.next_avail {
                break;
            }
            if clock::now_us() > deadline {
                return Err(DeviceError::Timeout(queue));
            }
            core::hint::spin_loop();
        }
        fence(Ordering::SeqCst);
        // SAFETY: reading the ISR of our device clears its interrupt line.
        let _ = unsafe { rd8(io + legacy::ISR) };
        Ok(())
    }

    /// Writes `actual` byte by byte, only the bytes that changed: after one page
    /// that is usually a single config write (each one is a trip to the host).
    fn write_actual(&mut self, pages: u32) {
        let old = self.actual.map(u32::to_le_bytes);
        for (i, b) in pages.to_le_bytes().into_iter().enumerate() {
            if old.is_some_and(|o| o[i] == b) {
                continue;
            }
            // SAFETY: a config byte of our device.
            unsafe { wr8(self.io + legacy::ACTUAL + i, b) };
        }
        self.actual = Some(pages);
    }

    /// The host's request, `num_pages` (read byte by byte: the config is LE bytes).
    fn num_pages(&self) -> u32 {
        let mut b = [0u8; 4];
        for (i, x) in b.iter_mut().enumerate() {
            // SAFETY: a config byte of our device.
            *x = unsafe { rd8(self.io + legacy::NUM_PAGES + i) };
        }
        u32::from_le_bytes(b)
    }
}
