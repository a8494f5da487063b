//! A QMP client over a unix socket that reports every failure as a [`QmpError`]
//! (the manager must go on when one guest's monitor goes away). QMP facts the
//! manager relies on are in docs/pool-manager.md.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

/// What went wrong talking to a QMP monitor.
#[derive(Debug)]
pub enum QmpError {
    /// Nothing listens on the socket (after retrying for the connect timeout).
    Connect(PathBuf, std::io::Error),
    /// The peer did not greet with `{"QMP": ...}`: not a QMP monitor.
    NotQmp(PathBuf, String),
    /// The connection broke or closed (the QEMU process is probably gone).
    Closed(String),
    /// A reply that is not JSON.
    Garbled(String),
    /// QMP answered with an `error`.
    Command {
        /// The command.
        command: String,
        /// QMP's `desc`.
        desc: String,
    },
}

impl std::fmt::Display for QmpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            QmpError::Connect(p, e) => {
                write!(f, "cannot connect to QMP socket {}: {e}", p.display())
            }
            QmpError::NotQmp(p, g) => write!(
                f,
                "{} is not a QMP socket (it greeted with {:?})",
                p.display(),
                g.chars().take(80).collect::<String>()
            ),
            QmpError::Closed(e) => write!(f, "QMP connection lost: {e}"),
            QmpError::Garbled(l) => write!(f, "QMP sent something that is not JSON: {l:?}"),
            QmpError::Command { command, desc } => write!(f, "QMP {command} failed: {desc}"),
        }
    }
}

impl std::error::Error for QmpError {}

/// What one line from the monitor means while `command` waits for its answer:
/// `Ok(Some(value))` for its `return`, `Ok(None)` for anything else that parses
/// (an event), `Err` for QMP's `error` or a line that is not JSON.
pub fn decode_reply(line: &str, command: &str) -> Result<Option<Value>, QmpError> {
    let v: Value = serde_json::from_str(line).map_err(|_| QmpError::Garbled(line.to_string()))?;
    if let Some(r) = v.get("return") {
        return Ok(Some(r.clone()));
    }
    if let Some(e) = v.get("error") {
        return Err(QmpError::Command {
            command: command.into(),
            desc: e
                .get("desc")
                .and_then(Value::as_str)
                .unwrap_or("(no description)")
                .into(),
        });
    }
    Ok(None)
}

/// `actual` (bytes) from a `query-balloon` return value.
pub fn balloon_actual(r: &Value) -> Result<u64, QmpError> {
    r.get("actual")
        .and_then(Value::as_u64)
        .ok_or_else(|| QmpError::Garbled(r.to_string()))
}

/// A QMP session in command mode.
pub struct Qmp {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
    path: PathBuf,
}

impl std::fmt::Debug for Qmp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Qmp({})", self.path.display())
    }
}

impl Qmp {
    /// Connects (retrying for up to `wait` while the socket is not there yet),
    /// checks the greeting and enters command mode. Replies must come within
    /// `reply_timeout`.
    pub fn connect(path: &Path, wait: Duration, reply_timeout: Duration) -> Result<Qmp, QmpError> {
        let deadline = Instant::now() + wait;
        let stream = loop {
            match UnixStream::connect(path) {
                Ok(s) => break s,
                Err(_) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50))
                }
                Err(e) => return Err(QmpError::Connect(path.to_path_buf(), e)),
            }
        };
        let closed = |e: std::io::Error| QmpError::Closed(e.to_string());
        stream
            .set_read_timeout(Some(reply_timeout))
            .map_err(closed)?;
        let writer = stream.try_clone().map_err(closed)?;
        let mut q = Qmp {
            reader: BufReader::new(stream),
            writer,
            path: path.to_path_buf(),
        };
        let greeting = match q.read_line() {
            Ok(g) => g,
            Err(QmpError::Closed(e)) => return Err(QmpError::NotQmp(path.to_path_buf(), e)),
            Err(e) => return Err(e),
        };
        let is_qmp = serde_json::from_str::<Value>(&greeting)
            .map(|v| v.get("QMP").is_some())
            .unwrap_or(false);
        if !is_qmp {
            return Err(QmpError::NotQmp(path.to_path_buf(), greeting));
        }
        q.execute("qmp_capabilities", None)?;
        Ok(q)
    }

    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The peer process's id (SO_PEERCRED), for reading its RSS.
    pub fn peer_pid(&self) -> Option<u32> {
        crate::proc::peer_pid(&self.writer)
    }

    fn read_line(&mut self) -> Result<String, QmpError> {
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) => Err(QmpError::Closed("end of stream".into())),
            Ok(_) => Ok(line),
            Err(e) => Err(QmpError::Closed(e.to_string())),
        }
    }

    /// Runs `cmd` with `args` (a JSON object, if any) and returns its `return`
    /// value; events in between are skipped.
    pub fn execute(&mut self, cmd: &str, args: Option<Value>) -> Result<Value, QmpError> {
        let mut msg = serde_json::json!({ "execute": cmd });
        if let Some(a) = args {
            msg["arguments"] = a;
        }
        let mut text = msg.to_string();
        text.push('\n');
        self.writer
            .write_all(text.as_bytes())
            .map_err(|e| QmpError::Closed(e.to_string()))?;
        loop {
            let line = self.read_line()?;
            if let Some(r) = decode_reply(&line, cmd)? {
                return Ok(r);
            }
        }
    }

    /// QMP `balloon`: the guest RAM (bytes) the host wants the guest to keep.
    pub fn balloon(&mut self, bytes: u64) -> Result<(), QmpError> {
        self.execute("balloon", Some(serde_json::json!({ "value": bytes })))
            .map(drop)
    }

    /// QMP `query-balloon`: the guest RAM (bytes) the guest keeps (`actual`).
    pub fn query_balloon(&mut self) -> Result<u64, QmpError> {
        balloon_actual(&self.execute("query-balloon", None)?)
    }

    /// `qom-set <path> guest-stats-polling-interval <secs>`: asks the balloon
    /// device to collect the guest's statistics every `secs` seconds.
    pub fn set_stats_interval(&mut self, device: &str, secs: u32) -> Result<(), QmpError> {
        self.execute(
            "qom-set",
            Some(serde_json::json!({
                "path": device,
                "property": "guest-stats-polling-interval",
                "value": secs,
            })),
        )
        .map(drop)
    }

    /// `qom-get <path> guest-stats`: `{"stats": {"stat-...": n}, "last-update": t}`.
    pub fn guest_stats(&mut self, device: &str) -> Result<Value, QmpError> {
        self.execute(
            "qom-get",
            Some(serde_json::json!({ "path": device, "property": "guest-stats" })),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;

    fn sock(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("lpar-pool-qmp-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(format!("{tag}.sock"));
        let _ = std::fs::remove_file(&p);
        p
    }

    /// A fake monitor: sends `greeting`, then answers each line from `replies`.
    fn serve(
        path: &Path,
        greeting: &'static str,
        replies: Vec<&'static str>,
    ) -> std::thread::JoinHandle<Vec<String>> {
        let l = UnixListener::bind(path).unwrap();
        std::thread::spawn(move || {
            let (s, _) = l.accept().unwrap();
            let mut w = s.try_clone().unwrap();
            let mut r = BufReader::new(s);
            w.write_all(greeting.as_bytes()).unwrap();
            let mut seen = Vec::new();
            for reply in replies {
                let mut line = String::new();
                if r.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                seen.push(line);
                w.write_all(reply.as_bytes()).unwrap();
            }
            seen
        })
    }

    const HELLO: &str = "{\"QMP\": {\"version\": {}, \"capabilities\": []}}\n";
    const OK: &str = "{\"return\": {}}\n";

    #[test]
    fn commands_events_and_errors() {
        let p = sock("good");
        let h = serve(
            &p,
            HELLO,
            vec![
                OK,
                "{\"event\": \"BALLOON_CHANGE\", \"data\": {\"actual\": 1}}\n{\"return\": {\"actual\": 402653184}}\n",
                "{\"error\": {\"class\": \"GenericError\", \"desc\": \"No balloon device has been activated\"}}\n",
            ],
        );
        let mut q = Qmp::connect(&p, Duration::from_secs(5), Duration::from_secs(5)).unwrap();
        assert_eq!(q.query_balloon().unwrap(), 402_653_184);
        let e = q.balloon(1).unwrap_err();
        assert!(e.to_string().contains("No balloon device"), "{e}");
        let seen = h.join().unwrap();
        assert!(seen[0].contains("qmp_capabilities"));
        assert!(seen[2].contains("\"value\":1"));
        // The peer is gone now.
        assert!(matches!(q.query_balloon(), Err(QmpError::Closed(_))));
    }

    #[test]
    fn a_socket_that_is_not_qmp_is_named() {
        let p = sock("http");
        let _h = serve(&p, "HTTP/1.1 400 Bad Request\r\n", vec![]);
        let e = Qmp::connect(&p, Duration::from_secs(5), Duration::from_secs(5)).unwrap_err();
        assert!(matches!(e, QmpError::NotQmp(..)));
        assert!(e.to_string().contains("is not a QMP socket"), "{e}");
    }

    #[test]
    fn nothing_listening_is_a_connect_error() {
        let p = sock("none");
        let e = Qmp::connect(&p, Duration::from_millis(100), Duration::from_secs(1)).unwrap_err();
        assert!(
            e.to_string().starts_with("cannot connect to QMP socket"),
            "{e}"
        );
    }
}
