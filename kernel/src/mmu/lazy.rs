//! The linear map entered lazily (`docs/hash-mmu.md`, "Boot cost"): which pages
//! are entered before the prompt, which on first touch or in the background.
//!
//! Entering every page of RAM before the prompt made boot cost grow with RAM
//! (131,072 `H_ENTER` calls at 8 GiB with 64 KiB pages). Instead the glue enters
//! RAM below [`BOOT_MAPPED`] (the kernel image, its heap and stacks, the RMA at
//! the sizes QEMU gives, and every test's working memory at 1 GiB or less) at
//! boot; every other RAM page is entered by the background work a slice at a
//! time, or by the data storage interrupt of its first touch, whichever comes
//! first. [`LazyMap`] keeps one bit per page above the boot part and decides
//! what a fault means: a RAM page not yet entered is entered and the access
//! retried (so is one another CPU entered meanwhile); anything else (a hole,
//! beyond RAM, the boot part) is a real fault and gets the storage-fault report.

use alloc::vec;
use alloc::vec::Vec;

use crate::devtree::MemRange;

/// RAM below this is entered before the prompt.
pub const BOOT_MAPPED: u64 = 1 << 30;

/// What a data storage interrupt at an address means for the linear map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Touch {
    /// A RAM page not entered yet: enter the page at this address and retry.
    Enter(u64),
    /// A page of the lazy part entered since the fault was taken (by another
    /// CPU that touched it at the same time, or by the background walk on
    /// another CPU): retry. Entries are bolted, so an entered page cannot fault
    /// for want of a translation again.
    Entered,
    /// Not a page the lazy map enters (entered already, a hole, beyond RAM):
    /// a real fault.
    Fault,
}

/// The pages of RAM above the boot part, and which of them are entered.
#[derive(Clone, Debug)]
pub struct LazyMap {
    page: u64,
    /// Page-aligned RAM ranges above the boot part: (first page address, pages).
    spans: Vec<(u64, u64)>,
    /// One bit per page of `spans`, in order: entered.
    entered: Vec<u64>,
    pages: u64,
    entered_count: u64,
    /// The next page index the background walk looks at.
    cursor: u64,
}

/// Page-aligned RAM: each range shrunk to whole pages of `page` bytes.
fn aligned(ram: &[MemRange], page: u64) -> impl Iterator<Item = (u64, u64)> + '_ {
    ram.iter().filter_map(move |m| {
        let base = m.base.checked_add(page - 1)? & !(page - 1);
        let end = m.base.checked_add(m.size)? & !(page - 1);
        (end > base).then_some((base, end))
    })
}

/// The part of RAM entered before the prompt: every page-aligned range, cut at
/// `boot_limit`, as (base, size).
pub fn boot_ranges(ram: &[MemRange], page: u64, boot_limit: u64) -> Vec<MemRange> {
    aligned(ram, page)
        .filter_map(|(base, end)| {
            let end = end.min(boot_limit);
            (end > base).then(|| MemRange {
                base,
                size: end - base,
            })
        })
        .collect()
}

impl LazyMap {
    /// The pages of `ram` (page size `page`, a power of two) at or above
    /// `boot_limit`, none entered yet.
    pub fn new(ram: &[MemRange], page: u64, boot_limit: u64) -> LazyMap {
        let spans: Vec<(u64, u64)> = aligned(ram, page)
            .filter_map(|(base, end)| {
                let base = base.max(boot_limit.saturating_add(page - 1) & !(page - 1));
                (end > base).then(|| (base, (end - base) / page))
            })
            .collect();
        let pages = spans.iter().map(|s| s.1).sum::<u64>();
        let words = usize::try_from(pages.div_ceil(64)).unwrap_or(0);
        LazyMap {
            page,
            spans,
            entered: vec![0; words],
            pages,
            entered_count: 0,
            cursor: 0,
        }
    }

    /// Pages above the boot part.
    pub fn pages(&self) -> u64 {
        self.pages
    }

    /// Of those, pages not entered yet.
    pub fn pending(&self) -> u64 {
        self.pages - self.entered_count
    }

    /// The page index of `addr`, if it lies in a lazily entered page.
    fn index_of(&self, addr: u64) -> Option<u64> {
        let mut first = 0u64;
        for &(base, n) in &self.spans {
            if addr >= base && (addr - base) / self.page < n {
                return Some(first + (addr - base) / self.page);
            }
            first += n;
        }
        None
    }

    /// The address of page index `i`.
    fn addr_of(&self, mut i: u64) -> Option<u64> {
        for &(base, n) in &self.spans {
            if i < n {
                return Some(base + i * self.page);
            }
            i -= n;
        }
        None
    }

    fn is_entered(&self, i: u64) -> bool {
        let w = usize::try_from(i / 64).unwrap_or(usize::MAX);
        self.entered
            .get(w)
            .is_some_and(|x| x & (1 << (i % 64)) != 0)
    }

    /// What a data storage interrupt at `addr` means.
    pub fn on_fault(&self, addr: u64) -> Touch {
        match self.index_of(addr) {
            Some(i) if self.is_entered(i) => Touch::Entered,
            Some(_) => Touch::Enter(addr & !(self.page - 1)),
            None => Touch::Fault,
        }
    }

    /// Records that the page at `addr` (page-aligned) is entered. False if it
    /// is not a lazily entered page or was recorded already.
    pub fn mark_entered(&mut self, addr: u64) -> bool {
        let Some(i) = self.index_of(addr) else {
            return false;
        };
        let w = usize::try_from(i / 64).unwrap_or(usize::MAX);
        let Some(x) = self.entered.get_mut(w) else {
            return false;
        };
        let bit = 1u64 << (i % 64);
        if *x & bit != 0 {
            return false;
        }
        *x |= bit;
        self.entered_count += 1;
        true
    }

    /// The background walk: up to `max` page addresses not entered yet, from
    /// where the last call stopped (the caller enters and marks them).
    pub fn next_pending(&mut self, max: usize, out: &mut Vec<u64>) {
        out.clear();
        while out.len() < max && self.cursor < self.pages {
            let i = self.cursor;
            self.cursor += 1;
            if !self.is_entered(i) {
                if let Some(a) = self.addr_of(i) {
                    out.push(a);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const K64: u64 = 64 << 10;
    const G: u64 = 1 << 30;

    fn ram(v: &[(u64, u64)]) -> Vec<MemRange> {
        v.iter()
            .map(|&(base, size)| MemRange { base, size })
            .collect()
    }

    #[test]
    fn a_small_guest_is_all_entered_at_boot() {
        let r = ram(&[(0, 512 << 20)]);
        assert_eq!(boot_ranges(&r, K64, BOOT_MAPPED), r);
        let l = LazyMap::new(&r, K64, BOOT_MAPPED);
        assert_eq!((l.pages(), l.pending()), (0, 0));
        assert_eq!(l.on_fault(0x1000), Touch::Fault);
        assert_eq!(l.on_fault(1 << 40), Touch::Fault);
    }

    #[test]
    fn boot_enters_the_first_gib_and_the_rest_waits() {
        // 8 GiB in two nodes, as QEMU's pseries lays it out (memory@0 and the rest).
        let r = ram(&[(0, 4 * G), (4 * G, 4 * G)]);
        assert_eq!(boot_ranges(&r, K64, BOOT_MAPPED), ram(&[(0, G)]));
        let mut l = LazyMap::new(&r, K64, BOOT_MAPPED);
        assert_eq!(l.pages(), 7 * G / K64);
        assert_eq!(l.pending(), 7 * G / K64);
        // The boot part is never entered on a fault: a fault there is real.
        assert_eq!(l.on_fault(G - 8), Touch::Fault);
        // First touch above it: the page is entered, once.
        assert_eq!(l.on_fault(G + 0x1_2345), Touch::Enter(G + 0x1_0000));
        assert!(l.mark_entered(G + 0x1_0000));
        assert!(!l.mark_entered(G + 0x1_0000));
        assert_eq!(
            l.on_fault(G + 0x1_2345),
            Touch::Entered,
            "entered meanwhile: retried"
        );
        assert_eq!(l.on_fault(5 * G), Touch::Enter(5 * G));
        // Beyond RAM is never entered.
        assert_eq!(l.on_fault(8 * G), Touch::Fault);
        assert_eq!(l.on_fault(u64::MAX), Touch::Fault);
        assert!(!l.mark_entered(8 * G));
        assert_eq!(l.pending(), 7 * G / K64 - 1);
    }

    #[test]
    fn holes_are_not_entered_and_the_walk_covers_the_rest_once() {
        // RAM with a hole at 1.5..2 GiB and an unaligned end.
        let r = ram(&[(0, G + (G >> 1)), (2 * G, G + 0x8000)]);
        let mut l = LazyMap::new(&r, K64, BOOT_MAPPED);
        assert_eq!(l.on_fault(G + (G >> 1) + 0x100), Touch::Fault, "hole");
        assert_eq!(l.on_fault(3 * G), Touch::Fault, "the partial last page");
        let want = (G >> 1) / K64 + G / K64;
        assert_eq!(l.pages(), want);
        // A page entered on a fault is skipped by the walk.
        assert!(l.mark_entered(2 * G + K64));
        let mut seen = std::collections::BTreeSet::new();
        let mut out = Vec::new();
        loop {
            l.next_pending(1000, &mut out);
            if out.is_empty() {
                break;
            }
            for &a in &out {
                assert!(seen.insert(a), "{a:#x} twice");
                assert_eq!(l.on_fault(a + 8), Touch::Enter(a));
                assert!(l.mark_entered(a));
            }
        }
        assert_eq!(seen.len() as u64, want - 1);
        assert!(!seen.contains(&(2 * G + K64)));
        assert_eq!(l.pending(), 0);
    }
}
