//! A QMP client over a unix socket that reports every failure as a [`QmpError`]
//! (the manager must go on when one guest's monitor goes away). QMP facts the
//! manager relies on are in docs/pool-manager.md.

use std::io::{ErrorKind, Read, Write};
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
    /// No complete reply within the reply timeout (the peer may be stopped; a
    /// late reply is recognised by its id and skipped).
    Timeout(Duration),
    /// A line longer than [`MAX_REPLY`] bytes: the session is given up.
    Oversized(usize),
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
            QmpError::Garbled(l) => write!(
                f,
                "QMP sent something that is not JSON: {:?}",
                l.chars().take(200).collect::<String>()
            ),
            QmpError::Timeout(d) => write!(f, "QMP did not answer within {} ms", d.as_millis()),
            QmpError::Oversized(n) => {
                write!(
                    f,
                    "QMP sent a line of more than {n} bytes; connection dropped"
                )
            }
            QmpError::Command { command, desc } => write!(f, "QMP {command} failed: {desc}"),
        }
    }
}

impl std::error::Error for QmpError {}

/// The longest line accepted from a monitor, bytes (QEMU's replies to the
/// manager's commands are a few hundred).
pub const MAX_REPLY: usize = 1 << 20;

/// What one line from the monitor means while `command` (sent with `id`) waits
/// for its answer: `Ok(Some(value))` for its `return`, `Ok(None)` for anything
/// else that parses (an event, or the late answer to an earlier command, which
/// carries another id), `Err` for QMP's `error` or a line that is not JSON.
pub fn decode_reply(line: &str, command: &str, id: u64) -> Result<Option<Value>, QmpError> {
    let v: Value = serde_json::from_str(line).map_err(|_| QmpError::Garbled(line.to_string()))?;
    if v.get("id").is_some_and(|i| i.as_u64() != Some(id)) {
        return Ok(None);
    }
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
    stream: UnixStream,
    /// Bytes read past the last complete line.
    pending: Vec<u8>,
    path: PathBuf,
    reply_timeout: Duration,
    next_id: u64,
    /// An oversized line desynchronised the session: it is not used again.
    broken: bool,
    /// Lines received, any kind: a peer that sends anything is not stopped.
    lines: u64,
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
        let mut q = Qmp {
            stream,
            pending: Vec::new(),
            path: path.to_path_buf(),
            reply_timeout,
            next_id: 1,
            broken: false,
            lines: 0,
        };
        let greeting = match q.read_line(Instant::now() + reply_timeout) {
            Ok(g) => g,
            Err(QmpError::Closed(e)) => return Err(QmpError::NotQmp(path.to_path_buf(), e)),
            Err(QmpError::Timeout(d)) => {
                return Err(QmpError::NotQmp(
                    path.to_path_buf(),
                    format!("(nothing within {} ms)", d.as_millis()),
                ))
            }
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
        crate::proc::peer_pid(&self.stream)
    }

    /// Lines received so far (replies, late replies, events).
    pub fn lines_received(&self) -> u64 {
        self.lines
    }

    /// A second handle on the session's socket, to shut it down from another
    /// thread while this one waits for a reply.
    pub fn stream_handle(&self) -> Option<UnixStream> {
        self.stream.try_clone().ok()
    }

    /// How long each command may wait for its reply from now on.
    pub fn set_reply_timeout(&mut self, d: Duration) {
        self.reply_timeout = d;
    }

    /// One line (up to [`MAX_REPLY`] bytes) before `deadline`. A partial line
    /// read before a timeout is kept for the next call.
    fn read_line(&mut self, deadline: Instant) -> Result<String, QmpError> {
        if self.broken {
            return Err(QmpError::Closed("the session was given up".into()));
        }
        loop {
            if let Some(pos) = self.pending.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.pending.drain(..=pos).collect();
                self.lines += 1;
                return Ok(String::from_utf8_lossy(&line).into_owned());
            }
            if self.pending.len() > MAX_REPLY {
                self.broken = true;
                self.pending = Vec::new();
                return Err(QmpError::Oversized(MAX_REPLY));
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(QmpError::Timeout(self.reply_timeout));
            }
            let wait = (deadline - now).max(Duration::from_millis(1));
            self.stream
                .set_read_timeout(Some(wait))
                .map_err(|e| QmpError::Closed(e.to_string()))?;
            let mut chunk = [0u8; 8192];
            match self.stream.read(&mut chunk) {
                Ok(0) => return Err(QmpError::Closed("end of stream".into())),
                Ok(n) => self.pending.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return Err(QmpError::Timeout(self.reply_timeout));
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(QmpError::Closed(e.to_string())),
            }
        }
    }

    /// Runs `cmd` with `args` (a JSON object, if any) and returns its `return`
    /// value; events, and late answers to earlier commands (another id), in
    /// between are skipped. Waits at most the reply timeout.
    pub fn execute(&mut self, cmd: &str, args: Option<Value>) -> Result<Value, QmpError> {
        if self.broken {
            return Err(QmpError::Closed("the session was given up".into()));
        }
        let id = self.next_id;
        self.next_id += 1;
        let mut msg = serde_json::json!({ "execute": cmd, "id": id });
        if let Some(a) = args {
            msg["arguments"] = a;
        }
        let mut text = msg.to_string();
        text.push('\n');
        // A stopped peer stops reading: the write may wait as long as a reply.
        let _ = self.stream.set_write_timeout(Some(self.reply_timeout));
        if let Err(e) = self.stream.write_all(text.as_bytes()) {
            return Err(
                if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) {
                    // Part of the command may be in the socket: the session is
                    // no longer in step.
                    self.broken = true;
                    QmpError::Timeout(self.reply_timeout)
                } else {
                    QmpError::Closed(e.to_string())
                },
            );
        }
        let deadline = Instant::now() + self.reply_timeout;
        loop {
            let line = self.read_line(deadline)?;
            if let Some(r) = decode_reply(&line, cmd, id)? {
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
    use std::io::{BufRead, BufReader};
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

    /// A fake monitor that answers each command with `reply(id)` lines.
    fn serve_ids(path: &Path, replies: Vec<fn(u64) -> String>) -> std::thread::JoinHandle<()> {
        let l = UnixListener::bind(path).unwrap();
        std::thread::spawn(move || {
            let (s, _) = l.accept().unwrap();
            let mut w = s.try_clone().unwrap();
            let mut r = BufReader::new(s);
            w.write_all(HELLO.as_bytes()).unwrap();
            for reply in std::iter::once(
                (|id| format!("{{\"return\": {{}}, \"id\": {id}}}\n")) as fn(u64) -> String,
            )
            .chain(replies)
            {
                let mut line = String::new();
                if r.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                let v: Value = serde_json::from_str(&line).unwrap();
                let id = v["id"].as_u64().unwrap();
                if w.write_all(reply(id).as_bytes()).is_err() {
                    break;
                }
            }
            // Keep the connection open until the client is done.
            let mut rest = String::new();
            let _ = r.read_line(&mut rest);
        })
    }

    #[test]
    fn a_late_answer_is_skipped_by_its_id() {
        let p = sock("late");
        let _h = serve_ids(
            &p,
            vec![
                // The first query is not answered in time...
                |_| String::new(),
                // ...its answer comes before the second one's.
                |id| {
                    format!(
                        "{{\"return\": {{\"actual\": 1}}, \"id\": {}}}\n{{\"return\": {{\"actual\": 2}}, \"id\": {id}}}\n",
                        id - 1
                    )
                },
            ],
        );
        let mut q = Qmp::connect(&p, Duration::from_secs(5), Duration::from_millis(200)).unwrap();
        assert!(matches!(q.query_balloon(), Err(QmpError::Timeout(_))));
        assert_eq!(q.query_balloon().unwrap(), 2);
    }

    #[test]
    fn an_oversized_line_drops_the_session() {
        let p = sock("big");
        let _h = serve_ids(&p, vec![|_| "x".repeat(MAX_REPLY + 10)]);
        let mut q = Qmp::connect(&p, Duration::from_secs(5), Duration::from_secs(5)).unwrap();
        let e = q.query_balloon().unwrap_err();
        assert!(matches!(e, QmpError::Oversized(_)), "{e}");
        assert!(matches!(q.query_balloon(), Err(QmpError::Closed(_))));
    }

    #[test]
    fn malformed_and_unexpected_replies_are_errors() {
        let p = sock("garbled");
        let _h = serve_ids(
            &p,
            vec![
                |_| "{not json\n".to_string(),
                |id| format!("{{\"return\": {{\"actual\": \"lots\"}}, \"id\": {id}}}\n"),
                |id| format!("{{\"return\": {{\"actual\": 4096}}, \"id\": {id}}}\n"),
            ],
        );
        let mut q = Qmp::connect(&p, Duration::from_secs(5), Duration::from_secs(5)).unwrap();
        assert!(matches!(q.query_balloon(), Err(QmpError::Garbled(_))));
        assert!(matches!(q.query_balloon(), Err(QmpError::Garbled(_))));
        assert_eq!(q.query_balloon().unwrap(), 4096);
    }
}
