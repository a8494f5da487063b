//! Property tests: random sequences of probe, remove, map, unmap, set-desired,
//! entitlement changes (accepted, refused, failed, constrained), balance and
//! hot-plug against the fake hypervisor, checking after every step that
//!
//! - the accounting invariants hold (reserve + excess == entitled, curr == Σ a,
//!   high ≥ curr, excess_free ≤ excess_size, spare ≤ MIN_ENT, MIN_ENT ≤ e ≤ d);
//! - every TCE in the table belongs to a live mapping, and every mapping whose
//!   hcalls all succeeded has all its TCEs; pages out == pages of live mappings;
//! - a refused operation changed nothing (a refused mapping: only allocs_failed);
//! - a mapping beyond what the device could get is refused as such.

use alloc::collections::BTreeSet;
use alloc::format;
use alloc::vec::Vec;

use hcall::HStatus;
use proptest::prelude::*;

use super::fake::{FakeHv, FakePages, MppReply};
use crate::vio::{DmaWindow, VioBus, VioDevice, VioError, MIN_ENT};

#[derive(Clone, Debug)]
enum Reply {
    Set,
    Fail,
    Constrain(u64),
    Unknown(u64),
}

#[derive(Clone, Debug)]
enum Op {
    Probe(usize, Option<u64>),
    Remove(usize),
    Map {
        dev: usize,
        size: u64,
        fail_at: Option<u64>,
        unwind_fails: bool,
    },
    Unmap {
        pick: usize,
        fail: bool,
    },
    UnmapAll(usize),
    SetDesired(usize, u64),
    Entitle(u64, Reply),
    Balance,
    AddDevice(u32, bool),
    RemoveDevice(usize),
    ResetHigh,
    PageLimit(usize),
}

const MIB: u64 = 1 << 20;

fn size() -> impl Strategy<Value = u64> {
    prop_oneof![
        8 => 1u64..6 * MIB,
        1 => 0u64..3,
        1 => Just(u64::MAX / 2),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let dev = 0usize..6;
    let reply = prop_oneof![
        4 => Just(Reply::Set),
        1 => Just(Reply::Fail),
        1 => (0u64..64 * MIB).prop_map(Reply::Constrain),
        1 => (0u64..64 * MIB).prop_map(Reply::Unknown),
    ];
    prop_oneof![
        2 => (dev.clone(), proptest::option::of(0u64..16 * MIB)).prop_map(|(d, s)| Op::Probe(d, s)),
        1 => dev.clone().prop_map(Op::Remove),
        8 => (dev.clone(), size(), proptest::option::weighted(0.15, 0u64..8), any::<bool>())
            .prop_map(|(dev, size, fail_at, unwind_fails)| Op::Map { dev, size, fail_at, unwind_fails }),
        5 => (any::<usize>(), proptest::bool::weighted(0.1)).prop_map(|(pick, fail)| Op::Unmap { pick, fail }),
        1 => dev.clone().prop_map(Op::UnmapAll),
        2 => (dev.clone(), prop_oneof![9 => 0u64..20 * MIB, 1 => Just(u64::MAX - 5)])
            .prop_map(|(d, s)| Op::SetDesired(d, s)),
        3 => (0u64..64 * MIB, reply).prop_map(|(e, r)| Op::Entitle(e, r)),
        1 => Just(Op::Balance),
        1 => (0x100u32..0x110, any::<bool>()).prop_map(|(u, w)| Op::AddDevice(u, w)),
        1 => dev.prop_map(Op::RemoveDevice),
        1 => Just(Op::ResetHigh),
        1 => (0usize..3000).prop_map(Op::PageLimit),
    ]
}

fn device(unit: u32, kind: u8, window: u64) -> VioDevice {
    let compat = ["IBM,v-scsi", "IBM,l-lan", "IBM,vtpm", "hvterm1"][usize::from(kind % 4)];
    VioDevice {
        name: format!("dev@{unit:x}"),
        unit_address: unit,
        compatible: compat.into(),
        dma_window: (kind % 4 != 3).then_some(DmaWindow {
            liobn: unit,
            offset: u64::from(unit) << 32,
            size: window,
        }),
    }
}

fn setup() -> impl Strategy<Value = (u64, Vec<VioDevice>)> {
    proptest::collection::vec((0u8..4, 16u64..4096), 1..5).prop_flat_map(|kinds| {
        let devices: Vec<VioDevice> = kinds
            .iter()
            .zip(1u32..)
            .map(|(&(k, pages), unit)| device(unit, k, pages * 4096))
            .collect();
        let dma = devices.iter().filter(|d| d.dma_window.is_some()).count() as u64;
        let floor = (dma + 1) * MIN_ENT;
        (floor..floor + 40 * MIB, Just(devices))
    })
}

struct World {
    bus: VioBus,
    hv: FakeHv,
    pages: FakePages,
    /// Mappings whose map or unmap saw an injected failure: their TCEs may be
    /// partly entered.
    degraded: BTreeSet<u64>,
}

impl World {
    fn unit(&self, i: usize) -> u32 {
        let d = self.bus.devices();
        if d.is_empty() {
            0xdead
        } else {
            d[i % d.len()].unit_address
        }
    }
}

fn check(w: &World) -> Result<(), TestCaseError> {
    let acct = w.bus.accounting();
    if let Err(why) = acct.check_invariants() {
        return Err(TestCaseError::fail(format!("invariant: {why}: {:?}", acct)));
    }
    let b = w.bus.stats();
    prop_assert_eq!(b.reserve_size + b.excess_size, b.entitled);
    // Per device, allocated == Σ sizes of its mappings (with CMO).
    for d in w.bus.devices().iter().filter(|_| acct.enabled()) {
        let mapped: u64 = w
            .bus
            .mappings()
            .filter(|m| m.unit == d.unit_address)
            .map(|m| m.size)
            .sum();
        prop_assert_eq!(
            w.bus.device_stats(d.unit_address).unwrap().allocated,
            mapped
        );
    }
    // Every TCE belongs to a live mapping, with the right page.
    for (&(liobn, ioba), &tce) in &w.hv.tces {
        let owner = w.bus.mappings().find(|m| {
            let dev = w.bus.device(m.unit).unwrap();
            dev.dma_window.unwrap().liobn == liobn
                && ioba >= m.ioba
                && ioba < m.ioba + 4096 * m.pages.len() as u64
        });
        let Some(m) = owner else {
            return Err(TestCaseError::fail(format!(
                "stray TCE {liobn:x}/{ioba:#x}"
            )));
        };
        let page = m.pages[usize::try_from((ioba - m.ioba) / 4096).unwrap()];
        prop_assert_eq!(tce, page | 3);
    }
    // Healthy mappings have every TCE.
    let mut out = BTreeSet::new();
    for m in w.bus.mappings() {
        let liobn = w.bus.device(m.unit).unwrap().dma_window.unwrap().liobn;
        if !w.degraded.contains(&m.id) {
            for (i, p) in m.pages.iter().enumerate() {
                prop_assert_eq!(
                    w.hv.tces.get(&(liobn, m.ioba + 4096 * i as u64)),
                    Some(&(p | 3))
                );
            }
        }
        prop_assert_eq!(m.size, 4096 * m.pages.len() as u64);
        out.extend(m.pages.iter().copied());
    }
    prop_assert_eq!(&out, &w.pages.out);
    Ok(())
}

/// What a successful charge of `charged` bytes does, from docs/cmo.md §7.4 and the
/// state before it (not from the crate's `available`): the device's own room
/// `(e − a)⁺` is used first and only the rest comes out of the free excess pool,
/// which must have been open (spare full) and large enough; `curr` and the device's
/// `allocated` grow by `charged`, `high` follows `curr`; nothing else moves.
fn charge_effects(
    before: &VioBus,
    after: &VioBus,
    unit: u32,
    charged: u64,
) -> Result<(), TestCaseError> {
    let (b0, b1) = (before.stats(), after.stats());
    let d0 = before.device_stats(unit).unwrap();
    let d1 = after.device_stats(unit).unwrap();
    let own_room = d0.entitled.saturating_sub(d0.allocated);
    let from_excess = charged.saturating_sub(own_room);
    if from_excess > 0 {
        prop_assert!(b0.spare >= MIN_ENT, "charged from a closed excess pool");
    }
    prop_assert!(from_excess <= b0.excess_free, "charged more than was free");
    prop_assert_eq!(b1.excess_free, b0.excess_free - from_excess);
    prop_assert_eq!(b1.curr, b0.curr + charged);
    prop_assert_eq!(b1.high, b0.high.max(b1.curr));
    prop_assert_eq!(d1.allocated, d0.allocated + charged);
    prop_assert_eq!(d1.entitled, d0.entitled);
    prop_assert_eq!(
        (b1.entitled, b1.reserve_size, b1.excess_size, b1.spare),
        (b0.entitled, b0.reserve_size, b0.excess_size, b0.spare)
    );
    Ok(())
}

fn step(w: &mut World, op: &Op) -> Result<(), TestCaseError> {
    let before = w.bus.clone();
    match op {
        Op::Probe(i, d) => {
            let u = w.unit(*i);
            if w.bus.probe(u, *d).is_err() {
                prop_assert_eq!(&w.bus, &before);
            }
        }
        Op::Remove(i) => {
            let u = w.unit(*i);
            if w.bus.remove(u).is_err() {
                prop_assert_eq!(&w.bus, &before);
            }
        }
        Op::Map {
            dev,
            size,
            fail_at,
            unwind_fails,
        } => {
            let u = w.unit(*dev);
            let available = w.bus.accounting().available(u).ok();
            let failed_before = w.bus.device_stats(u).map(|c| c.allocs_failed).unwrap_or(0);
            if let Some(k) = fail_at {
                w.hv.fail_in(*k);
                if *unwind_fails {
                    w.hv.fail_in(k + 1);
                }
            }
            let res = w.bus.map(&mut w.hv, &mut w.pages, u, *size);
            w.hv.fail_put_tce.clear();
            let charged = size.div_ceil(4096).saturating_mul(4096);
            let cmo = w.bus.accounting().enabled();
            match res {
                Ok(_) => {
                    prop_assert!(!cmo || charged <= available.unwrap());
                    if cmo {
                        charge_effects(&before, &w.bus, u, charged)?;
                    }
                }
                Err(VioError::UnwindFailed { id, .. }) => {
                    w.degraded.insert(id);
                    prop_assert_eq!(
                        w.bus.device_stats(u).unwrap().allocs_failed,
                        failed_before + 1
                    );
                }
                Err(e) => {
                    let mut expect = before.clone();
                    let counted = !matches!(
                        e,
                        VioError::ZeroSize
                            | VioError::Overflow
                            | VioError::NoSuchDevice(_)
                            | VioError::NoDmaWindow(_)
                            | VioError::NotBound(_)
                    );
                    if counted {
                        expect.accounting_note_failure_for_test(u);
                    }
                    prop_assert_eq!(&w.bus, &expect, "after {:?}", e);
                    if matches!(e, VioError::EntitlementExceeded { .. }) {
                        prop_assert!(charged > available.unwrap_or(0));
                    }
                    let dma = before
                        .device(u)
                        .map(|d| d.dma_window.is_some())
                        .unwrap_or(false);
                    let bound = before.accounting().is_bound(u).unwrap_or(false);
                    if let (Some(av), true, true, true, true) =
                        (available, cmo, dma, bound, *size > 0)
                    {
                        if charged > av {
                            let exceeded = matches!(e, VioError::EntitlementExceeded { .. });
                            prop_assert!(exceeded || matches!(e, VioError::Overflow), "{:?}", e);
                        }
                    }
                }
            }
        }
        Op::Unmap { pick, fail } => {
            let ids: Vec<(u64, u32)> = w.bus.mappings().map(|m| (m.id, m.unit)).collect();
            if !ids.is_empty() {
                let (id, u) = ids[pick % ids.len()];
                if *fail {
                    w.hv.fail_in(0);
                }
                let res = w.bus.unmap(&mut w.hv, &mut w.pages, u, id);
                w.hv.fail_put_tce.clear();
                match res {
                    Ok(()) => {
                        w.degraded.remove(&id);
                    }
                    Err(_) => {
                        w.degraded.insert(id);
                        prop_assert_eq!(&w.bus, &before);
                    }
                }
            }
        }
        Op::UnmapAll(i) => {
            let u = w.unit(*i);
            if w.bus.unmap_all(&mut w.hv, &mut w.pages, u).is_ok() {
                prop_assert!(w.bus.mappings().all(|m| m.unit != u));
            }
        }
        Op::SetDesired(i, d) => {
            let u = w.unit(*i);
            if w.bus.set_desired(u, *d).is_err() {
                prop_assert_eq!(&w.bus, &before);
            }
        }
        Op::Entitle(new, reply) => {
            let old = w.bus.stats().entitled;
            let floor = w.bus.accounting().min_entitlement();
            w.hv.reply = match reply {
                Reply::Set => MppReply::Set,
                Reply::Fail => MppReply::Fail(HStatus::Busy),
                Reply::Constrain(g) => MppReply::Constrain(*g),
                Reply::Unknown(g) => MppReply::ConstrainUnknown(*g),
            };
            let res = w.bus.set_entitlement(&mut w.hv, *new, 0);
            w.hv.reply = MppReply::Set;
            let e = w.bus.stats().entitled;
            match (res, reply) {
                (Err(VioError::EntitlementInUse { .. }), _) => {
                    prop_assert!(*new < floor);
                    prop_assert_eq!(&w.bus, &before);
                }
                (Err(VioError::CmoDisabled), _) => prop_assert_eq!(&w.bus, &before),
                (Err(VioError::Hcall(_)), Reply::Fail) => prop_assert_eq!(&w.bus, &before),
                (Ok(_), Reply::Set) => prop_assert_eq!(e, *new),
                (Ok(_), Reply::Constrain(g)) => prop_assert_eq!(e, *g),
                (
                    Err(VioError::EntitlementShortfall { granted, floor: f }),
                    Reply::Constrain(g),
                ) => {
                    prop_assert_eq!(granted, *g);
                    prop_assert_eq!(f, floor);
                    prop_assert_eq!(e, floor);
                }
                (Err(VioError::EntitlementUnknown { assumed, .. }), Reply::Unknown(_)) => {
                    prop_assert_eq!(assumed, old.min(*new));
                    prop_assert_eq!(e, assumed);
                }
                (other, r) => {
                    return Err(TestCaseError::fail(format!("{other:?} with reply {r:?}")));
                }
            }
        }
        Op::Balance => {
            w.bus.balance();
            prop_assert!(w.bus.accounting().spare_is_balanced());
            let b = w.bus.stats();
            prop_assert_eq!(b.reserve_size + b.excess_size, b.entitled);
        }
        Op::AddDevice(unit, window) => {
            let kind = if *window { 2 } else { 3 };
            if w.bus.add_device(device(*unit, kind, 64 * 4096)).is_err() {
                prop_assert_eq!(&w.bus, &before);
            }
        }
        Op::RemoveDevice(i) => {
            let u = w.unit(*i);
            if w.bus.remove_device(u).is_err() {
                prop_assert_eq!(&w.bus, &before);
            }
        }
        Op::ResetHigh => {
            w.bus.reset_high();
            prop_assert_eq!(w.bus.stats().high, w.bus.stats().curr);
        }
        Op::PageLimit(n) => w.pages.limit = *n,
    }
    check(w)
}

impl VioBus {
    /// The bus as it should be after a refused mapping: one more allocs_failed.
    fn accounting_note_failure_for_test(&mut self, unit: u32) {
        self.acct.note_failure(unit).unwrap();
    }
}

fn run(entitled: u64, devices: Vec<VioDevice>, ops: &[Op], cmo: bool) -> Result<(), TestCaseError> {
    let bus = if cmo {
        VioBus::new(entitled, devices).unwrap()
    } else {
        VioBus::without_cmo(devices).unwrap()
    };
    // The kernel probes every device at boot; the sequence may remove and
    // re-probe them.
    let mut bus = bus;
    prop_assert!(bus.probe_all().is_empty());
    let mut w = World {
        bus,
        hv: FakeHv::new(entitled),
        pages: FakePages::new(4000),
        degraded: BTreeSet::new(),
    };
    check(&w)?;
    for op in ops {
        step(&mut w, op)?;
    }
    // Everything can be unmapped and removed at the end.
    let units: Vec<u32> = w.bus.devices().iter().map(|d| d.unit_address).collect();
    for u in units {
        w.bus.unmap_all(&mut w.hv, &mut w.pages, u).unwrap();
        let _ = w.bus.remove(u);
    }
    prop_assert!(w.hv.tces.is_empty());
    prop_assert!(w.pages.out.is_empty());
    prop_assert_eq!(w.bus.stats().curr, 0);
    check(&w)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn vio_random_sequences_keep_invariants(
        (entitled, devices) in setup(),
        ops in proptest::collection::vec(op(), 1..60),
    ) {
        run(entitled, devices, &ops, true)?;
    }

    #[test]
    fn vio_random_sequences_without_cmo(
        (_e, devices) in setup(),
        ops in proptest::collection::vec(op(), 1..30),
    ) {
        run(0, devices, &ops, false)?;
    }

    #[test]
    fn vio_init_refused_iff_entitlement_too_small(n in 0u64..6, e in 0u64..10 * MIN_ENT) {
        let devices: Vec<VioDevice> = (1..=n).map(|u| device(u32::try_from(u).unwrap(), 0, 1 << 20)).collect();
        let res = VioBus::new(e, devices);
        prop_assert_eq!(res.is_err(), (n + 1) * MIN_ENT > e);
    }
}
