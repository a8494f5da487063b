//! Starting QEMU, talking to the console, and collecting the exit status.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::reply::Reply;

use lpar_pool::guest::{base_qemu_args, MACHINE};
const READY: &str = "lpar-cmm ready";
const PROMPT: &str = "cmm> ";

/// Which firmware boots the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Firmware {
    /// The boot ROM (`-bios`): the device tree arrives in r3.
    BootRom,
    /// SLOF (`-kernel` only): Open Firmware client interface in r5.
    Slof,
    /// VOF (`-M pseries,x-vof=on`): Open Firmware client interface in r5.
    Vof,
}

/// How to start QEMU.
#[derive(Clone, Debug)]
pub struct Builder {
    mem: String,
    append: Option<String>,
    extra: Vec<String>,
    machine_extra: Vec<String>,
    firmware: Firmware,
    endian: crate::Endian,
    timeout: Duration,
    reply_timeout: Duration,
    /// A Linux kernel and initramfs to boot instead of lpar-cmm (`make
    /// bench-linux`).
    linux: Option<(PathBuf, PathBuf)>,
    /// Another QEMU binary and its firmware directory (`-L`); `None`: the
    /// `qemu-system-ppc64` on the PATH.
    qemu: Option<(PathBuf, PathBuf)>,
}

impl Default for Builder {
    fn default() -> Self {
        Builder {
            mem: "512M".into(),
            append: None,
            extra: Vec::new(),
            machine_extra: Vec::new(),
            firmware: Firmware::BootRom,
            endian: crate::Endian::from_env(),
            timeout: Duration::from_secs(300),
            reply_timeout: Duration::from_secs(120),
            linux: None,
            qemu: None,
        }
    }
}

impl Builder {
    /// Which image to boot (default: [`crate::Endian::from_env`]).
    pub fn endian(mut self, e: crate::Endian) -> Self {
        self.endian = e;
        self
    }

    /// Boots the Linux `kernel` with `initrd` instead of lpar-cmm, under SLOF
    /// (Linux needs firmware); ready when the initramfs prints
    /// [`crate::linux::READY`] and its shell prompt.
    pub fn linux(mut self, kernel: PathBuf, initrd: PathBuf) -> Self {
        self.firmware = Firmware::Slof;
        self.linux = Some((kernel, initrd));
        self
    }

    /// Guest RAM (`-m`).
    pub fn mem(mut self, m: &str) -> Self {
        self.mem = m.into();
        self
    }

    /// Boot arguments (`-append`).
    pub fn append(mut self, a: &str) -> Self {
        self.append = Some(a.into());
        self
    }

    /// Extra QEMU arguments.
    pub fn args<I: IntoIterator<Item = S>, S: Into<String>>(mut self, a: I) -> Self {
        self.extra.extend(a.into_iter().map(Into::into));
        self
    }

    /// Adds `-device spapr-vscsi`.
    pub fn vscsi(self) -> Self {
        self.args(["-device", "spapr-vscsi"])
    }

    /// Adds a `spapr-vlan` on a hub port (no host networking).
    pub fn vlan(self) -> Self {
        self.args([
            "-netdev",
            "hubport,id=n0,hubid=0",
            "-device",
            "spapr-vlan,netdev=n0",
        ])
    }

    /// A QMP monitor on the unix socket `path` (`-qmp unix:PATH,server=on,wait=off`).
    pub fn qmp(self, path: &std::path::Path) -> Self {
        self.args([
            "-qmp".to_string(),
            format!("unix:{},server=on,wait=off", path.display()),
        ])
    }

    /// Extra `-M pseries,...` options.
    pub fn machine_opt(mut self, o: &str) -> Self {
        self.machine_extra.push(o.into());
        self
    }

    /// The firmware.
    pub fn firmware(mut self, f: Firmware) -> Self {
        self.firmware = f;
        self
    }

    /// The limit on QEMU's whole run.
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = t;
        self
    }

    /// The limit on each single wait (a reply, the ready line).
    pub fn reply_timeout(mut self, t: Duration) -> Self {
        self.reply_timeout = t;
        self
    }

    fn machine(&self) -> String {
        let mut m = MACHINE.to_string();
        if self.firmware == Firmware::Vof {
            m.push_str(",x-vof=on");
        }
        for o in &self.machine_extra {
            m.push(',');
            m.push_str(o);
        }
        m
    }

    /// The QEMU argument list (without the `timeout` wrapper).
    pub fn qemu_args(&self) -> Vec<String> {
        let mut a = base_qemu_args(&self.machine(), &self.mem);
        if self.firmware == Firmware::BootRom {
            a.push("-bios".into());
            a.push(path_str(crate::bootrom_path()));
        }
        a.push("-kernel".into());
        match &self.linux {
            Some((kernel, initrd)) => {
                a.push(path_str(kernel.clone()));
                a.push("-initrd".into());
                a.push(path_str(initrd.clone()));
            }
            None => a.push(path_str(self.endian.kernel_path())),
        }
        if let Some(ap) = &self.append {
            a.push("-append".into());
            a.push(ap.clone());
        }
        if let Some((_, data)) = &self.qemu {
            a.push("-L".into());
            a.push(path_str(data.clone()));
        }
        a.extend(self.extra.iter().cloned());
        a
    }

    /// Runs `bin` instead of the `qemu-system-ppc64` on the PATH, with `-L data`
    /// (its own firmware: SLOF, VOF).
    pub fn qemu_binary(mut self, bin: PathBuf, data: PathBuf) -> Self {
        self.qemu = Some((bin, data));
        self
    }

    fn program(&self) -> PathBuf {
        self.qemu
            .as_ref()
            .map_or_else(|| PathBuf::from("qemu-system-ppc64"), |(b, _)| b.clone())
    }

    /// Writes QEMU's own device tree for this configuration (`dumpdtb`) and
    /// returns its `dtc -O dts` text.
    pub fn qemu_dts(&self) -> String {
        let dir = std::env::temp_dir().join(format!("lpar-cmm-dtb-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let file = dir.join(format!("{:x}.dtb", rand_tag()));
        let mut b = self.clone();
        b.machine_extra.push(format!("dumpdtb={}", file.display()));
        let out = Command::new("timeout")
            .arg("60")
            .arg(b.program())
            .args(b.qemu_args())
            .stdin(Stdio::null())
            .output()
            .expect("run qemu-system-ppc64 for dumpdtb");
        assert!(
            file.exists(),
            "dumpdtb wrote nothing: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let dts = Command::new("dtc")
            .args(["-I", "dtb", "-O", "dts"])
            .arg(&file)
            .output()
            .expect("run dtc");
        let _ = std::fs::remove_file(&file);
        assert!(
            dts.status.success(),
            "dtc failed: {}",
            String::from_utf8_lossy(&dts.stderr)
        );
        String::from_utf8_lossy(&dts.stdout).into_owned()
    }

    /// Starts QEMU and waits for `lpar-cmm ready` and the first prompt.
    pub fn boot(self) -> Qemu {
        let mut q = self.start();
        q.wait_ready();
        q
    }

    /// Starts QEMU without waiting for anything.
    pub fn start(self) -> Qemu {
        let needed = match &self.linux {
            Some((kernel, initrd)) => vec![kernel.clone(), initrd.clone()],
            None => vec![self.endian.kernel_path(), crate::bootrom_path()],
        };
        for p in needed {
            assert!(
                p.exists(),
                "{} is missing: run `make kernel` first",
                p.display()
            );
        }
        if let Some((bin, _)) = &self.qemu {
            assert!(
                bin.exists(),
                "{} is missing: run `make qemu-bpo` first",
                bin.display()
            );
        }
        let mut cmd = Command::new(self.program());
        cmd.args(self.qemu_args())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // QEMU dies with the thread that started it, even if the test process is
        // killed before it can clean up.
        lpar_pool::proc::die_with_parent(&mut cmd);
        let mut child = cmd
            .spawn()
            .expect("start qemu-system-ppc64 (run `make setup`)");
        let pid = child.id();
        let limit = self.timeout;
        let watchdog = thread::spawn(move || {
            let start = Instant::now();
            while start.elapsed() < limit {
                thread::sleep(Duration::from_millis(200));
                // SAFETY: signal 0 only checks that the process exists.
                if unsafe { libc::kill(pid as libc::pid_t, 0) } != 0 {
                    return;
                }
            }
            // SAFETY: plain kill(2) of our own child.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
        });
        drop(watchdog);
        let shared = Arc::new(Shared::default());
        let mut stdout = child.stdout.take().expect("piped stdout");
        let s2 = shared.clone();
        let reader = thread::spawn(move || {
            let mut buf = [0u8; 8192];
            loop {
                match stdout.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => s2.push(&buf[..n]),
                }
            }
            s2.close();
        });
        let mut stderr = child.stderr.take().expect("piped stderr");
        let s3 = shared.clone();
        let err_reader = thread::spawn(move || {
            let mut s = String::new();
            let _ = stderr.read_to_string(&mut s);
            *s3.stderr.lock().unwrap() = s;
        });
        let stdin = child.stdin.take();
        Qemu {
            child: Some(child),
            stdin,
            shared,
            consumed: 0,
            started: Instant::now(),
            ready_at: None,
            reply_timeout: self.reply_timeout,
            threads: vec![reader, err_reader],
            ready: if self.linux.is_some() {
                (crate::linux::READY, LINUX_PROMPT)
            } else {
                (READY, PROMPT)
            },
            marks: 0,
        }
    }
}

fn path_str(p: PathBuf) -> String {
    p.to_string_lossy().into_owned()
}

fn rand_tag() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
        ^ u128::from(std::process::id())
}

#[derive(Default)]
struct Shared {
    state: Mutex<Output>,
    cv: Condvar,
    stderr: Mutex<String>,
}

#[derive(Default)]
struct Output {
    /// Every complete line so far (`\r` removed).
    lines: Vec<String>,
    /// The incomplete last line.
    partial: Vec<u8>,
    closed: bool,
}

impl Shared {
    fn push(&self, bytes: &[u8]) {
        let mut st = self.state.lock().unwrap();
        for &b in bytes {
            match b {
                b'\n' => {
                    let l = String::from_utf8_lossy(&st.partial).replace('\r', "");
                    st.partial.clear();
                    st.lines.push(l);
                }
                _ => st.partial.push(b),
            }
        }
        self.cv.notify_all();
    }

    fn close(&self) {
        let mut st = self.state.lock().unwrap();
        st.closed = true;
        self.cv.notify_all();
    }
}

/// A running QEMU with the kernel, and its console.
pub struct Qemu {
    child: Option<Child>,
    stdin: Option<ChildStdin>,
    shared: Arc<Shared>,
    /// Index of the first line not yet attributed to a command.
    consumed: usize,
    started: Instant,
    ready_at: Option<Duration>,
    reply_timeout: Duration,
    threads: Vec<thread::JoinHandle<()>>,
    /// The ready line and the prompt after it.
    ready: (&'static str, &'static str),
    /// Markers used by [`Qemu::sh`].
    marks: u64,
}

/// The Linux initramfs shell's prompt.
const LINUX_PROMPT: &str = "# ";

fn is_status(l: &str) -> bool {
    l == "ok" || l.starts_with("error:")
}

impl Qemu {
    /// A builder with the defaults (512 MiB, boot ROM, no extra devices).
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// Boots with the defaults.
    pub fn boot_default() -> Qemu {
        Builder::default().boot()
    }

    /// Host CPU time (user + system) QEMU used so far, from `/proc/<pid>/stat`.
    pub fn cpu_time(&self) -> Option<Duration> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid()?)).ok()?;
        // Fields after the parenthesised command name: state is field 3, utime 14, stime 15.
        let rest = &stat[stat.rfind(')')? + 2..];
        let f: Vec<&str> = rest.split_whitespace().collect();
        let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
        // SAFETY: sysconf has no preconditions.
        let hz = u64::try_from(unsafe { libc::sysconf(libc::_SC_CLK_TCK) }).ok()?;
        Some(Duration::from_micros(ticks * 1_000_000 / hz.max(1)))
    }

    /// Time from QEMU's start to `lpar-cmm ready`.
    pub fn boot_time(&self) -> Option<Duration> {
        self.ready_at
    }

    /// The whole console output so far.
    pub fn transcript(&self) -> String {
        let st = self.shared.state.lock().unwrap();
        let mut s = st.lines.join("\n");
        s.push('\n');
        s.push_str(&String::from_utf8_lossy(&st.partial));
        s
    }

    fn fail(&self, what: &str) -> ! {
        let t = self.transcript();
        let tail: String = {
            let lines: Vec<&str> = t.lines().collect();
            let from = lines.len().saturating_sub(80);
            lines[from..].join("\n")
        };
        let stderr = self.shared.stderr.lock().unwrap().clone();
        panic!(
            "{what}\n----- console (last 80 lines) -----\n{tail}\n----- qemu stderr -----\n{stderr}\n-----"
        );
    }

    /// Waits until `pred` holds for the output, or fails after the reply timeout.
    fn wait_for<T>(&self, what: &str, mut pred: impl FnMut(&Output) -> Option<T>) -> T {
        let deadline = Instant::now() + self.reply_timeout;
        let mut st = self.shared.state.lock().unwrap();
        loop {
            if let Some(v) = pred(&st) {
                return v;
            }
            if st.closed {
                drop(st);
                self.fail(&format!("QEMU exited while waiting for {what}"));
            }
            let now = Instant::now();
            if now >= deadline {
                drop(st);
                self.fail(&format!(
                    "timed out after {:?} waiting for {what}",
                    self.reply_timeout
                ));
            }
            st = self.shared.cv.wait_timeout(st, deadline - now).unwrap().0;
        }
    }

    /// Waits for `lpar-cmm ready` (Linux: the initramfs's ready line) and the
    /// prompt after it.
    pub fn wait_ready(&mut self) {
        let (ready, prompt) = self.ready;
        let idx = self.wait_for(&format!("`{ready}`"), |o| {
            let i = o.lines.iter().position(|l| l == ready)?;
            let prompt_seen =
                o.lines.len() > i + 1 || String::from_utf8_lossy(&o.partial).contains(prompt);
            prompt_seen.then_some(i)
        });
        self.ready_at = Some(self.started.elapsed());
        self.consumed = idx + 1;
        let count = self
            .shared
            .state
            .lock()
            .unwrap()
            .lines
            .iter()
            .filter(|l| *l == ready)
            .count();
        if count != 1 {
            self.fail(&format!("`{ready}` printed more than once"));
        }
    }

    /// Linux only: runs a shell command line and waits until it has finished
    /// (a marker echoed after it); returns the lines printed in between.
    pub fn sh(&mut self, line: &str) -> Vec<String> {
        self.marks += 1;
        // The marker is printed in two pieces, so that an echo of the command
        // line (the console may echo it while the command runs) never holds it.
        let mark = format!("bench-mark-{}", self.marks);
        self.send(format!("{line}; printf 'bench-%s\\n' mark-{}\r", self.marks).as_bytes());
        let from = self.consumed;
        let (end, lines) = self.wait_for(&format!("`{line}` to finish"), |o| {
            let rel = o.lines[from.min(o.lines.len())..]
                .iter()
                .position(|l| l.contains(&mark))?;
            let end = from + rel;
            let out = o.lines[from..end]
                .iter()
                .filter(|l| !l.contains(&mark))
                .cloned()
                .collect::<Vec<_>>();
            Some((end, out))
        });
        self.consumed = end + 1;
        lines
    }

    /// Sends raw bytes to the console.
    pub fn send(&mut self, bytes: &[u8]) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        if stdin.write_all(bytes).and_then(|_| stdin.flush()).is_err() {
            self.fail("could not write to QEMU's stdin");
        }
    }

    /// Sends bytes from a thread, for input larger than the pipe buffer.
    pub fn send_in_background(
        &mut self,
        bytes: Vec<u8>,
    ) -> thread::JoinHandle<std::io::Result<()>> {
        let mut stdin = self.stdin.take().expect("stdin open");
        thread::spawn(move || {
            stdin.write_all(&bytes)?;
            stdin.flush()?;
            Ok(())
        })
    }

    /// Gives stdin back after [`Qemu::send_in_background`].
    pub fn restore_stdin(&mut self, h: thread::JoinHandle<std::io::Result<()>>) {
        // The thread owns stdin and drops it when done; we cannot get it back, so
        // this only waits and reports errors.
        match h.join() {
            Ok(Ok(())) => {}
            _ => self.fail("background write to QEMU failed"),
        }
    }

    /// Collects the reply to the next command whose status has not been read yet.
    pub fn next_reply(&mut self, command: &str) -> Reply {
        let from = self.consumed;
        let (end, lines, status) = self.wait_for(&format!("the status line of `{command}`"), |o| {
            let rel = o.lines[from.min(o.lines.len())..]
                .iter()
                .position(|l| is_status(l))?;
            let end = from + rel;
            let lines: Vec<String> = o.lines[from..end]
                .iter()
                .filter(|l| {
                    !l.starts_with('[') && !l.starts_with(PROMPT) && l.as_str() != PROMPT.trim_end()
                })
                .cloned()
                .collect();
            Some((end, lines, o.lines[end].clone()))
        });
        self.consumed = end + 1;
        let status = if status == "ok" {
            Ok(())
        } else {
            Err(status.trim_start_matches("error:").trim().to_string())
        };
        Reply {
            command: command.to_string(),
            lines,
            status,
        }
    }

    /// Sends one command line and returns its reply.
    pub fn cmd(&mut self, line: &str) -> Reply {
        self.send(format!("{line}\r").as_bytes());
        self.next_reply(line)
    }

    /// Sends several command lines at once (no waiting between them) and returns
    /// their replies in order: much faster than one round trip each.
    pub fn cmds(&mut self, lines: &[&str]) -> Vec<Reply> {
        let mut input = String::new();
        for l in lines {
            input.push_str(l);
            input.push('\r');
        }
        self.send(input.as_bytes());
        lines.iter().map(|l| self.next_reply(l)).collect()
    }

    /// Like [`Qemu::cmds`], each command required to succeed.
    pub fn oks(&mut self, lines: &[&str]) -> Vec<Reply> {
        let replies = self.cmds(lines);
        for r in &replies {
            if let Err(e) = &r.status {
                self.fail(&format!("`{}` failed: error: {e}\n{}", r.command, r.text()));
            }
        }
        replies
    }

    /// `cmm wait <ms>`: runs until the balloon has converged, which it must, and
    /// returns the reply (rows `loaned_kb`, `loaned_target_kb`).
    pub fn cmm_wait(&mut self, ms: u64) -> Reply {
        let r = self.ok(&format!("cmm wait {ms}"));
        if r.get("loaned_kb") != r.get("loaned_target_kb") {
            self.fail(&format!("`cmm wait` did not converge:\n{}", r.text()));
        }
        r
    }

    /// Sends a command that must succeed; fails with the transcript otherwise.
    pub fn ok(&mut self, line: &str) -> Reply {
        let r = self.cmd(line);
        if let Err(e) = &r.status {
            self.fail(&format!("`{line}` failed: error: {e}\n{}", r.text()));
        }
        r
    }

    /// Sends a command that must fail; returns the error reason.
    pub fn err(&mut self, line: &str) -> String {
        let r = self.cmd(line);
        match r.status {
            Err(e) => e,
            Ok(()) => self.fail(&format!(
                "`{line}` succeeded but should have failed:\n{}",
                r.text()
            )),
        }
    }

    /// True if some log line so far contains `needle`. A log record the kernel
    /// printed while the prompt stood on the line (background work between prompt
    /// and input) follows the prompt on that line; it counts too.
    pub fn log_contains(&self, needle: &str) -> bool {
        let st = self.shared.state.lock().unwrap();
        st.lines.iter().any(|l| {
            let l = l.strip_prefix(PROMPT).unwrap_or(l);
            l.starts_with('[') && l.contains(needle)
        })
    }

    /// Lets the kernel finish hinting free memory Unused, which it does in the
    /// background after the prompt (`free frames hinted unused` in the log), so
    /// that page states and injected hcall failures are the test's alone.
    pub fn wait_hinted(&mut self) {
        for _ in 0..1000 {
            if self.log_contains("free frames hinted unused") {
                return;
            }
            self.ok("sleep 10");
        }
        panic!("free memory was not hinted unused after 1000 sleeps");
    }

    /// Waits for QEMU to exit and returns its exit code (fails after the reply timeout).
    pub fn wait_exit(&mut self) -> i32 {
        let deadline = Instant::now() + self.reply_timeout;
        let mut child = self.child.take().expect("not yet waited");
        loop {
            if let Some(st) = child.try_wait().expect("wait for qemu") {
                for t in self.threads.drain(..) {
                    let _ = t.join();
                }
                return st.code().unwrap_or(-1);
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                self.fail("QEMU did not exit");
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends `poweroff` and returns QEMU's exit code.
    pub fn poweroff(mut self) -> i32 {
        self.send(b"poweroff\r");
        self.wait_exit()
    }

    /// The QEMU process's id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// QEMU's resident set (`VmRSS` in `/proc/<pid>/status`), in KiB.
    pub fn vm_rss_kb(&self) -> u64 {
        let pid = self.pid().expect("QEMU is running");
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS in /proc/<pid>/status")
    }

    /// QEMU's stderr so far (complete only after exit).
    pub fn stderr(&self) -> String {
        self.shared.stderr.lock().unwrap().clone()
    }
}

impl Drop for Qemu {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
