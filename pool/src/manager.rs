//! The manager's loop body: each [`Manager::tick`] reads what every guest last
//! answered (QMP `query-balloon`, its balloon statistics) and its QEMU's RSS,
//! runs the pool policy ([`PoolPolicy`]), hands the changed balloon targets to
//! the guests' links, and records a [`Sample`] per partition. A guest whose
//! QEMU is gone is dead: its memory returns to the pool and the others go on.
//!
//! **No tick waits for a guest.** Each guest's QMP session runs in a thread of
//! its own ([`Link`]); a tick only takes the answer to the poll the previous
//! tick asked for and asks for the next, and hands new targets over without
//! waiting for QEMU to take them. A guest whose answer has not come is left out
//! of this tick (**late**: its allotment frozen, its state unchanged); one that
//! has not answered for [`silence_limit`] is **unresponsive** (stopped with
//! SIGSTOP, say): the policy freezes it with what it may hold committed, until
//! it answers again and rejoins. A session that closes while QEMU lives is made
//! again by its link (the guest is late, then unresponsive, meanwhile).
//!
//! Conservation counts what was sent: a target handed to a link stays
//! committed (`in_flight`) until a poll shows that QEMU had acknowledged a newer
//! one before the guest's balloon was read, so memory taken back from a guest
//! is granted to another only once the guest has been told and has given it.
//! Replies that are malformed or carry the id of an earlier command are not
//! taken as answers; a reply line of more than 1 MiB drops the session.

use std::time::{Duration, Instant};

use std::collections::VecDeque;

use crate::config::{Action, Config};
use crate::guest::Guest;
use crate::link::{Link, Setup};
use crate::policy::{Observation, PoolPolicy, State, TickReport, PAGE_SIZE};
use crate::stats::GuestStats;

/// Seconds between the guests' statistics reports (QEMU's polling interval).
pub const STATS_INTERVAL_S: u32 = 1;

/// One partition at the end of one tick; sizes in bytes.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// Tick number (from 1).
    pub tick: u64,
    /// Milliseconds since the manager started.
    pub t_ms: u64,
    /// Partition index.
    pub partition: usize,
    /// Where its allotment is heading.
    pub share: u64,
    /// Its allotment (balloon target).
    pub allotted: u64,
    /// What it holds (QMP `actual`).
    pub held: u64,
    /// Its QEMU's resident set.
    pub rss: Option<u64>,
    /// The demand the policy used.
    pub demand: u64,
    /// Memory in use, from its statistics.
    pub used: Option<u64>,
    /// CMO faults it reported.
    pub faults: Option<u64>,
    /// How it stands.
    pub state: State,
}

/// The run's figures.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Summary {
    /// Rows `name: value`, in order.
    pub rows: Vec<(String, String)>,
}

impl Summary {
    /// The value of a row.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.rows
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (n, v) in &self.rows {
            writeln!(f, "{n}: {v}")?;
        }
        Ok(())
    }
}

/// One guest's side of the manager: its link and the books of what was asked.
#[derive(Debug)]
struct Talk {
    /// The guest's QMP session (None once it is dead).
    link: Option<Link>,
    /// The number of the poll asked last, and when it was asked.
    asked: u64,
    asked_at: Instant,
    /// The number of the last target handed over.
    target_no: u64,
    /// Targets handed over, (number, pages), that the guest may still follow.
    targets: VecDeque<(u64, u64)>,
    /// Since when the guest has been unresponsive (None while it answers).
    silent_since: Option<Instant>,
}

impl Talk {
    fn ask(&mut self) {
        self.asked += 1;
        self.asked_at = Instant::now();
        if let Some(l) = &self.link {
            l.ask_poll(self.asked);
        }
    }

    /// The highest target (pages) the guest may still follow.
    fn in_flight(&self) -> u64 {
        self.targets.iter().map(|&(_, p)| p).max().unwrap_or(0)
    }

    /// A poll sent after target `acked_before` was acknowledged: the guest
    /// follows that one or a newer one, never an older one again.
    fn settle(&mut self, acked_before: u64) {
        if acked_before > 0 {
            self.targets.retain(|&(n, _)| n >= acked_before);
        }
    }
}

/// The pool manager.
#[derive(Debug)]
pub struct Manager {
    cfg: Config,
    policy: Box<dyn PoolPolicy>,
    talk: Vec<Talk>,
    guests: Vec<Guest>,
    /// The last statistics of each guest.
    stats: Vec<GuestStats>,
    /// Why each dead guest died (None while it lives).
    death: Vec<Option<String>>,
    ever_uncooperative: Vec<bool>,
    start: Instant,
    next_event: usize,
    samples: Vec<Sample>,
    peak_rss_total: u64,
    cpu_at_start: Vec<Option<f64>>,
    messages: Vec<String>,
    /// Times a guest became unresponsive, and times one rejoined.
    unresponsive_episodes: u64,
    rejoined: u64,
    /// Guest-ticks left out because the answer was late.
    late_answers: u64,
    /// The longest tick so far.
    longest_tick: Duration,
}

/// How long a guest may leave a poll unanswered before it is unresponsive:
/// four ticks, 1 s to 10 s.
pub fn silence_limit(tick_ms: u64) -> Duration {
    Duration::from_millis(tick_ms.saturating_mul(4).clamp(1000, 10_000))
}

/// How long a guest's link waits for one reply before it sends the command
/// again (the tick never waits for it).
pub fn link_reply_timeout(tick_ms: u64) -> Duration {
    silence_limit(tick_ms)
}

impl Manager {
    /// Takes over `guests` (one per configured partition, in order): starts
    /// their links (which turn on their statistics), asks for their first
    /// answers and hands them their initial balloon targets.
    pub fn new(cfg: Config, mut guests: Vec<Guest>) -> Result<Manager, String> {
        if guests.len() != cfg.partitions.len() {
            return Err(format!(
                "{} guests for {} partitions",
                guests.len(),
                cfg.partitions.len()
            ));
        }
        let policy = cfg.policy().map_err(|e| e.to_string())?;
        let n = guests.len();
        let cpu_at_start = guests
            .iter()
            .map(|g| g.pid().and_then(crate::proc::cpu_seconds))
            .collect();
        let tick_ms = cfg.tick_ms;
        let talk = guests
            .iter_mut()
            .map(|g| {
                let setup = Setup {
                    sock: g.sock().to_path_buf(),
                    balloon: g.balloon_path().to_string(),
                    stats_interval: STATS_INTERVAL_S,
                    reply_timeout: link_reply_timeout(tick_ms),
                    retry: Duration::from_millis(tick_ms.clamp(100, 1000)),
                };
                Talk {
                    link: Some(Link::spawn(g.take_qmp(), setup)),
                    asked: 0,
                    asked_at: Instant::now(),
                    target_no: 0,
                    targets: VecDeque::new(),
                    silent_since: None,
                }
            })
            .collect();
        let mut m = Manager {
            cfg,
            policy,
            talk,
            guests,
            stats: vec![GuestStats::default(); n],
            death: vec![None; n],
            ever_uncooperative: vec![false; n],
            start: Instant::now(),
            next_event: 0,
            samples: Vec::new(),
            peak_rss_total: 0,
            cpu_at_start,
            messages: Vec::new(),
            unresponsive_episodes: 0,
            rejoined: 0,
            late_answers: 0,
            longest_tick: Duration::ZERO,
        };
        for t in &mut m.talk {
            t.ask();
        }
        m.apply();
        Ok(m)
    }

    fn note(&mut self, msg: String) {
        self.messages.push(msg);
    }

    /// Messages since the last call (deaths, errors, events).
    pub fn take_messages(&mut self) -> Vec<String> {
        std::mem::take(&mut self.messages)
    }

    /// The policy's state.
    pub fn policy(&self) -> &dyn PoolPolicy {
        &*self.policy
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// The guests.
    pub fn guests(&self) -> &[Guest] {
        &self.guests
    }

    /// Every sample so far.
    pub fn samples(&self) -> &[Sample] {
        &self.samples
    }

    /// The samples of the last tick.
    pub fn last_samples(&self) -> &[Sample] {
        let t = self.policy.ticks();
        let from = self
            .samples
            .iter()
            .rposition(|s| s.tick != t)
            .map_or(0, |i| i + 1);
        &self.samples[from..]
    }

    /// Milliseconds since the start.
    pub fn elapsed_ms(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Whether any guest is still alive.
    pub fn any_alive(&self) -> bool {
        self.death.iter().any(Option::is_none)
    }

    fn kill_guest(&mut self, i: usize, reason: String) {
        if self.death[i].is_none() {
            self.note(format!(
                "{}: {reason}; its memory returns to the pool",
                self.guests[i].name
            ));
            self.death[i] = Some(reason);
            self.talk[i].link = None;
            self.talk[i].targets.clear();
        }
    }

    /// Runs the scripted events that are due.
    fn run_events(&mut self) {
        let now = self.elapsed_ms();
        while let Some(e) = self.cfg.events.get(self.next_event).cloned() {
            if e.at_ms > now {
                break;
            }
            self.next_event += 1;
            let name = self.guests[e.partition].name.clone();
            match e.action {
                Action::Console(line) => {
                    let r = self.guests[e.partition].send(&line);
                    self.note(match r {
                        Ok(()) => format!("{name}: console `{line}`"),
                        Err(err) => err,
                    });
                }
                Action::Kill => {
                    let r = self.guests[e.partition].kill();
                    self.note(match r {
                        Ok(()) => format!("{name}: killed (scripted)"),
                        Err(err) => err,
                    });
                }
            }
        }
    }

    /// What guest `i` said since the last tick, without waiting for it.
    fn observe(&mut self, i: usize) -> Observation {
        let dead = Observation {
            dead: true,
            ..Observation::default()
        };
        if self.death[i].is_some() {
            return dead;
        }
        if let Some(reason) = self.guests[i].gone() {
            self.kill_guest(i, reason);
            return dead;
        }
        let name = self.guests[i].name.clone();
        let (events, answer) = match &self.talk[i].link {
            Some(l) => (l.take_events(), l.take_answer()),
            None => (Vec::new(), None),
        };
        for e in events {
            self.note(format!("{name}: {e}"));
        }
        let t = &mut self.talk[i];
        let Some(poll) = answer.filter(|p| p.number == t.asked) else {
            let in_flight = t.in_flight();
            if t.asked_at.elapsed() < silence_limit(self.cfg.tick_ms) {
                self.late_answers += 1;
                return Observation {
                    late: true,
                    in_flight,
                    ..Observation::default()
                };
            }
            if t.silent_since.is_none() {
                t.silent_since = Some(t.asked_at);
                self.unresponsive_episodes += 1;
                let waited = t.asked_at.elapsed().as_secs_f64();
                self.note(format!(
                    "{name}: unresponsive (no answer for {waited:.1} s); its allotment is frozen until it answers"
                ));
            }
            return Observation {
                unresponsive: true,
                in_flight,
                ..Observation::default()
            };
        };
        let told = t
            .targets
            .iter()
            .find(|&&(n, _)| n == poll.acked_before)
            .map(|&(_, pages)| pages);
        t.settle(poll.acked_before);
        t.ask();
        let in_flight = t.in_flight();
        if let Some(since) = t.silent_since.take() {
            self.rejoined += 1;
            self.note(format!(
                "{name}: answers again after {:.1} s; it rejoins the pool",
                since.elapsed().as_secs_f64()
            ));
        }
        let held = match poll.held {
            Ok(b) => b / PAGE_SIZE,
            Err(e) => {
                // It answers, but not with a figure: nothing new this tick.
                self.note(format!("{name}: {e}"));
                return Observation {
                    in_flight,
                    ..Observation::default()
                };
            }
        };
        let mut obs = Observation {
            held: Some(held),
            told,
            in_flight,
            ..Observation::default()
        };
        if let Some(v) = poll.stats {
            let s = GuestStats::parse(&v);
            obs.used = s.used().map(|u| u / PAGE_SIZE);
            obs.pressure = s.pressure_since(&self.stats[i]);
            self.stats[i] = s;
        }
        obs
    }

    /// Hands every changed allotment to its guest's link as the balloon target,
    /// without waiting (not to an unresponsive guest: its allotment is frozen).
    fn apply(&mut self) {
        for (i, t) in self.talk.iter_mut().enumerate() {
            let p = &self.policy.partitions()[i];
            if self.death[i].is_some() || p.state == State::Dead || t.silent_since.is_some() {
                continue;
            }
            let Some(link) = &t.link else { continue };
            let bytes = p.allotment.saturating_mul(PAGE_SIZE);
            if link.target() == Some(bytes) {
                continue;
            }
            t.target_no += 1;
            t.targets.push_back((t.target_no, p.allotment));
            link.send_target(t.target_no, bytes);
        }
    }

    /// One tick: events, answers, policy, targets, samples. Waits for no guest.
    pub fn tick(&mut self) -> TickReport {
        let started = Instant::now();
        self.run_events();
        let obs: Vec<Observation> = (0..self.guests.len()).map(|i| self.observe(i)).collect();
        let report = self.policy.tick(&obs);
        self.apply();
        let t_ms = self.elapsed_ms();
        let tick = self.policy.ticks();
        let mut rss_total = 0u64;
        for (i, p) in self.policy.partitions().iter().enumerate() {
            let alive = p.state != State::Dead;
            let rss = if alive { self.guests[i].rss() } else { None };
            rss_total = rss_total.saturating_add(rss.unwrap_or(0));
            if p.state == State::Uncooperative {
                self.ever_uncooperative[i] = true;
            }
            self.samples.push(Sample {
                tick,
                t_ms,
                partition: i,
                share: p.share * PAGE_SIZE,
                allotted: p.allotment * PAGE_SIZE,
                held: p.held * PAGE_SIZE,
                rss,
                demand: p.demand * PAGE_SIZE,
                used: obs[i].used.map(|u| u * PAGE_SIZE),
                faults: if alive { self.stats[i].faults } else { None },
                state: p.state,
            });
        }
        self.peak_rss_total = self.peak_rss_total.max(rss_total);
        self.longest_tick = self.longest_tick.max(started.elapsed());
        report
    }

    /// The run's summary rows.
    pub fn summary(&self) -> Summary {
        let mut rows: Vec<(String, String)> = Vec::new();
        let mut row = |n: &str, v: String| rows.push((n.to_string(), v));
        row("guests", self.guests.len().to_string());
        row("ticks", self.policy.ticks().to_string());
        row("tick_ms", self.cfg.tick_ms.to_string());
        row("pool_bytes", self.cfg.pool.to_string());
        row(
            "logical_total_bytes",
            self.cfg
                .partitions
                .iter()
                .map(|p| p.logical)
                .sum::<u64>()
                .to_string(),
        );
        row(
            "conservation_violations",
            self.policy.violations().to_string(),
        );
        row(
            "bytes_moved",
            self.policy.moved().saturating_mul(PAGE_SIZE).to_string(),
        );
        row("peak_rss_total_bytes", self.peak_rss_total.to_string());
        row(
            "uncooperative",
            self.ever_uncooperative
                .iter()
                .filter(|&&u| u)
                .count()
                .to_string(),
        );
        row(
            "dead",
            self.death
                .iter()
                .filter(|d| d.is_some())
                .count()
                .to_string(),
        );
        row(
            "unresponsive_episodes",
            self.unresponsive_episodes.to_string(),
        );
        row("rejoined", self.rejoined.to_string());
        row("late_answers", self.late_answers.to_string());
        row("longest_tick_ms", self.longest_tick.as_millis().to_string());
        let errors: u64 = self.guests.iter().map(|g| g.console().errors).sum();
        row("console_errors", errors.to_string());
        let secs = self.start.elapsed().as_secs_f64().max(1e-3);
        for (i, g) in self.guests.iter().enumerate() {
            let cpu = match (
                self.cpu_at_start[i],
                g.pid().and_then(crate::proc::cpu_seconds),
            ) {
                (Some(a), Some(b)) if self.death[i].is_none() => {
                    format!("{:.1}", (b - a) / secs * 100.0)
                }
                _ => "-".into(),
            };
            row(&format!("cpu_percent_{}", g.name), cpu);
        }
        Summary { rows }
    }
}
