//! One guest's QMP session, run by a thread of its own, so that no tick of the
//! manager ever waits for a guest.
//!
//! The manager hands a [`Link`] a balloon target ([`Link::send_target`]) and asks
//! it for a poll ([`Link::ask_poll`]: QMP `query-balloon`, then the balloon
//! statistics) without blocking; the link's thread sends them when it can and
//! leaves the answer for a later tick to take ([`Link::take_answer`]). A target
//! is counted as acknowledged only once QEMU answered its `balloon` command;
//! each poll carries the number of the newest target acknowledged before its
//! `query-balloon` was sent, so the manager knows which targets the guest may
//! still be following. Only the newest target wanted is sent: one the thread
//! had no time for is replaced, never queued.
//!
//! A reply that does not come within the link's reply timeout is not given up:
//! the command is sent again (QMP ids keep a late reply from answering the wrong
//! command). A session the peer closed, or one that sent an oversized line, is
//! made again by the thread; it says so once, in [`Link::take_events`], and
//! says once more when it is connected again.

use std::net::Shutdown;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::Value;

use crate::qmp::{Qmp, QmpError};

/// One completed poll.
#[derive(Clone, Debug, PartialEq)]
pub struct Poll {
    /// The number it was asked with.
    pub number: u64,
    /// QMP `actual` (bytes), or why QEMU gave none (a QMP error, a reply that
    /// is not the figure).
    pub held: Result<u64, String>,
    /// The balloon statistics (`qom-get … guest-stats`), if QEMU gave them.
    pub stats: Option<Value>,
    /// The number of the newest target QEMU had acknowledged when the
    /// `query-balloon` was sent (0: none yet).
    pub acked_before: u64,
}

/// Where and how the link talks.
#[derive(Clone, Debug)]
pub struct Setup {
    /// The QMP socket, to connect again.
    pub sock: PathBuf,
    /// The balloon device's QOM path.
    pub balloon: String,
    /// The balloon statistics' polling interval to set, seconds.
    pub stats_interval: u32,
    /// How long one command waits for its reply before it is sent again.
    pub reply_timeout: Duration,
    /// How long to wait between two attempts to connect again.
    pub retry: Duration,
}

#[derive(Debug, Default)]
struct Shared {
    stop: bool,
    /// The target to send: (number, bytes).
    want: Option<(u64, u64)>,
    /// The newest target QEMU acknowledged: (number, bytes).
    acked: Option<(u64, u64)>,
    /// The number of the poll asked last.
    asked: u64,
    /// The last completed poll, until taken.
    answer: Option<Poll>,
    /// What happened to the session, in order, until taken.
    events: Vec<String>,
    /// The session's socket, to shut it down from outside (stop).
    stream: Option<UnixStream>,
}

type State = Arc<(Mutex<Shared>, Condvar)>;

fn lock(s: &State) -> MutexGuard<'_, Shared> {
    s.0.lock().unwrap_or_else(|e| e.into_inner())
}

/// A guest's QMP session in its own thread.
#[derive(Debug)]
pub struct Link {
    state: State,
    thread: Option<JoinHandle<()>>,
}

impl Link {
    /// Starts the thread with the session `qmp` (None: it connects first).
    pub fn spawn(qmp: Option<Qmp>, setup: Setup) -> Link {
        let state: State = Arc::new((Mutex::new(Shared::default()), Condvar::new()));
        let s2 = state.clone();
        let thread = std::thread::Builder::new()
            .name("lpar-pool-link".into())
            .spawn(move || run(&s2, qmp, &setup))
            .ok();
        if thread.is_none() {
            lock(&state)
                .events
                .push("cannot start the QMP thread: the guest is never heard".into());
        }
        Link { state, thread }
    }

    /// Asks for `bytes` as the balloon target, numbered `number` (increasing).
    /// Replaces a target not yet sent.
    pub fn send_target(&self, number: u64, bytes: u64) {
        lock(&self.state).want = Some((number, bytes));
        self.state.1.notify_all();
    }

    /// The target the guest is being given: the one wanted if it is not yet
    /// acknowledged, else the one acknowledged (bytes).
    pub fn target(&self) -> Option<u64> {
        let s = lock(&self.state);
        s.want.or(s.acked).map(|(_, b)| b)
    }

    /// The newest target QEMU acknowledged: (number, bytes).
    pub fn acked(&self) -> Option<(u64, u64)> {
        lock(&self.state).acked
    }

    /// Asks for poll `number` (increasing). One poll is answered at a time; a
    /// newer one replaces an older one not yet answered.
    pub fn ask_poll(&self, number: u64) {
        lock(&self.state).asked = number;
        self.state.1.notify_all();
    }

    /// The last completed poll, if one came since the last call.
    pub fn take_answer(&self) -> Option<Poll> {
        lock(&self.state).answer.take()
    }

    /// What happened to the session since the last call, one line each.
    pub fn take_events(&self) -> Vec<String> {
        std::mem::take(&mut lock(&self.state).events)
    }

    /// Ends the thread (a command waiting for its reply is abandoned).
    pub fn stop(&mut self) {
        {
            let mut s = lock(&self.state);
            s.stop = true;
            if let Some(st) = s.stream.take() {
                let _ = st.shutdown(Shutdown::Both);
            }
        }
        self.state.1.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.stop();
    }
}

/// How one command ended, for the thread's loop.
enum Step<T> {
    Done(T),
    /// QEMU answered, but not with what was asked (a QMP error, a figure that
    /// is not one): reported, not retried at once.
    Refused(String),
    /// No reply in time: sent again on the next round.
    Again,
    /// The session is gone: connect again.
    Broken(QmpError),
}

fn step<T>(r: Result<T, QmpError>) -> Step<T> {
    match r {
        Ok(v) => Step::Done(v),
        Err(e @ (QmpError::Command { .. } | QmpError::Garbled(_))) => Step::Refused(e.to_string()),
        Err(QmpError::Timeout(_)) => Step::Again,
        Err(e) => Step::Broken(e),
    }
}

fn run(state: &State, mut qmp: Option<Qmp>, setup: &Setup) {
    let event = |msg: String| lock(state).events.push(msg);
    let publish = |q: &Qmp| lock(state).stream = q.stream_handle();
    if let Some(q) = &qmp {
        publish(q);
    }
    let mut connected_once = qmp.is_some();
    let mut stats_set = false;
    let mut outage_told = false;
    let mut answered = 0u64;
    loop {
        // Wait for work: a target not yet acknowledged, or a poll not answered.
        let (target, poll) = {
            let mut s = lock(state);
            loop {
                if s.stop {
                    return;
                }
                let acked = s.acked.map_or(0, |(n, _)| n);
                let target = s.want.filter(|&(n, _)| n > acked);
                let poll = (s.asked > answered).then_some(s.asked);
                if target.is_some() || poll.is_some() {
                    break (target, poll);
                }
                s = state.1.wait(s).unwrap_or_else(|e| e.into_inner());
            }
        };
        if qmp.is_none() {
            match Qmp::connect(&setup.sock, Duration::ZERO, setup.reply_timeout) {
                Ok(q) => {
                    publish(&q);
                    qmp = Some(q);
                    stats_set = false;
                    outage_told = false;
                    event(if connected_once {
                        "QMP connected again".into()
                    } else {
                        "QMP connected".into()
                    });
                    connected_once = true;
                }
                Err(e) => {
                    if !outage_told {
                        event(format!("cannot connect to QMP: {e}; retrying"));
                        outage_told = true;
                    }
                    let s = lock(state);
                    if !s.stop {
                        let _ = state.1.wait_timeout(s, setup.retry);
                    }
                    continue;
                }
            }
        }
        let Some(q) = qmp.as_mut() else { continue };
        let broken = |e: QmpError| {
            let mut s = lock(state);
            s.stream = None;
            s.events.push(format!("{e}; connecting again"));
        };
        if !stats_set {
            match step(q.set_stats_interval(&setup.balloon, setup.stats_interval)) {
                Step::Done(()) => stats_set = true,
                Step::Refused(e) => {
                    event(format!("statistics not available: {e}"));
                    stats_set = true;
                }
                Step::Again => continue,
                Step::Broken(e) => {
                    broken(e);
                    qmp = None;
                    continue;
                }
            }
        }
        if let Some((n, bytes)) = target {
            match step(q.balloon(bytes)) {
                Step::Done(()) => {
                    let mut s = lock(state);
                    if s.acked.is_none_or(|(a, _)| a < n) {
                        s.acked = Some((n, bytes));
                    }
                }
                Step::Refused(e) => {
                    let mut s = lock(state);
                    s.events
                        .push(format!("balloon target {bytes} not taken: {e}"));
                    if s.want.is_some_and(|(w, _)| w == n) {
                        s.want = None;
                    }
                }
                Step::Again => continue,
                Step::Broken(e) => {
                    broken(e);
                    qmp = None;
                    continue;
                }
            }
        }
        if let Some(n) = poll {
            let acked_before = lock(state).acked.map_or(0, |(a, _)| a);
            let held = match step(q.query_balloon()) {
                Step::Done(b) => Ok(b),
                Step::Refused(e) => Err(e),
                Step::Again => continue,
                Step::Broken(e) => {
                    broken(e);
                    qmp = None;
                    continue;
                }
            };
            let stats = if held.is_ok() {
                match step(q.guest_stats(&setup.balloon)) {
                    Step::Done(v) => Some(v),
                    Step::Refused(_) => None,
                    Step::Again => continue,
                    Step::Broken(e) => {
                        broken(e);
                        qmp = None;
                        continue;
                    }
                }
            } else {
                None
            };
            answered = n;
            lock(state).answer = Some(Poll {
                number: n,
                held,
                stats,
                acked_before,
            });
        }
    }
}
