//! The stale-entry sweep: before the linear map is entered, every valid entry left
//! in the hashed page table is removed, except the hypervisor's own entries for the
//! virtual real mode area (VRMA). PowerVM may hand a partition a table that is not
//! empty (what firmware or a previous OS entered); a stale entry for a virtual page
//! the kernel maps would translate it to the wrong real page (`docs/hash-mmu.md`).
//!
//! The decision per entry is [`verdict`]; [`sweep`] walks the table four entries at
//! a time through a [`HashTable`] (H_READ with H_READ_4, H_REMOVE in the glue; a
//! fake in the tests). A group that cannot be read, or an entry that cannot be
//! removed, is counted and the sweep goes on: the first refusal is kept with its
//! status for the log.

use super::hpte::HpteV;
use hcall::status::raw::H_FUNCTION;

/// The `V` bits that mark a VRMA entry: a 1 TiB segment (`B` = 01) and the VRMA's
/// VSID, 0x1ffffff. An entry is the VRMA's when all of them are set.
pub const VRMA_MASK: u64 = 0x4001_ffff_ff00_0000;

/// What the sweep does with one entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Not valid: nothing to do.
    Empty,
    /// The hypervisor's VRMA entry: kept.
    Vrma,
    /// Valid and not the VRMA's: removed.
    Stale,
}

/// The verdict for an entry whose first doubleword is `v`.
pub fn verdict(v: u64) -> Verdict {
    if v & HpteV::VALID.bits() == 0 {
        Verdict::Empty
    } else if v & VRMA_MASK == VRMA_MASK {
        Verdict::Vrma
    } else {
        Verdict::Stale
    }
}

/// The page table as the sweep sees it. Errors are the raw PAPR status.
pub trait HashTable {
    /// The first doublewords of the four entries from `ptex` (a multiple of 4).
    fn read4(&mut self, ptex: u64) -> Result<[u64; 4], i64>;
    /// Removes the entry at `ptex`.
    fn remove(&mut self, ptex: u64) -> Result<(), i64>;
}

/// The first refusal of a sweep.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// `H_READ` or `H_REMOVE`.
    pub call: &'static str,
    /// The entry index.
    pub ptex: u64,
    /// The PAPR status.
    pub status: i64,
}

/// What a sweep found and did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SweepStats {
    /// Entries looked at.
    pub entries: u64,
    /// Stale entries removed.
    pub removed: u64,
    /// VRMA entries kept.
    pub vrma: u64,
    /// Groups of four that could not be read.
    pub unread_groups: u64,
    /// Stale entries that could not be removed.
    pub not_removed: u64,
    /// The first refusal, if any.
    pub first_refusal: Option<Refusal>,
    /// The hypervisor does not offer H_READ (it answered H_FUNCTION): the sweep
    /// stopped at its first group, since every other read would be refused the
    /// same way.
    pub read_unsupported: bool,
}

impl SweepStats {
    fn refused(&mut self, call: &'static str, ptex: u64, status: i64) {
        self.first_refusal
            .get_or_insert(Refusal { call, ptex, status });
    }
}

/// Sweeps the first `entries` entries of `table` (rounded down to whole groups of
/// four): removes every [`Verdict::Stale`] one.
pub fn sweep<T: HashTable + ?Sized>(table: &mut T, entries: u64) -> SweepStats {
    let mut st = SweepStats::default();
    let mut ptex = 0u64;
    while ptex.saturating_add(4) <= entries {
        st.entries += 4;
        match table.read4(ptex) {
            Err(status) => {
                st.unread_groups += 1;
                st.refused("H_READ", ptex, status);
                if status == H_FUNCTION {
                    st.read_unsupported = true;
                    break;
                }
            }
            Ok(vs) => {
                for (i, &v) in (0u64..).zip(vs.iter()) {
                    match verdict(v) {
                        Verdict::Empty => {}
                        Verdict::Vrma => st.vrma += 1,
                        Verdict::Stale => match table.remove(ptex + i) {
                            Ok(()) => st.removed += 1,
                            Err(status) => {
                                st.not_removed += 1;
                                st.refused("H_REMOVE", ptex + i, status);
                            }
                        },
                    }
                }
            }
        }
        ptex += 4;
    }
    st
}

/// The number of entries in a table of `2^pft_shift` bytes (16 bytes each).
pub fn entries_of(pft_shift: u32) -> u64 {
    1u64.checked_shl(pft_shift).unwrap_or(0) >> 4
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::vec::Vec;

    /// A table of first doublewords; `bad_groups` cannot be read, `stuck` entries
    /// cannot be removed.
    #[derive(Default)]
    struct Table {
        v: BTreeMap<u64, u64>,
        bad_groups: Vec<u64>,
        /// Every read is refused with H_FUNCTION (no H_READ).
        no_read: bool,
        reads: u64,
        stuck: Vec<u64>,
        removes: Vec<u64>,
    }

    impl HashTable for Table {
        fn read4(&mut self, ptex: u64) -> Result<[u64; 4], i64> {
            assert_eq!(ptex % 4, 0);
            self.reads += 1;
            if self.no_read {
                return Err(H_FUNCTION);
            }
            if self.bad_groups.contains(&ptex) {
                return Err(-4);
            }
            Ok(core::array::from_fn(|i| {
                self.v.get(&(ptex + i as u64)).copied().unwrap_or(0)
            }))
        }
        fn remove(&mut self, ptex: u64) -> Result<(), i64> {
            self.removes.push(ptex);
            if self.stuck.contains(&ptex) {
                return Err(-1);
            }
            self.v.remove(&ptex);
            Ok(())
        }
    }

    const VALID: u64 = 1;
    /// A bolted 4 KiB entry of the kernel's linear map (256 MiB segment).
    const OURS: u64 = (0x1234 << 7) | 0x10 | VALID;
    /// The VRMA's entry: 1 TiB segment, VSID 0x1ffffff, large, valid.
    const VRMA: u64 = VRMA_MASK | 0x4 | VALID;

    #[test]
    fn verdicts() {
        assert_eq!(verdict(0), Verdict::Empty);
        assert_eq!(verdict(OURS & !VALID), Verdict::Empty, "invalid is empty");
        assert_eq!(verdict(VRMA & !VALID), Verdict::Empty);
        assert_eq!(verdict(OURS), Verdict::Stale);
        assert_eq!(verdict(VRMA), Verdict::Vrma);
        // One VSID bit short of the VRMA's, or a 256 MiB segment: stale.
        assert_eq!(verdict(VRMA & !(1 << 24)), Verdict::Stale);
        assert_eq!(verdict(VRMA & !(1 << 62)), Verdict::Stale);
    }

    #[test]
    fn an_empty_table_is_read_and_left_alone() {
        let mut t = Table::default();
        let st = sweep(&mut t, 64);
        assert_eq!(
            st,
            SweepStats {
                entries: 64,
                ..SweepStats::default()
            }
        );
        assert!(t.removes.is_empty());
    }

    #[test]
    fn stale_entries_go_and_the_vrma_stays() {
        let mut t = Table::default();
        t.v.insert(0, VRMA);
        t.v.insert(1, OURS);
        t.v.insert(7, OURS & !VALID);
        t.v.insert(9, OURS);
        t.v.insert(63, OURS);
        let st = sweep(&mut t, 64);
        assert_eq!((st.removed, st.vrma, st.first_refusal), (3, 1, None));
        assert_eq!(t.removes, [1, 9, 63]);
        assert_eq!(t.v.get(&0), Some(&VRMA));
        assert_eq!(
            t.v.get(&7),
            Some(&(OURS & !VALID)),
            "invalid entries untouched"
        );
        // A second sweep finds nothing more.
        assert_eq!(sweep(&mut t, 64).removed, 0);
    }

    #[test]
    fn refusals_are_counted_and_the_sweep_goes_on() {
        let mut t = Table::default();
        t.v.insert(2, OURS);
        t.v.insert(5, OURS);
        t.v.insert(13, OURS);
        t.bad_groups.push(4);
        t.stuck.push(2);
        let st = sweep(&mut t, 16);
        assert_eq!(st.unread_groups, 1);
        assert_eq!(st.not_removed, 1);
        assert_eq!(st.removed, 1, "the entry after both refusals still goes");
        assert_eq!(
            st.first_refusal,
            Some(Refusal {
                call: "H_REMOVE",
                ptex: 2,
                status: -1
            })
        );
        assert!(t.v.contains_key(&5), "an unread group is not guessed at");
    }

    /// A hypervisor without H_READ is asked once, not once per group: the
    /// sweep's cost must not grow with the table when nothing can be read.
    #[test]
    fn without_h_read_the_sweep_stops_at_the_first_group() {
        let mut t = Table {
            no_read: true,
            ..Table::default()
        };
        let st = sweep(&mut t, 1 << 20);
        assert_eq!(t.reads, 1);
        assert!(st.read_unsupported);
        assert_eq!((st.unread_groups, st.removed), (1, 0));
        assert_eq!(
            st.first_refusal,
            Some(Refusal {
                call: "H_READ",
                ptex: 0,
                status: H_FUNCTION
            })
        );
        // Any other refusal of a read still lets the sweep go on (above).
        let mut t = Table::default();
        t.bad_groups.push(0);
        assert!(!sweep(&mut t, 64).read_unsupported);
        assert_eq!(t.reads, 16);
    }

    #[test]
    fn only_whole_groups_inside_the_table_are_read() {
        let mut t = Table::default();
        t.v.insert(4, OURS);
        assert_eq!(sweep(&mut t, 7).entries, 4);
        assert_eq!(sweep(&mut t, 0).entries, 0);
        assert_eq!(entries_of(22), 1 << 18);
        assert_eq!(entries_of(3), 0);
        assert_eq!(entries_of(200), 0);
    }
}
