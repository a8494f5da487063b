//! `cpu`: the total over every CPU, then one block per CPU (server number,
//! state, VPA, interrupts taken by kind, cedes and time ceded), and the console
//! input mode.

use kernel::cpustats::CpuBlock;

use super::out::emit;
use super::CmdResult;
use crate::percpu::{self, CpuState};
use crate::sys::System;
use crate::{arch, clock, idle, irq, println};

/// `cpu`.
pub fn cpu(_: &mut System) -> CmdResult {
    let planned = percpu::planned();
    let all_registered = (0..planned)
        .filter(|&i| percpu::cpu(i).state() == CpuState::Online)
        .all(idle::registered_on);
    println!("vpa_registered: {}", u8::from(all_registered));
    println!(
        "console_input: {}",
        if crate::drivers::vty::by_interrupt() {
            "interrupt"
        } else {
            "poll"
        }
    );
    let now = arch::cpu::timebase();
    let boot_tb = now.wrapping_sub(clock::ticks());
    let labels: alloc::vec::Vec<&'static str> = crate::drivers::irq_labels().collect();
    let blocks: alloc::vec::Vec<CpuBlock> = (0..planned)
        .map(|i| {
            let c = percpu::cpu(i);
            let state = c.state();
            let since = if i == 0 {
                boot_tb
            } else {
                c.online_tb.load(core::sync::atomic::Ordering::Relaxed)
            };
            CpuBlock {
                index: i,
                server: c.server.load(core::sync::atomic::Ordering::Relaxed),
                state: state.name(),
                vpa_registered: idle::registered_on(i),
                ceding: c.ceding.load(core::sync::atomic::Ordering::Relaxed),
                counts: {
                    let (devices, other) = irq::counts(&labels, i);
                    c.stats.counts(devices, other)
                },
                online_ticks: if matches!(state, CpuState::Online) {
                    now.wrapping_sub(since)
                } else {
                    0
                },
            }
        })
        .collect();
    emit(|w| kernel::cpustats::write_blocks(w, &blocks, percpu::present(), clock::hz()))
}
