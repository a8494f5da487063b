//! The hcall shim and the model of the PowerVM shared-memory pool, over the
//! console.

use lpar_cmm_tests::Qemu;

/// A VM whose model only steps when told to (`hv step`), with a fast balloon.
/// A booted kernel that has hinted its free memory Unused (the model's page
/// counts then only move when a test moves them).
fn vm(append: &str) -> Qemu {
    let mut vm = Qemu::builder().append(append).boot();
    vm.wait_hinted();
    vm
}

#[test]
fn qemu_has_no_cmo_so_the_model_answers() {
    let mut vm = vm("");
    assert!(
        vm.log_contains("system parameter 44"),
        "CMO detection not logged"
    );
    assert!(vm.log_contains("the pool model answers"));
    let r = vm.ok("version");
    assert_eq!(r.field("hypervisor").as_deref(), Some("model"));
    assert!(r.lines[0].contains("hv=model"), "{}", r.lines[0]);
}

#[test]
fn mpp_and_lparcfg_show_the_models_values() {
    let mut vm = vm("hv.pool=768M");
    let hv = vm.ok("hv");
    let mpp = vm.ok("mpp");
    assert_eq!(mpp.get("entitled_mem"), hv.get("self_entitled"));
    assert_eq!(mpp.get("pool_size"), hv.get("pool_bytes"));
    assert_eq!(mpp.get("pool_size"), 768 << 20);
    assert_eq!(mpp.get("mem_weight"), hv.get("self_weight"));
    assert_eq!(mpp.get("mem_weight"), 128);
    assert_eq!(mpp.get("unallocated_mem_weight"), 255 - 128);
    assert_eq!(mpp.get("mapped_mem"), 0);

    let l = vm.ok("lparcfg");
    let kv: std::collections::BTreeMap<String, String> = l
        .lines
        .iter()
        .filter_map(|x| x.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert_eq!(kv["entitled_memory"], mpp.get("entitled_mem").to_string());
    assert_eq!(
        kv["entitled_memory_pool_size"],
        format!("{} bytes", 768u64 << 20)
    );
    assert_eq!(kv["entitled_memory_weight"], "128");
    assert_eq!(kv["cmo_enabled"], "1");
    assert_eq!(kv["cmo_page_size"], "4096");
    assert!(kv["backing_memory"].ends_with(" bytes"));
    // Linux's order for the MPP block.
    let keys: Vec<&str> = l
        .lines
        .iter()
        .filter_map(|x| x.split_once('='))
        .map(|(k, _)| k)
        .collect();
    let pos = |k: &str| {
        keys.iter()
            .position(|x| *x == k)
            .unwrap_or_else(|| panic!("{k} missing"))
    };
    assert!(pos("entitled_memory") < pos("mapped_entitled_memory"));
    assert!(pos("entitled_memory_pool_size") < pos("entitled_memory_loan_request"));
    assert!(pos("entitled_memory_loan_request") < pos("backing_memory"));
    assert!(pos("backing_memory") < pos("cmo_enabled"));
}

#[test]
fn mpp_weight_is_checked_and_set() {
    let mut vm = vm("");
    let r = vm.ok("mpp weight 200");
    assert_eq!(r.field("outcome").as_deref(), Some("set"));
    assert_eq!(vm.ok("mpp").get("mem_weight"), 200);
    let e = vm.err("mpp weight 300");
    assert!(e.contains("0-255"), "{e}");
    assert_eq!(
        vm.ok("mpp").get("mem_weight"),
        200,
        "a refused weight changed state"
    );
    assert_eq!(vm.ok("hv").get("self_weight"), 200);
    assert!(vm.err("mpp weight -1").contains("bad"));
}

/// The balloon polls H_GET_MPP in the background too, and an injected failure goes
/// to whichever call comes first; so the balloon is disabled here, and the model's
/// `injected_failures` count shows that each failure reached the command under test.
#[test]
fn injected_failures_reach_the_caller_as_typed_errors() {
    let mut vm = vm("");
    vm.ok("cmm set disable 1");
    let fired = |vm: &mut Qemu| vm.ok("hv").get("injected_failures");
    assert_eq!(fired(&mut vm), 0);
    vm.ok("hv fail get_mpp 1 H_HARDWARE");
    let e = vm.err("mpp");
    assert!(
        e.contains("H_GET_MPP") && e.contains("H_HARDWARE (-1)"),
        "{e}"
    );
    assert_eq!(fired(&mut vm), 1);
    // The next call is not failed any more.
    vm.ok("mpp");
    assert_eq!(fired(&mut vm), 1);
    // A couple of busy answers are absorbed by the retry policy: `mpp` met both.
    vm.ok("hv fail get_mpp 2 H_BUSY");
    vm.ok("mpp");
    assert_eq!(fired(&mut vm), 3);
    // ... but not an endless stream: it gives up after its bound.
    vm.ok("hv fail get_mpp 1000 H_BUSY");
    let e = vm.err("mpp");
    assert!(e.contains("H_GET_MPP") && e.contains("H_BUSY"), "{e}");
    let gave_up_after = fired(&mut vm) - 3;
    assert!(
        (2..1000).contains(&gave_up_after),
        "retried {gave_up_after} times"
    );
    // The disabled balloon made no call of its own.
    let cmm = vm.ok("cmm");
    assert_eq!(cmm.get("get_mpp_failures"), 0);
    assert!(vm
        .err("hv fail get_mpp 1 H_NONSENSE")
        .contains("H_NONSENSE"));
    assert!(vm.err("hv fail nonsense 1 H_BUSY").contains("nonsense"));
}

/// Runs `n` single model steps, reading the loan request after each (pipelined).
fn requests_after_steps(vm: &mut Qemu, n: usize) -> Vec<i64> {
    let mut lines = Vec::new();
    for _ in 0..n {
        lines.push("hv step");
        lines.push("mpp");
    }
    vm.oks(&lines)
        .iter()
        .skip(1)
        .step_by(2)
        .map(|r| r.get("loan_request"))
        .collect()
}

/// In a pool shared with another partition, a rise in its demand makes our loan
/// request rise by at most the cap per step, and fall back when demand drops.
#[test]
fn loan_request_follows_the_other_partitions_demand_at_the_capped_rate() {
    // A model that does not step by itself (one step per 1000 s), and a balloon
    // that is off, so the request is the hypervisor's ask alone.
    let mut vm = vm("hv.step_us=1000000000 cmm.disable=1");
    vm.ok("hv pool 768M");
    vm.ok("hv lpar add web mem=512M weight=128 demand=16M");
    vm.ok("hv step 400");
    assert_eq!(
        vm.ok("mpp").get("loan_request"),
        0,
        "all demand fits: no loan request"
    );

    // cap = min(L/256, pool/512) for this 512 MiB partition in a 768 MiB pool.
    let cap: i64 = (512i64 << 20) / 256;
    let cap = cap.min((768i64 << 20) / 512);
    vm.ok("hv lpar set web demand=500M");
    let mut last = vm.ok("mpp").get("loan_request");
    let mut peak = last;
    for now in requests_after_steps(&mut vm, 120) {
        assert!(
            now - last <= cap,
            "loan request rose by {} > cap {cap}",
            now - last
        );
        assert!(
            now >= last,
            "loan request fell while demand rose: {last} -> {now}"
        );
        last = now;
        peak = peak.max(now);
    }
    assert!(peak > 64 << 20, "the loan request never rose: {peak}");

    vm.ok("hv lpar set web demand=16M");
    for now in requests_after_steps(&mut vm, 250) {
        assert!(last - now <= cap, "loan request fell by more than the cap");
        last = now;
    }
    assert_eq!(last, 0, "the loan request did not fall back");
}

#[test]
fn bad_scenarios_are_refused_and_change_nothing() {
    let mut vm = vm("");
    let before = vm.ok("hv").text();
    for (cmd, reason) in [
        ("hv lpar add x mem=0", "must not be zero"),
        ("hv lpar add x mem=512M weight=300", "300 out of range"),
        ("hv lpar set nobody demand=1M", "no partition nobody"),
        ("hv pool banana", "bad number"),
        ("hv bogus", "usage: hv"),
    ] {
        let e = vm.err(cmd);
        assert!(e.contains(reason), "`{cmd}`: {e}");
    }
    let after = vm.ok("hv").text();
    let strip = |t: &str| {
        t.lines()
            .filter(|l| !l.starts_with("steps:") && !l.starts_with("dropped"))
            .map(String::from)
            .collect::<Vec<_>>()
    };
    assert_eq!(strip(&before), strip(&after));
}
