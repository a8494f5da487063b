//! The pool manager survives its guests, with three real guests under
//! QEMU: QEMU's side of one guest's QMP socket closes in the middle of a command
//! (a relay between the manager and QEMU drops both ends) and comes back, one
//! guest is frozen with SIGSTOP for 20 s (its monitor stops answering) and then
//! continued, one is killed while its balloon moves. The cut-off and the frozen
//! guest are marked unresponsive within bounded time and rejoin; the closure is
//! reported in one line; no tick waits for a guest (the others' tick period in
//! the manager's CSV is the same while one is stopped); the other guests'
//! targets keep moving; conservation holds in every tick.
//!
//! The guests are booted by the harness and the manager attaches to them by
//! their QMP sockets and ticks in a thread, as in tests/pool.rs.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use lpar_cmm_tests::pool_guest::Ticker;
use lpar_cmm_tests::relay::Relay;
use lpar_cmm_tests::Qemu;
use lpar_pool::config::Config;
use lpar_pool::guest::Guest;
use lpar_pool::manager::Manager;
use lpar_pool::policy::State;

const MIB: u64 = 1 << 20;
const TICK: Duration = Duration::from_millis(250);
const POOL: u64 = 600 * MIB;
/// The first allotments: the pool divided by three.
const FIRST: u64 = 200 * MIB;

const CONFIG: &str = r#"
pool = "600M"
tick_ms = 250
headroom = "32M"
uncooperative_after = 400
[[partition]]
name = "a"
logical = "512M"
[[partition]]
name = "frozen"
logical = "512M"
[[partition]]
name = "killed"
logical = "512M"
"#;

fn boot(name: &str) -> (Qemu, PathBuf) {
    lpar_cmm_tests::pool_guest::boot("hostile", name)
}

fn signal(vm: &Qemu, sig: i32) {
    let pid = vm.pid().expect("QEMU pid");
    // SAFETY: kill(2) on the pid of a QEMU this test started.
    let r = unsafe { libc::kill(i32::try_from(pid).expect("pid"), sig) };
    assert_eq!(r, 0, "kill({pid}, {sig})");
}

/// The median of the intervals between consecutive ticks among `ticks` (tick,
/// t_ms), counting only pairs of consecutive ticks that both pass `keep`.
fn median_period(ticks: &[(u64, u64, bool)]) -> u64 {
    let mut d: Vec<u64> = ticks
        .windows(2)
        .filter(|w| w[0].2 && w[1].2 && w[1].0 == w[0].0 + 1)
        .map(|w| w[1].1 - w[0].1)
        .collect();
    assert!(d.len() >= 8, "too few ticks to measure: {}", d.len());
    d.sort_unstable();
    d[d.len() / 2]
}

#[test]
fn a_cut_off_a_frozen_and_a_killed_guest() {
    let cfg = Config::parse(CONFIG).expect("config");
    let (mut a, s0) = boot("a");
    let (frozen, s1) = boot("frozen");
    let (mut killed, s2) = boot("killed");
    // a's monitor is reached through a relay the test can cut.
    let relay = Relay::start(
        &s0,
        lpar_cmm_tests::pool_guest::qmp_sock("hostile", "a-relay"),
    );
    let mut ga = Guest::attach("a", relay.path()).expect("attach a through the relay");
    ga.set_pid(a.pid().expect("a's pid"));
    let guests = vec![
        ga,
        Guest::attach("frozen", &s1).expect("attach"),
        Guest::attach("killed", &s2).expect("attach"),
    ];
    killed.ok("alloc 32M");
    let t = Ticker::start(Manager::new(cfg, guests).expect("manager"), TICK);
    t.wait("the first targets", 120, |l| {
        l.iter()
            .all(|s| s.held <= FIRST && s.state == State::Following)
    });

    // QEMU's side of a's monitor closes in the middle of a command, and the
    // socket is gone for a while: a is unresponsive, the others go on (their
    // targets are falling from their first allotments toward their demands).
    relay.cut_mid_command();
    let cut_at = Instant::now();
    while relay.cuts() == 0 {
        assert!(
            cut_at.elapsed() < Duration::from_secs(10),
            "no command to cut"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    t.wait("the cut-off guest to be unresponsive", 30, |l| {
        l[0].state == State::Unresponsive
    });
    let during = t.last();
    std::thread::sleep(Duration::from_secs(2));
    let later = t.last();
    assert_eq!(later[0].state, State::Unresponsive);
    assert_eq!(
        later[0].allotted, during[0].allotted,
        "a cut-off guest's allotment moved"
    );
    let moving: Vec<usize> = [1, 2]
        .into_iter()
        .filter(|&p| during[p].allotted != during[p].share)
        .collect();
    assert!(!moving.is_empty(), "nothing left to move: {during:?}");
    for p in moving {
        assert_ne!(
            later[p].allotted, during[p].allotted,
            "partition {p}'s target stood still while a was cut off: {:?} -> {:?}",
            during[p], later[p]
        );
    }
    relay.restore();
    t.wait("the cut-off guest to rejoin", 30, |l| {
        l[0].state != State::Unresponsive
    });
    assert_eq!(relay.sessions(), 2, "not connected again through the relay");
    let msgs = t.messages();
    let lost: Vec<&String> = msgs
        .iter()
        .filter(|m| m.starts_with("a: ") && m.contains("connection lost"))
        .collect();
    assert_eq!(lost.len(), 1, "the closure in one line: {msgs:#?}");
    assert!(lost[0].contains("end of stream"), "{}", lost[0]);
    assert!(
        msgs.iter().any(|m| m == "a: QMP connected again"),
        "{msgs:#?}"
    );

    // A shift: a's workload grows beyond its first allotment (its demand is
    // what it uses plus 32 MiB of headroom), so memory moves to it, while the
    // others' targets fall toward their small demands.
    a.ok("alloc 160M");
    t.wait("a's target to start rising", 60, |l| l[0].allotted > FIRST);

    // Freeze one guest. The manager notices within a bounded time.
    signal(&frozen, libc::SIGSTOP);
    let frozen_at = Instant::now();
    let noticed = t.wait("the stopped guest to be unresponsive", 30, |l| {
        l[1].state == State::Unresponsive
    });
    assert!(
        noticed < Duration::from_secs(10),
        "noticed after {noticed:?}"
    );
    let frozen_allotment = t.last()[1].allotted;

    // Kill another while its balloon moves (its target is falling from its
    // first allotment toward its demand, at the capped rate).
    let k = t.last()[2].clone();
    assert!(k.allotted > k.demand, "{k:?}");
    signal(&killed, libc::SIGKILL);
    t.wait("the killed guest to be dead", 30, |l| {
        l[2].state == State::Dead
    });

    // The others keep moving while one is frozen: a's workload grows again and
    // its target follows; the frozen guest's allotment does not move.
    t.wait("a's target to reach its share", 60, |l| {
        l[0].allotted == l[0].share
    });
    let a_before = t.last()[0].allotted;
    a.ok("alloc 24M");
    t.wait("a's target to keep rising during the freeze", 60, |l| {
        l[0].allotted > a_before + 8 * MIB
    });
    assert_eq!(t.last()[1].allotted, frozen_allotment);
    assert_eq!(t.last()[1].state, State::Unresponsive);

    // Twenty seconds frozen, then continued: it rejoins.
    let left = Duration::from_secs(20).saturating_sub(frozen_at.elapsed());
    std::thread::sleep(left);
    assert_eq!(
        t.last()[1].state,
        State::Unresponsive,
        "rejoined while stopped"
    );
    signal(&frozen, libc::SIGCONT);
    let rejoin = t.wait("the continued guest to rejoin", 30, |l| {
        l[1].state != State::Unresponsive
    });
    assert!(
        rejoin < Duration::from_secs(15),
        "rejoined after {rejoin:?}"
    );
    // And takes part again: its target moves once more.
    t.wait("the rejoined guest's target to move", 60, |l| {
        l[1].allotted != frozen_allotment
    });
    a.ok("verify");

    let m = t.m.lock().unwrap();
    let summary = m.summary();
    assert_eq!(
        summary.get("conservation_violations"),
        Some("0"),
        "{summary}"
    );
    assert_eq!(summary.get("dead"), Some("1"), "{summary}");
    assert!(
        summary
            .get("rejoined")
            .is_some_and(|r| r.parse::<u32>().unwrap() >= 2),
        "{summary}"
    );
    // From the manager's CSV: conservation in every tick, and the tick period
    // while a guest is stopped against the period while every guest answers.
    let csv = lpar_pool::trace::to_csv(m.config(), m.samples());
    let mut sum: std::collections::BTreeMap<u64, u64> = Default::default();
    let mut ticks: Vec<(u64, u64, bool)> = Vec::new();
    let mut answering: Vec<(u64, u64, bool)> = Vec::new();
    for row in csv.lines().skip(1) {
        let f: Vec<&str> = row.split(',').collect();
        let (tick, t_ms): (u64, u64) = (f[0].parse().unwrap(), f[1].parse().unwrap());
        let (allotted, state) = (f[7].parse::<u64>().unwrap(), f[14]);
        if state != "dead" {
            *sum.entry(tick).or_default() += allotted;
        }
        if f[2] == "frozen" {
            ticks.push((tick, t_ms, state == "unresp"));
            answering.push((tick, t_ms, state != "unresp"));
        }
    }
    assert!(
        sum.values().all(|&s| s <= POOL),
        "allotments exceeded the pool"
    );
    let stopped = median_period(&ticks);
    let normal = median_period(&answering);
    eprintln!("median tick period: {stopped} ms with a guest stopped, {normal} ms without");
    assert!(
        stopped * 5 <= normal * 6,
        "ticks slowed down while a guest was stopped: {stopped} ms against {normal} ms"
    );
    drop(m);
    drop(t);
    let _ = killed.wait_exit();
}
