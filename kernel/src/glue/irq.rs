//! The interrupt controller (XICS through hcalls) and what the handlers record.
//!
//! Set-up (boot, interrupts still off): `H_CPPR(0xff)` accepts every priority;
//! each source the kernel uses is routed to this processor with RTAS
//! `ibm,set-xive(source, server, priority)` and enabled with `ibm,int-on`; the vty
//! also needs `H_VIO_SIGNAL(unit, 1)`. Source numbers come from the device tree
//! ([`kernel::xics`]). Without a XICS node (or when routing fails) the console
//! falls back to a timed poll.
//!
//! Handlers ([`decrementer`], [`external`]) run with interrupts off on the
//! interrupt stack (`arch::trap`). They quiet their source and record: a flag for
//! the main loop, bytes into the console's lock-free ring, counters. They never
//! allocate, lock, log or print. Facts: docs/interrupts.md.

use alloc::format;
use alloc::string::String;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};

use hcall::raw::sc1::Sc1;
use hcall::xics::{self, CPPR_ACCEPT_ALL, IPI_CLEAR, XISR_IPI};
use kernel::cpustats::CpuStats;
use kernel::virtio_balloon::storm::{StormGuard, STORM_LIMIT, STORM_WINDOW_US};
use kernel::xics::Sources;

use crate::arch::trap;
use crate::{clock, console, percpu, rtas};

/// The priority the kernel gives its sources (any value below 0xff works).
const PRIORITY: u32 = 5;
/// "No source".
const NONE: u32 = u32::MAX;

static CONFIG_CHANGED: AtomicBool = AtomicBool::new(false);
static VTY_SOURCE: AtomicU32 = AtomicU32::new(NONE);
static PCI_SOURCE: AtomicU32 = AtomicU32::new(NONE);
/// Address of the virtio ISR register whose read acknowledges [`PCI_SOURCE`].
static PCI_ISR: AtomicUsize = AtomicUsize::new(0);
/// Counts [`PCI_SOURCE`]'s interrupts; past the limit the source is turned off.
static PCI_STORM: StormGuard = StormGuard::new(STORM_LIMIT, STORM_WINDOW_US);
/// The XIRR of the interrupt that tripped the storm guard, not yet ended: while
/// it is not, XICS presents nothing of its priority, so the storm stops at once;
/// the main loop turns the source off and ends it ([`quiet_storm`]).
static STORM_XIRR: AtomicU32 = AtomicU32::new(0);
/// `ibm,int-off`, to turn a storming source off.
static INT_OFF: AtomicU32 = AtomicU32::new(NONE);

/// The legacy virtio ISR bit for "configuration changed".
const ISR_CONFIG: u8 = 0x2;

/// What happened since the last call that needs more than a wake-up.
#[derive(Clone, Copy, Debug, Default)]
pub struct Events {
    /// The virtio device's configuration changed (a new `num_pages`).
    pub config_changed: bool,
    /// The virtio device's interrupt stormed and waits to be turned off.
    pub storm: bool,
}

/// Takes this CPU's recorded events (a decrementer or console interrupt only
/// wakes the main loop, which then looks at its timers and input). The device
/// events are the boot CPU's: its sources are routed there.
pub fn take_events() -> Events {
    let me = percpu::this();
    me.dec_fired.store(false, Ordering::Release);
    me.external_seen.store(false, Ordering::Release);
    Events {
        config_changed: CONFIG_CHANGED.swap(false, Ordering::AcqRel),
        storm: STORM_XIRR.load(Ordering::Acquire) != 0,
    }
}

/// True when an event is recorded for this CPU and not yet taken.
pub fn events_pending() -> bool {
    let me = percpu::this();
    me.dec_fired.load(Ordering::Acquire)
        || me.external_seen.load(Ordering::Acquire)
        || CONFIG_CHANGED.load(Ordering::Acquire)
        || STORM_XIRR.load(Ordering::Acquire) != 0
}

/// From the main loop, after [`Events::storm`]: turns the storming source off
/// (RTAS `ibm,int-off`), ends its interrupt and stops routing it; returns the
/// source, or why it could not be turned off. `num_pages` is polled from then on.
pub fn quiet_storm() -> Result<u32, (u32, &'static str)> {
    let was_on = trap::disable_interrupts();
    let source = PCI_SOURCE.swap(NONE, Ordering::AcqRel);
    let token = INT_OFF.load(Ordering::Acquire);
    let off = if token == NONE {
        Err("no RTAS ibm,int-off")
    } else {
        let mut rets = [0u32; 1];
        rtas::call_status(token, &[source], &mut rets).map_err(|_| "ibm,int-off failed")
    };
    let xirr = STORM_XIRR.swap(0, Ordering::AcqRel);
    if xics::end_of_interrupt(&mut Sc1::new(), xics::Xirr(xirr)).is_err() {
        CpuStats::add(&percpu::this().stats.external_errors, 1);
    }
    if was_on {
        trap::enable_interrupts();
    }
    off.map(|()| source).map_err(|e| (source, e))
}

/// True when the vty raises interrupts (no timed poll needed).
pub fn vty_by_interrupt() -> bool {
    VTY_SOURCE.load(Ordering::Acquire) != NONE
}

/// The 0x900 handler: reloads the decrementer with its largest value (on POWER
/// a negative decrementer keeps interrupting) and records the event; the main
/// loop re-programs it for the next deadline.
pub fn decrementer() {
    trap::set_decrementer(kernel::timer::DEC_MAX);
    let me = percpu::this();
    CpuStats::add(&me.stats.decrementer, 1);
    me.dec_fired.store(true, Ordering::Release);
}

/// The 0x500 handler: accepts the interrupt (H_XIRR), quiets its source, records
/// it and ends it (H_EOI).
pub fn external() {
    let me = percpu::this();
    let stats = &me.stats;
    let mut raw = Sc1::new();
    let x = match xics::accept(&mut raw) {
        Ok(x) => x,
        Err(_) => {
            CpuStats::add(&stats.external_errors, 1);
            return;
        }
    };
    if x.is_none() {
        CpuStats::add(&stats.external_spurious, 1);
        return;
    }
    let src = x.source();
    if src == XISR_IPI {
        // Clear this CPU's IPI before looking at why it was sent, so an IPI
        // sent after the look raises the interrupt again.
        if xics::ipi(&mut raw, me.server.load(Ordering::Relaxed), IPI_CLEAR).is_err() {
            CpuStats::add(&stats.external_errors, 1);
        }
        CpuStats::add(&stats.external_ipi, 1);
        crate::smp::on_ipi();
    } else if src == VTY_SOURCE.load(Ordering::Acquire) {
        // The vty signals only into an empty buffer: drain it completely.
        console::input::drain_from_interrupt();
        CpuStats::add(&stats.external_vty, 1);
    } else if src == PCI_SOURCE.load(Ordering::Acquire) {
        CpuStats::add(&stats.external_pci, 1);
        if PCI_STORM.note(clock::now_us()) {
            // Not ended: nothing of this priority comes until the main loop has
            // turned the source off.
            STORM_XIRR.store(x.0, Ordering::Release);
            me.external_seen.store(true, Ordering::Release);
            return;
        }
        if PCI_ISR.load(Ordering::Acquire) != 0 {
            let bits = crate::drivers::virtio_pci_legacy::acknowledge_interrupt();
            if bits & ISR_CONFIG != 0 {
                CONFIG_CHANGED.store(true, Ordering::Release);
            }
        }
    } else {
        CpuStats::add(&stats.external_other, 1);
    }
    if xics::end_of_interrupt(&mut raw, x).is_err() {
        CpuStats::add(&stats.external_errors, 1);
    }
    me.external_seen.store(true, Ordering::Release);
}

/// The RTAS tokens and server number routing needs.
#[derive(Clone, Copy, Debug)]
pub struct Routing {
    /// `ibm,set-xive`.
    pub set_xive: u32,
    /// `ibm,int-on`.
    pub int_on: u32,
    /// `ibm,int-off` (to turn a storming source off), if RTAS has it.
    pub int_off: Option<u32>,
    /// This processor's interrupt server number.
    pub server: u32,
}

fn route(r: &Routing, source: u32) -> Result<(), rtas::RtasError> {
    let mut rets = [0u32; 1];
    rtas::call_status(r.set_xive, &[source, r.server, PRIORITY], &mut rets)?;
    rtas::call_status(r.int_on, &[source], &mut rets)
}

/// Sets up XICS for the console: accepts all priorities, routes the vty's
/// source and enables its signalling. Returns why not, when the console stays
/// polled. Call before interrupts are enabled.
pub fn init(sources: &Sources, routing: Option<Routing>, vty_unit: u32) -> Result<(), String> {
    if !sources.xics {
        return Err("no XICS interrupt controller in the device tree".into());
    }
    let r = routing.ok_or("no RTAS ibm,set-xive / ibm,int-on")?;
    let mut raw = Sc1::new();
    xics::set_cppr(&mut raw, CPPR_ACCEPT_ALL).map_err(|e| format!("{e}"))?;
    let vty = sources
        .vio_source(vty_unit)
        .ok_or("the vty has no interrupts property")?;
    route(&r, vty.number)
        .map_err(|e| format!("routing the vty's source through RTAS failed: {e}"))?;
    // PAPR asks for H_VIO_SIGNAL; QEMU 7.2's vty refuses it (H_PARAMETER: the
    // vty class has no signal mask) and signals input regardless.
    if let Err(e) = xics::vio_signal(&mut raw, vty_unit, true) {
        log::info!("vty signalling: {e} (the device signals without it)");
    }
    VTY_SOURCE.store(vty.number, Ordering::Release);
    log::info!(
        "interrupts: XICS, vty source {:#x} on server {}",
        vty.number,
        r.server
    );
    Ok(())
}

/// Opens this (secondary) CPU's XICS presentation to every priority, so IPIs
/// reach it. Its device sources stay routed to the boot CPU.
pub fn init_secondary() -> Result<(), hcall::HcallError> {
    xics::set_cppr(&mut Sc1::new(), CPPR_ACCEPT_ALL)
}

/// Routes a PCI function's INTx: `isr` is the address of the register whose read
/// acknowledges it (the legacy virtio ISR). Call with interrupts off or before
/// they are enabled.
pub fn route_pci(routing: Option<Routing>, source: u32, isr: usize) -> Result<(), String> {
    let r = routing.ok_or("no RTAS ibm,set-xive / ibm,int-on")?;
    PCI_ISR.store(isr, Ordering::Release);
    PCI_SOURCE.store(source, Ordering::Release);
    INT_OFF.store(r.int_off.unwrap_or(NONE), Ordering::Release);
    route(&r, source).map_err(|e| format!("routing the PCI source through RTAS failed: {e}"))
}
