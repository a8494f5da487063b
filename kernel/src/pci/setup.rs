//! A host bridge's bus 0 through any [`ConfigSpace`]: the scan for functions, BAR
//! sizing (write all ones, read back, restore), and BAR assignment. Under the boot
//! ROM nobody assigned the BARs, so every implemented BAR gets a naturally
//! aligned address inside the bridge's window of its kind; under SLOF the
//! firmware's addresses are kept. A BAR that does not fit is left unassigned
//! (logged). Then I/O and memory decoding and bus mastering are enabled
//! (docs/virtio-balloon.md).

use alloc::string::String;
use alloc::vec::Vec;

use super::bar::{bar_address, bar_size, BarAllocator, BarKind};
use super::config::{devfn, reg, ConfigSpace, Width, COMMAND_IO_MEM_MASTER};
use super::window::{cpu_address, Space, Window};

/// I/O ports below this are left alone (legacy ISA range).
pub const IO_SKIP: u64 = 0x1000;

/// Base address registers per function (type 0 header).
pub const BARS: usize = 6;

/// A function found on bus 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Function {
    /// Its devfn.
    pub devfn: u8,
    /// Vendor ID.
    pub vendor: u16,
    /// Device ID.
    pub device: u16,
}

/// A BAR after setup.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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

/// Who chose the BAR addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// The firmware assigned at least one BAR: all are kept.
    Firmware,
    /// Nobody had: this code assigned them.
    Assigned,
}

/// One host bridge: its name (for log lines), its windows and its
/// configuration space.
pub struct Bridge<C> {
    /// The node name.
    pub name: String,
    /// The windows from its `ranges`.
    pub windows: Vec<Window>,
    /// Its configuration space.
    pub config: C,
}

/// A BAR as sized: kind, address it holds, length.
type SizedBar = (BarKind, u64, u64);

impl<C: ConfigSpace> Bridge<C> {
    /// Function 0 of every device on bus 0 that answers.
    pub fn scan(&mut self) -> Vec<Function> {
        let mut found = Vec::new();
        for dev in 0..32u8 {
            let df = devfn(dev, 0);
            let Ok(id) = self.config.read(df, reg::VENDOR_ID, Width::U32) else {
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

    /// Sizes the BARs of `f`, leaving their values as they were.
    fn size_bars(&mut self, f: &Function) -> Result<[Option<SizedBar>; BARS], C::Error> {
        let c = &mut self.config;
        let mut bars = [None; BARS];
        let mut i = 0;
        while i < BARS {
            let off = bar_reg(i);
            let lo = c.read(f.devfn, off, Width::U32)?;
            let kind = BarKind::of(lo);
            let wide = kind == BarKind::Mem64 && i + 1 < BARS;
            let hi = if wide {
                c.read(f.devfn, off + 4, Width::U32)?
            } else {
                0
            };
            c.write(f.devfn, off, Width::U32, u32::MAX)?;
            let mut probe = u64::from(c.read(f.devfn, off, Width::U32)?);
            c.write(f.devfn, off, Width::U32, lo)?;
            if wide {
                c.write(f.devfn, off + 4, Width::U32, u32::MAX)?;
                probe |= u64::from(c.read(f.devfn, off + 4, Width::U32)?) << 32;
                c.write(f.devfn, off + 4, Width::U32, hi)?;
            }
            let size = bar_size(kind, probe);
            if size > 0 {
                let addr = bar_address(kind, (u64::from(hi) << 32) | u64::from(lo));
                bars[i] = Some((kind, addr, size));
            }
            i += if wide { 2 } else { 1 };
        }
        Ok(bars)
    }

    /// Gives every sized BAR an address from the bridge's windows (a 64-bit BAR
    /// from the 64-bit window, else the 32-bit one) and writes it; a BAR that
    /// fits nowhere is dropped.
    fn assign(
        &mut self,
        f: &Function,
        bars: &mut [Option<SizedBar>; BARS],
    ) -> Result<(), C::Error> {
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
                BarKind::Io => io.as_mut().and_then(|a| a.alloc(*size)),
                BarKind::Mem32 => m32.as_mut().and_then(|a| a.alloc(*size)),
                BarKind::Mem64 => m64
                    .as_mut()
                    .and_then(|a| a.alloc(*size))
                    .or_else(|| m32.as_mut().and_then(|a| a.alloc(*size))),
            };
            let Some(a) = a else {
                log::warn!("pci: {}: no room for BAR{i} ({size:#x} bytes)", self.name);
                *b = None;
                continue;
            };
            let off = bar_reg(i);
            let flags = u64::from(self.config.read(f.devfn, off, Width::U32)?) & kind.flag_mask();
            let lo = u32::try_from((a | flags) & 0xffff_ffff).unwrap_or(0);
            self.config.write(f.devfn, off, Width::U32, lo)?;
            if *kind == BarKind::Mem64 {
                let hi = u32::try_from(a >> 32).unwrap_or(0);
                self.config.write(f.devfn, off + 4, Width::U32, hi)?;
            }
            *addr = a;
        }
        Ok(())
    }

    /// Sizes the six BARs of `f`. If firmware assigned any of them, keeps its
    /// addresses; else assigns every implemented BAR from the bridge's windows.
    /// Then enables I/O, memory and bus mastering.
    pub fn setup(&mut self, f: &Function) -> Result<([Option<Bar>; BARS], Origin), C::Error> {
        let mut bars = self.size_bars(f)?;
        let origin = if bars.iter().flatten().any(|&(_, addr, _)| addr != 0) {
            Origin::Firmware
        } else {
            self.assign(f, &mut bars)?;
            Origin::Assigned
        };
        let cmd = self.config.read(f.devfn, reg::COMMAND, Width::U16)?;
        self.config.write(
            f.devfn,
            reg::COMMAND,
            Width::U16,
            cmd | u32::from(COMMAND_IO_MEM_MASTER),
        )?;
        let mut out = [None; BARS];
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
            match origin {
                Origin::Firmware => "firmware",
                Origin::Assigned => "assigned",
            },
            out.iter()
                .enumerate()
                .filter_map(|(i, b)| b.map(|b| alloc::format!(
                    " BAR{i}={:#x}+{:#x}",
                    b.pci_addr,
                    b.size
                )))
                .collect::<String>()
        );
        Ok((out, origin))
    }
}

/// The configuration register of BAR `i`.
fn bar_reg(i: usize) -> u16 {
    reg::BAR0 + 4 * u16::try_from(i).unwrap_or(0)
}

#[cfg(test)]
mod tests;
