//! Leaving the machine: RTAS `power-off` (QEMU exits 0) and `ibm,os-term` (QEMU
//! exits 1 when started with `-action panic=exit-failure`).

use crate::rtas;

fn halt() -> ! {
    loop {
        core::hint::spin_loop();
    }
}

/// Powers off: QEMU exits with status 0.
pub fn power_off() -> ! {
    crate::smp::stop_others();
    rtas::break_lock();
    let _ = rtas::power_off();
    crate::console::emergency_write(format_args!("power-off failed\n"));
    halt()
}

/// Terminates with `ibm,os-term`: QEMU exits with status 1 under `-action panic=exit-failure`.
pub fn os_term(msg: &str) -> ! {
    crate::smp::stop_others();
    rtas::break_lock();
    crate::console::emergency_write(format_args!("os-term: {msg}\n"));
    let _ = rtas::os_term(msg);
    // Without os-term (or if QEMU carried on), fall back to power-off.
    power_off()
}
