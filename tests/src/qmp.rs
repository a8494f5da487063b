//! The host's side of the monitor for tests that play the hypervisor's operator
//! (`balloon`, `query-balloon`): the pool manager's QMP client
//! (`lpar_pool::qmp`), with every failure a test failure.

use std::path::Path;
use std::time::{Duration, Instant};

/// A QMP session in command mode.
pub struct Qmp(lpar_pool::qmp::Qmp);

impl Qmp {
    /// Connects (retrying until QEMU has created the socket, up to 10 s), reads
    /// the greeting and enters command mode.
    pub fn connect(path: &Path) -> Qmp {
        match lpar_pool::qmp::Qmp::connect(path, Duration::from_secs(10), Duration::from_secs(30)) {
            Ok(q) => Qmp(q),
            Err(e) => panic!("{e}"),
        }
    }

    /// Runs `cmd` with `args` (a JSON object's text, if any) and returns the
    /// `return` value as JSON text; an error panics.
    pub fn execute(&mut self, cmd: &str, args: Option<&str>) -> String {
        let args = args
            .map(|a| serde_json::from_str(a).unwrap_or_else(|e| panic!("QMP arguments {a}: {e}")));
        match self.0.execute(cmd, args) {
            Ok(v) => v.to_string(),
            Err(e) => panic!("{e}"),
        }
    }

    /// QMP `balloon`: the guest RAM (bytes) the host wants the guest to keep.
    pub fn balloon(&mut self, bytes: u64) {
        if let Err(e) = self.0.balloon(bytes) {
            panic!("{e}");
        }
    }

    /// QMP `query-balloon`: the guest RAM (bytes) the host sees the guest keep.
    pub fn query_balloon(&mut self) -> u64 {
        self.0.query_balloon().unwrap_or_else(|e| panic!("{e}"))
    }

    /// Sets the guest's size with `balloon` and polls `query-balloon` every
    /// 2 ms until it shows `target`: the time that took, or the last value seen
    /// after `limit`.
    pub fn follow_balloon(&mut self, target: u64, limit: Duration) -> Result<Duration, u64> {
        self.follow_balloon_every(target, limit, Duration::from_millis(2))
    }

    /// [`Qmp::follow_balloon`], asking `query-balloon` again every `every`.
    pub fn follow_balloon_every(
        &mut self,
        target: u64,
        limit: Duration,
        every: Duration,
    ) -> Result<Duration, u64> {
        let t0 = Instant::now();
        self.balloon(target);
        let mut actual = self.query_balloon();
        while actual != target && t0.elapsed() < limit {
            std::thread::sleep(every);
            actual = self.query_balloon();
        }
        if actual == target {
            Ok(t0.elapsed())
        } else {
            Err(actual)
        }
    }

    /// The client underneath.
    pub fn inner(&mut self) -> &mut lpar_pool::qmp::Qmp {
        &mut self.0
    }
}
