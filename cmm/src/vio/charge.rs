//! Charging mapped memory to a device and releasing it (docs/cmo.md §7.4).
//!
//! A charge is served from the device's own entitlement first, then from the free
//! excess pool, which is closed while the spare is below MIN_ENT. A release refills
//! the spare, then grows the reserve toward the bus desired, then returns the rest
//! to the excess pool; if it touched the pools, a balancing pass follows at once.
//! Sizes are bytes as charged (the mapping layer rounds up to whole TCE pages).

use super::accounting::Accounting;
use super::error::VioError;
use super::units::MIN_ENT;

impl Accounting {
    /// Bytes `unit` could have charged now: what is left of its entitlement plus,
    /// while the spare is full, the free excess pool.
    pub fn available(&self, unit: u32) -> Result<u64, VioError> {
        let d = self.dev(unit)?;
        let own = d.cmo.entitled.saturating_sub(d.cmo.allocated);
        let excess = if self.bus.spare >= MIN_ENT {
            self.bus.excess_free
        } else {
            0
        };
        Ok(own.saturating_add(excess))
    }

    /// Charges `size` bytes to a probed DMA device. Refused, with nothing changed,
    /// if more than [`Accounting::available`]; the caller counts the failure. Without
    /// CMO nothing is charged.
    pub fn charge(&mut self, unit: u32, size: u64) -> Result<(), VioError> {
        let d = self.dev(unit)?;
        if !d.dma {
            return Err(VioError::NoDmaWindow(unit));
        }
        if !d.bound {
            return Err(VioError::NotBound(unit));
        }
        if !self.enabled {
            return Ok(());
        }
        let available = self.available(unit)?;
        if size > available {
            return Err(VioError::EntitlementExceeded {
                unit,
                requested: size,
                available,
            });
        }
        let own = d.cmo.entitled.saturating_sub(d.cmo.allocated);
        let curr = self.bus.curr.checked_add(size).ok_or(VioError::Overflow)?;
        let allocated = d
            .cmo
            .allocated
            .checked_add(size)
            .ok_or(VioError::Overflow)?;
        let b = &mut self.bus;
        b.curr = curr;
        b.high = b.high.max(curr);
        b.excess_free -= size - own.min(size);
        self.dev_mut(unit)?.cmo.allocated = allocated;
        Ok(())
    }

    /// Releases `size` bytes charged to `unit` and rebalances if the pools moved.
    pub fn uncharge(&mut self, unit: u32, size: u64) -> Result<(), VioError> {
        if !self.enabled {
            return Ok(());
        }
        let d = self.dev(unit)?;
        let (e, a) = (d.cmo.entitled, d.cmo.allocated);
        if size > a {
            return Err(VioError::Overflow);
        }
        // The part beyond the device's entitlement was borrowed from the excess pool.
        let mut excess_freed = size.min(a.saturating_sub(e));
        let reserve_freed = size - excess_freed;
        let mut spare_needed = MIN_ENT.saturating_sub(self.bus.spare);
        let mut rebalance = false;
        let mut e_new = e;
        let b = &mut self.bus;
        b.curr -= size;
        // 1. Refill the spare from the freed excess...
        if spare_needed > 0 && excess_freed > 0 {
            let t = excess_freed.min(spare_needed);
            b.excess_size -= t;
            b.reserve_size += t;
            b.spare += t;
            excess_freed -= t;
            spare_needed -= t;
            rebalance = true;
        }
        // ... then from the device's entitlement above its minimum.
        if spare_needed > 0 && reserve_freed > 0 {
            let t = spare_needed
                .min(reserve_freed)
                .min(e.saturating_sub(MIN_ENT));
            b.spare += t;
            e_new -= t;
            rebalance = true;
        }
        // 2. Grow the reserve toward the bus desired.
        if excess_freed > 0 && b.desired > b.reserve_size {
            let t = excess_freed.min(b.desired - b.reserve_size);
            b.excess_size -= t;
            b.reserve_size += t;
            excess_freed -= t;
            rebalance = true;
        }
        // 3. The rest goes back to the free excess pool; freed entitlement stays
        // with the device.
        b.excess_free += excess_freed;
        let d = self.dev_mut(unit)?;
        d.cmo.allocated = a - size;
        d.cmo.entitled = e_new;
        if rebalance {
            self.balance();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// E = 8 MiB, one device desiring 3 MiB: after probe it holds 3 MiB, the spare
    /// MIN_ENT, and the excess pool the remaining 8 MiB − 3 MiB − MIN_ENT.
    fn one() -> Accounting {
        let mut a = Accounting::new(8 << 20, &[(1, true)]).unwrap();
        a.probe(1, 3 << 20).unwrap();
        a
    }

    #[test]
    fn vio_charge_own_then_excess() {
        let mut a = one();
        let x = (8 << 20) - (3 << 20) - MIN_ENT;
        assert_eq!(a.bus().excess_free, x);
        assert_eq!(a.available(1).unwrap(), (3 << 20) + x);
        a.charge(1, 2 << 20).unwrap();
        assert_eq!(a.bus().excess_free, x);
        a.charge(1, 2 << 20).unwrap(); // 1 MiB own + 1 MiB borrowed
        assert_eq!(a.bus().excess_free, x - (1 << 20));
        assert_eq!(a.bus().curr, 4 << 20);
        assert_eq!(a.bus().high, 4 << 20);
        a.check_invariants().unwrap();
        let before = a.clone();
        let err = a.charge(1, x).unwrap_err();
        assert_eq!(
            err,
            VioError::EntitlementExceeded {
                unit: 1,
                requested: x,
                available: x - (1 << 20)
            }
        );
        assert_eq!(a, before);
    }

    #[test]
    fn vio_uncharge_returns_borrowed_excess() {
        let mut a = one();
        a.charge(1, 4 << 20).unwrap();
        a.uncharge(1, 3 << 20).unwrap();
        // Bus desired (MIN + 3 MiB) equals the reserve: nothing to grow; the 1 MiB
        // borrowed goes back to the free excess, the rest stays entitled.
        assert_eq!(a.bus().excess_free, a.bus().excess_size);
        assert_eq!(a.device(1).unwrap().entitled, 3 << 20);
        assert_eq!(a.bus().curr, 1 << 20);
        assert_eq!(a.bus().high, 4 << 20);
        a.reset_high();
        assert_eq!(a.bus().high, 1 << 20);
        assert_eq!(a.uncharge(1, 2 << 20), Err(VioError::Overflow));
        a.check_invariants().unwrap();
    }

    #[test]
    fn vio_excess_closed_while_spare_depleted() {
        // Two devices, entitlement just over three minimums: hot-plugging a third
        // takes most of the spare, which closes the excess pool.
        let mut a = Accounting::new(3 * MIN_ENT + 8192, &[(1, true), (2, true)]).unwrap();
        a.probe(1, 0).unwrap();
        a.add_device(3, true).unwrap();
        assert!(a.bus().spare < MIN_ENT);
        // Own entitlement (MIN_ENT) still maps; nothing beyond it does.
        assert_eq!(a.available(1).unwrap(), MIN_ENT);
        a.charge(1, MIN_ENT).unwrap();
        assert!(a.charge(1, 4096).is_err());
        a.check_invariants().unwrap();
    }

    #[test]
    fn vio_uncharge_refills_spare_from_entitlement() {
        // E = 3 MIN + 8 KiB, device 1 gets MIN + 8 KiB and maps all of it; a
        // hot-plugged device 3 then takes the whole spare.
        let mut a = Accounting::new(3 * MIN_ENT + 8192, &[(1, true), (2, true)]).unwrap();
        a.probe(1, 8 << 20).unwrap();
        assert_eq!(a.device(1).unwrap().entitled, MIN_ENT + 8192);
        a.charge(1, MIN_ENT + 8192).unwrap();
        a.add_device(3, true).unwrap();
        assert_eq!(a.bus().spare, 0);
        // Releasing 8 KiB of its own entitlement refills the spare with it.
        a.uncharge(1, 8192).unwrap();
        assert_eq!(a.bus().spare, 8192);
        assert_eq!(a.device(1).unwrap().entitled, MIN_ENT);
        assert_eq!(a.bus().reserve_size, 3 * MIN_ENT + 8192);
        a.check_invariants().unwrap();
    }
}
