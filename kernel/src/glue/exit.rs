//! Leaving the machine: RTAS `power-off` (QEMU exits 0) and `ibm,os-term` (QEMU
//! exits 1 when started with `-action panic=exit-failure`).

use crate::rtas;

fn halt() -> ! {
    loop {
        core::hint::spin_loop();
    }
}

/// QEMU's own RTAS token numbers for `power-off` and `ibm,os-term`, used only when
/// the tree named none (a fatal error before the RTAS node was read). They are
/// QEMU's internal numbering, 0x2000 plus the call's index (`docs/rtas.md`); on PowerVM the tree always names the
/// tokens, and these numbers would mean something else.
const QEMU_POWER_OFF: u32 = 0x2003;
/// See [`QEMU_POWER_OFF`].
const QEMU_OS_TERM: u32 = 0x201f;

/// Powers off: QEMU exits with status 0.
pub fn power_off() -> ! {
    crate::smp::stop_others();
    rtas::break_lock();
    let token = rtas::tokens().power_off.unwrap_or(QEMU_POWER_OFF);
    let mut rets = [0u32; 1];
    let _ = rtas::call(token, &[u32::MAX, u32::MAX], &mut rets);
    crate::console::emergency_write(format_args!("power-off failed\n"));
    halt()
}

static mut TERM_MSG: [u8; 256] = [0; 256];

/// Terminates with `ibm,os-term`: QEMU exits with status 1 under `-action panic=exit-failure`.
pub fn os_term(msg: &str) -> ! {
    crate::smp::stop_others();
    rtas::break_lock();
    crate::console::emergency_write(format_args!("os-term: {msg}\n"));
    // SAFETY: `stop_others` let only this CPU go on, and this path never
    // returns: nothing else uses the buffer concurrently or afterwards.
    let buf = unsafe { &mut *core::ptr::addr_of_mut!(TERM_MSG) };
    let n = msg.len().min(buf.len() - 1);
    buf[..n].copy_from_slice(&msg.as_bytes()[..n]);
    buf[n] = 0;
    let addr = u32::try_from(buf.as_ptr() as usize).unwrap_or(0);
    let token = rtas::tokens().os_term.unwrap_or(QEMU_OS_TERM);
    let mut rets = [0u32; 1];
    let _ = rtas::call(token, &[addr], &mut rets);
    // Without os-term (or if QEMU carried on), fall back to power-off.
    power_off()
}
