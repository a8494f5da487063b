//! `lpar-pool run` ends cleanly on SIGTERM and on SIGINT: its guests shut down
//! with it, the trace (CSV) and the plot (SVG) are written and the summary is
//! printed. Starts one real guest under QEMU (the kernel comes from `make
//! kernel`; without QEMU or the kernel the test fails).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn alive(pid: u32) -> bool {
    lpar_pool::proc::alive(pid)
}

fn run_and_stop(signal: i32, tag: &str) {
    let dir = std::env::temp_dir().join(format!("lpar-pool-signal-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("pool.toml");
    std::fs::write(
        &cfg,
        r#"
pool = "256M"
tick_ms = 200
[[partition]]
name = "only"
logical = "256M"
boot_args = "cmm.delay_ms=20 cmm.min_mem_mb=32"
"#,
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_lpar-pool"))
        .arg("run")
        .arg(&cfg)
        .arg("--out")
        .arg(&dir)
        .current_dir(workspace())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("lpar-pool");
    let mut stderr = child.stderr.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let err_thread = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let out_thread = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    // Until the guest is up and the manager has ticked for a while.
    let log = dir.join("only.console.log");
    let deadline = Instant::now() + Duration::from_secs(120);
    while !std::fs::read_to_string(&log).is_ok_and(|l| l.contains("lpar-cmm ready")) {
        assert!(Instant::now() < deadline, "the guest did not boot");
        assert!(
            child.try_wait().unwrap().is_none(),
            "lpar-pool exited early"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(2));
    // SAFETY: kill(2) on the pid of the child this test started.
    let r = unsafe { libc::kill(i32::try_from(child.id()).unwrap(), signal) };
    assert_eq!(r, 0);
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        assert!(
            Instant::now() < deadline,
            "lpar-pool did not stop on the signal"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let err = err_thread.join().unwrap();
    let out = out_thread.join().unwrap();
    assert!(status.success(), "{status}\n{err}\n{out}");
    assert!(err.contains("signal received"), "{err}");
    // The guest went with it.
    let pid: u32 = err
        .lines()
        .find_map(|l| l.split("(pid ").nth(1))
        .and_then(|p| p.trim_end_matches(')').parse().ok())
        .expect("the guest's pid in the log");
    assert!(!alive(pid), "QEMU {pid} outlived the manager");
    // Trace, plot and summary.
    let csv = std::fs::read_to_string(dir.join("pool.csv")).expect("pool.csv");
    assert!(csv.lines().count() >= 3, "{csv}");
    let svg = std::fs::read_to_string(dir.join("pool.svg")).expect("pool.svg");
    assert!(svg.contains("<svg"), "no plot");
    assert!(out.contains("conservation_violations: 0"), "{out}");
}

#[test]
fn sigterm_and_sigint_end_the_run_cleanly() {
    run_and_stop(libc::SIGTERM, "term");
    run_and_stop(libc::SIGINT, "int");
}
