//! XICS source lookup against QEMU's own tree: `-M pseries,dumpdtb=FILE` with a
//! v-scsi and a virtio-balloon on PCI, decoded independently here (the `dtc`
//! text) and by the kernel's reader.

use std::path::PathBuf;
use std::process::Command;

use kernel::devtree::Fdt;
use kernel::xics::{self, Source};

fn qemu_tree(extra: &[&str]) -> (Vec<u8>, String) {
    let dir = std::env::temp_dir().join(format!("lpar-cmm-xics-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let dtb: PathBuf = dir.join(format!("tree-{}.dtb", extra.len()));
    let status = Command::new("timeout")
        .arg("60")
        .arg("qemu-system-ppc64")
        .args([
            "-M",
            &format!(
                "pseries,cap-cfpc=broken,cap-sbbc=broken,cap-ibs=broken,cap-ccf-assist=off,dumpdtb={}",
                dtb.display()
            ),
            "-m",
            "512M",
            "-nographic",
            "-nodefaults",
            "-serial",
            "null",
        ])
        .args(extra)
        .output()
        .expect("qemu-system-ppc64 is installed (make setup)");
    assert!(
        dtb.exists(),
        "QEMU wrote no tree: {}",
        String::from_utf8_lossy(&status.stderr)
    );
    let blob = std::fs::read(&dtb).unwrap();
    let dts = Command::new("dtc")
        .args(["-q", "-I", "dtb", "-O", "dts"])
        .arg(&dtb)
        .output()
        .expect("dtc is installed (make setup)");
    let _ = std::fs::remove_file(&dtb);
    (blob, String::from_utf8(dts.stdout).unwrap())
}

/// The cells of `name = <...>;` inside the node whose line starts with `node {`.
fn dts_cells(dts: &str, node: &str, name: &str) -> Vec<u32> {
    let start = dts
        .find(&format!("{node} {{"))
        .unwrap_or_else(|| panic!("{node} in the tree"));
    let body = &dts[start..];
    let at = body
        .find(&format!("{name} = <"))
        .unwrap_or_else(|| panic!("{name} in {node}"));
    let v = &body[at + name.len() + 4..];
    v[..v.find('>').unwrap()]
        .split_whitespace()
        .map(|c| u32::from_str_radix(c.trim_start_matches("0x"), 16).unwrap())
        .collect()
}

#[test]
fn vio_and_pci_sources_match_qemus_tree() {
    let (blob, dts) = qemu_tree(&["-device", "spapr-vscsi", "-device", "virtio-balloon-pci"]);
    let fdt = Fdt::new(&blob).unwrap();
    let s = xics::gather(&fdt);
    assert!(s.xics, "QEMU presents XICS before CAS");

    // VIO: the vty and the v-scsi, each with `interrupts = <source sense>`.
    for (node, unit) in [
        ("vty@71000000", 0x7100_0000),
        ("v-scsi@71000002", 0x7100_0002),
    ] {
        let want = dts_cells(&dts, node, "interrupts");
        let got = s
            .vio_source(unit)
            .unwrap_or_else(|| panic!("{node} source"));
        assert_eq!(got.number, want[0], "{node}");
        assert_eq!(got.level, want[1] != 0, "{node}");
    }
    assert_eq!(s.vio_source(0x1234), None);

    // PCI: the balloon at 00:00.0 raises INTA (pin 1); the bridge maps it to a
    // level source. Decode the dtc text independently: entries of 4 child cells,
    // a phandle, then 2 parent cells.
    let pci = &s.pci;
    assert_eq!(pci.len(), 1, "{pci:?}");
    let f = &pci[0];
    assert_eq!((f.bus, f.devfn, f.pin), (0, 0, 1));
    let map = dts_cells(&dts, &f.bridge, "interrupt-map");
    let entry = map
        .chunks(7)
        .find(|e| e[0] == 0 && e[3] == 1)
        .expect("an entry for device 0 INTA");
    assert_eq!(
        f.source,
        Source {
            number: entry[5],
            level: entry[6] != 0
        }
    );
    assert!(f.source.level, "PCI INTx is level-sensitive");
    assert_eq!(s.pci_source(&f.bridge, 0), Some(f.source));
    assert_eq!(s.pci_source(&f.bridge, 8), None);
}

#[test]
fn every_pin_of_every_slot_maps_through_the_swizzle() {
    let (blob, dts) = qemu_tree(&[]);
    let fdt = Fdt::new(&blob).unwrap();
    let bridge = fdt
        .root()
        .children()
        .find(|n| n.name.starts_with("pci@"))
        .expect("a PCI host bridge");
    let map = dts_cells(&dts, bridge.name, "interrupt-map");
    assert_eq!(map.len() % 7, 0);
    for e in map.chunks(7) {
        let got = xics::pci_intx(&fdt, &bridge, e[0], e[3]);
        assert_eq!(
            got,
            Some(Source {
                number: e[5],
                level: e[6] != 0
            }),
            "slot {:#x} pin {}",
            e[0] >> 11,
            e[3]
        );
        // Function bits are masked off: function 3 of the slot maps the same.
        assert_eq!(xics::pci_intx(&fdt, &bridge, e[0] | 0x300, e[3]), got);
    }
    assert_eq!(xics::pci_intx(&fdt, &bridge, 0, 5), None, "no pin 5");
    // The tree without PCI devices lists none, but still the vty.
    let s = xics::gather(&fdt);
    assert!(s.pci.is_empty());
    assert!(s.vio_source(0x7100_0000).is_some());
}
