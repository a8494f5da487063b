//! The entry point and the exception vectors (assembly).
//!
//! `_start` is the first byte of the image, at 0x400000. The boot ROM (or the
//! firmware) branches to it in real mode, big-endian, 32-bit mode, with the
//! flattened device tree in r3 (boot ROM) or the Open Firmware client interface in
//! r5 (SLOF, VOF). It begins with the endian trampoline (`abi.rs`: the
//! little-endian image switches to little-endian there), switches to 64-bit mode,
//! enables FP/VMX/VSX (the prebuilt `core` uses them), clears the BSS, sets up
//! the boot stack and calls `kernel_entry` (with the TOC the ABI wants) with
//! r3..r5 as they were.
//!
//! The vectors in `.text.vectors` are copied to real address 0 by
//! [`super::exceptions::install`]; each loads its vector number and branches
//! absolutely to `exception_common`, which builds a stack and calls
//! `exception_entry` with the saved machine state.
//!
//! `secondary_start` is where every other CPU enters (RTAS `start-cpu`, see
//! `glue/smp.rs`): a small entry of its own, which starts with the endian
//! trampoline as `_start` does.

use core::arch::global_asm;
use kernel::vector;

global_asm!(
    r#"
    .section .text.entry, "ax"
    .globl _start
_start:
"#,
    endian_fixup!(),
    r#"
    mr      %r29, %r3
    mr      %r30, %r4
    mr      %r31, %r5
    mfmsr   %r11
    li      %r12, 1
    sldi    %r12, %r12, 63
    or      %r11, %r11, %r12
    ori     %r11, %r11, {facilities_lo}
    oris    %r11, %r11, {facilities_hi}
    mtmsrd  %r11
    isync

    lis     %r4, __bss_start@ha
    addi    %r4, %r4, __bss_start@l
    lis     %r5, __bss_end@ha
    addi    %r5, %r5, __bss_end@l
    li      %r6, 0
1:  cmpld   %r4, %r5
    bge     2f
    std     %r6, 0(%r4)
    addi    %r4, %r4, 8
    b       1b
2:
    lis     %r1, __boot_stack_top@ha
    addi    %r1, %r1, __boot_stack_top@l
    li      %r0, 0
    stdu    %r0, -256(%r1)

    mr      %r3, %r29
    mr      %r4, %r30
    mr      %r5, %r31
"#,
    call_rust!("kernel_entry"),
    r#"
3:  b       3b

    .section .bss.stacks, "aw", @nobits
    .balign {page}
__boot_stack_bottom:
    .space  0x40000
    .globl __boot_stack_top
__boot_stack_top:
    .space  0x100

    # One 256 KiB block per CPU (glue/percpu.rs): kernel stack, exception
    # stack, interrupt stack. 8 CPUs (kernel::smp::MAX_CPUS).
    .balign {page}
    .globl __cpu_stacks
__cpu_stacks:
    .space  0x40000 * 8

    # The entry of every CPU but the boot one, given to RTAS `start-cpu`
    # (glue/smp.rs). Entered in real mode, 64-bit, big-endian, interrupts off,
    # with r3 = the CPU index and no usable r1. The endian trampoline switches
    # the little-endian image (r3 is kept). It takes the kernel stack of its
    # block, turns FP/VMX/VSX on and calls `secondary_entry(index)`.
    .section .text.secondary_start, "ax"
    .balign 4
    .globl secondary_start
secondary_start:
"#,
    endian_fixup!(),
    r#"
    lis     %r4, __cpu_stacks@ha
    addi    %r4, %r4, __cpu_stacks@l
    sldi    %r5, %r3, 18
    add     %r4, %r4, %r5
    addis   %r1, %r4, 2
    li      %r0, 0
    stdu    %r0, -256(%r1)
    mfmsr   %r11
    ori     %r11, %r11, {facilities_lo}
    oris    %r11, %r11, {facilities_hi}
    mtmsrd  %r11
    isync
"#,
    call_rust!("secondary_entry"),
    r#"
4:  b       4b
"#,
    facilities_lo = const super::trap::FACILITIES_LO,
    facilities_hi = const super::trap::FACILITIES_HI,
    page = const hcall::page::PAGE_SIZE,
);

/// Emits a vector whose number is a named `const` operand of the `global_asm!`
/// below (`{name}`, from `kernel::vector`): a fatal one, or one that goes to
/// `$to`.
macro_rules! named_vector {
    ($name:literal) => {
        named_vector!($name, "exception_common")
    };
    ($name:literal, $to:literal) => {
        concat!(
            ".org {",
            $name,
            "}\n",
            "    mtsprg1 %r3\n",
            "    li %r3, {",
            $name,
            "}\n",
            branch_abs!($to)
        )
    };
}

/// Emits a vector whose interrupt returns: it goes to `interrupt_common`.
macro_rules! returning_vector {
    ($name:literal) => {
        named_vector!($name, "interrupt_common")
    };
}

global_asm!(
    ".section .text.vectors, \"ax\"",
    ".globl __vector_table",
    "__vector_table:",
    named_vector!("system_reset"),
    named_vector!("machine_check"),
    returning_vector!("data_storage"),
    named_vector!("data_segment"),
    named_vector!("instruction_storage"),
    named_vector!("instruction_segment"),
    returning_vector!("external"),
    named_vector!("alignment"),
    named_vector!("program"),
    named_vector!("fp_unavailable"),
    returning_vector!("decrementer"),
    named_vector!("hypervisor_decrementer"),
    named_vector!("privileged_doorbell"),
    named_vector!("reserved_b00"),
    named_vector!("system_call"),
    named_vector!("trace"),
    named_vector!("hypervisor_data_storage"),
    named_vector!("hypervisor_instruction_storage"),
    named_vector!("hypervisor_emulation"),
    named_vector!("hypervisor_maintenance"),
    named_vector!("hypervisor_doorbell"),
    named_vector!("hypervisor_virtualization"),
    named_vector!("performance_monitor"),
    named_vector!("vmx_unavailable"),
    named_vector!("vsx_unavailable"),
    named_vector!("facility_unavailable"),
    named_vector!("hypervisor_facility_unavailable"),
    named_vector!("reserved_1000"),
    ".org {table_end}",
    ".globl __vector_table_end",
    "__vector_table_end:",
    "",
    ".section .text.exc_common, \"ax\"",
    ".globl exception_common",
    "exception_common:",
    // This CPU's exception stack: 64 KiB below its interrupt stack's top,
    // which SPRG0 holds (glue/percpu.rs).
    "    mfsprg0 %r1",
    "    addis   %r1, %r1, -1",
    "    li      %r0, 0",
    "    stdu    %r0, -256(%r1)",
    "    mfmsr   %r4",
    "    ori     %r4, %r4, {facilities_lo}",
    "    oris    %r4, %r4, {facilities_hi}",
    // Translation back on (IR|DR once the MMU is set up: glue/mmu.rs) before
    // anything outside the RMA is touched.
    "    lis     %r9, EXCEPTION_MSR_BITS@ha",
    "    ld      %r9, EXCEPTION_MSR_BITS@l(%r9)",
    "    or      %r4, %r4, %r9",
    "    mtmsrd  %r4",
    "    isync",
    "    mfsrr0  %r4",
    "    mfsrr1  %r5",
    "    mfdar   %r6",
    "    mfdsisr %r7",
    "    mflr    %r8",
    call_rust!("exception_entry"),
    "4:  b       4b",
    system_reset = const vector::SYSTEM_RESET,
    machine_check = const vector::MACHINE_CHECK,
    data_storage = const vector::DATA_STORAGE,
    data_segment = const vector::DATA_SEGMENT,
    instruction_storage = const vector::INSTRUCTION_STORAGE,
    instruction_segment = const vector::INSTRUCTION_SEGMENT,
    external = const vector::EXTERNAL,
    alignment = const vector::ALIGNMENT,
    program = const vector::PROGRAM,
    fp_unavailable = const vector::FP_UNAVAILABLE,
    decrementer = const vector::DECREMENTER,
    hypervisor_decrementer = const vector::HYPERVISOR_DECREMENTER,
    privileged_doorbell = const vector::PRIVILEGED_DOORBELL,
    reserved_b00 = const vector::RESERVED_B00,
    system_call = const vector::SYSTEM_CALL,
    trace = const vector::TRACE,
    hypervisor_data_storage = const vector::HYPERVISOR_DATA_STORAGE,
    hypervisor_instruction_storage = const vector::HYPERVISOR_INSTRUCTION_STORAGE,
    hypervisor_emulation = const vector::HYPERVISOR_EMULATION,
    hypervisor_maintenance = const vector::HYPERVISOR_MAINTENANCE,
    hypervisor_doorbell = const vector::HYPERVISOR_DOORBELL,
    hypervisor_virtualization = const vector::HYPERVISOR_VIRTUALIZATION,
    performance_monitor = const vector::PERFORMANCE_MONITOR,
    vmx_unavailable = const vector::VMX_UNAVAILABLE,
    vsx_unavailable = const vector::VSX_UNAVAILABLE,
    facility_unavailable = const vector::FACILITY_UNAVAILABLE,
    hypervisor_facility_unavailable = const vector::HYPERVISOR_FACILITY_UNAVAILABLE,
    reserved_1000 = const vector::RESERVED_1000,
    table_end = const vector::TABLE_END,
    facilities_lo = const super::trap::FACILITIES_LO,
    facilities_hi = const super::trap::FACILITIES_HI,
);

/// Called by `_start` with r3..r5 as the firmware left them: the boot path
/// (`glue/boot`) takes it from here, with r5 made the client interface when it
/// is one.
#[no_mangle]
pub extern "C" fn kernel_entry(r3: u64, _r4: u64, r5: u64) -> ! {
    // SAFETY: the boot path calls through it only when r3 holds no device
    // tree, which is when r5 is the client interface entry as Open Firmware
    // left it; nothing has been written yet, and its last call comes before
    // the vectors are installed over low memory.
    let prom = (r5 != 0).then(|| unsafe { crate::glue::of::Prom::new(r5) });
    crate::glue::boot::start(r3, prom)
}
