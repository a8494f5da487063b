//! A tiny QMP client over a unix socket: the host's side of the monitor, for
//! tests that play the hypervisor's operator (`balloon`, `query-balloon`).
//! Replies are returned as JSON text; [`json_u64`] picks a number out of one.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

/// A QMP session in command mode.
pub struct Qmp {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Qmp {
    /// Connects (retrying until QEMU has created the socket, up to 10 s), reads
    /// the greeting and enters command mode.
    pub fn connect(path: &Path) -> Qmp {
        let deadline = Instant::now() + Duration::from_secs(10);
        let stream = loop {
            match UnixStream::connect(path) {
                Ok(s) => break s,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => panic!("QMP connect {}: {e}", path.display()),
            }
        };
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("QMP read timeout");
        let writer = stream.try_clone().expect("QMP socket clone");
        let mut q = Qmp {
            reader: BufReader::new(stream),
            writer,
        };
        let greeting = q.read_line();
        assert!(
            greeting.contains("\"QMP\""),
            "not a QMP greeting: {greeting}"
        );
        q.execute("qmp_capabilities", None);
        q
    }

    fn read_line(&mut self) -> String {
        let mut line = String::new();
        let n = self.reader.read_line(&mut line).expect("QMP read");
        assert!(n > 0, "QMP connection closed");
        line
    }

    /// Runs `cmd` with `args` (a JSON object's text, if any) and returns the
    /// `return` reply's text; events in between are skipped; an `error` panics.
    pub fn execute(&mut self, cmd: &str, args: Option<&str>) -> String {
        let msg = match args {
            Some(a) => format!("{{\"execute\":\"{cmd}\",\"arguments\":{a}}}\n"),
            None => format!("{{\"execute\":\"{cmd}\"}}\n"),
        };
        self.writer.write_all(msg.as_bytes()).expect("QMP write");
        loop {
            let line = self.read_line();
            if line.contains("\"event\"") {
                continue;
            }
            assert!(!line.contains("\"error\""), "QMP {cmd} failed: {line}");
            if line.contains("\"return\"") {
                return line;
            }
        }
    }

    /// QMP `balloon`: the guest RAM (bytes) the host wants the guest to keep.
    pub fn balloon(&mut self, bytes: u64) {
        self.execute("balloon", Some(&format!("{{\"value\":{bytes}}}")));
    }

    /// QMP `query-balloon`: the guest RAM (bytes) the host sees the guest keep.
    pub fn query_balloon(&mut self) -> u64 {
        let r = self.execute("query-balloon", None);
        json_u64(&r, "actual").unwrap_or_else(|| panic!("no actual in {r}"))
    }
}

/// The unsigned number after `"key":` in a JSON text.
pub fn json_u64(text: &str, key: &str) -> Option<u64> {
    let pat = format!("\"{key}\"");
    let at = text.find(&pat)? + pat.len();
    let rest = text[at..].trim_start().strip_prefix(':')?.trim_start();
    let end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

#[cfg(test)]
mod tests {
    use super::json_u64;

    #[test]
    fn picks_numbers() {
        let r = r#"{"return": {"actual": 402653184}}"#;
        assert_eq!(json_u64(r, "actual"), Some(402_653_184));
        assert_eq!(json_u64(r, "nothing"), None);
    }
}
