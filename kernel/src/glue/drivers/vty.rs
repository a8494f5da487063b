//! The hypervisor's virtual terminal (vty), the console device, in one file as
//! FreeBSD's `phyp_console.c` has it: where it is (the unit address from the
//! device tree's `/chosen/stdout-path`), its interrupt or, without one, a timed
//! poll, and its I/O through H_PUT_TERM_CHAR / H_GET_TERM_CHAR (`hcall::term`).
//!
//! Input goes into the console's ring (`console::input`); the console's writer,
//! prompt line and logger (`console`) write through [`put`]. The vty signals
//! input only into an empty buffer, so each interrupt drains it completely.

use core::sync::atomic::{AtomicU32, Ordering};

use hcall::{term, xics, RetryPolicy};
use kernel::cpustats::CpuStats;
use kernel::devtree::Platform;
use kernel::irq::Irq;
use kernel::timer::{after_us, input_poll_us};

use super::{Driver, Probe};
use crate::arch::trap;
use hcall::raw::sc1::Sc1;

use crate::hv::KernelClock;
use crate::irq::{self, After};
use crate::sys::System;
use crate::wait::Wake;
use crate::{clock, console, percpu};

/// The driver list's entry.
pub const DRIVER: Driver = Driver {
    name: "vty",
    irq_label: Some("vty"),
    probe,
    service,
    pending: None,
};

/// QEMU's vty unit address, used until the device tree is read (the first log
/// lines) or when it names none.
const QEMU_UNIT: u32 = 0x7100_0000;

static UNIT: AtomicU32 = AtomicU32::new(QEMU_UNIT);
static IRQ: spin::Once<Irq> = spin::Once::new();

/// The console from the first line on: takes the unit address from the tree
/// (before the driver list is probed, which attaches the interrupt).
pub fn early(platform: &Platform) {
    if let Some(u) = platform.vty_unit {
        UNIT.store(u, Ordering::Relaxed);
    }
}

/// The vty unit address in use.
pub fn unit() -> u32 {
    UNIT.load(Ordering::Relaxed)
}

/// Writes `bytes`; a busy hypervisor is retried under the one retry policy
/// (long-busy hints are waited out), and output is dropped when it gives up.
pub fn put(bytes: &[u8]) {
    let unit = u64::from(unit());
    let mut raw = Sc1::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let r = RetryPolicy::default().run(&mut KernelClock, || {
            term::put_term_chars(&mut raw, unit, rest)
        });
        match r {
            Ok(n) => rest = rest.get(n..).unwrap_or(&[]),
            Err(_) => return,
        }
    }
}

/// Reads up to 16 waiting bytes into `buf`; returns how many.
fn get(buf: &mut [u8; 16]) -> usize {
    term::get_term_chars(&mut Sc1::new(), u64::from(unit()), buf).unwrap_or(0)
}

/// Attaches the vty's interrupt (its `interrupts` in `/vdevice`) and asks for
/// its signalling; without them the console is polled.
fn probe(p: &mut Probe<'_>) {
    let unit = unit();
    let Some(source) = p.sources.vio_source(unit) else {
        log::warn!("console input by timed poll: the vty has no interrupts property");
        return;
    };
    match irq::attach(source.number, "vty", on_interrupt) {
        Ok(i) => {
            IRQ.call_once(|| i);
        }
        Err(e) => {
            log::warn!("console input by timed poll: {e}");
            return;
        }
    }
    // PAPR asks for H_VIO_SIGNAL; QEMU 7.2's vty refuses it (H_PARAMETER: the
    // vty class has no signal mask) and signals input regardless.
    if let Err(e) = xics::vio_signal(&mut Sc1::new(), unit, true) {
        log::info!("vty signalling: {e} (the device signals without it)");
    }
    log::info!("vty: input by interrupt (source {:#x})", source.number);
}

/// The vty's interrupt: drain it into the console's ring.
fn on_interrupt() -> After {
    console::input::fill(get);
    After::End
}

/// True when the vty raises interrupts (no timed poll needed).
pub fn by_interrupt() -> bool {
    IRQ.get().is_some_and(|&i| irq::is_live(i))
}

/// Drains the vty into the console's ring with interrupts masked (the timed
/// poll, or a ring that had filled up).
pub fn poll() {
    let was_on = trap::disable_interrupts();
    console::input::fill(get);
    if was_on {
        trap::enable_interrupts();
    }
    CpuStats::add(&percpu::this().stats.console_polls, 1);
}

/// The main loop's turn: without an interrupt, poll and arm the next poll (sooner
/// while input is flowing).
fn service(sys: &mut System) -> bool {
    if by_interrupt() {
        return false;
    }
    let had = console::input::waiting();
    poll();
    let period = input_poll_us(had, console::input::waiting());
    let now = clock::ticks();
    sys.timers.arm(
        Wake::Driver(DRIVER.name),
        after_us(now, period, clock::hz()),
    );
    false
}
