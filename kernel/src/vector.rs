//! The interrupt vectors, by their Power ISA offsets from the vector base (real
//! address 0 here), named once: the vector table (`glue/arch/entry.rs` places each
//! one with a `const` operand), the interrupt dispatch (`glue/arch/trap.rs`), the
//! storage-fault classification ([`crate::mmu::fault::Storage::from_vector`]) and
//! the exception report ([`name`]) all use these constants and [`TABLE`].
//!
//! Offsets and names follow Power ISA 3.0 Book III's table of interrupt vectors;
//! 0xb00 and 0x1000 are reserved there but still get an entry,
//! so that a stray branch to them reports instead of running whatever follows.

/// System reset.
pub const SYSTEM_RESET: u64 = 0x100;
/// Machine check.
pub const MACHINE_CHECK: u64 = 0x200;
/// Data storage: a load or store found no translation (or was refused).
pub const DATA_STORAGE: u64 = 0x300;
/// Data segment: no SLB entry for a load or store.
pub const DATA_SEGMENT: u64 = 0x380;
/// Instruction storage: an instruction fetch found no translation.
pub const INSTRUCTION_STORAGE: u64 = 0x400;
/// Instruction segment: no SLB entry for an instruction fetch.
pub const INSTRUCTION_SEGMENT: u64 = 0x480;
/// External interrupt (XICS).
pub const EXTERNAL: u64 = 0x500;
/// Alignment.
pub const ALIGNMENT: u64 = 0x600;
/// Program (illegal instruction, trap, privileged instruction).
pub const PROGRAM: u64 = 0x700;
/// Floating-point unavailable.
pub const FP_UNAVAILABLE: u64 = 0x800;
/// Decrementer.
pub const DECREMENTER: u64 = 0x900;
/// Hypervisor decrementer.
pub const HYPERVISOR_DECREMENTER: u64 = 0x980;
/// Directed privileged doorbell.
pub const PRIVILEGED_DOORBELL: u64 = 0xa00;
/// Reserved.
pub const RESERVED_B00: u64 = 0xb00;
/// System call.
pub const SYSTEM_CALL: u64 = 0xc00;
/// Trace.
pub const TRACE: u64 = 0xd00;
/// Hypervisor data storage.
pub const HYPERVISOR_DATA_STORAGE: u64 = 0xe00;
/// Hypervisor instruction storage.
pub const HYPERVISOR_INSTRUCTION_STORAGE: u64 = 0xe20;
/// Hypervisor emulation assistance.
pub const HYPERVISOR_EMULATION: u64 = 0xe40;
/// Hypervisor maintenance.
pub const HYPERVISOR_MAINTENANCE: u64 = 0xe60;
/// Directed hypervisor doorbell.
pub const HYPERVISOR_DOORBELL: u64 = 0xe80;
/// Hypervisor virtualization.
pub const HYPERVISOR_VIRTUALIZATION: u64 = 0xea0;
/// Performance monitor.
pub const PERFORMANCE_MONITOR: u64 = 0xf00;
/// Vector (VMX) unavailable.
pub const VMX_UNAVAILABLE: u64 = 0xf20;
/// VSX unavailable.
pub const VSX_UNAVAILABLE: u64 = 0xf40;
/// Facility unavailable.
pub const FACILITY_UNAVAILABLE: u64 = 0xf60;
/// Hypervisor facility unavailable.
pub const HYPERVISOR_FACILITY_UNAVAILABLE: u64 = 0xf80;
/// Reserved.
pub const RESERVED_1000: u64 = 0x1000;
/// The end of the vector table: the last vector's 0x100 bytes end here.
pub const TABLE_END: u64 = 0x1100;

/// Every vector the table installs, in order of offset, with the name a report
/// gives it.
pub const TABLE: [(u64, &str); 28] = [
    (SYSTEM_RESET, "system reset"),
    (MACHINE_CHECK, "machine check"),
    (DATA_STORAGE, "data storage"),
    (DATA_SEGMENT, "data segment"),
    (INSTRUCTION_STORAGE, "instruction storage"),
    (INSTRUCTION_SEGMENT, "instruction segment"),
    (EXTERNAL, "external"),
    (ALIGNMENT, "alignment"),
    (PROGRAM, "program"),
    (FP_UNAVAILABLE, "FP unavailable"),
    (DECREMENTER, "decrementer"),
    (HYPERVISOR_DECREMENTER, "hypervisor decrementer"),
    (PRIVILEGED_DOORBELL, "directed privileged doorbell"),
    (RESERVED_B00, "reserved"),
    (SYSTEM_CALL, "system call"),
    (TRACE, "trace"),
    (HYPERVISOR_DATA_STORAGE, "hypervisor data storage"),
    (
        HYPERVISOR_INSTRUCTION_STORAGE,
        "hypervisor instruction storage",
    ),
    (HYPERVISOR_EMULATION, "hypervisor emulation assistance"),
    (HYPERVISOR_MAINTENANCE, "hypervisor maintenance"),
    (HYPERVISOR_DOORBELL, "directed hypervisor doorbell"),
    (HYPERVISOR_VIRTUALIZATION, "hypervisor virtualization"),
    (PERFORMANCE_MONITOR, "performance monitor"),
    (VMX_UNAVAILABLE, "VMX unavailable"),
    (VSX_UNAVAILABLE, "VSX unavailable"),
    (FACILITY_UNAVAILABLE, "facility unavailable"),
    (
        HYPERVISOR_FACILITY_UNAVAILABLE,
        "hypervisor facility unavailable",
    ),
    (RESERVED_1000, "reserved"),
];

/// The report's name for `vector`: its [`TABLE`] entry, or "reserved" for an
/// offset the table does not install.
pub fn name(vector: u64) -> &'static str {
    TABLE
        .iter()
        .find(|&&(v, _)| v == vector)
        .map_or("reserved", |&(_, n)| n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_in_order_and_fits_below_its_end() {
        assert!(TABLE.windows(2).all(|w| w[0].0 < w[1].0));
        // Each entry has room for its few instructions before the next one.
        assert!(TABLE.windows(2).all(|w| w[1].0 - w[0].0 >= 0x20));
        assert_eq!(TABLE[0].0, SYSTEM_RESET);
        assert!(TABLE
            .iter()
            .all(|&(v, _)| v % 0x20 == 0 && v + 0x20 <= TABLE_END));
    }

    #[test]
    fn names() {
        assert_eq!(name(DATA_STORAGE), "data storage");
        assert_eq!(name(DECREMENTER), "decrementer");
        assert_eq!(
            name(HYPERVISOR_EMULATION),
            "hypervisor emulation assistance"
        );
        assert_eq!(name(0xb00), "reserved");
        assert_eq!(name(0x1234), "reserved");
        assert_eq!(name(0), "reserved");
    }
}
