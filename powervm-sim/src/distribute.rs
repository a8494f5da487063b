//! The pool arithmetic of the model, pure: how the shared pool is divided (shares)
//! and how each partition's backed memory (allotment) moves toward its share.
//! The host pool manager (`pool/`, docs/pool-manager.md) divides its pool among
//! QEMU guests with these same functions.
//!
//! All quantities are 4 KiB pages. Products go through u128; nothing overflows or
//! panics for any input.
//!
//! Shares (weighted water-filling): every partition first gets its minimum (its I/O
//! entitlement). What is left of the pool goes to partitions whose wanted amount is
//! not reached yet, proportionally to their memory weights; whoever reaches its want
//! drops out and the rest is divided again. Partitions of weight 0 only share (in
//! equal parts) what the weighted ones leave over. Rounding leftovers go one page at
//! a time by largest remainder. So `min ≤ share ≤ want` and, when the minimums fit
//! the pool, `Σ share ≤ pool`.
//!
//! Allotments: each step an allotment moves toward its share by at most its cap
//! ([`cap_pages`]: the smaller of 1/256 of the partition's logical memory and 1/512
//! of the pool, but at least one page). Increases take only what was free in the
//! pool at the start of the step, highest weight first: memory a partition gives up
//! in one step goes to others in the next. So `Σ allotment ≤ pool` holds after every
//! step that starts with it, and a partition that hands back what it is asked for
//! within one step is never over-committed by the others' growth.

use alloc::vec::Vec;

/// One partition's claim on the pool, in pages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Claim {
    /// Guaranteed minimum (the I/O entitlement).
    pub min: u64,
    /// Most it can use now: its demand clamped to `[min, logical]`. Must be ≥ `min`.
    pub want: u64,
    /// Memory weight, 0-255.
    pub weight: u8,
}

/// Divides `pool` pages among `claims`; returns one share per claim.
pub fn water_fill(pool: u64, claims: &[Claim]) -> Vec<u64> {
    let mut share: Vec<u64> = claims.iter().map(|c| c.min).collect();
    let sum_min = claims.iter().fold(0u64, |a, c| a.saturating_add(c.min));
    let mut free = pool.saturating_sub(sum_min);
    fill(&mut share, claims, &mut free, |c| {
        (c.weight > 0).then_some(u64::from(c.weight))
    });
    fill(&mut share, claims, &mut free, |c| {
        (c.weight == 0).then_some(1)
    });
    share
}

/// One water-filling phase over the claims for which `weight_of` gives a weight.
fn fill(
    share: &mut [u64],
    claims: &[Claim],
    free: &mut u64,
    weight_of: impl Fn(&Claim) -> Option<u64>,
) {
    let mut active: Vec<(usize, u64)> = claims
        .iter()
        .enumerate()
        .filter_map(|(i, c)| Some((i, weight_of(c)?)))
        .filter(|&(i, _)| share[i] < claims[i].want)
        .collect();
    while *free > 0 && !active.is_empty() {
        let total_w: u128 = active.iter().map(|&(_, w)| u128::from(w)).sum();
        let snapshot = u128::from(*free);
        // Everyone whose need fits in its proportional portion is satisfied at once;
        // their needs add up to at most `snapshot`.
        let before = active.len();
        active.retain(|&(i, w)| {
            let need = claims[i].want.saturating_sub(share[i]);
            if u128::from(need) * total_w <= snapshot * u128::from(w) {
                share[i] = share[i].saturating_add(need);
                *free = free.saturating_sub(need);
                false
            } else {
                true
            }
        });
        if active.len() != before {
            continue;
        }
        // Nobody is satisfied: everyone gets its proportional portion (strictly below
        // its need), and the rounding leftover (fewer pages than claimants) goes one
        // page each by largest remainder (ties: higher weight, then earlier claim).
        let mut given = 0u64;
        let mut remainders: Vec<(usize, u128, u64)> = Vec::with_capacity(active.len());
        for &(i, w) in &active {
            let exact = snapshot * u128::from(w);
            let portion = u64::try_from(exact / total_w).unwrap_or(0);
            share[i] = share[i].saturating_add(portion);
            given = given.saturating_add(portion);
            remainders.push((i, exact % total_w, w));
        }
        *free = free.saturating_sub(given);
        remainders.sort_by(|a, b| b.1.cmp(&a.1).then(b.2.cmp(&a.2)).then(a.0.cmp(&b.0)));
        for &(i, _, _) in &remainders {
            if *free == 0 {
                break;
            }
            if share[i] < claims[i].want {
                share[i] += 1;
                *free -= 1;
            }
        }
        break;
    }
}

/// The most a partition's allotment moves in one step, in pages.
pub fn cap_pages(logical: u64, pool: u64) -> u64 {
    (logical / 256).min(pool / 512).max(1)
}

/// One partition as the allotment step sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slot {
    /// Target of the movement.
    pub share: u64,
    /// Current backed pages (updated in place).
    pub allotment: u64,
    /// Most movement per step.
    pub cap: u64,
    /// Memory weight: higher weights get free pool first.
    pub weight: u8,
}

/// Moves every allotment one step toward its share (see the module doc).
pub fn step_allotments(pool: u64, slots: &mut [Slot]) {
    // Free at the start of the step: memory given up now is handed out next step.
    let used = slots
        .iter()
        .fold(0u64, |a, s| a.saturating_add(s.allotment));
    let mut free = pool.saturating_sub(used);
    for s in slots.iter_mut() {
        if s.allotment > s.share {
            s.allotment -= s.cap.min(s.allotment - s.share);
        }
    }
    let mut order: Vec<usize> = (0..slots.len()).collect();
    order.sort_by(|&a, &b| slots[b].weight.cmp(&slots[a].weight).then(a.cmp(&b)));
    for i in order {
        let s = &mut slots[i];
        if s.allotment < s.share {
            let inc = s.cap.min(s.share - s.allotment).min(free);
            s.allotment += inc;
            free -= inc;
        }
    }
}

/// Lowers allotments (lowest weight first; first down to each `floor`, then to 0 if
/// still needed) until they fit `pool`. Used when the pool shrinks or a partition's
/// limits change: the hypervisor takes the memory back at once.
pub fn fit_allotments(pool: u64, slots: &mut [Slot], floors: &[u64]) {
    let mut order: Vec<usize> = (0..slots.len()).collect();
    order.sort_by(|&a, &b| slots[a].weight.cmp(&slots[b].weight).then(b.cmp(&a)));
    for pass in 0..2 {
        for &i in &order {
            let used = slots
                .iter()
                .fold(0u64, |a, s| a.saturating_add(s.allotment));
            let excess = used.saturating_sub(pool);
            if excess == 0 {
                return;
            }
            let floor = if pass == 0 {
                floors.get(i).copied().unwrap_or(0)
            } else {
                0
            };
            let s = &mut slots[i];
            let take = s.allotment.saturating_sub(floor).min(excess);
            s.allotment -= take;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn c(min: u64, want: u64, weight: u8) -> Claim {
        Claim { min, want, weight }
    }

    #[test]
    fn everything_fits() {
        assert_eq!(water_fill(100, &[c(5, 30, 1), c(5, 40, 200)]), [30, 40]);
    }

    #[test]
    fn equal_weights_split_evenly() {
        assert_eq!(water_fill(100, &[c(0, 100, 128), c(0, 100, 128)]), [50, 50]);
    }

    #[test]
    fn weights_favour_the_heavier() {
        // 90 free pages at 1:2 → 30 and 60.
        assert_eq!(water_fill(100, &[c(5, 100, 64), c(5, 100, 128)]), [35, 65]);
    }

    #[test]
    fn satisfied_partitions_release_the_rest() {
        // The light one only wants 10 more; the heavy one takes everything else.
        assert_eq!(water_fill(100, &[c(0, 10, 200), c(0, 500, 1)]), [10, 90]);
    }

    #[test]
    fn weight_zero_gets_only_leftovers() {
        assert_eq!(water_fill(100, &[c(10, 100, 0), c(10, 100, 1)]), [10, 90]);
        assert_eq!(water_fill(100, &[c(10, 100, 0), c(10, 50, 1)]), [50, 50]);
        assert_eq!(water_fill(100, &[c(0, 100, 0), c(0, 100, 0)]), [50, 50]);
    }

    #[test]
    fn rounding_leftovers_go_by_largest_remainder() {
        assert_eq!(
            water_fill(10, &[c(0, 10, 1), c(0, 10, 1), c(0, 10, 2)]),
            [3, 2, 5]
        );
        assert_eq!(water_fill(4, &[c(0, 10, 1), c(0, 10, 2)]), [1, 3]);
        let s = water_fill(7, &[c(0, 10, 3), c(0, 10, 3), c(0, 10, 3)]);
        assert_eq!(s.iter().sum::<u64>(), 7);
    }

    #[test]
    fn cap_has_a_floor_of_one_page() {
        assert_eq!(cap_pages(0, 0), 1);
        assert_eq!(cap_pages(256 * 10, 512 * 100), 10);
        assert_eq!(cap_pages(256 * 100, 512 * 10), 10);
    }

    #[test]
    fn memory_given_up_is_handed_out_a_step_later() {
        let mut s = [
            Slot {
                share: 10,
                allotment: 60,
                cap: 5,
                weight: 1,
            },
            Slot {
                share: 90,
                allotment: 40,
                cap: 100,
                weight: 1,
            },
        ];
        step_allotments(100, &mut s);
        assert_eq!((s[0].allotment, s[1].allotment), (55, 40));
        step_allotments(100, &mut s);
        assert_eq!((s[0].allotment, s[1].allotment), (50, 45));
        // Free pool is handed out at once, heavier weights first.
        let mut s = [
            Slot {
                share: 50,
                allotment: 0,
                cap: 100,
                weight: 1,
            },
            Slot {
                share: 50,
                allotment: 0,
                cap: 100,
                weight: 2,
            },
        ];
        step_allotments(70, &mut s);
        assert_eq!((s[0].allotment, s[1].allotment), (20, 50));
    }

    #[test]
    fn fit_takes_from_light_weights_first() {
        let mut s = [
            Slot {
                share: 0,
                allotment: 50,
                cap: 1,
                weight: 200,
            },
            Slot {
                share: 0,
                allotment: 50,
                cap: 1,
                weight: 10,
            },
        ];
        fit_allotments(80, &mut s, &[10, 10]);
        assert_eq!((s[0].allotment, s[1].allotment), (50, 30));
        fit_allotments(15, &mut s, &[10, 10]);
        assert_eq!((s[0].allotment, s[1].allotment), (10, 5));
    }

    fn claims() -> impl Strategy<Value = Vec<Claim>> {
        proptest::collection::vec(
            (0u64..1000, 0u64..3000, any::<u8>())
                .prop_map(|(min, extra, w)| c(min, min + extra, w)),
            0..8,
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn shares_respect_bounds_and_pool(pool in 0u64..20_000, cl in claims()) {
            let s = water_fill(pool, &cl);
            let sum_min: u64 = cl.iter().map(|c| c.min).sum();
            let sum_want: u64 = cl.iter().map(|c| c.want).sum();
            for (c, &sh) in cl.iter().zip(&s) {
                prop_assert!(c.min <= sh && sh <= c.want);
            }
            let total: u64 = s.iter().sum();
            prop_assert!(total <= pool.max(sum_min));
            // Work-conserving: either everybody got its want, or the pool is used up.
            if sum_min <= pool {
                prop_assert_eq!(total, pool.min(sum_want));
            }
        }

        #[test]
        fn heavier_unsatisfied_never_get_less_extra(pool in 0u64..20_000, cl in claims()) {
            let s = water_fill(pool, &cl);
            for i in 0..cl.len() {
                for j in 0..cl.len() {
                    let (a, b) = (&cl[i], &cl[j]);
                    // i heavier than j and still short: i got at least j's extra
                    // scaled by weight (up to one page of rounding).
                    if a.weight > b.weight && b.weight > 0 && s[i] < a.want {
                        let ea = u128::from(s[i] - a.min) * u128::from(b.weight);
                        let eb = u128::from(s[j] - b.min) * u128::from(a.weight);
                        prop_assert!(ea + u128::from(a.weight) * 2 >= eb, "{:?} {:?}", cl, s);
                    }
                }
            }
        }

        #[test]
        fn steps_move_at_most_cap_and_never_overfill(
            pool in 1u64..5000,
            parts in proptest::collection::vec((0u64..3000, 0u64..3000, 1u64..50, any::<u8>()), 0..6),
        ) {
            let mut slots: Vec<Slot> = parts.iter().map(|&(share, allotment, cap, weight)| Slot { share, allotment, cap, weight }).collect();
            let floors: Vec<u64> = slots.iter().map(|s| s.share / 2).collect();
            fit_allotments(pool, &mut slots, &floors);
            prop_assert!(slots.iter().map(|s| s.allotment).sum::<u64>() <= pool);
            for _ in 0..20 {
                let before: Vec<u64> = slots.iter().map(|s| s.allotment).collect();
                step_allotments(pool, &mut slots);
                prop_assert!(slots.iter().map(|s| s.allotment).sum::<u64>() <= pool);
                for (s, b) in slots.iter().zip(&before) {
                    prop_assert!(s.allotment.abs_diff(*b) <= s.cap);
                    // Never overshoots the share.
                    let no_overshoot = if *b >= s.share {
                        s.allotment >= s.share
                    } else {
                        s.allotment <= s.share
                    };
                    prop_assert!(no_overshoot);
                }
            }
        }
    }
}
