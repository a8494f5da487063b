//! The MMU facts of the first CPU node (`docs/hash-mmu.md`): `ibm,pft-size`,
//! `ibm,slb-size`, `ibm,segment-page-sizes`, `ibm,processor-segment-sizes`, and
//! the [`Geometry`] the kernel chooses from them.

use alloc::string::String;
use alloc::vec::Vec;

use super::linear::Geometry;
use super::sizes::{SegmentPageSizes, SegmentSize};
use crate::devtree::Fdt;

/// The processor version (the PVR's upper 16 bits) of POWER9, the first
/// processor of ISA 3.0.
pub const PVR_VERSION_POWER9: u32 = 0x004e;

/// True when the processor whose PVR register reads `pvr` implements ISA 3.0 or
/// later (POWER9 0x004e, POWER10 0x0080), and so must tell the hypervisor that
/// the partition uses the hash page table with segments (H_REGISTER_PROC_TBL)
/// before it enters translation; POWER8 (0x004b..0x004d) and older do not have
/// the call. `pvr` is the register's value, the physical processor's: the
/// logical PVRs of compatibility modes (0x0f00_000x) appear only in the device
/// tree's `cpu-version`.
pub fn registers_process_table(pvr: u32) -> bool {
    pvr >> 16 >= PVR_VERSION_POWER9
}

/// What the CPU node says about the MMU.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CpuMmu {
    /// log2 of the page table size.
    pub pft_shift: u32,
    /// SLB entries.
    pub slb_size: u32,
    /// Base and actual page sizes.
    pub page_sizes: SegmentPageSizes,
    /// Whether 1 TiB segments are offered.
    pub one_t_segments: bool,
}

impl CpuMmu {
    /// Reads the first `device_type = "cpu"` node under `/cpus`. The reason
    /// when a property the hash MMU needs is missing or malformed.
    pub fn from_fdt(fdt: &Fdt<'_>) -> Result<CpuMmu, String> {
        let cpus = fdt.find("/cpus").ok_or("no /cpus node")?;
        let cpu = cpus
            .children()
            .find(|c| c.property("device_type").and_then(|d| d.as_str()) == Some("cpu"))
            .ok_or("no cpu node")?;
        let cells =
            |name: &str| -> Option<Vec<u32>> { Some(cpu.property(name)?.cells()?.collect()) };
        let pft = cells("ibm,pft-size").ok_or("no ibm,pft-size")?;
        let pft_shift = match pft.as_slice() {
            [_, shift] if (18..=46).contains(shift) => *shift,
            _ => return Err(alloc::format!("ibm,pft-size {pft:?} is malformed")),
        };
        let slb_size = cells("ibm,slb-size")
            .or_else(|| cells("slb-size"))
            .and_then(|c| c.first().copied())
            .unwrap_or(32);
        let page_sizes = match cells("ibm,segment-page-sizes") {
            Some(c) => SegmentPageSizes::parse(&c).map_err(|e| alloc::format!("{e}"))?,
            None => SegmentPageSizes::default(),
        };
        let one_t_segments = cells("ibm,processor-segment-sizes").is_some_and(|c| c.contains(&40));
        Ok(CpuMmu {
            pft_shift,
            slb_size,
            page_sizes,
            one_t_segments,
        })
    }

    /// The linear map's geometry: the largest usable page size and 1 TiB
    /// segments when offered.
    pub fn geometry(&self) -> Geometry {
        let (page, slb_enc, penc) = self.page_sizes.linear_map_size();
        Geometry {
            pft_shift: self.pft_shift,
            page,
            slb_enc,
            penc,
            segment: if self.one_t_segments {
                SegmentSize::T1
            } else {
                SegmentSize::M256
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn isa_3_0_processors_register_the_process_table() {
        // POWER9 DD2.2 and POWER10 (QEMU's power9/power10 models), then POWER8,
        // POWER8E, POWER8NVL, POWER7 and the 970.
        for pvr in [0x004e_1202, 0x004e_0100, 0x0080_0100] {
            assert!(registers_process_table(pvr), "{pvr:#x}");
        }
        for pvr in [
            0x004d_0200,
            0x004b_0201,
            0x004c_0100,
            0x003f_0201,
            0x0039_0202,
        ] {
            assert!(!registers_process_table(pvr), "{pvr:#x}");
        }
    }
}
