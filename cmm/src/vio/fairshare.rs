//! The round-robin hand-out at the heart of the balancing pass (docs/cmo.md
//! §7.6 step 3): every device below its desired entitlement gets up to
//! [`BALANCE_CHUNK`] more per round until it reaches its desired or the available
//! entitlement runs out.
//!
//! Raising a device's entitlement over memory it has already mapped (borrowed from
//! the excess pool) costs nothing: that memory was counted as used before the pass.
//! Two things differ from Linux: the cost of a grant is measured from the device's
//! own previous entitlement (Linux measures from the round's level, which can go
//! negative), and runs of whole rounds are granted in one step, so a desired of
//! terabytes takes a few dozen steps instead of millions of rounds. The result is
//! exactly that of granting round by round (a test compares the two).

use super::units::BALANCE_CHUNK;

/// One device's figures, as the pass sees them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Share {
    /// Desired entitlement: never granted beyond.
    pub desired: u64,
    /// Entitlement so far; raised by the pass.
    pub entitled: u64,
    /// Bytes mapped; entitlement up to this costs nothing.
    pub allocated: u64,
}

impl Share {
    /// What raising the entitlement to `to` takes from the available pool.
    fn cost(&self, to: u64) -> u64 {
        to.max(self.allocated)
            .saturating_sub(self.entitled.max(self.allocated))
    }

    /// True if a grant could still raise this share with `avail` bytes left.
    fn can_grow(&self, avail: u64) -> bool {
        self.entitled < self.desired && (avail > 0 || self.entitled < self.allocated)
    }

    /// One round's grant: up to a chunk, capped by desired and by what `avail` pays
    /// for. Returns the cost.
    fn grant_chunk(&mut self, avail: u64) -> u64 {
        let cap = self.entitled.max(self.allocated).saturating_add(avail);
        let room = self
            .desired
            .saturating_sub(self.entitled)
            .min(BALANCE_CHUNK);
        let to = self.entitled.saturating_add(room).min(cap);
        if to <= self.entitled {
            return 0;
        }
        let cost = self.cost(to);
        self.entitled = to;
        cost
    }
}

/// Hands out `avail` bytes round-robin over `shares` (in order); returns what is
/// left. Never grants beyond a share's desired nor spends more than `avail`.
pub(super) fn distribute(shares: &mut [Share], mut avail: u64) -> u64 {
    loop {
        avail = grant_whole_rounds(shares, avail);
        let mut progressed = false;
        for s in shares.iter_mut() {
            let before = s.entitled;
            avail = avail.saturating_sub(s.grant_chunk(avail));
            progressed |= s.entitled != before;
        }
        if !progressed {
            return avail;
        }
    }
}

/// Grants the largest number k of whole rounds in which every share that can grow
/// gets a full chunk; returns what is left of `avail`.
fn grant_whole_rounds(shares: &mut [Share], avail: u64) -> u64 {
    let growing = |s: &&mut Share| s.can_grow(avail);
    let Some(k_max) = shares
        .iter_mut()
        .filter(growing)
        .map(|s| (s.desired - s.entitled) / BALANCE_CHUNK)
        .min()
    else {
        return avail;
    };
    let cost_of = |shares: &[Share], k: u64| -> u64 {
        shares
            .iter()
            .filter(|s| s.can_grow(avail))
            .fold(0u64, |sum, s| {
                // k ≤ (desired − entitled) / CHUNK, so this cannot overflow.
                sum.saturating_add(s.cost(s.entitled + k * BALANCE_CHUNK))
            })
    };
    let (mut lo, mut hi) = (0u64, k_max);
    while lo < hi {
        let mid = lo + (hi - lo).div_ceil(2);
        if cost_of(shares, mid) <= avail {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    if lo == 0 {
        return avail;
    }
    let cost = cost_of(shares, lo);
    for s in shares.iter_mut().filter(|s| s.can_grow(avail)) {
        s.entitled += lo * BALANCE_CHUNK;
    }
    avail - cost
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vio::units::MIN_ENT;
    use alloc::vec::Vec;
    use proptest::prelude::*;

    const C: u64 = BALANCE_CHUNK;

    fn share(desired: u64, allocated: u64) -> Share {
        Share {
            desired,
            entitled: MIN_ENT,
            allocated,
        }
    }

    /// The reference: one round at a time, as Linux walks it.
    fn naive(shares: &mut [Share], mut avail: u64) -> u64 {
        loop {
            let mut progressed = false;
            for s in shares.iter_mut() {
                let before = s.entitled;
                avail -= s.grant_chunk(avail);
                progressed |= s.entitled != before;
            }
            if !progressed {
                return avail;
            }
        }
    }

    #[test]
    fn vio_fair_share_round_robin() {
        // Two devices want 1 MiB more each, 640 KiB is available: 5 chunks, handed
        // out A B A B A.
        let mut s = [share(MIN_ENT + (1 << 20), 0), share(MIN_ENT + (1 << 20), 0)];
        assert_eq!(distribute(&mut s, 5 * C), 0);
        assert_eq!(s[0].entitled, MIN_ENT + 3 * C);
        assert_eq!(s[1].entitled, MIN_ENT + 2 * C);
    }

    #[test]
    fn vio_fair_share_stops_at_desired() {
        let mut s = [share(MIN_ENT + C / 2, 0), share(MIN_ENT + 3 * C, 0)];
        assert_eq!(distribute(&mut s, 10 * C), 10 * C - C / 2 - 3 * C);
        assert_eq!(s[0].entitled, MIN_ENT + C / 2);
        assert_eq!(s[1].entitled, MIN_ENT + 3 * C);
    }

    #[test]
    fn vio_fair_share_mapped_memory_is_free() {
        // The device already maps 2 chunks beyond its minimum: entitlement up to
        // there costs nothing; the third chunk costs one chunk.
        let mut s = [share(MIN_ENT + 3 * C, MIN_ENT + 2 * C)];
        assert_eq!(distribute(&mut s, C), 0);
        assert_eq!(s[0].entitled, MIN_ENT + 3 * C);
        // With nothing available it still covers what it has mapped.
        let mut s = [share(MIN_ENT + 3 * C, MIN_ENT + 2 * C + 5)];
        assert_eq!(distribute(&mut s, 0), 0);
        assert_eq!(s[0].entitled, MIN_ENT + 2 * C + 5);
    }

    #[test]
    fn vio_fair_share_huge_desired_is_fast() {
        let mut s = [share(u64::MAX - 7, 0), share(1 << 50, 1 << 45)];
        let left = distribute(&mut s, 1 << 48);
        assert_eq!(left, 0);
        assert!(s.iter().all(|s| s.entitled <= s.desired));
    }

    fn arb_shares() -> impl Strategy<Value = Vec<Share>> {
        proptest::collection::vec(
            (0u64..40 * C, 0u64..30 * C).prop_map(|(extra, alloc)| Share {
                desired: MIN_ENT + extra,
                entitled: MIN_ENT,
                allocated: alloc,
            }),
            0..5,
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]
        #[test]
        fn vio_fair_share_matches_round_by_round(mut a in arb_shares(), avail in 0u64..100 * C) {
            let mut b = a.clone();
            let left_a = distribute(&mut a, avail);
            let left_b = naive(&mut b, avail);
            prop_assert_eq!(&a, &b);
            prop_assert_eq!(left_a, left_b);
            let spent: u64 = a.iter().map(|s| {
                s.entitled.max(s.allocated) - MIN_ENT.max(s.allocated)
            }).sum();
            prop_assert_eq!(spent + left_a, avail);
            for s in &a {
                prop_assert!(s.entitled <= s.desired);
            }
        }
    }
}
