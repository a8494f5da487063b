//! The real mode area (RMA): the only memory a PowerVM partition reaches with
//! translation off (`docs/real-mode-area.md`). It is the first `memory@0` block;
//! the boot argument `rma=<size>` makes the kernel treat it as smaller, so a
//! QEMU run proves the kernel fits a small PowerVM RMA.
//!
//! This module decides: the RMA size ([`Rma::choose`]), where the RTAS area goes
//! ([`rtas_base`]), whether everything touched with translation off lies inside
//! the RMA ([`Rma::check_layout`]), which RAM the frame table may use before
//! translation is on ([`Rma::clip`]), and whether one real-mode access is allowed
//! ([`Rma::check`]). The glue panics with [`Violation`]'s text on a bad access.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::devtree::MemRange;
use crate::text::parse_size;

/// The smallest RMA `rma=` accepts (PowerVM's smallest in practice).
pub const MIN_RMA: u64 = 128 << 20;
/// `rma=` must be a whole number of MiB.
const RMA_GRANULE: u64 = 1 << 20;
use hcall::page::PAGE_SIZE;

/// A named range that must be reachable with translation off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Item {
    /// What it is (`image`, `heap`, `interrupt stack`, ...).
    pub name: &'static str,
    /// First byte.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
}

/// The real mode area in force.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rma {
    /// Its size in bytes (it starts at 0).
    pub size: u64,
    /// The size of `memory@0`, the firmware's RMA.
    pub firmware_size: u64,
}

/// A real-mode access outside the RMA.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The first byte accessed.
    pub addr: u64,
    /// How many bytes.
    pub len: u64,
    /// The access path (`rtas buffer`, `page contents`, ...).
    pub path: &'static str,
    /// The RMA size.
    pub rma: u64,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "real-mode access outside the RMA: {:#x} (+{:#x} bytes) by {} with the RMA at {} MiB",
            self.addr,
            self.len,
            self.path,
            self.rma >> 20
        )
    }
}

impl Rma {
    /// The RMA from the memory ranges (the one starting at 0) and the value of
    /// `rma=`, if given; `needed` is the end of everything that must sit below
    /// it. A refused `rma=` gives the firmware's RMA and the reason, which the
    /// caller logs: bad input changes nothing.
    pub fn choose(memory: &[MemRange], arg: Option<&str>, needed: u64) -> (Rma, Option<String>) {
        let firmware_size = memory.iter().find(|m| m.base == 0).map_or(0, |m| m.size);
        let firmware = Rma {
            size: firmware_size,
            firmware_size,
        };
        let Some(arg) = arg else {
            return (firmware, None);
        };
        let size = match parse_size(arg) {
            Ok(s) => s,
            Err(e) => return (firmware, Some(format!("rma={arg}: {e}"))),
        };
        let why = if size % RMA_GRANULE != 0 {
            Some(format!("rma={arg} is not a whole number of MiB"))
        } else if size < MIN_RMA {
            Some(format!(
                "rma={arg} is below the smallest RMA ({} MiB)",
                MIN_RMA >> 20
            ))
        } else if size > firmware_size {
            Some(format!(
                "rma={arg} is larger than the firmware's RMA (memory@0, {} MiB)",
                firmware_size >> 20
            ))
        } else if size < needed {
            Some(format!(
                "rma={arg} is too small: the kernel needs {needed:#x} bytes in real mode"
            ))
        } else {
            None
        };
        match why {
            Some(w) => (firmware, Some(w)),
            None => (
                Rma {
                    size,
                    firmware_size,
                },
                None,
            ),
        }
    }

    /// Whether `len` bytes at `addr` may be touched with translation off.
    pub fn check(&self, addr: u64, len: u64, path: &'static str) -> Result<(), Violation> {
        match addr.checked_add(len) {
            Some(end) if end <= self.size => Ok(()),
            _ => Err(Violation {
                addr,
                len,
                path,
                rma: self.size,
            }),
        }
    }

    /// Checks every item against the RMA; the first that does not fit is the error.
    pub fn check_layout(&self, items: &[Item]) -> Result<(), Violation> {
        for i in items {
            self.check(i.start, i.end.saturating_sub(i.start), i.name)?;
        }
        Ok(())
    }

    /// The parts of `ram` inside the RMA, and the bytes left outside it.
    pub fn clip(&self, ram: &[MemRange]) -> (Vec<MemRange>, u64) {
        let mut inside = Vec::new();
        let mut outside = 0u64;
        for m in ram {
            let end = m.base.saturating_add(m.size);
            let in_end = end.min(self.size);
            if in_end > m.base {
                inside.push(MemRange {
                    base: m.base,
                    size: in_end - m.base,
                });
            }
            outside = outside.saturating_add(end - in_end.max(m.base).min(end));
        }
        (inside, outside)
    }
}

/// Where the RTAS area goes: the first page boundary after `after` (the end of
/// the kernel image). `None` on overflow.
pub fn rtas_base(after: u64) -> Option<u64> {
    after
        .checked_add(PAGE_SIZE - 1)
        .map(|a| a & !(PAGE_SIZE - 1))
}

/// The end of the highest item (what the RMA must at least hold).
pub fn needed(items: &[Item]) -> u64 {
    items.iter().map(|i| i.end).max().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;
    const GIB: u64 = 1 << 30;

    fn mem(ranges: &[(u64, u64)]) -> Vec<MemRange> {
        ranges
            .iter()
            .map(|&(base, size)| MemRange { base, size })
            .collect()
    }

    /// The kernel's layout today: vectors, image at 4 MiB holding the 16 MiB
    /// heap, the boot and interrupt stacks and the frame bookkeeping (in the
    /// heap), then an RTAS area of PowerVM's size (about 20 MB).
    fn layout(rtas_size: u64) -> Vec<Item> {
        let image_end = 0x0160_0000;
        let rtas = rtas_base(image_end).unwrap();
        alloc::vec![
            Item {
                name: "exception vectors",
                start: 0x100,
                end: 0x1100
            },
            Item {
                name: "kernel image",
                start: 0x40_0000,
                end: image_end
            },
            Item {
                name: "heap and frame bookkeeping",
                start: 0x0050_0000,
                end: 0x0150_0000
            },
            Item {
                name: "boot stack",
                start: 0x0150_0000,
                end: 0x0154_0000
            },
            Item {
                name: "interrupt stack",
                start: 0x0154_0100,
                end: 0x0155_0100
            },
            Item {
                name: "RTAS area",
                start: rtas,
                end: rtas + rtas_size
            },
        ]
    }

    #[test]
    fn everything_fits_rmas_from_128m_to_2g() {
        let items = layout(20 * MIB);
        let need = needed(&items);
        for size in [128 * MIB, 256 * MIB, 512 * MIB, GIB, 2 * GIB] {
            let ram = mem(&[(0, size), (size, 4 * GIB)]);
            let arg = alloc::format!("{}M", size >> 20);
            let (rma, why) = Rma::choose(&ram, Some(&arg), need);
            assert_eq!(why, None);
            assert_eq!(rma.size, size);
            assert_eq!(rma.check_layout(&items), Ok(()));
        }
    }

    #[test]
    fn an_item_past_the_rma_is_named() {
        let mut items = layout(20 * MIB);
        items.push(Item {
            name: "interrupt stack",
            start: 200 * MIB,
            end: 200 * MIB + 0x1_0000,
        });
        let rma = Rma {
            size: 128 * MIB,
            firmware_size: 128 * MIB,
        };
        let v = rma.check_layout(&items).unwrap_err();
        assert_eq!(v.path, "interrupt stack");
        assert_eq!(v.addr, 200 * MIB);
        let text = alloc::format!("{v}");
        assert!(text.contains("0xc800000"), "{text}");
        assert!(text.contains("interrupt stack"), "{text}");
        assert!(text.contains("128 MiB"), "{text}");
    }

    #[test]
    fn check_is_exact_at_the_boundary() {
        let rma = Rma {
            size: 256 * MIB,
            firmware_size: 2 * GIB,
        };
        assert!(rma.check(256 * MIB - 4096, 4096, "page contents").is_ok());
        assert!(rma.check(256 * MIB - 4096, 4097, "page contents").is_err());
        assert!(rma.check(u64::MAX, 2, "rtas buffer").is_err());
    }

    #[test]
    fn bad_arguments_change_nothing() {
        let ram = mem(&[(0, 2 * GIB), (2 * GIB, 2 * GIB)]);
        let need = 0x0300_0000;
        let firmware = Rma {
            size: 2 * GIB,
            firmware_size: 2 * GIB,
        };
        for bad in ["abc", "64M", "3G", "200000001", "0"] {
            let (rma, why) = Rma::choose(&ram, Some(bad), need);
            assert_eq!(rma, firmware, "{bad}");
            assert!(why.unwrap().contains(bad));
        }
        let (rma, why) = Rma::choose(&ram, Some("128M"), 200 * MIB);
        assert_eq!(rma, firmware);
        assert!(why.unwrap().contains("too small"));
        assert_eq!(Rma::choose(&ram, None, need), (firmware, None));
        // No memory@0 at all: an RMA of 0 (every real-mode check fails loudly).
        assert_eq!(Rma::choose(&mem(&[(GIB, GIB)]), None, need).0.size, 0);
    }

    #[test]
    fn clip_keeps_only_the_rma() {
        let rma = Rma {
            size: 256 * MIB,
            firmware_size: 2 * GIB,
        };
        let (inside, outside) = rma.clip(&mem(&[(0, 2 * GIB), (2 * GIB, 2 * GIB)]));
        assert_eq!(inside, mem(&[(0, 256 * MIB)]));
        assert_eq!(outside, 4 * GIB - 256 * MIB);
        let (inside, outside) = rma.clip(&mem(&[(0, 128 * MIB)]));
        assert_eq!(inside, mem(&[(0, 128 * MIB)]));
        assert_eq!(outside, 0);
    }

    #[test]
    fn rtas_goes_on_the_next_page() {
        assert_eq!(rtas_base(0x0160_0000), Some(0x0160_0000));
        assert_eq!(rtas_base(0x0160_0001), Some(0x0160_1000));
        assert_eq!(rtas_base(u64::MAX), None);
    }
}
