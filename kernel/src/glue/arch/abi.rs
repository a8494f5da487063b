//! Assembly snippets that differ between the two images, as `macro_rules!` that
//! expand to assembler text for `global_asm!`. Every entry point and every call
//! from assembly into Rust uses them, so the ABI and byte-order details live
//! here only (docs/little-endian.md):
//!
//! - [`endian_fixup!`]: the endian trampoline. Firmware (the `-bios` ROM, SLOF,
//!   VOF, RTAS and the Open Firmware client interface on return) always runs the
//!   kernel big-endian; the little-endian image must switch to little-endian
//!   before its first real instruction. The trampoline is harmless in the right
//!   byte order and switches MSR[LE] in the wrong one, so both images carry it.
//!   Any new entry point (the secondary-CPU entry of SMP included) starts with it.
//! - [`call_rust!`]: calls an `extern "C"` Rust function by name: through its
//!   ELFv1 function descriptor (code address, TOC) in the big-endian image; with
//!   r12 = the code address and r2 = `.TOC.` in the little-endian ELFv2 image,
//!   which has no descriptors.
//! - [`branch_abs!`]: an absolute branch (`ba`) to a symbol below 32 MiB, written
//!   as a data word because rust-lld does not apply the 24-bit branch relocation
//!   that `ba symbol` needs. Used by the exception vectors, which run from a copy
//!   at real address 0 and so cannot branch relatively.

/// The endian trampoline (12 words, clobbers r10, r11, LR, SRR0, SRR1; interrupts
/// must be off). Read in the image's own byte order, the first word is
/// `tdi 0,0,0x48` (never traps) and the second branches over the rest. Read in
/// the other byte order the first word is `b .+8`, and the ten words after the
/// branch are stored byte-swapped so that they make sense in that order:
/// `mfmsr r11; xori r11,r11,1 (MSR[LE]); li r10,0; mtmsrd r10,1 (EE and RI off);
/// bcl 20,31,$+4; mflr r10; addi r10,r10,20; mtsrr0 r10; mtsrr1 r11; rfid`,
/// which resumes right after the trampoline with MSR[LE] flipped. r3..r9 and the
/// stack are untouched.
macro_rules! endian_fixup {
    () => {
        concat!(
            "    tdi 0, 0, 0x48\n",
            "    b 191f\n",
            swapped_word!("0x7d6000a6"),
            swapped_word!("0x696b0001"),
            swapped_word!("0x39400000"),
            swapped_word!("0x7d410164"),
            swapped_word!("0x429f0005"),
            swapped_word!("0x7d4802a6"),
            swapped_word!("0x394a0014"),
            swapped_word!("0x7d5a03a6"),
            swapped_word!("0x7d7b03a6"),
            swapped_word!("0x4c000024"),
            "191:\n",
        )
    };
}

/// One instruction word (given by its numeric encoding) stored in the byte order
/// opposite to the image's.
macro_rules! swapped_word {
    ($w:literal) => {
        concat!(
            "    .long (((",
            $w,
            ") >> 24) & 0xff) | (((",
            $w,
            ") >> 8) & 0xff00) | (((",
            $w,
            ") << 8) & 0xff0000) | (((",
            $w,
            ") << 24) & 0xff000000)\n"
        )
    };
}

/// Calls the Rust function `$sym`: r12 = its symbol's address, then the
/// ABI's way on ([`call_rust_tail!`]).
macro_rules! call_rust {
    ($sym:literal) => {
        concat!(
            "    lis     %r12, ",
            $sym,
            "@ha\n",
            "    addi    %r12, %r12, ",
            $sym,
            "@l\n",
            call_rust_tail!(),
        )
    };
}

/// ELFv1: r12 is the function descriptor; load the code address and the TOC
/// from it.
#[cfg(target_abi = "elfv1")]
macro_rules! call_rust_tail {
    () => {
        concat!(
            "    ld      %r0, 0(%r12)\n",
            "    ld      %r2, 8(%r12)\n",
            "    mtctr   %r0\n",
            "    bctrl\n",
        )
    };
}

/// ELFv2: r12 is the code address, as the global entry wants it; r2 is set to
/// the TOC as well, for code entered before any Rust ran.
#[cfg(target_abi = "elfv2")]
macro_rules! call_rust_tail {
    () => {
        concat!(
            "    lis     %r2, .TOC.@ha\n",
            "    addi    %r2, %r2, .TOC.@l\n",
            "    mtctr   %r12\n",
            "    bctrl\n",
        )
    };
}

/// `ba $sym` as a data word: opcode 18 with AA = 1 plus the address, which the
/// linker script keeps below 32 MiB so that it fits the 24-bit field.
macro_rules! branch_abs {
    ($sym:literal) => {
        concat!("    .long 0x48000002 + ", $sym, "\n")
    };
}
