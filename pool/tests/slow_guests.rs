//! No tick of the manager waits for a guest: guests whose QMP
//! monitors stall, answer late, answer out of order or close the session are
//! played by fake monitors on unix sockets, each with a fake guest that moves
//! what it holds toward QEMU's balloon target at a bounded rate. Every tick is
//! short next to the peers' delays, the other guests' targets keep moving, a
//! stalled guest is unresponsive and rejoins, a late one is only skipped, a
//! closed session is made again with one line saying so, and the memory the
//! fake guests really hold never exceeds the pool.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lpar_pool::config::Config;
use lpar_pool::guest::Guest;
use lpar_pool::manager::{Manager, Sample};
use lpar_pool::policy::State;
use serde_json::{json, Value};

const MIB: u64 = 1 << 20;
const POOL: u64 = 600 * MIB;
const TICK: Duration = Duration::from_millis(100);
/// What the fake guest may move per 10 ms.
const GUEST_STEP: u64 = MIB;
/// A figure no honest reply carries: the junk replies' `actual`.
const JUNK: u64 = 4096;

/// One fake QEMU: its monitor's misbehaviour and its guest's memory.
#[derive(Default)]
struct Ctl {
    /// The monitor reads a command but does not answer until cleared, and the
    /// guest does not move (SIGSTOP).
    stalled: AtomicBool,
    /// Each reply waits this long.
    delay_ms: AtomicU64,
    /// Before each reply: an event, and replies with another command's id.
    junk: AtomicBool,
    /// Close the session on the next command, mid-command.
    close_next: AtomicBool,
    /// Sessions closed by the monitor.
    closes: AtomicU64,
    /// Sessions accepted.
    sessions: AtomicU64,
    /// Balloon targets received.
    targets: AtomicU64,
    /// QEMU's balloon target, bytes.
    target: AtomicU64,
    /// What the guest holds, bytes.
    held: AtomicU64,
    /// What the guest uses, bytes.
    used: AtomicU64,
}

/// The fake guests of one test, and how often Σ held exceeded the pool.
struct World {
    ctl: Vec<Arc<Ctl>>,
    over_pool: Arc<AtomicU64>,
    socks: Vec<PathBuf>,
}

fn sock(test: &str, name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("lpar-pool-slow-{test}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    let p = d.join(format!("{name}.sock"));
    let _ = std::fs::remove_file(&p);
    p
}

fn reply(c: &Ctl, cmd: &str, args: &Value) -> Value {
    match cmd {
        "qmp_capabilities" | "qom-set" => json!({}),
        "qom-list" => json!([{"name": "balloon0", "type": "child<virtio-balloon-pci>"}]),
        "query-balloon" => json!({"actual": c.held.load(SeqCst)}),
        "qom-get" => {
            let held = c.held.load(SeqCst);
            let used = c.used.load(SeqCst);
            json!({"stats": {"stat-total-memory": held,
                             "stat-available-memory": held.saturating_sub(used),
                             "stat-free-memory": held.saturating_sub(used)},
                   "last-update": 1})
        }
        "balloon" => {
            c.target.store(args["value"].as_u64().unwrap_or(0), SeqCst);
            c.targets.fetch_add(1, SeqCst);
            json!({})
        }
        _ => json!({"error": {"class": "CommandNotFound", "desc": "no such command"}}),
    }
}

/// Serves one fake monitor on `path` for as long as the test runs.
fn serve(path: PathBuf, c: Arc<Ctl>) {
    let l = UnixListener::bind(&path).unwrap();
    std::thread::spawn(move || loop {
        let Ok((s, _)) = l.accept() else { return };
        c.sessions.fetch_add(1, SeqCst);
        let mut w = s.try_clone().unwrap();
        let mut r = BufReader::new(s);
        let _ = w.write_all(b"{\"QMP\": {\"version\": {}, \"capabilities\": []}}\n");
        loop {
            let mut line = String::new();
            if r.read_line(&mut line).unwrap_or(0) == 0 {
                break;
            }
            if c.close_next.swap(false, SeqCst) {
                c.closes.fetch_add(1, SeqCst);
                let _ = w.shutdown(std::net::Shutdown::Both);
                break;
            }
            while c.stalled.load(SeqCst) {
                std::thread::sleep(Duration::from_millis(5));
            }
            std::thread::sleep(Duration::from_millis(c.delay_ms.load(SeqCst)));
            let Ok(v) = serde_json::from_str::<Value>(&line) else {
                continue;
            };
            let id = v["id"].as_u64().unwrap_or(0);
            let cmd = v["execute"].as_str().unwrap_or("");
            let r = reply(&c, cmd, &v["arguments"]);
            let mut out = String::new();
            if c.junk.load(SeqCst) {
                out.push_str("{\"event\": \"BALLOON_CHANGE\", \"data\": {\"actual\": 4096}}\n");
                for other in [id + 1, id.saturating_sub(1)] {
                    out.push_str(&format!(
                        "{{\"return\": {{\"actual\": {JUNK}}}, \"id\": {other}}}\n"
                    ));
                }
            }
            let mut msg = if r.get("error").is_some() {
                r
            } else {
                json!({ "return": r })
            };
            msg["id"] = json!(id);
            out.push_str(&msg.to_string());
            out.push('\n');
            if w.write_all(out.as_bytes()).is_err() {
                break;
            }
        }
    });
}

impl World {
    /// `n` fake QEMUs holding `first` bytes each, their guests using `used`.
    fn new(test: &str, used: &[u64], first: u64) -> World {
        let ctl: Vec<Arc<Ctl>> = used
            .iter()
            .map(|&u| {
                let c = Arc::new(Ctl::default());
                c.used.store(u, SeqCst);
                c.held.store(first, SeqCst);
                c.target.store(first, SeqCst);
                c
            })
            .collect();
        let over_pool = Arc::new(AtomicU64::new(0));
        let socks: Vec<PathBuf> = (0..used.len())
            .map(|i| sock(test, &format!("g{i}")))
            .collect();
        for (p, c) in socks.iter().zip(&ctl) {
            serve(p.clone(), c.clone());
        }
        // The guests move toward their targets; Σ held is checked at every move.
        let (all, over) = (ctl.clone(), over_pool.clone());
        std::thread::spawn(move || loop {
            for c in &all {
                if c.stalled.load(SeqCst) {
                    continue;
                }
                let (h, t) = (c.held.load(SeqCst), c.target.load(SeqCst));
                let next = if h < t {
                    (h + GUEST_STEP).min(t)
                } else {
                    h.saturating_sub(GUEST_STEP).max(t)
                };
                c.held.store(next, SeqCst);
                let sum: u64 = all.iter().map(|c| c.held.load(SeqCst)).sum();
                if sum > POOL {
                    over.fetch_add(1, SeqCst);
                }
            }
            std::thread::sleep(Duration::from_millis(10));
        });
        World {
            ctl,
            over_pool,
            socks,
        }
    }

    fn manager(&self) -> Manager {
        let mut cfg = format!("pool = \"600M\"\ntick_ms = {}\n", TICK.as_millis());
        for i in 0..self.ctl.len() {
            cfg.push_str(&format!(
                "[[partition]]\nname = \"g{i}\"\nlogical = \"512M\"\n"
            ));
        }
        let guests = self
            .socks
            .iter()
            .enumerate()
            .map(|(i, s)| Guest::attach(&format!("g{i}"), s).expect("attach"))
            .collect();
        Manager::new(Config::parse(&cfg).unwrap(), guests).unwrap()
    }
}

/// Runs the manager for `secs`, one tick per TICK, calling `at(seconds)` before
/// each tick; returns each tick's length and every message.
fn run(m: &mut Manager, secs: f64, mut at: impl FnMut(f64)) -> (Vec<Duration>, Vec<String>) {
    let start = Instant::now();
    let (mut lengths, mut messages) = (Vec::new(), Vec::new());
    let mut n = 0u32;
    while start.elapsed().as_secs_f64() < secs {
        at(start.elapsed().as_secs_f64());
        let t = Instant::now();
        m.tick();
        lengths.push(t.elapsed());
        messages.extend(m.take_messages());
        n += 1;
        if let Some(w) = (start + TICK * n).checked_duration_since(Instant::now()) {
            std::thread::sleep(w);
        }
    }
    (lengths, messages)
}

fn of(m: &Manager, p: usize) -> Vec<Sample> {
    m.samples()
        .iter()
        .filter(|s| s.partition == p)
        .cloned()
        .collect()
}

fn no_violations(w: &World, m: &Manager) {
    let s = m.summary();
    assert_eq!(s.get("conservation_violations"), Some("0"), "{s}");
    assert_eq!(
        w.over_pool.load(SeqCst),
        0,
        "the fake guests held more than the pool"
    );
}

#[test]
fn a_stalled_guest_holds_up_no_tick_and_rejoins() {
    // g0's workload wants far more than its first 200 MiB; g1 and g2 little.
    let w = World::new("stall", &[450 * MIB, 40 * MIB, 40 * MIB], 200 * MIB);
    let mut m = w.manager();
    let stall = Duration::from_secs(3);
    let g1 = w.ctl[1].clone();
    let (lengths, messages) = run(&mut m, 7.0, |t| {
        g1.stalled
            .store((2.0..2.0 + stall.as_secs_f64()).contains(&t), SeqCst);
    });
    let longest = lengths.iter().max().copied().unwrap_or_default();
    assert!(
        longest * 20 < stall,
        "a tick took {longest:?}, a twentieth of the stall or more"
    );
    let g1s = of(&m, 1);
    let stalled: Vec<&Sample> = g1s
        .iter()
        .filter(|s| s.state == State::Unresponsive)
        .collect();
    assert!(
        !stalled.is_empty(),
        "the stalled guest was never unresponsive"
    );
    assert!(
        stalled.iter().all(|s| s.t_ms >= 2000),
        "unresponsive before it stalled"
    );
    assert_ne!(g1s.last().unwrap().state, State::Unresponsive, "no rejoin");
    // While it was unresponsive, g0's allotment kept rising and g1's stood.
    let (first, last) = (stalled[0].tick, stalled[stalled.len() - 1].tick);
    let at = |p: usize, tick: u64| {
        m.samples()
            .iter()
            .find(|s| s.partition == p && s.tick == tick)
            .unwrap()
            .allotted
    };
    assert!(
        at(0, last) > at(0, first),
        "g0 stood still during the stall"
    );
    assert_eq!(at(1, last), at(1, first));
    // The others' tick period, from the samples, as before the stall.
    let period = |from: u64, to: u64| {
        let mut d: Vec<u64> = of(&m, 0)
            .windows(2)
            .filter(|p| p[0].tick >= from && p[1].tick <= to)
            .map(|p| p[1].t_ms - p[0].t_ms)
            .collect();
        d.sort_unstable();
        d[d.len() / 2].max(1)
    };
    let before = period(2, first.saturating_sub(12));
    let during = period(first, last);
    assert!(
        during * 4 <= before * 5,
        "median tick period {during} ms during the stall, {before} ms before"
    );
    let lines: Vec<&String> = messages.iter().filter(|l| l.starts_with("g1:")).collect();
    assert!(
        lines.iter().any(|l| l.contains("unresponsive"))
            && lines.iter().any(|l| l.contains("rejoins")),
        "{lines:?}"
    );
    no_violations(&w, &m);
}

#[test]
fn late_and_out_of_order_answers_are_skipped_not_taken() {
    // g2 wants what it has (its demand is what it uses plus 32 MiB of
    // headroom): all g0 gets comes from g1.
    let w = World::new("late", &[450 * MIB, 40 * MIB, 168 * MIB], 200 * MIB);
    // g1 answers every command a tick and a half late; g2 mixes its answers
    // with events and with answers carrying other commands' ids. g1 starts
    // with nothing and grows toward its first target while lower ones are on
    // their way: what it may still take stays committed, or the fake guests
    // would hold more than the pool.
    let delay = 150;
    w.ctl[1].delay_ms.store(delay, SeqCst);
    w.ctl[1].held.store(0, SeqCst);
    w.ctl[2].junk.store(true, SeqCst);
    let mut m = w.manager();
    let (lengths, _) = run(&mut m, 5.0, |_| {});
    let longest = lengths.iter().max().copied().unwrap_or_default();
    assert!(
        longest * 10 < Duration::from_millis(delay),
        "a tick took {longest:?} with a guest answering {delay} ms late"
    );
    let s = m.summary();
    assert_ne!(s.get("late_answers"), Some("0"), "{s}");
    assert_eq!(s.get("unresponsive_episodes"), Some("0"), "{s}");
    // The late guest is served: its targets still reach QEMU, its allotment moves.
    let g1 = of(&m, 1);
    assert!(g1.iter().all(|s| s.state != State::Unresponsive));
    assert!(w.ctl[1].targets.load(SeqCst) >= 5);
    assert!(g1.last().unwrap().allotted < 200 * MIB, "{:?}", g1.last());
    // No answer meant for another command was taken.
    assert!(of(&m, 2).iter().all(|s| s.held != JUNK));
    assert!(of(&m, 0).last().unwrap().allotted > 200 * MIB);
    no_violations(&w, &m);
}

#[test]
fn a_session_closed_mid_command_is_made_again() {
    let w = World::new("close", &[450 * MIB, 40 * MIB, 40 * MIB], 200 * MIB);
    let mut m = w.manager();
    let c = w.ctl[2].clone();
    let targets_at_close = Arc::new(Mutex::new(0));
    let tc = targets_at_close.clone();
    let (_, messages) = run(&mut m, 4.0, |t| {
        if (1.0..1.1).contains(&t) && !c.close_next.load(SeqCst) && c.closes.load(SeqCst) == 0 {
            *tc.lock().unwrap() = c.targets.load(SeqCst);
            c.close_next.store(true, SeqCst);
        }
    });
    assert_eq!(c.closes.load(SeqCst), 1);
    assert_eq!(c.sessions.load(SeqCst), 2, "not connected again");
    let lost: Vec<&String> = messages
        .iter()
        .filter(|l| l.starts_with("g2:") && l.contains("connection lost"))
        .collect();
    assert_eq!(lost.len(), 1, "{messages:?}");
    assert!(lost[0].contains("end of stream"), "{}", lost[0]);
    assert!(
        messages.iter().any(|l| l == "g2: QMP connected again"),
        "{messages:?}"
    );
    // Targets reach it again after the new session.
    assert!(c.targets.load(SeqCst) > *targets_at_close.lock().unwrap() + 2);
    assert_ne!(of(&m, 2).last().unwrap().state, State::Unresponsive);
    no_violations(&w, &m);
}
