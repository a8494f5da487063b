//! The manager's loop body: each [`Manager::tick`] observes every guest (QMP
//! `query-balloon`, its balloon statistics, its QEMU's RSS), runs the
//! pool policy ([`PoolPolicy`]), sets the changed balloon targets with QMP `balloon`, and records a
//! [`Sample`] per partition. A guest whose QEMU is gone is dead: its memory
//! returns to the pool and the others go on.
//!
//! No tick waits long for one guest: each QMP command may take at most a reply
//! budget (a quarter of the tick, 200 ms to 1 s). A guest that does not answer
//! within it (stopped with SIGSTOP, say) is **unresponsive**: the policy freezes
//! its allotment, and the following ticks only probe it, with a much shorter
//! timeout, until it answers again and rejoins. A monitor connection that closes
//! while QEMU lives is connected again at the next tick (unresponsive meanwhile).
//! Replies that are malformed or carry the id of an earlier command are not
//! taken as answers; a reply line of more than 1 MiB drops the connection.

use std::time::{Duration, Instant};

use crate::config::{Action, Config};
use crate::guest::Guest;
use crate::policy::{Observation, PoolPolicy, State, TickReport, PAGE};
use crate::qmp::QmpError;
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

/// The pool manager.
#[derive(Debug)]
pub struct Manager {
    cfg: Config,
    policy: Box<dyn PoolPolicy>,
    guests: Vec<Guest>,
    /// The balloon value last sent to each guest.
    sent: Vec<Option<u64>>,
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
    /// Since when each guest has not answered (None while it answers).
    silent_since: Vec<Option<Instant>>,
    /// Times a guest became unresponsive, and times one rejoined.
    unresponsive_episodes: u64,
    rejoined: u64,
    /// The longest tick so far.
    longest_tick: Duration,
}

/// How long one QMP command of a guest that answers may take, for a tick of
/// `tick_ms`.
pub fn reply_budget(tick_ms: u64) -> Duration {
    Duration::from_millis((tick_ms / 4).clamp(200, 1000))
}

/// How long a probe of an unresponsive guest may take. A guest that sends
/// anything within it (a late reply, an event) is alive and gets the full
/// [`reply_budget`] at once.
pub fn probe_budget(tick_ms: u64) -> Duration {
    Duration::from_millis((tick_ms / 20).clamp(20, 100))
}

/// What talking to one guest this tick came to.
enum Heard {
    /// It answered.
    Answer(Observation),
    /// It did not answer in time, or its connection is being re-made.
    Silent(String),
    /// Its QEMU is gone.
    Gone(String),
}

impl Manager {
    /// Takes over `guests` (one per configured partition, in order): sets their
    /// initial balloon targets and turns on their statistics.
    pub fn new(cfg: Config, guests: Vec<Guest>) -> Result<Manager, String> {
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
        let mut m = Manager {
            cfg,
            policy,
            guests,
            sent: vec![None; n],
            stats: vec![GuestStats::default(); n],
            death: vec![None; n],
            ever_uncooperative: vec![false; n],
            start: Instant::now(),
            next_event: 0,
            samples: Vec::new(),
            peak_rss_total: 0,
            cpu_at_start,
            messages: Vec::new(),
            silent_since: vec![None; n],
            unresponsive_episodes: 0,
            rejoined: 0,
            longest_tick: Duration::ZERO,
        };
        for i in 0..n {
            let path = m.guests[i].balloon_path().to_string();
            if let Some(q) = m.guests[i].qmp() {
                if let Err(e) = q.set_stats_interval(&path, STATS_INTERVAL_S) {
                    m.note(format!(
                        "{}: statistics not available: {e}",
                        m.guests[i].name
                    ));
                }
            }
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
            self.guests[i].disconnect();
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

    /// Drops the manager's QMP connection to guest `i` (a monitor connection
    /// closing under it; the next tick connects again).
    pub fn drop_connection(&mut self, i: usize) {
        if let Some(g) = self.guests.get_mut(i) {
            g.disconnect();
        }
    }

    /// Talks to guest `i`: its balloon, then its statistics.
    fn hear(&mut self, i: usize) -> Heard {
        let tick_ms = self.cfg.tick_ms;
        let budget = if self.silent_since[i].is_some() {
            probe_budget(tick_ms)
        } else {
            reply_budget(tick_ms)
        };
        if let Some(reason) = self.guests[i].gone() {
            return Heard::Gone(reason);
        }
        if self.guests[i].qmp().is_none() {
            if let Err(e) = self.guests[i].reconnect(budget) {
                return Heard::Silent(format!("QMP connection lost, cannot connect again: {e}"));
            }
            self.note(format!("{}: QMP connected again", self.guests[i].name));
        }
        let path = self.guests[i].balloon_path().to_string();
        let Some(q) = self.guests[i].qmp() else {
            return Heard::Silent("no QMP connection".into());
        };
        q.set_reply_timeout(budget);
        let lines_before = q.lines_received();
        let mut reply = q.query_balloon();
        if matches!(reply, Err(QmpError::Timeout(_))) && q.lines_received() > lines_before {
            // It is sending again (late replies first): give it the full budget.
            q.set_reply_timeout(reply_budget(tick_ms));
            reply = q.query_balloon();
        }
        q.set_reply_timeout(reply_budget(tick_ms));
        let held = match reply {
            Ok(b) => b / PAGE,
            Err(QmpError::Timeout(d)) => {
                return Heard::Silent(format!("no answer within {} ms", d.as_millis()))
            }
            Err(e @ (QmpError::Garbled(_) | QmpError::Command { .. })) => {
                // It answers, but not with a figure: nothing new this tick.
                self.note(format!("{}: {e}", self.guests[i].name));
                return Heard::Answer(Observation::default());
            }
            Err(e) => {
                self.guests[i].disconnect();
                return match self.guests[i].gone() {
                    Some(reason) => Heard::Gone(reason),
                    None => Heard::Silent(e.to_string()),
                };
            }
        };
        let mut obs = Observation {
            held: Some(held),
            ..Observation::default()
        };
        match q.guest_stats(&path) {
            Ok(v) => {
                let s = GuestStats::parse(&v);
                obs.used = s.used().map(|u| u / PAGE);
                obs.pressure = s.pressure_since(&self.stats[i]);
                self.stats[i] = s;
            }
            Err(QmpError::Timeout(d)) => {
                return Heard::Silent(format!("no answer within {} ms", d.as_millis()))
            }
            Err(_) => {}
        }
        Heard::Answer(obs)
    }

    fn observe(&mut self, i: usize) -> Observation {
        if self.death[i].is_some() {
            return Observation {
                dead: true,
                ..Observation::default()
            };
        }
        match self.hear(i) {
            Heard::Answer(obs) => {
                if let Some(since) = self.silent_since[i].take() {
                    self.rejoined += 1;
                    self.note(format!(
                        "{}: answers again after {:.1} s; it rejoins the pool",
                        self.guests[i].name,
                        since.elapsed().as_secs_f64()
                    ));
                }
                obs
            }
            Heard::Silent(why) => {
                if self.silent_since[i].is_none() {
                    self.silent_since[i] = Some(Instant::now());
                    self.unresponsive_episodes += 1;
                    self.note(format!(
                        "{}: unresponsive ({why}); its allotment is frozen until it answers",
                        self.guests[i].name
                    ));
                }
                Observation {
                    unresponsive: true,
                    ..Observation::default()
                }
            }
            Heard::Gone(reason) => {
                self.kill_guest(i, reason);
                Observation {
                    dead: true,
                    ..Observation::default()
                }
            }
        }
    }

    /// Sends every changed allotment as the guest's balloon target (not to an
    /// unresponsive guest: its allotment is frozen, and it is sent when it
    /// answers again).
    fn apply(&mut self) {
        for i in 0..self.guests.len() {
            let p = &self.policy.partitions()[i];
            if self.death[i].is_some() || p.state == State::Dead || self.silent_since[i].is_some() {
                continue;
            }
            let bytes = p.allotment.saturating_mul(PAGE);
            if self.sent[i] == Some(bytes) {
                continue;
            }
            let Some(q) = self.guests[i].qmp() else {
                continue;
            };
            match q.balloon(bytes) {
                Ok(()) => self.sent[i] = Some(bytes),
                Err(QmpError::Timeout(_)) => {
                    // Not taken: sent again at the next tick it answers.
                    self.sent[i] = None;
                }
                Err(QmpError::Command { .. } | QmpError::Garbled(_)) => self.sent[i] = None,
                Err(e) => {
                    self.guests[i].disconnect();
                    self.sent[i] = None;
                    if let Some(reason) = self.guests[i].gone() {
                        self.kill_guest(i, reason);
                    } else {
                        let name = self.guests[i].name.clone();
                        self.note(format!("{name}: {e}; connecting again at the next tick"));
                    }
                }
            }
        }
    }

    /// One tick: events, observations, policy, targets, samples.
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
                share: p.share * PAGE,
                allotted: p.allotment * PAGE,
                held: p.held * PAGE,
                rss,
                demand: p.demand * PAGE,
                used: obs[i].used.map(|u| u * PAGE),
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
            self.policy.moved().saturating_mul(PAGE).to_string(),
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
