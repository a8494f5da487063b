//! A hypervisor that lies, on the phyp path (the balloon against the fake
//! hypervisor's failure injection): H_GET_MPP figures that contradict each
//! other, statuses outside the documented set, H_PAGE_INIT accepting a page's
//! loan and then refusing its return. Each test asserts what the balloon did:
//! a clear error, the previous target kept, the books of the balloon and of the
//! hypervisor in agreement, no page lost.

mod common;

use cmm::{Shortfall, Workload};
use common::{Request, World};
use hcall::{HStatus, MppContradiction, MppData};

/// The world's memory: 4096 frames of 4 KiB.
const LOGICAL: u64 = 4096 * 4096;

/// 16 MiB of RAM, 64 frames reserved, a 4 MiB floor.
fn world() -> World {
    World::new(4096, 64, 4)
}

/// Loans 100 pages honestly, then tells `lie` while asking for 500: the balloon
/// keeps its 100 and its target, counts the refusal and says why; when the
/// figures are honest again it goes on to 500.
fn a_contradiction_keeps_the_previous_target(lie: MppData, expect: fn(&MppContradiction) -> bool) {
    let mut w = world();
    w.hv.request = Request::LoanPages(100);
    w.poll();
    assert_eq!((w.loaned(), w.target()), (100, 100));
    w.hv.mpp = lie;
    w.hv.request = Request::LoanPages(500);
    let r = w.poll();
    match r.shortfall {
        Some(Shortfall::Mpp(c)) => {
            assert!(expect(&c), "{c:?}");
            assert!(r
                .shortfall
                .unwrap()
                .to_string()
                .contains("keeping the previous target"));
        }
        other => panic!("expected an H_GET_MPP contradiction, got {other:?}"),
    }
    assert_eq!(
        (w.loaned(), w.target()),
        (100, 100),
        "a lie moved the balloon"
    );
    assert_eq!(w.mm.stats().mpp_rejected, 1);
    assert_eq!(w.mm.stats().get_mpp_failures, 0);
    w.check_invariants();
    w.hv.mpp = MppData::default();
    w.poll();
    assert_eq!((w.loaned(), w.target()), (500, 500));
    assert_eq!(w.mm.stats().mpp_rejected, 1);
    w.check_invariants();
}

#[test]
fn entitlement_above_logical_memory() {
    a_contradiction_keeps_the_previous_target(
        MppData {
            entitled_mem: LOGICAL + 4096,
            ..MppData::default()
        },
        |c| {
            matches!(
                c,
                MppContradiction::EntitledAboveLogical {
                    logical: LOGICAL,
                    ..
                }
            )
        },
    );
}

#[test]
fn more_backing_than_memory() {
    a_contradiction_keeps_the_previous_target(
        MppData {
            backing_mem: 2 * LOGICAL,
            ..MppData::default()
        },
        |c| matches!(c, MppContradiction::BackingAboveLogical { .. }),
    );
}

#[test]
fn a_pool_smaller_than_the_entitlement() {
    a_contradiction_keeps_the_previous_target(
        MppData {
            entitled_mem: 1 << 20,
            pool_size: Some(4096),
            ..MppData::default()
        },
        |c| matches!(c, MppContradiction::PoolBelowEntitled { .. }),
    );
}

#[test]
fn a_loan_request_above_all_memory() {
    let mut w = world();
    w.hv.request = Request::LoanPages(100);
    w.poll();
    w.hv.request = Request::Bytes(i64::MAX);
    let r = w.poll();
    assert!(
        matches!(
            r.shortfall,
            Some(Shortfall::Mpp(MppContradiction::LoanAboveLogical { .. }))
        ),
        "{:?}",
        r.shortfall
    );
    assert_eq!((w.loaned(), w.target()), (100, 100));
    // The whole partition is a possible request: the floor clamps it.
    w.hv.request = Request::Bytes(LOGICAL as i64);
    w.poll();
    assert_eq!(w.loaned(), 4032 - 1024);
    w.check_invariants();
}

#[test]
fn statuses_outside_the_documented_set_are_errors() {
    for status in [
        HStatus::from_raw(42),
        HStatus::from_raw(-9999),
        HStatus::from_raw(i64::MIN),
    ] {
        let mut w = world();
        w.hv.request = Request::LoanPages(300);
        w.hv.fail_status = status;
        // H_GET_MPP answers with it: no target from it.
        w.hv.fail_get_mpp = 1;
        let r = w.poll();
        assert!(matches!(r.shortfall, Some(Shortfall::GetMpp(e)) if e.status == status));
        assert_eq!((w.loaned(), w.target()), (0, 0));
        // H_PAGE_INIT answers with it after 10 pages: those 10 are loaned, the
        // refused one stays free.
        w.hv.fail_page_state = 1;
        w.hv.pass_before_fail = 10;
        let r = w.poll();
        assert!(
            matches!(r.shortfall, Some(Shortfall::Loan(e)) if e.status == status),
            "{status:?}"
        );
        assert!(r
            .shortfall
            .unwrap()
            .to_string()
            .contains(&status.to_raw().to_string()));
        assert_eq!(w.loaned(), 10);
        assert_eq!(w.mm.stats().loan_failures, 1);
        w.check_invariants();
        // And the balloon goes on when the hypervisor does.
        w.poll();
        assert_eq!(w.loaned(), 300);
        w.check_invariants();
    }
}

#[test]
fn a_page_whose_loan_was_accepted_and_whose_return_is_refused_stays_loaned() {
    let mut w = world();
    w.hv.request = Request::LoanPages(200);
    w.poll();
    assert_eq!(w.loaned(), 200);
    // The hypervisor took these ten pages and now refuses to give them back.
    let stuck: Vec<u64> = w.hv.book.borrow().loaned_addrs()[50..60].to_vec();
    w.hv.refuse_return = stuck.iter().copied().collect();
    w.hv.request = Request::LoanPages(0);
    // Each round stops at a refused page and the next goes on behind it: the
    // stuck pages do not hold up the others.
    for _ in 0..12 {
        w.poll();
        w.check_invariants();
    }
    // Everything else came back; the refused pages are still loaned in both
    // books (never handed out, never lost), counted and retried every round.
    assert_eq!(w.loaned(), 10);
    assert_eq!(w.hv.book.borrow().loaned_addrs(), stuck);
    assert!(w.mm.stats().return_failures >= 10);
    let r = w.poll();
    assert!(
        r.shortfall
            .unwrap()
            .to_string()
            .contains("stays loaned and is retried"),
        "{:?}",
        r.shortfall
    );
    // A workload that needs every free page does not get the stuck ones.
    let free = w.mm.frames().counts().free;
    assert_eq!(w.alloc(free, Workload::Working).unwrap(), free);
    w.check_invariants();
    assert_eq!(w.verify().corrupt_pages, 0);
    w.free(None, Workload::Working).unwrap();
    // When the hypervisor gives them back, the balloon returns them.
    w.hv.refuse_return.clear();
    w.poll();
    assert_eq!(w.loaned(), 0);
    assert!(w.hv.book.borrow().loaned_addrs().is_empty());
    w.check_invariants();
}
