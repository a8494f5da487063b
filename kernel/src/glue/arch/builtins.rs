//! `memcpy`, `memmove`, `memset`, `memcmp` and `bcmp`, which the linux-gnu
//! `compiler_builtins` leaves to libc, and the empty `rust_eh_personality` that the
//! prebuilt `core` (built with unwinding) refers to.
//!
//! The loops are inline assembly so that LLVM cannot recognise them as the very
//! idiom they implement and turn them back into calls to themselves.

use core::arch::asm;

/// Copies `n` bytes forward, a doubleword at a time when both pointers allow it.
///
/// # Safety
/// `dst` and `src` must be valid for `n` bytes; when they overlap, `dst` must not
/// be above `src`.
unsafe fn copy_forward(dst: *mut u8, src: *const u8, n: usize) {
    let mut d = dst;
    let mut s = src;
    let mut left = n;
    if (d as usize | s as usize) & 7 == 0 && left >= 8 {
        let words = left / 8;
        // SAFETY: the caller guarantees both ranges are valid for `n` bytes, and
        // `words * 8 <= n`; the loop uses ctr and touches only r-operands it owns.
        unsafe {
            asm!(
                "mtctr {w}",
                "2:",
                "ld {t}, 0({s})",
                "std {t}, 0({d})",
                "addi {s}, {s}, 8",
                "addi {d}, {d}, 8",
                "bdnz 2b",
                w = in(reg) words,
                t = out(reg) _,
                s = inout(reg_nonzero) s,
                d = inout(reg_nonzero) d,
                out("ctr") _,
                options(nostack),
            );
        }
        left -= words * 8;
    }
    if left > 0 {
        // SAFETY: as above, for the remaining `left` bytes.
        unsafe {
            asm!(
                "mtctr {n}",
                "2:",
                "lbz {t}, 0({s})",
                "stb {t}, 0({d})",
                "addi {s}, {s}, 1",
                "addi {d}, {d}, 1",
                "bdnz 2b",
                n = in(reg) left,
                t = out(reg) _,
                s = inout(reg_nonzero) s => _,
                d = inout(reg_nonzero) d => _,
                out("ctr") _,
                options(nostack),
            );
        }
    }
}

/// Copies `n` bytes backward, byte by byte (only used for overlapping moves).
///
/// # Safety
/// `dst` and `src` must be valid for `n` bytes.
unsafe fn copy_backward(dst: *mut u8, src: *const u8, n: usize) {
    if n == 0 {
        return;
    }
    // SAFETY: both ranges are valid for `n` bytes (caller); we start one past the
    // end and pre-decrement, so every access stays inside them.
    unsafe {
        asm!(
            "mtctr {n}",
            "2:",
            "lbzu {t}, -1({s})",
            "stbu {t}, -1({d})",
            "bdnz 2b",
            n = in(reg) n,
            t = out(reg) _,
            s = inout(reg_nonzero) src.add(n) => _,
            d = inout(reg_nonzero) dst.add(n) => _,
            out("ctr") _,
            options(nostack),
        );
    }
}

/// C `memcpy`.
///
/// # Safety
/// As C's: both ranges valid for `n` bytes and not overlapping.
#[no_mangle]
pub unsafe extern "C" fn memcpy(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    // SAFETY: forwarded from the caller's contract.
    unsafe { copy_forward(dst, src, n) };
    dst
}

/// C `memmove`.
///
/// # Safety
/// As C's: both ranges valid for `n` bytes.
#[no_mangle]
pub unsafe extern "C" fn memmove(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    if (dst as usize) <= (src as usize) || (dst as usize) >= (src as usize).wrapping_add(n) {
        // SAFETY: forwarded; a forward copy is correct when dst is below src or the
        // ranges do not overlap.
        unsafe { copy_forward(dst, src, n) };
    } else {
        // SAFETY: forwarded; dst is above src and they overlap: copy backward.
        unsafe { copy_backward(dst, src, n) };
    }
    dst
}

/// C `memset`.
///
/// # Safety
/// As C's: `dst` valid for `n` bytes.
#[no_mangle]
pub unsafe extern "C" fn memset(dst: *mut u8, c: i32, n: usize) -> *mut u8 {
    let byte = (c & 0xff) as u64;
    let mut d = dst;
    let mut left = n;
    if d as usize & 7 == 0 && left >= 8 {
        let words = left / 8;
        let pattern = byte * 0x0101_0101_0101_0101;
        // SAFETY: `dst` is valid for `n >= words * 8` bytes (caller).
        unsafe {
            asm!(
                "mtctr {w}",
                "2:",
                "std {p}, 0({d})",
                "addi {d}, {d}, 8",
                "bdnz 2b",
                w = in(reg) words,
                p = in(reg) pattern,
                d = inout(reg_nonzero) d,
                out("ctr") _,
                options(nostack),
            );
        }
        left -= words * 8;
    }
    if left > 0 {
        // SAFETY: the remaining `left` bytes are inside the caller's range.
        unsafe {
            asm!(
                "mtctr {n}",
                "2:",
                "stb {p}, 0({d})",
                "addi {d}, {d}, 1",
                "bdnz 2b",
                n = in(reg) left,
                p = in(reg) byte,
                d = inout(reg_nonzero) d => _,
                out("ctr") _,
                options(nostack),
            );
        }
    }
    dst
}

/// C `memcmp`.
///
/// # Safety
/// As C's: both ranges valid for `n` bytes.
#[no_mangle]
pub unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    let mut i = 0;
    while i < n {
        // SAFETY: i < n and both ranges are valid for n bytes (caller). Volatile
        // reads keep LLVM from recognising this loop as a memcmp call.
        let (x, y) = unsafe { (a.add(i).read_volatile(), b.add(i).read_volatile()) };
        if x != y {
            return i32::from(x) - i32::from(y);
        }
        i += 1;
    }
    0
}

/// C `bcmp`.
///
/// # Safety
/// As C's: both ranges valid for `n` bytes.
#[no_mangle]
pub unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    // SAFETY: same contract as memcmp.
    unsafe { memcmp(a, b, n) }
}

/// The prebuilt `core` refers to this; with `panic = "abort"` it is never called.
#[no_mangle]
pub extern "C" fn rust_eh_personality() {}

/// The prebuilt `alloc` has landing pads that call this; with `panic = "abort"`
/// no unwinding ever starts, so it is unreachable.
#[no_mangle]
pub extern "C" fn _Unwind_Resume() -> ! {
    crate::exit::os_term("_Unwind_Resume called")
}
