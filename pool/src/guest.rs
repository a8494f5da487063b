//! One guest under QEMU as the manager sees it: started from the configuration
//! (the lpar-cmm kernel, a virtio-balloon, a QMP socket, the serial console logged
//! to a file) or attached to a running QEMU by its QMP socket. Every QEMU the
//! manager starts dies with it (killed on drop, and on the manager's death by
//! PR_SET_PDEATHSIG).

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

use crate::config::PartitionConfig;
use crate::qmp::{Qmp, QmpError};

/// The pseries machine lpar-cmm boots on (no Spectre mitigations to model).
pub const MACHINE: &str =
    "pseries,cap-cfpc=broken,cap-sbbc=broken,cap-ibs=broken,cap-ccf-assist=off";
/// The balloon's id on the command lines the manager builds.
pub const BALLOON_ID: &str = "balloon0";
/// How long to wait for a started QEMU's QMP socket.
pub const CONNECT_WAIT: Duration = Duration::from_secs(20);
/// How long one QMP reply may take.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the programs and files a started guest needs are.
#[derive(Clone, Debug)]
pub struct Launch {
    /// The QEMU binary (`qemu-system-ppc64`).
    pub qemu: PathBuf,
    /// The lpar-cmm kernel ELF.
    pub kernel: PathBuf,
    /// The boot ROM.
    pub bootrom: PathBuf,
    /// Directory for the QMP sockets and console logs.
    pub dir: PathBuf,
}

/// Why a guest could not be started or attached.
#[derive(Debug)]
pub enum GuestError {
    /// The QEMU binary is not there.
    QemuMissing(PathBuf, std::io::Error),
    /// The kernel or the boot ROM is not there.
    FileMissing(&'static str, PathBuf),
    /// QEMU exited at once.
    QemuFailed(String),
    /// The QMP socket did not work.
    Qmp(QmpError),
    /// No virtio-balloon in the attached QEMU.
    NoBalloon,
    /// Anything else from the operating system.
    Io(String),
}

impl std::fmt::Display for GuestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GuestError::QemuMissing(p, e) => write!(
                f,
                "QEMU is missing: cannot run {} ({e}); install qemu-system-ppc (`make setup`) or set QEMU=<path>",
                p.display()
            ),
            GuestError::FileMissing(what, p) => {
                write!(f, "the {what} {} is missing: run `make kernel`", p.display())
            }
            GuestError::QemuFailed(s) => write!(f, "QEMU exited at once: {s}"),
            GuestError::Qmp(e) => write!(f, "{e}"),
            GuestError::NoBalloon => write!(f, "the QEMU has no virtio-balloon device"),
            GuestError::Io(e) => f.write_str(e),
        }
    }
}

impl std::error::Error for GuestError {}

impl From<QmpError> for GuestError {
    fn from(e: QmpError) -> Self {
        GuestError::Qmp(e)
    }
}

/// What the guest's console said, as far as the manager follows it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Console {
    /// `lpar-cmm ready` was printed.
    pub ready: bool,
    /// Status lines `ok`.
    pub ok: u64,
    /// Status lines `error: ...`, with the last one.
    pub errors: u64,
    /// The last error line.
    pub last_error: Option<String>,
}

impl Console {
    /// Takes one console line.
    pub fn line(&mut self, l: &str) {
        let l = l.trim_end_matches('\r');
        let l = l.strip_prefix("cmm> ").unwrap_or(l);
        if l == "lpar-cmm ready" {
            self.ready = true;
        } else if l == "ok" {
            self.ok += 1;
        } else if l.starts_with("error:") {
            self.errors += 1;
            self.last_error = Some(l.to_string());
        }
    }
}

/// A guest the manager talks to.
pub struct Guest {
    /// Its partition name.
    pub name: String,
    qmp: Option<Qmp>,
    /// The QMP socket, to connect again after the connection was lost.
    sock: PathBuf,
    /// The balloon's QOM path.
    balloon: String,
    child: Option<Child>,
    stdin: Option<ChildStdin>,
    pid: Option<u32>,
    console: Arc<Mutex<Console>>,
    stderr: Arc<Mutex<String>>,
    /// The console log, for a started guest.
    pub log: Option<PathBuf>,
}

impl std::fmt::Debug for Guest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Guest({}, pid {:?})", self.name, self.pid)
    }
}

/// What every lpar-cmm QEMU starts with (the manager's guests and the test
/// harness's): the machine, its memory, the console on stdio, no default
/// devices, and a guest panic as a failing exit.
pub fn base_qemu_args(machine: &str, mem: &str) -> Vec<String> {
    [
        "-M",
        machine,
        "-m",
        mem,
        "-nographic",
        "-nodefaults",
        "-serial",
        "stdio",
        "-action",
        "panic=exit-failure",
    ]
    .map(String::from)
    .into()
}

/// The QEMU arguments for a partition (without the QMP socket).
pub fn qemu_args(p: &PartitionConfig, l: &Launch) -> Vec<String> {
    let mut append = p.boot_args.clone();
    if !append.split_whitespace().any(|w| w.starts_with("hv.mode=")) {
        if !append.is_empty() {
            append.push(' ');
        }
        append.push_str("hv.mode=host");
    }
    let mut a = base_qemu_args(MACHINE, &format!("{}M", p.logical >> 20));
    a.extend::<[String; _]>([
        "-device".into(),
        format!("virtio-balloon-pci,id={BALLOON_ID}"),
        "-bios".into(),
        l.bootrom.display().to_string(),
        "-kernel".into(),
        l.kernel.display().to_string(),
        "-append".into(),
        append,
    ]);
    a
}

impl Guest {
    /// Starts QEMU for `p` and connects to its QMP socket.
    pub fn start(p: &PartitionConfig, l: &Launch) -> Result<Guest, GuestError> {
        for (what, f) in [("kernel", &l.kernel), ("boot ROM", &l.bootrom)] {
            if !f.exists() {
                return Err(GuestError::FileMissing(what, f.clone()));
            }
        }
        std::fs::create_dir_all(&l.dir)
            .map_err(|e| GuestError::Io(format!("{}: {e}", l.dir.display())))?;
        let sock = l.dir.join(format!("{}.qmp", p.name));
        let _ = std::fs::remove_file(&sock);
        let log = l.dir.join(format!("{}.console.log", p.name));
        let mut cmd = Command::new(&l.qemu);
        cmd.args(qemu_args(p, l))
            .arg("-qmp")
            .arg(format!("unix:{},server=on,wait=off", sock.display()))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        crate::proc::die_with_parent(&mut cmd);
        let mut child = cmd
            .spawn()
            .map_err(|e| GuestError::QemuMissing(l.qemu.clone(), e))?;
        let pid = child.id();
        let console = Arc::new(Mutex::new(Console::default()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let out = child.stdout.take();
        let file = std::fs::File::create(&log)
            .map_err(|e| GuestError::Io(format!("{}: {e}", log.display())))?;
        let c2 = console.clone();
        std::thread::spawn(move || {
            let Some(out) = out else { return };
            let mut file = file;
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                let _ = writeln!(file, "{}", line.trim_end_matches('\r'));
                if let Ok(mut c) = c2.lock() {
                    c.line(&line);
                }
            }
        });
        let err = child.stderr.take();
        let e2 = stderr.clone();
        std::thread::spawn(move || {
            let mut s = String::new();
            if let Some(mut err) = err {
                let _ = err.read_to_string(&mut s);
            }
            if let Ok(mut e) = e2.lock() {
                *e = s;
            }
        });
        let stdin = child.stdin.take();
        let mut g = Guest {
            name: p.name.clone(),
            qmp: None,
            sock: sock.clone(),
            balloon: format!("/machine/peripheral/{BALLOON_ID}"),
            child: Some(child),
            stdin,
            pid: Some(pid),
            console,
            stderr,
            log: Some(log),
        };
        match Qmp::connect(&sock, CONNECT_WAIT, REPLY_TIMEOUT) {
            Ok(q) => {
                g.qmp = Some(q);
                Ok(g)
            }
            Err(e) => {
                if let Some(reason) = g.exited() {
                    std::thread::sleep(Duration::from_millis(100));
                    let err = g
                        .stderr
                        .lock()
                        .map(|s| s.trim().to_string())
                        .unwrap_or_default();
                    return Err(GuestError::QemuFailed(format!("{reason}: {err}")));
                }
                Err(e.into())
            }
        }
    }

    /// Attaches to a running QEMU by its QMP socket; it must have a virtio-balloon.
    pub fn attach(name: &str, sock: &Path) -> Result<Guest, GuestError> {
        let mut qmp = Qmp::connect(sock, Duration::from_secs(2), REPLY_TIMEOUT)?;
        let balloon = find_balloon(&mut qmp)?.ok_or(GuestError::NoBalloon)?;
        let pid = qmp.peer_pid();
        Ok(Guest {
            name: name.into(),
            qmp: Some(qmp),
            sock: sock.to_path_buf(),
            balloon,
            child: None,
            stdin: None,
            pid,
            console: Arc::new(Mutex::new(Console::default())),
            stderr: Arc::new(Mutex::new(String::new())),
            log: None,
        })
    }

    /// Takes the QMP session made at start or attach (the manager hands it to
    /// the guest's [`crate::link::Link`]).
    pub fn take_qmp(&mut self) -> Option<Qmp> {
        self.qmp.take()
    }

    /// The QMP socket.
    pub fn sock(&self) -> &Path {
        &self.sock
    }

    /// Names the QEMU's process when the socket is not QEMU's own (a relay in
    /// between): its RSS and CPU time are read, and its end noticed, by this pid.
    pub fn set_pid(&mut self, pid: u32) {
        self.pid = Some(pid);
    }

    /// The balloon device's QOM path.
    pub fn balloon_path(&self) -> &str {
        &self.balloon
    }

    /// The QEMU process id, if known.
    pub fn pid(&self) -> Option<u32> {
        self.pid
    }

    /// QEMU's resident set, bytes.
    pub fn rss(&self) -> Option<u64> {
        self.pid.and_then(crate::proc::rss_bytes)
    }

    /// What the console said so far.
    pub fn console(&self) -> Console {
        self.console.lock().map(|c| c.clone()).unwrap_or_default()
    }

    /// A started QEMU that has exited: how it ended.
    pub fn exited(&mut self) -> Option<String> {
        let c = self.child.as_mut()?;
        match c.try_wait() {
            Ok(Some(st)) => Some(format!("QEMU exited ({st})")),
            Ok(None) => None,
            Err(e) => Some(format!("cannot wait for QEMU: {e}")),
        }
    }

    /// Sends one console line to a started guest.
    pub fn send(&mut self, line: &str) -> Result<(), String> {
        let s = self
            .stdin
            .as_mut()
            .ok_or_else(|| format!("{}: no console (attached guest)", self.name))?;
        s.write_all(format!("{line}\r").as_bytes())
            .and_then(|()| s.flush())
            .map_err(|e| format!("{}: console: {e}", self.name))
    }

    /// Kills a started QEMU (the demo's and tests' way to lose a guest).
    pub fn kill(&mut self) -> Result<(), String> {
        match self.child.as_mut() {
            Some(c) => c.kill().map_err(|e| e.to_string()),
            None => Err(format!("{}: not started by the manager", self.name)),
        }
    }

    /// Whether the guest's QEMU is gone: a started one exited, an attached one's
    /// process no longer exists.
    pub fn gone(&mut self) -> Option<String> {
        if self.child.is_some() {
            return self.exited();
        }
        match self.pid {
            Some(pid) if !crate::proc::alive(pid) => Some(format!("QEMU (pid {pid}) is gone")),
            _ => None,
        }
    }
}

impl Drop for Guest {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The QOM path of the first virtio-balloon under `/machine/peripheral` or
/// `/machine/peripheral-anon`.
fn find_balloon(q: &mut Qmp) -> Result<Option<String>, QmpError> {
    for dir in ["/machine/peripheral", "/machine/peripheral-anon"] {
        let list = q.execute("qom-list", Some(serde_json::json!({ "path": dir })))?;
        let Some(items) = list.as_array() else {
            continue;
        };
        for it in items {
            let ty = it.get("type").and_then(Value::as_str).unwrap_or("");
            let name = it.get("name").and_then(Value::as_str).unwrap_or("");
            if ty.starts_with("child<virtio-balloon") {
                return Ok(Some(format!("{dir}/{name}")));
            }
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part() -> PartitionConfig {
        PartitionConfig {
            name: "web".into(),
            logical: 512 << 20,
            weight: 128,
            entitled: 64 << 20,
            boot_args: "cmm.delay_ms=20".into(),
            qmp: None,
        }
    }

    fn launch(qemu: &str) -> Launch {
        Launch {
            qemu: qemu.into(),
            kernel: "/bin/sh".into(),
            bootrom: "/bin/sh".into(),
            dir: std::env::temp_dir().join(format!("lpar-pool-guest-{}", std::process::id())),
        }
    }

    #[test]
    fn command_line_has_balloon_memory_and_host_mode() {
        let a = qemu_args(&part(), &launch("q"));
        let s = a.join(" ");
        assert!(s.contains("-m 512M"), "{s}");
        assert!(s.contains("virtio-balloon-pci,id=balloon0"), "{s}");
        assert_eq!(a.last().unwrap(), "cmm.delay_ms=20 hv.mode=host");
        let mut p = part();
        p.boot_args = "hv.mode=host log=debug".into();
        assert_eq!(
            qemu_args(&p, &launch("q")).last().unwrap(),
            "hv.mode=host log=debug"
        );
    }

    #[test]
    fn missing_qemu_and_kernel_are_named() {
        let e = Guest::start(&part(), &launch("/nonexistent/qemu-system-ppc64")).unwrap_err();
        assert!(e.to_string().starts_with("QEMU is missing"), "{e}");
        let mut l = launch("q");
        l.kernel = "/nonexistent/lpar-cmm".into();
        let e = Guest::start(&part(), &l).unwrap_err();
        assert!(
            e.to_string()
                .contains("kernel /nonexistent/lpar-cmm is missing"),
            "{e}"
        );
    }

    #[test]
    fn console_counts_status_lines() {
        let mut c = Console::default();
        for l in [
            "[ 0.1] boot",
            "lpar-cmm ready",
            "cmm> ok",
            "allocated_kb: 4",
            "ok\r",
            "error: out of memory",
        ] {
            c.line(l);
        }
        assert!(c.ready);
        assert_eq!((c.ok, c.errors), (2, 1));
        assert_eq!(c.last_error.as_deref(), Some("error: out of memory"));
    }
}
