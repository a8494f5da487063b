//! The `devtree` command's reply: the facts the kernel took from the tree, one
//! `name: value` row each, and `devtree dump`, the blob as `fdt: <hex>` lines of 32
//! bytes that a host tool turns back into the blob (and decodes with `dtc`).

use core::fmt::{self, Write};

use super::Platform;

/// Bytes per `fdt:` line of the dump.
pub const DUMP_BYTES_PER_LINE: usize = 32;

/// Writes the facts: RAM, memory ranges, CPUs, timebase, console, boot arguments,
/// RTAS tokens, virtual devices, hypertas functions, then `fdt_bytes: <blob size>`.
pub fn write_facts(w: &mut dyn Write, p: &Platform, fdt_bytes: usize) -> fmt::Result {
    writeln!(w, "ram_bytes: {}", p.ram_bytes())?;
    for m in &p.memory {
        writeln!(w, "memory: base={:#x} size={:#x}", m.base, m.size)?;
    }
    writeln!(w, "cpus: {}", p.cpus.len())?;
    for c in &p.cpus {
        writeln!(w, "cpu: {} reg={}", c.name, c.reg)?;
    }
    writeln!(w, "timebase_hz: {}", p.timebase_hz.unwrap_or(0))?;
    match p.vty_unit {
        Some(u) => writeln!(w, "vty: {u:x}")?,
        None => writeln!(w, "vty: none")?,
    }
    writeln!(w, "stdout_path: {}", p.stdout_path.as_deref().unwrap_or(""))?;
    writeln!(w, "bootargs: {}", p.bootargs.as_deref().unwrap_or(""))?;
    for (name, tok) in &p.rtas_tokens {
        writeln!(w, "rtas: {name} {tok:#x}")?;
    }
    for d in &p.vdevices {
        write!(
            w,
            "vdevice: {} unit={:x} compatible={}",
            d.name, d.unit, d.compatible
        )?;
        if let Some(win) = d.dma_window {
            write!(
                w,
                " liobn={:#x} dma_offset={:#x} dma_size={:#x}",
                win.liobn, win.offset, win.size
            )?;
        }
        writeln!(w)?;
    }
    for h in &p.hypertas {
        writeln!(w, "hypertas: {h}")?;
    }
    writeln!(w, "fdt_bytes: {fdt_bytes}")
}

/// Writes the blob as `fdt: <hex>` lines of [`DUMP_BYTES_PER_LINE`] bytes (the
/// last one shorter), then `fdt_bytes: N`.
pub fn write_dump(w: &mut dyn Write, blob: &[u8]) -> fmt::Result {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    // One line at a time into a buffer: one write per line, not one per byte.
    let mut line = [0u8; 5 + 2 * DUMP_BYTES_PER_LINE + 1];
    line[..5].copy_from_slice(b"fdt: ");
    for chunk in blob.chunks(DUMP_BYTES_PER_LINE) {
        let mut n = 5;
        for &b in chunk {
            line[n] = HEX[usize::from(b >> 4)];
            line[n + 1] = HEX[usize::from(b & 15)];
            n += 2;
        }
        line[n] = b'\n';
        // Only ASCII was written.
        w.write_str(core::str::from_utf8(&line[..=n]).map_err(|_| fmt::Error)?)?;
    }
    writeln!(w, "fdt_bytes: {}", blob.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devtree::platform::Cpu;
    use crate::devtree::{DmaWindow, MemRange, VDevice};
    use alloc::string::String;
    use alloc::vec;
    use alloc::vec::Vec;

    fn text(f: impl FnOnce(&mut String) -> fmt::Result) -> String {
        let mut s = String::new();
        f(&mut s).unwrap();
        s
    }

    #[test]
    fn facts_one_row_each() {
        let p = Platform {
            memory: vec![
                MemRange {
                    base: 0,
                    size: 0x2000_0000,
                },
                MemRange {
                    base: 0x4000_0000,
                    size: 0x1000_0000,
                },
            ],
            cpus: vec![Cpu {
                name: "PowerPC,POWER10@0".into(),
                reg: 0,
                threads: vec![0],
            }],
            timebase_hz: Some(512_000_000),
            vty_unit: Some(0x7100_0000),
            stdout_path: Some("/vdevice/vty@71000000".into()),
            bootargs: Some("cmm.delay_ms=20".into()),
            rtas_tokens: vec![("ibm,os-term".into(), 0x2010)],
            vdevices: vec![
                VDevice {
                    name: "vty@71000000".into(),
                    unit: 0x7100_0000,
                    compatible: "hvterm1".into(),
                    device_type: "serial".into(),
                    dma_window: None,
                },
                VDevice {
                    name: "v-scsi@71000002".into(),
                    unit: 0x7100_0002,
                    compatible: "IBM,v-scsi".into(),
                    device_type: "vscsi".into(),
                    dma_window: Some(DmaWindow {
                        liobn: 0x7100_0002,
                        offset: 0,
                        size: 0x1000_0000,
                    }),
                },
            ],
            hypertas: vec!["hcall-cmo".into()],
            ..Platform::default()
        };
        let s = text(|w| write_facts(w, &p, 4096));
        assert_eq!(
            s,
            "ram_bytes: 805306368\n\
             memory: base=0x0 size=0x20000000\n\
             memory: base=0x40000000 size=0x10000000\n\
             cpus: 1\n\
             cpu: PowerPC,POWER10@0 reg=0\n\
             timebase_hz: 512000000\n\
             vty: 71000000\n\
             stdout_path: /vdevice/vty@71000000\n\
             bootargs: cmm.delay_ms=20\n\
             rtas: ibm,os-term 0x2010\n\
             vdevice: vty@71000000 unit=71000000 compatible=hvterm1\n\
             vdevice: v-scsi@71000002 unit=71000002 compatible=IBM,v-scsi liobn=0x71000002 dma_offset=0x0 dma_size=0x10000000\n\
             hypertas: hcall-cmo\n\
             fdt_bytes: 4096\n"
        );
    }

    #[test]
    fn facts_of_an_empty_tree_say_none() {
        let s = text(|w| write_facts(w, &Platform::default(), 0));
        assert_eq!(
            s,
            "ram_bytes: 0\ncpus: 0\ntimebase_hz: 0\nvty: none\nstdout_path: \nbootargs: \nfdt_bytes: 0\n"
        );
    }

    #[test]
    fn dump_lines_of_32_bytes() {
        let blob: Vec<u8> = (0u8..70).collect();
        let s = text(|w| write_dump(w, &blob));
        let lines: Vec<&str> = s.lines().collect();
        assert_eq!(lines.len(), 4);
        assert_eq!(
            lines[0],
            "fdt: 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
        );
        assert_eq!(lines[2], "fdt: 404142434445");
        assert_eq!(lines[3], "fdt_bytes: 70");
        assert_eq!(text(|w| write_dump(w, &[])), "fdt_bytes: 0\n");
    }

    proptest::proptest! {
        #[test]
        fn dump_decodes_back_to_the_blob(blob in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            let s = text(|w| write_dump(w, &blob));
            let mut back = Vec::new();
            for l in s.lines() {
                if let Some(hex) = l.strip_prefix("fdt: ") {
                    proptest::prop_assert!(hex.len() <= 2 * DUMP_BYTES_PER_LINE);
                    for i in (0..hex.len()).step_by(2) {
                        back.push(u8::from_str_radix(&hex[i..i + 2], 16).unwrap());
                    }
                }
            }
            proptest::prop_assert_eq!(back, blob.clone());
            let want = alloc::format!("fdt_bytes: {}", blob.len());
            proptest::prop_assert_eq!(s.lines().last(), Some(want.as_str()));
        }
    }
}
