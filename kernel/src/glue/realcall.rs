//! Calling firmware the way it must be entered: real mode (translation off),
//! 32-bit mode, big-endian (also from the little-endian image), external interrupts and tracing off. Both the Open
//! Firmware client interface and instantiated RTAS are entered so
//! (`docs/rtas.md`), through the one trampoline here.
//!
//! The firmware may clobber the upper halves of the registers it saves, so the
//! trampoline keeps r2, r13..r31, CR and the MSR on our own stack and puts them
//! back, with 64-bit mode and the caller's translation, afterwards. The kernel
//! maps effective = real addresses, so the code, the stack and the arguments are
//! at the same addresses with translation on and off; they must lie in the RMA
//! and below 4 GiB (the callers check).

use core::arch::global_asm;

use crate::arch::trap::Msr;

/// The MSR bits cleared for a firmware call besides SF (set apart with a shift):
/// interrupts, tracing, translation and little-endian mode.
const REAL_CALL_CLEARS: u64 = Msr::EE.bits()
    | Msr::SE.bits()
    | Msr::BE.bits()
    | Msr::IR.bits()
    | Msr::DR.bits()
    | Msr::LE.bits();
const _: () = assert!(REAL_CALL_CLEARS < 1 << 16 && REAL_CALL_CLEARS == 0x8631);

// The symbol: in the big-endian (ELFv1) image `real_call_32` names a function
// descriptor in `.opd` whose first word is the code address; in the
// little-endian (ELFv2) image it is the code itself.
#[cfg(target_abi = "elfv1")]
global_asm!(
    r#"
    .section .opd, "aw"
    .balign 8
    .globl real_call_32
real_call_32:
    .quad .Lreal_call_32_code, .TOC.@tocbase, 0
"#
);
#[cfg(target_abi = "elfv2")]
global_asm!(
    r#"
    .section .text.real_call, "ax"
    .globl real_call_32
real_call_32 = .Lreal_call_32_code
"#
);

// Frame (288 bytes): 0..48 the ABI's linkage area and 48..112 its parameter
// save area (both the firmware's to use as our callee), 112: r2, 120: r13,
// 128..271: r14..r31, 272: CR, 280: MSR.
//
// The firmware is entered with `rfid`, so that the new MSR (and with it the
// byte order) takes effect exactly at its entry point. MSR bits cleared for the
// call: SF, EE, SE, BE, IR, DR and LE (`REAL_CALL_CLEARS`). It returns to `.Lreal_call_32_back` in its own mode
// (big-endian, 32-bit, real), where the endian trampoline switches the
// little-endian image back before anything else runs.
global_asm!(
    r#"
    .section .text.real_call, "ax"
    .balign 4
.Lreal_call_32_code:
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

    # External interrupts off first: an interrupt would overwrite SRR0/SRR1.
    li      %r12, {msr_ri}
    mtmsrd  %r12, 1
    # r3 and r4 are the firmware's arguments; its entry (r5) goes in SRR0, its
    # MSR in SRR1, and it returns to LR.
    mtsrr0  %r5
    li      %r12, 1
    sldi    %r12, %r12, 63
    ori     %r12, %r12, {clears_lo}
    andc    %r11, %r11, %r12
    mtsrr1  %r11
    lis     %r12, .Lreal_call_32_back@ha
    addi    %r12, %r12, .Lreal_call_32_back@l
    mtlr    %r12
    rfid

.Lreal_call_32_back:
"#,
    endian_fixup!(),
    r#"
    # Back from the firmware, in 32-bit real mode, in the image's byte order: the
    # upper half of r1 may be garbage, so clear it before using it, then restore
    # the MSR.
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
"#,
    msr_ri = const Msr::RI.bits(),
    clears_lo = const REAL_CALL_CLEARS,
);

extern "C" {
    /// Calls firmware code at `entry` in 32-bit real mode with r3 = `r3`,
    /// r4 = `r4`; returns what the firmware left in r3.
    fn real_call_32(r3: u64, r4: u64, entry: u64) -> u64;
}

/// Calls the firmware at `entry` with r3 and r4.
///
/// # Safety
/// `entry` must be live firmware code that follows the PowerPC calling
/// convention; `r3` and `r4` must be what it expects (addresses in them below
/// 4 GiB, inside the RMA, valid for the whole call); the stack must be in the RMA.
pub unsafe fn call(r3: u64, r4: u64, entry: u64) -> u64 {
    // SAFETY: forwarded from the caller; the trampoline saves and restores every
    // register Rust expects preserved and returns in the caller's mode.
    unsafe { real_call_32(r3, r4, entry) }
}
