//! The CMM balloon over the console: loans against loaned_target, the OOM
//! notifier, the floor, page hints and statistics.

use std::collections::BTreeMap;

use lpar_cmm_tests::{Qemu, Reply};

/// A 256 MiB partition (small: first-touching a page is slow under emulation) with a fast balloon and a 64 MiB floor.
fn vm(extra: &str) -> Qemu {
    Qemu::builder()
        .mem("256M")
        .append(&format!("cmm.delay_ms=20 cmm.min_mem_mb=64 {extra}"))
        .boot()
}

fn wait(vm: &mut Qemu) -> Reply {
    vm.cmm_wait(30000)
}

/// Managed memory in KiB: MemTotal (which excludes loaned pages) + loaned.
fn total_kb(vm: &mut Qemu) -> i64 {
    let m = vm.ok("meminfo");
    let c = vm.ok("cmm");
    m.get("MemTotal") + c.get("loaned_kb")
}

#[test]
fn inflates_to_the_target_and_deflates_to_zero() {
    let mut vm = vm("");
    let before = vm.ok("meminfo").get("MemTotal");
    vm.ok("hv target 96M");
    let r = wait(&mut vm);
    assert_eq!(r.get("loaned_kb"), 96 * 1024);
    let m = vm.ok("meminfo");
    assert_eq!(
        m.get("MemTotal"),
        before - 96 * 1024,
        "loaned memory leaves MemTotal"
    );
    let hv = vm.ok("hv");
    assert_eq!(
        hv.get("self_loaned"),
        96 << 20,
        "the hypervisor sees the same loan"
    );
    let mpp = vm.ok("mpp");
    assert_eq!(mpp.get("loan_request"), 0);

    vm.ok("hv target 0");
    let r = wait(&mut vm);
    assert_eq!(r.get("loaned_kb"), 0);
    assert_eq!(vm.ok("meminfo").get("MemTotal"), before);
    assert_eq!(vm.ok("hv").get("self_loaned"), 0);
    let c = vm.ok("cmm");
    assert_eq!(c.get("pages_loaned_total"), 24576);
    assert_eq!(c.get("pages_returned_total"), 24576);
}

#[test]
fn power_off_returns_every_loan_first() {
    let mut vm = vm("");
    vm.ok("hv target 16M");
    assert_eq!(wait(&mut vm).get("loaned_kb"), 16 * 1024);
    vm.send(b"poweroff\r");
    assert_eq!(vm.wait_exit(), 0);
    assert!(
        vm.log_contains("cmm: 4096 loaned pages returned before power-off"),
        "{}",
        vm.transcript()
    );
    assert!(!vm.log_contains("still loaned"), "{}", vm.transcript());
}

#[test]
fn the_floor_clamps_a_too_large_target() {
    let mut vm = vm("");
    let total = total_kb(&mut vm);
    vm.ok("hv target 250M");
    let r = wait(&mut vm);
    assert_eq!(
        r.get("loaned_target_kb"),
        total - 64 * 1024,
        "target not clamped to total - floor"
    );
    assert_eq!(r.get("loaned_kb"), total - 64 * 1024);
    // Raising the floor returns the excess at once.
    vm.ok("cmm set min_mem_mb 128");
    let c = vm.ok("cmm");
    assert!(c.get("loaned_kb") <= total - 128 * 1024, "{}", c.text());
    let e = vm.err("cmm set min_mem_mb banana");
    assert!(
        e.contains("min_mem_mb") && e.contains("not a number"),
        "{e}"
    );
}

#[test]
fn oom_returns_oom_kb_per_event_and_reset_oom_lets_the_loan_grow() {
    let mut vm = vm("");
    let total = total_kb(&mut vm);
    // Loan all but ~32 MiB of what is above the floor... then ask for more than is free.
    let target_kb = total - 64 * 1024 - 8 * 1024;
    vm.ok(&format!("hv target {}K", target_kb));
    wait(&mut vm);
    let free_kb = vm.ok("meminfo").get("MemFree");
    let want_kb = free_kb + 4 * 1024;
    let r = vm.ok(&format!("alloc {}K", want_kb));
    assert_eq!(r.get("allocated_kb"), want_kb);
    let c = vm.ok("cmm");
    let freed = c.get("oom_freed_kb");
    assert!(freed >= 4 * 1024, "OOM gave back {freed} kB");
    assert_eq!(freed % 1024, 0, "not whole oom_kb steps");
    assert_eq!(
        freed,
        c.get("oom_events") * 1024,
        "oom_freed_kb must grow by 1024 per event"
    );
    let r = vm.ok("verify");
    assert_eq!(r.get("corrupt_pages"), 0);

    // The credit keeps the loan down...
    vm.ok("free all");
    let r = wait(&mut vm);
    assert!(r.get("loaned_kb") <= target_kb - freed, "{}", r.text());
    // ... until it is reset.
    vm.ok("cmm reset-oom");
    assert_eq!(vm.ok("cmm").get("oom_freed_kb"), 0);
    let r = wait(&mut vm);
    assert_eq!(r.get("loaned_kb"), target_kb);
}

#[test]
fn conservative_policy_keeps_the_free_list_above_maxfree() {
    let mut vm = vm("cmm.min_mem_mb=16");
    // maxfree 32 MiB, minfree 16 MiB: above the 16 MiB floor, so they bind first.
    vm.oks(&[
        "cmm set maxfree 8192",
        "cmm set minfree 4096",
        "cmm set policy conservative",
    ]);
    vm.ok("hv target 250M");
    wait(&mut vm);
    let free = vm.ok("meminfo").get("MemFree");
    assert!(free >= 8192 * 4, "free {free} kB below maxfree");
    assert!(
        free <= 8192 * 4 + 1024,
        "conservative loaned too little: free {free} kB"
    );
    // A workload that eats into the free list below minfree gets loaned pages back
    // (refilled to maxfree whenever it drops below minfree), and the balloon does
    // not loan again while the free list is under maxfree.
    let loaned = vm.ok("cmm").get("loaned_kb");
    let r = vm.ok(&format!("alloc {}K", free - 4096));
    assert_eq!(r.get("allocated_kb"), free - 4096);
    vm.ok("sleep 200");
    let free = vm.ok("meminfo").get("MemFree");
    assert!(free >= 4096 * 4, "free list below minfree: {free} kB");
    let c = vm.ok("cmm");
    assert!(c.get("loaned_kb") < loaned, "no loaned page came back");
    assert!(c.get("refill_pages_total") > 0);
    assert_eq!(c.get("oom_freed_kb"), 0, "a refill is not an OOM");
    assert_eq!(vm.ok("verify").get("corrupt_pages"), 0);
    let e = vm.err("cmm set policy greedy");
    assert!(e.contains("policy") && e.contains("aggressive"), "{e}");
}

#[test]
fn disable_returns_everything_and_stops_the_balloon() {
    let mut vm = vm("");
    vm.ok("hv target 64M");
    wait(&mut vm);
    vm.ok("cmm set disable 1");
    let c = vm.ok("cmm");
    assert_eq!(c.get("loaned_kb"), 0);
    let polls = c.get("polls");
    vm.ok("sleep 200");
    let c = vm.ok("cmm");
    assert!(
        c.get("polls") > polls,
        "the balloon did not poll while we slept"
    );
    assert_eq!(c.get("loaned_kb"), 0, "a disabled balloon loaned again");
    assert_eq!(vm.ok("hv").get("self_loaned"), 0);
    let e = vm.err("cmm set disable 2");
    assert!(e.contains("disable") && e.contains("0 or 1"), "{e}");
    // A zero poll interval would be a busy loop: refused, nothing changed.
    let before = vm.ok("cmm").get("delay_ms");
    for p in ["delay", "delay_ms"] {
        let e = vm.err(&format!("cmm set {p} 0"));
        assert!(e.contains(p) && e.contains("busy loop"), "{e}");
    }
    assert_eq!(vm.ok("cmm").get("delay_ms"), before);
    vm.ok("cmm set disable 0");
    let r = wait(&mut vm);
    assert_eq!(r.get("loaned_kb"), 64 * 1024);
    vm.ok("cmm set policy off");
    assert_eq!(vm.ok("cmm").get("loaned_kb"), 0);
}

#[test]
fn a_failed_loan_is_reported_once_and_recovered() {
    let mut vm = vm("");
    // Free memory is hinted Unused in the background after boot: let that end,
    // so that the injected failure hits a loan and not a hint.
    vm.wait_hinted();
    vm.ok("hv fail page_init 1 H_HARDWARE");
    vm.ok("hv target 32M");
    vm.ok("sleep 300");
    let r = wait(&mut vm);
    assert_eq!(r.get("loaned_kb"), 32 * 1024);
    let c = vm.ok("cmm");
    assert!(c.get("page_state_failures") >= 1);
    let t = vm.transcript();
    let reports = t
        .lines()
        .filter(|l| l.contains("loaning stopped short"))
        .count();
    assert_eq!(reports, 1, "the shortfall must be logged once:\n{t}");
    assert_eq!(
        vm.ok("hv").get("self_loaned"),
        32 << 20,
        "model and balloon disagree"
    );
}

fn rows(r: &Reply) -> BTreeMap<String, i64> {
    r.rows()
}

#[test]
fn amsstat_cmm_rows_agree_with_cmm() {
    let mut vm = vm("");
    vm.ok("hv target 16M");
    wait(&mut vm);
    let a = vm.ok("amsstat");
    let c = vm.ok("cmm");
    let text = a.text();
    let section: Vec<String> = text
        .split("CMM Statistics:")
        .nth(1)
        .expect("CMM section")
        .split("VIO Bus Statistics:")
        .next()
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    let ams = lpar_cmm_tests::reply::parse_rows(&section);
    let cmm = rows(&c);
    for k in [
        "disable",
        "debug",
        "min_mem_mb",
        "oom_kb",
        "loaned_kb",
        "loaned_target_kb",
        "oom_freed_kb",
    ] {
        let want = cmm.get(k).unwrap_or_else(|| panic!("`cmm` printed no {k}"));
        assert_eq!(ams.get(k), Some(want), "{k}");
    }
    assert_eq!(ams["loaned_kb"], 16 * 1024);
    for l in &section {
        if !l.trim().is_empty() {
            assert!(l.starts_with("     "), "amsstat row indent: {l:?}");
        }
    }
}

/// 200 random target changes with a churning workload and poison on: no page is
/// lost, double-loaned or used while loaned.
#[test]
fn random_targets_with_churn_and_poison_corrupt_nothing() {
    let mut vm = vm("cmm.poison=1");
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut rnd = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let mut held_kb = 0u64;
    for i in 0..200 {
        let mut batch = vec![format!("hv target {}K", rnd(16 * 1024 / 4) * 4)];
        match rnd(4) {
            0 if held_kb < 16 * 1024 => {
                let kb = (1 + rnd(8)) * 256;
                batch.push(format!("alloc {kb}K"));
                held_kb += kb;
            }
            1 if held_kb > 0 => {
                let kb = held_kb.min((1 + rnd(8)) * 256);
                batch.push(format!("free {kb}K"));
                held_kb -= kb;
            }
            _ => {}
        }
        batch.push(format!("sleep {}", rnd(40)));
        if i % 50 == 49 {
            batch.push("verify".into());
        }
        let lines: Vec<&str> = batch.iter().map(String::as_str).collect();
        vm.oks(&lines);
    }
    wait(&mut vm);
    let r = vm.ok("verify");
    assert_eq!(r.get("corrupt_pages"), 0);
    assert!(r.get("verified_pages") > 0);
    let c = vm.ok("cmm");
    assert_eq!(c.get("poison_errors"), 0);
    let hv = vm.ok("hv");
    assert_eq!(
        hv.get("self_loaned"),
        c.get("loaned_kb") * 1024,
        "hypervisor and balloon disagree"
    );
    assert_eq!(hv.get("loaned_touches"), 0, "a loaned page was touched");
}

/// Poison mode notices a loaned page that was written to.
#[test]
fn poison_mode_reports_a_written_loaned_page() {
    let mut vm = vm("cmm.poison=1");
    vm.ok("hv target 8M");
    wait(&mut vm);
    assert_eq!(vm.ok("verify").get("corrupt_pages"), 0);
    vm.ok("fault loaned");
    let r = vm.cmd("verify");
    assert!(
        r.status.is_err(),
        "verify missed a written loaned page:\n{}",
        r.text()
    );
    assert!(r.get("corrupt_pages") >= 1);
    assert!(r.get("poisoned_corrupt") >= 1);
    assert!(vm.ok("cmm").get("poison_errors") >= 1);
}
