//! The pseries PCI host bridge (PHB) as its device-tree node describes it: the
//! `ranges` decoded into I/O and memory windows, the BUID from its `reg`, and the
//! CPU address of a PCI address through a window.

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
        let reg = be(&[0x0800_0000, 0x2000_0000, 0, 0]);
        assert_eq!(buid_from_reg(&reg), Ok(0x0800_0000_2000_0000));
        assert_eq!(buid_from_reg(&reg[..4]), Err(PciError::ShortReg(4)));
    }
}
