//! H_PAGE_INIT flags and the CMO page-usage states (LoPAR; IBM bit n = 1 << (63 - n)).

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

/// H_PAGE_INIT flag: page-state change requested (IBM bit 28); alone it means Active.
pub const H_PAGE_STATE_CHANGE: u64 = 0x0000_0008_0000_0000;
/// H_PAGE_INIT flags for "set Active".
pub const H_PAGE_SET_ACTIVE: u64 = H_PAGE_STATE_CHANGE;
/// H_PAGE_INIT flags for "set Unused".
pub const H_PAGE_SET_UNUSED: u64 = 0x0000_000E_0000_0000;
/// H_PAGE_INIT flags for "set Unused Loaned".
pub const H_PAGE_SET_LOANED: u64 = 0x0000_000F_0000_0000;
/// Mask of the four page-state bits (IBM 28..=31).
pub const H_PAGE_STATE_MASK: u64 = 0x0000_000F_0000_0000;
/// H_PAGE_INIT: invalidate the instruction cache over the page.
pub const H_ICACHE_INVALIDATE: u64 = 0x0000_0000_0080_0000;
/// H_PAGE_INIT: synchronise the instruction cache over the page.
pub const H_ICACHE_SYNCHRONIZE: u64 = 0x0000_0000_0040_0000;
/// H_PAGE_INIT: coalesce-candidate hint (XCMO).
pub const H_COALESCE_CAND: u64 = 0x0000_0000_0020_0000;
/// H_PAGE_INIT: zero the destination page.
pub const H_ZERO_PAGE: u64 = 0x0000_0000_0000_8000;
/// H_PAGE_INIT: copy the source page to the destination.
pub const H_COPY_PAGE: u64 = 0x0000_0000_0000_4000;

/// The CMO page size this kernel uses (4 KiB).
pub const PAGE_SIZE: u64 = 4096;

impl PageState {
    /// The H_PAGE_INIT flags word that requests this state.
    pub const fn flags(self) -> u64 {
        match self {
            PageState::Active => H_PAGE_SET_ACTIVE,
            PageState::Unused => H_PAGE_SET_UNUSED,
            PageState::Loaned => H_PAGE_SET_LOANED,
        }
    }

    /// Decodes the state bits of an H_PAGE_INIT flags word: `Ok(None)` when no state
    /// change is requested (bit 28 clear), `Err(())` for a reserved encoding.
    /// Active Critical is reported as `Active`.
    #[allow(clippy::result_unit_err)]
    pub fn from_flags(flags: u64) -> Result<Option<PageState>, ()> {
        if flags & H_PAGE_STATE_CHANGE == 0 {
            return Ok(None);
        }
        match (flags >> 32) & 0x7 {
            0b000 | 0b001 => Ok(Some(PageState::Active)),
            0b110 => Ok(Some(PageState::Unused)),
            0b111 => Ok(Some(PageState::Loaned)),
            _ => Err(()),
        }
    }
}
