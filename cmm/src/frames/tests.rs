//! Unit tests of the frame table: construction, transitions, counts and the
//! whole-block preference of loans.

use super::*;
use alloc::vec::Vec;
use batch::{FrameBatch, BATCH};

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
            FrameState::Reporting => seen.reporting += 1,
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
    seen.total = seen.free + seen.used + seen.loaned + seen.reporting;
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
    t.check().unwrap();
    assert_eq!(
        t.block_free(4096),
        Some((86, 100)),
        "frames 4096..4110 reserved"
    );
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
    let mut batch = FrameBatch::new();
    let mut loaned = Vec::new();
    while loaned.len() < 512 {
        let n = t.pick_loan_batch(&mut batch, 200);
        assert!(n > 0 && n <= 200 && n == batch.len());
        assert!(
            batch
                .addrs()
                .iter()
                .all(|a| (1536..2048).contains(&(a / 4096))),
            "{batch:?}"
        );
        t.mark_loaned(&batch, n).unwrap();
        loaned.extend(batch.addrs().iter().map(|a| a / 4096));
        t.check().unwrap();
    }
    loaned.sort_unstable();
    assert_eq!(
        loaned,
        (1536..2048).collect::<Vec<_>>(),
        "the whole block, once each"
    );
    assert_eq!(t.pick_loan_batch(&mut batch, 1), 1);
    let next = batch.addrs()[0] / 4096;
    assert!(
        (0..1024).contains(&next),
        "a block with 511 free frames next: {next}"
    );
    check_counts(&t);
    // Returns come from the least-loaned block first.
    t.mark_loaned(&batch, 1).unwrap();
    assert!(t.mark_loaned(&batch, 1).is_err(), "no longer free");
    assert_eq!(t.pick_return_batch(&mut batch, BATCH), 1);
    assert_eq!(batch.addrs(), [next * 4096]);
    t.mark_returned(&batch, 1).unwrap();
    assert!(t.mark_returned(&batch, 1).is_err());
    check_counts(&t);
    t.check().unwrap();
    assert_eq!(t.counts().loaned, 512);
}

#[test]
fn only_the_accepted_front_of_a_batch_moves() {
    let mut t = FrameTable::new(&[r(0, 64)], &[r(0, 1)]).unwrap();
    let before = t.counts();
    let mut b = FrameBatch::new();
    assert_eq!(t.pick_loan_batch(&mut b, 10), 10);
    assert_eq!(b.addrs()[0], 4096, "frame 0 is reserved");
    t.mark_loaned(&b, 4).unwrap();
    assert_eq!(t.counts().loaned, 4);
    assert_eq!(t.state(4), Some(FrameState::Loaned));
    assert_eq!(t.state(5), Some(FrameState::Free));
    // A batch whose frames changed state since the pick changes nothing.
    assert!(t.mark_loaned(&b, 10).is_err());
    assert_eq!(t.counts().loaned, 4);
    t.check().unwrap();
    assert_eq!(t.pick_return_batch(&mut b, BATCH), 4);
    t.mark_returned(&b, 4).unwrap();
    assert_eq!(t.pick_return_batch(&mut b, BATCH), 0);
    assert!(b.is_empty());
    assert_eq!(t.counts(), before);
    t.check().unwrap();
}

#[test]
fn the_loaned_view_follows_loans_and_returns_and_a_clone_is_a_copy() {
    let mut t = FrameTable::new(&[r(0, 64), r(1000, 8)], &[r(0, 1)]).unwrap();
    let view = t.loaned_view();
    let mut b = FrameBatch::new();
    assert_eq!(t.pick_loan_batch(&mut b, 3), 3);
    t.mark_loaned(&b, 3).unwrap();
    let loaned: Vec<u64> = (0..1100).filter(|&p| view.is_loaned(p)).collect();
    let want: Vec<u64> = b.addrs()[..3].iter().map(|a| a / 4096).collect();
    assert_eq!(loaned, want, "the view taken before the loan sees it");
    let copy = t.clone();
    assert_eq!(t.pick_return_batch(&mut b, 1), 1);
    t.mark_returned(&b, 1).unwrap();
    let returned = b.addrs()[0] / 4096;
    assert!(!view.is_loaned(returned), "the view sees the return");
    assert!(
        copy.loaned_view().is_loaned(returned),
        "a clone of the table has its own bits"
    );
    assert!(!view.is_loaned(2000), "not RAM");
    let mut left: Vec<u64> = want.clone();
    left.retain(|&p| p != returned);
    assert_eq!(view.pfns().collect::<Vec<_>>(), left);
    t.check().unwrap();
    copy.check().unwrap();
}

#[test]
fn the_free_walk_covers_every_free_frame_once() {
    let mut t = FrameTable::new(&[r(0, 1500), r(3000, 700)], &[r(0, 3), r(1000, 600)]).unwrap();
    let used = t.alloc(Owner::Kernel).unwrap();
    let mut b = FrameBatch::new();
    let mut seen = Vec::new();
    let mut from = 0;
    while from < t.index_len() {
        let (n, next) = t.pick_free_from(from, &mut b, 100);
        assert!(n <= 100 && next > from);
        seen.extend(b.addrs().iter().map(|a| a / 4096));
        from = next;
    }
    let free: Vec<u64> = t.iter(FrameSet::Free).collect();
    assert_eq!(seen, free);
    assert!(!seen.contains(&used));
}

#[test]
fn poison_bits_are_cleared_on_return() {
    let mut t = FrameTable::new(&[r(0, 16)], &[]).unwrap();
    let mut b = FrameBatch::new();
    assert_eq!(t.pick_loan_batch(&mut b, 1), 1);
    let p = b.addrs()[0] / 4096;
    t.mark_loaned(&b, 1).unwrap();
    assert!(!t.is_poisoned(p));
    assert!(!t.may_hold_poison());
    t.set_poisoned(&b, 1);
    assert!(t.is_poisoned(p));
    assert!(t.may_hold_poison());
    assert_eq!(t.poisoned_in(&b, 1).collect::<Vec<_>>(), [true]);
    t.check().unwrap();
    t.mark_returned(&b, 1).unwrap();
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
