//! A change of the partition's I/O entitlement (docs/cmo.md §7.5).
//!
//! An increase refills the spare first and the rest grows the excess pool; the bus
//! entitlement ends up exactly at the new value (Linux leaves it short by the
//! refill). A decrease is taken from the free excess pool, then from each device's
//! entitlement above max(mapped, MIN_ENT); it is refused, with nothing changed, if
//! those cannot cover it. A balancing pass follows either way.
//!
//! This file only moves numbers; calling H_SET_MPP and undoing the change when the
//! hypervisor refuses or constrains it is [`super::VioBus::set_entitlement`].

use super::accounting::Accounting;
use super::error::VioError;
use super::units::MIN_ENT;

impl Accounting {
    /// The lowest entitlement the accounting can accept now: what the spare, the
    /// device minimums and the mapped memory need.
    pub fn min_entitlement(&self) -> u64 {
        self.bus.entitled.saturating_sub(self.releasable())
    }

    /// Free excess plus every device's entitlement above max(mapped, MIN_ENT).
    fn releasable(&self) -> u64 {
        self.devs.iter().fold(self.bus.excess_free, |sum, d| {
            sum.saturating_add(surplus(d.cmo.entitled, d.cmo.allocated))
        })
    }

    /// Moves the bus entitlement to `new` bytes and rebalances; refused, with nothing
    /// changed, if `new` is below [`Accounting::min_entitlement`].
    pub fn entitlement_update(&mut self, new: u64) -> Result<(), VioError> {
        if !self.enabled {
            return Err(VioError::CmoDisabled);
        }
        let old = self.bus.entitled;
        if new >= old {
            self.increase(new - old);
        } else {
            let releasable = self.releasable();
            if old - new > releasable {
                return Err(VioError::EntitlementInUse {
                    requested: new,
                    minimum: old - releasable,
                });
            }
            self.decrease(old - new);
        }
        self.balance();
        Ok(())
    }

    /// Moves the accounting to the entitlement the hypervisor reports (`granted`).
    /// If that is below what mapped memory needs, uses the lowest value it can and
    /// reports [`VioError::EntitlementShortfall`].
    pub fn sync_entitlement(&mut self, granted: u64) -> Result<(), VioError> {
        match self.entitlement_update(granted) {
            Err(VioError::EntitlementInUse { minimum, .. }) => {
                self.entitlement_update(minimum)?;
                Err(VioError::EntitlementShortfall {
                    granted,
                    floor: minimum,
                })
            }
            other => other,
        }
    }

    fn increase(&mut self, delta: u64) {
        let b = &mut self.bus;
        let refill = delta.min(MIN_ENT.saturating_sub(b.spare));
        b.spare += refill;
        b.reserve_size = b.reserve_size.saturating_add(refill);
        let rest = delta - refill;
        b.excess_size = b.excess_size.saturating_add(rest);
        b.excess_free = b.excess_free.saturating_add(rest);
        b.entitled = b.entitled.saturating_add(delta);
    }

    /// `delta` must not exceed [`Accounting::releasable`].
    fn decrease(&mut self, mut delta: u64) {
        let b = &mut self.bus;
        b.entitled -= delta;
        let from_excess = delta.min(b.excess_free);
        b.excess_free -= from_excess;
        b.excess_size -= from_excess;
        delta -= from_excess;
        for d in self.devs.iter_mut() {
            if delta == 0 {
                break;
            }
            let take = delta.min(surplus(d.cmo.entitled, d.cmo.allocated));
            d.cmo.entitled -= take;
            self.bus.reserve_size = self.bus.reserve_size.saturating_sub(take);
            delta -= take;
        }
    }
}

/// Entitlement a device holds beyond max(mapped, MIN_ENT).
fn surplus(entitled: u64, allocated: u64) -> u64 {
    entitled.saturating_sub(allocated.max(MIN_ENT))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> Accounting {
        // E = 16 MiB; device 1 desires 6 MiB and maps 2 MiB; device 2 unbound.
        let mut a = Accounting::new(16 << 20, &[(1, true), (2, true)]).unwrap();
        a.probe(1, 6 << 20).unwrap();
        a.charge(1, 2 << 20).unwrap();
        a
    }

    #[test]
    fn vio_entitlement_floor_hand_worked() {
        let a = setup();
        // Needs: spare + device 2 minimum + device 1's 2 MiB mapped.
        assert_eq!(a.min_entitlement(), 2 * MIN_ENT + (2 << 20));
    }

    #[test]
    fn vio_entitlement_decrease_and_refusal() {
        let mut a = setup();
        let floor = a.min_entitlement();
        let before = a.clone();
        assert_eq!(
            a.entitlement_update(floor - 1),
            Err(VioError::EntitlementInUse {
                requested: floor - 1,
                minimum: floor
            })
        );
        assert_eq!(a, before);
        a.entitlement_update(floor).unwrap();
        let b = *a.bus();
        assert_eq!(b.entitled, floor);
        assert_eq!(b.spare, MIN_ENT);
        assert_eq!(a.device(1).unwrap().entitled, 2 << 20);
        assert_eq!(b.excess_size, 0);
        a.check_invariants().unwrap();
    }

    #[test]
    fn vio_entitlement_increase_lands_exactly() {
        let mut a = setup();
        let floor = a.min_entitlement();
        a.entitlement_update(floor).unwrap();
        a.entitlement_update(64 << 20).unwrap();
        assert_eq!(a.bus().entitled, 64 << 20);
        assert_eq!(a.device(1).unwrap().entitled, 6 << 20);
        let b = a.bus();
        assert_eq!(b.reserve_size + b.excess_size, 64 << 20);
        a.check_invariants().unwrap();
    }

    #[test]
    fn vio_entitlement_sync_clamps_to_floor() {
        let mut a = setup();
        let floor = a.min_entitlement();
        assert_eq!(
            a.sync_entitlement(1 << 20),
            Err(VioError::EntitlementShortfall {
                granted: 1 << 20,
                floor
            })
        );
        assert_eq!(a.bus().entitled, floor);
        a.check_invariants().unwrap();
        a.sync_entitlement(20 << 20).unwrap();
        assert_eq!(a.bus().entitled, 20 << 20);
    }
}
