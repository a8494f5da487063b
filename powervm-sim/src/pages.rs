//! The model's view of this partition's memory: one byte per 4 KiB page.
//!
//! Each page has a CMO state (Active, Unused, Loaned) and a "paged out" flag meaning
//! the hypervisor holds no pool memory for it. Loaned pages are never paged out and
//! never resident. Counters per (state, flag) class make every total O(1); only
//! paging out scans, from a rotating hand, Unused pages first and Active ones after.
//!
//! Transitions:
//! - set Loaned: the page leaves the partition (no longer resident nor paged out).
//! - set Active: a loaned page comes back resident; otherwise only the state changes
//!   (a paged-out page stays out until touched).
//! - set Unused: a resident page stays resident; a loaned page comes back without
//!   backing (counted as paged out: it holds nothing, no frame is spent on it).
//! - touch ([`Pages::touch`]): a paged-out page is faulted back in; a touched page
//!   becomes Active. A loaned page is left alone and reported.

use alloc::vec::Vec;

use hcall::page::PageState;

const ACTIVE: u8 = 0;
const UNUSED: u8 = 1;
const LOANED: u8 = 2;
const OUT: u8 = 4;
const CLASSES: usize = 8;

/// What touching a page found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Touch {
    /// It was resident.
    Resident,
    /// It was paged out and has been brought back (a CMO fault).
    Fault,
    /// It is loaned: the OS broke its promise. Nothing changed.
    Loaned,
    /// Beyond the partition's memory. Nothing changed.
    OutOfRange,
}

/// The per-page state array with its class counters.
#[derive(Clone, Debug)]
pub struct Pages {
    state: Vec<u8>,
    counts: [u64; CLASSES],
    hand: usize,
}

impl Pages {
    /// `n` pages, all Active and resident; `None` if the memory cannot be had.
    pub fn new(n: usize) -> Option<Self> {
        let mut state = Vec::new();
        state.try_reserve_exact(n).ok()?;
        state.resize(n, ACTIVE);
        let mut counts = [0; CLASSES];
        counts[usize::from(ACTIVE)] = n as u64;
        Some(Pages {
            state,
            counts,
            hand: 0,
        })
    }

    /// Number of pages.
    pub fn len(&self) -> usize {
        self.state.len()
    }

    /// True when there are no pages.
    pub fn is_empty(&self) -> bool {
        self.state.is_empty()
    }

    fn count(&self, class: u8) -> u64 {
        self.counts[usize::from(class)]
    }

    fn put(&mut self, i: usize, new: u8) {
        let old = self.state[i];
        self.counts[usize::from(old)] -= 1;
        self.counts[usize::from(new)] += 1;
        self.state[i] = new;
    }

    /// The state of page `i` and whether it is paged out.
    pub fn get(&self, i: usize) -> Option<(PageState, bool)> {
        let b = *self.state.get(i)?;
        let st = match b & 3 {
            UNUSED => PageState::Unused,
            LOANED => PageState::Loaned,
            _ => PageState::Active,
        };
        Some((st, b & OUT != 0))
    }

    /// Pages loaned to the hypervisor.
    pub fn loaned(&self) -> u64 {
        self.count(LOANED)
    }

    /// Pages backed by pool memory.
    pub fn resident(&self) -> u64 {
        self.count(ACTIVE) + self.count(UNUSED)
    }

    /// Resident pages hinted Unused.
    pub fn resident_unused(&self) -> u64 {
        self.count(UNUSED)
    }

    /// Pages neither loaned nor backed.
    pub fn paged_out(&self) -> u64 {
        self.count(ACTIVE | OUT) + self.count(UNUSED | OUT)
    }

    /// Paged-out pages in the Active state (their data is in paging space).
    pub fn paged_out_active(&self) -> u64 {
        self.count(ACTIVE | OUT)
    }

    /// Changes the state of page `i`; returns true if it became resident (the caller
    /// then checks the pool). Out of range: nothing happens, returns false.
    pub fn set_state(&mut self, i: usize, st: PageState) -> bool {
        let Some(&old) = self.state.get(i) else {
            return false;
        };
        let new = match (st, old) {
            (PageState::Loaned, _) => LOANED,
            (PageState::Active, LOANED) => ACTIVE,
            (PageState::Active, b) => ACTIVE | (b & OUT),
            (PageState::Unused, LOANED) => UNUSED | OUT,
            (PageState::Unused, b) => UNUSED | (b & OUT),
        };
        self.put(i, new);
        old == LOANED && new & (OUT | LOANED) == 0
    }

    /// The OS touches page `i` (see [`Touch`]).
    pub fn touch(&mut self, i: usize) -> Touch {
        let Some(&old) = self.state.get(i) else {
            return Touch::OutOfRange;
        };
        match old {
            LOANED => Touch::Loaned,
            b if b & OUT != 0 => {
                self.put(i, ACTIVE);
                Touch::Fault
            }
            _ => {
                self.put(i, ACTIVE);
                Touch::Resident
            }
        }
    }

    /// The hypervisor writes page `i` itself (H_ZERO_PAGE): backed again without a
    /// fault, state unchanged; returns true if it became resident. Loaned pages stay.
    pub fn fill(&mut self, i: usize) -> bool {
        match self.state.get(i) {
            Some(&b) if b != LOANED && b & OUT != 0 => {
                self.put(i, b & !OUT);
                true
            }
            _ => false,
        }
    }

    /// Pages out up to `k` resident pages, Unused ones first; returns how many.
    pub fn page_out(&mut self, k: u64) -> u64 {
        let from_unused = self.page_out_class(UNUSED, k);
        from_unused + self.page_out_class(ACTIVE, k - from_unused)
    }

    fn page_out_class(&mut self, class: u8, k: u64) -> u64 {
        let n = self.state.len();
        let want = k.min(self.count(class));
        let mut done = 0;
        let mut i = self.hand;
        let mut scanned = 0;
        while done < want && scanned < n {
            if i >= n {
                i = 0;
            }
            if self.state[i] == class {
                self.put(i, class | OUT);
                done += 1;
                self.hand = i + 1;
            }
            i += 1;
            scanned += 1;
        }
        done
    }

    /// Checks the counters against the array (tests).
    #[cfg(test)]
    pub fn consistent(&self) -> bool {
        let mut c = [0u64; CLASSES];
        for &b in &self.state {
            c[usize::from(b)] += 1;
        }
        c == self.counts && c[usize::from(LOANED | OUT)] == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn unused_pages_go_out_first() {
        let mut p = Pages::new(10).unwrap();
        p.set_state(7, PageState::Unused);
        p.set_state(2, PageState::Unused);
        p.set_state(5, PageState::Loaned);
        assert_eq!(p.page_out(3), 3);
        assert_eq!(p.get(2), Some((PageState::Unused, true)));
        assert_eq!(p.get(7), Some((PageState::Unused, true)));
        assert_eq!(p.paged_out_active(), 1);
        assert_eq!(p.get(5), Some((PageState::Loaned, false)));
        assert_eq!((p.resident(), p.paged_out(), p.loaned()), (6, 3, 1));
        // Asking for more than there is pages out every resident page, never a loaned one.
        assert_eq!(p.page_out(100), 6);
        assert_eq!((p.resident(), p.paged_out(), p.loaned()), (0, 9, 1));
        assert!(p.consistent());
    }

    #[test]
    fn transitions() {
        let mut p = Pages::new(4).unwrap();
        assert!(!p.set_state(0, PageState::Loaned));
        assert!(p.set_state(0, PageState::Active));
        assert_eq!(p.get(0), Some((PageState::Active, false)));
        p.set_state(1, PageState::Loaned);
        assert!(!p.set_state(1, PageState::Unused));
        assert_eq!(p.get(1), Some((PageState::Unused, true)));
        assert_eq!(p.touch(1), Touch::Fault);
        assert_eq!(p.get(1), Some((PageState::Active, false)));
        p.set_state(2, PageState::Unused);
        assert_eq!(p.touch(2), Touch::Resident);
        assert_eq!(p.get(2), Some((PageState::Active, false)));
        p.set_state(3, PageState::Loaned);
        assert_eq!(p.touch(3), Touch::Loaned);
        assert!(!p.fill(3));
        assert_eq!(p.touch(4), Touch::OutOfRange);
        assert!(!p.set_state(4, PageState::Active));
        p.page_out(1);
        let out = (0..4).find(|&i| p.get(i).unwrap().1).unwrap();
        assert!(p.fill(out));
        assert_eq!(p.paged_out(), 0);
        assert!(p.consistent());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn page_out_order_and_counts(
            ops in proptest::collection::vec((0usize..70, 0u8..5), 0..200),
            k in 0u64..80,
        ) {
            let mut p = Pages::new(64).unwrap();
            for (i, op) in ops {
                match op {
                    0 => { p.set_state(i, PageState::Active); }
                    1 => { p.set_state(i, PageState::Unused); }
                    2 => { p.set_state(i, PageState::Loaned); }
                    3 => { p.touch(i); }
                    _ => { p.page_out(u64::try_from(i % 5).unwrap()); }
                }
                prop_assert!(p.consistent());
            }
            let (unused, resident, loaned, out_active) =
                (p.resident_unused(), p.resident(), p.loaned(), p.paged_out_active());
            let done = p.page_out(k);
            prop_assert_eq!(done, k.min(resident));
            prop_assert_eq!(p.resident_unused(), unused.saturating_sub(k));
            prop_assert_eq!(p.paged_out_active() - out_active, k.saturating_sub(unused).min(resident - unused));
            prop_assert_eq!(p.loaned(), loaned);
            prop_assert_eq!(p.resident() + p.paged_out() + p.loaned(), 64);
            prop_assert!(p.consistent());
        }
    }
}
