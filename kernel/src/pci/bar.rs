//! Base address registers: the kind a raw value encodes, the size a BAR reports
//! after all ones are written to it, and [`BarAllocator`], which hands out
//! naturally aligned addresses from a host bridge window.

use super::window::Window;

/// What kind of BAR a raw BAR value describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BarKind {
    /// I/O space.
    Io,
    /// 32-bit memory.
    Mem32,
    /// 64-bit memory (takes this BAR and the next).
    Mem64,
}

impl BarKind {
    /// The kind encoded in the low bits of a BAR.
    pub fn of(raw: u32) -> BarKind {
        if raw & 1 == 1 {
            BarKind::Io
        } else if (raw >> 1) & 3 == 2 {
            BarKind::Mem64
        } else {
            BarKind::Mem32
        }
    }

    /// The low flag bits that are not part of the address.
    pub fn flag_mask(self) -> u64 {
        match self {
            BarKind::Io => 0x3,
            BarKind::Mem32 | BarKind::Mem64 => 0xf,
        }
    }

    /// The window space BARs of this kind are placed in.
    pub fn space(self) -> super::Space {
        match self {
            BarKind::Io => super::Space::Io,
            BarKind::Mem32 => super::Space::Mem32,
            BarKind::Mem64 => super::Space::Mem64,
        }
    }
}

/// The address a BAR holds (flags removed); `raw` includes the high half of a
/// 64-bit BAR in bits 32-63.
pub fn bar_address(kind: BarKind, raw: u64) -> u64 {
    raw & !kind.flag_mask()
}

/// The size of a BAR from the value read back after writing all ones (`probe`,
/// high half included for 64-bit BARs). I/O BARs may implement only 16 address
/// bits. 0 means the BAR is not implemented.
pub fn bar_size(kind: BarKind, probe: u64) -> u64 {
    let mut mask = probe & !kind.flag_mask();
    if mask == 0 {
        return 0;
    }
    match kind {
        BarKind::Io => {
            if mask & 0xffff_0000 == 0 {
                mask |= 0xffff_0000;
            }
            mask |= 0xffff_ffff_0000_0000;
        }
        BarKind::Mem32 => mask |= 0xffff_ffff_0000_0000,
        BarKind::Mem64 => {}
    }
    (!mask).wrapping_add(1)
}

/// Hands out naturally aligned PCI addresses from one window, bottom up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BarAllocator {
    next: u64,
    end: u64,
}

impl BarAllocator {
    /// An allocator over `w`, skipping its first `skip` bytes (legacy I/O ports).
    pub fn new(w: &Window, skip: u64) -> BarAllocator {
        let end = w.pci_addr.saturating_add(w.size);
        BarAllocator {
            next: w.pci_addr.saturating_add(skip).min(end),
            end,
        }
    }

    /// A PCI address for a BAR of `size` bytes (a power of two), aligned to its size.
    pub fn alloc(&mut self, size: u64) -> Option<u64> {
        if size == 0 || !size.is_power_of_two() {
            return None;
        }
        let start = self.next.checked_add(size - 1)? & !(size - 1);
        let end = start.checked_add(size)?;
        if end > self.end {
            return None;
        }
        self.next = end;
        Some(start)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pci::Space;

    #[test]
    fn bar_kinds_sizes_and_placement() {
        assert_eq!(BarKind::of(0x1), BarKind::Io);
        assert_eq!(BarKind::of(0xc), BarKind::Mem64);
        assert_eq!(BarKind::of(0x0), BarKind::Mem32);
        // QEMU's balloon: a 0x40-byte I/O BAR and a 16 KiB 64-bit BAR.
        assert_eq!(bar_size(BarKind::Io, 0xffff_ffc1), 0x40);
        assert_eq!(bar_size(BarKind::Io, 0xffc1), 0x40);
        assert_eq!(bar_size(BarKind::Mem64, 0xffff_ffff_ffff_c00c), 0x4000);
        assert_eq!(bar_size(BarKind::Mem32, 0xffff_f000), 0x1000);
        assert_eq!(bar_size(BarKind::Mem32, 0), 0);
        assert_eq!(bar_address(BarKind::Io, 0x1001), 0x1000);
        assert_eq!(
            bar_address(BarKind::Mem64, 0x2100_0000_000c),
            0x2100_0000_0000
        );

        let io_window = Window {
            space: Space::Io,
            pci_addr: 0,
            cpu_addr: 0x2000_0000_0000,
            size: 0x1_0000,
        };
        let mut io = BarAllocator::new(&io_window, 0x1000);
        assert_eq!(io.alloc(0x40), Some(0x1000));
        assert_eq!(io.alloc(0x100), Some(0x1100));
        assert_eq!(io.alloc(0x40), Some(0x1200));
        assert_eq!(io.alloc(0x30), None, "not a power of two");
        assert_eq!(io.alloc(0x1_0000), None, "larger than what is left");
        let m64_window = Window {
            space: Space::Mem64,
            pci_addr: 0x2100_0000_0000,
            cpu_addr: 0x2100_0000_0000,
            size: 0x100_0000_0000,
        };
        let mut m64 = BarAllocator::new(&m64_window, 0);
        assert_eq!(m64.alloc(0x4000), Some(0x2100_0000_0000));
    }
}
