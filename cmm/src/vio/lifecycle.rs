//! Devices coming and going (docs/cmo.md §7.8): probe and remove (a driver
//! binding and unbinding), and a device node appearing in or leaving the device
//! tree (hot-plug).
//!
//! Fixed against Linux: a probed device's entitlement is materialised at once by a
//! balancing pass (Linux leaves it at 0 until some later pass); removing a device
//! that still has memory mapped is an error (Linux BUGs); a hot-plugged node's
//! minimum is reserved when the node appears, so `min = spare + N_of × MIN_ENT`
//! holds at all times instead of being re-derived from a tree walk.

use super::accounting::Accounting;
use super::error::VioError;
use super::units::{normalise_desired, MIN_ENT};

impl Accounting {
    fn index(&self, unit: u32) -> Result<usize, VioError> {
        self.devs
            .iter()
            .position(|d| d.unit == unit)
            .ok_or(VioError::NoSuchDevice(unit))
    }

    /// Probes (binds) a device that wants `desired` bytes of entitlement (floored at
    /// MIN_ENT, rounded up to 4 KiB; ignored for a device without a DMA window).
    pub fn probe(&mut self, unit: u32, desired: u64) -> Result<(), VioError> {
        let i = self.index(unit)?;
        if self.devs[i].bound {
            return Err(VioError::AlreadyBound(unit));
        }
        if !self.devs[i].dma || !self.enabled {
            self.devs[i].bound = true;
            return Ok(());
        }
        let d = normalise_desired(desired).ok_or(VioError::Overflow)?;
        // An unbound device counts MIN_ENT in the bus desired; it now counts d.
        let bus_desired = self
            .bus
            .desired
            .checked_sub(self.devs[i].cmo.desired)
            .and_then(|v| v.checked_add(d))
            .ok_or(VioError::Overflow)?;
        self.bus.desired = bus_desired;
        let dev = &mut self.devs[i];
        dev.cmo.desired = d;
        dev.cmo.allocs_failed = 0;
        dev.bound = true;
        self.balance();
        Ok(())
    }

    /// Removes (unbinds) a device. Refused while it has memory mapped. The device
    /// keeps its minimum while its node is in the tree; the rest of its entitlement
    /// refills the spare, then goes to the excess pool, then a pass rebalances.
    pub fn remove(&mut self, unit: u32) -> Result<(), VioError> {
        let i = self.index(unit)?;
        let dev = &self.devs[i];
        if !dev.bound {
            return Err(VioError::NotBound(unit));
        }
        if dev.cmo.allocated != 0 {
            return Err(VioError::DeviceBusy {
                unit,
                allocated: dev.cmo.allocated,
            });
        }
        if !dev.dma || !self.enabled {
            self.devs[i].bound = false;
            return Ok(());
        }
        let b = &mut self.bus;
        b.desired = b.desired.saturating_sub(dev.cmo.desired - MIN_ENT);
        let mut extra = dev.cmo.entitled.saturating_sub(MIN_ENT);
        let refill = extra.min(MIN_ENT.saturating_sub(b.spare));
        b.spare += refill;
        extra -= refill;
        b.excess_size = b.excess_size.saturating_add(extra);
        b.excess_free = b.excess_free.saturating_add(extra);
        b.reserve_size = b.reserve_size.saturating_sub(extra);
        let dev = &mut self.devs[i];
        dev.cmo.entitled = MIN_ENT;
        dev.cmo.desired = MIN_ENT;
        dev.cmo.allocs_failed = 0;
        dev.bound = false;
        self.balance();
        Ok(())
    }

    /// A device node appeared (hot-plug). A DMA-capable one needs its minimum from
    /// the free excess pool, then the spare; refused if they cannot cover it.
    pub fn add_device(&mut self, unit: u32, dma: bool) -> Result<(), VioError> {
        if !dma || !self.enabled {
            return self.push_device(unit, dma);
        }
        let free = self.bus.spare.saturating_add(self.bus.excess_free);
        if free < MIN_ENT {
            return Err(VioError::InsufficientEntitlement {
                needed: MIN_ENT,
                entitled: free,
            });
        }
        self.push_device(unit, dma)?;
        let b = &mut self.bus;
        let from_excess = b.excess_free.min(MIN_ENT);
        b.excess_free -= from_excess;
        b.excess_size -= from_excess;
        b.reserve_size += from_excess;
        b.spare -= MIN_ENT - from_excess;
        b.min = b.min.saturating_add(MIN_ENT);
        b.desired = b.desired.saturating_add(MIN_ENT);
        self.balance();
        Ok(())
    }

    /// A device node left the tree (hot-unplug): it must have been removed first.
    /// Its minimum returns to the pools.
    pub fn remove_device(&mut self, unit: u32) -> Result<(), VioError> {
        let i = self.index(unit)?;
        if self.devs[i].bound {
            return Err(VioError::StillBound(unit));
        }
        self.devs.remove(i);
        self.balance();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vio::units::BALANCE_CHUNK as C;

    fn two() -> Accounting {
        Accounting::new(16 << 20, &[(1, true), (2, true), (3, false)]).unwrap()
    }

    #[test]
    fn vio_probe_materialises_entitlement_at_once() {
        let mut a = two();
        a.probe(1, 2 << 20).unwrap();
        // Linux would leave entitled at 0 here.
        assert_eq!(a.device(1).unwrap().entitled, 2 << 20);
        assert_eq!(a.bus().desired, 2 * MIN_ENT + (2 << 20));
        assert_eq!(a.probe(1, 0), Err(VioError::AlreadyBound(1)));
        assert_eq!(a.probe(9, 0), Err(VioError::NoSuchDevice(9)));
        // A device without DMA window binds without entitlement.
        a.probe(3, 1 << 30).unwrap();
        assert_eq!(a.device(3).unwrap().entitled, 0);
        a.check_invariants().unwrap();
    }

    #[test]
    fn vio_remove_refused_while_mapped() {
        let mut a = two();
        a.probe(1, 2 << 20).unwrap();
        a.charge(1, 8192).unwrap();
        let before = a.clone();
        assert_eq!(
            a.remove(1),
            Err(VioError::DeviceBusy {
                unit: 1,
                allocated: 8192
            })
        );
        assert_eq!(a, before);
        a.uncharge(1, 8192).unwrap();
        a.remove(1).unwrap();
        let d = a.device(1).unwrap();
        assert_eq!(
            (d.entitled, d.desired, d.allocs_failed),
            (MIN_ENT, MIN_ENT, 0)
        );
        assert_eq!(a.remove(1), Err(VioError::NotBound(1)));
        a.check_invariants().unwrap();
        // Back to the state right after init, but for the high-water mark.
        a.reset_high();
        assert_eq!(a, two());
    }

    #[test]
    fn vio_hotplug_after_borrowing_does_not_wrap() {
        // Device 1 borrows almost the whole excess pool, then a node appears: its
        // minimum comes from the little free excess and the spare. Linux's balance
        // would then set the spare back to MIN_ENT and the free excess would wrap.
        let mut a = Accounting::new(20 << 20, &[(1, true)]).unwrap();
        a.probe(1, 0).unwrap();
        let most = a.available(1).unwrap() - 4096 * 100;
        a.charge(1, most).unwrap();
        a.add_device(2, true).unwrap();
        a.check_invariants().unwrap();
        let b = *a.bus();
        assert!(b.spare < MIN_ENT);
        assert_eq!(b.excess_free, 0);
        assert_eq!(a.device(1).unwrap().allocated, most);
        // Unmapping refills the spare first.
        a.uncharge(1, most).unwrap();
        assert_eq!(a.bus().spare, MIN_ENT);
        a.check_invariants().unwrap();
    }

    #[test]
    fn vio_hotplug_reserves_minimum() {
        let mut a = Accounting::new(3 * MIN_ENT + C, &[(1, true), (2, true)]).unwrap();
        // Spare + free excess = MIN_ENT + C: enough for one more minimum.
        a.add_device(4, true).unwrap();
        assert_eq!(a.bus().min, 3 * MIN_ENT + C);
        assert_eq!(a.bus().spare, C);
        a.check_invariants().unwrap();
        let before = a.clone();
        assert!(matches!(
            a.add_device(5, true),
            Err(VioError::InsufficientEntitlement { .. })
        ));
        assert_eq!(a, before);
        assert_eq!(a.add_device(4, false), Err(VioError::DuplicateUnit(4)));
        a.probe(4, 0).unwrap();
        assert_eq!(a.remove_device(4), Err(VioError::StillBound(4)));
        a.remove(4).unwrap();
        a.remove_device(4).unwrap();
        assert_eq!(a.bus().spare, MIN_ENT);
        assert_eq!(a.bus().min, 3 * MIN_ENT);
        a.check_invariants().unwrap();
    }
}
