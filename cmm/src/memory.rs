//! What `cmm` needs from memory and cannot do itself without `unsafe`: fill a page
//! with a pattern, check it, zero it. The kernel implements [`PageMemory`] over real
//! addresses; host tests implement it over a map.
//!
//! Safe code passes plain addresses, so the implementation, not its callers,
//! answers for every address it is given: it must refuse any address that is not
//! a frame it serves (see the contract on [`PageMemory`], and
//! docs/balloon-fast-path.md). The kernel's implementation checks every address
//! against the managed frames before its `unsafe` access, so the trait itself is
//! safe and `cmm` has no `unsafe` at all.
//!
//! Zeroing goes through this trait, not H_PAGE_INIT(H_ZERO_PAGE): it cannot fail and
//! costs no hcall; the hypervisor is only asked about page *states*.
//!
//! The pattern is defined here, once, by [`pattern_word`]: word `i` (big-endian
//! `u64`, 512 per page) of a page filled with `seed` is `pattern_word(seed, i)`.
//! Workload pages and poisoned loaned pages use different seeds
//! ([`workload_seed`], [`poison_seed`]), both derived from the page address, so a
//! page that moved between the two roles never passes the other's check.

/// Pattern fill and check of 4 KiB pages at real addresses.
///
/// `cmm` calls these methods from safe code with the address of a frame of the
/// [`crate::FrameTable`] it manages, and only while it holds that frame in the
/// state the call needs: a frame being allocated (zero, fill), a frame about to be
/// loaned in poison mode (fill), a workload frame (check), and in poison mode a
/// loaned or just-returned poisoned frame (check, is_zero). It never asks for a
/// free frame's contents.
///
/// # Contract for implementations
///
/// Every call must be sound for *any* `addr`, since safe code can make it:
/// - every frame of the table the implementation serves is memory it may read
///   and write whenever `cmm` asks: no kernel image, heap, stack, firmware or
///   device memory lies in those frames, and no Rust reference into one is live
///   while `cmm` holds it;
/// - an address that is not the start of such a frame is refused — `fill` and
///   `zero` do nothing, `check` and `is_zero` return false — never accessed.
pub trait PageMemory {
    /// Writes the pattern of `seed` over the whole page at `addr`.
    fn fill(&mut self, addr: u64, seed: u64);
    /// True if the whole page at `addr` holds the pattern of `seed`.
    fn check(&self, addr: u64, seed: u64) -> bool;
    /// True if every byte of the page at `addr` is zero.
    fn is_zero(&self, addr: u64) -> bool;
    /// Writes zeros over the whole page at `addr`.
    fn zero(&mut self, addr: u64);
}

/// `u64` words in one page.
pub const WORDS_PER_PAGE: u64 = crate::units::PAGE_SIZE / 8;

const WORKLOAD_TAG: u64 = 0x574f_524b_4c4f_4144; // "WORKLOAD"
const POISON_TAG: u64 = 0x504f_4953_4f4e_4544; // "POISONED"

/// The seed of a workload page at `addr`.
pub const fn workload_seed(addr: u64) -> u64 {
    addr ^ WORKLOAD_TAG
}

/// The seed of a poisoned loaned page at `addr`.
pub const fn poison_seed(addr: u64) -> u64 {
    addr ^ POISON_TAG
}

/// Word `index` of the pattern of `seed` (a SplitMix64 step: never zero for a whole
/// page, cheap, and different for every word).
pub const fn pattern_word(seed: u64, index: u64) -> u64 {
    let mut z = seed.wrapping_add(index.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_and_words_differ() {
        assert_ne!(workload_seed(0x1000), poison_seed(0x1000));
        assert_ne!(pattern_word(1, 0), pattern_word(1, 1));
        assert_ne!(pattern_word(1, 0), pattern_word(2, 0));
        let nonzero = (0..WORDS_PER_PAGE).any(|i| pattern_word(workload_seed(0), i) != 0);
        assert!(nonzero);
    }
}
