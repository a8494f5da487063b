//! Small wrappers around special-purpose registers and cache instructions.

use core::arch::asm;

/// Reads the timebase.
#[inline]
pub fn timebase() -> u64 {
    let tb: u64;
    // SAFETY: mftb only reads the timebase register.
    unsafe { asm!("mftb {0}", out(reg) tb, options(nomem, nostack)) };
    tb
}

/// Reads the processor version register.
#[inline]
pub fn pvr() -> u32 {
    let v: u64;
    // SAFETY: mfpvr only reads the PVR (SPR 287).
    unsafe { asm!("mfspr {0}, 287", out(reg) v, options(nomem, nostack)) };
    (v & 0xffff_ffff) as u32
}

/// Makes instruction fetch see the bytes just written to `[start, start + len)`.
///
/// # Safety
/// The range must be mapped memory (any RAM in real mode).
pub unsafe fn sync_icache(start: usize, len: usize) {
    const LINE: usize = 128;
    let mut a = start & !(LINE - 1);
    while a < start + len {
        // SAFETY: dcbst/icbi on a valid address only affect caches.
        unsafe { asm!("dcbst 0, {0}", in(reg_nonzero) a, options(nostack)) };
        a += LINE;
    }
    // SAFETY: barrier only.
    unsafe { asm!("sync", options(nostack)) };
    let mut a = start & !(LINE - 1);
    while a < start + len {
        // SAFETY: as above.
        unsafe { asm!("icbi 0, {0}", in(reg_nonzero) a, options(nostack)) };
        a += LINE;
    }
    // SAFETY: barriers only.
    unsafe { asm!("sync", "isync", options(nostack)) };
}

/// Reads the processor identification register (SPR 1023): on pseries, this
/// hardware thread's interrupt server number.
#[inline]
pub fn pir() -> u32 {
    let v: u64;
    // SAFETY: mfspr PIR only reads the register (supervisor-readable).
    unsafe { asm!("mfspr {0}, 1023", out(reg) v, options(nomem, nostack)) };
    (v & 0xffff_ffff) as u32
}
