//! A second hypervisor vty (a `spapr-vty` other than the console, e.g. QEMU's
//! `-device spapr-vty,chardev=...,reg=0x71000010`) that echoes every byte it
//! receives: the smallest device with an interrupt, I/O and a main-loop turn,
//! added as this one file plus its entry in `DRIVERS`. Its interrupts are
//! counted in the `cpu` reply's `interrupts_external_echo_vty` row.
//!
//! The vty raises its interrupt when input arrives into an empty buffer. The
//! handler only records it; the main loop's turn drains the buffer completely
//! (so the next input raises the interrupt again) and writes each chunk back
//! with H_PUT_TERM_CHAR, retrying a busy hypervisor under the one retry policy.

use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use hcall::raw::sc1::Sc1;
use hcall::{term, xics, RetryPolicy};

use super::{Driver, Probe};
use crate::hv::KernelClock;
use crate::irq::{self, After};
use crate::sys::System;

/// The driver list's entry.
pub const DRIVER: Driver = Driver {
    name: "echo-vty",
    irq_label: Some("echo_vty"),
    probe,
    service,
    pending: Some(pending),
};

/// The `compatible` of a PAPR vty.
const VTY_COMPATIBLE: &str = "hvterm1";

/// The echoing vty's unit address (0: none attached).
static UNIT: AtomicU32 = AtomicU32::new(0);
/// Input arrived and is not drained yet.
static INPUT: AtomicBool = AtomicBool::new(false);

/// Takes the first vty that is not the console, if its interrupt attaches.
fn probe(p: &mut Probe<'_>) {
    let console = super::vty::unit();
    let Some(dev) = p
        .platform
        .vdevices
        .iter()
        .find(|d| d.compatible == VTY_COMPATIBLE && d.unit != console)
    else {
        return;
    };
    let Some(source) = p.sources.vio_source(dev.unit) else {
        log::warn!("echo-vty: {}: no interrupts property; not used", dev.name);
        return;
    };
    UNIT.store(dev.unit, Ordering::Release);
    if let Err(e) = irq::attach(source.number, "echo_vty", on_interrupt) {
        UNIT.store(0, Ordering::Release);
        log::warn!("echo-vty: {}: {e}; not used", dev.name);
        return;
    }
    if let Err(e) = xics::vio_signal(&mut Sc1::new(), dev.unit, true) {
        log::info!("echo-vty signalling: {e} (the device signals without it)");
    }
    log::info!(
        "echo-vty: {} echoes its input (source {:#x})",
        dev.name,
        source.number
    );
}

/// The interrupt: input arrived (drained by the main loop).
fn on_interrupt() -> After {
    INPUT.store(true, Ordering::Release);
    After::End
}

fn pending() -> bool {
    INPUT.load(Ordering::Acquire)
}

/// The main loop's turn: drains the vty and writes every chunk back.
fn service(_: &mut System) -> bool {
    if !INPUT.swap(false, Ordering::AcqRel) {
        return false;
    }
    let unit = u64::from(UNIT.load(Ordering::Acquire));
    let mut raw = Sc1::new();
    let mut buf = [0u8; 16];
    loop {
        let n = match term::get_term_chars(&mut raw, unit, &mut buf) {
            Ok(0) => return false,
            Ok(n) => n,
            Err(e) => {
                log::warn!("echo-vty: {e}");
                return false;
            }
        };
        let mut sent = 0;
        while let Some(rest) = buf.get(sent..n).filter(|r| !r.is_empty()) {
            let put = RetryPolicy::default().run(&mut KernelClock, || {
                term::put_term_chars(&mut raw, unit, rest)
            });
            match put {
                Ok(k) if k > 0 => sent += k,
                Ok(_) => {
                    log::warn!("echo-vty: the vty took nothing; {} bytes dropped", n - sent);
                    break;
                }
                Err(e) => {
                    log::warn!("echo-vty: {e}; {} bytes dropped", n - sent);
                    break;
                }
            }
        }
    }
}
