//! The interrupt controller (XICS through hcalls) and its handler table; it knows
//! nothing about the devices behind the sources.
//!
//! Set-up (boot, interrupts still off): [`init`] makes `H_CPPR(0xff)` accept every
//! priority. A driver's probe then [`attach`]es each source it uses: the source is
//! registered in the handler table ([`kernel::irq`]: a source has one handler,
//! interrupts are counted per source and CPU) and routed to the boot processor
//! with RTAS `ibm,set-xive(source, server, priority)` and enabled with
//! `ibm,int-on`. A driver whose source cannot be attached polls its device.
//!
//! Handlers ([`decrementer`], [`external`], and the drivers' through the table)
//! run with interrupts off on the interrupt stack (`arch::trap`). They quiet their
//! source and record: a flag for the main loop, bytes into the console's lock-free
//! ring, counters. They never allocate, lock, log or print. Facts:
//! docs/interrupts.md.

use alloc::format;
use alloc::string::String;
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use hcall::raw::sc1::Sc1;
use hcall::xics::{self, CPPR_ACCEPT_ALL, IPI_CLEAR, XISR_IPI};
use kernel::cpustats::{CpuStats, DeviceRows};
use kernel::irq::{HandlerTable, Irq};
use kernel::xics::Sources;

use crate::arch::trap;
use crate::{percpu, rtas};

/// The priority the kernel gives its sources (any value below 0xff works).
const PRIORITY: u32 = 5;
/// Sources the table holds.
const SLOTS: usize = 16;

/// What a device's handler tells the controller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum After {
    /// The source is quiet: end the interrupt (H_EOI).
    End,
    /// Do not end it: while it is not ended XICS presents nothing of its
    /// priority, so a storming source stops at once. The main loop turns the
    /// source off and ends it ([`quiet_held`]).
    Hold,
}

/// A device's interrupt handler (interrupt context: see the module doc).
pub type Handler = fn() -> After;

static TABLE: HandlerTable<Handler, SLOTS> = HandlerTable::new();
/// XICS is set up and the routing calls exist.
static READY: AtomicBool = AtomicBool::new(false);
/// The server every source is routed to (the boot processor).
static SERVER: AtomicU32 = AtomicU32::new(0);
/// The XIRR of a held interrupt (0: none).
static HELD_XIRR: AtomicU32 = AtomicU32::new(0);

/// Takes this CPU's recorded events (a decrementer or external interrupt only
/// wakes the main loop, which then looks at its timers, input and drivers).
pub fn take_events() {
    let me = percpu::this();
    me.dec_fired.store(false, Ordering::Release);
    me.external_seen.store(false, Ordering::Release);
}

/// True when an interrupt woke this CPU and its event is not yet taken, or an
/// interrupt is held for the main loop.
pub fn events_pending() -> bool {
    let me = percpu::this();
    me.dec_fired.load(Ordering::Acquire)
        || me.external_seen.load(Ordering::Acquire)
        || HELD_XIRR.load(Ordering::Acquire) != 0
}

/// Sets XICS up to present every priority to the boot processor `server`.
/// Returns why not (every driver then polls). Call before interrupts are enabled
/// and before any driver attaches.
pub fn init(sources: &Sources, server: u32) -> Result<(), String> {
    if !sources.xics {
        return Err("no XICS interrupt controller in the device tree".into());
    }
    rtas::tokens().routing()?;
    xics::set_cppr(&mut Sc1::new(), CPPR_ACCEPT_ALL).map_err(|e| format!("H_CPPR: {e}"))?;
    SERVER.store(server, Ordering::Release);
    READY.store(true, Ordering::Release);
    log::info!("interrupts: XICS, sources routed to server {server}");
    Ok(())
}

/// Opens this (secondary) CPU's XICS presentation to every priority, so IPIs
/// reach it. Device sources stay routed to the boot CPU.
pub fn init_secondary() -> Result<(), hcall::HcallError> {
    xics::set_cppr(&mut Sc1::new(), CPPR_ACCEPT_ALL)
}

/// Registers `handler` for `source` (its interrupts counted under `label`, the
/// `cpu` reply's `interrupts_external_<label>`) and routes the source to the boot
/// processor. Call from a driver's probe, interrupts off.
pub fn attach(source: u32, label: &'static str, handler: Handler) -> Result<Irq, String> {
    if !READY.load(Ordering::Acquire) {
        return Err("no interrupt controller set up".into());
    }
    let (set_xive, int_on) = rtas::tokens().routing()?;
    let irq = TABLE
        .register(source, label, handler)
        .map_err(|e| format!("{e}"))?;
    let server = SERVER.load(Ordering::Acquire);
    let mut rets = [0u32; 1];
    let routed = rtas::call_status(set_xive, &[source, server, PRIORITY], &mut rets)
        .and_then(|()| rtas::call_status(int_on, &[source], &mut rets));
    if let Err(e) = routed {
        TABLE.turn_off(irq);
        return Err(format!(
            "routing source {source:#x} through RTAS failed: {e}"
        ));
    }
    Ok(irq)
}

/// True while `irq`'s interrupts reach its handler.
pub fn is_live(irq: Irq) -> bool {
    TABLE.is_live(irq)
}

/// The device rows of the `cpu` reply for CPU `cpu` (one per label of
/// `labels`, then any other registered) and its interrupts from sources
/// without a handler.
pub fn counts(labels: &[&'static str], cpu: usize) -> (DeviceRows, u64) {
    (TABLE.rows(labels, cpu), TABLE.unknown(cpu))
}

/// From the main loop, when `irq`'s interrupt is held ([`After::Hold`]): turns its
/// source off (RTAS `ibm,int-off`; its interrupts no longer reach the handler),
/// ends the interrupt and returns the source, or the source and why it could not
/// be turned off (with the RTAS status). `None` when nothing of `irq`'s is held.
pub fn quiet_held(irq: Irq) -> Option<Result<u32, (u32, String)>> {
    let source = TABLE.source(irq);
    let held = HELD_XIRR.load(Ordering::Acquire);
    if held == 0 || xics::Xirr(held).source() != source {
        return None;
    }
    let was_on = trap::disable_interrupts();
    TABLE.turn_off(irq);
    let off = match rtas::tokens().int_off {
        None => Err(String::from("no RTAS ibm,int-off")),
        Some(token) => {
            let mut rets = [0u32; 1];
            rtas::call_status(token, &[source], &mut rets).map_err(|e| format!("ibm,int-off: {e}"))
        }
    };
    let xirr = HELD_XIRR.swap(0, Ordering::AcqRel);
    if xics::end_of_interrupt(&mut Sc1::new(), xics::Xirr(xirr)).is_err() {
        CpuStats::add(&percpu::this().stats.external_errors, 1);
    }
    if was_on {
        trap::enable_interrupts();
    }
    Some(off.map(|()| source).map_err(|e| (source, e)))
}

/// From the main loop: turns `irq`'s source on again after [`quiet_held`]
/// turned it off (RTAS `ibm,int-on`, which keeps the routing `ibm,int-off`
/// saved); its interrupts reach its handler again. Returns the source, or the
/// source and why not (with the RTAS status); the source then stays off.
pub fn turn_on(irq: Irq) -> Result<u32, (u32, String)> {
    let source = TABLE.source(irq);
    let (_, int_on) = rtas::tokens()
        .routing()
        .map_err(|e| (source, String::from(e)))?;
    TABLE.turn_on(irq).map_err(|e| (source, format!("{e}")))?;
    let mut rets = [0u32; 1];
    rtas::call_status(int_on, &[source], &mut rets).map_err(|e| {
        TABLE.turn_off(irq);
        (source, format!("ibm,int-on: {e}"))
    })?;
    Ok(source)
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

/// The 0x500 handler: accepts the interrupt (H_XIRR), hands it to its source's
/// handler, and ends it (H_EOI) unless the handler holds it.
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
    } else if let Some((_, handler)) = TABLE.dispatch(src, percpu::current()) {
        if handler() == After::Hold {
            HELD_XIRR.store(x.0, Ordering::Release);
            me.external_seen.store(true, Ordering::Release);
            return;
        }
    }
    if xics::end_of_interrupt(&mut raw, x).is_err() {
        CpuStats::add(&stats.external_errors, 1);
    }
    me.external_seen.store(true, Ordering::Release);
}
