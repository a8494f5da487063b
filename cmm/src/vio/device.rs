//! What the kernel tells the accounting about each `/vdevice` child: its node name,
//! unit address, `compatible` string and DMA window, plus the desired entitlement a
//! device of that type starts with.
//!
//! Decoding the flattened device tree is the kernel's job; this file only decodes
//! the raw bytes of `ibm,my-dma-window`, which is pure arithmetic.

use alloc::string::String;

use super::error::VioError;
use super::units::normalise_desired;

/// The I/O address range a device may DMA through (`ibm,my-dma-window`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DmaWindow {
    /// Logical I/O bus number: names the window in H_PUT_TCE / H_GET_TCE.
    pub liobn: u32,
    /// First I/O bus address of the window.
    pub offset: u64,
    /// Size of the window in bytes.
    pub size: u64,
}

impl DmaWindow {
    /// Decodes the big-endian bytes of `ibm,my-dma-window`: one cell of LIOBN, then
    /// `address_cells` cells of offset and `size_cells` cells of size (QEMU and
    /// PowerVM use 2 and 2, given by `ibm,#dma-address-cells` / `ibm,#dma-size-cells`).
    /// Extra trailing bytes are ignored, as Linux does.
    pub fn parse(prop: &[u8], address_cells: u32, size_cells: u32) -> Result<Self, VioError> {
        let mut cells = prop.chunks_exact(4).map(|c| {
            let mut b = [0u8; 4];
            b.copy_from_slice(c);
            u32::from_be_bytes(b)
        });
        let liobn = cells.next().ok_or(VioError::BadDmaWindow("too short"))?;
        let offset = take_cells(&mut cells, address_cells)?;
        let size = take_cells(&mut cells, size_cells)?;
        Ok(DmaWindow {
            liobn,
            offset,
            size,
        })
    }
}

/// Reads an `n`-cell big-endian number (n = 1 or 2) from `cells`.
fn take_cells(cells: &mut impl Iterator<Item = u32>, n: u32) -> Result<u64, VioError> {
    if !(1..=2).contains(&n) {
        return Err(VioError::BadDmaWindow("cell count must be 1 or 2"));
    }
    let mut v = 0u64;
    for _ in 0..n {
        let cell = cells.next().ok_or(VioError::BadDmaWindow("too short"))?;
        v = (v << 32) | u64::from(cell);
    }
    Ok(v)
}

/// One `/vdevice` child as the accounting knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VioDevice {
    /// The node name, e.g. `v-scsi@71000002`.
    pub name: String,
    /// The unit address (`reg`), e.g. `0x71000002`.
    pub unit_address: u32,
    /// The first `compatible` string, e.g. `IBM,v-scsi`.
    pub compatible: String,
    /// The DMA window; `None` for devices that never map memory (they need no
    /// entitlement).
    pub dma_window: Option<DmaWindow>,
}

impl VioDevice {
    /// The desired entitlement this device starts with when probed: the default of
    /// its `compatible` (see [`default_desired`]), or 0 without a DMA window.
    pub fn default_desired(&self) -> u64 {
        match self.dma_window {
            Some(_) => default_desired(&self.compatible),
            None => 0,
        }
    }
}

/// `IBM,v-scsi`: what Linux's ibmvscsi asks for with its defaults: 102 events of a
/// 256-byte SRP IU, plus 256 sectors of 512 bytes for each of 16 commands per LUN
/// (2123264 bytes), rounded up to whole pages.
pub const VSCSI_DESIRED: u64 = 2_125_824;

/// `IBM,l-lan`: Linux ibmveth's `IBMVETH_IO_ENTITLEMENT_DEFAULT` (enough for a
/// 1500-byte MTU with the default buffer pools).
pub const VETH_DESIRED: u64 = 4_243_456;

/// Any other DMA-capable device: 2 MiB.
pub const GENERIC_DESIRED: u64 = 2 << 20;

/// The desired entitlement a DMA-capable device of this `compatible` starts with,
/// floored at [`super::MIN_ENT`] and rounded up to 4 KiB like every desired value.
pub fn default_desired(compatible: &str) -> u64 {
    let raw = match compatible {
        "IBM,v-scsi" => VSCSI_DESIRED,
        "IBM,l-lan" => VETH_DESIRED,
        _ => GENERIC_DESIRED,
    };
    normalise_desired(raw).unwrap_or(raw)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vio::units::MIN_ENT;

    #[test]
    fn vio_parse_qemu_window() {
        // QEMU: <liobn 0 offset 0 size> with 2 + 2 cells.
        let mut prop = alloc::vec::Vec::new();
        for cell in [0x7100_0002u32, 0, 0, 0, 0x1000_0000] {
            prop.extend_from_slice(&cell.to_be_bytes());
        }
        let w = DmaWindow::parse(&prop, 2, 2).unwrap();
        assert_eq!(
            w,
            DmaWindow {
                liobn: 0x7100_0002,
                offset: 0,
                size: 0x1000_0000
            }
        );
        let w1 = DmaWindow::parse(&prop[..12], 1, 1).unwrap();
        assert_eq!((w1.offset, w1.size), (0, 0));
    }

    #[test]
    fn vio_parse_rejects_bad_windows() {
        assert!(DmaWindow::parse(&[], 2, 2).is_err());
        assert!(DmaWindow::parse(&[0; 19], 2, 2).is_err());
        assert!(DmaWindow::parse(&[0; 40], 3, 2).is_err());
        assert!(DmaWindow::parse(&[0; 40], 2, 0).is_err());
    }

    #[test]
    fn vio_default_desired_per_compatible() {
        assert_eq!(default_desired("IBM,v-scsi"), 2_125_824);
        assert_eq!(default_desired("IBM,l-lan"), 4_243_456);
        assert_eq!(default_desired("IBM,vtpm"), 2 << 20);
        for c in ["IBM,v-scsi", "IBM,l-lan", "x"] {
            let d = default_desired(c);
            assert!(d >= MIN_ENT && crate::vio::units::is_page_aligned(d));
        }
        let vty = VioDevice {
            name: "vty@71000000".into(),
            unit_address: 0x7100_0000,
            compatible: "hvterm1".into(),
            dma_window: None,
        };
        assert_eq!(vty.default_desired(), 0);
    }
}
