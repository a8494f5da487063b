//! The few operating-system facts the manager needs about a QEMU process: its id
//! behind a unix socket (SO_PEERCRED), its resident set (VmRSS in
//! `/proc/<pid>/status`), and dying with the manager (PR_SET_PDEATHSIG).

use std::os::unix::io::AsRawFd;
use std::os::unix::net::UnixStream;
use std::process::Command;

/// The process id of the peer of a connected unix socket.
pub fn peer_pid(s: &UnixStream) -> Option<u32> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = libc::socklen_t::try_from(std::mem::size_of::<libc::ucred>()).ok()?;
    // SAFETY: the descriptor is a live socket owned by `s`; `cred` and `len` are
    // valid for writes of the sizes given, as getsockopt(2) requires.
    let rc = unsafe {
        libc::getsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    (rc == 0 && cred.pid > 0).then(|| cred.pid.unsigned_abs())
}

/// A process's resident set in bytes (`VmRSS`), `None` if it is gone.
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_vm_rss_kb(&status).map(|kb| kb.saturating_mul(1024))
}

/// The `VmRSS:` value (kB) of a `/proc/<pid>/status` text.
pub fn parse_vm_rss_kb(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Makes the child started by `cmd` get SIGKILL when the thread that starts it
/// exits, even if the manager is killed before it can clean up.
pub fn die_with_parent(cmd: &mut Command) {
    // SAFETY: the closure runs in the child between fork and exec and only calls
    // prctl, which is async-signal-safe.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(cmd, || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_vm_rss() {
        assert_eq!(
            parse_vm_rss_kb("Name:\tq\nVmRSS:\t  52304 kB\n"),
            Some(52304)
        );
        assert_eq!(parse_vm_rss_kb("Name:\tq\n"), None);
        assert!(rss_bytes(std::process::id()).unwrap() > 0);
    }

    #[test]
    fn peer_of_a_socket_pair_is_this_process() {
        let (a, _b) = UnixStream::pair().unwrap();
        assert_eq!(peer_pid(&a), Some(std::process::id()));
    }

    #[test]
    fn a_child_dies_with_its_parent_thread() {
        // The child is started from a thread that then exits: it must be killed.
        let h = std::thread::spawn(|| {
            let mut c = Command::new("sleep");
            c.arg("30");
            die_with_parent(&mut c);
            c.spawn().unwrap()
        });
        let mut child = h.join().unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            if let Some(st) = child.try_wait().unwrap() {
                assert!(!st.success());
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "child outlived its parent thread"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

static STOP_REQUESTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

extern "C" fn request_stop(_signal: libc::c_int) {
    // Only an atomic store: async-signal-safe.
    STOP_REQUESTED.store(true, std::sync::atomic::Ordering::SeqCst);
}

/// From now on SIGINT and SIGTERM only ask the manager to stop
/// ([`stop_requested`]), so that it ends its run cleanly: its guests shut down,
/// the trace and plot written.
pub fn stop_on_signals() {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only stores to an atomic, which is
        // async-signal-safe; `signal` has no other precondition.
        unsafe {
            libc::signal(
                sig,
                request_stop as extern "C" fn(libc::c_int) as libc::sighandler_t,
            );
        }
    }
}

/// Whether SIGINT or SIGTERM arrived since [`stop_on_signals`].
pub fn stop_requested() -> bool {
    STOP_REQUESTED.load(std::sync::atomic::Ordering::SeqCst)
}

/// Whether process `pid` exists and has not exited (a zombie has).
pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            let rest = &s[s.rfind(')')? + 1..];
            rest.split_whitespace()
                .next()
                .map(|st| st != "Z" && st != "X")
        })
        .unwrap_or(false)
}

/// CPU time a process has used (user + system), in seconds.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let ticks = parse_stat_cpu_ticks(&stat)?;
    // SAFETY: sysconf only reads a system constant.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    (hz > 0).then(|| ticks as f64 / hz as f64)
}

/// utime + stime (fields 14 and 15) of a `/proc/<pid>/stat` line; the command
/// name in parentheses may contain spaces, so fields are counted after the last `)`.
pub fn parse_stat_cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After ")": field 3 (state) is f[0], so field n is f[n - 3].
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    utime.checked_add(stime)
}

#[cfg(test)]
mod cpu_tests {
    use super::*;

    #[test]
    fn reads_cpu_ticks() {
        let s = "1234 (qemu sys ppc) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0";
        assert_eq!(parse_stat_cpu_ticks(s), Some(300));
        assert_eq!(parse_stat_cpu_ticks("garbage"), None);
        assert!(cpu_seconds(std::process::id()).is_some());
    }

    #[test]
    fn this_process_is_alive_and_a_reaped_one_is_not() {
        assert!(alive(std::process::id()));
        let mut c = std::process::Command::new("true").spawn().unwrap();
        let pid = c.id();
        c.wait().unwrap();
        assert!(!alive(pid));
    }
}
