//! The pool manager survives its guests (issue 22), with three real guests under
//! QEMU: one is frozen with SIGSTOP for 20 s (its monitor stops answering) and
//! then continued, one is killed while its balloon moves, and the manager's QMP
//! connection to the third is closed under it. The frozen guest is marked
//! unresponsive within bounded time and rejoins when continued; no tick waits
//! long for it; the other guests' targets keep moving; conservation holds in
//! every tick.
//!
//! The guests are booted by the harness and the manager attaches to them by
//! their QMP sockets and ticks in a thread, as in tests/pool.rs.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lpar_cmm_tests::Qemu;
use lpar_pool::config::Config;
use lpar_pool::guest::Guest;
use lpar_pool::manager::{reply_budget, Manager, Sample};
use lpar_pool::policy::State;

const MIB: u64 = 1 << 20;
const TICK_MS: u64 = 250;
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

/// The manager, ticking every TICK_MS in a thread; each tick's length is kept.
struct Ticker {
    m: Arc<Mutex<Manager>>,
    stop: Arc<AtomicBool>,
    ticks: Arc<Mutex<Vec<Duration>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Ticker {
    fn start(m: Manager) -> Ticker {
        let m = Arc::new(Mutex::new(m));
        let stop = Arc::new(AtomicBool::new(false));
        let ticks = Arc::new(Mutex::new(Vec::new()));
        let (m2, s2, t2) = (m.clone(), stop.clone(), ticks.clone());
        let thread = std::thread::spawn(move || {
            while !s2.load(Ordering::Relaxed) {
                let started = Instant::now();
                m2.lock().unwrap_or_else(|e| e.into_inner()).tick();
                t2.lock().unwrap().push(started.elapsed());
                std::thread::sleep(Duration::from_millis(TICK_MS));
            }
        });
        Ticker {
            m,
            stop,
            ticks,
            thread: Some(thread),
        }
    }

    fn last(&self) -> Vec<Sample> {
        self.m.lock().unwrap().last_samples().to_vec()
    }

    /// Waits (at most `secs`) until `pred` holds for the last tick's samples.
    fn wait(&self, what: &str, secs: u64, pred: impl Fn(&[Sample]) -> bool) -> Duration {
        let start = Instant::now();
        loop {
            {
                let m = self.m.lock().unwrap();
                let last = m.last_samples();
                if last.len() == 3 && pred(last) {
                    return start.elapsed();
                }
                if start.elapsed() > Duration::from_secs(secs) {
                    let t = lpar_pool::table::render(m.config(), last);
                    panic!("timed out waiting for {what}:\n{t}");
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn longest_tick_since(&self, from: usize) -> Duration {
        let t = self.ticks.lock().unwrap();
        t[from.min(t.len())..]
            .iter()
            .copied()
            .max()
            .unwrap_or_default()
    }

    fn tick_count(&self) -> usize {
        self.ticks.lock().unwrap().len()
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[test]
fn a_frozen_a_killed_and_a_disconnected_guest() {
    let cfg = Config::parse(CONFIG).expect("config");
    let (mut a, s0) = boot("a");
    let (frozen, s1) = boot("frozen");
    let (mut killed, s2) = boot("killed");
    let guests: Vec<Guest> = [("a", &s0), ("frozen", &s1), ("killed", &s2)]
        .iter()
        .map(|(n, s)| Guest::attach(n, s).expect("attach"))
        .collect();
    killed.ok("alloc 64M");
    let t = Ticker::start(Manager::new(cfg, guests).expect("manager"));
    t.wait("the first targets", 120, |l| {
        l.iter()
            .all(|s| s.held <= FIRST && s.state == State::Following)
    });

    // A shift: a's workload grows beyond its first allotment (its demand is
    // what it uses plus 32 MiB of headroom), so memory moves to it, while the
    // others' targets fall toward their small demands.
    a.ok("alloc 160M");
    t.wait("a's target to start rising", 60, |l| l[0].allotted > FIRST);

    // Freeze one guest. The manager must notice within a bounded time without
    // any tick waiting for it much longer than one reply budget.
    let ticks_before = t.tick_count();
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

    // Close the manager's QMP connection to a under it: it connects again.
    t.m.lock().unwrap().drop_connection(0);
    t.wait("a to be served again", 30, |l| {
        l[0].state != State::Unresponsive
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

    let longest = t.longest_tick_since(ticks_before);
    assert!(
        // At worst every command of every guest takes its whole budget (two per
        // guest) and the frozen one its first: a bound in the budget, not the
        // 10 s a blocking read would wait.
        longest < 7 * reply_budget(TICK_MS) + Duration::from_secs(1),
        "a tick waited {longest:?} for a guest"
    );

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
        summary.get("rejoined").is_some_and(|r| r != "0"),
        "{summary}"
    );
    // Conservation in every tick, from the samples.
    let mut by_tick: std::collections::BTreeMap<u64, u64> = std::collections::BTreeMap::new();
    for s in m.samples() {
        if s.state != State::Dead {
            *by_tick.entry(s.tick).or_default() += s.allotted;
        }
    }
    assert!(
        by_tick.values().all(|&sum| sum <= POOL),
        "allotments exceeded the pool"
    );
    let messages = m.samples().len();
    assert!(messages > 0);
    drop(m);
    drop(t);
    let _ = killed.wait_exit();
}
