//! The `version` reply, built in one place from the facts the glue gathers (the
//! build, the boot, RTAS, the MMU, the RMA): the glue fills [`Facts`] and prints
//! what [`write_version`] writes.

use core::fmt::{self, Write};

/// How RTAS is reached, and the calls made through each transport.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RtasFacts {
    /// The instantiated RTAS area (base, size, entry); `None`: the KVMPPC_H_RTAS
    /// hcall.
    pub instance: Option<(u32, u32, u32)>,
    /// Calls through instantiated RTAS.
    pub instantiated_calls: u64,
    /// Calls through the hcall.
    pub hcall_calls: u64,
}

/// The lazy linear map's progress.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LazyFacts {
    /// Pages the map covers.
    pub pages: u64,
    /// Pages not entered yet.
    pub pending: u64,
    /// Entered by the fault handler.
    pub on_fault: u64,
    /// Entered by the background work.
    pub in_background: u64,
}

/// The hash MMU, when translation is on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MmuFacts {
    /// The lazy map, when its state could be read.
    pub lazy: Option<LazyFacts>,
    /// Base page size, KiB.
    pub page_kib: u64,
    /// `1T` or `256M`.
    pub segment: &'static str,
    /// Entries in the table.
    pub entries: u64,
    /// Of which in a secondary group.
    pub secondary: u64,
    /// Segments in use.
    pub segments: usize,
    /// SLB entries the CPU has.
    pub slb_size: u32,
    /// log2 of the page-frame table's size.
    pub pft_shift: u32,
}

/// Everything `version` prints.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Facts<'a> {
    /// The crate version.
    pub version: &'a str,
    /// The target triple.
    pub target: &'a str,
    /// `big` or `little`.
    pub endian: &'a str,
    /// `fdt` or `of`.
    pub boot_mode: &'a str,
    /// The hypervisor backend's name.
    pub hypervisor: &'a str,
    /// Free page reporting works (through the device; else free pages are only
    /// hinted to the hypervisor).
    pub free_page_reporting: bool,
    /// CPUs online.
    pub cpus_online: usize,
    /// CPUs present.
    pub cpus_present: usize,
    /// RTAS.
    pub rtas: RtasFacts,
    /// The MMU; `None`: translation is off.
    pub mmu: Option<MmuFacts>,
    /// The RMA's size, bytes.
    pub rma_bytes: u64,
    /// The firmware's `memory@0`, bytes.
    pub rma_firmware_bytes: u64,
}

/// Writes the `version` reply's lines.
pub fn write_version(w: &mut impl Write, f: &Facts<'_>) -> fmt::Result {
    writeln!(
        w,
        "lpar-cmm {} ({}) boot={} hv={}",
        f.version, f.target, f.boot_mode, f.hypervisor
    )?;
    writeln!(w, "name: lpar-cmm")?;
    writeln!(w, "version: {}", f.version)?;
    writeln!(w, "target: {}", f.target)?;
    writeln!(w, "endian: {}", f.endian)?;
    writeln!(w, "boot_mode: {}", f.boot_mode)?;
    writeln!(w, "hypervisor: {}", f.hypervisor)?;
    let on_off = if f.free_page_reporting { "on" } else { "off" };
    writeln!(w, "free_page_reporting: {on_off}")?;
    let transport = if f.free_page_reporting {
        "virtio"
    } else {
        "hints"
    };
    writeln!(w, "report_transport: {transport}")?;
    writeln!(w, "cpus: {}/{}", f.cpus_online, f.cpus_present)?;
    match f.rtas.instance {
        Some((base, size, entry)) => {
            writeln!(w, "rtas: instantiated")?;
            writeln!(
                w,
                "rtas_area: base={base:#x} size={size:#x} entry={entry:#x}"
            )?;
        }
        None => writeln!(w, "rtas: hcall")?,
    }
    writeln!(
        w,
        "rtas_calls: instantiated={} hcall={}",
        f.rtas.instantiated_calls, f.rtas.hcall_calls
    )?;
    match &f.mmu {
        Some(m) => {
            writeln!(w, "mmu: hash")?;
            if let Some(l) = &m.lazy {
                writeln!(
                    w,
                    "mmu_lazy: pages={} pending={} on_fault={} background={}",
                    l.pages, l.pending, l.on_fault, l.in_background
                )?;
            }
            writeln!(
                w,
                "mmu_map: page={}K segment={} entries={} secondary={} segments={}/{} pft=2^{}",
                m.page_kib, m.segment, m.entries, m.secondary, m.segments, m.slb_size, m.pft_shift
            )?;
        }
        None => writeln!(w, "mmu: off")?,
    }
    writeln!(w, "rma: {} MiB", f.rma_bytes >> 20)?;
    writeln!(w, "rma_firmware: {} MiB", f.rma_firmware_bytes >> 20)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::String;

    fn facts() -> Facts<'static> {
        Facts {
            version: "0.1.0",
            target: "powerpc64le-unknown-linux-gnu",
            endian: "little",
            boot_mode: "of",
            hypervisor: "model",
            free_page_reporting: true,
            cpus_online: 2,
            cpus_present: 4,
            rtas: RtasFacts {
                instance: Some((0x0ff0_0000, 0x82c, 0x0ff0_0010)),
                instantiated_calls: 12,
                hcall_calls: 0,
            },
            mmu: Some(MmuFacts {
                lazy: Some(LazyFacts {
                    pages: 131072,
                    pending: 5,
                    on_fault: 7,
                    in_background: 9,
                }),
                page_kib: 4,
                segment: "1T",
                entries: 40,
                secondary: 1,
                segments: 2,
                slb_size: 32,
                pft_shift: 18,
            }),
            rma_bytes: 256 << 20,
            rma_firmware_bytes: 512 << 20,
        }
    }

    #[test]
    fn every_line_from_the_facts() {
        let mut out = String::new();
        write_version(&mut out, &facts()).unwrap();
        assert_eq!(
            out,
            "lpar-cmm 0.1.0 (powerpc64le-unknown-linux-gnu) boot=of hv=model\n\
             name: lpar-cmm\n\
             version: 0.1.0\n\
             target: powerpc64le-unknown-linux-gnu\n\
             endian: little\n\
             boot_mode: of\n\
             hypervisor: model\n\
             free_page_reporting: on\n\
             report_transport: virtio\n\
             cpus: 2/4\n\
             rtas: instantiated\n\
             rtas_area: base=0xff00000 size=0x82c entry=0xff00010\n\
             rtas_calls: instantiated=12 hcall=0\n\
             mmu: hash\n\
             mmu_lazy: pages=131072 pending=5 on_fault=7 background=9\n\
             mmu_map: page=4K segment=1T entries=40 secondary=1 segments=2/32 pft=2^18\n\
             rma: 256 MiB\n\
             rma_firmware: 512 MiB\n"
        );
    }

    #[test]
    fn hcall_rtas_and_translation_off_have_their_own_lines() {
        let f = Facts {
            free_page_reporting: false,
            rtas: RtasFacts {
                instance: None,
                instantiated_calls: 0,
                hcall_calls: 3,
            },
            mmu: None,
            ..facts()
        };
        let mut out = String::new();
        write_version(&mut out, &f).unwrap();
        assert!(
            out.contains("free_page_reporting: off\nreport_transport: hints\n"),
            "{out}"
        );
        assert!(
            out.contains(
                "\nrtas: hcall\nrtas_calls: instantiated=0 hcall=3\nmmu: off\nrma: 256 MiB\n"
            ),
            "{out}"
        );
        assert!(!out.contains("rtas_area"), "{out}");
        assert!(!out.contains("mmu_map"), "{out}");
        // Translation on but the lazy map's state busy: no mmu_lazy line.
        let busy = Facts {
            mmu: facts().mmu.map(|m| MmuFacts { lazy: None, ..m }),
            ..facts()
        };
        let mut out = String::new();
        write_version(&mut out, &busy).unwrap();
        assert!(out.contains("mmu: hash\nmmu_map: page=4K"), "{out}");
    }
}
