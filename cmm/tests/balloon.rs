//! Scenario tests of the balloon against the fake hypervisor: loaning and
//! returning, the poll interval, failures of every hcall, OOM, the floor,
//! disable, the policies and poison mode.

mod common;

use cmm::{Shortfall, Workload};
use common::{Content, Request, World};
use hcall::PageState;

const PAGE: i64 = 4096;

/// 16 MiB of RAM, 64 frames reserved, a 4 MiB floor: 4032 managed, ceiling 3008.
fn world() -> World {
    World::new(4096, 64, 4)
}

#[test]
fn loans_toward_the_request_and_returns() {
    let mut w = world();
    w.hv.request = Request::Bytes(100 * PAGE);
    let r = w.poll();
    assert!(r.polled);
    assert_eq!(r.computed_target, Some(100));
    assert_eq!((r.pages_loaned, w.loaned(), w.target()), (100, 100, 100));
    w.check_invariants();
    // The request is relative to what is loaned: -40 pages means "take 40 back".
    w.hv.request = Request::Bytes(-40 * PAGE);
    let r = w.poll();
    assert_eq!((r.target, r.pages_returned, w.loaned()), (60, 40, 60));
    assert_eq!(w.mm.stats().pages_returned_total, 40);
    w.check_invariants();
    // Returned pages are hinted Unused.
    let book = w.hv.book.borrow();
    let free_unused =
        w.mm.frames()
            .iter(cmm::FrameSet::Free)
            .filter(|&p| book.state(p * 4096) == PageState::Unused)
            .count();
    assert_eq!(free_unused, 40);
}

#[test]
fn loans_fill_whole_2mib_blocks() {
    let mut w = world();
    w.hv.request = Request::Bytes(512 * PAGE);
    w.poll();
    let loaned: Vec<u64> = w.mm.frames().iter(cmm::FrameSet::Loaned).collect();
    assert_eq!(loaned.len(), 512);
    let block = loaned[0] / 512;
    assert!(
        loaned.iter().all(|p| p / 512 == block),
        "one aligned 2 MiB block"
    );
    assert_eq!(loaned[0] % 512, 0);
}

#[test]
fn polls_only_when_the_delay_has_elapsed() {
    let mut w = world();
    w.set("delay", "2").unwrap();
    w.hv.request = Request::Bytes(10 * PAGE);
    assert!(w.mm.step(0, &mut w.hv, &mut w.mem).polled);
    w.hv.request = Request::Bytes(10 * PAGE);
    assert!(!w.mm.step(1999, &mut w.hv, &mut w.mem).polled);
    assert_eq!(w.hv.get_mpp_calls, 1);
    assert!(w.mm.step(2000, &mut w.hv, &mut w.mem).polled);
    assert_eq!(w.loaned(), 20);
    assert!(w.set("delay", "0").is_err());
    assert!(w.set("delay_ms", "0").is_err());
    assert_eq!(w.mm.params().delay_ms(), 2000);
}

#[test]
fn get_mpp_failure_keeps_the_target_and_reports_once() {
    let mut w = world();
    w.hv.request = Request::LoanPages(50);
    w.poll();
    assert_eq!(w.target(), 50);
    w.hv.request = Request::LoanPages(80);
    w.hv.fail_get_mpp = 2;
    let r1 = w.poll();
    assert_eq!((r1.computed_target, w.target(), w.loaned()), (None, 50, 50));
    assert!(matches!(r1.shortfall, Some(Shortfall::GetMpp(_))));
    assert!(r1.shortfall_changed);
    let r2 = w.poll();
    assert!(!r2.shortfall_changed, "the same reason is reported once");
    assert_eq!(w.mm.stats().get_mpp_failures, 2);
    let r3 = w.poll();
    assert_eq!((r3.shortfall, r3.shortfall_changed), (None, true));
    assert_eq!(w.loaned(), 80);
    w.check_invariants();
}

#[test]
fn failed_loan_leaves_the_frame_free_and_uncounted() {
    let mut w = world();
    w.hv.request = Request::LoanPages(20);
    w.hv.fail_page_state = 1;
    let free_before = w.mm.frames().counts().free;
    let r = w.poll();
    assert!(matches!(r.shortfall, Some(Shortfall::Loan(_))));
    assert_eq!((w.loaned(), w.target()), (0, 0), "target := achieved");
    assert_eq!(w.mm.frames().counts().free, free_before);
    assert_eq!(w.mm.stats().loan_failures, 1);
    assert_eq!(w.mm.stats().loan_shortfalls, 1);
    w.check_invariants();
    w.poll();
    assert_eq!(w.loaned(), 20);
    w.check_invariants();
}

#[test]
fn failed_return_keeps_the_page_loaned_and_retries() {
    let mut w = world();
    w.hv.request = Request::LoanPages(10);
    w.poll();
    w.hv.request = Request::LoanPages(0);
    w.hv.fail_page_state = 1;
    let r = w.poll();
    assert!(matches!(r.shortfall, Some(Shortfall::Return(_))));
    assert_eq!((w.loaned(), w.target()), (10, 0));
    assert_eq!(w.mm.stats().return_failures, 1);
    assert!(!w.mm.is_converged());
    w.check_invariants();
    w.poll();
    assert_eq!(w.loaned(), 0);
    w.check_invariants();
}

#[test]
fn never_loans_below_the_floor() {
    let mut w = world();
    // Everything the partition has (a request above that is a contradiction,
    // tests/lying_hv.rs).
    w.hv.request = Request::Bytes(4096 * PAGE);
    w.poll();
    assert_eq!(w.loaned(), 4032 - 1024);
    w.check_invariants();
    // Raising the floor returns the excess at once.
    w.set("min_mem_mb", "8").unwrap();
    assert_eq!(w.loaned(), 4032 - 2048);
    w.set("min_mem_mb", "100").unwrap();
    assert_eq!(
        (w.loaned(), w.target()),
        (0, 0),
        "partition below the floor"
    );
    w.check_invariants();
}

#[test]
fn a_full_free_list_cuts_the_loan_short() {
    let mut w = world();
    w.set("min_mem_mb", "0").unwrap();
    w.alloc(4000, Workload::Working).unwrap();
    w.hv.request = Request::LoanPages(100);
    let r = w.poll();
    assert_eq!(r.shortfall, Some(Shortfall::NoFreeFrame));
    assert_eq!((w.loaned(), w.target()), (32, 32));
    w.check_invariants();
}

#[test]
fn oom_returns_oom_kb_and_lowers_later_targets() {
    let mut w = world();
    w.set("min_mem_mb", "0").unwrap();
    w.hv.request = Request::LoanPages(2000);
    w.poll();
    assert_eq!(w.loaned(), 2000);
    // 2032 free; the 100 extra pages come from the balloon through the OOM chain.
    assert_eq!(w.alloc(2132, Workload::Working), Ok(2132));
    let s = *w.mm.stats();
    assert_eq!(s.oom_events, 1);
    assert_eq!(s.oom_freed_pages, 256);
    assert_eq!(w.loaned(), 2000 - 256);
    assert_eq!(w.target(), w.loaned(), "target := loaned after OOM");
    w.check_invariants();
    // The hypervisor still wants 2000: the credit keeps 256 of them back.
    let r = w.poll();
    assert_eq!(r.computed_target, Some(2000 - 256));
    w.mm.reset_oom();
    assert_eq!(w.mm.stats().oom_freed_pages, 0);
    assert_eq!(w.verify().corrupt_pages, 0);
    w.check_invariants();
}

#[test]
fn oom_frees_at_most_what_is_loaned() {
    let mut w = world();
    w.set("min_mem_mb", "0").unwrap();
    w.hv.request = Request::LoanPages(10);
    w.poll();
    let freed = w.mm.out_of_memory(&mut w.hv, &mut w.mem).freed_pages;
    assert_eq!(freed, 10);
    assert_eq!(w.mm.stats().oom_freed_pages, 10);
    assert_eq!(w.mm.out_of_memory(&mut w.hv, &mut w.mem).freed_pages, 0);
    assert_eq!(w.mm.stats().oom_events, 2);
}

#[test]
fn allocation_fails_cleanly_when_nothing_is_left() {
    let mut w = world();
    let total = w.mm.frames().counts().total;
    assert!(w.alloc(total + 1, Workload::Working).is_err());
    assert_eq!(w.mm.frames().counts().used, 0, "refused up front");
    w.alloc(total, Workload::Cache).unwrap();
    let e = w.mm.alloc_page(cmm::Owner::Kernel, &mut w.hv, &mut w.mem);
    assert!(matches!(e, Err(cmm::CmmError::OutOfMemory { .. })));
    assert_eq!(w.mm.stats().alloc_failures, 1);
    assert_eq!(w.mm.meminfo().cached_kb, total * 4);
    assert_eq!(w.free(None, Workload::Cache), Ok(total));
    w.check_invariants();
}

#[test]
fn a_failing_return_rolls_back_a_workload_allocation() {
    let mut w = world();
    w.set("min_mem_mb", "0").unwrap();
    w.hv.request = Request::LoanPages(3000);
    w.poll();
    w.alloc(1000, Workload::Working).unwrap();
    let used = w.mm.frames().counts().used;
    // 32 free + 3000 loaned, but every Active fails: OOM frees nothing.
    w.hv.fail_page_state = u32::MAX;
    let e = w.alloc(100, Workload::Working);
    assert!(
        matches!(e, Err(cmm::CmmError::OutOfMemory { available: 32, .. })),
        "{e:?}"
    );
    assert_eq!(w.mm.frames().counts().used, used, "rolled back");
    w.hv.fail_page_state = 0;
    w.check_invariants();
    assert_eq!(w.verify().corrupt_pages, 0);
}

#[test]
fn freeing_workload_pages() {
    let mut w = world();
    w.alloc(10, Workload::Working).unwrap();
    assert!(w.free(Some(11), Workload::Working).is_err());
    assert!(w.free(Some(1), Workload::Cache).is_err());
    assert_eq!(w.free(Some(4), Workload::Working), Ok(4));
    assert_eq!(w.mm.frames().counts().workload, 6);
    assert_eq!(w.verify().verified_pages, 6);
    let kernel =
        w.mm.alloc_page(cmm::Owner::Kernel, &mut w.hv, &mut w.mem)
            .unwrap();
    assert_eq!(w.mm.free_page(kernel, &mut w.hv), Ok(cmm::Owner::Kernel));
    assert!(w.mm.free_page(kernel, &mut w.hv).is_err(), "double free");
    assert!(w.mm.free_page(kernel + 1, &mut w.hv).is_err(), "unaligned");
    assert!(w.mm.free_page(0, &mut w.hv).is_err(), "reserved");
    w.check_invariants();
}

#[test]
fn a_failed_hint_never_fails_an_allocation() {
    let mut w = world();
    w.hv.fail_page_state = 3;
    w.alloc(2, Workload::Working).unwrap();
    w.free(Some(1), Workload::Working).unwrap();
    assert_eq!(w.mm.stats().hint_failures, 3);
    assert_eq!(w.mm.stats().page_state_failures, 3);
    w.check_invariants();
}

#[test]
fn disable_returns_everything_and_enable_restarts() {
    let mut w = world();
    w.hv.request = Request::LoanPages(500);
    w.poll();
    assert!(w.set("disable", "2").is_err());
    w.set("disable", "1").unwrap();
    assert_eq!((w.loaned(), w.target()), (0, 0));
    let calls = w.hv.get_mpp_calls;
    w.poll();
    assert_eq!(
        w.hv.get_mpp_calls, calls,
        "a disabled balloon does not poll"
    );
    assert!(w.mm.is_converged());
    w.check_invariants();
    w.set("disable", "0").unwrap();
    let r = w.mm.step(w.now_ms, &mut w.hv, &mut w.mem);
    assert!(r.polled, "restarted: polls at once");
    assert_eq!(w.loaned(), 500);
    w.check_invariants();
}

#[test]
fn disable_with_a_failing_hypervisor_retries_until_everything_is_back() {
    let mut w = world();
    w.hv.request = Request::LoanPages(50);
    w.poll();
    w.hv.fail_page_state = 1;
    w.set("disable", "1").unwrap();
    assert_eq!(w.loaned(), 50, "stopped at the first failure");
    w.poll();
    assert_eq!(w.loaned(), 0);
    w.check_invariants();
}

#[test]
fn policy_off_returns_everything() {
    let mut w = world();
    w.hv.request = Request::LoanPages(300);
    w.poll();
    w.set("policy", "off").unwrap();
    assert_eq!(w.loaned(), 0);
    w.poll();
    assert_eq!((w.loaned(), w.target()), (0, 0));
    w.set("policy", "aggressive").unwrap();
    w.poll();
    assert_eq!(w.loaned(), 300);
}

#[test]
fn conservative_keeps_maxfree_frames_free() {
    let mut w = world();
    w.set("min_mem_mb", "0").unwrap();
    w.set("maxfree", "1000").unwrap();
    w.set("minfree", "500").unwrap();
    w.set("policy", "conservative").unwrap();
    w.hv.request = Request::LoanPages(4000);
    let r = w.poll();
    assert_eq!(r.shortfall, Some(Shortfall::FreeListAtMaxfree));
    assert_eq!(w.mm.frames().counts().free, 1000);
    assert_eq!((w.loaned(), w.target()), (3032, 3032));
    // Using 600 frames drops the free list below minfree: refilled to maxfree.
    w.alloc(600, Workload::Working).unwrap();
    let c = w.mm.frames().counts();
    assert!(c.free >= 500, "{c:?}");
    assert!(w.mm.stats().refill_pages_total > 0);
    assert_eq!(w.mm.stats().oom_freed_pages, 0, "no OOM credit taken");
    w.poll();
    let free = w.mm.frames().counts().free;
    assert!((500..=1000).contains(&free), "{free}");
    w.check_invariants();
}

#[test]
fn poison_catches_a_write_to_a_loaned_page() {
    let mut w = world();
    w.set("poison", "1").unwrap();
    w.hv.request = Request::LoanPages(20);
    w.poll();
    let v = w.verify();
    assert_eq!((v.verified_pages, v.corrupt_pages), (20, 0));
    let victim = w.mm.frames().iter(cmm::FrameSet::Loaned).next().unwrap() * 4096;
    w.mem.scribble(victim);
    let v = w.verify();
    assert_eq!((v.corrupt_pages, v.poisoned_corrupt), (1, 1));
    w.hv.request = Request::LoanPages(0);
    w.poll();
    assert_eq!(
        w.mm.stats().poison_errors,
        2,
        "seen by verify and on return"
    );
    assert_eq!(
        w.hv.book.borrow().contents[&victim],
        Content::Garbage,
        "a returned page is not zeroed on its way back"
    );
    w.check_invariants();
    // Whoever allocates it gets zeros.
    let mut kernel = Vec::new();
    while let Ok(a) = w.mm.alloc_page(cmm::Owner::Kernel, &mut w.hv, &mut w.mem) {
        kernel.push(a);
    }
    assert!(kernel.contains(&victim));
    w.check_contents(&kernel);
}

#[test]
fn poison_accepts_pages_the_hypervisor_dropped() {
    let mut w = world();
    w.set("poison", "1").unwrap();
    w.hv.drop_contents_on_reclaim = true;
    w.hv.request = Request::LoanPages(20);
    w.poll();
    w.hv.request = Request::LoanPages(0);
    w.poll();
    assert_eq!(w.mm.stats().poison_errors, 0);
}

#[test]
fn workload_corruption_is_found() {
    let mut w = world();
    w.alloc(5, Workload::Working).unwrap();
    w.alloc(5, Workload::Cache).unwrap();
    let page = w.mm.frames().iter(cmm::FrameSet::Cache).next().unwrap() * 4096;
    w.mem.scribble(page);
    let v = w.verify();
    assert_eq!((v.verified_pages, v.corrupt_pages), (9, 1));
}

#[test]
fn converges_when_loaned_meets_a_stable_target() {
    let mut w = world();
    w.hv.request = Request::LoanPages(100);
    assert!(!w.mm.is_converged());
    w.poll();
    assert!(!w.mm.is_converged(), "target just moved");
    w.poll();
    assert!(w.mm.is_converged());
    w.hv.request = Request::LoanPages(200);
    w.poll();
    assert!(!w.mm.is_converged());
}

#[test]
fn a_wait_needs_two_rounds_after_it_starts() {
    let mut w = world();
    w.hv.request = Request::LoanPages(100);
    w.poll();
    w.poll();
    assert!(w.mm.is_converged());
    // Converged already, but `cmm wait` started now sees it only after two
    // rounds of its own.
    let start = w.mm.stats().polls;
    assert!(!w.mm.converged_since(start));
    w.poll();
    assert!(!w.mm.converged_since(start));
    w.poll();
    assert!(w.mm.converged_since(start));
    // A start that would overflow never counts as converged.
    assert!(!w.mm.converged_since(u64::MAX));
}

#[test]
fn return_all_empties_the_balloon() {
    let mut w = world();
    w.hv.request = Request::LoanPages(700);
    w.poll();
    assert_eq!(w.mm.return_all(&mut w.hv, &mut w.mem), 0);
    assert_eq!(w.hv.book.borrow().loaned, 0);
    w.check_invariants();
}

#[test]
fn a_refused_return_at_shutdown_is_counted_and_tried_again() {
    let mut w = world();
    w.hv.request = Request::LoanPages(700);
    w.poll();
    assert_eq!(w.hv.book.borrow().loaned, 700);
    w.hv.fail_page_state = 1;
    let left = w.mm.return_all(&mut w.hv, &mut w.mem);
    assert!(left > 0, "a refused page stays loaned");
    assert_eq!(
        w.hv.book.borrow().loaned,
        left,
        "the books agree with the hypervisor"
    );
    assert_eq!(w.mm.stats().loaned_pages, left);
    w.check_invariants();
    assert_eq!(w.mm.return_all(&mut w.hv, &mut w.mem), 0);
    assert_eq!(w.hv.book.borrow().loaned, 0);
    w.check_invariants();
}

#[test]
fn free_frames_are_hinted_unused_in_the_background() {
    let mut w = world();
    assert!(w.mm.unused_hints_pending());
    let s = w.mm.hint_unused_step(&mut w.hv, 1000);
    assert_eq!((s.hinted, s.finished), (1000, false));
    // Frames loaned or allocated before the walk reaches them keep their state.
    w.hv.request = Request::LoanPages(1500);
    w.poll();
    w.alloc(700, Workload::Working).unwrap();
    w.free(Some(100), Workload::Working).unwrap();
    let mut calls = w.hv.page_state_calls;
    while w.mm.unused_hints_pending() {
        let s = w.mm.hint_unused_step(&mut w.hv, 300);
        assert!(s.hinted <= 300);
        assert_eq!(
            w.hv.page_state_calls - calls,
            s.hinted,
            "one hint per frame"
        );
        calls = w.hv.page_state_calls;
    }
    assert_eq!(w.mm.hint_unused_step(&mut w.hv, 300).hinted, 0);
    let book = w.hv.book.borrow();
    for pfn in w.mm.frames().iter(cmm::FrameSet::Free) {
        assert_eq!(book.state(pfn * 4096), PageState::Unused, "free {pfn}");
    }
    drop(book);
    w.check_invariants();
    w.check_contents(&[]);
}

#[test]
fn a_batch_refused_part_way_keeps_exactly_the_accepted_pages() {
    let mut w = world();
    w.hv.fail_page_state = 1;
    w.hv.pass_before_fail = 300;
    w.hv.request = Request::LoanPages(1000);
    let r = w.poll();
    assert_eq!(r.pages_loaned, 300);
    assert!(matches!(r.shortfall, Some(Shortfall::Loan(_))));
    assert_eq!((w.loaned(), w.mm.stats().loan_failures), (300, 1));
    w.check_invariants();
    w.poll();
    assert_eq!(w.loaned(), 1000);
    // A return refused part-way: the accepted pages are free, the rest loaned.
    w.hv.fail_page_state = 1;
    w.hv.pass_before_fail = 100;
    w.hv.request = Request::LoanPages(0);
    let r = w.poll();
    assert!(matches!(r.shortfall, Some(Shortfall::Return(_))));
    assert_eq!(r.pages_returned, 100);
    assert_eq!(w.loaned(), 900);
    assert_eq!(w.mm.stats().return_failures, 1);
    w.check_invariants();
    w.poll();
    assert_eq!(w.loaned(), 0);
    w.check_invariants();
}

#[test]
fn next_poll_is_one_delay_after_the_last() {
    let mut w = world();
    assert_eq!(w.mm.next_poll_ms(), None, "never polled: due now");
    w.set("delay_ms", "250").unwrap();
    assert!(w.mm.step(1000, &mut w.hv, &mut w.mem).polled);
    assert_eq!(w.mm.next_poll_ms(), Some(1250));
    assert!(!w.mm.step(1249, &mut w.hv, &mut w.mem).polled);
    assert!(w.mm.step(1250, &mut w.hv, &mut w.mem).polled);
    assert_eq!(w.mm.next_poll_ms(), Some(1500));
}

#[test]
fn a_stopped_allocation_gives_back_every_page_it_took() {
    let mut w = World::new(3 * cmm::workload::STOP_CHECK_PAGES, 64, 4);
    let before = w.mm.frames().counts();
    let mut asked = 0;
    // The console's Ctrl-C arrives before the second check.
    let e = w.mm.alloc_workload_until(
        2 * cmm::workload::STOP_CHECK_PAGES + 10,
        Workload::Working,
        &mut w.hv,
        &mut w.mem,
        &mut || {
            asked += 1;
            asked == 2
        },
    );
    assert_eq!(e, Err(cmm::CmmError::Interrupted));
    assert_eq!(e.unwrap_err().to_string(), "interrupted");
    assert_eq!(asked, 2, "asked once per STOP_CHECK_PAGES pages");
    let after = w.mm.frames().counts();
    assert_eq!(after.used, before.used, "every page taken was freed again");
    assert_eq!(after.free, before.free);
    w.check_invariants();
    // Not stopped, the same allocation completes.
    let got = w.mm.alloc_workload_until(
        2 * cmm::workload::STOP_CHECK_PAGES + 10,
        Workload::Working,
        &mut w.hv,
        &mut w.mem,
        &mut || false,
    );
    assert_eq!(got, Ok(2 * cmm::workload::STOP_CHECK_PAGES + 10));
    w.check_invariants();
}
