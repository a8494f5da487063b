//! In-guest benchmarks: `bench loan <n>` (loan, then return, n pages through the
//! balloon) and `bench hcall <n>` (2n bare page-state calls, Loaned then Active,
//! made through the shim on the same kind of frames: one call per page
//! (`elapsed_ns`), then the same in batches of a PFN buffer, 256 pages
//! (`batched_elapsed_ns`)). A loan
//! needs one page-state call per page and a return two (Active, the Unused hint),
//! so the balloon's own overhead is `(loan + return) / (3 × one call)`.
//! `bench store <n>` takes n free frames and writes a pattern over whole pages
//! through the kernel's `PageMemory`: n times the same frame (`same_frame_ns`),
//! each frame once (`distinct_frames_ns`), each again (`distinct_again_ns`), the
//! cost of first touching memory against touching it warm.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use hcall::page::PAGE_SIZE;
use hcall::{Hypervisor, PageState, Simulation};

use kernel::shell::BenchCommand;

use super::CmdResult;
use crate::sys::System;
use crate::{clock, println};

/// `bench loan <n> | bench hcall <n> | bench store <n>`.
pub fn bench(sys: &mut System, c: BenchCommand) -> CmdResult {
    match c {
        BenchCommand::Loan(n) => loan(sys, n),
        BenchCommand::Hcall(n) => hcalls(sys, n),
        BenchCommand::Store(n) => stores(sys, n),
    }
}

/// How long `bench loan` lets the balloon take to reach each target.
const DRIVE_TIMEOUT_S: u64 = 60;

/// Pages per batched page-state call in `bench hcall`: as many as the virtio
/// balloon's PFN buffer holds.
const HCALL_BATCH: usize = kernel::virtio_balloon::PFNS_PER_BUFFER;

/// Drives the balloon to `target_bytes` loaned, timing only the balloon's rounds.
fn drive(sys: &mut System, target_bytes: u64) -> Result<u64, String> {
    let model = sys
        .hv
        .inner_mut()
        .model_mut()
        .ok_or_else(|| String::from("bench loan steers the pool model; there is none here"))?;
    model
        .set_target(Some(target_bytes))
        .map_err(|e| e.to_string())?;
    let want = target_bytes / PAGE_SIZE;
    let deadline = clock::now_us() + DRIVE_TIMEOUT_S * 1_000_000;
    let mut ticks = 0u64;
    while sys.mm.stats().loaned_pages != want {
        if clock::now_us() > deadline {
            return Err(alloc::format!(
                "the balloon did not reach the target in {DRIVE_TIMEOUT_S} s"
            ));
        }
        let now = clock::now_us();
        sys.hv.advance(now);
        let t0 = clock::ticks();
        let r = sys.mm.step(now / 1000, &mut sys.hv, &mut sys.mem);
        let dt = clock::ticks() - t0;
        if r.polled {
            ticks += dt;
        }
        if let Some(why) = r.shortfall {
            return Err(alloc::format!("loaning stopped short: {why}"));
        }
    }
    Ok(ticks)
}

/// `n` ≥ 1 (the parser refuses 0).
fn loan(sys: &mut System, n: u64) -> CmdResult {
    let start_loaned = sys.mm.stats().loaned_pages;
    let saved_delay = sys.mm.params().delay_ms().to_string();
    let base = start_loaned * PAGE_SIZE;
    let top = base
        .checked_add(n.checked_mul(PAGE_SIZE).ok_or("n too large")?)
        .ok_or("n too large")?;
    sys.mm
        .set_param("delay_ms", "1", &mut sys.hv, &mut sys.mem)
        .map_err(|e| e.to_string())?;
    let up = drive(sys, top);
    let down = up.as_ref().ok().map(|_| drive(sys, base));
    let _ = sys
        .mm
        .set_param("delay_ms", &saved_delay, &mut sys.hv, &mut sys.mem);
    let up = up?;
    let down = down.unwrap_or(Ok(0))?;
    let ns = clock::ticks_to_ns(up + down);
    println!("pages: {n}");
    println!("loan_ns: {}", clock::ticks_to_ns(up));
    println!("return_ns: {}", clock::ticks_to_ns(down));
    println!("elapsed_ns: {ns}");
    println!("pages_per_sec: {}", per_sec(n, clock::ticks_to_ns(up)));
    println!("loan_ns_per_page: {}", clock::ticks_to_ns(up) / n);
    println!("return_ns_per_page: {}", clock::ticks_to_ns(down) / n);
    Ok(())
}

fn per_sec(n: u64, ns: u64) -> u64 {
    if ns == 0 {
        return 0;
    }
    u64::try_from(u128::from(n) * 1_000_000_000 / u128::from(ns)).unwrap_or(u64::MAX)
}

/// `n` ≥ 1 (the parser refuses 0).
fn hcalls(sys: &mut System, n: u64) -> CmdResult {
    let mut frames = Vec::new();
    for _ in 0..n {
        match sys.alloc_kernel_page() {
            Some(a) => frames.push(a),
            None => break,
        }
    }
    let got = frames.len() as u64;
    let t0 = clock::ticks();
    let mut failures = 0u64;
    for &a in &frames {
        failures += u64::from(sys.hv.set_page_state(a, PageState::Loaned).is_err());
    }
    for &a in &frames {
        failures += u64::from(sys.hv.set_page_state(a, PageState::Active).is_err());
    }
    let ticks = clock::ticks() - t0;
    let t0 = clock::ticks();
    for state in [PageState::Loaned, PageState::Active] {
        for batch in frames.chunks(HCALL_BATCH) {
            failures += u64::from(sys.hv.set_page_states(batch, state).is_err());
        }
    }
    let batched = clock::ticks() - t0;
    for a in frames {
        let _ = sys.free_kernel_page(a);
    }
    if got < n {
        return Err(alloc::format!("only {got} frames were free"));
    }
    println!("pages: {n}");
    println!("hcalls: {}", 2 * n);
    println!("failures: {failures}");
    println!("elapsed_ns: {}", clock::ticks_to_ns(ticks));
    println!("batched_elapsed_ns: {}", clock::ticks_to_ns(batched));
    Ok(())
}

/// Writes one frame `n` times, then `n` different frames once: tells per-store
/// cost from first-touch cost under emulation.
fn stores(sys: &mut System, n: u64) -> CmdResult {
    use cmm::PageMemory;
    let mut frames = Vec::new();
    for _ in 0..n {
        match sys.alloc_kernel_page() {
            Some(a) => frames.push(a),
            None => break,
        }
    }
    let Some(&first) = frames.first() else {
        return Err(String::from("no free frame"));
    };
    // `fill` writes every word of the page (unlike `zero`, which skips a page
    // that is already zero), so each pass stores a whole page per frame.
    let t0 = clock::ticks();
    for i in 0..frames.len() as u64 {
        sys.mem.fill(core::hint::black_box(first), i);
    }
    let same = clock::ticks() - t0;
    let t0 = clock::ticks();
    for &a in &frames {
        sys.mem.fill(core::hint::black_box(a), a);
    }
    let many = clock::ticks() - t0;
    let t0 = clock::ticks();
    for &a in &frames {
        sys.mem.fill(core::hint::black_box(a), !a);
    }
    let again = clock::ticks() - t0;
    for a in frames {
        let _ = sys.free_kernel_page(a);
    }
    println!("pages: {n}");
    println!("same_frame_ns: {}", clock::ticks_to_ns(same));
    println!("distinct_frames_ns: {}", clock::ticks_to_ns(many));
    println!("distinct_again_ns: {}", clock::ticks_to_ns(again));
    Ok(())
}
