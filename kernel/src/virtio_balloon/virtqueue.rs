//! A legacy (virtio 0.9.5) split virtqueue in memory the kernel owns: where its
//! parts sit ([`QueueLayout`]) and [`SplitQueue`], which publishes one buffer at a
//! time and sees when the device has used it. Every access to the queue memory is
//! volatile and bounded by the layout; the fields are in the queue's byte order,
//! the guest's own ([`super::GUEST_ORDER`]: the device reset fixed that,
//! docs/virtio-balloon.md), through [`ByteOrder`].

use core::marker::PhantomData;
use core::ptr::NonNull;
use core::sync::atomic::{fence, Ordering};
use hcall::endian::ByteOrder;
use volatile::{VolatileFieldAccess, VolatilePtr};

/// Where the parts of a legacy split virtqueue of `size` entries sit, in bytes
/// from its 4 KiB-aligned start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueLayout {
    /// Entries.
    pub size: u16,
    /// The avail ring (`flags, idx, ring[size], used_event`).
    pub avail: usize,
    /// The used ring (`flags, idx, {id, len}[size], avail_event`), 4 KiB-aligned.
    pub used: usize,
    /// Total bytes, a multiple of 4 KiB.
    pub bytes: usize,
}

/// log2 of [`LEGACY_ALIGN`]: a legacy device takes a queue's address as its
/// page frame number, the address shifted right by this much (virtio 1.x
/// §4.1.5.1.3.1's `QUEUE_ADDR_SHIFT`, fixed by the transport whatever the guest's
/// page size).
pub const LEGACY_PFN_SHIFT: u32 = 12;

/// The alignment of a legacy virtqueue's start and of its used ring (4 KiB).
pub const LEGACY_ALIGN: usize = 1 << LEGACY_PFN_SHIFT;

const fn align_4k(x: usize) -> usize {
    (x + LEGACY_ALIGN - 1) & !(LEGACY_ALIGN - 1)
}

impl QueueLayout {
    /// The legacy layout: descriptors (16 bytes each) at 0, the avail ring right
    /// after, the used ring at the next 4 KiB boundary. `None` unless `size` is a
    /// power of two from 1 to 32768.
    pub fn legacy(size: u16) -> Option<QueueLayout> {
        if size == 0 || !size.is_power_of_two() {
            return None;
        }
        let n = usize::from(size);
        let avail = 16 * n;
        let used = align_4k(avail + 4 + 2 * n + 2);
        let bytes = align_4k(used + 4 + 8 * n + 2);
        Some(QueueLayout {
            size,
            avail,
            used,
            bytes,
        })
    }

    /// Offset of avail ring slot `idx` (wrapped).
    pub fn avail_slot(&self, idx: u16) -> usize {
        self.avail + 4 + 2 * usize::from(idx % self.size)
    }

    /// Offset of the avail ring's `flags` field.
    pub fn avail_flags(&self) -> usize {
        self.avail
    }

    /// Offset of the avail ring's `idx` field.
    pub fn avail_idx(&self) -> usize {
        self.avail + 2
    }

    /// Offset of the used ring's `idx` field.
    pub fn used_idx(&self) -> usize {
        self.used + 2
    }
}
/// Descriptor flag: the chain goes on at `next`.
pub const DESC_F_NEXT: u16 = 1;
/// Descriptor flag: the device writes the buffer (else it reads it).
pub const DESC_F_WRITE: u16 = 2;

/// One descriptor of the descriptor table.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, VolatileFieldAccess)]
pub struct Descriptor {
    /// Guest-physical address of the buffer.
    pub addr: u64,
    /// Its length in bytes.
    pub len: u32,
    /// [`DESC_F_NEXT`], [`DESC_F_WRITE`]; 0: one device-readable buffer.
    pub flags: u16,
    /// The next descriptor of a chain.
    pub next: u16,
}

/// A split virtqueue of one in-flight buffer, in memory shared with the device.
pub struct SplitQueue<'a> {
    base: NonNull<u8>,
    layout: QueueLayout,
    order: ByteOrder,
    next_avail: u16,
    _mem: PhantomData<&'a mut [u8]>,
}

impl<'a> SplitQueue<'a> {
    /// The queue in `layout.bytes` bytes at `base`, its fields in `order` (the
    /// driver passes [`super::GUEST_ORDER`]).
    ///
    /// # Safety
    /// `base` must be [`LEGACY_ALIGN`]-aligned, zeroed, `layout.bytes` long, live for `'a`,
    /// and touched by nothing but this queue and the device.
    pub unsafe fn new(base: NonNull<u8>, layout: QueueLayout, order: ByteOrder) -> Self {
        SplitQueue {
            base,
            layout,
            order,
            next_avail: 0,
            _mem: PhantomData,
        }
    }

    /// The layout.
    pub fn layout(&self) -> QueueLayout {
        self.layout
    }

    /// Where the queue is (its guest-physical address, with real mode on).
    pub fn address(&self) -> usize {
        self.base.as_ptr() as usize
    }

    /// A volatile pointer to the `T` at byte `offset`.
    fn at<T>(&self, offset: usize) -> VolatilePtr<'a, T> {
        assert!(
            offset.is_multiple_of(core::mem::align_of::<T>())
                && offset + core::mem::size_of::<T>() <= self.layout.bytes,
            "virtqueue access outside the queue"
        );
        // SAFETY: the offset is aligned and inside the queue memory (checked
        // above), which `new`'s contract makes ours for 'a.
        unsafe { VolatilePtr::new(self.base.add(offset).cast::<T>()) }
    }

    /// Asks the device not to interrupt when it uses a buffer of this queue
    /// (the avail ring's `VIRTQ_AVAIL_F_NO_INTERRUPT`, bit 0 of its flags; a
    /// hint the device may ignore): completions are polled, and only the
    /// configuration-change interrupt wakes the kernel (docs/interrupts.md).
    pub fn suppress_used_interrupts(&mut self) {
        self.at::<u16>(self.layout.avail_flags())
            .write(self.order.stored(1));
    }

    /// Publishes one device-readable buffer (descriptor 0) and makes it
    /// available; the caller notifies the device. The previous buffer must have
    /// been used ([`SplitQueue::is_used`]).
    pub fn publish(&mut self, addr: u64, len: u32) {
        self.publish_at(0, addr, len);
    }

    /// Publishes one device-readable buffer in descriptor `head` (below the
    /// queue's size) and makes it available; the caller notifies the device.
    /// The buffer that descriptor held before must have been used.
    pub fn publish_at(&mut self, head: u16, addr: u64, len: u32) {
        let desc = self.at::<Descriptor>(16 * usize::from(head));
        let o = self.order;
        desc.write(Descriptor {
            addr: o.stored(addr),
            len: o.stored(len),
            flags: 0,
            next: 0,
        });
        self.make_available(head);
    }

    /// Publishes `bufs` (address, length) as one chain of device-writable
    /// descriptors, 0 to `bufs.len() - 1`, and makes it available; the caller
    /// notifies the device. The previous buffer must have been used. Returns
    /// false, publishing nothing, when the chain is empty or longer than the
    /// queue.
    pub fn publish_writable_chain(&mut self, bufs: &[(u64, u32)]) -> bool {
        let n = bufs.len();
        if n == 0 || n > usize::from(self.layout.size) {
            return false;
        }
        let o = self.order;
        for (i, &(addr, len)) in bufs.iter().enumerate() {
            let last = i + 1 == n;
            let next = u16::try_from(i + 1).unwrap_or(0);
            self.at::<Descriptor>(16 * i).write(Descriptor {
                addr: o.stored(addr),
                len: o.stored(len),
                flags: o.stored(DESC_F_WRITE | if last { 0 } else { DESC_F_NEXT }),
                next: o.stored(if last { 0 } else { next }),
            });
        }
        self.make_available(0);
        true
    }

    /// Puts descriptor `head` in the next avail slot and publishes the index.
    fn make_available(&mut self, head: u16) {
        let o = self.order;
        self.at::<u16>(self.layout.avail_slot(self.next_avail))
            .write(o.stored(head));
        fence(Ordering::SeqCst);
        self.next_avail = self.next_avail.wrapping_add(1);
        self.at::<u16>(self.layout.avail_idx())
            .write(o.stored(self.next_avail));
        fence(Ordering::SeqCst);
    }

    /// The used ring's `idx` as the device last wrote it.
    pub fn used_idx(&self) -> u16 {
        let idx = self
            .order
            .loaded(self.at::<u16>(self.layout.used_idx()).read());
        fence(Ordering::SeqCst);
        idx
    }

    /// The used ring's entry for used index `idx` (wrapped to the ring), as the
    /// device wrote it: `(id, len)`.
    pub fn used_elem(&self, idx: u16) -> super::used::UsedElem {
        let at = self.layout.used + 4 + 8 * usize::from(idx % self.layout.size);
        super::used::UsedElem {
            id: self.order.loaded(self.at::<u32>(at).read()),
            len: self.order.loaded(self.at::<u32>(at + 4).read()),
        }
    }

    /// The device has used every published buffer.
    pub fn is_used(&self) -> bool {
        let used = self
            .order
            .loaded(self.at::<u16>(self.layout.used_idx()).read());
        fence(Ordering::SeqCst);
        used == self.next_avail
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec;

    #[test]
    fn queue_layout_matches_the_legacy_spec() {
        let l = QueueLayout::legacy(128).unwrap();
        assert_eq!(l.avail, 2048);
        assert_eq!(l.used, 4096);
        assert_eq!(l.bytes, 8192);
        assert_eq!(l.avail_flags(), 2048);
        assert_eq!(l.avail_idx(), 2050);
        assert_eq!(l.avail_slot(0), 2052);
        assert_eq!(l.avail_slot(129), 2054);
        assert_eq!(l.used_idx(), 4098);
        let big = QueueLayout::legacy(256).unwrap();
        assert_eq!((big.avail, big.used, big.bytes), (4096, 8192, 12288));
        assert_eq!(QueueLayout::legacy(0), None);
        assert_eq!(QueueLayout::legacy(100), None);
    }
    /// One queue of 128 entries in `order` over host memory: publishes 130
    /// buffers, checks each against `bytes_of` (the hand-worked bytes of a
    /// value in that order) and lets the "device" use it.
    fn publish_and_use(order: ByteOrder, bytes_of: fn(u64, usize) -> std::vec::Vec<u8>) {
        let layout = QueueLayout::legacy(128).unwrap();
        let mut mem = vec![0u64; layout.bytes / 8];
        let base = NonNull::new(mem.as_mut_ptr().cast::<u8>()).unwrap();
        // SAFETY: `mem` is zeroed, 8-aligned (4096 is not needed on the host),
        // `layout.bytes` long and outlives the queue.
        let mut q = unsafe { SplitQueue::new(base, layout, order) };
        assert!(q.is_used(), "nothing published yet");
        q.suppress_used_interrupts();
        let flags = layout.avail_flags();
        assert_eq!(
            &bytemuck(&mem)[flags..flags + 2],
            &bytes_of(1, 2)[..],
            "VIRTQ_AVAIL_F_NO_INTERRUPT"
        );
        for round in 1..=130u16 {
            q.publish(0x1234_5000, 1024);
            assert!(!q.is_used());
            let bytes: &[u8] = bytemuck(&mem);
            assert_eq!(&bytes[0..8], &bytes_of(0x1234_5000, 8)[..], "addr");
            assert_eq!(&bytes[8..12], &bytes_of(1024, 4)[..], "len");
            assert_eq!(&bytes[12..16], &[0; 4], "device-readable, not chained");
            let idx = layout.avail_idx();
            assert_eq!(&bytes[idx..idx + 2], &bytes_of(u64::from(round), 2)[..]);
            let slot = layout.avail_slot(round - 1);
            assert_eq!(&bytes[slot..slot + 2], &[0, 0], "descriptor 0");
            // The device uses it: it writes the used index in the same order.
            let o = layout.used_idx();
            let b = bytes_of(u64::from(round), 2);
            let raw = mem.as_mut_ptr().cast::<u8>();
            // SAFETY: inside `mem`; the queue only reads this field.
            unsafe {
                raw.add(o).write_volatile(b[0]);
                raw.add(o + 1).write_volatile(b[1]);
            }
            assert!(q.is_used());
        }
    }

    #[test]
    fn a_writable_chain_fills_descriptors_in_order() {
        let layout = QueueLayout::legacy(32).unwrap();
        let mut mem = vec![0u64; layout.bytes / 8];
        let base = NonNull::new(mem.as_mut_ptr().cast::<u8>()).unwrap();
        // SAFETY: as in the test above.
        let mut q = unsafe { SplitQueue::new(base, layout, ByteOrder::NATIVE) };
        assert!(!q.publish_writable_chain(&[]));
        let too_long = [(0u64, 0u32); 33];
        assert!(!q.publish_writable_chain(&too_long));
        assert!(q.is_used(), "nothing was published");
        let bufs = [
            (0x20_0000u64, 0x20_0000u32),
            (0x60_0000, 0x20_0000),
            (0x80_0000, 4096),
        ];
        assert!(q.publish_writable_chain(&bufs));
        assert!(!q.is_used());
        let bytes: &[u8] = bytemuck(&mem);
        let u16_at = |o: usize| u16::from_ne_bytes([bytes[o], bytes[o + 1]]);
        for (i, &(addr, len)) in bufs.iter().enumerate() {
            let d = 16 * i;
            assert_eq!(
                u64::from_ne_bytes(bytes[d..d + 8].try_into().unwrap()),
                addr
            );
            assert_eq!(
                u32::from_ne_bytes(bytes[d + 8..d + 12].try_into().unwrap()),
                len
            );
            let last = i == bufs.len() - 1;
            let flags = if last {
                DESC_F_WRITE
            } else {
                DESC_F_WRITE | DESC_F_NEXT
            };
            assert_eq!(u16_at(d + 12), flags, "descriptor {i}");
            assert_eq!(
                u16_at(d + 14),
                if last {
                    0
                } else {
                    u16::try_from(i + 1).unwrap()
                }
            );
        }
        assert_eq!(u16_at(layout.avail_idx()), 1);
        assert_eq!(
            u16_at(layout.avail_slot(0)),
            0,
            "the chain starts at descriptor 0"
        );
    }

    #[test]
    fn a_published_buffer_is_in_descriptor_0_and_the_avail_ring_big_endian() {
        publish_and_use(ByteOrder::Big, |v, n| v.to_be_bytes()[8 - n..].to_vec());
        // Hand-worked: the address 0x1234_5000 as a big-endian u64.
        assert_eq!(
            0x1234_5000u64.to_be_bytes(),
            [0, 0, 0, 0, 0x12, 0x34, 0x50, 0x00]
        );
    }

    #[test]
    fn a_published_buffer_is_in_descriptor_0_and_the_avail_ring_little_endian() {
        publish_and_use(ByteOrder::Little, |v, n| v.to_le_bytes()[..n].to_vec());
        assert_eq!(
            0x1234_5000u64.to_le_bytes(),
            [0x00, 0x50, 0x34, 0x12, 0, 0, 0, 0]
        );
    }

    fn bytemuck(words: &[u64]) -> &[u8] {
        // SAFETY: any u64 memory is valid as bytes; the length is exact.
        unsafe { core::slice::from_raw_parts(words.as_ptr().cast::<u8>(), words.len() * 8) }
    }
}
