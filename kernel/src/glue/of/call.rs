//! Calling the Open Firmware client interface.
//!
//! The client interface takes one argument, r3 = the real address of an array
//! of big-endian 32-bit cells: the service name's address, the number of
//! arguments, the number of results, the arguments, then room for the results.
//! Every address in it must lie below 4 GiB. The firmware expects to be called
//! the way the PowerPC binding of IEEE 1275 enters a client: 32-bit mode
//! (MSR[SF] = 0), real mode, big-endian. It may clobber the upper halves of the
//! registers it saves, so the trampoline below keeps r2 and r13..r31, CR and
//! the MSR on our own stack and puts them back, with 64-bit mode, afterwards.

use core::arch::global_asm;
use core::ffi::CStr;
use core::sync::atomic::{compiler_fence, Ordering};

use kernel::devtree::flatten::CiError;

// ELFv1: `of_call_32` names a function descriptor in `.opd` whose first word is
// the code address; Rust's call to it goes straight to that code.
//
// Frame (288 bytes): 0..48 the ABI's linkage area and 48..112 its parameter
// save area (both the firmware's to use as our callee), 112: r2, 120: r13,
// 128..271: r14..r31, 272: CR, 280: MSR.
global_asm!(
    r#"
    .section .opd, "aw"
    .balign 8
    .globl of_call_32
of_call_32:
    .quad .Lof_call_32_code, .TOC.@tocbase, 0

    .section .text.of_call, "ax"
    .balign 4
.Lof_call_32_code:
    mflr    %r0
    std     %r0, 16(%r1)
    stdu    %r1, -288(%r1)
    std     %r2, 112(%r1)
    std     %r13, 120(%r1)
    std     %r14, 128(%r1)
    std     %r15, 136(%r1)
    std     %r16, 144(%r1)
    std     %r17, 152(%r1)
    std     %r18, 160(%r1)
    std     %r19, 168(%r1)
    std     %r20, 176(%r1)
    std     %r21, 184(%r1)
    std     %r22, 192(%r1)
    std     %r23, 200(%r1)
    std     %r24, 208(%r1)
    std     %r25, 216(%r1)
    std     %r26, 224(%r1)
    std     %r27, 232(%r1)
    std     %r28, 240(%r1)
    std     %r29, 248(%r1)
    std     %r30, 256(%r1)
    std     %r31, 264(%r1)
    mfcr    %r10
    std     %r10, 272(%r1)
    mfmsr   %r11
    std     %r11, 280(%r1)

    # r3 already holds the argument array; the firmware's entry goes in CTR.
    mtctr   %r4
    # Drop to 32-bit mode: clear MSR[SF] (the most significant bit). The code
    # and the stack are below 4 GiB, so execution continues at the next address.
    li      %r12, 1
    sldi    %r12, %r12, 63
    andc    %r11, %r11, %r12
    mtmsrd  %r11
    isync
    bctrl

    # Back from the firmware, still in 32-bit mode: the upper half of r1 may be
    # garbage, so clear it before using it, then restore the 64-bit MSR.
    clrldi  %r1, %r1, 32
    ld      %r0, 280(%r1)
    mtmsrd  %r0
    isync
    ld      %r2, 112(%r1)
    ld      %r13, 120(%r1)
    ld      %r14, 128(%r1)
    ld      %r15, 136(%r1)
    ld      %r16, 144(%r1)
    ld      %r17, 152(%r1)
    ld      %r18, 160(%r1)
    ld      %r19, 168(%r1)
    ld      %r20, 176(%r1)
    ld      %r21, 184(%r1)
    ld      %r22, 192(%r1)
    ld      %r23, 200(%r1)
    ld      %r24, 208(%r1)
    ld      %r25, 216(%r1)
    ld      %r26, 224(%r1)
    ld      %r27, 232(%r1)
    ld      %r28, 240(%r1)
    ld      %r29, 248(%r1)
    ld      %r30, 256(%r1)
    ld      %r31, 264(%r1)
    ld      %r10, 272(%r1)
    mtcr    %r10
    addi    %r1, %r1, 288
    ld      %r0, 16(%r1)
    mtlr    %r0
    blr
"#
);

extern "C" {
    /// Calls the client interface at `entry` in 32-bit mode with r3 = `cells`;
    /// returns what the firmware left in r3.
    fn of_call_32(cells: *mut u32, entry: u64) -> u64;
}

/// Most argument plus result cells of one call.
const MAX_CELLS: usize = 16;

#[repr(C, align(16))]
struct Cells([u32; 3 + MAX_CELLS]);

/// The real address of `p` as one cell, or an error if it is above 4 GiB.
pub fn cell_addr<T>(service: &'static str, p: *const T) -> Result<u32, CiError> {
    u32::try_from(p as usize).map_err(|_| CiError::Address { service })
}

/// A length as one cell.
pub fn cell_len(service: &'static str, len: usize) -> Result<u32, CiError> {
    u32::try_from(len).map_err(|_| CiError::Address { service })
}

/// A result cell as a signed number (the client interface's -1 is failure).
pub fn signed(cell: u32) -> i32 {
    i32::from_be_bytes(cell.to_be_bytes())
}

/// The firmware's client interface, while it is still ours to call.
pub struct Prom {
    entry: u64,
    calls: usize,
}

impl Prom {
    /// Wraps the client interface entry point.
    ///
    /// # Safety
    /// `entry` must be the client interface entry that Open Firmware passed in
    /// r5, the firmware's memory must be intact, and nothing may have been
    /// written over low memory (the exception vectors) yet.
    pub unsafe fn new(entry: u64) -> Prom {
        Prom { entry, calls: 0 }
    }

    /// How many calls were made.
    pub fn calls(&self) -> usize {
        self.calls
    }

    /// Calls `service` with `args` and fills `rets` with its results.
    ///
    /// Fails if an address does not fit a cell, or if the entry returns a
    /// non-zero status (an unknown service, or arguments it refused). What the
    /// results mean is the caller's business.
    pub fn call(
        &mut self,
        service: &'static CStr,
        args: &[u32],
        rets: &mut [u32],
    ) -> Result<(), CiError> {
        let name = service.to_str().unwrap_or("(unnamed service)");
        let total = args.len().saturating_add(rets.len());
        if total > MAX_CELLS {
            return Err(CiError::TooManyCells { service: name });
        }
        let mut cells = Cells([0; 3 + MAX_CELLS]);
        cells.0[0] = cell_addr(name, service.as_ptr())?;
        cells.0[1] = cell_len(name, args.len())?;
        cells.0[2] = cell_len(name, rets.len())?;
        cells.0[3..3 + args.len()].copy_from_slice(args);
        let ptr = cells.0.as_mut_ptr();
        cell_addr(name, ptr)?;
        self.calls = self.calls.saturating_add(1);
        compiler_fence(Ordering::SeqCst);
        // SAFETY: `Prom::new`'s contract says `entry` is the live client
        // interface. The cell array and every address in it lie below 4 GiB
        // (checked above and by the callers); they stay valid for the call. The
        // trampoline saves and restores every register Rust expects preserved
        // and returns in 64-bit mode.
        let status = unsafe { of_call_32(ptr, self.entry) };
        compiler_fence(Ordering::SeqCst);
        let status = signed(u32::try_from(status & 0xffff_ffff).unwrap_or(u32::MAX));
        if status != 0 {
            return Err(CiError::Call {
                service: name,
                status: i64::from(status),
            });
        }
        rets.copy_from_slice(&cells.0[3 + args.len()..3 + total]);
        Ok(())
    }
}
