//! Leaving the machine: RTAS `power-off` (QEMU exits 0) and `ibm,os-term` (QEMU
//! exits 1 when started with `-action panic=exit-failure`).

use core::sync::atomic::{AtomicBool, Ordering};

use hcall::BackendKind;
use kernel::shutdown::{loans_on_exit, Exit, LoanReturn};

use crate::rtas;

/// True when the backend is the real hypervisor (set once the system exists).
static REAL_HYPERVISOR: AtomicBool = AtomicBool::new(false);

/// Records the backend's kind for the exit decision.
pub fn set_backend(kind: BackendKind) {
    REAL_HYPERVISOR.store(kind == BackendKind::Phyp, Ordering::Relaxed);
}

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

/// Gives the loaned pages back as `kernel::shutdown` decides for os-term (a real
/// hypervisor gets each one back; the model ends with the kernel).
fn return_loans_on_os_term() {
    let Some(view) = crate::mem::loaned_view() else {
        return;
    };
    let kind = if REAL_HYPERVISOR.load(Ordering::Relaxed) {
        BackendKind::Phyp
    } else {
        BackendKind::Model
    };
    let loaned = view.pfns().count() as u64;
    if loans_on_exit(Exit::OsTerm, kind, loaned) == LoanReturn::EachPage {
        let (back, refused) = crate::mem::give_back_on_exit(view);
        crate::console::emergency_write(format_args!(
            "os-term: {back} loaned pages returned, {refused} refused\n"
        ));
    }
}

/// Terminates with `ibm,os-term`: QEMU exits with status 1 under `-action panic=exit-failure`.
pub fn os_term(msg: &str) -> ! {
    crate::smp::stop_others();
    rtas::break_lock();
    crate::console::emergency_write(format_args!("os-term: {msg}\n"));
    return_loans_on_os_term();
    let _ = rtas::os_term(msg);
    // Without os-term (or if QEMU carried on), fall back to power-off.
    power_off()
}
