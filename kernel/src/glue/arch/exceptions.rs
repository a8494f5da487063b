//! Installs the exception vectors at real address 0 and reports an exception.

use super::cpu;

/// H_SET_MODE, under the retry policy: interrupts arrive in the image's byte
/// order from now on. Call before [`install`].
pub fn take_interrupts_in_native_order() -> Result<(), hcall::HcallError> {
    // SAFETY: the vectors `install` puts in, and everything they call, are this
    // image's code, compiled for `ByteOrder::NATIVE`; until they are in, the
    // kernel runs with external interrupts off and no decrementer armed.
    unsafe {
        hcall::calls::set_interrupt_order_retrying(
            &mut hcall::raw::sc1::Sc1::new(),
            &mut crate::hv::KernelClock,
            hcall::endian::ByteOrder::NATIVE,
        )
    }
}

/// Copies the vectors (`.text.vectors`) to real address 0 and syncs the icache.
pub fn install() {
    let (start, end) = crate::glue::image::vector_table();
    let (start, end) = (start as usize, end as usize);
    let len = end - start;
    // The first 0x100 bytes (below the system-reset vector) are left alone: the
    // boot ROM lives there.
    let skip = 0x100;
    // SAFETY: in real mode, addresses 0x100..len are RAM below the kernel image
    // (which starts at 0x400000) that nothing else uses; source and destination do
    // not overlap.
    unsafe {
        core::ptr::copy_nonoverlapping((start + skip) as *const u8, skip as *mut u8, len - skip);
        cpu::sync_icache(skip, len - skip);
    }
}

/// Called by `exception_common` with the machine state of an unexpected
/// interrupt: prints a register dump and ends in the failure exit.
#[no_mangle]
pub extern "C" fn exception_entry(
    vector: u64,
    srr0: u64,
    srr1: u64,
    dar: u64,
    dsisr: u64,
    lr: u64,
) -> ! {
    // One report: the other CPUs stop first (or this one parks if another is
    // already on its way out).
    crate::smp::stop_others();
    if let Some(storage) = kernel::mmu::fault::Storage::from_vector(vector) {
        crate::glue::mmu::report_storage_fault(storage, srr0, srr1, dar, dsisr);
    }
    crate::console::emergency_write(format_args!(
        "\nEXCEPTION vector={vector:#x} ({}) SRR0={srr0:#018x} SRR1={srr1:#018x} DAR={dar:#018x} DSISR={dsisr:#010x} LR={lr:#018x}\n",
        kernel::vector::name(vector)
    ));
    crate::exit::os_term("unexpected exception")
}
