//! The pool manager's outside input: its TOML configuration, QEMU's QMP replies
//! (and the guest statistics in them), and the observations its policy divides
//! the pool by.

use lpar_pool::config::Config;
use lpar_pool::policy::{Observation, Params, Policy, PoolPolicy, Spec, State};
use lpar_pool::qmp;
use lpar_pool::stats::GuestStats;

use crate::input::Bytes;

/// A configuration file: refused with a message, or accepted with partitions
/// that fit the pool (the policy takes them), each named as the rules say.
pub fn pool_config(data: &[u8]) {
    let Ok(text) = core::str::from_utf8(data) else {
        return;
    };
    match Config::parse(text) {
        Err(e) => assert!(!e.0.is_empty()),
        Ok(c) => {
            assert!(c.tick_ms >= 1);
            let specs = c.specs();
            assert_eq!(specs.len(), c.partitions.len());
            if !specs.is_empty() {
                let _ = Policy::new(c.pool / 4096, specs, c.params);
            }
        }
    }
}

/// QMP lines as a monitor might send them in answer to one command (id 7): each
/// is an error (`Garbled` naming the line, or QMP's own `error`), skipped (an
/// event, an answer with another id), or a `return` value; a value is then read
/// as `query-balloon` and `guest-stats` read it, whatever its shape.
pub fn qmp(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    for line in text.split('\n') {
        match qmp::decode_reply(line, "query-balloon", 7) {
            Err(qmp::QmpError::Garbled(l)) => assert_eq!(l, line),
            Err(qmp::QmpError::Command { command, .. }) => assert_eq!(command, "query-balloon"),
            Err(e) => panic!("unexpected error kind for one line: {e}"),
            Ok(None) => {}
            Ok(Some(v)) => {
                let _ = qmp::balloon_actual(&v);
                let s = GuestStats::parse(&v);
                if let (Some(used), Some(total)) = (s.used(), s.total) {
                    assert!(used <= total);
                }
                let _ = s.pressure_since(&GuestStats::default());
            }
        }
    }
}

/// The policy over random ticks: up to four partitions (checked as the manager
/// checks them), then observations of any kind (absurd ones included: more held
/// than logical memory, more used than held, silence, late answers, targets in
/// flight, death): the allotments never exceed the pool, no tick reports a
/// conservation violation or grants more than was free at its start (targets
/// in flight counted), a live partition's allotment stays within its logical
/// memory, an unresponsive or late one keeps its allotment, and a dead one
/// holds nothing.
pub fn pool_policy(data: &[u8]) {
    let mut b = Bytes::new(data);
    let pool = u64::from(b.u16()) + 1;
    let n = 1 + b.below(4);
    let specs: Vec<Spec> = (0..n)
        .map(|i| {
            let logical = u64::from(b.u16()) + 1;
            Spec {
                name: format!("g{i}"),
                logical,
                entitled: u64::from(b.u16()) % (logical + 1),
                weight: b.u8(),
            }
        })
        .collect();
    let params = Params {
        headroom: u64::from(b.u8()),
        uncooperative_after: u32::from(b.u8() % 8),
    };
    let Ok(mut policy) = Policy::new(pool, specs, params) else {
        return;
    };
    while !b.is_empty() {
        let obs: Vec<Observation> = (0..n)
            .map(|_| {
                let flags = b.u8();
                let figure = |b: &mut Bytes<'_>, on: bool| on.then(|| u64::from(b.u16()));
                Observation {
                    dead: flags == 0xff,
                    held: figure(&mut b, flags & 1 == 1),
                    used: figure(&mut b, flags & 2 == 2),
                    pressure: flags & 4 == 4,
                    unresponsive: flags & 0x18 == 0x18,
                    late: flags & 0x18 == 0x08,
                    in_flight: figure(&mut b, flags & 0x20 == 0x20).unwrap_or(0),
                    told: figure(&mut b, flags & 0x40 == 0x40),
                }
            })
            .collect();
        let before: Vec<u64> = policy.partitions().iter().map(|p| p.allotment).collect();
        let r = policy.tick(&obs);
        assert!(!r.violation, "conservation violated");
        assert!(r.allotted <= policy.pool());
        assert!(
            r.granted <= r.free_at_start,
            "granted more than was free: {r:?}"
        );
        for ((p, a), o) in policy.partitions().iter().zip(before).zip(&obs) {
            if o.late && p.state != State::Dead {
                assert_eq!(p.allotment, a, "a late partition's allotment moved");
            }
            if p.state == State::Unresponsive {
                assert_eq!(
                    p.allotment, a,
                    "an unresponsive partition's allotment moved"
                );
            }
            if p.state == State::Dead {
                assert_eq!(p.allotment, 0);
            } else {
                assert!(p.allotment <= p.spec.logical, "{p:?}");
            }
        }
    }
    assert_eq!(policy.violations(), 0);
}
