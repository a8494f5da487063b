//! Idle: the Virtual Processor Area and H_CEDE.
//!
//! Every CPU registers its own VPA (`H_REGISTER_VPA` with its own interrupt
//! server number) when it comes up. When
//! no work is pending the main loop programs the decrementer for the next
//! deadline and cedes: it sets the VPA's `idle` byte, calls `H_CEDE` with external
//! interrupts off (the hypervisor enables them itself and returns once one is
//! pending, so an interrupt that arrived just before cannot be slept through),
//! and clears `idle`. The interrupt is then taken right after the call returns.
//! On a real LPAR the hypervisor keeps the CMO fault counters in the VPA; the
//! `phyp` backend reads them from here. The areas themselves, memory the
//! hypervisor shares, are in `mem::vpa`. Facts: docs/interrupts.md.

use core::sync::atomic::Ordering;

use hcall::raw::sc1::Sc1;
use hcall::vpa;
use kernel::cpustats::CpuStats;

use crate::arch::cpu;
use crate::mem::vpa::set_idle;
use crate::percpu;

pub use crate::mem::vpa::{area, cmo_faults, register, registered_on, yield_count};

/// Cedes the processor until an interrupt is pending. Call with external
/// interrupts off after checking that no work is pending; returns with them on.
pub fn cede() {
    let me = percpu::this();
    set_idle(true);
    me.ceding.store(true, Ordering::Relaxed);
    let t0 = cpu::timebase();
    let r = vpa::cede(&mut Sc1::new());
    let spent = cpu::timebase().wrapping_sub(t0);
    me.ceding.store(false, Ordering::Relaxed);
    set_idle(false);
    let stats = &me.stats;
    CpuStats::add(&stats.cedes, 1);
    CpuStats::add(&stats.ceded_ticks, spent);
    if r.is_err() {
        // Should H_CEDE refuse, interrupts must still come on.
        crate::arch::trap::enable_interrupts();
    }
}
