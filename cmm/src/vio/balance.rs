//! The balancing pass (docs/cmo.md §7.6): recomputes the spare, resets every
//! bound device to its minimum, shares out what is left round-robin up to each
//! device's desired, and derives the reserve and excess pools from the result.
//!
//! Linux runs it as delayed work; here it runs synchronously at the end of every
//! operation that would schedule it (and after probe and remove, which Linux
//! forgets). Unlike Linux, the available amount is net of the minimum of every
//! device in the device tree, bound or not, so the reserve never exceeds the
//! entitlement; and every subtraction is checked.

use alloc::vec::Vec;

use super::accounting::Accounting;
use super::fairshare::{distribute, Share};
use super::units::MIN_ENT;

impl Accounting {
    /// Runs the balancing pass. Does nothing without CMO.
    pub fn balance(&mut self) {
        if !self.enabled {
            return;
        }
        let entitled = self.bus.entitled;
        let minimums = self.dma_count().saturating_mul(MIN_ENT);
        // Each device holds its minimum or its mapped memory, whichever is larger.
        let held = self.devs.iter().filter(|d| d.dma).fold(0u64, |sum, d| {
            sum.saturating_add(d.cmo.allocated.max(MIN_ENT))
        });
        // The spare is what is left of MIN_ENT once that is set aside (Linux sets
        // it aside from the minimums only, and the excess pool wraps when devices
        // have borrowed the rest).
        let spare = MIN_ENT.min(entitled.saturating_sub(held));
        let avail = entitled.saturating_sub(held).saturating_sub(spare);
        let mut desired = spare;
        for d in self.devs.iter_mut().filter(|d| d.dma) {
            desired = desired.saturating_add(d.cmo.desired);
            d.cmo.entitled = MIN_ENT;
        }

        let mut shares: Vec<Share> = self
            .devs
            .iter()
            .filter(|d| d.dma && d.bound)
            .map(|d| Share {
                desired: d.cmo.desired,
                entitled: d.cmo.entitled,
                allocated: d.cmo.allocated,
            })
            .collect();
        distribute(&mut shares, avail);
        let bound = self.devs.iter_mut().filter(|d| d.dma && d.bound);
        for (d, s) in bound.zip(&shares) {
            d.cmo.entitled = s.entitled;
        }

        let (mut reserve, mut borrowed) = (spare, 0u64);
        for d in &self.devs {
            reserve = reserve.saturating_add(d.cmo.entitled);
            borrowed = borrowed.saturating_add(d.cmo.allocated.saturating_sub(d.cmo.entitled));
        }
        let b = &mut self.bus;
        b.spare = spare;
        b.min = minimums.saturating_add(spare);
        b.desired = desired;
        b.reserve_size = reserve;
        b.excess_size = entitled.saturating_sub(reserve);
        b.excess_free = b.excess_size.saturating_sub(borrowed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vio::units::BALANCE_CHUNK as C;

    #[test]
    fn vio_balance_hand_worked() {
        // E = 8 MiB, two DMA devices. Spare = MIN, minimums = 2 MIN, so
        // avail = 8 MiB − 3 MIN = 3700736 bytes = 28 chunks + 30720 bytes.
        let mut a = Accounting::new(8 << 20, &[(1, true), (2, true)]).unwrap();
        a.probe(1, MIN_ENT + 10 * C).unwrap(); // wants 10 chunks (+2048: rounding)
        a.probe(2, 64 << 20).unwrap(); // wants everything
        let d1 = *a.device(1).unwrap();
        let d2 = *a.device(2).unwrap();
        // Desired 1 is MIN_ENT + 10 C rounded up to 4 KiB: + 2048 bytes.
        assert_eq!(d1.desired, MIN_ENT + 10 * C + 2048);
        assert_eq!(d1.entitled, d1.desired);
        // Device 2 gets the rest: 3700736 − (10 C + 2048).
        assert_eq!(d2.entitled, MIN_ENT + 3_700_736 - 10 * C - 2048);
        let b = a.bus();
        assert_eq!(b.spare, MIN_ENT);
        assert_eq!(b.reserve_size, 8 << 20);
        assert_eq!(b.excess_size, 0);
        assert_eq!(b.excess_free, 0);
        assert_eq!(b.min, 3 * MIN_ENT);
        assert_eq!(b.desired, MIN_ENT + d1.desired + (64 << 20));
        a.check_invariants().unwrap();
    }

    #[test]
    fn vio_balance_counts_unbound_minimums() {
        // Linux's quirk: with one unbound DMA device and a greedy bound one, Linux
        // would hand out the unbound device's minimum too and R would exceed E.
        let e = 4 * MIN_ENT;
        let mut a = Accounting::new(e, &[(1, true), (2, true)]).unwrap();
        a.probe(1, 1 << 30).unwrap();
        let b = a.bus();
        assert!(b.reserve_size <= b.entitled);
        assert_eq!(a.device(1).unwrap().entitled, 2 * MIN_ENT);
        assert_eq!(b.excess_size, 0);
        a.check_invariants().unwrap();
    }

    #[test]
    fn vio_balance_spare_shrinks_when_devices_outnumber_entitlement() {
        // A hot-plugged device takes its minimum from the excess pool first, then
        // from the spare; the spare is what is left over the minimums.
        let mut a = Accounting::new(3 * MIN_ENT, &[(1, true), (2, true)]).unwrap();
        a.entitlement_update(3 * MIN_ENT + 100).unwrap();
        a.add_device(3, true).unwrap();
        assert_eq!(a.bus().spare, 100);
        assert_eq!(a.bus().min, 3 * MIN_ENT + 100);
        assert_eq!(a.bus().excess_size, 0);
        a.check_invariants().unwrap();
    }
}
