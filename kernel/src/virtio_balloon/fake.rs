//! A virtio-balloon device in host memory, for host tests: it reads the rings the
//! kernel's [`RingBalloon`] writes, as QEMU does, and answers honestly or with
//! one of the lies a buggy or hostile host could tell ([`Lie`]). It records what
//! it was given and whether the kernel ever touched the rings after stopping.

use alloc::boxed::Box;
use alloc::collections::BTreeSet;
use alloc::vec;
use alloc::vec::Vec;
use core::cell::Cell;
use core::ptr::NonNull;

use super::ring::{DeviceRegs, ReportRing, Ring, RingBalloon};
use super::stats::{STATS_BYTES, STATS_QUEUE};
use super::used::WINDOW;
use super::virtqueue::{QueueLayout, SplitQueue};
use super::{Queue, PFNS_PER_BUFFER};

/// How the fake device misbehaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lie {
    /// None: an honest device.
    Honest,
    /// Uses buffer `id` 7, never made available.
    UnknownId,
    /// Uses the buffer, then returns it once more (after the kernel took it).
    SameIdTwice,
    /// Says it wrote more bytes than the buffer has.
    LenBeyondBuffer,
    /// Moves the used index past the ring.
    IndexJump,
    /// Never uses a buffer.
    NeverUses,
    /// `num_pages` far beyond RAM.
    NumPagesBeyondRam,
    /// `num_pages` different on every read.
    NumPagesChanging,
    /// Returns the statistics buffer the moment it gets it, forever.
    EndlessStats,
}

/// The fake device's registers and its view of the queue memory.
pub struct FakeRegs {
    /// The lie it tells.
    pub lie: Lie,
    queues: [(NonNull<u8>, QueueLayout); 4],
    /// Pages it holds.
    pub held: BTreeSet<u32>,
    /// Every PFN it was given, by queue, in order.
    pub seen: Vec<(Queue, Vec<u32>)>,
    /// Every free-page report it used: the chain's (address, length) ranges.
    pub reports: Vec<Vec<(u64, u32)>>,
    /// Statistics buffers it received.
    pub stats_received: u64,
    /// The last `actual` written.
    pub actual: u32,
    /// `num_pages` (when not lying about it).
    pub num_pages: u32,
    reads: Cell<u32>,
    clock: Cell<u64>,
    /// Notifies in total.
    pub notifies: u64,
    /// A used entry to write again on the next `actual` (`SameIdTwice`):
    /// queue and descriptor.
    replay: Option<(usize, u32)>,
    /// The next avail index the device has not taken, by queue.
    next_avail: [u16; 4],
    /// Kicks are notifies another CPU makes later: the kernel does not wait
    /// for them (`kick` answers true), and the device works on them only
    /// when the kernel waits (`relax`).
    pub async_kicks: bool,
    /// Kicked queues the device has not looked at yet (`async_kicks`).
    pub kicked: Vec<u16>,
    /// The most PFN buffers that were in flight at once.
    pub max_in_flight: usize,
    /// Called with the PFNs of each deflate buffer the device takes: what the
    /// kernel may not hand out until then (tests record it).
    pub on_deflate: Option<fn(&[u32])>,
}

impl FakeRegs {
    fn u16_at(&self, q: usize, off: usize) -> u16 {
        let (base, _) = self.queues[q];
        // SAFETY: `off` is inside the queue memory (from its layout), which the
        // harness keeps alive and 8-byte aligned; u16 fields are 2-aligned.
        unsafe { base.as_ptr().add(off).cast::<u16>().read_volatile() }
    }

    fn write_used(&mut self, q: usize, id: u32, len: u32, idx: u16) {
        let (base, layout) = self.queues[q];
        let slot = usize::from(idx.wrapping_sub(1) % layout.size);
        let elem = layout.used + 4 + 8 * slot;
        // SAFETY: the used ring lies inside the queue memory (its layout); the
        // fields are 4- and 2-aligned in 8-aligned memory.
        unsafe {
            base.as_ptr().add(elem).cast::<u32>().write_volatile(id);
            base.as_ptr()
                .add(elem + 4)
                .cast::<u32>()
                .write_volatile(len);
            base.as_ptr()
                .add(layout.used_idx())
                .cast::<u16>()
                .write_volatile(idx);
        }
    }

    /// Descriptor `i` of queue `q`: (address, length, flags, next).
    fn descriptor_at(&self, q: usize, i: usize) -> (u64, u32, u16, u16) {
        let (base, layout) = self.queues[q];
        assert!(
            i < usize::from(layout.size),
            "descriptor {i} past the table"
        );
        // SAFETY: descriptor `i` is inside the table at the start of the queue
        // memory (checked above); the fields are aligned in 8-aligned memory.
        unsafe {
            let d = base.as_ptr().add(16 * i);
            (
                d.cast::<u64>().read_volatile(),
                d.add(8).cast::<u32>().read_volatile(),
                d.add(12).cast::<u16>().read_volatile(),
                d.add(14).cast::<u16>().read_volatile(),
            )
        }
    }

    /// The chain from descriptor 0 of queue `q`, every one device-writable:
    /// its (address, length) ranges.
    fn writable_chain(&self, q: usize) -> Vec<(u64, u32)> {
        let mut out = Vec::new();
        let mut i = 0usize;
        loop {
            let (addr, len, flags, next) = self.descriptor_at(q, i);
            assert!(flags & 2 != 0, "a report buffer the device may not write");
            out.push((addr, len));
            if flags & 1 == 0 {
                return out;
            }
            assert!(
                out.len() < usize::from(self.queues[q].1.size),
                "a looping chain"
            );
            i = usize::from(next);
        }
    }
}

impl DeviceRegs for FakeRegs {
    fn notify(&mut self, queue: u16) {
        self.notifies += 1;
        let q = usize::from(queue);
        let avail = self.u16_at(q, self.queues[q].1.avail_idx());
        if q == usize::from(STATS_QUEUE) {
            self.stats_received += 1;
            if self.lie == Lie::EndlessStats {
                self.write_used(q, 0, 0, avail);
            }
            return;
        }
        if q == usize::from(REPORT_QUEUE) {
            let chain = self.writable_chain(q);
            let total: u32 = chain.iter().map(|&(_, l)| l).sum();
            match self.lie {
                Lie::NeverUses => return,
                Lie::UnknownId => return self.write_used(q, 7, 0, avail),
                Lie::LenBeyondBuffer => return self.write_used(q, 0, total + 1, avail),
                Lie::IndexJump => return self.write_used(q, 0, 0, avail.wrapping_add(300)),
                _ => {}
            }
            self.reports.push(chain);
            // QEMU uses a report with length 0 (it wrote nothing).
            self.write_used(q, 0, 0, avail);
            if self.lie == Lie::SameIdTwice {
                self.replay = Some((q, 0));
            }
            return;
        }
        let queue = if q == 0 {
            Queue::Inflate
        } else {
            Queue::Deflate
        };
        // As QEMU: every buffer made available since the last look.
        let used_now = self.u16_at(q, self.queues[q].1.used_idx());
        let waiting = usize::from(avail.wrapping_sub(used_now));
        self.max_in_flight = self.max_in_flight.max(waiting);
        let mut used = used_now;
        while self.next_avail[q] != avail {
            let layout = self.queues[q].1;
            let head = self.u16_at(q, layout.avail_slot(self.next_avail[q]));
            let head = super::GUEST_ORDER.loaded(head);
            self.next_avail[q] = self.next_avail[q].wrapping_add(1);
            let (addr, len, _, _) = self.descriptor_at(q, usize::from(head));
            let id = u32::from(head);
            used = used.wrapping_add(1);
            match self.lie {
                Lie::NeverUses => return,
                Lie::UnknownId => return self.write_used(q, 7, 0, used),
                Lie::LenBeyondBuffer => return self.write_used(q, id, len + 4096, used),
                Lie::IndexJump => return self.write_used(q, id, 0, used.wrapping_add(300)),
                _ => {}
            }
            let n = (len / 4) as usize;
            assert!(n <= PFNS_PER_BUFFER, "a buffer longer than the PFN buffer");
            // SAFETY: the kernel published its PFN buffer (host memory here)
            // with `len` bytes; the device reads it as QEMU would.
            let pfns: Vec<u32> = unsafe {
                core::slice::from_raw_parts(usize::try_from(addr).unwrap() as *const u32, n)
            }
            .iter()
            .map(|&p| super::GUEST_ORDER.loaded(p))
            .collect();
            for &p in &pfns {
                match queue {
                    Queue::Inflate => {
                        assert!(self.held.insert(p), "pfn {p} inflated twice");
                    }
                    Queue::Deflate => {
                        assert!(self.held.remove(&p), "pfn {p} deflated but not held");
                    }
                }
            }
            if queue == Queue::Deflate {
                if let Some(f) = self.on_deflate {
                    f(&pfns);
                }
            }
            self.seen.push((queue, pfns));
            self.write_used(q, id, 0, used);
            if self.lie == Lie::SameIdTwice {
                self.replay = Some((q, id));
            }
        }
    }

    fn read_isr(&mut self) -> u8 {
        0
    }

    fn num_pages(&self) -> u32 {
        let r = self.reads.get();
        self.reads.set(r.wrapping_add(1));
        match self.lie {
            Lie::NumPagesBeyondRam => u32::MAX - 5,
            Lie::NumPagesChanging => self.num_pages.wrapping_add(r.wrapping_mul(977)),
            _ => self.num_pages,
        }
    }

    fn write_actual(&mut self, pages: u32) {
        self.actual = pages;
        if let Some((rq, id)) = self.replay.take() {
            // The buffer the kernel just took, returned once more.
            let idx = self.u16_at(rq, self.queues[rq].1.used_idx());
            self.write_used(rq, id, 0, idx.wrapping_add(1));
        }
    }

    fn now_us(&self) -> u64 {
        self.clock.get()
    }

    fn relax(&mut self) {
        // Every wait step takes a millisecond of (fake) time; the other CPU
        // makes the notifies it was asked for meanwhile.
        self.clock.set(self.clock.get() + 1000);
        for q in core::mem::take(&mut self.kicked) {
            self.notify(q);
        }
    }

    fn kick(&mut self, queue: u16) -> bool {
        if self.async_kicks {
            self.kicked.push(queue);
            true
        } else {
            self.notify(queue);
            false
        }
    }
}

/// The reporting queue's number in the fake (after the statistics queue).
pub const REPORT_QUEUE: u16 = 3;

/// Zeroed, 8-aligned memory that lives for the rest of the test run.
fn leak(bytes: usize) -> NonNull<u8> {
    let words: &'static mut [u64] = Box::leak(vec![0u64; bytes.div_ceil(8)].into_boxed_slice());
    NonNull::from(words).cast::<u8>()
}

/// A device telling `lie`, wired to a [`RingBalloon`] with queues of 128 entries
/// and, with `stats`, the statistics queue.
pub fn device(lie: Lie, stats: bool) -> RingBalloon<'static, FakeRegs> {
    device_with(lie, stats, false)
}

/// [`device`] with, when `reporting`, the free-page reporting queue (number
/// [`REPORT_QUEUE`]) too: it tells the same lie on it.
pub fn device_with(lie: Lie, stats: bool, reporting: bool) -> RingBalloon<'static, FakeRegs> {
    let layout = QueueLayout::legacy(128).expect("layout");
    let mem = [
        leak(layout.bytes),
        leak(layout.bytes),
        leak(layout.bytes),
        leak(layout.bytes),
    ];
    // SAFETY: each block is zeroed, `layout.bytes` long, 8-aligned (enough on the
    // host), lives forever and is used by this queue and the fake device only.
    let ring = |i: usize| Ring::new(unsafe { SplitQueue::new(mem[i], layout, super::GUEST_ORDER) });
    let pfns: &'static mut [[u32; PFNS_PER_BUFFER]; WINDOW] =
        Box::leak(Box::new([[0; PFNS_PER_BUFFER]; WINDOW]));
    let stats_buf: &'static mut [u8; STATS_BYTES] = Box::leak(Box::new([0; STATS_BYTES]));
    let regs = FakeRegs {
        lie,
        queues: [
            (mem[0], layout),
            (mem[1], layout),
            (mem[2], layout),
            (mem[3], layout),
        ],
        held: BTreeSet::new(),
        seen: Vec::new(),
        reports: Vec::new(),
        stats_received: 0,
        actual: 0,
        num_pages: 0,
        reads: Cell::new(0),
        clock: Cell::new(0),
        notifies: 0,
        replay: None,
        next_avail: [0; 4],
        async_kicks: false,
        kicked: Vec::new(),
        max_in_flight: 0,
        on_deflate: None,
    };
    let dev = RingBalloon::new(
        regs,
        [ring(0), ring(1)],
        pfns,
        stats.then(|| (ring(2), stats_buf)),
    );
    if reporting {
        // SAFETY: as for the other queues.
        let q = unsafe { SplitQueue::new(mem[3], layout, super::GUEST_ORDER) };
        dev.with_reporting(ReportRing::new(q, REPORT_QUEUE).expect("descriptors"))
    } else {
        dev
    }
}
