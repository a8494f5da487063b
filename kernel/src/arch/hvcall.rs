//! The raw `sc 1` used by the kernel until the shim's own lands (temporary).

use core::arch::asm;

/// One hcall with up to 8 arguments; returns r3 and r4..r11.
pub fn hcall(opcode: u64, args: &[u64]) -> (i64, [u64; 9]) {
    let mut a = [0u64; 9];
    for (d, s) in a.iter_mut().zip(args) {
        *d = *s;
    }
    let r3: u64;
    let mut out = [0u64; 9];
    // SAFETY: sc 1 enters the hypervisor, which only changes the volatile registers
    // declared here; memory passed by address is the caller's concern.
    unsafe {
        asm!(
            "sc 1",
            inout("r3") opcode => r3,
            inout("r4") a[0] => out[0],
            inout("r5") a[1] => out[1],
            inout("r6") a[2] => out[2],
            inout("r7") a[3] => out[3],
            inout("r8") a[4] => out[4],
            inout("r9") a[5] => out[5],
            inout("r10") a[6] => out[6],
            inout("r11") a[7] => out[7],
            inout("r12") a[8] => out[8],
            out("r0") _,
            out("ctr") _,
            out("xer") _,
            out("cr0") _,
            out("cr1") _,
            out("cr5") _,
            out("cr6") _,
            out("cr7") _,
        );
    }
    (r3 as i64, out)
}
