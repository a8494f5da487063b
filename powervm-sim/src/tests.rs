//! Tests of the pool model: unit scenarios and property tests over random sequences
//! of scenario changes, time steps and page-state changes.

use alloc::string::String;
use alloc::vec::Vec;

use proptest::prelude::*;

use super::distribute::cap_pages;
use super::*;
use hcall::fake::Scripted;
use hcall::hypervisor::{BackendKind, CmoFaultStats, Hypervisor, SetMppOutcome, Simulation};
use hcall::mpp::MppData;
use hcall::opcodes;
use hcall::page::PageState;
use hcall::status::{HStatus, HcallError};

const MIB: u64 = 1 << 20;

fn model(ram: u64) -> PoolModel<Scripted> {
    PoolModel::new(Phyp::scripted(Scripted::default()), ram).unwrap()
}

fn shown(m: &PoolModel<Scripted>) -> String {
    let mut s = String::new();
    m.render(&mut s).unwrap();
    s
}

fn lpar(mem: u64, weight: u64, demand: u64) -> LparParams {
    LparParams {
        mem: Some(mem),
        weight: Some(weight),
        demand: Some(demand),
        entitled: None,
    }
}

/// Runs steps until nothing moves (bounded); returns the steps run.
fn converge(m: &mut PoolModel<Scripted>) -> u64 {
    for n in 0..200_000 {
        let before: Vec<u64> = m.lpars().map(|l| l.allotment).collect();
        m.step();
        let after: Vec<u64> = m.lpars().map(|l| l.allotment).collect();
        if before == after && m.lpars().all(|l| l.allotment == l.share) {
            return n;
        }
    }
    panic!("model did not converge");
}

#[test]
fn starts_alone_with_everything_resident() {
    let mut m = model(256 * MIB);
    assert_eq!(m.kind(), BackendKind::Model);
    let d = m.get_mpp().unwrap();
    assert_eq!(
        d,
        MppData {
            entitled_mem: 64 * MIB,
            mapped_mem: Some(0),
            group_num: 32773,
            pool_num: 0,
            mem_weight: 128,
            unallocated_mem_weight: 127,
            unallocated_entitlement: (192 * MIB) / 4096,
            pool_size: Some(256 * MIB),
            loan_request: 0,
            backing_mem: 256 * MIB,
        }
    );
    converge(&mut m);
    assert_eq!(m.get_mpp().unwrap().loan_request, 0);
    assert!(m.get_mpp_x().is_ok());
}

#[test]
fn ram_is_validated() {
    assert_eq!(
        PoolModel::new(Phyp::scripted(Scripted::default()), 4095).unwrap_err(),
        ModelError::ZeroSize("ram")
    );
    // Rounded down to whole pages.
    let m = model(8192 + 100);
    assert_eq!(m.self_view().logical, 8192);
    // Self's entitlement is clamped to its memory.
    assert_eq!(m.self_view().entitled, 8192);
}

#[test]
fn contention_raises_the_loan_request_at_the_capped_rate() {
    let mut m = model(256 * MIB);
    m.add_lpar("db", &lpar(256 * MIB, 128, 256 * MIB)).unwrap();
    // 256 MiB pool: E 64 + 16; the other 176 MiB split evenly.
    assert_eq!(m.self_view().share, (64 + 88) * MIB);
    assert_eq!(m.others().next().unwrap().share, (16 + 88) * MIB);
    let cap = cap_pages(65536, 65536) * 4096;
    assert_eq!(cap, 512 * 1024);
    let mut last = m.loan_request_bytes();
    assert_eq!(last, 0);
    for _ in 0..50 {
        m.step();
        let lr = m.loan_request_bytes();
        assert!(lr - last <= cap as i64 && lr >= last);
        last = lr;
    }
    assert_eq!(last, 50 * cap as i64);
    converge(&mut m);
    assert_eq!(m.loan_request_bytes(), (104 * MIB) as i64);
    // Nothing was loaned, so the hypervisor had to page self out.
    assert_eq!(m.paged_out_bytes(), 104 * MIB);
    assert_eq!(m.resident_bytes() + m.others_allotment_bytes(), 256 * MIB);
}

#[test]
fn loaning_brings_the_request_to_zero_and_stops_paging() {
    let mut m = model(64 * MIB);
    m.set_mpp(16 * MIB, 128).unwrap();
    m.add_lpar("web", &lpar(64 * MIB, 128, 64 * MIB)).unwrap();
    let mut loaned = 0u64;
    let mut addr = 0u64;
    for _ in 0..2000 {
        m.step();
        let lr = m.get_mpp().unwrap().loan_request;
        // A cooperative balloon: loan what is asked, take back what is offered.
        if lr > 0 {
            for _ in 0..(lr as u64 / 4096) {
                m.set_page_state(addr, PageState::Loaned).unwrap();
                addr += 4096;
                loaned += 1;
            }
        }
    }
    assert_eq!(m.loan_request_bytes(), 0);
    assert_eq!(m.loaned_bytes(), loaned * 4096);
    // Self now holds exactly its share.
    let me = m.self_view();
    assert_eq!(me.logical - m.loaned_bytes(), me.share);
    assert_eq!(m.paged_out_bytes(), 0);
    assert_eq!(m.stats().pages_paged_out, 0);
}

#[test]
fn unused_pages_are_paged_out_before_active_ones() {
    let mut m = model(16 * MIB);
    m.set_mpp(4 * MIB, 128).unwrap();
    for i in 0..100 {
        m.set_page_state(i * 4096 * 7, PageState::Unused).unwrap();
    }
    m.set_page_state(4096, PageState::Loaned).unwrap();
    // A pool smaller than self's memory: 16 MiB − 1 page loaned − 14 MiB pool.
    m.set_pool(14 * MIB).unwrap();
    let excess = (16 * MIB - 4096 - 14 * MIB) / 4096;
    assert_eq!(m.paged_out_bytes(), excess * 4096);
    assert!(excess > 100);
    for i in 0..100 {
        assert_eq!(m.page(i * 4096 * 7), Some((PageState::Unused, true)));
    }
    assert_eq!(m.page(4096), Some((PageState::Loaned, false)));
    assert_eq!(m.pages.paged_out_active(), excess - 100);
}

#[test]
fn touching_paged_out_pages_counts_faults() {
    let mut m = model(8 * MIB);
    m.set_mpp(4 * MIB, 128).unwrap();
    m.set_pool(8 * MIB - 8192).unwrap();
    let out: Vec<u64> = (0..2048u64)
        .map(|i| i * 4096)
        .filter(|&a| m.page(a).unwrap().1)
        .collect();
    assert_eq!(out.len(), 2);
    m.note_access(out[0] + 123);
    assert_eq!(
        m.cmo_faults(),
        Some(CmoFaultStats {
            faults: 1,
            fault_time_usec: FAULT_LATENCY_US
        })
    );
    assert_eq!(m.page(out[0]), Some((PageState::Active, false)));
    // Still over the pool by two pages: another page went out instead.
    assert_eq!(m.paged_out_bytes(), 8192);
    // Touching resident, loaned or out-of-range pages is not a fault.
    m.set_page_state(out[0], PageState::Loaned).unwrap();
    m.note_access(out[0]);
    m.note_access(1 << 40);
    let resident = (0..2048u64)
        .map(|i| i * 4096)
        .find(|&a| m.page(a) == Some((PageState::Active, false)))
        .unwrap();
    m.note_access(resident);
    assert_eq!(m.cmo_faults().unwrap().faults, 1);
    assert_eq!(m.stats().loaned_touches, 1);
}

#[test]
fn target_mode_steers_the_loan() {
    let mut m = model(64 * MIB);
    m.set_mpp(16 * MIB, 128).unwrap();
    m.set_target(Some(8 * MIB)).unwrap();
    assert_eq!(m.get_mpp().unwrap().loan_request, (8 * MIB) as i64);
    for i in 0..512u64 {
        m.set_page_state(i * 4096, PageState::Loaned).unwrap();
    }
    assert_eq!(m.get_mpp().unwrap().loan_request, (6 * MIB) as i64);
    m.set_target(Some(0)).unwrap();
    assert_eq!(m.get_mpp().unwrap().loan_request, -((2 * MIB) as i64));
    assert_eq!(
        m.set_target(Some(65 * MIB)),
        Err(ModelError::TargetAboveMemory {
            target: 65 * MIB,
            mem: 64 * MIB
        })
    );
    assert!(matches!(
        m.set_target(Some(100)),
        Err(ModelError::NotPageMultiple { .. })
    ));
    m.set_target(None).unwrap();
    assert_eq!(m.mode(), LoanMode::Auto);
    // Auto: the pool (= RAM) has room for everything; the 2 MiB loaned may come back.
    converge(&mut m);
    assert_eq!(m.get_mpp().unwrap().loan_request, -((2 * MIB) as i64));
}

#[test]
fn set_mpp_sets_clamps_and_refuses() {
    let mut m = model(256 * MIB);
    m.add_lpar("a", &lpar(64 * MIB, 10, 0)).unwrap();
    assert_eq!(m.set_mpp(32 * MIB, 200), Ok(SetMppOutcome::Set));
    let d = m.get_mpp().unwrap();
    assert_eq!(
        (d.entitled_mem, d.mem_weight, d.unallocated_mem_weight),
        (32 * MIB, 200, 55)
    );
    // Above min(L, pool − others' E) = 240 MiB: clamped.
    assert_eq!(m.set_mpp(250 * MIB, 7), Ok(SetMppOutcome::Constrained));
    let d = m.get_mpp().unwrap();
    assert_eq!(
        (d.entitled_mem, d.mem_weight, d.unallocated_entitlement),
        (240 * MIB, 7, 0)
    );
    // Below the 4 MiB floor: clamped up.
    assert_eq!(m.set_mpp(4096, 7), Ok(SetMppOutcome::Constrained));
    assert_eq!(m.get_mpp().unwrap().entitled_mem, 4 * MIB);
    // Invalid: nothing changes.
    let before = shown(&m);
    for bad in [0, 4097, 12_345] {
        assert_eq!(
            m.set_mpp(bad, 99),
            Err(HcallError {
                call: "H_SET_MPP",
                status: HStatus::Parameter
            })
        );
    }
    assert_eq!(shown(&m), before);
}

#[test]
fn page_init_checks_addresses_and_never_reaches_qemu() {
    let mut m = model(4 * MIB);
    for bad in [4 * MIB, 4 * MIB + 4096, 12, u64::MAX] {
        assert_eq!(
            m.set_page_state(bad, PageState::Loaned).unwrap_err().status,
            HStatus::Parameter
        );
    }
    m.set_page_state(0, PageState::Loaned).unwrap();
    m.set_page_state(0, PageState::Active).unwrap();
    m.zero_page(0x3000).unwrap();
    m.get_mpp().unwrap();
    m.set_mpp(8 * MIB, 1).unwrap();
    // Only the zeroing went to the real hypervisor.
    assert_eq!(m.real().raw().calls.len(), 1);
    assert_eq!(m.real().raw().calls[0].0, opcodes::H_PAGE_INIT);
}

#[test]
fn tces_pass_through_and_are_counted() {
    let mut m = model(64 * MIB);
    m.put_tce(7, 0x0000, 0x10_0003).unwrap();
    m.put_tce(7, 0x1000, 0x11_0001).unwrap();
    m.put_tce(7, 0x1000, 0x11_0003).unwrap(); // rewrite, same slot
    m.put_tce(8, 0x0000, 0x10_0003).unwrap(); // another window
    assert_eq!(m.get_mpp().unwrap().mapped_mem, Some(3 * 4096));
    m.put_tce(7, 0x1000, 0).unwrap();
    assert_eq!(m.mapped_bytes(), 2 * 4096);
    assert_eq!(m.get_tce(7, 0), Ok(0));
    let ops: Vec<u64> = m.real().raw().calls.iter().map(|c| c.0).collect();
    assert_eq!(ops.iter().filter(|&&o| o == opcodes::H_PUT_TCE).count(), 5);
    assert_eq!(ops.last(), Some(&opcodes::H_GET_TCE));
    // A failure of the real call is not counted.
    m.real()
        .raw()
        .replies
        .push_back((HStatus::Parameter, [0; 9]));
    assert_eq!(m.put_tce(9, 0, 0x3).unwrap_err().status, HStatus::Parameter);
    assert_eq!(m.mapped_bytes(), 2 * 4096);
    // Beyond the entitlement: H_NOT_ENOUGH_RESOURCES, no call.
    m.set_mpp(4 * MIB, 128).unwrap();
    let calls = m.real().raw().calls.len();
    for i in 2..1024u64 {
        m.put_tce(1, i * 4096, 0x3).unwrap();
    }
    assert_eq!(
        m.put_tce(1, 1024 * 4096, 0x3).unwrap_err().status,
        HStatus::NotEnoughResources
    );
    assert_eq!(m.real().raw().calls.len(), calls + 1022);
    assert_eq!(m.mapped_bytes(), 4 * MIB);
}

#[test]
fn mapping_a_paged_out_page_faults_it_in() {
    let mut m = model(8 * MIB);
    m.set_mpp(4 * MIB, 128).unwrap();
    m.set_pool(8 * MIB - 4096).unwrap();
    let out = (0..2048u64)
        .map(|i| i * 4096)
        .find(|&a| m.page(a).unwrap().1)
        .unwrap();
    m.put_tce(1, 0, out | 3).unwrap();
    assert_eq!(m.cmo_faults().unwrap().faults, 1);
    assert_eq!(m.page(out), Some((PageState::Active, false)));
}

#[test]
fn injected_failures_reach_the_caller_typed_and_change_nothing() {
    let mut m = model(16 * MIB);
    m.fail(FailKind::PageInit, 2, HStatus::Busy).unwrap();
    let busy = Err(HcallError {
        call: "H_PAGE_INIT",
        status: HStatus::Busy,
    });
    assert_eq!(m.set_page_state(0, PageState::Loaned), busy);
    assert_eq!(
        m.pending_failures(FailKind::PageInit),
        Some((1, HStatus::Busy))
    );
    assert_eq!(m.zero_page(0), busy);
    assert_eq!(m.loaned_bytes(), 0);
    assert_eq!(m.pending_failures(FailKind::PageInit), None);
    m.set_page_state(0, PageState::Loaned).unwrap();
    assert_eq!(m.loaned_bytes(), 4096);

    m.fail(FailKind::GetMpp, 1, HStatus::Function).unwrap();
    assert_eq!(
        m.get_mpp(),
        Err(HcallError {
            call: "H_GET_MPP",
            status: HStatus::Function
        })
    );
    assert!(m.get_mpp().is_ok());

    m.fail(FailKind::SetMpp, 1, HStatus::Constrained).unwrap();
    assert_eq!(m.set_mpp(8 * MIB, 1), Ok(SetMppOutcome::Constrained));
    assert_eq!(m.get_mpp().unwrap().mem_weight, 128);
    m.fail(FailKind::SetMpp, 1, HStatus::from_raw(9902))
        .unwrap();
    assert_eq!(
        m.set_mpp(8 * MIB, 1).unwrap_err().status,
        HStatus::from_raw(9902)
    );

    m.fail(FailKind::PutTce, 1, HStatus::NotEnoughResources)
        .unwrap();
    assert_eq!(
        m.put_tce(1, 0, 3).unwrap_err(),
        HcallError {
            call: "H_PUT_TCE",
            status: HStatus::NotEnoughResources
        }
    );
    assert_eq!(m.mapped_bytes(), 0);
    m.fail(FailKind::GetMppX, 1, HStatus::Other(-99)).unwrap();
    assert_eq!(m.get_mpp_x().unwrap_err().status, HStatus::Other(-99));
    m.fail(FailKind::GetTce, 1, HStatus::Hardware).unwrap();
    assert_eq!(m.get_tce(1, 0).unwrap_err().call, "H_GET_TCE");

    // Cancel, and H_SUCCESS refused.
    m.fail(FailKind::GetMpp, 5, HStatus::Busy).unwrap();
    m.fail(FailKind::GetMpp, 0, HStatus::Busy).unwrap();
    assert!(m.get_mpp().is_ok());
    assert_eq!(
        m.fail(FailKind::GetMpp, 1, HStatus::Success),
        Err(ModelError::SuccessNotInjectable)
    );
    assert_eq!(m.stats().injected_failures, 8);
    // Nothing of it reached the real hypervisor.
    assert!(m.real().raw().calls.is_empty());
}

#[test]
fn fail_kinds_parse() {
    for k in FailKind::ALL {
        assert_eq!(FailKind::parse(k.name()), Some(k));
        assert_eq!(FailKind::parse(k.hcall()), Some(k));
    }
    assert_eq!(FailKind::parse("PAGE_INIT"), Some(FailKind::PageInit));
    assert_eq!(FailKind::parse("h_get_mpp"), Some(FailKind::GetMpp));
    assert_eq!(FailKind::parse("page"), None);
}

#[test]
fn advance_runs_whole_steps_with_a_bound() {
    let mut m = model(4 * MIB);
    m.advance(1_000_000);
    assert_eq!(m.stats().steps, 0);
    m.advance(1_000_000 + 35_000);
    assert_eq!(m.stats().steps, 3);
    // The 5 ms remainder is kept.
    m.advance(1_040_000);
    assert_eq!(m.stats().steps, 4);
    // A long pause runs at most MAX_STEPS_PER_ADVANCE steps.
    m.advance(1_040_000 + 10_000 * 5000);
    assert_eq!(m.stats().steps, 4 + MAX_STEPS_PER_ADVANCE);
    assert_eq!(m.stats().dropped_steps, 5000 - MAX_STEPS_PER_ADVANCE);
    // Backwards: reset, no steps.
    m.advance(0);
    m.advance(9_999);
    assert_eq!(m.stats().steps, 4 + MAX_STEPS_PER_ADVANCE);
    m.set_step_us(1000).unwrap();
    m.advance(12_000);
    assert_eq!(m.stats().steps, 16 + MAX_STEPS_PER_ADVANCE);
    assert_eq!(m.set_step_us(0), Err(ModelError::ZeroSize("step_us")));
}

#[test]
fn bad_scenario_changes_are_errors_that_change_nothing() {
    let mut m = model(256 * MIB);
    m.add_lpar("a", &lpar(64 * MIB, 10, 32 * MIB)).unwrap();
    let before = shown(&m);
    let cases: Vec<(Result<(), ModelError>, ModelError)> = alloc::vec![
        (
            m.add_lpar("b", &lpar(64 * MIB, 256, 0)),
            ModelError::BadWeight(256)
        ),
        (m.add_lpar("b", &lpar(0, 1, 0)), ModelError::ZeroSize("mem")),
        (
            m.add_lpar("b", &LparParams::default()),
            ModelError::MissingKey("mem")
        ),
        (
            m.add_lpar("a", &lpar(64 * MIB, 1, 0)),
            ModelError::DuplicateName("a".into())
        ),
        (
            m.add_lpar("self", &lpar(64 * MIB, 1, 0)),
            ModelError::BadName("self".into())
        ),
        (
            m.add_lpar("b c", &lpar(64 * MIB, 1, 0)),
            ModelError::BadName("b c".into())
        ),
        (
            m.add_lpar("", &lpar(64 * MIB, 1, 0)),
            ModelError::BadName("".into())
        ),
        (
            m.add_lpar("b", &lpar(64 * MIB + 1, 1, 0)),
            ModelError::NotPageMultiple {
                what: "mem",
                bytes: 64 * MIB + 1
            }
        ),
        (
            m.add_lpar(
                "b",
                &LparParams {
                    mem: Some(MIB),
                    entitled: Some(2 * MIB),
                    ..LparParams::default()
                }
            ),
            ModelError::EntitlementAboveMemory {
                entitled: 2 * MIB,
                mem: MIB
            }
        ),
        (
            m.add_lpar(
                "b",
                &LparParams {
                    mem: Some(512 * MIB),
                    entitled: Some(200 * MIB),
                    ..LparParams::default()
                }
            ),
            ModelError::PoolTooSmall {
                pool: 256 * MIB,
                entitled: 280 * MIB
            }
        ),
        (
            m.set_lpar("zz", &lpar(MIB, 1, 0)),
            ModelError::UnknownName("zz".into())
        ),
        (
            m.set_lpar("a", &lpar(MIB, 300, 0)),
            ModelError::BadWeight(300)
        ),
        (m.del_lpar("zz"), ModelError::UnknownName("zz".into())),
        (m.set_pool(0), ModelError::ZeroSize("pool")),
        (
            m.set_pool(79 * MIB),
            ModelError::PoolTooSmall {
                pool: 79 * MIB,
                entitled: 80 * MIB
            }
        ),
        (
            m.set_pool(100),
            ModelError::NotPageMultiple {
                what: "pool",
                bytes: 100
            }
        ),
    ];
    for (got, want) in cases {
        assert_eq!(got, Err(want));
    }
    assert_eq!(shown(&m), before);
    // The error messages are printable.
    let mut s = String::new();
    core::fmt::write(
        &mut s,
        format_args!(
            "{}",
            ModelError::PoolTooSmall {
                pool: 1,
                entitled: 2
            }
        ),
    )
    .unwrap();
    assert!(s.contains("smaller"));
}

#[test]
fn partition_limits() {
    let mut m = model(1024 * MIB);
    for i in 0..MAX_PARTITIONS {
        m.add_lpar(
            &alloc::format!("p{i}"),
            &LparParams {
                mem: Some(4 * MIB),
                entitled: Some(0),
                ..LparParams::default()
            },
        )
        .unwrap();
    }
    assert_eq!(
        m.add_lpar("one-more", &lpar(4 * MIB, 1, 0)),
        Err(ModelError::TooManyPartitions)
    );
    // A smaller mem lowers a default entitlement; deleting returns memory.
    let mut m = model(256 * MIB);
    m.add_lpar("x", &lpar(64 * MIB, 1, 64 * MIB)).unwrap();
    m.set_lpar(
        "x",
        &LparParams {
            mem: Some(8 * MIB),
            ..LparParams::default()
        },
    )
    .unwrap();
    let x = m.others().next().unwrap();
    assert_eq!(
        (x.logical, x.entitled, x.share),
        (8 * MIB, 8 * MIB, 8 * MIB)
    );
    m.del_lpar("x").unwrap();
    assert_eq!(m.others().count(), 0);
    assert_eq!(m.others_allotment_bytes(), 0);
}

#[test]
fn console_command_and_rows() {
    let mut m = model(256 * MIB);
    let mut out = String::new();
    m.command(&["pool", "512M"], &mut out).unwrap();
    m.command(
        &[
            "lpar",
            "add",
            "db",
            "mem=0x10000000",
            "weight=200",
            "demand=192M",
        ],
        &mut out,
    )
    .unwrap();
    m.command(&["lpar", "set", "db", "ent=32M", "demand=1G"], &mut out)
        .unwrap();
    m.command(&["fail", "page_init", "2", "H_BUSY"], &mut out)
        .unwrap();
    m.command(&["fail", "H_GET_MPP", "1", "-2"], &mut out)
        .unwrap();
    m.command(&["target", "16M"], &mut out).unwrap();
    m.command(&["step", "3"], &mut out).unwrap();
    m.command(&["step"], &mut out).unwrap();
    m.command(&["step_us", "20000"], &mut out).unwrap();
    assert!(out.is_empty());
    assert_eq!(
        m.pending_failures(FailKind::PageInit),
        Some((2, HStatus::Busy))
    );
    assert_eq!(
        m.pending_failures(FailKind::GetMpp),
        Some((1, HStatus::Function))
    );
    assert_eq!(m.mode(), LoanMode::Target(16 * MIB));
    for (words, err) in [
        (
            &["pool", "12Q"][..],
            ModelError::bad_number("12Q", lpar_units::NumberError::Invalid),
        ),
        (
            &["lpar", "add", "x", "mem"],
            ModelError::UnknownKey("mem".into()),
        ),
        (
            &["lpar", "add", "x", "colour=red"],
            ModelError::UnknownKey("colour".into()),
        ),
        (
            &["fail", "frob", "1", "H_BUSY"],
            ModelError::UnknownHcall("frob".into()),
        ),
        (
            &["fail", "get_mpp", "1", "H_FROB"],
            ModelError::BadStatus("H_FROB".into()),
        ),
        (
            &["fail", "get_mpp", "99999999999", "H_BUSY"],
            ModelError::bad_number("99999999999", lpar_units::NumberError::Overflow),
        ),
        (
            &["step", "100001"],
            ModelError::bad_number("100001", lpar_units::NumberError::Overflow),
        ),
    ] {
        assert_eq!(m.command(words, &mut out), Err(err));
    }
    assert!(matches!(
        m.command(&["frob"], &mut out),
        Err(ModelError::Usage(_))
    ));
    m.command(&["auto"], &mut out).unwrap();
    m.command(&[], &mut out).unwrap();
    let mut names = Vec::new();
    for line in out.lines() {
        if let Some(rest) = line.strip_prefix("lpar ") {
            assert_eq!(
                rest,
                "db: mem=268435456 entitled=33554432 weight=200 demand=1073741824 share=\
                 268435456 allotment=4194304"
            );
            continue;
        }
        let (name, value) = line.split_once(": ").unwrap();
        assert!(
            name.chars().all(|c| c.is_ascii_alphabetic() || c == '_'),
            "{line}"
        );
        if name != "mode" {
            assert!(value.parse::<i64>().is_ok(), "{line}");
        }
        names.push(name);
    }
    for want in [
        "pool_bytes",
        "steps",
        "step_us",
        "mode",
        "target_bytes",
        "self_logical",
        "self_entitled",
        "self_weight",
        "self_demand",
        "self_share",
        "self_allotment",
        "self_loaned",
        "self_resident",
        "self_paged_out",
        "loan_request",
        "cmo_faults",
        "cmo_fault_time_usec",
    ] {
        assert!(names.contains(&want), "{want}");
    }
    assert!(out.contains("mode: auto\n"));
    assert!(out.contains("steps: 4\n"));
}

// ----- property tests -----

#[derive(Clone, Debug)]
enum Op {
    Pool(u64),
    Add(u8, u64, u64, u64, Option<u64>),
    Set(u8, Option<u64>, Option<u64>, Option<u64>),
    Del(u8),
    SetMpp(u64, u8),
    Steps(u16),
    Page(usize, u8),
    Access(usize),
    Target(Option<u64>),
    Advance(u64),
    Fail(u8, u32),
}

const RAM_PAGES: u64 = 8192; // 32 MiB: small, so many steps stay cheap

fn op() -> impl Strategy<Value = Op> {
    let pages = 0u64..20_000;
    prop_oneof![
        1 => (0u64..40_000).prop_map(Op::Pool),
        2 => (0u8..5, pages.clone(), 0u64..300, pages.clone(), proptest::option::of(0u64..6000))
            .prop_map(|(n, m, w, d, e)| Op::Add(n, m, w, d, e)),
        2 => (0u8..5, proptest::option::of(0u64..20_000), proptest::option::of(0u64..300), proptest::option::of(0u64..20_000))
            .prop_map(|(n, m, w, d)| Op::Set(n, m, w, d)),
        1 => (0u8..5).prop_map(Op::Del),
        1 => (0u64..(48 << 20), any::<u8>()).prop_map(|(e, w)| Op::SetMpp(e, w)),
        4 => (1u16..200).prop_map(Op::Steps),
        4 => (0usize..8300, 0u8..3).prop_map(|(i, s)| Op::Page(i, s)),
        2 => (0usize..8300).prop_map(Op::Access),
        1 => proptest::option::of(0u64..8300).prop_map(Op::Target),
        1 => (0u64..200_000).prop_map(Op::Advance),
        1 => (0u8..6, 0u32..3).prop_map(|(k, c)| Op::Fail(k, c)),
    ]
}

fn name(i: u8) -> String {
    alloc::format!("lp{i}")
}

fn apply(m: &mut PoolModel<Scripted>, op: &Op, clock: &mut u64) {
    let p = |pages: u64| pages * 4096;
    match *op {
        Op::Pool(n) => {
            let _ = m.set_pool(p(n));
        }
        Op::Add(n, mem, w, d, e) => {
            let params = LparParams {
                mem: Some(p(mem)),
                weight: Some(w),
                demand: Some(p(d)),
                entitled: e.map(p),
            };
            let _ = m.add_lpar(&name(n), &params);
        }
        Op::Set(n, mem, w, d) => {
            let params = LparParams {
                mem: mem.map(p),
                weight: w,
                demand: d.map(p),
                entitled: None,
            };
            let _ = m.set_lpar(&name(n), &params);
        }
        Op::Del(n) => {
            let _ = m.del_lpar(&name(n));
        }
        Op::SetMpp(e, w) => {
            let _ = m.set_mpp(e, w);
        }
        Op::Steps(_) => unreachable!("stepped by the caller"),
        Op::Page(i, s) => {
            let st = [PageState::Active, PageState::Unused, PageState::Loaned][usize::from(s)];
            let _ = m.set_page_state(p(i as u64), st);
        }
        Op::Access(i) => m.note_access(p(i as u64)),
        Op::Target(t) => {
            let _ = m.set_target(t.map(p));
        }
        Op::Advance(dt) => {
            *clock += dt;
            m.advance(*clock);
        }
        Op::Fail(k, c) => {
            let _ = m.fail(FailKind::ALL[usize::from(k)], c, HStatus::Busy);
        }
    }
}

fn check_invariants(m: &PoolModel<Scripted>) -> Result<(), TestCaseError> {
    let pool = m.pool_bytes();
    for l in core::iter::once(m.self_view()).chain(m.others()) {
        prop_assert!(l.entitled <= l.logical, "{:?}", l);
        prop_assert!(
            l.entitled <= l.share && l.share <= l.logical,
            "share outside [E, L]: {:?}",
            l
        );
        prop_assert!(l.allotment <= l.logical, "{:?}", l);
    }
    prop_assert!(
        m.total_allotment_bytes() <= pool,
        "allotments exceed the pool"
    );
    prop_assert!(
        m.others_allotment_bytes() + m.resident_bytes() <= pool,
        "resident memory exceeds the pool"
    );
    prop_assert!(
        m.pages.consistent(),
        "page counters or a loaned page paged out"
    );
    prop_assert_eq!(
        m.loaned_bytes() + m.resident_bytes() + m.paged_out_bytes(),
        RAM_PAGES * 4096
    );
    let sum_e: u64 = core::iter::once(m.self_view())
        .chain(m.others())
        .map(|l| l.entitled)
        .sum();
    prop_assert!(sum_e <= pool, "entitlements exceed the pool");
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn model_invariants_hold(ops in proptest::collection::vec(op(), 1..40)) {
        let mut m = model(RAM_PAGES * 4096);
        // Start with a small entitlement so that self can be squeezed.
        m.set_mpp(4 << 20, 128).unwrap();
        let mut clock = 0u64;
        check_invariants(&m)?;
        for op in &ops {
            let out_active_before = m.pages.paged_out_active();
            if let Op::Steps(n) = *op {
                for _ in 0..n {
                    let before: Vec<(u64, u64)> = m.lpars().map(|l| (l.allotment, l.logical)).collect();
                    let lr_before = m.loan_request_bytes();
                    m.step();
                    let pool = m.pool;
                    for (l, (a, logical)) in m.lpars().zip(&before) {
                        let cap = cap_pages(*logical, pool);
                        prop_assert!(l.allotment.abs_diff(*a) <= cap, "moved more than the cap");
                    }
                    if m.mode() == LoanMode::Auto {
                        let cap = cap_pages(m.me.logical, pool) * 4096;
                        prop_assert!(m.loan_request_bytes() - lr_before <= cap as i64);
                    }
                    check_invariants(&m)?;
                }
            } else {
                apply(&mut m, op, &mut clock);
                check_invariants(&m)?;
            }
            // Paging out takes Unused pages before Active ones: if an Active page
            // went out, no resident Unused page is left. (Page-state ops are left
            // out: setting a paged-out Unused page Active moves it between classes.)
            if !matches!(op, Op::Page(..)) && m.pages.paged_out_active() > out_active_before {
                prop_assert_eq!(m.pages.resident_unused(), 0, "an Active page went out before an Unused one");
            }
        }

        // Once allotments converge, the loan request is what self holds beyond its
        // share; when all demand fits in the pool, everything loaned may come back
        // (so it is 0 when nothing is loaned).
        m.set_target(None).unwrap();
        converge(&mut m);
        check_invariants(&m)?;
        let me = m.self_view();
        let held = me.logical as i64 - m.loaned_bytes() as i64;
        prop_assert_eq!(m.loan_request_bytes(), held - me.share as i64);
        let wants: u64 = m.lpars().map(|l| l.claim().want).sum();
        if wants <= m.pool {
            prop_assert_eq!(m.loan_request_bytes(), -(m.loaned_bytes() as i64));
        }
        if wants > m.pool {
            // Over-committed: nothing of the pool is left idle.
            prop_assert_eq!(m.pool_free_bytes(), 0);
        }
    }

    #[test]
    fn raw_only_sees_tce_and_zeroing(ops in proptest::collection::vec(op(), 1..30)) {
        let mut m = model(RAM_PAGES * 4096);
        let mut clock = 0;
        for op in &ops {
            match op {
                Op::Steps(n) => { for _ in 0..*n { m.step(); } }
                _ => apply(&mut m, op, &mut clock),
            }
        }
        let _ = m.zero_page(0);
        let _ = m.put_tce(1, 0, 0x3);
        for (opcode, _) in &m.real().raw().calls {
            prop_assert!(matches!(*opcode, opcodes::H_PAGE_INIT | opcodes::H_PUT_TCE | opcodes::H_GET_TCE));
        }
    }
}

#[test]
fn has_work_only_until_the_pool_has_settled() {
    let mut m = model(256 * MIB);
    assert!(!m.has_work(), "alone in its own pool: nothing to move");
    m.add_lpar("other", &lpar(256 * MIB, 128, 256 * MIB))
        .unwrap();
    assert!(m.has_work(), "a new partition's allotment must grow");
    let steps = converge(&mut m);
    assert!(steps > 0);
    assert!(!m.has_work(), "settled after {steps} steps");
    // A bigger pool moves allotments again.
    m.command(&["pool", "1G"], &mut String::new()).unwrap();
    converge(&mut m);
    assert!(!m.has_work());
}
