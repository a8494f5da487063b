//! Hcall opcodes (PAPR / LoPAR numbering; all multiples of 4) used by lpar-cmm.
//!
//! Only numbers live here; the typed calls that use them are in [`crate::calls`],
//! [`crate::mmu`], [`crate::term`], [`crate::xics`], [`crate::vpa`] and
//! [`crate::rtas`].

/// H_REMOVE: remove one hashed page table entry.
pub const H_REMOVE: u64 = 0x04;
/// H_ENTER: enter one hashed page table entry.
pub const H_ENTER: u64 = 0x08;
/// H_READ: read one (or, with H_READ_4, four) hashed page table entries.
pub const H_READ: u64 = 0x10;
/// H_GET_TCE: read one TCE of a DMA window.
pub const H_GET_TCE: u64 = 0x1C;
/// H_PUT_TCE: write one TCE of a DMA window.
pub const H_PUT_TCE: u64 = 0x20;
/// H_PAGE_INIT: zero/copy/icache operations and CMO page-state changes.
pub const H_PAGE_INIT: u64 = 0x2C;
/// H_EOI: end of interrupt (XICS), with the XIRR value that H_XIRR returned.
pub const H_EOI: u64 = 0x64;
/// H_CPPR: set this processor's current interrupt priority (XICS).
pub const H_CPPR: u64 = 0x68;
/// H_IPI: raise (or, with priority 0xFF, clear) a processor's inter-processor interrupt.
pub const H_IPI: u64 = 0x6C;
/// H_XIRR: accept the highest-priority pending interrupt (XICS).
pub const H_XIRR: u64 = 0x74;
/// H_GET_TERM_CHAR: read up to 16 bytes from a virtual terminal.
pub const H_GET_TERM_CHAR: u64 = 0x54;
/// H_PUT_TERM_CHAR: write up to 16 bytes to a virtual terminal.
pub const H_PUT_TERM_CHAR: u64 = 0x58;
/// H_REGISTER_VPA: register the per-CPU VPA (which carries the CMO fault counters).
pub const H_REGISTER_VPA: u64 = 0xDC;
/// H_CEDE: give the processor to the hypervisor until an interrupt (or H_PROD).
pub const H_CEDE: u64 = 0xE0;
/// H_CONFER: give this processor's time to another (preempted) virtual processor.
pub const H_CONFER: u64 = 0xE4;
/// H_PROD: wake a ceded virtual processor.
pub const H_PROD: u64 = 0xE8;
/// H_VIO_SIGNAL: enable or disable a VIO device's interrupt.
pub const H_VIO_SIGNAL: u64 = 0x104;
/// H_SET_MPP: set the memory performance parameters (entitlement, weight).
pub const H_SET_MPP: u64 = 0x2D0;
/// H_GET_MPP: get the memory performance parameters.
pub const H_GET_MPP: u64 = 0x2D4;
/// H_GET_MPP_X: extended (coalescing) memory statistics.
pub const H_GET_MPP_X: u64 = 0x314;
/// H_SET_MODE: set a partition-wide mode (lpar-cmm: the interrupt byte order).
pub const H_SET_MODE: u64 = 0x31C;
/// H_REGISTER_PROC_TBL: say which MMU mode (hash or radix) the partition uses.
pub const H_REGISTER_PROC_TBL: u64 = 0x37C;
/// KVMPPC_H_RTAS: QEMU/KVM's hcall that runs an RTAS call described by a buffer in r4.
pub const KVMPPC_H_RTAS: u64 = 0xF000;

/// The hcalls whose arguments are all plain values: the hypervisor reads and
/// writes no memory of the partition for them and changes no translation or mode
/// of it, so [`crate::raw::call_values`] makes them without `unsafe`.
pub const VALUES_ONLY: [u64; 15] = [
    H_READ,
    H_GET_TCE,
    H_EOI,
    H_CPPR,
    H_IPI,
    H_XIRR,
    H_GET_TERM_CHAR,
    H_PUT_TERM_CHAR,
    H_CEDE,
    H_CONFER,
    H_PROD,
    H_VIO_SIGNAL,
    H_SET_MPP,
    H_GET_MPP,
    H_GET_MPP_X,
];

/// The hcalls that take a real address or change how the partition runs: each is
/// made by an `unsafe fn` that states its contract.
pub const TAKES_ADDRESSES: [u64; 8] = [
    H_REMOVE,
    H_ENTER,
    H_PUT_TCE,
    H_PAGE_INIT,
    H_REGISTER_VPA,
    H_SET_MODE,
    H_REGISTER_PROC_TBL,
    KVMPPC_H_RTAS,
];

/// True if `opcode` is one of [`VALUES_ONLY`].
pub fn takes_only_values(opcode: u64) -> bool {
    VALUES_ONLY.contains(&opcode)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every opcode is in exactly one of the two lists, and all are multiples of
    /// four.
    #[test]
    fn every_opcode_is_classified_once() {
        let all: alloc::vec::Vec<u64> = VALUES_ONLY
            .iter()
            .chain(&TAKES_ADDRESSES)
            .copied()
            .collect();
        assert_eq!(all.len(), 23, "one entry per opcode above");
        for (k, op) in all.iter().enumerate() {
            assert_eq!(op % 4, 0, "{op:#x}");
            assert!(!all[k + 1..].contains(op), "{op:#x} listed twice");
        }
        for op in TAKES_ADDRESSES {
            assert!(!takes_only_values(op), "{op:#x}");
        }
        assert!(takes_only_values(H_GET_MPP));
        assert_eq!(H_GET_MPP, 0x2D4);
        assert!(!takes_only_values(0x2D8), "an unknown opcode is not");
    }
}
