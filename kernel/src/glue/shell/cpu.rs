//! `cpu`: interrupts taken by kind, cedes and time ceded, the console input mode.

use super::out::emit;
use super::CmdResult;
use crate::sys::System;
use crate::{clock, idle, irq, println};

/// `cpu`.
pub fn cpu(_: &mut System) -> CmdResult {
    println!("vpa_registered: {}", u8::from(idle::registered()));
    println!(
        "console_input: {}",
        if irq::vty_by_interrupt() {
            "interrupt"
        } else {
            "poll"
        }
    );
    let counts = irq::STATS.counts();
    emit(|w| kernel::cpustats::write_rows(w, &counts, clock::hz(), clock::ticks()))
}
