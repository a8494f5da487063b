//! The facts the kernel needs from the device tree, gathered in one pass.
//!
//! Every missing or malformed property becomes a line in [`Platform::problems`]
//! (which boot logs as a warning) and a default or an absent value; nothing here
//! panics on its input.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use super::fdt::{Fdt, Node, Property};

/// A range of RAM from a `memory` node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemRange {
    /// First byte.
    pub base: u64,
    /// Length in bytes.
    pub size: u64,
}

/// A CPU node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cpu {
    /// Node name (`PowerPC,POWER9@0`).
    pub name: String,
    /// `reg` (the interrupt server number).
    pub reg: u32,
    /// `ibm,ppc-interrupt-server#s`: one interrupt server number per hardware
    /// thread of the core (what RTAS `start-cpu`, H_REGISTER_VPA and H_IPI take);
    /// `[reg]` when the property is missing.
    pub threads: Vec<u32>,
}

/// A DMA window from `ibm,my-dma-window` (`<liobn offset(2 cells) size(2 cells)>`).
pub use cmm::vio::DmaWindow;

/// A child of `/vdevice`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VDevice {
    /// Node name (`v-scsi@71000002`).
    pub name: String,
    /// Unit address (`reg`).
    pub unit: u32,
    /// First `compatible` string.
    pub compatible: String,
    /// `device_type`, if present.
    pub device_type: String,
    /// Its DMA window, for devices that do DMA.
    pub dma_window: Option<DmaWindow>,
}

/// A PCI host bridge (a `device_type = "pci"` node under the root).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Phb {
    /// Node name (`pci@800000020000000`).
    pub name: String,
    /// The bridge's BUID (the first two cells of `reg`), for RTAS config access.
    pub buid: u64,
    /// Its I/O and memory windows, from `ranges`.
    pub windows: Vec<crate::pci::Window>,
}

/// Everything the kernel takes from the tree.
#[derive(Clone, Debug, Default)]
pub struct Platform {
    /// All RAM, from every `device_type = "memory"` node, sorted by base.
    pub memory: Vec<MemRange>,
    /// CPU nodes under `/cpus`.
    pub cpus: Vec<Cpu>,
    /// `timebase-frequency` of the first CPU, in Hz.
    pub timebase_hz: Option<u64>,
    /// `/chosen/bootargs`.
    pub bootargs: Option<String>,
    /// `/chosen/stdout-path`.
    pub stdout_path: Option<String>,
    /// Unit address of the console vty.
    pub vty_unit: Option<u32>,
    /// `/rtas` tokens by name (every u32 property except the `rtas-*` sizes).
    pub rtas_tokens: Vec<(String, u32)>,
    /// `/vdevice` children.
    pub vdevices: Vec<VDevice>,
    /// `/rtas/ibm,hypertas-functions`.
    pub hypertas: Vec<String>,
    /// The model string of the root.
    pub model: Option<String>,
    /// The memory reservation map.
    pub reserved: Vec<MemRange>,
    /// Problems found (missing or malformed properties), one line each.
    pub problems: Vec<String>,
    /// PCI host bridges.
    pub phbs: Vec<Phb>,
}

impl Platform {
    /// The RTAS token called `name`.
    pub fn rtas_token(&self, name: &str) -> Option<u32> {
        self.rtas_tokens
            .iter()
            .find(|(n, _)| n == name)
            .map(|&(_, t)| t)
    }

    /// Total bytes of RAM.
    pub fn ram_bytes(&self) -> u64 {
        self.memory
            .iter()
            .fold(0u64, |a, m| a.saturating_add(m.size))
    }

    /// The first address above every RAM range ([`ram_top`]).
    pub fn ram_top(&self) -> u64 {
        ram_top(&self.memory)
    }
}

/// The first address above every range of `memory` (0 without any); ranges
/// may come in any order and leave holes.
pub fn ram_top(memory: &[MemRange]) -> u64 {
    memory
        .iter()
        .map(|m| m.base.saturating_add(m.size))
        .max()
        .unwrap_or(0)
}

fn cells_value(p: &Property<'_>, start: usize, n: usize) -> Option<u64> {
    let mut v: u64 = 0;
    for i in 0..n {
        let cell = super::fdt::be32(p.value, start.checked_add(i)?.checked_mul(4)?)?;
        v = v.checked_shl(32)? | u64::from(cell);
    }
    if n > 2 {
        return None;
    }
    Some(v)
}

fn cell_count(node: &Node<'_>, name: &str, default: usize) -> usize {
    node.property(name)
        .and_then(|p| p.as_u32())
        .and_then(|v| usize::try_from(v).ok())
        .filter(|&v| v <= 4)
        .unwrap_or(default)
}

/// Gathers the platform facts from a validated tree.
pub fn gather(fdt: &Fdt<'_>) -> Platform {
    let mut p = Platform::default();
    let root = fdt.root();
    let ac = cell_count(&root, "#address-cells", 2);
    let sc = cell_count(&root, "#size-cells", 1);
    p.model = root
        .property("model")
        .and_then(|m| m.as_str())
        .map(ToString::to_string);

    for (base, size) in fdt.reserved_memory() {
        p.reserved.push(MemRange { base, size });
    }

    // Memory: every node with device_type = "memory" directly under the root.
    for node in root.children() {
        if node.property("device_type").and_then(|d| d.as_str()) != Some("memory") {
            continue;
        }
        let Some(reg) = node.property("reg") else {
            p.problems.push(format!("{}: no reg property", node.name));
            continue;
        };
        let entry = (ac + sc) * 4;
        if entry == 0 || reg.value.len() % entry != 0 {
            p.problems.push(format!(
                "{}: malformed reg ({} bytes)",
                node.name,
                reg.value.len()
            ));
            continue;
        }
        for i in 0..reg.value.len() / entry {
            let base = cells_value(&reg, i * (ac + sc), ac);
            let size = cells_value(&reg, i * (ac + sc) + ac, sc);
            match (base, size) {
                (Some(base), Some(size)) if size > 0 => p.memory.push(MemRange { base, size }),
                (Some(_), Some(_)) => {}
                _ => p
                    .problems
                    .push(format!("{}: reg entry {i} does not fit 64 bits", node.name)),
            }
        }
    }
    p.memory.sort_by_key(|m| m.base);
    if p.memory.is_empty() {
        p.problems.push("no memory node".to_string());
    }

    // CPUs: walk /cpus by device_type (the fdt crate's cpus() finds none on pseries).
    match fdt.find("/cpus") {
        Some(cpus) => {
            for c in cpus.children() {
                if c.property("device_type").and_then(|d| d.as_str()) != Some("cpu") {
                    continue;
                }
                let reg = c.property("reg").and_then(|r| r.cells()?.next());
                if reg.is_none() {
                    p.problems.push(format!("{}: no reg", c.name));
                }
                if p.timebase_hz.is_none() {
                    p.timebase_hz = c
                        .property("timebase-frequency")
                        .and_then(|t| match t.value.len() {
                            4 => t.as_u32().map(u64::from),
                            8 => cells_value(&t, 0, 2),
                            _ => None,
                        })
                        .filter(|&f| f > 0);
                }
                let threads: Vec<u32> = c
                    .property("ibm,ppc-interrupt-server#s")
                    .and_then(|t| t.cells())
                    .map(|cells| cells.collect())
                    .filter(|t: &Vec<u32>| !t.is_empty())
                    .unwrap_or_else(|| reg.into_iter().collect());
                p.cpus.push(Cpu {
                    name: c.name.to_string(),
                    reg: reg.unwrap_or(0),
                    threads,
                });
            }
        }
        None => p.problems.push("no /cpus node".to_string()),
    }
    if p.timebase_hz.is_none() {
        p.problems
            .push("no valid timebase-frequency on any CPU".to_string());
    }

    // /chosen
    match fdt.find("/chosen") {
        Some(ch) => {
            p.bootargs = ch
                .property("bootargs")
                .and_then(|b| b.as_str())
                .map(ToString::to_string);
            p.stdout_path = ch
                .property("stdout-path")
                .or_else(|| ch.property("linux,stdout-path"))
                .and_then(|s| s.as_str())
                .map(ToString::to_string);
        }
        None => p.problems.push("no /chosen node".to_string()),
    }

    // /rtas
    match fdt.find("/rtas") {
        Some(rtas) => {
            for prop in rtas.properties() {
                // Sizes, cell counts, phandles and firmware bookkeeping
                // (`slof,from-fdt`) are one-cell properties but not tokens.
                if prop.name.starts_with("rtas-")
                    || prop.name.starts_with('#')
                    || prop.name.starts_with("slof,")
                    || matches!(prop.name, "phandle" | "linux,phandle" | "ibm,phandle")
                {
                    continue;
                }
                if let Some(v) = prop.as_u32() {
                    p.rtas_tokens.push((prop.name.to_string(), v));
                }
            }
            if let Some(list) = rtas
                .property("ibm,hypertas-functions")
                .and_then(|h| h.as_str_list())
            {
                p.hypertas = list
                    .filter(|s| !s.is_empty())
                    .map(ToString::to_string)
                    .collect();
            }
        }
        None => p.problems.push("no /rtas node".to_string()),
    }

    // /vdevice
    match fdt.find("/vdevice") {
        Some(vdev) => {
            for d in vdev.children() {
                let unit = match d.property("reg").and_then(|r| r.as_u32()) {
                    Some(u) => u,
                    None => {
                        p.problems
                            .push(format!("{}: missing or malformed reg", d.name));
                        continue;
                    }
                };
                let compatible = d
                    .property("compatible")
                    .and_then(|c| c.as_str_list().and_then(|mut l| l.next()))
                    .unwrap_or("")
                    .to_string();
                let device_type = d
                    .property("device_type")
                    .and_then(|c| c.as_str())
                    .unwrap_or("")
                    .to_string();
                let dma_window = match d.property("ibm,my-dma-window") {
                    None => None,
                    Some(w) if w.value.len() == 20 => {
                        let liobn = cells_value(&w, 0, 1).and_then(|v| u32::try_from(v).ok());
                        match (liobn, cells_value(&w, 1, 2), cells_value(&w, 3, 2)) {
                            (Some(liobn), Some(offset), Some(size)) => Some(DmaWindow {
                                liobn,
                                offset,
                                size,
                            }),
                            _ => None,
                        }
                    }
                    Some(w) => {
                        p.problems.push(format!(
                            "{}: ibm,my-dma-window is {} bytes, expected 20",
                            d.name,
                            w.value.len()
                        ));
                        None
                    }
                };
                p.vdevices.push(VDevice {
                    name: d.name.to_string(),
                    unit,
                    compatible,
                    device_type,
                    dma_window,
                });
            }
        }
        None => p.problems.push("no /vdevice node".to_string()),
    }

    gather_phbs(&root, ac, &mut p);

    // The console: the vty named by stdout-path, else the first hvterm.
    let from_path = p.stdout_path.as_deref().and_then(|path| {
        let name = path.rsplit('/').next()?;
        p.vdevices.iter().find(|d| d.name == name).map(|d| d.unit)
    });
    p.vty_unit = from_path.or_else(|| {
        p.vdevices
            .iter()
            .find(|d| d.compatible.starts_with("hvterm") || d.name.starts_with("vty@"))
            .map(|d| d.unit)
    });
    if p.vty_unit.is_none() {
        p.problems.push("no vty device".to_string());
    }
    p
}

/// PCI host bridges: root children with `device_type = "pci"`, their BUID from
/// `reg` and windows from `ranges` (`ac` is the root's `#address-cells`).
fn gather_phbs(root: &Node<'_>, ac: usize, p: &mut Platform) {
    for node in root.children() {
        if node.property("device_type").and_then(|d| d.as_str()) != Some("pci") {
            continue;
        }
        let buid = match node
            .property("reg")
            .map(|r| crate::pci::buid_from_reg(r.value))
        {
            Some(Ok(b)) => b,
            Some(Err(e)) => {
                p.problems.push(format!("{}: {e}", node.name));
                continue;
            }
            None => {
                p.problems.push(format!("{}: no reg", node.name));
                continue;
            }
        };
        let windows = match node
            .property("ranges")
            .map(|r| crate::pci::decode_ranges(r.value, ac))
        {
            Some(Ok(w)) => w,
            Some(Err(e)) => {
                p.problems.push(format!("{}: {e}", node.name));
                Vec::new()
            }
            None => Vec::new(),
        };
        p.phbs.push(Phb {
            name: node.name.to_string(),
            buid,
            windows,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_top_of_ram_is_above_the_highest_range_in_any_order() {
        let r = |base, size| MemRange { base, size };
        assert_eq!(ram_top(&[]), 0);
        assert_eq!(ram_top(&[r(4 << 30, 1 << 30), r(0, 2 << 30)]), 5 << 30);
        assert_eq!(ram_top(&[r(u64::MAX - 1, 8)]), u64::MAX, "saturates");
    }
}
