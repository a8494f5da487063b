//! The pseries PCI host bridge: configuration space through RTAS
//! `ibm,read-pci-config` / `ibm,write-pci-config`, a scan of bus 0, BAR
//! assignment when no firmware did it (boot ROM) or reuse of the firmware's BARs
//! (SLOF), and enabling I/O, memory and bus mastering.

use alloc::string::String;
use alloc::vec::Vec;
use kernel::devtree::platform::Phb;
use kernel::devtree::Platform;
use kernel::pci::{
    bar_address, bar_size, buid_cells, config_address, cpu_address, devfn, reg, BarAllocator,
    BarKind, Space, Window, COMMAND_IO_MEM_MASTER,
};

use crate::rtas::{self, RtasError};

/// I/O ports below this are left alone (legacy ISA range).
const IO_SKIP: u64 = 0x1000;

/// One host bridge and the RTAS tokens that reach its configuration space.
pub struct Bridge {
    /// The node name, for log lines.
    pub name: String,
    buid: u64,
    windows: Vec<Window>,
    read_token: u32,
    write_token: u32,
}

/// A function found on bus 0.
#[derive(Clone, Copy, Debug)]
pub struct Function {
    /// Its devfn.
    pub devfn: u8,
    /// Vendor ID.
    pub vendor: u16,
    /// Device ID.
    pub device: u16,
}

/// A BAR after setup.
#[derive(Clone, Copy, Debug)]
pub struct Bar {
    /// Its kind.
    pub kind: BarKind,
    /// Its PCI bus address.
    pub pci_addr: u64,
    /// Its length.
    pub size: u64,
    /// Where the CPU reaches it, if a window covers it.
    pub cpu_addr: Option<u64>,
}

impl Bridge {
    /// The bridge for `phb`, if RTAS has the config-space calls.
    pub fn new(phb: &Phb, platform: &Platform) -> Result<Bridge, &'static str> {
        let read_token = platform
            .rtas_token("ibm,read-pci-config")
            .ok_or("no RTAS ibm,read-pci-config")?;
        let write_token = platform
            .rtas_token("ibm,write-pci-config")
            .ok_or("no RTAS ibm,write-pci-config")?;
        Ok(Bridge {
            name: phb.name.clone(),
            buid: phb.buid,
            windows: phb.windows.clone(),
            read_token,
            write_token,
        })
    }

    /// Reads `size` (1, 2 or 4) bytes of configuration register `reg` of `devfn` on bus 0.
    pub fn read(&self, devfn: u8, reg: u16, size: u32) -> Result<u32, RtasError> {
        let (hi, lo) = buid_cells(self.buid);
        let mut rets = [0u32; 2];
        rtas::call_status(
            self.read_token,
            &[config_address(0, devfn, reg), hi, lo, size],
            &mut rets,
        )?;
        Ok(rets[1])
    }

    /// Writes `size` (1, 2 or 4) bytes of configuration register `reg`.
    pub fn write(&self, devfn: u8, reg: u16, size: u32, value: u32) -> Result<(), RtasError> {
        let (hi, lo) = buid_cells(self.buid);
        let mut rets = [0u32; 1];
        rtas::call_status(
            self.write_token,
            &[config_address(0, devfn, reg), hi, lo, size, value],
            &mut rets,
        )
    }

    /// Function 0 of every device on bus 0 that answers.
    pub fn scan(&self) -> Vec<Function> {
        let mut found = Vec::new();
        for dev in 0..32u8 {
            let df = devfn(dev, 0);
            let Ok(id) = self.read(df, reg::VENDOR_ID, 4) else {
                continue;
            };
            let vendor = (id & 0xffff) as u16;
            if vendor == 0xffff || vendor == 0 {
                continue;
            }
            found.push(Function {
                devfn: df,
                vendor,
                device: (id >> 16) as u16,
            });
        }
        found
    }

    /// Sizes the six BARs of `f`. If firmware assigned any of them, keeps its
    /// addresses; else assigns every implemented BAR from the bridge's windows.
    /// Then enables I/O, memory and bus mastering.
    pub fn setup(&self, f: &Function) -> Result<[Option<Bar>; 6], RtasError> {
        let mut bars: [Option<(BarKind, u64, u64)>; 6] = [None; 6];
        let mut i = 0;
        while i < 6 {
            let off = reg::BAR0 + 4 * i as u16;
            let lo = self.read(f.devfn, off, 4)?;
            let kind = BarKind::of(lo);
            let wide = kind == BarKind::Mem64 && i < 5;
            let hi = if wide {
                self.read(f.devfn, off + 4, 4)?
            } else {
                0
            };
            self.write(f.devfn, off, 4, u32::MAX)?;
            let mut probe = u64::from(self.read(f.devfn, off, 4)?);
            self.write(f.devfn, off, 4, lo)?;
            if wide {
                self.write(f.devfn, off + 4, 4, u32::MAX)?;
                probe |= u64::from(self.read(f.devfn, off + 4, 4)?) << 32;
                self.write(f.devfn, off + 4, 4, hi)?;
            }
            let size = bar_size(kind, probe);
            if size > 0 {
                let addr = bar_address(kind, (u64::from(hi) << 32) | u64::from(lo));
                bars[i as usize] = Some((kind, addr, size));
            }
            i += if wide { 2 } else { 1 };
        }
        let firmware = bars.iter().flatten().any(|&(_, addr, _)| addr != 0);
        if !firmware {
            let alloc = |space: Space, skip: u64| {
                self.windows
                    .iter()
                    .find(|w| w.space == space)
                    .map(|w| BarAllocator::new(w, skip))
            };
            let mut io = alloc(Space::Io, IO_SKIP);
            let mut m32 = alloc(Space::Mem32, 0);
            let mut m64 = alloc(Space::Mem64, 0);
            for (i, b) in bars.iter_mut().enumerate() {
                let Some((kind, addr, size)) = b else {
                    continue;
                };
                let a = match kind {
                    BarKind::Io => io.as_mut(),
                    BarKind::Mem32 => m32.as_mut(),
                    BarKind::Mem64 => m64.as_mut().or(m32.as_mut()),
                }
                .and_then(|a| a.alloc(*size));
                let Some(a) = a else {
                    log::warn!("pci: no room for BAR{i} ({size:#x} bytes)");
                    *b = None;
                    continue;
                };
                let off = reg::BAR0 + 4 * i as u16;
                let flags = u64::from(self.read(f.devfn, off, 4)?) & kind.flag_mask();
                self.write(f.devfn, off, 4, ((a | flags) & 0xffff_ffff) as u32)?;
                if *kind == BarKind::Mem64 {
                    self.write(f.devfn, off + 4, 4, (a >> 32) as u32)?;
                }
                *addr = a;
            }
        }
        let cmd = self.read(f.devfn, reg::COMMAND, 2)?;
        self.write(
            f.devfn,
            reg::COMMAND,
            2,
            cmd | u32::from(COMMAND_IO_MEM_MASTER),
        )?;
        let mut out = [None; 6];
        for (o, b) in out.iter_mut().zip(bars) {
            *o = b.map(|(kind, pci_addr, size)| Bar {
                kind,
                pci_addr,
                size,
                cpu_addr: cpu_address(&self.windows, kind.space(), pci_addr, size)
                    .or_else(|| cpu_address(&self.windows, Space::Mem32, pci_addr, size)),
            });
        }
        log::info!(
            "pci: {} {:02x}.0 {:04x}:{:04x}: {} BARs{}",
            self.name,
            f.devfn >> 3,
            f.vendor,
            f.device,
            if firmware { "firmware" } else { "assigned" },
            out.iter()
                .enumerate()
                .filter_map(|(i, b)| b.map(|b| alloc::format!(
                    " BAR{i}={:#x}+{:#x}",
                    b.pci_addr,
                    b.size
                )))
                .collect::<String>()
        );
        Ok(out)
    }
}
