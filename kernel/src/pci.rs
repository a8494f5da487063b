//! PCI address arithmetic for the pseries host bridge (PHB): decoding the PHB
//! node's `ranges` into I/O and memory windows, the BUID from its `reg`, the
//! configuration address that RTAS `ibm,read-pci-config` takes, and BAR sizing
//! and placement. Pure: the RTAS calls and the device accesses are in the binary
//! (`drivers::pci`).

use alloc::vec::Vec;

/// The address space of a window or BAR (the `ss` bits of a PCI `phys.hi` cell).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Space {
    /// Configuration space (`ss` = 0).
    Config,
    /// I/O space (`ss` = 1).
    Io,
    /// 32-bit memory space (`ss` = 2).
    Mem32,
    /// 64-bit memory space (`ss` = 3).
    Mem64,
}

impl Space {
    /// The space named by the top byte of a `phys.hi` cell.
    pub fn from_phys_hi(hi: u32) -> Space {
        match (hi >> 24) & 3 {
            0 => Space::Config,
            1 => Space::Io,
            2 => Space::Mem32,
            _ => Space::Mem64,
        }
    }
}

/// One entry of the PHB's `ranges`: PCI addresses `pci_addr..pci_addr+size` of
/// `space` appear at CPU (real) address `cpu_addr`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// The PCI address space.
    pub space: Space,
    /// First PCI bus address.
    pub pci_addr: u64,
    /// The CPU address it appears at.
    pub cpu_addr: u64,
    /// Length in bytes.
    pub size: u64,
}

impl Window {
    /// The CPU address of PCI address `pci` in this window, if `pci..pci+len` lies inside.
    pub fn cpu_address_of(&self, pci: u64, len: u64) -> Option<u64> {
        let off = pci.checked_sub(self.pci_addr)?;
        (off.checked_add(len)? <= self.size).then(|| self.cpu_addr + off)
    }
}

/// Why a PHB property could not be decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PciError {
    /// `ranges` is not a whole number of entries of this many bytes.
    RangesLength { len: usize, entry: usize },
    /// The parent's `#address-cells` is not 1 or 2.
    ParentCells(usize),
    /// `reg` is shorter than the two cells of a BUID.
    ShortReg(usize),
}

impl core::fmt::Display for PciError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            PciError::RangesLength { len, entry } => {
                write!(f, "ranges is {len} bytes, not a multiple of {entry}")
            }
            PciError::ParentCells(n) => write!(f, "parent #address-cells {n} is not 1 or 2"),
            PciError::ShortReg(n) => write!(f, "reg is {n} bytes, a BUID needs 8"),
        }
    }
}

fn cell(raw: &[u8], i: usize) -> u32 {
    let b = &raw[i * 4..i * 4 + 4];
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

fn cells(raw: &[u8], start: usize, n: usize) -> u64 {
    (start..start + n).fold(0u64, |v, i| (v << 32) | u64::from(cell(raw, i)))
}

/// Decodes a PHB's `ranges` (child `#address-cells` 3, `#size-cells` 2, parent
/// address `parent_cells` cells). Entries of size 0 are skipped.
pub fn decode_ranges(raw: &[u8], parent_cells: usize) -> Result<Vec<Window>, PciError> {
    if !(1..=2).contains(&parent_cells) {
        return Err(PciError::ParentCells(parent_cells));
    }
    let per = 3 + parent_cells + 2;
    let entry = per * 4;
    if !raw.len().is_multiple_of(entry) {
        return Err(PciError::RangesLength {
            len: raw.len(),
            entry,
        });
    }
    let mut out = Vec::new();
    for e in 0..raw.len() / entry {
        let base = e * per;
        let w = Window {
            space: Space::from_phys_hi(cell(raw, base)),
            pci_addr: cells(raw, base + 1, 2),
            cpu_addr: cells(raw, base + 3, parent_cells),
            size: cells(raw, base + 3 + parent_cells, 2),
        };
        if w.size > 0 {
            out.push(w);
        }
    }
    Ok(out)
}

/// The BUID from a PHB's `reg`: its first two cells.
pub fn buid_from_reg(raw: &[u8]) -> Result<u64, PciError> {
    if raw.len() < 8 {
        return Err(PciError::ShortReg(raw.len()));
    }
    Ok(cells(raw, 0, 2))
}

/// The BUID as the two RTAS argument cells (high, low).
pub fn buid_cells(buid: u64) -> (u32, u32) {
    let hi = u32::try_from(buid >> 32).unwrap_or(0);
    let lo = u32::try_from(buid & 0xffff_ffff).unwrap_or(0);
    (hi, lo)
}

/// Device and function packed as `devfn` (device 0-31, function 0-7).
pub fn devfn(device: u8, function: u8) -> u8 {
    ((device & 0x1f) << 3) | (function & 7)
}

/// The configuration address RTAS takes: extended register bits 8-11 in bits
/// 24-27, bus in 16-23, devfn in 8-15, register bits 0-7 in 0-7.
pub fn config_address(bus: u8, devfn: u8, reg: u16) -> u32 {
    let reg = u32::from(reg);
    ((reg & 0xf00) << 16) | (u32::from(bus) << 16) | (u32::from(devfn) << 8) | (reg & 0xff)
}

/// Configuration registers used here.
pub mod reg {
    /// Vendor ID (u16).
    pub const VENDOR_ID: u16 = 0x00;
    /// Device ID (u16).
    pub const DEVICE_ID: u16 = 0x02;
    /// Command (u16).
    pub const COMMAND: u16 = 0x04;
    /// BAR 0 (u32); BARs 1-5 follow.
    pub const BAR0: u16 = 0x10;
    /// Subsystem ID (u16).
    pub const SUBSYSTEM_ID: u16 = 0x2e;
}

/// Command register: decode I/O, decode memory, bus master.
pub const COMMAND_IO_MEM_MASTER: u16 = 0x7;

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
    pub fn space(self) -> Space {
        match self {
            BarKind::Io => Space::Io,
            BarKind::Mem32 => Space::Mem32,
            BarKind::Mem64 => Space::Mem64,
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

/// The CPU address of `len` bytes at PCI address `pci` in `space`, through whichever
/// window holds them.
pub fn cpu_address(windows: &[Window], space: Space, pci: u64, len: u64) -> Option<u64> {
    windows
        .iter()
        .filter(|w| w.space == space)
        .find_map(|w| w.cpu_address_of(pci, len))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn be(cells: &[u32]) -> Vec<u8> {
        cells.iter().flat_map(|c| c.to_be_bytes()).collect()
    }

    /// The ranges of QEMU 7.2's pseries PHB 0.
    fn qemu_ranges() -> Vec<u8> {
        be(&[
            0x0100_0000,
            0,
            0,
            0x2000,
            0,
            0,
            0x1_0000, //
            0x0200_0000,
            0,
            0x8000_0000,
            0x2000,
            0x8000_0000,
            0,
            0x8000_0000, //
            0x0300_0000,
            0x2100,
            0,
            0x2100,
            0,
            0x100,
            0,
        ])
    }

    #[test]
    fn decodes_qemu_ranges() {
        let w = decode_ranges(&qemu_ranges(), 2).unwrap();
        assert_eq!(
            w,
            vec![
                Window {
                    space: Space::Io,
                    pci_addr: 0,
                    cpu_addr: 0x2000_0000_0000,
                    size: 0x1_0000
                },
                Window {
                    space: Space::Mem32,
                    pci_addr: 0x8000_0000,
                    cpu_addr: 0x2000_8000_0000,
                    size: 0x8000_0000
                },
                Window {
                    space: Space::Mem64,
                    pci_addr: 0x2100_0000_0000,
                    cpu_addr: 0x2100_0000_0000,
                    size: 0x100_0000_0000
                },
            ]
        );
        assert_eq!(
            cpu_address(&w, Space::Io, 0x1000, 0x40),
            Some(0x2000_0000_1000)
        );
        assert_eq!(cpu_address(&w, Space::Io, 0xfff0, 0x40), None);
        assert_eq!(
            cpu_address(&w, Space::Mem32, 0x8000_1000, 16),
            Some(0x2000_8000_1000)
        );
    }

    #[test]
    fn one_cell_parent_and_errors() {
        let r = be(&[0x0100_0000, 0, 0x10, 0xf000_0000, 0, 0x100]);
        let w = decode_ranges(&r, 1).unwrap();
        assert_eq!(w[0].cpu_addr, 0xf000_0000);
        assert_eq!(w[0].pci_addr, 0x10);
        assert_eq!(w[0].size, 0x100);
        assert_eq!(
            decode_ranges(&r[..20], 2),
            Err(PciError::RangesLength { len: 20, entry: 28 })
        );
        assert_eq!(decode_ranges(&r, 3), Err(PciError::ParentCells(3)));
        // A zero-sized entry is skipped.
        assert!(decode_ranges(&be(&[0x0200_0000, 0, 0, 0, 0, 0, 0]), 2)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn buid_and_config_addresses() {
        let reg = be(&[0x0800_0000, 0x2000_0000, 0, 0]);
        let buid = buid_from_reg(&reg).unwrap();
        assert_eq!(buid, 0x0800_0000_2000_0000);
        assert_eq!(buid_cells(buid), (0x0800_0000, 0x2000_0000));
        assert_eq!(buid_from_reg(&reg[..4]), Err(PciError::ShortReg(4)));
        assert_eq!(config_address(0, 0, 0), 0);
        assert_eq!(config_address(0, devfn(0, 0), reg::COMMAND), 4);
        assert_eq!(devfn(3, 1), 0x19);
        assert_eq!(config_address(1, devfn(3, 1), 0x10), 0x0001_1910);
        // Extended registers put bits 8-11 at 24-27.
        assert_eq!(config_address(2, 0xff, 0xabc), 0x0a02_ffbc);
    }

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

        let w = decode_ranges(&qemu_ranges(), 2).unwrap();
        let mut io = BarAllocator::new(&w[0], 0x1000);
        assert_eq!(io.alloc(0x40), Some(0x1000));
        assert_eq!(io.alloc(0x100), Some(0x1100));
        assert_eq!(io.alloc(0x40), Some(0x1200));
        assert_eq!(io.alloc(0x30), None, "not a power of two");
        assert_eq!(io.alloc(0x1_0000), None, "larger than what is left");
        let mut m64 = BarAllocator::new(&w[2], 0);
        assert_eq!(m64.alloc(0x4000), Some(0x2100_0000_0000));
    }
}
