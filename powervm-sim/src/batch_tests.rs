//! Tests of the model's batched page-state changes: a batch ends where the same
//! calls made one at a time would, with the same page states and totals.

use alloc::vec::Vec;

use proptest::prelude::*;

use super::*;
use hcall::fake::Scripted;
use hcall::hypervisor::{set_each, BatchError, Hypervisor};
use hcall::page::PageState;
use hcall::status::{HStatus, HcallError};

/// 8 MiB of RAM; the tests work on the first [`WATCHED`] pages.
const PAGES: u64 = 2048;
const WATCHED: u64 = 64;

/// A model whose entitlement (4 MiB) lets the pool shrink below its memory.
fn model() -> PoolModel<Scripted> {
    let mut m = PoolModel::new(Phyp::scripted(Scripted::default()), PAGES * PAGE_SIZE).unwrap();
    m.set_mpp(4 << 20, 128).unwrap();
    m
}

#[test]
fn a_batch_stops_at_the_first_refusal_and_says_where() {
    let mut m = model();
    let addrs = [0x1000, 0x2000, 0x2001, 0x3000];
    assert_eq!(
        m.set_page_states(&addrs, PageState::Loaned),
        Err(BatchError {
            done: 2,
            error: HcallError {
                call: "H_PAGE_INIT",
                status: HStatus::Parameter
            }
        })
    );
    assert_eq!(m.loaned_bytes(), 2 * PAGE_SIZE);
    assert_eq!(m.page(0x3000), Some((PageState::Active, false)));
    m.fail(FailKind::PageInit, 1, HStatus::Busy).unwrap();
    let e = m
        .set_page_states(&[0x3000, 0x4000], PageState::Loaned)
        .unwrap_err();
    assert_eq!((e.done, e.error.status), (0, HStatus::Busy));
    m.set_page_states(&[0x3000, 0x4000], PageState::Loaned)
        .unwrap();
    assert_eq!(m.loaned_bytes(), 4 * PAGE_SIZE);
    m.set_page_states(&[], PageState::Active).unwrap();
    assert!(
        m.real().raw().calls.is_empty(),
        "no state change reaches QEMU"
    );
}

/// Found by the property test below: a batch that makes a loaned page Active
/// while an Unused page is resident must page out the Unused page first, as
/// the same calls one at a time do (checking the pool once at the end of the
/// batch paged out an Active page instead, one page more resident).
#[test]
fn a_batch_pages_out_unused_pages_first_like_single_calls() {
    let mut batched = model();
    let mut single = model();
    for m in [&mut batched, &mut single] {
        m.set_pool(1997 * PAGE_SIZE).unwrap();
    }
    let steps: [(PageState, &[u64]); 4] = [
        (PageState::Loaned, &[12]),
        (PageState::Unused, &[55, 0]),
        (PageState::Active, &[12, 55]),
        (PageState::Loaned, &[51]),
    ];
    for (st, pages) in steps {
        let addrs: Vec<u64> = pages.iter().map(|p| p * PAGE_SIZE).collect();
        assert_eq!(
            batched.set_page_states(&addrs, st),
            set_each(&mut single, &addrs, st)
        );
        assert_eq!(view(&batched), view(&single), "after {st:?} {pages:?}");
    }
}

/// What the two models must agree on: every page's state, and the totals.
fn view(m: &PoolModel<Scripted>) -> (Vec<PageState>, u64, u64, u64) {
    let states = (0..WATCHED)
        .map(|i| m.page(i * PAGE_SIZE).unwrap().0)
        .collect();
    (
        states,
        m.loaned_bytes(),
        m.resident_bytes(),
        m.paged_out_bytes(),
    )
}

fn state() -> impl Strategy<Value = PageState> {
    prop_oneof![
        Just(PageState::Active),
        Just(PageState::Unused),
        Just(PageState::Loaned)
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Against the same calls made one by one (`set_each`), on a pool too small
    /// for the whole partition so that pages come back and go out again (the
    /// first pages are the first paged out). Pages past `WATCHED` stand for
    /// addresses beyond memory.
    #[test]
    fn batch_equals_one_call_per_page(
        pool in PAGES / 2..=PAGES,
        batches in proptest::collection::vec(
            (state(), proptest::collection::vec(0u64..WATCHED + 2, 0..24), 0u32..3),
            1..20,
        ),
    ) {
        let mut batched = model();
        let mut single = model();
        for m in [&mut batched, &mut single] {
            m.set_pool(pool * PAGE_SIZE).unwrap();
        }
        for (st, pages, fail) in batches {
            let addrs: Vec<u64> = pages
                .iter()
                .map(|&p| if p < WATCHED { p } else { PAGES + p } * PAGE_SIZE)
                .collect();
            for m in [&mut batched, &mut single] {
                if fail > 0 {
                    m.fail(FailKind::PageInit, fail, HStatus::Busy).unwrap();
                }
            }
            let a = batched.set_page_states(&addrs, st);
            let b = set_each(&mut single, &addrs, st);
            prop_assert_eq!(a, b);
            prop_assert_eq!(view(&batched), view(&single));
            prop_assert!(batched.resident_bytes() <= pool * PAGE_SIZE);
            prop_assert_eq!(batched.stats().injected_failures, single.stats().injected_failures);
        }
    }
}
