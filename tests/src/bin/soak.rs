//! `make soak` (not part of `make test`): a seeded random console storm against
//! one guest, with hcall failures injected, then the checks a user would make:
//! every command was answered with exactly one status line, the workload's pages
//! verify, the balloon's and the hypervisor's books agree and add up, and QEMU's
//! resident set stayed within the guest's RAM plus QEMU's own overhead. Prints
//! the seed, the commands sent, the run's length and commands per second.
//!
//! `SOAK_COMMANDS` (default 100000) and `SOAK_SEED` (default: from the clock)
//! choose the run; the same seed gives the same commands.

use std::time::{Duration, Instant};

use lpar_cmm_tests::{Qemu, Reply};
use powervm_sim::rng::Rng;

const MIB: u64 = 1 << 20;
/// The guest's RAM.
const GUEST_MIB: u64 = 512;
/// What QEMU holds beyond the guest's RAM (itself and its translation cache).
const QEMU_OVERHEAD_MIB: u64 = 256;
/// Commands sent at once (their replies are read in order).
const BATCH: usize = 250;

/// One command of the storm: mostly cheap ones, with allocations, frees,
/// verifies, loan targets and injected hcall failures often enough to keep the
/// memory churning. `held` is the workload the storm believes it holds (MiB).
fn command(r: &mut Rng, held: &mut u64) -> String {
    match r.below(100) {
        0..=24 => "echo soak".into(),
        25..=34 => "version".into(),
        35..=42 => "meminfo".into(),
        43..=50 => "cmm".into(),
        51..=55 => "mpp".into(),
        56..=60 => "hv".into(),
        61..=63 => "lparcfg".into(),
        64..=65 => "amsstat".into(),
        66..=67 => "sysfs".into(),
        68..=69 => "cpu".into(),
        70..=71 => format!("sleep {}", r.below(3)),
        72..=74 => {
            // Bad lines: every one must be answered with an error.
            [
                "frobnicate",
                "alloc lots",
                "hv fail nothing 1 H_BUSY",
                "sleep -1",
            ][usize::try_from(r.below(4)).unwrap_or(0)]
            .into()
        }
        75..=79 => {
            let n = 1 + r.below(if *held > 200 { 4 } else { 48 });
            *held += n;
            format!("alloc {n}M")
        }
        80..=82 => {
            let n = 1 + r.below(32);
            *held = held.saturating_sub(n);
            format!("free {n}M")
        }
        83 => {
            *held = 0;
            "free all".into()
        }
        84..=85 => "alloc 4M cache".into(),
        86 => "free all cache".into(),
        87..=89 => "verify".into(),
        90..=92 => format!("hv target {}M", r.below(160)),
        93 => "hv auto".into(),
        94..=95 => format!(
            "hv fail {} {} {}",
            ["page_init", "get_mpp", "set_mpp"][usize::try_from(r.below(3)).unwrap_or(0)],
            1 + r.below(5),
            [
                "H_BUSY",
                "H_HARDWARE",
                "H_PARAMETER",
                "H_LONG_BUSY_ORDER_1_MSEC"
            ][usize::try_from(r.below(4)).unwrap_or(0)]
        ),
        96 => format!("mpp weight {}", r.below(256)),
        97 => "cmm wait 200".into(),
        98 => format!("cmm set delay_ms {}", 5 + r.below(50)),
        _ => "hv step 3".into(),
    }
}

fn main() {
    let total: usize = std::env::var("SOAK_COMMANDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let seed: u64 = std::env::var("SOAK_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_secs() ^ u64::from(d.subsec_nanos()))
                | 1
        });
    println!("soak: seed {seed}, {total} commands, one {GUEST_MIB} MiB guest");
    let mut vm = Qemu::builder()
        .mem(&format!("{GUEST_MIB}M"))
        .append("cmm.delay_ms=20 cmm.min_mem_mb=64")
        .timeout(Duration::from_secs(3600))
        .reply_timeout(Duration::from_secs(300))
        .boot();
    let mut rng = Rng::new(seed);
    let mut held = 0u64;
    let mut sent = 0usize;
    let mut errors = 0usize;
    let mut peak_rss_kb = 0u64;
    let start = Instant::now();
    while sent < total {
        let n = BATCH.min(total - sent);
        let lines: Vec<String> = (0..n).map(|_| command(&mut rng, &mut held)).collect();
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        // `cmds` waits for each command's own status line, in order: a command
        // left unanswered (or answered twice) stops the run with the transcript.
        let replies: Vec<Reply> = vm.cmds(&refs);
        for r in &replies {
            if r.status.is_err() {
                errors += 1;
            }
            if r.command == "verify" {
                assert_eq!(r.get("corrupt_pages"), 0, "{}", r.text());
            }
            if r.command.starts_with("frobnicate") || r.command == "sleep -1" {
                assert!(r.status.is_err(), "bad line accepted: {}", r.command);
            }
        }
        sent += n;
        peak_rss_kb = peak_rss_kb.max(vm.vm_rss_kb());
        if sent % 10_000 < BATCH {
            println!(
                "soak: {sent} commands, {:.0} s, {:.0} commands/s, rss {} MiB",
                start.elapsed().as_secs_f64(),
                sent as f64 / start.elapsed().as_secs_f64(),
                peak_rss_kb / 1024
            );
        }
        // Re-sync what the storm believes it holds with the guest.
        if held > 300 {
            vm.ok("free all");
            held = 0;
        }
    }
    let elapsed = start.elapsed();

    // The checks after the storm: failures off, the loan settled.
    vm.ok("hv fail page_init 0 H_BUSY");
    vm.ok("hv fail get_mpp 0 H_BUSY");
    vm.ok("hv fail set_mpp 0 H_BUSY");
    vm.ok("hv target 64M");
    let w = vm.cmm_wait(60_000);
    let v = vm.ok("verify");
    assert_eq!(v.get("corrupt_pages"), 0, "{}", v.text());
    let loaned_kb = w.get("loaned_kb");
    let hv = vm.ok("hv");
    assert_eq!(
        hv.get("self_loaned"),
        loaned_kb * 1024,
        "the balloon and the hypervisor disagree"
    );
    let c = vm.ok("cmm");
    assert_eq!(
        c.get("pages_loaned_total") - c.get("pages_returned_total"),
        loaned_kb / 4,
        "pages loaned minus returned is not what is loaned"
    );
    let m = vm.ok("meminfo");
    let managed_kb = m.get("MemTotal") + loaned_kb;
    assert!(
        managed_kb > 0 && u64::try_from(managed_kb).unwrap_or(0) <= GUEST_MIB * 1024,
        "books: MemTotal {} + loaned {loaned_kb} kB",
        m.get("MemTotal")
    );
    let rss_limit_kb = (GUEST_MIB + QEMU_OVERHEAD_MIB) * MIB / 1024;
    assert!(
        peak_rss_kb <= rss_limit_kb,
        "QEMU's RSS grew to {} MiB (guest {GUEST_MIB} MiB)",
        peak_rss_kb / 1024
    );
    assert_eq!(vm.poweroff(), 0);
    let secs = elapsed.as_secs_f64();
    println!("soak: passed");
    println!("seed: {seed}");
    println!("commands: {sent}");
    println!("answered_with_error: {errors}");
    println!("duration_s: {secs:.1}");
    println!("commands_per_s: {:.0}", sent as f64 / secs);
    println!("peak_rss_mib: {}", peak_rss_kb / 1024);
    println!("verified_pages: {}", v.get("verified_pages"));
}
