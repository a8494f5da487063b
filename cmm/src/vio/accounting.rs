//! The numbers of VIO CMO accounting: the bus pools ([`BusCmo`]), each device's
//! share ([`DeviceCmo`]) and bus init (docs/cmo.md §7.2-7.3).
//!
//! [`Accounting`] holds only counters: no names, no mappings, no hypervisor. The
//! operations on it live in their own files (`charge`, `balance`, `lifecycle`,
//! `entitlement`); this one builds it, reads it and states its invariants.
//!
//! Every DMA-capable device in the device tree (bound or not) has its minimum
//! [`MIN_ENT`] reserved, so `min = spare + N_of × MIN_ENT` always; an unbound one shows
//! `desired = entitled = MIN_ENT`, as Linux shows a device after driver removal.

use alloc::vec::Vec;

use super::error::VioError;
use super::units::{normalise_desired, MIN_ENT};

/// The bus-wide counters, in bytes, as `/sys/bus/vio/cmo_*` shows them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BusCmo {
    /// E: what the partition may have I/O-mapped at once (H_GET_MPP r4).
    pub entitled: u64,
    /// R: entitlement guaranteed to devices, the spare included.
    pub reserve_size: u64,
    /// X = E − R: the pool devices borrow from beyond their own entitlement.
    pub excess_size: u64,
    /// XF: the part of X nobody has borrowed.
    pub excess_free: u64,
    /// S: kept back for hot-plug and rebalancing, ideally [`MIN_ENT`].
    pub spare: u64,
    /// S + N_of × MIN_ENT.
    pub min: u64,
    /// S + Σ device desired (an unbound device counts its MIN_ENT).
    pub desired: u64,
    /// Bytes mapped now by all devices.
    pub curr: u64,
    /// High-water mark of `curr` since the last [`Accounting::reset_high`].
    pub high: u64,
}

/// One device's counters, in bytes, as `/sys/bus/vio/devices/<unit>/cmo_*` shows them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeviceCmo {
    /// d: what it would like to be entitled to.
    pub desired: u64,
    /// e: what it is entitled to.
    pub entitled: u64,
    /// a: what it has mapped (may exceed e: the rest is borrowed from the excess pool).
    pub allocated: u64,
    /// Mappings refused or failed since the last reset.
    pub allocs_failed: u64,
}

/// One device's entry in the accounting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct DevAccount {
    /// Unit address.
    pub unit: u32,
    /// Has a DMA window, so it needs entitlement.
    pub dma: bool,
    /// Probed ("driver bound").
    pub bound: bool,
    /// Its counters.
    pub cmo: DeviceCmo,
}

/// The whole VIO CMO accounting: bus pools and per-device shares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Accounting {
    /// False on a partition without CMO: every counter stays 0, nothing is charged.
    pub(super) enabled: bool,
    pub(super) bus: BusCmo,
    pub(super) devs: Vec<DevAccount>,
}

impl Accounting {
    /// Bus init: `devices` lists each device's unit address and whether it has a DMA
    /// window. Reserves the spare and every DMA device's minimum; refused if the
    /// entitlement cannot hold them (Linux panics).
    pub fn new(entitled: u64, devices: &[(u32, bool)]) -> Result<Self, VioError> {
        let mut acct = Accounting {
            enabled: true,
            bus: BusCmo {
                entitled,
                ..BusCmo::default()
            },
            devs: Vec::new(),
        };
        for &(unit, dma) in devices {
            acct.push_device(unit, dma)?;
        }
        let needed = MIN_ENT
            .checked_mul(acct.dma_count().checked_add(1).ok_or(VioError::Overflow)?)
            .ok_or(VioError::Overflow)?;
        if needed > entitled {
            return Err(VioError::InsufficientEntitlement { needed, entitled });
        }
        acct.bus.spare = MIN_ENT;
        acct.bus.reserve_size = needed;
        acct.bus.min = needed;
        acct.bus.desired = needed;
        acct.bus.excess_size = entitled - needed;
        acct.bus.excess_free = entitled - needed;
        Ok(acct)
    }

    /// The accounting of a partition without CMO: devices are listed, all counters
    /// stay 0 and mappings are not charged.
    pub fn without_cmo(devices: &[(u32, bool)]) -> Result<Self, VioError> {
        let mut acct = Accounting {
            enabled: false,
            bus: BusCmo::default(),
            devs: Vec::new(),
        };
        for &(unit, dma) in devices {
            acct.push_device(unit, dma)?;
        }
        Ok(acct)
    }

    /// Adds an unbound device entry (its minimum is accounted by the caller).
    pub(super) fn push_device(&mut self, unit: u32, dma: bool) -> Result<(), VioError> {
        if self.devs.iter().any(|d| d.unit == unit) {
            return Err(VioError::DuplicateUnit(unit));
        }
        let reserved = if dma && self.enabled { MIN_ENT } else { 0 };
        self.devs.push(DevAccount {
            unit,
            dma,
            bound: false,
            cmo: DeviceCmo {
                desired: reserved,
                entitled: reserved,
                ..DeviceCmo::default()
            },
        });
        Ok(())
    }

    /// True unless built with [`Accounting::without_cmo`].
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// The bus counters.
    pub fn bus(&self) -> &BusCmo {
        &self.bus
    }

    /// One device's counters.
    pub fn device(&self, unit: u32) -> Result<&DeviceCmo, VioError> {
        Ok(&self.dev(unit)?.cmo)
    }

    /// True if the device is probed.
    pub fn is_bound(&self, unit: u32) -> Result<bool, VioError> {
        Ok(self.dev(unit)?.bound)
    }

    /// Any write to `cmo_high` sets the high-water mark to the current use.
    pub fn reset_high(&mut self) {
        self.bus.high = self.bus.curr;
    }

    /// Any write to a device's `cmo_allocs_failed` resets it to 0.
    pub fn reset_allocs_failed(&mut self, unit: u32) -> Result<(), VioError> {
        self.dev_mut(unit)?.cmo.allocs_failed = 0;
        Ok(())
    }

    /// Counts one failed mapping against the device.
    pub fn note_failure(&mut self, unit: u32) -> Result<(), VioError> {
        let d = self.dev_mut(unit)?;
        d.cmo.allocs_failed = d.cmo.allocs_failed.saturating_add(1);
        Ok(())
    }

    /// N_of: devices with a DMA window, bound or not.
    pub(super) fn dma_count(&self) -> u64 {
        self.devs.iter().filter(|d| d.dma).fold(0, |n, _| n + 1)
    }

    /// Σ over DMA devices of max(allocated, MIN_ENT): what devices hold no matter
    /// how the rest is shared out.
    pub(super) fn held(&self) -> Option<u64> {
        self.devs
            .iter()
            .filter(|d| d.dma)
            .try_fold(0u64, |s, d| s.checked_add(d.cmo.allocated.max(MIN_ENT)))
    }

    /// True if the spare is what a balancing pass just computed:
    /// min(MIN_ENT, entitled − held).
    pub fn spare_is_balanced(&self) -> bool {
        let held = self.held().unwrap_or(u64::MAX);
        !self.enabled || self.bus.spare == MIN_ENT.min(self.bus.entitled.saturating_sub(held))
    }

    pub(super) fn dev(&self, unit: u32) -> Result<&DevAccount, VioError> {
        self.devs
            .iter()
            .find(|d| d.unit == unit)
            .ok_or(VioError::NoSuchDevice(unit))
    }

    pub(super) fn dev_mut(&mut self, unit: u32) -> Result<&mut DevAccount, VioError> {
        self.devs
            .iter_mut()
            .find(|d| d.unit == unit)
            .ok_or(VioError::NoSuchDevice(unit))
    }

    /// Checks every invariant that holds between operations (docs/cmo.md §10
    /// plus this implementation's stronger ones); returns the first one broken.
    pub fn check_invariants(&self) -> Result<(), &'static str> {
        let b = &self.bus;
        let sum = |f: &dyn Fn(&DevAccount) -> u64| -> Option<u64> {
            self.devs.iter().try_fold(0u64, |s, d| s.checked_add(f(d)))
        };
        let curr = sum(&|d| d.cmo.allocated).ok_or("sum of allocated overflows")?;
        if curr != b.curr {
            return Err("curr != sum of allocated");
        }
        if b.high < b.curr {
            return Err("high < curr");
        }
        if !self.enabled {
            let zero = BusCmo {
                curr: b.curr,
                high: b.high,
                ..BusCmo::default()
            };
            let quiet = self
                .devs
                .iter()
                .all(|d| d.cmo.desired == 0 && d.cmo.entitled == 0 && d.cmo.allocated == 0);
            return if *b == zero && b.curr == 0 && quiet {
                Ok(())
            } else {
                Err("counters moved without CMO")
            };
        }
        if b.reserve_size.checked_add(b.excess_size) != Some(b.entitled) {
            return Err("reserve + excess != entitled");
        }
        if b.excess_free > b.excess_size {
            return Err("excess_free > excess_size");
        }
        let n_min = self
            .dma_count()
            .checked_mul(MIN_ENT)
            .ok_or("N_of overflow")?;
        if b.spare > MIN_ENT {
            return Err("spare > MIN_ENT");
        }
        if b.spare.checked_add(self.held().ok_or("held overflows")?) > Some(b.entitled) {
            return Err("spare + held memory > entitled");
        }
        if b.min != b.spare + n_min {
            return Err("min != spare + N_of × MIN_ENT");
        }
        let desired = sum(&|d| d.cmo.desired).ok_or("desired overflows")?;
        if b.desired != b.spare + desired {
            return Err("desired != spare + sum of device desired");
        }
        let entitled = sum(&|d| d.cmo.entitled).ok_or("entitled overflows")?;
        if b.reserve_size != b.spare + entitled {
            return Err("reserve != spare + sum of device entitled");
        }
        let borrowed =
            sum(&|d| d.cmo.allocated.saturating_sub(d.cmo.entitled)).ok_or("borrowed overflows")?;
        if b.excess_size - b.excess_free != borrowed {
            return Err("excess in use != sum of allocated beyond entitled");
        }
        for d in &self.devs {
            let c = &d.cmo;
            if !d.dma {
                if c.desired != 0 || c.entitled != 0 || c.allocated != 0 {
                    return Err("device without DMA window has entitlement");
                }
            } else if !d.bound {
                if c.desired != MIN_ENT || c.entitled != MIN_ENT || c.allocated != 0 {
                    return Err("unbound device not at its minimum");
                }
            } else {
                if c.entitled < MIN_ENT || c.entitled > c.desired {
                    return Err("bound device entitled outside [MIN_ENT, desired]");
                }
                if normalise_desired(c.desired) != Some(c.desired) {
                    return Err("desired not floored and page aligned");
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vio_init_reserves_spare_and_minimums() {
        let a = Accounting::new(16 << 20, &[(1, true), (2, true), (3, false)]).unwrap();
        let b = a.bus();
        assert_eq!(b.spare, MIN_ENT);
        assert_eq!(b.min, 3 * MIN_ENT);
        assert_eq!(b.reserve_size, 3 * MIN_ENT);
        assert_eq!(b.desired, 3 * MIN_ENT);
        assert_eq!(b.excess_size, (16 << 20) - 3 * MIN_ENT);
        assert_eq!(b.excess_free, b.excess_size);
        assert_eq!(a.device(1).unwrap().entitled, MIN_ENT);
        assert_eq!(a.device(3).unwrap().entitled, 0);
        a.check_invariants().unwrap();
    }

    #[test]
    fn vio_init_refuses_small_entitlement() {
        // Exactly enough is fine; one byte less is refused, not a panic.
        assert!(Accounting::new(3 * MIN_ENT, &[(1, true), (2, true)]).is_ok());
        assert_eq!(
            Accounting::new(3 * MIN_ENT - 1, &[(1, true), (2, true)]),
            Err(VioError::InsufficientEntitlement {
                needed: 3 * MIN_ENT,
                entitled: 3 * MIN_ENT - 1
            })
        );
        assert!(Accounting::new(0, &[]).is_err());
        assert_eq!(
            Accounting::new(1 << 30, &[(1, true), (1, false)]),
            Err(VioError::DuplicateUnit(1))
        );
    }

    #[test]
    fn vio_without_cmo_is_all_zero() {
        let a = Accounting::without_cmo(&[(1, true)]).unwrap();
        assert_eq!(*a.bus(), BusCmo::default());
        assert_eq!(*a.device(1).unwrap(), DeviceCmo::default());
        a.check_invariants().unwrap();
    }
}
