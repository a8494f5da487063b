//! The image's layout as the linker script (`linker.ld`) and the entry assembly
//! define it: each symbol declared once, here, and read only for its address.

extern "C" {
    static __kernel_start: u8;
    static __kernel_end: u8;
    static __boot_stack_top: u8;
    static __vector_table: u8;
    static __vector_table_end: u8;
    static __cpu_stacks: u8;
}

/// The image's first byte.
pub fn kernel_start() -> u64 {
    core::ptr::addr_of!(__kernel_start) as u64
}

/// The byte after the image, BSS (heap and stacks) included.
pub fn kernel_end() -> u64 {
    core::ptr::addr_of!(__kernel_end) as u64
}

/// The top of the boot stack (`arch::entry`).
pub fn boot_stack_top() -> u64 {
    core::ptr::addr_of!(__boot_stack_top) as u64
}

/// The exception vectors (`.text.vectors`) as linked: first byte and the byte
/// after them (they are copied to real address 0).
pub fn vector_table() -> (u64, u64) {
    (
        core::ptr::addr_of!(__vector_table) as u64,
        core::ptr::addr_of!(__vector_table_end) as u64,
    )
}

/// The first per-CPU stack block (`glue/percpu.rs`).
pub fn cpu_stacks() -> u64 {
    core::ptr::addr_of!(__cpu_stacks) as u64
}
