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
    for _ in 0..512 {
        let p = t.pick_for_loan().unwrap();
        assert!((1536..2048).contains(&p), "{p}");
        t.mark_loaned(p).unwrap();
    }
    let next = t.pick_for_loan().unwrap();
    assert!(
        (0..1024).contains(&next),
        "a block with 511 free frames next: {next}"
    );
    check_counts(&t);
    // Returns come from the least-loaned block first.
    t.mark_loaned(next).unwrap();
    assert_eq!(t.pick_for_return(), Some(next));
    t.mark_returned(next).unwrap();
    assert!(t.mark_returned(next).is_err());
    assert!(t.mark_loaned(5).is_err(), "a used frame cannot be loaned");
    check_counts(&t);
    assert_eq!(t.counts().loaned, 512);
}

#[test]
fn poison_bits_are_cleared_on_return() {
    let mut t = FrameTable::new(&[r(0, 16)], &[]).unwrap();
    let p = t.pick_for_loan().unwrap();
    t.mark_loaned(p).unwrap();
    assert!(!t.is_poisoned(p));
    t.set_poisoned(p, true);
    assert!(t.is_poisoned(p));
    t.mark_returned(p).unwrap();
    assert!(!t.is_poisoned(p));
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
