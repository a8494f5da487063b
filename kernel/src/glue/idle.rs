//! Idle: the Virtual Processor Area and H_CEDE.
//!
//! At boot the kernel registers a VPA for its processor (`H_REGISTER_VPA`). When
//! no work is pending the main loop programs the decrementer for the next
//! deadline and cedes: it sets the VPA's `idle` byte, calls `H_CEDE` with external
//! interrupts off (the hypervisor enables them itself and returns once one is
//! pending, so an interrupt that arrived just before cannot be slept through),
//! and clears `idle`. The interrupt is then taken right after the call returns.
//! On a real LPAR the hypervisor keeps the CMO fault counters in the VPA; the
//! `phyp` backend reads them from here. Facts: docs/interrupts.md.

use core::sync::atomic::{AtomicBool, Ordering};

use hcall::raw::sc1::Sc1;
use hcall::vpa::{self, VPA_IDLE, VPA_SIZE};
use hcall::CmoFaultStats;
use kernel::cpustats::CpuStats;

use crate::arch::cpu;
use crate::irq::STATS;

/// The area: 1 KiB aligned to 1 KiB, so cache-line aligned and inside one page.
#[repr(C, align(1024))]
struct Area([u8; VPA_SIZE]);

static mut VPA: Area = Area([0; VPA_SIZE]);
static REGISTERED: AtomicBool = AtomicBool::new(false);

fn area_ptr() -> *mut [u8; VPA_SIZE] {
    // SAFETY: only the address is taken; every access below goes through it
    // with volatile reads/writes or during the single-threaded set-up.
    unsafe { core::ptr::addr_of_mut!(VPA.0) }
}

/// The area's first and one-past-last address (it must lie in the RMA).
pub fn area() -> (u64, u64) {
    let start = area_ptr() as u64;
    (start, start + VPA_SIZE as u64)
}

/// Registers the VPA for the processor with hardware id `cpu`.
pub fn register(cpu: u32) -> Result<(), &'static str> {
    let p = area_ptr();
    let addr = p as u64;
    if !vpa::placement_ok(addr) {
        return Err("the VPA is misplaced");
    }
    // SAFETY: set-up runs once, before anything else uses the area, on the one
    // processor; the hypervisor does not know the area yet.
    vpa::init_area(unsafe { &mut *p });
    // SAFETY: the area is the kernel's (a static in the image, so in the RMA),
    // stays registered for the kernel's life and is never reused for anything else.
    let mut raw = unsafe { Sc1::new() };
    vpa::register(&mut raw, cpu, addr).map_err(|_| "H_REGISTER_VPA failed")?;
    REGISTERED.store(true, Ordering::Release);
    Ok(())
}

/// True once the VPA is registered.
pub fn registered() -> bool {
    REGISTERED.load(Ordering::Acquire)
}

fn set_idle(on: bool) {
    if registered() {
        // SAFETY: a byte inside our registered area; the hypervisor reads it.
        unsafe { core::ptr::write_volatile(area_ptr().cast::<u8>().add(VPA_IDLE), u8::from(on)) };
    }
}

/// Cedes the processor until an interrupt is pending. Call with external
/// interrupts off after checking that no work is pending; returns with them on.
pub fn cede() {
    set_idle(true);
    let t0 = cpu::timebase();
    // SAFETY: H_CEDE takes no addresses.
    let mut raw = unsafe { Sc1::new() };
    let r = vpa::cede(&mut raw);
    let spent = cpu::timebase().wrapping_sub(t0);
    set_idle(false);
    CpuStats::add(&STATS.cedes, 1);
    CpuStats::add(&STATS.ceded_ticks, spent);
    if r.is_err() {
        // Should H_CEDE refuse, interrupts must still come on.
        crate::arch::trap::enable_interrupts();
    }
}

/// The CMO fault counters the hypervisor keeps in the VPA (`None` before
/// registration).
pub fn cmo_faults() -> Option<CmoFaultStats> {
    if !registered() {
        return None;
    }
    let mut copy = [0u8; VPA_SIZE];
    for (i, b) in copy.iter_mut().enumerate() {
        // SAFETY: bytes inside our area, which the hypervisor may update: volatile.
        *b = unsafe { core::ptr::read_volatile(area_ptr().cast::<u8>().add(i)) };
    }
    Some(vpa::cmo_faults(&copy))
}
