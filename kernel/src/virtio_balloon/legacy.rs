//! The legacy (virtio 0.9.5) virtio-pci register block of the balloon, on its I/O
//! BAR, behind [`LegacyRegisters`]: a bounded, typed accessor (the `volatile`
//! crate) instead of raw addresses and offsets. The layout, valid while MSI-X is
//! off (the balloon has none), is [`LegacyRegs`]; docs/virtio-balloon.md has the
//! facts. The common registers are PCI little-endian; the device config
//! (`num_pages`, `actual`) is accessed byte by byte, as QEMU's ppc64 legacy
//! config swaps wider accesses.

use core::ptr::NonNull;
use volatile::access::ReadOnly;
use volatile::{VolatileFieldAccess, VolatilePtr};

/// A little-endian 32-bit device config field, as four bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, VolatileFieldAccess)]
pub struct ConfigLe32 {
    byte0: u8,
    byte1: u8,
    byte2: u8,
    byte3: u8,
}

/// The legacy register block with the balloon's device config.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, VolatileFieldAccess)]
pub struct LegacyRegs {
    /// Features the device offers (le32).
    #[access(ReadOnly)]
    host_features: u32,
    /// Features the driver accepts (le32).
    guest_features: u32,
    /// The selected queue's address >> 12 (le32).
    queue_pfn: u32,
    /// The selected queue's size (le16).
    #[access(ReadOnly)]
    queue_size: u16,
    /// Queue select (le16).
    queue_select: u16,
    /// Queue notify: the queue index (le16).
    queue_notify: u16,
    /// Device status.
    device_status: u8,
    /// ISR status; reading clears it.
    #[access(ReadOnly)]
    isr: u8,
    /// Balloon config: the pages the host asks for.
    #[access(ReadOnly)]
    num_pages: ConfigLe32,
    /// Balloon config: the pages the balloon holds.
    actual: ConfigLe32,
}

/// The I/O BAR must be at least this long.
pub const BAR_LEN: u64 = core::mem::size_of::<LegacyRegs>() as u64;
/// Offset of the ISR status register in BAR0: an interrupt handler reads it to
/// acknowledge the INTx (bit 0: a queue, bit 1: the configuration changed).
pub const ISR_OFFSET: usize = core::mem::offset_of!(LegacyRegs, isr);
/// The ISR bit for "the configuration changed" (a new `num_pages`).
pub const ISR_CONFIG: u8 = 0x2;

/// True when the ISR status read by an interrupt handler says the configuration
/// changed (bit 0, a used buffer, is not: inflate and deflate are polled).
pub fn isr_config_changed(isr: u8) -> bool {
    isr & ISR_CONFIG != 0
}

/// Device status: the driver found the device.
pub const STATUS_ACK: u8 = 1;
/// Device status: the driver knows how to drive it.
pub const STATUS_DRIVER: u8 = 2;
/// Device status: the driver is ready.
pub const STATUS_DRIVER_OK: u8 = 4;
/// Device status: the driver gave up.
pub const STATUS_FAILED: u8 = 0x80;

/// The registers of one device.
pub struct LegacyRegisters<'a> {
    regs: VolatilePtr<'a, LegacyRegs>,
    /// What `actual` holds now (`None` before the first write).
    actual: Option<u32>,
}

fn read_le32(p: VolatilePtr<'_, ConfigLe32, ReadOnly>) -> u32 {
    u32::from_le_bytes([
        p.byte0().read(),
        p.byte1().read(),
        p.byte2().read(),
        p.byte3().read(),
    ])
}

impl<'a> LegacyRegisters<'a> {
    /// The register block at `base`.
    ///
    /// # Safety
    /// `base` must be the device's legacy register block (at least [`BAR_LEN`]
    /// bytes of its I/O BAR, reachable with plain loads and stores), used by
    /// nothing else for `'a`.
    pub unsafe fn new(base: NonNull<LegacyRegs>) -> Self {
        LegacyRegisters {
            // SAFETY: the caller's contract.
            regs: unsafe { VolatilePtr::new(base) },
            actual: None,
        }
    }

    /// Writes the device status (0 resets the device).
    pub fn set_status(&mut self, status: u8) {
        self.regs.device_status().write(status);
    }

    /// The device status.
    pub fn status(&self) -> u8 {
        self.regs.device_status().read()
    }

    /// The features the device offers.
    pub fn host_features(&self) -> u32 {
        u32::from_le(self.regs.host_features().read())
    }

    /// Accepts `features`.
    pub fn set_guest_features(&mut self, features: u32) {
        self.regs.guest_features().write(features.to_le());
    }

    /// Selects queue `q` and returns its size.
    pub fn select_queue(&mut self, q: u16) -> u16 {
        self.regs.queue_select().write(q.to_le());
        u16::from_le(self.regs.queue_size().read())
    }

    /// Gives the selected queue the memory at page frame `pfn` (address >> 12).
    pub fn set_queue_pfn(&mut self, pfn: u32) {
        self.regs.queue_pfn().write(pfn.to_le());
    }

    /// Tells the device that queue `q` has new buffers.
    pub fn notify(&mut self, q: u16) {
        self.regs.queue_notify().write(q.to_le());
    }

    /// Reads (and so clears) the ISR status.
    pub fn read_isr(&mut self) -> u8 {
        self.regs.isr().read()
    }

    /// The host's request, `num_pages`, read byte by byte.
    pub fn num_pages(&self) -> u32 {
        read_le32(self.regs.num_pages())
    }

    /// What `actual` holds, read byte by byte.
    pub fn actual(&self) -> u32 {
        read_le32(self.regs.actual().read_only())
    }

    /// Writes `actual` byte by byte, only the bytes that changed since the last
    /// write: after one page that is usually one config write (each is a trip to
    /// the host).
    pub fn write_actual(&mut self, pages: u32) {
        let old = self.actual.map(u32::to_le_bytes);
        let a = self.regs.actual();
        let bytes = [a.byte0(), a.byte1(), a.byte2(), a.byte3()];
        for (i, (p, b)) in bytes.into_iter().zip(pages.to_le_bytes()).enumerate() {
            if old.is_some_and(|o| o[i] == b) {
                continue;
            }
            p.write(b);
        }
        self.actual = Some(pages);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::offset_of;

    #[test]
    fn only_the_config_bit_means_a_configuration_change() {
        assert!(isr_config_changed(0x2));
        assert!(isr_config_changed(0x3));
        assert!(!isr_config_changed(0x1));
        assert!(!isr_config_changed(0));
        assert!(!isr_config_changed(0xfd));
    }

    #[test]
    fn the_block_has_the_legacy_layout() {
        assert_eq!(offset_of!(LegacyRegs, host_features), 0x00);
        assert_eq!(offset_of!(LegacyRegs, guest_features), 0x04);
        assert_eq!(offset_of!(LegacyRegs, queue_pfn), 0x08);
        assert_eq!(offset_of!(LegacyRegs, queue_size), 0x0c);
        assert_eq!(offset_of!(LegacyRegs, queue_select), 0x0e);
        assert_eq!(offset_of!(LegacyRegs, queue_notify), 0x10);
        assert_eq!(offset_of!(LegacyRegs, device_status), 0x12);
        assert_eq!(offset_of!(LegacyRegs, isr), 0x13);
        assert_eq!(offset_of!(LegacyRegs, num_pages), 0x14);
        assert_eq!(offset_of!(LegacyRegs, actual), 0x18);
        assert_eq!(BAR_LEN, 0x1c);
    }

    fn bytes(r: &LegacyRegs) -> [u8; 0x1c] {
        // SAFETY: `LegacyRegs` is repr(C) plain integers without padding (the
        // layout test checks the offsets add up to 0x1c).
        unsafe { core::mem::transmute_copy(r) }
    }

    #[test]
    fn registers_are_little_endian_and_config_is_bytes() {
        let mut mem = LegacyRegs {
            host_features: 0x7900_0012u32.to_le(),
            queue_size: 128u16.to_le(),
            num_pages: ConfigLe32 {
                byte0: 0x00,
                byte1: 0x00,
                byte2: 0x01,
                byte3: 0x00,
            },
            ..LegacyRegs::default()
        };
        let base = NonNull::from(&mut mem);
        // SAFETY: `mem` is a register block in memory that outlives `r`.
        let mut r = unsafe { LegacyRegisters::new(base) };
        assert_eq!(r.host_features(), 0x7900_0012);
        assert_eq!(r.num_pages(), 65536);
        assert_eq!(r.select_queue(1), 128);
        r.set_guest_features(0);
        r.set_queue_pfn(0x1234);
        r.notify(1);
        r.set_status(STATUS_ACK | STATUS_DRIVER);
        assert_eq!(r.status(), 3);
        r.write_actual(0x0001_0203);
        assert_eq!(r.actual(), 0x0001_0203);
        r.write_actual(0x0001_0204);
        assert_eq!(r.actual(), 0x0001_0204);
        let b = bytes(&mem);
        assert_eq!(&b[0x08..0x0c], &0x1234u32.to_le_bytes());
        assert_eq!(&b[0x0e..0x10], &[1, 0], "queue 1 selected, LE");
        assert_eq!(&b[0x10..0x12], &[1, 0], "queue 1 notified, LE");
        assert_eq!(
            &b[0x18..0x1c],
            &[0x04, 0x02, 0x01, 0x00],
            "actual, LE bytes"
        );
    }
}
