//! A device's desired entitlement changes (docs/cmo.md §7.7): from the console
//! (`vio desired`) as from sysfs `cmo_desired` on Linux.
//!
//! A decrease below the current entitlement gives the difference back to the excess
//! pool at once; either way a balancing pass follows.

use super::accounting::Accounting;
use super::error::VioError;
use super::units::normalise_desired;

impl Accounting {
    /// Sets a probed device's desired entitlement to `bytes` (floored at MIN_ENT,
    /// rounded up to 4 KiB) and rebalances.
    pub fn set_desired(&mut self, unit: u32, bytes: u64) -> Result<(), VioError> {
        let enabled = self.enabled;
        let dev = self.dev(unit)?;
        if !dev.dma {
            return Err(VioError::NoDmaWindow(unit));
        }
        if !dev.bound {
            return Err(VioError::NotBound(unit));
        }
        if !enabled {
            return Err(VioError::CmoDisabled);
        }
        let new = normalise_desired(bytes).ok_or(VioError::Overflow)?;
        let old = dev.cmo.desired;
        let (e, a) = (dev.cmo.entitled, dev.cmo.allocated);
        let b = &mut self.bus;
        if new >= old {
            b.desired = b.desired.checked_add(new - old).ok_or(VioError::Overflow)?;
        } else {
            b.desired = b.desired.saturating_sub(old - new);
            if e > new {
                let give_back = e - new;
                b.reserve_size = b.reserve_size.saturating_sub(give_back);
                b.excess_size = b.excess_size.saturating_add(give_back);
                if a < e {
                    b.excess_free = b.excess_free.saturating_add(e - a.max(new));
                }
            }
        }
        let dev = self.dev_mut(unit)?;
        dev.cmo.desired = new;
        dev.cmo.entitled = dev.cmo.entitled.min(new);
        self.balance();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vio::units::MIN_ENT;

    #[test]
    fn vio_set_desired_up_and_down() {
        let mut a = Accounting::new(32 << 20, &[(1, true), (2, false)]).unwrap();
        a.probe(1, 0).unwrap();
        assert_eq!(a.device(1).unwrap().entitled, 1_564_672);
        a.set_desired(1, 8 << 20).unwrap();
        assert_eq!(a.device(1).unwrap().entitled, 8 << 20);
        assert_eq!(a.bus().desired, MIN_ENT + (8 << 20));
        a.charge(1, 3 << 20).unwrap();
        // Down to 2 MiB with 3 MiB mapped: 1 MiB becomes borrowed excess.
        a.set_desired(1, 2 << 20).unwrap();
        let d = *a.device(1).unwrap();
        assert_eq!((d.desired, d.entitled), (2 << 20, 2 << 20));
        let b = a.bus();
        assert_eq!(b.excess_size - b.excess_free, 1 << 20);
        a.check_invariants().unwrap();
        assert_eq!(a.set_desired(2, 1), Err(VioError::NoDmaWindow(2)));
        assert_eq!(a.set_desired(1, u64::MAX), Err(VioError::Overflow));
    }
}
