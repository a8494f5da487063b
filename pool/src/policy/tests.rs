//! Host and property tests of the policy: floor, cap, weights, the capped rate,
//! conservation, free before grant, uncooperative and dead guests, replay.

use super::*;
use proptest::prelude::*;

const MIB: u64 = (1 << 20) / PAGE_SIZE;

fn spec(name: &str, logical_mib: u64, entitled_mib: u64, weight: u8) -> Spec {
    Spec {
        name: name.into(),
        logical: logical_mib * MIB,
        entitled: entitled_mib * MIB,
        weight,
    }
}

/// Every guest follows at once: it holds its allotment and uses `used[i]` pages.
fn follow(p: &Policy, used: &[u64]) -> Vec<Observation> {
    p.partitions()
        .iter()
        .zip(used)
        .map(|(q, &u)| Observation {
            held: Some(q.allotment),
            used: Some(u),
            ..Observation::default()
        })
        .collect()
}

fn three() -> Policy {
    Policy::new(
        768 * MIB,
        vec![
            spec("a", 512, 64, 128),
            spec("b", 512, 64, 128),
            spec("c", 512, 64, 128),
        ],
        Params::default(),
    )
    .unwrap()
}

#[test]
fn refuses_bad_configurations() {
    let p = Params::default();
    assert_eq!(
        Policy::new(
            100 * MIB,
            vec![spec("a", 512, 64, 1), spec("b", 512, 64, 1)],
            p
        ),
        Err(PolicyError::EntitlementsExceedPool {
            entitled: 128 * MIB,
            pool: 100 * MIB
        })
    );
    assert!(PolicyError::EntitlementsExceedPool {
        entitled: 128 * MIB,
        pool: 100 * MIB
    }
    .to_string()
    .contains("128 MiB, more than the pool's 100 MiB"));
    assert_eq!(
        Policy::new(100 * MIB, vec![spec("a", 32, 64, 1)], p),
        Err(PolicyError::EntitledAboveLogical("a".into()))
    );
    assert_eq!(
        Policy::new(100 * MIB, vec![spec("a", 32, 1, 1), spec("a", 32, 1, 1)], p),
        Err(PolicyError::DuplicateName("a".into()))
    );
    assert_eq!(Policy::new(100 * MIB, vec![], p), Err(PolicyError::Empty));
    assert_eq!(
        Policy::new(0, vec![spec("a", 32, 0, 1)], p),
        Err(PolicyError::ZeroPool)
    );
    assert_eq!(
        Policy::new(10, vec![spec("a", 0, 0, 1)], p),
        Err(PolicyError::ZeroLogical("a".into()))
    );
}

#[test]
fn initial_allotments_divide_the_pool_by_weight() {
    let p = Policy::new(
        768 * MIB,
        vec![spec("a", 1024, 64, 64), spec("b", 1024, 64, 128)],
        Params::default(),
    )
    .unwrap();
    let a: Vec<u64> = p.partitions().iter().map(|q| q.allotment).collect();
    // 640 MiB beyond the entitlements at 1:2.
    assert_eq!(a.iter().sum::<u64>(), 768 * MIB);
    assert_eq!(a[1] - 64 * MIB, 2 * (a[0] - 64 * MIB) + 1);
}

#[test]
fn a_growing_guest_gets_memory_at_the_capped_rate() {
    let mut p = three();
    let cap = p.partitions()[0].cap(p.pool());
    // min(512 MiB / 256, 768 MiB / 512) = 1.5 MiB.
    assert_eq!(cap, 384);
    let mut used = [32 * MIB, 32 * MIB, 32 * MIB];
    // Everyone idle: allotments fall toward used + headroom (64 MiB = entitlement).
    for _ in 0..400 {
        let obs = follow(&p, &used);
        p.tick(&obs);
    }
    for q in p.partitions() {
        assert_eq!(q.allotment, 64 * MIB, "{q:?}");
    }
    // a's workload grows to 400 MiB: its allotment rises by exactly the cap per tick.
    used[0] = 400 * MIB;
    let mut last = p.partitions()[0].allotment;
    for _ in 0..10 {
        let obs = follow(&p, &used);
        p.tick(&obs);
        let now = p.partitions()[0].allotment;
        assert_eq!(now - last, cap);
        last = now;
    }
    for _ in 0..400 {
        let obs = follow(&p, &used);
        p.tick(&obs);
    }
    assert_eq!(p.partitions()[0].allotment, 432 * MIB);
    assert_eq!(p.violations(), 0);
}

#[test]
fn shrinking_guests_pay_for_the_growing_one() {
    let mut p = three();
    let used = [700 * MIB, 200 * MIB, 200 * MIB];
    for _ in 0..2000 {
        let obs = follow(&p, &used);
        let r = p.tick(&obs);
        assert!(!r.violation);
    }
    // Demands 512 (capped at L), 232, 232 exceed 768: equal weights would give
    // each 64 + 192 MiB; b and c want less, and a takes what they leave.
    let a: Vec<u64> = p.partitions().iter().map(|q| q.allotment).collect();
    assert_eq!(a, [304 * MIB, 232 * MIB, 232 * MIB]);
    // The heavier weight gets more when short.
    let mut p = Policy::new(
        768 * MIB,
        vec![spec("a", 1024, 64, 200), spec("b", 1024, 64, 50)],
        Params::default(),
    )
    .unwrap();
    for _ in 0..2000 {
        let obs = follow(&p, &[1024 * MIB, 1024 * MIB]);
        p.tick(&obs);
    }
    let a: Vec<u64> = p.partitions().iter().map(|q| q.allotment).collect();
    assert_eq!(a[0] + a[1], 768 * MIB);
    // 640 MiB of extra at 200:50 → 512 and 128.
    assert_eq!(a, [576 * MIB, 192 * MIB]);
}

#[test]
fn nothing_is_granted_until_it_has_come_back() {
    let mut p = three();
    // b and c have not booted yet: they hold all of their logical memory.
    let obs = [
        Observation {
            held: Some(p.partitions()[0].allotment),
            used: Some(500 * MIB),
            ..Observation::default()
        },
        Observation {
            used: Some(10 * MIB),
            ..Observation::default()
        },
        Observation {
            used: Some(10 * MIB),
            ..Observation::default()
        },
    ];
    for _ in 0..5 {
        let r = p.tick(&obs);
        assert_eq!(r.granted, 0);
        assert_eq!(r.free_at_start, 0);
    }
    // Their allotments went down meanwhile; now they follow: what came back is
    // free, and a is granted from it, at most the cap.
    let b = p.partitions()[1].allotment;
    assert_eq!(b, 256 * MIB - 5 * 384);
    let obs = follow(&p, &[500 * MIB, 10 * MIB, 10 * MIB]);
    let r = p.tick(&obs);
    assert_eq!(r.free_at_start, 2 * 5 * 384);
    assert_eq!(r.granted, 384);
}

#[test]
fn an_uncooperative_guest_is_capped_and_nobody_waits_for_it() {
    let mut p = three();
    let used = [480 * MIB, 10 * MIB, 10 * MIB];
    let stuck = 256 * MIB;
    for t in 0..600 {
        let mut obs = follow(&p, &used);
        // b never gives anything back.
        obs[1].held = Some(stuck);
        p.tick(&obs);
        if t == 3 {
            assert_eq!(p.partitions()[1].state, State::Lagging);
        }
    }
    let b = &p.partitions()[1];
    assert_eq!(b.state, State::Uncooperative);
    // c gave back what a needed; a got it although b never followed.
    let a = &p.partitions()[0];
    let c = &p.partitions()[2];
    assert_eq!(c.allotment, 64 * MIB);
    assert_eq!(a.allotment, 768 * MIB - stuck - 64 * MIB);
    assert!(p.allotted() <= p.pool());
    // b follows again: it is cooperative at once and its memory flows to a.
    for _ in 0..600 {
        let obs = follow(&p, &used);
        p.tick(&obs);
    }
    assert_eq!(p.partitions()[1].state, State::Following);
    assert_eq!(p.partitions()[0].allotment, 512 * MIB);
}

#[test]
fn a_guest_ahead_of_its_rising_allotment_is_not_uncooperative() {
    let mut p = three();
    // a took 200 MiB more than allotted at once (its OOM notifier took loans back):
    // its allotment catches up at the capped rate, and the lag is not its fault.
    let mut held_a = 456 * MIB;
    for _ in 0..300 {
        let mut obs = follow(&p, &[424 * MIB, 10 * MIB, 10 * MIB]);
        obs[0].held = Some(held_a);
        p.tick(&obs);
        assert_ne!(p.partitions()[0].state, State::Uncooperative);
        held_a = held_a.max(p.partitions()[0].allotment);
    }
    assert_eq!(p.partitions()[0].allotment, 456 * MIB);
    assert_eq!(p.partitions()[0].state, State::Following);
    // But once its allotment is where it should be, holding more counts.
    for _ in 0..20 {
        let mut obs = follow(&p, &[10 * MIB, 10 * MIB, 10 * MIB]);
        obs[0].held = Some(456 * MIB);
        p.tick(&obs);
    }
    assert_eq!(p.partitions()[0].state, State::Uncooperative);
}

#[test]
fn a_dead_guests_memory_returns_to_the_pool() {
    let mut p = three();
    let used = [480 * MIB, 480 * MIB, 10 * MIB];
    for _ in 0..50 {
        let obs = follow(&p, &used);
        p.tick(&obs);
    }
    let moved = p.moved();
    let mut obs = follow(&p, &used);
    obs[2].dead = true;
    let r = p.tick(&obs);
    assert!(r.taken >= p.partitions()[2].spec.entitled);
    assert_eq!(p.partitions()[2].state, State::Dead);
    assert_eq!(p.partitions()[2].allotment, 0);
    // The death itself is not counted as memory moved.
    assert!(p.moved() - moved <= 2 * 384);
    for _ in 0..1000 {
        let mut obs = follow(&p, &used);
        obs[2].dead = true;
        p.tick(&obs);
    }
    assert_eq!(p.partitions()[0].allotment, 384 * MIB);
    assert_eq!(p.partitions()[1].allotment, 384 * MIB);
}

#[test]
fn pressure_makes_a_guest_grow() {
    let mut p = three();
    for _ in 0..400 {
        let obs = follow(&p, &[10 * MIB, 10 * MIB, 10 * MIB]);
        p.tick(&obs);
    }
    let before = p.partitions()[0].allotment;
    let mut obs = follow(&p, &[10 * MIB, 10 * MIB, 10 * MIB]);
    obs[0].pressure = true;
    p.tick(&obs);
    assert_eq!(p.partitions()[0].demand, 512 * MIB);
    assert!(p.partitions()[0].allotment > before);
}

/// A random configuration whose entitlements fit the pool.
fn config() -> impl Strategy<Value = (u64, Vec<Spec>)> {
    proptest::collection::vec((1u64..4096, 0u64..1024, any::<u8>()), 1..6).prop_flat_map(|v| {
        let specs: Vec<Spec> = v
            .iter()
            .enumerate()
            .map(|(i, &(l, e, w))| Spec {
                name: format!("p{i}"),
                logical: l,
                entitled: e.min(l),
                weight: w,
            })
            .collect();
        let min: u64 = specs.iter().map(|s| s.entitled).sum();
        (min.max(1)..min + 8192).prop_map(move |pool| (pool, specs.clone()))
    })
}

/// One tick's behaviour of every guest: used pages, how far it follows its target
/// (0 = not at all, 255 = fully), pressure, death.
type Step = Vec<(u64, u8, bool, bool)>;

fn trace() -> impl Strategy<Value = Vec<Step>> {
    proptest::collection::vec(
        proptest::collection::vec((0u64..5000, any::<u8>(), any::<bool>(), any::<u8>()), 6),
        1..60,
    )
    .prop_map(|t| {
        t.into_iter()
            .map(|s| {
                s.into_iter()
                    .map(|(u, f, pr, d)| (u, f, pr && f % 7 == 0, d == 0))
                    .collect()
            })
            .collect()
    })
}

/// What a guest holds after following its allotment by `f`/255 of the way.
fn held_after(held: u64, allotment: u64, f: u8) -> u64 {
    let d = u128::from(held.abs_diff(allotment)) * u128::from(f) / 255;
    let d = u64::try_from(d).unwrap();
    if held > allotment {
        held - d
    } else {
        held + d
    }
}

fn observe(p: &Policy, step: &Step) -> Vec<Observation> {
    p.partitions()
        .iter()
        .zip(step)
        .map(|(q, &(u, f, pr, dead))| Observation {
            dead,
            held: Some(held_after(q.held, q.allotment, f)),
            used: Some(u),
            pressure: pr,
            ..Observation::default()
        })
        .collect()
}

fn run(pool: u64, specs: &[Spec], t: &[Step]) -> Vec<Vec<u64>> {
    let mut p = Policy::new(pool, specs.to_vec(), Params::default()).unwrap();
    t.iter()
        .map(|s| {
            let obs = observe(&p, s);
            p.tick(&obs);
            p.partitions().iter().map(|q| q.allotment).collect()
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn invariants_hold_every_tick((pool, specs) in config(), t in trace()) {
        let mut p = Policy::new(pool, specs.clone(), Params::default()).unwrap();
        prop_assert!(p.allotted() <= pool);
        for s in &t {
            let before: Vec<Partition> = p.partitions().to_vec();
            let obs = observe(&p, s);
            let free_before = {
                // What the tick will see as free: after applying the observations.
                let committed: u64 = before.iter().zip(&obs).filter(|(q, o)| q.state != State::Dead && !o.dead)
                    .map(|(q, o)| q.allotment.max(o.held.unwrap_or(q.held))).sum();
                pool.saturating_sub(committed)
            };
            let r = p.tick(&obs);
            // Conservation.
            prop_assert!(!r.violation);
            prop_assert!(p.allotted() <= pool);
            prop_assert_eq!(r.allotted, p.allotted());
            // Free before grant: never more granted than was free at the start.
            prop_assert_eq!(r.free_at_start, free_before);
            prop_assert!(r.granted <= r.free_at_start, "{:?}", r);
            for (q, b) in p.partitions().iter().zip(&before) {
                if q.state == State::Dead {
                    prop_assert_eq!(q.allotment, 0);
                    continue;
                }
                // Floor and cap.
                prop_assert!(q.spec.entitled <= q.allotment && q.allotment <= q.spec.logical, "{:?}", q);
                // Capped rate.
                prop_assert!(q.allotment.abs_diff(b.allotment) <= q.cap(pool));
                // An uncooperative guest is never granted more.
                if q.state == State::Uncooperative {
                    prop_assert!(q.allotment <= b.allotment);
                }
            }
        }
        prop_assert_eq!(p.violations(), 0);
    }

    #[test]
    fn a_replayed_trace_gives_the_same_allotments((pool, specs) in config(), t in trace()) {
        prop_assert_eq!(run(pool, &specs, &t), run(pool, &specs, &t));
    }

    #[test]
    fn following_guests_converge_to_the_model_division((pool, specs) in config(), used in proptest::collection::vec(0u64..5000, 6)) {
        let mut p = Policy::new(pool, specs.clone(), Params::default()).unwrap();
        for _ in 0..3000 {
            let obs = follow(&p, &used);
            p.tick(&obs);
        }
        // The same division the in-guest model computes for these demands.
        let claims: Vec<Claim> = specs.iter().zip(&used).map(|(s, &u)| Claim {
            min: s.entitled,
            want: u.saturating_add(Params::default().headroom).clamp(s.entitled, s.logical),
            weight: s.weight,
        }).collect();
        let shares = water_fill(pool, &claims);
        let got: Vec<u64> = p.partitions().iter().map(|q| q.allotment).collect();
        prop_assert_eq!(got, shares);
    }
}

#[test]
fn an_unresponsive_guest_is_frozen_and_the_others_are_served() {
    let mut p = three();
    // Settle with equal demands.
    for _ in 0..400 {
        let o = follow(&p, &[100 * MIB, 100 * MIB, 100 * MIB]);
        assert!(!p.tick(&o).violation);
    }
    let frozen_at = p.partitions()[1].clone();
    // b stops answering while a's demand grows and c's shrinks.
    for _ in 0..400 {
        let mut o = follow(&p, &[500 * MIB, 0, 10 * MIB]);
        o[1] = Observation {
            unresponsive: true,
            ..Observation::default()
        };
        let r = p.tick(&o);
        assert!(!r.violation);
        assert!(r.allotted <= p.pool());
        let b = &p.partitions()[1];
        assert_eq!(b.state, State::Unresponsive);
        assert_eq!(
            (b.allotment, b.share, b.held),
            (frozen_at.allotment, frozen_at.share, frozen_at.held)
        );
    }
    assert!(
        p.partitions()[0].allotment > frozen_at.allotment,
        "a did not grow while b was frozen"
    );
    // b answers again: it takes part in the division once more.
    for _ in 0..400 {
        let o = follow(&p, &[500 * MIB, 0, 10 * MIB]);
        assert!(!p.tick(&o).violation);
    }
    let b = &p.partitions()[1];
    assert_eq!(b.state, State::Following);
    assert!(
        b.allotment < frozen_at.allotment,
        "b did not give back memory it no longer needs"
    );
    assert_eq!(p.violations(), 0);
}

#[test]
fn a_target_still_in_flight_is_not_granted_to_others() {
    let mut p = three();
    // a wants much more, b and c little: b's and c's allotments go down. They
    // follow at once, but the manager has not yet heard them acknowledge the
    // lower targets: the previous ones (256 MiB) are still in flight.
    let mut granted = 0;
    for _ in 0..5 {
        let mut o = follow(&p, &[500 * MIB, 10 * MIB, 10 * MIB]);
        o[1].in_flight = 256 * MIB;
        o[2].in_flight = 256 * MIB;
        let r = p.tick(&o);
        granted += r.granted;
        assert_eq!(r.free_at_start, 0, "{r:?}");
    }
    assert_eq!(granted, 0, "memory still promised to b and c was granted");
    assert!(p.partitions()[1].allotment < 256 * MIB);
    // Once acknowledged, what came back is free and a is granted from it.
    let r = p.tick(&follow(&p, &[500 * MIB, 10 * MIB, 10 * MIB]));
    assert_eq!(r.free_at_start, 2 * 5 * 384);
    assert_eq!(r.granted, 384);
    assert_eq!(p.violations(), 0);
}

#[test]
fn a_late_guest_is_left_out_of_one_tick_without_changing_its_state() {
    let mut p = three();
    for _ in 0..50 {
        p.tick(&follow(&p, &[500 * MIB, 10 * MIB, 10 * MIB]));
    }
    let b = p.partitions()[1].clone();
    let mut o = follow(&p, &[500 * MIB, 10 * MIB, 10 * MIB]);
    o[1] = Observation {
        late: true,
        ..Observation::default()
    };
    let r = p.tick(&o);
    assert!(!r.violation);
    let after = &p.partitions()[1];
    assert_eq!(after.state, b.state);
    assert_eq!((after.allotment, after.share), (b.allotment, b.share));
    // The others moved.
    assert_ne!(p.partitions()[0].allotment, 0);
}

#[test]
fn a_guest_that_followed_the_target_it_was_told_is_not_lagging() {
    let mut p = three();
    // b's allotment falls tick after tick (its demand is small); each figure
    // it reports was read while the previous, higher target was in force, and
    // it holds exactly that one: it follows, however long the fall lasts.
    let mut told = p.partitions()[1].allotment;
    for _ in 0..100 {
        let mut o = follow(&p, &[500 * MIB, 10 * MIB, 10 * MIB]);
        o[1].held = Some(told);
        o[1].told = Some(told);
        p.tick(&o);
        assert_eq!(p.partitions()[1].state, State::Following);
        told = p.partitions()[1].allotment;
    }
    // Without knowing what it was told, the same figures look like a lag.
    let mut o = follow(&p, &[500 * MIB, 10 * MIB, 10 * MIB]);
    o[1].held = Some(told + MIB);
    p.tick(&o);
    assert_eq!(p.partitions()[1].state, State::Lagging);
}
