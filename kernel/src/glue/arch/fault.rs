//! The deliberate faults of the `fault` command: the console's way to show that the
//! kernel reports a broken CMO promise, an access outside RAM and a program
//! interrupt. Each function establishes its own contract from what it is given, so
//! the shell calls them without `unsafe`. Nothing else calls these.

use cmm::{FrameSet, FrameTable};

/// Writes one word into the first page the balloon holds as loaned (the broken
/// promise a poison-mode `verify` must catch) and returns its address; `None` when
/// nothing is loaned.
pub fn write_first_loaned(frames: &FrameTable) -> Option<u64> {
    let pfn = frames.iter(FrameSet::Loaned).next()?;
    let addr = pfn.checked_mul(hcall::page::PAGE_SIZE)?;
    // SAFETY: `addr` is a RAM frame of the frame table that the balloon holds as
    // loaned: nothing in the kernel owns it, so the write breaks only the promise to
    // the hypervisor, which is the point.
    unsafe { core::ptr::write_volatile((addr as usize + 64) as *mut u64, 0xbad) };
    Some(addr)
}

/// The step `above_ram` rounds to: a 256 MiB segment.
const SEGMENT: u64 = 256 << 20;

/// The address `read_above_ram` reads: the next 256 MiB boundary at least 256 MiB
/// above `ram_top`.
pub fn above_ram(ram_top: u64) -> u64 {
    ram_top.saturating_add(SEGMENT) & !(SEGMENT - 1)
}

/// Reads at [`above_ram`]`(ram_top)`, which faults: with translation off the
/// real-mode check stops the kernel naming the address; with it on the address has
/// no page table entry and the data storage report ends the run. Returns the value
/// read only if neither happened.
pub fn read_above_ram(ram_top: u64) -> u64 {
    let addr = above_ram(ram_top);
    if !crate::glue::mmu::is_on() {
        crate::glue::rma::check(addr, 8, "fault unmapped");
    }
    // SAFETY: `addr` lies above all RAM and no device is mapped there, so the read
    // touches nothing: it faults (translation on) or was stopped above (off).
    unsafe { core::ptr::read_volatile(addr as usize as *const u64) }
}

/// Raises a program interrupt (`trap`), whose vector reports the machine state and
/// ends in os-term.
pub fn program_interrupt() {
    // SAFETY: `trap` changes no state; the program interrupt it raises does not
    // return to this code.
    unsafe { core::arch::asm!("trap", options(nostack)) };
}
