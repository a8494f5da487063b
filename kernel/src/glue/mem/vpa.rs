//! The Virtual Processor Areas: one per CPU, memory the hypervisor reads and
//! writes once it is registered (`H_REGISTER_VPA`), so every access after
//! registration is volatile. The idle path (`glue/idle.rs`) sets the `idle` byte
//! around H_CEDE, the spin lock reads yield counts, and the `phyp` backend reads
//! the CMO fault counters. Facts: docs/interrupts.md.

use core::sync::atomic::{AtomicBool, Ordering};

use hcall::raw::sc1::Sc1;
use hcall::vpa::{self, VPA_IDLE, VPA_SIZE, VPA_YIELD_COUNT};
use hcall::CmoFaultStats;

use crate::percpu::{self, MAX_CPUS};

/// One area: 1 KiB aligned to 1 KiB, so cache-line aligned and inside one page.
#[repr(C, align(1024))]
struct Area([u8; VPA_SIZE]);

/// One VPA per CPU, by CPU index.
static mut VPAS: [Area; MAX_CPUS] = [const { Area([0; VPA_SIZE]) }; MAX_CPUS];
static REGISTERED: [AtomicBool; MAX_CPUS] = [const { AtomicBool::new(false) }; MAX_CPUS];

fn area_ptr(i: usize) -> *mut [u8; VPA_SIZE] {
    let i = i.min(MAX_CPUS - 1);
    // SAFETY: only the address is taken; every access below goes through it
    // with volatile reads/writes, or during the CPU's own single-threaded
    // set-up of its own area.
    unsafe { core::ptr::addr_of_mut!(VPAS[i].0) }
}

/// The areas' first and one-past-last address (they must lie in the RMA).
pub fn area() -> (u64, u64) {
    let start = area_ptr(0) as u64;
    (start, start + (VPA_SIZE * MAX_CPUS) as u64)
}

/// Registers this CPU's VPA (its index's area) for the hardware thread `server`.
pub fn register(server: u32) -> Result<(), alloc::string::String> {
    let i = percpu::current();
    let p = area_ptr(i);
    let addr = p as u64;
    if !vpa::placement_ok(addr) {
        return Err("the VPA is misplaced".into());
    }
    // SAFETY: each CPU sets up only its own area, once, before the hypervisor
    // knows it; nothing else writes it.
    vpa::init_area(unsafe { &mut *p });
    // SAFETY: the area is the kernel's (a static in the image, so in the RMA),
    // placed as `placement_ok` checked and filled by `init_area` above; it stays
    // registered for the kernel's life, is never reused for anything else, and
    // after this is touched only with volatile accesses.
    unsafe { vpa::register(&mut Sc1::new(), server, addr) }.map_err(|e| alloc::format!("{e}"))?;
    REGISTERED[i].store(true, Ordering::Release);
    Ok(())
}

/// True once CPU `i`'s VPA is registered.
pub fn registered_on(i: usize) -> bool {
    i < MAX_CPUS && REGISTERED[i].load(Ordering::Acquire)
}

/// CPU `i`'s yield count (the hypervisor increments it at every dispatch and
/// preemption: odd = not running), `None` before its VPA is registered.
pub fn yield_count(i: usize) -> Option<u32> {
    if !registered_on(i) {
        return None;
    }
    let mut b = [0u8; 4];
    for (k, x) in b.iter_mut().enumerate() {
        // SAFETY: bytes inside CPU `i`'s registered area, which the hypervisor
        // updates: volatile.
        *x = unsafe { core::ptr::read_volatile(area_ptr(i).cast::<u8>().add(VPA_YIELD_COUNT + k)) };
    }
    Some(u32::from_be_bytes(b))
}

/// Sets or clears this CPU's `idle` byte (around H_CEDE).
pub fn set_idle(on: bool) {
    let i = percpu::current();
    if registered_on(i) {
        // SAFETY: a byte inside this CPU's registered area; the hypervisor reads it.
        unsafe { core::ptr::write_volatile(area_ptr(i).cast::<u8>().add(VPA_IDLE), u8::from(on)) };
    }
}

/// The CMO fault counters the hypervisor keeps in the VPAs, summed over every
/// registered CPU (`None` before any registration), as Linux's lparcfg sums them.
pub fn cmo_faults() -> Option<CmoFaultStats> {
    let mut total: Option<CmoFaultStats> = None;
    for i in (0..MAX_CPUS).filter(|&i| registered_on(i)) {
        let mut copy = [0u8; VPA_SIZE];
        for (k, b) in copy.iter_mut().enumerate() {
            // SAFETY: bytes inside a registered area, which the hypervisor may
            // update: volatile.
            *b = unsafe { core::ptr::read_volatile(area_ptr(i).cast::<u8>().add(k)) };
        }
        let f = vpa::cmo_faults(&copy);
        let t = total.get_or_insert_with(CmoFaultStats::default);
        t.faults = t.faults.saturating_add(f.faults);
        t.fault_time_usec = t.fault_time_usec.saturating_add(f.fault_time_usec);
    }
    total
}
