//! Guests for the pool manager's tests: a 512 MiB lpar-cmm guest with a
//! virtio-balloon (`balloon0`) and a QMP socket, booted by the harness so that
//! the test keeps its console while the manager attaches by the socket; and
//! the manager ticking in a thread, as `lpar-pool run` ticks it.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lpar_pool::manager::{Manager, Sample};

use crate::Qemu;

/// A fresh socket path `<tag>.sock` in a directory of this test process
/// (`group` names the directory, so tests running at once do not collide).
pub fn qmp_sock(group: &str, tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("lpar-cmm-{group}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let p = dir.join(format!("{tag}.sock"));
    let _ = std::fs::remove_file(&p);
    p
}

/// Boots guest `name` (512 MiB, balloon, QMP) and returns it with its socket.
pub fn boot(group: &str, name: &str) -> (Qemu, PathBuf) {
    let s = qmp_sock(group, name);
    let vm = Qemu::builder()
        .mem("512M")
        .append("cmm.delay_ms=20 cmm.min_mem_mb=32")
        .args(["-device", "virtio-balloon-pci,id=balloon0"])
        .qmp(&s)
        .boot();
    (vm, s)
}

/// The manager, ticking in a thread on a fixed period (as `lpar-pool run`
/// does: tick `n` is due at `start + n × period`) until dropped; the messages
/// it prints are kept.
pub struct Ticker {
    /// The manager (lock it to look).
    pub m: Arc<Mutex<Manager>>,
    stop: Arc<AtomicBool>,
    messages: Arc<Mutex<Vec<String>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Ticker {
    /// Starts ticking `m` every `period`.
    pub fn start(m: Manager, period: Duration) -> Ticker {
        let m = Arc::new(Mutex::new(m));
        let stop = Arc::new(AtomicBool::new(false));
        let messages = Arc::new(Mutex::new(Vec::new()));
        let (m2, s2, msg2) = (m.clone(), stop.clone(), messages.clone());
        let thread = std::thread::spawn(move || {
            let start = Instant::now();
            let mut n = 0u32;
            while !s2.load(Ordering::Relaxed) {
                {
                    let mut m = m2.lock().unwrap_or_else(|e| e.into_inner());
                    m.tick();
                    let new = m.take_messages();
                    msg2.lock().unwrap_or_else(|e| e.into_inner()).extend(new);
                }
                n = n.saturating_add(1);
                if let Some(w) = (start + period * n).checked_duration_since(Instant::now()) {
                    std::thread::sleep(w);
                }
            }
        });
        Ticker {
            m,
            stop,
            messages,
            thread: Some(thread),
        }
    }

    /// Waits (at most `secs`) until `pred` holds for the last tick's samples
    /// (all partitions present); returns how long that took. A timeout panics
    /// with the manager's table.
    pub fn wait(&self, what: &str, secs: u64, pred: impl Fn(&[Sample]) -> bool) -> Duration {
        let start = Instant::now();
        loop {
            {
                let m = self.m.lock().unwrap_or_else(|e| e.into_inner());
                let last = m.last_samples();
                if last.len() == m.config().partitions.len() && pred(last) {
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

    /// Every sample so far.
    pub fn samples(&self) -> Vec<Sample> {
        self.m
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .samples()
            .to_vec()
    }

    /// The last tick's samples.
    pub fn last(&self) -> Vec<Sample> {
        self.m
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .last_samples()
            .to_vec()
    }

    /// The manager's messages so far.
    pub fn messages(&self) -> Vec<String> {
        self.messages
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
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
