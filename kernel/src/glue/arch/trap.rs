//! Interrupts that return: the external (0x500) and decrementer (0x900)
//! interrupts save the whole machine state, run a short Rust handler, restore
//! everything and `rfid` back to the interrupted code.
//!
//! The entry path lives here and only here (`interrupt_common`), so that a later
//! change of how vectors run (relocation-on interrupts, translation switched on
//! at entry) has one place to go:
//!
//! 1. the vector (copied to real address 0x500 / 0x900 with the others, see
//!    `entry.rs`) saves r3 in SPRG1, loads its vector number into r3 and branches
//!    to `interrupt_common`;
//! 2. `interrupt_common` saves r1 in SPRG2 and switches to this CPU's interrupt
//!    stack (its top is in SPRG0, see `glue/percpu.rs`; in the image, so in the
//!    RMA: interrupts arrive in real mode), builds a [`TrapFrame`] there with r0..r31, CR, LR, CTR, XER, SRR0,
//!    SRR1, then turns FP/VMX/VSX on (an interrupt clears them) and saves the 64
//!    VSX registers (which hold the FP and vector registers), FPSCR and VSCR;
//!    with FP/VMX/VSX it turns translation back on once the MMU is up
//!    (`glue::mmu::EXCEPTION_MSR_BITS`);
//! 3. it calls `interrupt_entry(vector, frame)` the way the image's ABI wants
//!    (`call_rust!` in `abi.rs`) with external interrupts still off (MSR[EE] = 0): handlers never
//!    nest;
//! 4. it restores everything in reverse order, SRR0/SRR1 last, and `rfid` restores
//!    the interrupted MSR and PC.
//!
//! Handlers only record (atomics, a lock-free ring) and quiet the source
//! (decrementer reloaded, XICS interrupt accepted and ended); they never allocate,
//! lock, log or print, so they cannot deadlock on anything the interrupted code
//! holds. The main loop does the work. Facts: docs/interrupts.md.

use core::arch::{asm, global_asm};

use kernel::vector;

use bitflags::bitflags;

bitflags! {
    /// Machine State Register bits the kernel uses (Power ISA numbering: bit 63 is
    /// the least significant).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Msr: u64 {
        /// Vector (VMX) available.
        const VEC = 1 << 25;
        /// VSX available.
        const VSX = 1 << 23;
        /// External (and decrementer) interrupts enabled.
        const EE = 1 << 15;
        /// Single-step trace.
        const SE = 1 << 10;
        /// Branch trace.
        const BE = 1 << 9;
        /// Floating point available.
        const FP = 1 << 13;
        /// Instruction relocation (translation) on.
        const IR = 1 << 5;
        /// Data relocation (translation) on.
        const DR = 1 << 4;
        /// Recoverable interrupt.
        const RI = 1 << 1;
        /// Little-endian mode.
        const LE = 1 << 0;
    }
}

/// The interrupted state, as `interrupt_common` saves it on the interrupt stack.
#[repr(C)]
#[derive(Debug)]
pub struct TrapFrame {
    /// r0..r31 as they were (r1: the interrupted stack pointer).
    pub gpr: [u64; 32],
    /// Condition register.
    pub cr: u64,
    /// Link register.
    pub lr: u64,
    /// Count register.
    pub ctr: u64,
    /// Fixed-point exception register.
    pub xer: u64,
    /// Where the interrupted code resumes.
    pub srr0: u64,
    /// The interrupted MSR.
    pub srr1: u64,
    /// FP status and control (in the low word of the double).
    pub fpscr: u64,
    _pad: u64,
    /// Vector status and control register (a 16-byte vector).
    pub vscr: [u64; 2],
    /// vs0..vs63 (vs0..31 hold f0..f31, vs32..63 hold v0..v31).
    pub vsr: [[u64; 2]; 64],
}

/// MSR[FP|VEC|VSX], the facilities the kernel's code uses (an interrupt clears
/// them), as the two 16-bit immediates of `ori` (low half) and `oris` (high half)
/// the assembly sets them with.
pub const FACILITIES_LO: u64 = Msr::FP.bits();
/// See [`FACILITIES_LO`].
pub const FACILITIES_HI: u64 = (Msr::VEC.bits() | Msr::VSX.bits()) >> 16;
const _: () = assert!(
    FACILITIES_LO < 1 << 16
        && FACILITIES_HI < 1 << 16
        && (Msr::VEC.bits() | Msr::VSX.bits()) & 0xffff == 0
);

/// Where the frame starts above the stack pointer (the ABI's linkage area below
/// it), and the whole frame, rounded to 16 bytes; the offsets of its fields go
/// to the assembly below as `const` operands.
const F_BASE: usize = 128;
const FRAME_BYTES: usize = (F_BASE + core::mem::size_of::<TrapFrame>() + 15) & !15;
const _: () = assert!((F_BASE + core::mem::offset_of!(TrapFrame, vsr)).is_multiple_of(16));

global_asm!(
    r#"
    .set F_BASE, {f_base}
    .set F_GPR, {f_gpr}
    .set F_CR, {f_cr}
    .set F_LR, {f_lr}
    .set F_CTR, {f_ctr}
    .set F_XER, {f_xer}
    .set F_SRR0, {f_srr0}
    .set F_SRR1, {f_srr1}
    .set F_FPSCR, {f_fpscr}
    .set F_VSCR, {f_vscr}
    .set F_VSR, {f_vsr}
    .set FRAME_BYTES, {frame_bytes}

    .section .text.irq_common, "ax"
    .globl interrupt_common
interrupt_common:
    mtsprg2 %r1
    mfsprg0 %r1
    addi    %r1, %r1, -FRAME_BYTES
    std     %r0, F_GPR+0(%r1)
    std     %r2, F_GPR+16(%r1)
    .irp n, 4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    std     %r\n, F_GPR+8*\n(%r1)
    .endr
    mfsprg1 %r0
    std     %r0, F_GPR+24(%r1)
    mfsprg2 %r0
    std     %r0, F_GPR+8(%r1)
    mfcr    %r0
    std     %r0, F_CR(%r1)
    mflr    %r0
    std     %r0, F_LR(%r1)
    mfctr   %r0
    std     %r0, F_CTR(%r1)
    mfxer   %r0
    std     %r0, F_XER(%r1)
    mfsrr0  %r0
    std     %r0, F_SRR0(%r1)
    mfsrr1  %r0
    std     %r0, F_SRR1(%r1)

    mfmsr   %r4
    ori     %r4, %r4, {facilities_lo}
    oris    %r4, %r4, {facilities_hi}
    # Translation back on (IR|DR once the MMU is set up: glue/mmu.rs); the
    # frame above is in the RMA, everything after may be anywhere.
    lis     %r5, EXCEPTION_MSR_BITS@ha
    ld      %r5, EXCEPTION_MSR_BITS@l(%r5)
    or      %r4, %r4, %r5
    mtmsrd  %r4
    isync
    addi    %r4, %r1, F_VSR
    .irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32,33,34,35,36,37,38,39,40,41,42,43,44,45,46,47,48,49,50,51,52,53,54,55,56,57,58,59,60,61,62,63
    stxvd2x \n, 0, %r4
    addi    %r4, %r4, 16
    .endr
    mffs    %f0
    stfd    %f0, F_FPSCR(%r1)
    mfvscr  %v0
    addi    %r5, %r1, F_VSCR
    stvx    %v0, 0, %r5

    li      %r0, 0
    std     %r0, 0(%r1)
    addi    %r4, %r1, F_BASE
"#,
    call_rust!("interrupt_entry"),
    r#"

    addi    %r5, %r1, F_VSCR
    lvx     %v0, 0, %r5
    mtvscr  %v0
    lfd     %f0, F_FPSCR(%r1)
    mtfsf   0xff, %f0
    addi    %r4, %r1, F_VSR
    .irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32,33,34,35,36,37,38,39,40,41,42,43,44,45,46,47,48,49,50,51,52,53,54,55,56,57,58,59,60,61,62,63
    lxvd2x  \n, 0, %r4
    addi    %r4, %r4, 16
    .endr
    ld      %r0, F_CR(%r1)
    mtcr    %r0
    ld      %r0, F_LR(%r1)
    mtlr    %r0
    ld      %r0, F_CTR(%r1)
    mtctr   %r0
    ld      %r0, F_XER(%r1)
    mtxer   %r0
    ld      %r0, F_SRR0(%r1)
    mtsrr0  %r0
    ld      %r0, F_SRR1(%r1)
    mtsrr1  %r0
    ld      %r0, F_GPR+0(%r1)
    ld      %r2, F_GPR+16(%r1)
    .irp n, 3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    ld      %r\n, F_GPR+8*\n(%r1)
    .endr
    ld      %r1, F_GPR+8(%r1)
    rfid
"#,
    f_base = const F_BASE,
    f_gpr = const F_BASE + core::mem::offset_of!(TrapFrame, gpr),
    f_cr = const F_BASE + core::mem::offset_of!(TrapFrame, cr),
    f_lr = const F_BASE + core::mem::offset_of!(TrapFrame, lr),
    f_ctr = const F_BASE + core::mem::offset_of!(TrapFrame, ctr),
    f_xer = const F_BASE + core::mem::offset_of!(TrapFrame, xer),
    f_srr0 = const F_BASE + core::mem::offset_of!(TrapFrame, srr0),
    f_srr1 = const F_BASE + core::mem::offset_of!(TrapFrame, srr1),
    f_fpscr = const F_BASE + core::mem::offset_of!(TrapFrame, fpscr),
    f_vscr = const F_BASE + core::mem::offset_of!(TrapFrame, vscr),
    f_vsr = const F_BASE + core::mem::offset_of!(TrapFrame, vsr),
    frame_bytes = const FRAME_BYTES,
    facilities_lo = const FACILITIES_LO,
    facilities_hi = const FACILITIES_HI,
);

/// Called by `interrupt_common` with interrupts off, on the interrupt stack.
#[no_mangle]
extern "C" fn interrupt_entry(vector: u64, frame: *mut TrapFrame) {
    // SAFETY: `interrupt_common` passes the frame it just built on the interrupt
    // stack; nothing else refers to it while the handler runs.
    let frame = unsafe { &mut *frame };
    match vector {
        vector::DECREMENTER => crate::irq::decrementer(),
        vector::EXTERNAL => crate::irq::external(),
        // A data storage interrupt: the first touch of a linear-map page not
        // entered yet is entered and the access retried; anything else is a
        // real fault, reported as before.
        vector::DATA_STORAGE => {
            let (dar, dsisr) = crate::glue::mmu::fault_registers();
            if !crate::glue::mmu::enter_on_fault(dar, dsisr) {
                crate::arch::exceptions::exception_entry(
                    vector, frame.srr0, frame.srr1, dar, dsisr, frame.lr,
                )
            }
        }
        _ => {
            crate::console::emergency_write(format_args!(
                "\nEXCEPTION vector={vector:#x} reached the returning path SRR0={:#018x}\n",
                frame.srr0
            ));
            crate::exit::os_term("unexpected returning interrupt")
        }
    }
}

/// The current MSR.
pub fn msr() -> Msr {
    let v: u64;
    // SAFETY: mfmsr only reads the MSR.
    unsafe { asm!("mfmsr {0}", out(reg) v, options(nomem, nostack)) };
    Msr::from_bits_retain(v)
}

/// Turns external and decrementer interrupts on (MSR[EE] = 1).
pub fn enable_interrupts() {
    let v = Msr::EE.union(Msr::RI).bits();
    // SAFETY: `mtmsrd r, 1` changes only EE and RI. The vectors for 0x500/0x900
    // are installed before anything calls this (boot order).
    unsafe { asm!("mtmsrd {0}, 1", in(reg) v, options(nostack)) };
}

/// Turns external and decrementer interrupts off; returns whether they were on.
/// When they are already off it only reads the MSR (an `mtmsrd` is costly under
/// QEMU's TCG, and the locks call this for every acquisition).
pub fn disable_interrupts() -> bool {
    let was = msr().contains(Msr::EE);
    if !was {
        return false;
    }
    let v = Msr::RI.bits();
    // SAFETY: `mtmsrd r, 1` changes only EE and RI (here: EE off, RI on).
    unsafe { asm!("mtmsrd {0}, 1", in(reg) v, options(nostack)) };
    was
}

/// Loads the decrementer: an interrupt comes when it passes zero, `ticks`
/// timebase ticks from now (at most [`kernel::timer::DEC_MAX`]).
pub fn set_decrementer(ticks: u64) {
    let v = ticks.clamp(1, kernel::timer::DEC_MAX);
    // SAFETY: mtdec only writes the decrementer (SPR 22).
    unsafe { asm!("mtdec {0}", in(reg) v, options(nomem, nostack)) };
}
