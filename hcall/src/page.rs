//! H_PAGE_INIT flags and the CMO page-usage states (docs/cmo.md §4; IBM bit n is
//! 1 << (63 - n)).

/// The CMO state a page can be put in with H_PAGE_INIT.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageState {
    /// Holds data the OS cannot regenerate (the default of every page at boot).
    Active,
    /// Contents no longer needed; the platform may drop them (reads give old data or zeros).
    Unused,
    /// Unused and loaned to the hypervisor: the OS promises not to touch it.
    Loaned,
}

bitflags::bitflags! {
    /// The flags word (r4) of H_PAGE_INIT (docs/cmo.md §4.2).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct PageInitFlags: u64 {
        /// A page-state change is requested (IBM bit 28); alone it means Active.
        const STATE_CHANGE = 0x0000_0008_0000_0000;
        /// "Set Active".
        const SET_ACTIVE = Self::STATE_CHANGE.bits();
        /// The two bits that, with STATE_CHANGE, select Unused (IBM bits 29, 30).
        const UNUSED = 0x0000_0006_0000_0000;
        /// "Set Unused".
        const SET_UNUSED = 0x0000_000E_0000_0000;
        /// "Set Unused Loaned" (IBM bits 28..=31).
        const SET_LOANED = 0x0000_000F_0000_0000;
        /// Invalidate the instruction cache over the page (IBM bit 40).
        const ICACHE_INVALIDATE = 0x0000_0000_0080_0000;
        /// Synchronise the instruction cache over the page (IBM bit 41).
        const ICACHE_SYNCHRONIZE = 0x0000_0000_0040_0000;
        /// Coalesce-candidate hint, XCMO (IBM bit 42).
        const COALESCE_CAND = 0x0000_0000_0020_0000;
        /// Zero the destination page (IBM bit 48).
        const ZERO_PAGE = 0x0000_0000_0000_8000;
        /// Copy the source page to the destination (IBM bit 49).
        const COPY_PAGE = 0x0000_0000_0000_4000;
    }
}

/// log2 of [`PAGE_SIZE`].
pub const PAGE_SHIFT: u32 = 12;
/// The CMO page size this kernel uses (4 KiB): the one page size of the workspace
/// (the balloon, the frame table, TCEs, the virtio balloon's PFNs, the pool
/// manager all count in it).
pub const PAGE_SIZE: u64 = 1 << PAGE_SHIFT;
/// [`PAGE_SIZE`] as a `usize`, for buffer lengths and alignments.
pub const PAGE_BYTES: usize = 1 << PAGE_SHIFT;

impl PageState {
    /// The H_PAGE_INIT flags word that requests this state.
    pub const fn flags(self) -> PageInitFlags {
        match self {
            PageState::Active => PageInitFlags::SET_ACTIVE,
            PageState::Unused => PageInitFlags::SET_UNUSED,
            PageState::Loaned => PageInitFlags::SET_LOANED,
        }
    }

    /// Decodes the state bits of an H_PAGE_INIT flags word: `Ok(None)` when no state
    /// change is requested (bit 28 clear), `Err(())` for a reserved encoding.
    /// Active Critical is reported as `Active`.
    #[allow(clippy::result_unit_err)]
    pub fn from_flags(flags: PageInitFlags) -> Result<Option<PageState>, ()> {
        if !flags.contains(PageInitFlags::STATE_CHANGE) {
            return Ok(None);
        }
        match (flags.bits() >> 32) & 0x7 {
            0b000 | 0b001 => Ok(Some(PageState::Active)),
            0b110 => Ok(Some(PageState::Unused)),
            0b111 => Ok(Some(PageState::Loaned)),
            _ => Err(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The values of docs/cmo.md §4.2, written from the IBM bit numbers.
    #[test]
    fn flags_are_the_lopar_bits() {
        let ibm = |n: u32| 1u64 << (63 - n);
        assert_eq!(PageInitFlags::SET_ACTIVE.bits(), ibm(28));
        assert_eq!(
            PageInitFlags::SET_UNUSED.bits(),
            ibm(28) | ibm(29) | ibm(30)
        );
        assert_eq!(
            PageInitFlags::SET_LOANED.bits(),
            ibm(28) | ibm(29) | ibm(30) | ibm(31)
        );
        assert_eq!(PageInitFlags::ICACHE_INVALIDATE.bits(), ibm(40));
        assert_eq!(PageInitFlags::ICACHE_SYNCHRONIZE.bits(), ibm(41));
        assert_eq!(PageInitFlags::COALESCE_CAND.bits(), ibm(42));
        assert_eq!(PageInitFlags::ZERO_PAGE.bits(), ibm(48));
        assert_eq!(PageInitFlags::COPY_PAGE.bits(), ibm(49));
    }

    #[test]
    fn states_round_trip_and_reserved_encodings_are_refused() {
        for s in [PageState::Active, PageState::Unused, PageState::Loaned] {
            assert_eq!(PageState::from_flags(s.flags()), Ok(Some(s)));
        }
        // Active Critical (bits 28 and 31) reads as Active.
        let critical = PageInitFlags::from_bits_retain(0x0000_0009_0000_0000);
        assert_eq!(PageState::from_flags(critical), Ok(Some(PageState::Active)));
        // Bit 28 clear: no state change, whatever bits 29-31 say.
        assert_eq!(PageState::from_flags(PageInitFlags::UNUSED), Ok(None));
        assert_eq!(PageState::from_flags(PageInitFlags::ZERO_PAGE), Ok(None));
        // 01 and 10 in bits 29-30 are reserved.
        for reserved in [0x0000_000A_0000_0000, 0x0000_000C_0000_0000] {
            let f = PageInitFlags::from_bits_retain(reserved);
            assert_eq!(PageState::from_flags(f), Err(()));
        }
    }
}
