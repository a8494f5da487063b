//! The balloon and the memory manager as a state machine: random sequences of loan
//! requests, polls, allocations, frees, OOM events, parameter changes, disables and
//! injected hypervisor failures, with every invariant checked after every step:
//!
//! - `loaned + free + used == total`; each frame in exactly one state;
//! - the hypervisor's Loaned pages are exactly the loaned bitmap (no lost page, no
//!   double loan), and nothing touches a loaned page;
//! - the target of every successful poll is the one of docs/cmo.md §6.3, and a
//!   failed H_GET_MPP leaves it unchanged; the target never exceeds
//!   `total − floor`, nor does `loaned` once every failed return has been retried;
//! - OOM adds exactly what it freed to the credit;
//! - workload pages are never corrupted;
//! - at the end, every loaned page can be returned.

mod common;

use cmm::target::loan_ceiling;
use cmm::{Owner, Params, Policy, Workload};
use common::{Request, World};
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    Poll,
    Tick(u64),
    RequestBytes(i64),
    RequestLoan(u64),
    Alloc(u64, Workload),
    Free(Option<u64>, Workload),
    AllocKernel(u64),
    FreeKernel(u64),
    Oom,
    Set(&'static str, &'static str),
    ResetOom,
    FailGetMpp(u32),
    FailPageState(u32, u32),
    HintStep(u64),
    Verify,
}

const PARAMS: &[(&str, &str)] = &[
    ("disable", "1"),
    ("disable", "0"),
    ("disable", "0"),
    ("disable", "2"),
    ("policy", "aggressive"),
    ("policy", "conservative"),
    ("policy", "off"),
    ("policy", "bogus"),
    ("min_mem_mb", "0"),
    ("min_mem_mb", "2"),
    ("min_mem_mb", "4"),
    ("min_mem_mb", "64"),
    ("oom_kb", "64"),
    ("oom_kb", "1024"),
    ("oom_kb", "0"),
    ("minfree", "50"),
    ("maxfree", "200"),
    ("minfree", "100000"),
    ("poison", "1"),
    ("poison", "0"),
    ("delay_ms", "3"),
    ("delay_ms", "0"),
    ("delay", "1"),
    ("debug", "1"),
    ("nonsense", "1"),
];

fn workload() -> impl Strategy<Value = Workload> {
    prop_oneof![Just(Workload::Working), Just(Workload::Cache)]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => Just(Op::Poll),
        1 => (0u64..5).prop_map(Op::Tick),
        2 => (-3000i64..3000, -4095i64..4096).prop_map(|(p, b)| Op::RequestBytes(p * 4096 + b)),
        3 => (0u64..2200).prop_map(Op::RequestLoan),
        3 => (0u64..700, workload()).prop_map(|(n, w)| Op::Alloc(n, w)),
        2 => (prop::option::of(0u64..400), workload()).prop_map(|(n, w)| Op::Free(n, w)),
        1 => (1u64..40).prop_map(Op::AllocKernel),
        1 => (1u64..40).prop_map(Op::FreeKernel),
        1 => Just(Op::Oom),
        3 => prop::sample::select(PARAMS).prop_map(|(n, v)| Op::Set(n, v)),
        1 => Just(Op::ResetOom),
        1 => (1u32..3).prop_map(Op::FailGetMpp),
        1 => (0u32..300, 1u32..5).prop_map(|(pass, n)| Op::FailPageState(pass, n)),
        1 => (1u64..700).prop_map(Op::HintStep),
        1 => Just(Op::Verify),
    ]
}

/// The target of docs/cmo.md §6.3 as Linux computes it: its six steps in order, in
/// signed 64-bit pages, with its own comparisons (not the crate's single clamp of
/// one sum), so that a slip in either way of writing it shows.
fn expected_target(request: i64, loaned: u64, oom: u64, total: u64, min: u64) -> u64 {
    let signed = |v: u64| i64::try_from(v).expect("test sizes fit in i64");
    let (loaned, oom, total, min) = (signed(loaned), signed(oom), signed(total), signed(min));
    // Step 2: what is loaned plus the request, the division truncating toward zero.
    let mut target = request / 4096 + loaned;
    // Step 3.
    if target < 0 || total < min {
        target = 0;
    }
    // Step 4: the OOM credit.
    if target > oom {
        target -= oom;
    } else {
        target = 0;
    }
    // Step 5: never into the floor.
    if min > total - target {
        target = total - min;
    }
    // Step 6.
    if target < 0 {
        target = 0;
    }
    u64::try_from(target).expect("non-negative")
}

struct Machine {
    w: World,
    kernel_pages: Vec<u64>,
    /// A return failed and has not been retried by a clean round since.
    returns_pending: bool,
}

impl Machine {
    fn ceiling(&self) -> u64 {
        let p: &Params = self.w.mm.params();
        if p.disabled() || p.policy() == Policy::Off {
            0
        } else {
            loan_ceiling(self.w.mm.frames().counts().total, p.min_pages())
        }
    }

    fn apply(&mut self, op: &Op) -> Result<(), TestCaseError> {
        let w = &mut self.w;
        let return_failures = w.mm.stats().return_failures;
        match op {
            Op::Poll | Op::Tick(_) => {
                let now = match op {
                    Op::Tick(ms) => w.now_ms + ms,
                    _ => w.now_ms + w.mm.params().delay_ms(),
                };
                w.now_ms = now;
                let active = !w.mm.params().disabled() && w.mm.params().policy() != Policy::Off;
                let mpp_fails = w.hv.fail_get_mpp > 0;
                let request = w.hv.loan_request();
                let before = *w.mm.stats();
                let total = w.mm.frames().counts().total;
                let logical = (total + w.mm.frames().counts().reserved) * 4096;
                // A request for more than the whole partition is a contradiction.
                let contradiction = i128::from(request) > i128::from(logical);
                let min = w.mm.params().min_pages();
                let r = w.mm.step(now, &mut w.hv, &mut w.mem);
                if r.polled && active {
                    if mpp_fails || contradiction {
                        prop_assert_eq!(r.computed_target, None);
                        prop_assert_eq!(
                            r.target,
                            before.loaned_target_pages,
                            "H_GET_MPP failure keeps the target"
                        );
                    } else {
                        let want = expected_target(
                            request,
                            before.loaned_pages,
                            before.oom_freed_pages,
                            total,
                            min,
                        );
                        prop_assert_eq!(r.computed_target, Some(want));
                        prop_assert_eq!(r.target, want);
                    }
                }
                if r.polled && w.mm.stats().return_failures == return_failures {
                    self.returns_pending = false;
                }
            }
            Op::RequestBytes(b) => w.hv.request = Request::Bytes(*b),
            Op::RequestLoan(p) => w.hv.request = Request::LoanPages(*p),
            Op::Alloc(n, kind) => {
                let used = w.mm.frames().counts().used;
                match w.alloc(*n, *kind) {
                    Ok(got) => prop_assert_eq!(got, *n),
                    Err(_) => prop_assert_eq!(
                        w.mm.frames().counts().used,
                        used,
                        "failed alloc rolled back"
                    ),
                }
            }
            Op::Free(n, kind) => {
                let c = w.mm.frames().counts();
                let held = if *kind == Workload::Working {
                    c.workload
                } else {
                    c.cache
                };
                let r = w.free(*n, *kind);
                match n {
                    Some(n) if *n > held => prop_assert!(r.is_err()),
                    Some(n) => prop_assert_eq!(r, Ok(*n)),
                    None => prop_assert_eq!(r, Ok(held)),
                }
            }
            Op::AllocKernel(n) => {
                for _ in 0..*n {
                    match w.mm.alloc_page(Owner::Kernel, &mut w.hv, &mut w.mem) {
                        Ok(a) => self.kernel_pages.push(a),
                        Err(_) => break,
                    }
                }
            }
            Op::FreeKernel(n) => {
                for _ in 0..*n {
                    let Some(a) = self.kernel_pages.pop() else {
                        break;
                    };
                    prop_assert_eq!(w.mm.free_page(a, &mut w.hv), Ok(Owner::Kernel));
                }
            }
            Op::Oom => {
                let before = *w.mm.stats();
                let clean = w.hv.fail_page_state == 0;
                let freed = w.mm.out_of_memory(&mut w.hv, &mut w.mem).freed_pages;
                let after = *w.mm.stats();
                prop_assert_eq!(after.oom_freed_pages, before.oom_freed_pages + freed);
                prop_assert_eq!(after.loaned_pages, before.loaned_pages - freed);
                prop_assert!(after.loaned_target_pages <= after.loaned_pages);
                if clean {
                    prop_assert_eq!(freed, w.mm.params().oom_pages().min(before.loaned_pages));
                }
            }
            Op::Set(name, value) => {
                let params = *w.mm.params();
                let counts = w.mm.frames().counts();
                if w.set(name, value).is_err() {
                    prop_assert_eq!(*w.mm.params(), params, "a refused set changes nothing");
                    prop_assert_eq!(w.mm.frames().counts(), counts);
                }
            }
            Op::ResetOom => {
                w.mm.reset_oom();
                prop_assert_eq!(w.mm.stats().oom_freed_pages, 0);
            }
            Op::FailGetMpp(n) => w.hv.fail_get_mpp = *n,
            Op::FailPageState(pass, n) => {
                w.hv.pass_before_fail = *pass;
                w.hv.fail_page_state = *n;
            }
            Op::HintStep(n) => {
                let pending = w.mm.unused_hints_pending();
                let s = w.mm.hint_unused_step(&mut w.hv, *n);
                prop_assert!(s.hinted <= *n);
                prop_assert!(pending || s.hinted == 0);
                prop_assert_eq!(w.mm.unused_hints_pending(), pending && !s.finished);
            }
            Op::Verify => prop_assert_eq!(w.verify().corrupt_pages, 0),
        }
        if w.mm.stats().return_failures != return_failures {
            self.returns_pending = true;
        }
        Ok(())
    }

    fn check(&self) -> Result<(), TestCaseError> {
        self.w.check_invariants();
        self.w.check_contents(&self.kernel_pages);
        prop_assert_eq!(self.w.mm.frames().check(), Ok(()));
        let s = self.w.mm.stats();
        let ceiling = self.ceiling();
        prop_assert!(
            s.loaned_target_pages <= ceiling,
            "target {} > ceiling {}",
            s.loaned_target_pages,
            ceiling
        );
        if !self.returns_pending {
            prop_assert!(
                s.loaned_pages <= ceiling,
                "loaned {} > ceiling {}",
                s.loaned_pages,
                ceiling
            );
        }
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn balloon_state_machine(ops in prop::collection::vec(op(), 1..60), floor_mb in prop::sample::select(&[0u64, 1, 4, 64][..])) {
        // 8 MiB of RAM, 32 frames reserved.
        let mut m = Machine { w: World::new(2048, 32, floor_mb), kernel_pages: Vec::new(), returns_pending: false };
        for op in &ops {
            m.apply(op)?;
            m.check()?;
        }
        prop_assert_eq!(m.w.verify().corrupt_pages, 0);
        // Every loaned page can be returned.
        m.w.hv.fail_page_state = 0;
        m.w.set("disable", "1").unwrap();
        prop_assert_eq!(m.w.loaned(), 0);
        prop_assert_eq!(m.w.hv.book.borrow().loaned, 0);
        m.w.check_invariants();
    }
}
