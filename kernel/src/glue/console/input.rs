//! Console input: the vty drained into the lock-free ring ([`kernel::text::input`])
//! by the vty's interrupt, or, where the tree gives the vty no interrupt, by a
//! timed poll from the main loop with interrupts masked (so there is only ever one
//! producer at a time). The shell pops bytes in order.

use kernel::cpustats::CpuStats;
use kernel::text::input::InputRing;

use super::{hvterm, unit};
use crate::arch::trap;

static RING: InputRing = InputRing::new();

/// From the external-interrupt handler: reads the vty until it is empty (or the
/// ring is nearly full).
pub fn drain_from_interrupt() {
    let u = unit();
    RING.drain(|c| hvterm::get(u, c));
}

/// From the main loop: drains the vty with interrupts masked.
pub fn poll() {
    let was_on = trap::disable_interrupts();
    let u = unit();
    RING.drain(|c| hvterm::get(u, c));
    if was_on {
        trap::enable_interrupts();
    }
    CpuStats::add(&crate::percpu::this().stats.console_polls, 1);
}

/// The next input byte. When the ring had filled up, the vty may still hold
/// bytes that will raise no interrupt: drain it now.
pub fn pop() -> Option<u8> {
    let b = RING.pop();
    if RING.backlog() {
        poll();
    }
    b
}

/// True when bytes are waiting in the ring.
pub fn waiting() -> bool {
    !RING.is_empty()
}

/// True while a Ctrl-C is unread: long commands stop with `error: interrupted`.
pub fn interrupt_pending() -> bool {
    RING.interrupt_pending()
}
