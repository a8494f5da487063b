//! The hash MMU as a PAPR partition sees it (facts: `docs/hash-mmu.md`): page and
//! segment sizes from the CPU node, the encoding of hashed page table entries, the
//! primary and secondary hash, SLB entries, and the plan of the bolted linear map
//! that the glue enters with `H_ENTER`. Pure arithmetic, tested on the host.
//!
//! - [`sizes`]: page sizes, segment sizes, `ibm,segment-page-sizes`.
//! - [`hpte`]: the two doublewords of an HPTE.
//! - [`hash`]: VSIDs, the hash functions, PTE group indices.
//! - [`slb`]: the two operands of `slbmte`.
//! - [`cpu`]: the CPU node's MMU properties and the geometry chosen from them.
//! - [`linear`]: entering the linear map page by page, primary then secondary.
//! - [`fault`]: what a faulting address is, for the storage-fault report.
//! - [`lazy`]: which pages of the linear map are entered at boot, which on first
//!   touch or in the background.
//! - [`sweep`]: which entries left in the table are removed at boot.

pub mod cpu;
pub mod fault;
pub mod hash;
pub mod hpte;
pub mod lazy;
pub mod linear;
pub mod sizes;
pub mod slb;
pub mod sweep;

pub use hash::{Hash, Vsid};
pub use hpte::{Hpte, HpteR, HpteV, VirtualPage};
pub use sizes::{PageSize, SegmentPageSizes, SegmentSize};
