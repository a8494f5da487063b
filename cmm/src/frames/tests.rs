//! Unit tests of the frame table: construction, transitions, counts and the
//! whole-block preference of loans.

use super::*;
use alloc::vec::Vec;

fn r(start_pfn: u64, count: u64) -> Region {
    Region { start_pfn, count }
}

fn check_counts(t: &FrameTable) {
    let c = t.counts();
    let mut seen = FrameCounts::default();
    for pfn in t.all_frames() {
        match t.state(pfn).unwrap() {
            FrameState::Free => seen.free += 1,
            FrameState::Loaned => seen.loaned += 1,
            FrameState::Reserved => seen.reserved += 1,
            FrameState::Used(o) => {
                seen.used += 1;
                match o {
                    Owner::Workload => seen.workload += 1,
                    Owner::Cache => seen.cache += 1,
                    Owner::Kernel => {}
                }
            }
        }
    }
    seen.total = seen.free + seen.used + seen.loaned;
    assert_eq!(c, seen);
}

#[test]
fn reserved_ranges_are_taken_out() {
    let t = FrameTable::new(&[r(0, 1024), r(4096, 100)], &[r(0, 16), r(4090, 20)]).unwrap();
    let c = t.counts();
    assert_eq!(c.reserved, 16 + 14);
    assert_eq!(c.total, 1024 + 100 - 30);
    assert_eq!(t.state(3), Some(FrameState::Reserved));
    assert_eq!(t.state(4096), Some(FrameState::Reserved));
    assert_eq!(t.state(4110), Some(FrameState::Free));
    assert_eq!(t.state(2000), None);
    check_counts(&t);
    assert!(FrameTable::new(&[r(0, 10)], &[r(0, 10)]).is_err());
}

#[test]
fn alloc_release_and_errors() {
    let mut t = FrameTable::new(&[r(0, 8)], &[]).unwrap();
    let mut got = Vec::new();
    while let Some(p) = t.alloc(Owner::Workload) {
        got.push(p);
    }
    assert_eq!(got.len(), 8);
    assert_eq!(t.counts().workload, 8);
    assert_eq!(t.release(got[3]), Ok(Owner::Workload));
    assert!(matches!(
        t.release(got[3]),
        Err(CmmError::WrongState { .. })
    ));
    assert!(matches!(t.release(100), Err(CmmError::NotAFrame { .. })));
    assert_eq!(t.alloc(Owner::Cache), Some(got[3]));
    assert_eq!(t.state(got[3]), Some(FrameState::Used(Owner::Cache)));
    check_counts(&t);
}

#[test]
fn loans_fill_whole_blocks_first() {
    // Four blocks; the kernel holds one frame in blocks 0, 1 and 3.
    let mut t = FrameTable::new(&[r(0, 2048)], &[]).unwrap();
    let mut kernel = Vec::new();
    for _ in 0..1100 {
        kernel.push(t.alloc(Owner::Kernel).unwrap());
    }
    // Frames 0..1100 used: blocks 0 and 1 full, block 2 partly; free all but one per block.
    for &p in &kernel {
        if p != 5 && p != 600 {
            t.release(p).unwrap();
        }
    }
    t.alloc(Owner::Kernel); // takes frame 1100 (cursor)
                            // Block 3 (1536..2048) is the only whole free block.
    let mut batch = [0u64; 200];
    let mut loaned = Vec::new();
    while loaned.len() < 512 {
        let n = t.pick_loan_batch(&mut batch);
        assert!(n > 0 && n <= 200);
        assert!(
            batch[..n].iter().all(|p| (1536..2048).contains(p)),
            "{batch:?}"
        );
        t.mark_loaned(&batch[..n]).unwrap();
        loaned.extend_from_slice(&batch[..n]);
        t.check().unwrap();
    }
    loaned.sort_unstable();
    assert_eq!(
        loaned,
        (1536..2048).collect::<Vec<_>>(),
        "the whole block, once each"
    );
    let n = t.pick_loan_batch(&mut batch[..1]);
    let next = batch[0];
    assert_eq!(n, 1);
    assert!(
        (0..1024).contains(&next),
        "a block with 511 free frames next: {next}"
    );
    check_counts(&t);
    // Returns come from the least-loaned block first.
    t.mark_loaned(&[next]).unwrap();
    assert_eq!(t.pick_return_batch(&mut batch), 1);
    assert_eq!(batch[0], next);
    t.mark_returned(&[next]).unwrap();
    assert!(t.mark_returned(&[next]).is_err());
    assert!(
        t.mark_loaned(&[5]).is_err(),
        "a used frame cannot be loaned"
    );
    check_counts(&t);
    t.check().unwrap();
    assert_eq!(t.counts().loaned, 512);
}

#[test]
fn a_batch_with_one_wrong_frame_changes_nothing() {
    let mut t = FrameTable::new(&[r(0, 64)], &[r(0, 1)]).unwrap();
    let used = t.alloc(Owner::Kernel).unwrap();
    let before = t.counts();
    assert!(t.mark_loaned(&[10, 11, used]).is_err());
    assert!(t.mark_loaned(&[10, 1000]).is_err(), "not a frame");
    assert_eq!(t.counts(), before);
    assert_eq!(t.state(10), Some(FrameState::Free));
    t.mark_loaned(&[10, 11, 10]).unwrap();
    assert_eq!(t.counts().loaned, 2, "a frame named twice moves once");
    assert!(t.mark_returned(&[10, 12]).is_err());
    assert_eq!(t.counts().loaned, 2);
    t.check().unwrap();
    let mut out = [0u64; 8];
    assert_eq!(t.pick_return_batch(&mut out), 2);
    assert_eq!(&out[..2], [10, 11]);
    t.mark_returned(&out[..2]).unwrap();
    assert_eq!(t.pick_return_batch(&mut out), 0);
    assert_eq!(t.counts(), before);
    t.check().unwrap();
}

#[test]
fn poison_bits_are_cleared_on_return() {
    let mut t = FrameTable::new(&[r(0, 16)], &[]).unwrap();
    let mut b = [0u64; 1];
    assert_eq!(t.pick_loan_batch(&mut b), 1);
    let p = b[0];
    t.mark_loaned(&[p]).unwrap();
    assert!(!t.is_poisoned(p));
    assert!(!t.may_hold_poison());
    t.set_poisoned(p, true);
    assert!(t.is_poisoned(p));
    assert!(t.may_hold_poison());
    t.mark_returned(&[p]).unwrap();
    assert!(!t.is_poisoned(p));
    t.check().unwrap();
}

#[test]
fn check_finds_a_broken_counter() {
    let mut t = FrameTable::new(&[r(0, 1024)], &[]).unwrap();
    t.check().unwrap();
    t.counts.free -= 1;
    assert!(t.check().is_err());
    t.counts.free += 1;
    t.blocks.set_loaned(600, true);
    assert_eq!(
        t.check(),
        Err("a 2 MiB block counter differs from the bitmaps")
    );
    t.blocks.set_loaned(600, false);
    t.loaned.set(3);
    assert!(t.check().is_err(), "free and loaned at once");
}

#[test]
fn walking_sets() {
    let mut t = FrameTable::new(&[r(10, 6)], &[r(12, 1)]).unwrap();
    assert_eq!(t.iter(FrameSet::Reserved).collect::<Vec<_>>(), [12]);
    let a = t.alloc(Owner::Workload).unwrap();
    let b = t.alloc(Owner::Workload).unwrap();
    assert_eq!(t.next_in(FrameSet::Workload, None), Some(a));
    assert_eq!(t.next_in(FrameSet::Workload, Some(a)), Some(b));
    assert_eq!(t.next_in(FrameSet::Workload, Some(b)), None);
    assert_eq!(t.iter(FrameSet::Free).count(), 3);
    assert_eq!(t.block_free(10), Some((3, 6)));
}
