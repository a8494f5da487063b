//! Scan, sizing and assignment against a fake configuration space whose BARs
//! behave like hardware: the address bits below the size read back as zero, the
//! flag bits are fixed.

use super::*;
use crate::pci::config::config_address;
use std::collections::BTreeMap;
use std::vec;
use std::vec::Vec;

/// One BAR register: writable bits and fixed (flag) bits.
#[derive(Clone, Copy)]
struct BarReg {
    mask: u32,
    fixed: u32,
}

/// A function's registers.
#[derive(Default)]
struct FakeFunction {
    regs: BTreeMap<u16, u32>,
    bars: BTreeMap<u16, BarReg>,
}

impl FakeFunction {
    fn new(vendor: u16, device: u16) -> Self {
        let mut f = FakeFunction::default();
        f.regs
            .insert(reg::VENDOR_ID, u32::from(device) << 16 | u32::from(vendor));
        f
    }

    fn io(mut self, i: u16, size: u32) -> Self {
        self.bars.insert(
            reg::BAR0 + 4 * i,
            BarReg {
                mask: !(size - 1) & !3,
                fixed: 1,
            },
        );
        self
    }

    fn mem32(mut self, i: u16, size: u32) -> Self {
        self.bars.insert(
            reg::BAR0 + 4 * i,
            BarReg {
                mask: !(size - 1) & !0xf,
                fixed: 0,
            },
        );
        self
    }

    fn mem64(mut self, i: u16, size: u64) -> Self {
        let m = !(size - 1);
        self.bars.insert(
            reg::BAR0 + 4 * i,
            BarReg {
                mask: (m & 0xffff_fff0) as u32,
                fixed: 0xc,
            },
        );
        self.bars.insert(
            reg::BAR0 + 4 * i + 4,
            BarReg {
                mask: (m >> 32) as u32,
                fixed: 0,
            },
        );
        self
    }

    /// QEMU's transitional balloon: BAR0 I/O 0x40, BAR4/5 64-bit 16 KiB.
    fn balloon() -> Self {
        FakeFunction::new(0x1af4, 0x1002)
            .io(0, 0x40)
            .mem64(4, 0x4000)
    }

    /// Sets a BAR's value as firmware would have.
    fn firmware(mut self, r: u16, value: u32) -> Self {
        self.regs.insert(r, value);
        self
    }

    fn get(&self, r: u16) -> u32 {
        let v = self.regs.get(&r).copied().unwrap_or(0);
        match self.bars.get(&r) {
            Some(b) => (v & b.mask) | b.fixed,
            // An unimplemented BAR is hardwired to zero.
            None if (reg::BAR0..reg::BAR0 + 24).contains(&r) => 0,
            None => v,
        }
    }
}

/// Bus 0 with functions at some slots; every access is logged with its
/// configuration address; `fail_after` makes accesses fail from then on.
#[derive(Default)]
struct FakeBus {
    slots: BTreeMap<u8, FakeFunction>,
    writes: Vec<(u32, u32)>,
    accesses: usize,
    fail_after: Option<usize>,
}

impl FakeBus {
    fn with(slot: u8, f: FakeFunction) -> Self {
        let mut b = FakeBus::default();
        b.slots.insert(devfn(slot, 0), f);
        b
    }

    fn tick(&mut self) -> Result<(), &'static str> {
        self.accesses += 1;
        match self.fail_after {
            Some(n) if self.accesses > n => Err("RTAS status -1"),
            _ => Ok(()),
        }
    }
}

impl ConfigSpace for FakeBus {
    type Error = &'static str;
    fn read(&mut self, df: u8, r: u16, width: Width) -> Result<u32, &'static str> {
        self.tick()?;
        let Some(f) = self.slots.get(&df) else {
            return Ok(u32::MAX);
        };
        let v = f.get(r & !3) >> (8 * u32::from(r & 3));
        Ok(match width {
            Width::U8 => v & 0xff,
            Width::U16 => v & 0xffff,
            Width::U32 => v,
        })
    }
    fn write(&mut self, df: u8, r: u16, width: Width, value: u32) -> Result<(), &'static str> {
        self.tick()?;
        assert_eq!(r & 3, 0, "unaligned write in this test");
        self.writes.push((config_address(0, df, r), value));
        if let Some(f) = self.slots.get_mut(&df) {
            let old = f.regs.get(&r).copied().unwrap_or(0);
            let v = match width {
                Width::U8 => (old & !0xff) | (value & 0xff),
                Width::U16 => (old & !0xffff) | (value & 0xffff),
                Width::U32 => value,
            };
            f.regs.insert(r, v);
        }
        Ok(())
    }
}

/// QEMU 7.2's PHB 0 windows.
fn qemu_windows() -> Vec<Window> {
    vec![
        Window {
            space: Space::Io,
            pci_addr: 0,
            cpu_addr: 0x2000_0000_0000,
            size: 0x1_0000,
        },
        Window {
            space: Space::Mem32,
            pci_addr: 0x8000_0000,
            cpu_addr: 0x2000_8000_0000,
            size: 0x8000_0000,
        },
        Window {
            space: Space::Mem64,
            pci_addr: 0x2100_0000_0000,
            cpu_addr: 0x2100_0000_0000,
            size: 0x100_0000_0000,
        },
    ]
}

fn bridge(bus: FakeBus, windows: Vec<Window>) -> Bridge<FakeBus> {
    Bridge {
        name: "pci@800000020000000".into(),
        windows,
        config: bus,
    }
}

fn balloon_fn() -> Function {
    Function {
        devfn: 0,
        vendor: 0x1af4,
        device: 0x1002,
    }
}

#[test]
fn the_scan_finds_answering_functions_only() {
    let mut bus = FakeBus::with(0, FakeFunction::balloon());
    bus.slots
        .insert(devfn(5, 0), FakeFunction::new(0x1234, 0x11));
    bus.slots.insert(devfn(6, 0), FakeFunction::new(0, 0));
    let mut b = bridge(bus, qemu_windows());
    assert_eq!(
        b.scan(),
        [
            balloon_fn(),
            Function {
                devfn: 0x28,
                vendor: 0x1234,
                device: 0x11
            }
        ]
    );
    // A function whose read fails is skipped, not fatal.
    b.config.fail_after = Some(0);
    assert!(b.scan().is_empty());
}

#[test]
fn unassigned_bars_are_sized_and_placed_inside_the_windows() {
    let mut b = bridge(FakeBus::with(0, FakeFunction::balloon()), qemu_windows());
    let (bars, origin) = b.setup(&balloon_fn()).unwrap();
    assert_eq!(origin, Origin::Assigned);
    assert_eq!(
        bars[0],
        Some(Bar {
            kind: BarKind::Io,
            pci_addr: 0x1000,
            size: 0x40,
            cpu_addr: Some(0x2000_0000_1000),
        })
    );
    assert_eq!(
        bars[4],
        Some(Bar {
            kind: BarKind::Mem64,
            pci_addr: 0x2100_0000_0000,
            size: 0x4000,
            cpu_addr: Some(0x2100_0000_0000),
        })
    );
    assert!(bars[1..4].iter().all(Option::is_none) && bars[5].is_none());
    let f = &b.config.slots[&0];
    assert_eq!(
        f.get(reg::BAR0),
        0x1001,
        "the device decodes what was assigned"
    );
    assert_eq!(f.get(reg::BAR0 + 16), 0xc);
    assert_eq!(f.get(reg::BAR0 + 20), 0x2100);
    assert_eq!(f.get(reg::COMMAND) & 0x7, 0x7, "I/O, memory, bus master on");
    for bar in bars.iter().flatten() {
        let w = qemu_windows()
            .into_iter()
            .find(|w| w.space == bar.kind.space())
            .unwrap();
        assert!(bar.pci_addr >= w.pci_addr && bar.pci_addr + bar.size <= w.pci_addr + w.size);
        assert_eq!(bar.pci_addr % bar.size, 0, "naturally aligned");
    }
}

#[test]
fn thirty_two_bit_bars_come_from_the_32_bit_window_in_order() {
    let f = FakeFunction::new(0x1234, 1)
        .mem32(0, 0x1000)
        .mem32(1, 0x10_0000)
        .io(2, 0x100);
    let mut b = bridge(FakeBus::with(2, f), qemu_windows());
    let func = Function {
        devfn: devfn(2, 0),
        vendor: 0x1234,
        device: 1,
    };
    let (bars, _) = b.setup(&func).unwrap();
    let addr = |i: usize| bars[i].map(|b| (b.pci_addr, b.size, b.cpu_addr));
    assert_eq!(addr(0), Some((0x8000_0000, 0x1000, Some(0x2000_8000_0000))));
    // The next one is aligned to its own size.
    assert_eq!(
        addr(1),
        Some((0x8010_0000, 0x10_0000, Some(0x2000_8010_0000)))
    );
    assert_eq!(addr(2), Some((0x1000, 0x100, Some(0x2000_0000_1000))));
    assert_eq!(b.config.slots[&devfn(2, 0)].get(reg::BAR0 + 4), 0x8010_0000);
}

#[test]
fn a_64_bit_bar_without_a_64_bit_window_goes_below_4_gib() {
    let mut w = qemu_windows();
    w.retain(|w| w.space != Space::Mem64);
    let mut b = bridge(FakeBus::with(0, FakeFunction::balloon()), w);
    let (bars, _) = b.setup(&balloon_fn()).unwrap();
    let bar4 = bars[4].unwrap();
    assert_eq!(bar4.pci_addr, 0x8000_0000);
    assert_eq!(bar4.cpu_addr, Some(0x2000_8000_0000));
    assert_eq!(b.config.slots[&0].get(reg::BAR0 + 20), 0, "high half zero");
}

#[test]
fn firmware_bars_are_kept_and_only_the_command_is_written() {
    // SLOF: BAR0 at I/O 0x40, BAR4/5 at the start of the 64-bit window, command 0x100.
    let f = FakeFunction::balloon()
        .firmware(reg::BAR0, 0x41)
        .firmware(reg::BAR0 + 16, 0xc)
        .firmware(reg::BAR0 + 20, 0x2100)
        .firmware(reg::COMMAND, 0x100);
    let mut b = bridge(FakeBus::with(0, f), qemu_windows());
    let (bars, origin) = b.setup(&balloon_fn()).unwrap();
    assert_eq!(origin, Origin::Firmware);
    assert_eq!(bars[0].unwrap().pci_addr, 0x40);
    assert_eq!(bars[0].unwrap().cpu_addr, Some(0x2000_0000_0040));
    assert_eq!(bars[4].unwrap().pci_addr, 0x2100_0000_0000);
    let fun = &b.config.slots[&0];
    assert_eq!(
        fun.get(reg::BAR0),
        0x41,
        "sizing restored the firmware's value"
    );
    assert_eq!(fun.get(reg::BAR0 + 20), 0x2100);
    assert_eq!(fun.get(reg::COMMAND), 0x107);
    // Besides sizing (all ones, then the old value back) only the command was written.
    let non_sizing: Vec<_> = b
        .config
        .writes
        .iter()
        .filter(|(a, v)| {
            *v != u32::MAX
                && !matches!((a, v), (0x10, 0x41) | (0x20, 0xc) | (0x24, 0x2100) | (_, 0))
        })
        .collect();
    assert_eq!(non_sizing, [&(u32::from(reg::COMMAND), 0x107)]);
}

#[test]
fn a_bar_that_does_not_fit_is_refused_and_the_rest_assigned() {
    let f = FakeFunction::new(0x1234, 2).mem32(0, 0x1000).io(1, 0x40);
    let mut w = qemu_windows();
    w[1].size = 0x800; // a 2 KiB 32-bit window: a 4 KiB BAR cannot fit
    let mut b = bridge(FakeBus::with(0, f), w);
    let func = Function {
        devfn: 0,
        vendor: 0x1234,
        device: 2,
    };
    let (bars, _) = b.setup(&func).unwrap();
    assert_eq!(bars[0], None);
    assert_eq!(
        b.config.slots[&0].get(reg::BAR0),
        0,
        "nothing written into it"
    );
    assert_eq!(bars[1].unwrap().pci_addr, 0x1000);
    // No I/O window at all: the I/O BAR is refused too.
    let f = FakeFunction::new(0x1234, 2).io(0, 0x40);
    let mut w = qemu_windows();
    w.retain(|w| w.space != Space::Io);
    let mut b = bridge(FakeBus::with(0, f), w);
    let (bars, origin) = b.setup(&func).unwrap();
    assert_eq!((bars[0], origin), (None, Origin::Assigned));
}

#[test]
fn a_failing_configuration_access_is_an_error() {
    for n in [0, 3, 10, 25] {
        let mut bus = FakeBus::with(0, FakeFunction::balloon());
        bus.fail_after = Some(n);
        let mut b = bridge(bus, qemu_windows());
        assert_eq!(
            b.setup(&balloon_fn()),
            Err("RTAS status -1"),
            "after {n} accesses"
        );
    }
}
