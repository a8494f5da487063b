//! The host pool manager with three guests under QEMU: memory moves to
//! the guest whose workload grows, no faster than the capped rate, while the
//! others' loans grow; the workload's pages verify; when it shrinks, memory comes
//! back and another guest can take it; Σ QEMU RSS stays within the pool plus a
//! per-guest overhead; killing one guest leaves the other two served.
//!
//! The guests are booted by the harness (which keeps their consoles), and the
//! manager attaches to them by their QMP sockets and ticks in a thread.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use lpar_cmm_tests::pool_guest::Ticker;
use lpar_cmm_tests::Qemu;
use lpar_pool::config::Config;
use lpar_pool::guest::Guest;
use lpar_pool::manager::{Manager, Sample};
use lpar_pool::policy::State;

const MIB: u64 = 1 << 20;
const TICK: Duration = Duration::from_millis(100);
/// What a guest's QEMU holds beyond the guest memory it backs: QEMU itself and
/// its TCG translation cache (about 70 MiB per guest at boot, measured).
const OVERHEAD_PER_GUEST: u64 = 128 * MIB;
/// The capped rate: min(512 MiB / 256, 768 MiB / 512) = 1.5 MiB per tick.
const CAP: u64 = 3 * MIB / 2;

const CONFIG: &str = r#"
pool = "768M"
tick_ms = 100
headroom = "32M"
uncooperative_after = 50
[[partition]]
name = "grow"
logical = "512M"
[[partition]]
name = "a"
logical = "512M"
[[partition]]
name = "b"
logical = "512M"
"#;

/// One test's guests at a time: they share two host cores.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn sock(tag: &str) -> PathBuf {
    lpar_cmm_tests::pool_guest::qmp_sock("pool", tag)
}

fn boot(name: &str) -> (Qemu, PathBuf) {
    lpar_cmm_tests::pool_guest::boot("pool", name)
}

/// Partition `p` got its share and holds no more than its allotment.
fn converged(p: usize) -> impl Fn(&[Sample]) -> bool {
    move |l: &[Sample]| {
        l[p].allotted == l[p].share && l[p].held <= l[p].allotted && l[p].state == State::Following
    }
}

/// Grows partition `p`'s workload by `steps` × 24 MiB, each step once the
/// manager has seen the last one in the guest's statistics and the allotment has
/// followed (so the guest always has its headroom and never needs its OOM
/// notifier).
fn grow_in_steps(vm: &mut Qemu, t: &Ticker, p: usize, steps: usize) {
    for _ in 0..steps {
        let used = t.last()[p].used.unwrap_or(0);
        vm.ok("alloc 24M");
        let c = converged(p);
        t.wait("the allotment to follow the workload", 180, move |l| {
            l[p].used.is_some_and(|u| u >= used + 24 * MIB) && c(l)
        });
    }
}

/// Every allotment moved at most the capped rate between consecutive ticks.
fn assert_capped_rate(samples: &[Sample]) {
    for p in 0..3 {
        let of: Vec<&Sample> = samples
            .iter()
            .filter(|s| s.partition == p && s.state != State::Dead)
            .collect();
        for w in of.windows(2) {
            let d = w[0].allotted.abs_diff(w[1].allotted);
            assert!(
                d <= CAP,
                "partition {p} moved {d} bytes in one tick: {:?} -> {:?}",
                w[0],
                w[1]
            );
        }
    }
}

#[test]
fn three_guests_share_one_pool() {
    let cfg = Config::parse(CONFIG).expect("config");
    let _serial = serial();
    let (mut grow, s0) = boot("grow");
    let (mut a, s1) = boot("a");
    let (b, s2) = boot("b");
    let guests: Vec<Guest> = [("grow", &s0), ("a", &s1), ("b", &s2)]
        .iter()
        .map(|(n, s)| Guest::attach(n, s).expect("attach"))
        .collect();
    // Small workloads in the others: their demand is 21 + 100 + 32 MiB.
    a.ok("alloc 100M");
    let mut b = b;
    b.ok("alloc 100M");
    let t = Ticker::start(Manager::new(cfg, guests).expect("manager"), TICK);
    // The initial allotments divide the whole pool: 256 MiB each. The guests
    // follow them at once.
    let initial = 256 * MIB;
    t.wait("the guests to take their first targets", 180, |l| {
        l.iter().all(|s| s.held <= initial)
    });

    // grow's workload grows in steps beyond its first allotment. The pool is all
    // allotted, so what it gets has come back from a and b (free before grant):
    // their loans grow.
    grow_in_steps(&mut grow, &t, 0, 12);
    grow.ok("verify");
    let after = t.last();
    assert!(after[0].allotted >= initial + 64 * MIB, "{after:?}");
    for s in &after[1..] {
        assert!(
            s.held <= initial - 64 * MIB,
            "partition {} loaned too little: {s:?}",
            s.partition
        );
    }
    assert_capped_rate(&t.samples());

    // It shrinks: its memory comes back, and a can take it.
    grow.ok("free all");
    t.wait("grow to give its memory back", 300, |l| {
        l[0].allotted <= 96 * MIB && l[0].held <= l[0].allotted
    });
    grow_in_steps(&mut a, &t, 1, 8);
    assert!(t.last()[1].allotted >= 320 * MIB, "{:?}", t.last());
    a.ok("verify");
    assert_capped_rate(&t.samples());

    // Σ RSS within the pool plus the per-guest overhead, at every tick.
    for s in t.samples().chunks(3) {
        let rss: u64 = s.iter().filter_map(|x| x.rss).sum();
        assert!(
            rss <= 768 * MIB + 3 * OVERHEAD_PER_GUEST,
            "Σ RSS {} MiB at tick {}",
            rss / MIB,
            s[0].tick
        );
    }

    // b dies: its memory returns to the pool, and grow and a are still served.
    drop(b);
    t.wait("b to be seen dead", 120, |l| {
        l[2].state == State::Dead && l[2].allotted == 0
    });
    grow_in_steps(&mut grow, &t, 0, 6);
    assert!(t.last()[0].allotted >= 190 * MIB, "{:?}", t.last());
    grow.ok("verify");
    a.ok("verify");
    let m = t.m.lock().unwrap();
    let sum = m.summary();
    assert_eq!(sum.get("conservation_violations"), Some("0"));
    assert_eq!(sum.get("dead"), Some("1"));
    assert_eq!(sum.get("uncooperative"), Some("0"), "{sum}");
    eprintln!("{sum}");
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| !s.contains(") Z "))
        .unwrap_or(false)
}

#[test]
fn the_manager_starts_its_guests_and_they_die_with_it() {
    let cfg = Config::parse(
        r#"
pool = "384M"
tick_ms = 100
[[partition]]
name = "a"
logical = "256M"
boot_args = "cmm.delay_ms=20 cmm.min_mem_mb=32"
[[partition]]
name = "b"
logical = "256M"
boot_args = "cmm.delay_ms=20 cmm.min_mem_mb=32"
[[event]]
at_s = 0
partition = "b"
console = "alloc 32M"
[[event]]
at_s = 0
partition = "a"
kill = true
"#,
    )
    .expect("config");
    let _serial = serial();
    let launch = lpar_pool::guest::Launch {
        qemu: "qemu-system-ppc64".into(),
        kernel: lpar_cmm_tests::kernel_path(),
        bootrom: lpar_cmm_tests::bootrom_path(),
        dir: sock("started").with_extension("d"),
    };
    let guests: Vec<Guest> = cfg
        .partitions
        .iter()
        .map(|p| Guest::start(p, &launch).expect("start"))
        .collect();
    let pids: Vec<u32> = guests.iter().map(|g| g.pid().expect("pid")).collect();
    let mut m = Manager::new(cfg, guests).expect("manager");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        m.tick();
        let l = m.last_samples();
        let b = &l[1];
        if l[0].state == State::Dead
            && b.state == State::Following
            && b.held == b.allotted
            && b.used.is_some_and(|u| u >= 32 * MIB)
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{}",
            lpar_pool::table::render(m.config(), l)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // a's memory went back to the pool: b may have all it wants.
    assert_eq!(m.last_samples()[0].allotted, 0);
    assert!(!alive(pids[0]), "the killed guest's QEMU still runs");
    let console = m.guests()[1].console();
    assert!(
        console.ready && console.ok >= 1 && console.errors == 0,
        "{console:?}"
    );
    let log =
        std::fs::read_to_string(m.guests()[1].log.as_ref().expect("log")).expect("console log");
    assert!(log.contains("lpar-cmm ready"), "{log}");
    let s = m.summary();
    assert_eq!(s.get("dead"), Some("1"));
    assert_eq!(s.get("conservation_violations"), Some("0"));
    drop(m);
    assert!(!alive(pids[1]), "a started QEMU outlived the manager");
}
