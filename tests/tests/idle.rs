//! A kernel that sleeps: on every boot path the kernel idles in
//! H_CEDE, `sleep` lasts as long as asked while the kernel cedes, Ctrl-C ends a
//! long command with `error: interrupted` and the next command answers, input
//! typed ahead arrives whole, and the idle QEMU stays under a generous CPU bound
//! (the goal figure lives in `make bench`).

use std::time::{Duration, Instant};

use lpar_cmm_tests::qmp::Qmp;
use lpar_cmm_tests::{Firmware, Qemu};

const MIB: u64 = 1 << 20;

fn boot(fw: Firmware) -> Qemu {
    Qemu::builder()
        .firmware(fw)
        .reply_timeout(Duration::from_secs(240))
        .timeout(Duration::from_secs(600))
        .boot()
}

fn sleeps_cedes_and_stops_on_ctrl_c(fw: Firmware) {
    let mut vm = boot(fw);
    let cpu = vm.ok("cpu");
    assert_eq!(cpu.get("vpa_registered"), 1, "{}", cpu.text());
    assert_eq!(cpu.field("console_input").as_deref(), Some("interrupt"));

    // sleep 2000: at least 2000 ms by the host's clock, and the kernel ceded.
    let t0 = Instant::now();
    let r = vm.ok("sleep 2000");
    let wall = t0.elapsed();
    assert!(wall >= Duration::from_millis(2000), "slept {wall:?}");
    assert!(r.get("slept_ms") >= 2000);
    let after = vm.ok("cpu");
    assert!(after.get("cedes") > cpu.get("cedes"));
    assert!(
        after.get("ceded_us") - cpu.get("ceded_us") >= 1_000_000,
        "ceded less than half of the sleep:\n{}\n{}",
        cpu.text(),
        after.text()
    );
    assert!(after.get("interrupts_decrementer") > cpu.get("interrupts_decrementer"));

    // Ctrl-C ends `sleep 100000`; the next command answers.
    vm.send(b"sleep 100000\r");
    std::thread::sleep(Duration::from_millis(500));
    vm.send(b"\x03");
    let r = vm.next_reply("sleep 100000");
    assert_eq!(r.status, Err("interrupted".to_string()), "{}", r.text());
    assert!(r.get("slept_ms") < 100_000);
    let r = vm.ok("echo still here");
    assert_eq!(r.lines, ["still here"]);

    // Idle at the prompt: QEMU's host CPU over 5 s, against a generous bound.
    let c0 = vm.cpu_time().expect("QEMU's /proc/<pid>/stat");
    let w0 = Instant::now();
    std::thread::sleep(Duration::from_secs(5));
    let used = vm.cpu_time().unwrap() - c0;
    let share = used.as_secs_f64() / w0.elapsed().as_secs_f64();
    eprintln!("{fw:?}: idle QEMU used {:.1} % of a core", share * 100.0);
    assert!(
        share <= 0.20,
        "idle QEMU used {:.1} % of a core",
        share * 100.0
    );

    // Typed ahead: 64 KiB of commands, all answered in order.
    let mut input = Vec::new();
    let mut n = 0;
    while input.len() < 64 * 1024 {
        input.extend_from_slice(format!("echo t-{n:05}\r").as_bytes());
        n += 1;
    }
    let h = vm.send_in_background(input);
    for i in 0..n {
        let r = vm.next_reply("echo");
        assert_eq!(r.lines, [format!("t-{i:05}")], "reply {i} of {n}");
    }
    vm.restore_stdin(h);
}

#[test]
fn boot_rom_sleeps_cedes_and_stops_on_ctrl_c() {
    sleeps_cedes_and_stops_on_ctrl_c(Firmware::BootRom);
}

#[test]
fn vof_sleeps_cedes_and_stops_on_ctrl_c() {
    sleeps_cedes_and_stops_on_ctrl_c(Firmware::Vof);
}

#[test]
fn slof_sleeps_cedes_and_stops_on_ctrl_c() {
    sleeps_cedes_and_stops_on_ctrl_c(Firmware::Slof);
}

#[test]
fn ctrl_c_ends_cmm_wait_and_drops_a_half_typed_line() {
    let mut vm = Qemu::boot_default();
    // A target the balloon cannot reach: `cmm wait` would time out after 100 s.
    vm.ok("cmm set min_mem_mb 500");
    vm.ok("hv target 256M");
    vm.send(b"cmm wait 100000\r");
    std::thread::sleep(Duration::from_millis(500));
    vm.send(b"\x03");
    let r = vm.next_reply("cmm wait");
    assert_eq!(r.status, Err("interrupted".to_string()), "{}", r.text());
    // Ctrl-C at the prompt drops what was typed: only `echo b` runs.
    vm.send(b"echo a\x03echo b\r");
    let r = vm.next_reply("echo b");
    assert_eq!(r.lines, ["b"]);
}

#[test]
fn a_log_line_over_the_prompt_is_followed_by_the_prompt_and_the_half_typed_line() {
    let mut vm = Qemu::builder().append("cmm.delay_ms=200").boot();
    vm.ok("trace on");
    // Half a command, then wait for trace lines (one per balloon round).
    vm.send(b"echo hal");
    std::thread::sleep(Duration::from_millis(1500));
    vm.send(b"f\r");
    let r = vm.next_reply("echo half");
    assert_eq!(
        r.lines.last().map(String::as_str),
        Some("half"),
        "{}",
        r.text()
    );
    assert!(r.lines[..r.lines.len() - 1]
        .iter()
        .all(|l| l.starts_with("trace ")));
    let t = vm.transcript();
    let lines: Vec<&str> = t.lines().collect();
    let last_trace = lines
        .iter()
        .rposition(|l| l.starts_with("trace "))
        .unwrap_or_else(|| panic!("no trace line while the prompt was shown:\n{t}"));
    // The line typed before the log line is redrawn after it, then completed.
    assert!(
        lines[last_trace + 1..].contains(&"cmm> echo half"),
        "no redrawn prompt after the log line:\n{t}"
    );
    assert!(
        lines[..last_trace].contains(&"cmm> echo hal"),
        "the log line did not start on a new line:\n{t}"
    );
}

#[test]
fn a_new_num_pages_is_taken_up_by_interrupt_not_by_the_poll() {
    let dir = std::env::temp_dir().join(format!("lpar-cmm-idle-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let sock = dir.join("qmp.sock");
    let _ = std::fs::remove_file(&sock);
    // The balloon polls every 1000 s: after its first round at boot, only the
    // device's configuration-change interrupt can start the round that follows
    // the host's new num_pages.
    let mut vm = Qemu::builder()
        .append("cmm.delay=1000 cmm.min_mem_mb=64")
        .args(["-device", "virtio-balloon-pci"])
        .qmp(&sock)
        .boot();
    let mut qmp = Qmp::connect(&sock);
    let before = vm.ok("cpu").get("interrupts_external_pci");
    qmp.balloon(448 * MIB);
    let t0 = Instant::now();
    while qmp.query_balloon() != 448 * MIB {
        assert!(
            t0.elapsed() < Duration::from_secs(100),
            "the guest did not follow the host's balloon target"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let cpu = vm.ok("cpu");
    assert!(
        cpu.get("interrupts_external_pci") > before,
        "{}",
        cpu.text()
    );
    assert_eq!(vm.ok("cmm").get("loaned_kb"), 64 * 1024);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn ctrl_c_ends_a_long_alloc_and_gives_its_pages_back() {
    let mut vm = Qemu::builder().mem("4G").boot();
    // Filling 3500 MiB takes seconds under emulation; Ctrl-C arrives long before.
    vm.send(b"alloc 3500M\r");
    std::thread::sleep(Duration::from_millis(200));
    vm.send(b"\x03");
    let r = vm.next_reply("alloc 3500M");
    assert_eq!(r.status, Err("interrupted".to_string()), "{}", r.text());
    let r = vm.ok("verify");
    assert_eq!(
        r.get("verified_pages"),
        0,
        "every page taken was freed again"
    );
}
