//! Where interrupts come from: XICS source numbers taken from the device tree.
//!
//! - A VIO device (a child of `/vdevice`) names its source in `interrupts`:
//!   `<source sense>` (sense 0: edge / message, 1: level).
//! - A PCI function raises INTx pin 1..4 (its `interrupts` property, or config
//!   register 0x3d). The host bridge translates it with `interrupt-map`: entries of
//!   (child unit address: `#address-cells` = 3 cells, child pin: the bridge's
//!   `#interrupt-cells` = 1, the parent's phandle, the parent's specifier:
//!   its `#interrupt-cells`, 2 for XICS: `<source sense>`), matched after masking
//!   the child address and pin with `interrupt-map-mask`.
//! - The controller itself is the node whose `compatible` lists `IBM,ppc-xicp`
//!   (the presentation controller);
//!   without it (XIVE) the kernel has no controller it drives and polls.
//!
//! Facts: docs/interrupts.md. Everything here is host-tested against QEMU's tree.

use alloc::string::String;
use alloc::vec::Vec;

use crate::devtree::fdt::{Fdt, Node, Property};

/// The `compatible` string of a XICS presentation controller.
pub const XICS_COMPATIBLE: &str = "IBM,ppc-xicp";

/// One interrupt source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Source {
    /// The XICS source number (XISR).
    pub number: u32,
    /// Level-sensitive (1 in the sense cell) rather than edge or message.
    pub level: bool,
}

/// A PCI function's INTx, resolved through its host bridge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PciIrq {
    /// The host bridge's node name.
    pub bridge: String,
    /// The function's node name.
    pub name: String,
    /// Bus number, devfn (the `phys.hi` cell of its `reg`, bits 23..8).
    pub bus: u8,
    /// Device and function.
    pub devfn: u8,
    /// INTx pin, 1 (INTA) to 4 (INTD).
    pub pin: u32,
    /// The XICS source.
    pub source: Source,
}

/// Every source the kernel may route.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Sources {
    /// A XICS node is present.
    pub xics: bool,
    /// VIO devices by unit address.
    pub vio: Vec<(u32, Source)>,
    /// PCI functions.
    pub pci: Vec<PciIrq>,
}

impl Sources {
    /// The source of the VIO device with unit address `unit`.
    pub fn vio_source(&self, unit: u32) -> Option<Source> {
        self.vio.iter().find(|(u, _)| *u == unit).map(|&(_, s)| s)
    }

    /// The source of PCI function `devfn` on bus 0 behind the bridge named `bridge`.
    pub fn pci_source(&self, bridge: &str, devfn: u8) -> Option<Source> {
        self.pci
            .iter()
            .find(|p| p.bridge == bridge && p.bus == 0 && p.devfn == devfn)
            .map(|p| p.source)
    }
}

fn cells(p: &Property<'_>) -> Option<Vec<u32>> {
    Some(p.cells()?.collect())
}

fn u32_prop(n: &Node<'_>, name: &str) -> Option<u32> {
    n.property(name).and_then(|p| p.as_u32())
}

/// Reads a `<source sense>` specifier (a missing sense cell means edge).
fn specifier(c: &[u32]) -> Option<Source> {
    let number = *c.first()?;
    let level = c.get(1).is_some_and(|&s| s != 0);
    Some(Source { number, level })
}

/// The node whose `phandle` (or `linux,phandle`) is `ph`.
fn by_phandle<'a>(fdt: &Fdt<'a>, ph: u32) -> Option<Node<'a>> {
    fdt.all_nodes()
        .find(|n| u32_prop(n, "phandle") == Some(ph) || u32_prop(n, "linux,phandle") == Some(ph))
}

/// True when the tree has a XICS controller.
pub fn has_xics(fdt: &Fdt<'_>) -> bool {
    fdt.all_nodes().any(|n| {
        n.property("compatible")
            .and_then(|c| c.as_str_list().map(|mut l| l.any(|s| s == XICS_COMPATIBLE)))
            .unwrap_or(false)
    })
}

/// Translates PCI INTx `pin` of the function whose `reg` starts with `phys_hi`
/// through the bridge's `interrupt-map`. `None` when the map is missing,
/// malformed, or has no entry for it.
pub fn pci_intx(fdt: &Fdt<'_>, bridge: &Node<'_>, phys_hi: u32, pin: u32) -> Option<Source> {
    let map = cells(&bridge.property("interrupt-map")?)?;
    let mask = bridge
        .property("interrupt-map-mask")
        .and_then(|p| cells(&p))
        .unwrap_or_else(|| alloc::vec![u32::MAX; 4]);
    let addr_cells = usize::try_from(u32_prop(bridge, "#address-cells").unwrap_or(3)).ok()?;
    let irq_cells = usize::try_from(u32_prop(bridge, "#interrupt-cells").unwrap_or(1)).ok()?;
    if addr_cells != 3 || irq_cells != 1 || mask.len() != 4 {
        return None;
    }
    let child = [phys_hi & mask[0], 0, 0, pin & mask[3]];
    let mut i = 0;
    while i + 5 <= map.len() {
        let entry_child = &map[i..i + 4];
        let parent = by_phandle(fdt, map[i + 4])?;
        let parent_cells =
            usize::try_from(u32_prop(&parent, "#interrupt-cells").unwrap_or(2)).ok()?;
        let spec = map.get(i + 5..i.checked_add(5)?.checked_add(parent_cells)?)?;
        let masked: [u32; 4] = [
            entry_child[0] & mask[0],
            entry_child[1] & mask[1],
            entry_child[2] & mask[2],
            entry_child[3] & mask[3],
        ];
        if masked == child {
            return specifier(spec);
        }
        i += 5 + parent_cells;
    }
    None
}

/// Gathers the sources of every VIO device and every PCI function in the tree.
pub fn gather(fdt: &Fdt<'_>) -> Sources {
    let mut s = Sources {
        xics: has_xics(fdt),
        ..Sources::default()
    };
    if let Some(vdev) = fdt.find("/vdevice") {
        for d in vdev.children() {
            let unit = d.property("reg").and_then(|r| r.cells()?.next());
            let spec = d.property("interrupts").and_then(|p| cells(&p));
            if let (Some(unit), Some(spec)) = (unit, spec) {
                if let Some(src) = specifier(&spec) {
                    s.vio.push((unit, src));
                }
            }
        }
    }
    for bridge in fdt.root().children() {
        if bridge.property("device_type").and_then(|d| d.as_str()) != Some("pci") {
            continue;
        }
        for f in bridge.children() {
            let Some(phys_hi) = f.property("reg").and_then(|r| r.cells()?.next()) else {
                continue;
            };
            let Some(pin) = u32_prop(&f, "interrupts").filter(|p| (1..=4).contains(p)) else {
                continue;
            };
            if let Some(source) = pci_intx(fdt, &bridge, phys_hi, pin) {
                let [_, bus, devfn, _] = phys_hi.to_be_bytes();
                s.pci.push(PciIrq {
                    bridge: String::from(bridge.name),
                    name: String::from(f.name),
                    bus,
                    devfn,
                    pin,
                    source,
                });
            }
        }
    }
    s
}
