//! Starting the other CPUs and stopping them all (`docs/smp.md`).
//!
//! The boot CPU starts every planned thread ([`kernel::smp::plan`]) through
//! RTAS: `query-cpu-stopped-state` must say "stopped", then `start-cpu(server,
//! secondary_start, index)`. The new CPU enters `secondary_start`
//! (`arch::entry`) in real mode with its index in r3, takes its own stack and
//! calls [`secondary_entry`], which sets up its per-CPU registers, loads its SLB
//! and turns translation on as the boot CPU has it, registers its own VPA,
//! opens its XICS presentation (H_CPPR) and says it is online. A CPU that is
//! not stopped, that RTAS refuses, or that does not say so within a second is
//! reported and left out; the kernel goes on with the others.
//!
//! Secondary CPUs then run [`secondary_loop`], which carries out
//! `kernel::smp::secondary_step` (host-tested): park when the machine stops,
//! take the work handed to them, take an interrupt's event, else cede (H_CEDE)
//! until an interrupt: an IPI (H_IPI) or their decrementer.
//!
//! Stopping: [`stop_others`] (power-off, os-term, a panic or a fatal exception
//! on any CPU) lets exactly one CPU go on to the exit; it sends every other
//! online CPU an IPI, whose handler parks it with interrupts off; a CPU that
//! loses the race to stop parks itself, so there is one report.

use alloc::string::String;
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};

use hcall::raw::sc1::Sc1;
use hcall::xics::{self, IPI_PRIORITY};
use kernel::cpustats::CpuStats;
use kernel::smp::{Plan, SecondaryStep};

use crate::arch::{cpu, trap};
use crate::percpu::{self, CpuState, CpuWake, MAX_CPUS};
use crate::{clock, idle, irq, rtas};

extern "C" {
    static secondary_start: u8;
}

/// RTAS tokens for starting CPUs.
#[derive(Clone, Copy, Debug)]
pub struct StartTokens {
    /// `query-cpu-stopped-state`.
    pub query: u32,
    /// `start-cpu`.
    pub start: u32,
}

/// How long a started CPU has to say it is awake.
const START_TIMEOUT_US: u64 = 1_000_000;

/// Starts every CPU of `plan` but the boot one (index 0). Logs each CPU that
/// comes up and each that is left out, with why.
pub fn start_all(plan: &Plan, tokens: Result<StartTokens, &'static str>) {
    percpu::set_counts(plan.servers.len(), plan.present);
    for (server, why) in &plan.left_out {
        log::info!("CPU server {server} not started: {why}");
    }
    if plan.servers.len() < 2 {
        return;
    }
    let t = match tokens {
        Ok(t) => t,
        Err(missing) => {
            for i in 1..plan.servers.len() {
                percpu::cpu(i).set_state(CpuState::Failed);
            }
            log::warn!("{missing}: running on the boot CPU only");
            return;
        }
    };
    for (i, &server) in plan.servers.iter().enumerate().skip(1) {
        match start_one(i, server, t) {
            Ok(us) => log::info!("CPU {i} (server {server}) online after {us} us"),
            Err(e) => {
                percpu::cpu(i).set_state(CpuState::Failed);
                log::warn!("CPU {i} (server {server}) left out: {e}");
            }
        }
        // What the CPU could not do for itself, with the hypervisor's status
        // (it does not log: the boot CPU tells it, one CPU at a time).
        for (cpu, note) in START_NOTES.lock().drain(..) {
            log::warn!("CPU {cpu}: {note}");
        }
    }
    log::info!(
        "{} of {} CPU(s) online",
        percpu::online(),
        percpu::present()
    );
}

fn start_one(i: usize, server: u32, t: StartTokens) -> Result<u64, String> {
    let mut rets = [0u32; 2];
    rtas::call_status(t.query, &[server], &mut rets)
        .map_err(|e| alloc::format!("query-cpu-stopped-state: {e}"))?;
    if rets[1] != 0 {
        return Err(alloc::format!(
            "not stopped (query-cpu-stopped-state says {})",
            rets[1]
        ));
    }
    let entry = core::ptr::addr_of!(secondary_start) as u64;
    let entry = u32::try_from(entry).map_err(|_| "the entry lies above 4 GiB")?;
    let c = percpu::cpu(i);
    c.server.store(server, Ordering::Relaxed);
    c.set_state(CpuState::Starting);
    let index = u32::try_from(i).unwrap_or(u32::MAX);
    let t0 = clock::now_us();
    let mut r = [0u32; 1];
    // SAFETY: `t.start` is the tree's `start-cpu` token (looked up by name at
    // boot); the entry is `secondary_start`, the image's own code for a CPU
    // that starts with nothing but its index in r3, which finds its stack and
    // per-CPU block from that index; the other arguments are values.
    let started =
        unsafe { rtas::call_with_addresses_status(t.start, &[server, entry, index], &mut r) };
    if let Err(e) = started {
        return Err(alloc::format!("start-cpu: {e}"));
    }
    while c.state() == CpuState::Starting {
        if clock::now_us().saturating_sub(t0) > START_TIMEOUT_US {
            // Too late: should it still come up, it sees Failed and parks.
            if c.transition(CpuState::Starting, CpuState::Failed) {
                return Err(alloc::format!(
                    "did not come up within {} ms",
                    START_TIMEOUT_US / 1000
                ));
            }
        }
        core::hint::spin_loop();
    }
    match c.state() {
        CpuState::Online => Ok(clock::now_us().saturating_sub(t0)),
        s => Err(alloc::format!("came up {}", s.name())),
    }
}

/// What a starting CPU could not do (each with the status it got), for the
/// boot CPU to log once the CPU is online or left out.
static START_NOTES: spin::Mutex<alloc::vec::Vec<(usize, String)>> =
    spin::Mutex::new(alloc::vec::Vec::new());

/// Called by `secondary_start` (`arch::entry`) on the new CPU's own kernel
/// stack, in real mode, interrupts off.
#[no_mangle]
pub extern "C" fn secondary_entry(index: u64) -> ! {
    let i = usize::try_from(index).unwrap_or(usize::MAX);
    if i == 0 || i >= MAX_CPUS {
        park();
    }
    let c = percpu::cpu(i);
    let server = c.server.load(Ordering::Relaxed);
    percpu::enter(i, server);
    if let Err(e) = crate::glue::mmu::start_secondary() {
        START_NOTES
            .lock()
            .push((i, alloc::format!("translation: {e}")));
        c.transition(CpuState::Starting, CpuState::Failed);
        park();
    }
    if c.state() != CpuState::Starting {
        // The boot CPU gave up on this one: it is left out.
        park();
    }
    trap::set_decrementer(kernel::timer::DEC_MAX);
    // Without a VPA it still runs; `cpu` shows vpa_registered: 0.
    if let Err(e) = idle::register(server) {
        START_NOTES
            .lock()
            .push((i, alloc::format!("{e}: idle without a VPA")));
    }
    if let Err(e) = irq::init_secondary() {
        START_NOTES
            .lock()
            .push((i, alloc::format!("H_CPPR: {e}: IPIs may not reach it")));
    }
    c.online_tb.store(cpu::timebase(), Ordering::Relaxed);
    if !c.transition(CpuState::Starting, CpuState::Online) {
        park();
    }
    secondary_loop()
}

/// Work handed to a CPU: `run(arg, cpu_index)`, then `done`.
pub struct Work {
    run: fn(*const (), usize),
    arg: *const (),
    done: AtomicBool,
}

impl Work {
    /// Work that calls `run(arg, index)` on the CPU it is handed to. Whoever
    /// hands it over keeps `arg` alive until [`Work::wait`] returns.
    const fn new(run: fn(*const (), usize), arg: *const ()) -> Work {
        Work {
            run,
            arg,
            done: AtomicBool::new(false),
        }
    }

    /// A job with no argument, for a `static` handed out with
    /// [`hand_if_ceding`]: `run(null, index)`.
    pub const fn job(run: fn(*const (), usize)) -> Work {
        Work::new(run, core::ptr::null())
    }

    /// Makes it ready to be handed out again (after it was done).
    pub fn reset(&self) {
        self.done.store(false, Ordering::Release);
    }

    /// Waits (spinning, interrupts as they are) until the CPU has run it.
    pub fn wait(&self) {
        while !self.done.load(Ordering::Acquire) {
            core::hint::spin_loop();
        }
    }
}

// SAFETY: a `Work` is shared between the CPU that hands it out and the one that
// runs it; `done` is an atomic, `run` a plain function, and `arg` is only
// dereferenced by `run`, under the contract of [`Work::new`].
unsafe impl Sync for Work {}

/// A borrowed job and what each CPU runs on it ([`scoped`]).
struct Scoped<'a, T> {
    job: &'a T,
    run: fn(&T, usize),
}

/// What a CPU runs for [`scoped`]: `arg` is the `Scoped<T>` on the stack of
/// the CPU that called it.
fn run_scoped<T>(arg: *const (), me: usize) {
    // SAFETY: `scoped` handed over a `Scoped<T>` it keeps alive (and does not
    // move) until every CPU it handed it to is done; `T: Sync` makes the shared
    // borrow usable from this CPU.
    let s = unsafe { &*arg.cast::<Scoped<'_, T>>() };
    (s.run)(s.job, me)
}

/// Runs `run(job, index)` on each online CPU of `cpus` (not this one) while
/// `here` runs on this CPU, and returns `here`'s result once every one of them
/// has returned from `run`: the borrowed job cannot end before they are done
/// with it.
pub fn scoped<T: Sync, R>(
    cpus: &[usize],
    job: &T,
    run: fn(&T, usize),
    here: impl FnOnce() -> R,
) -> R {
    let s = Scoped { job, run };
    let arg = core::ptr::from_ref(&s).cast::<()>();
    let works: alloc::vec::Vec<Work> = cpus
        .iter()
        .map(|_| Work::new(run_scoped::<T>, arg))
        .collect();
    for (&i, w) in cpus.iter().zip(&works) {
        hand_work(i, w);
    }
    let r = here();
    for w in &works {
        w.wait();
    }
    r
}

/// Set to let the CPUs `busy` holds go back to idle.
static BUSY_RELEASE: AtomicBool = AtomicBool::new(false);
/// The spin work `busy` hands out, by CPU index.
static BUSY: [Work; MAX_CPUS] =
    [const { Work::new(spin_until_released, core::ptr::null()) }; MAX_CPUS];
/// Which CPUs `busy` holds.
static BUSY_HELD: [AtomicBool; MAX_CPUS] = [const { AtomicBool::new(false) }; MAX_CPUS];

/// How long a `busy` spin lasts, in ms (0: until released).
static BUSY_MS: AtomicU64 = AtomicU64::new(0);

/// Spins, interrupts on, until `busy` releases it or, when `busy` gave a time,
/// until this CPU's own timer for it expires (its own decrementer wakes it).
fn spin_until_released(_: *const (), _: usize) {
    let ms = BUSY_MS.load(Ordering::Acquire);
    if ms > 0 {
        let deadline = kernel::timer::after_ms(cpu::timebase(), ms, clock::hz());
        percpu::arm_timer(CpuWake::BusyEnd, deadline);
    }
    let me = percpu::this();
    while !BUSY_RELEASE.load(Ordering::Acquire) {
        if ms > 0
            && me.dec_fired.swap(false, Ordering::AcqRel)
            && percpu::expire_timers().contains(&CpuWake::BusyEnd)
        {
            break;
        }
        core::hint::spin_loop();
    }
    percpu::cancel_timer(CpuWake::BusyEnd);
}

/// `busy <n> [ms]`: hands the first `n` secondary CPUs a loop that spins, with
/// interrupts on, until `busy 0` (or, with `ms`, until each CPU's own timer
/// ends it, or the machine stops); returns how many were made busy. Shows
/// H_PROD/IPI hand-over and per-CPU timers, and lets a test stop busy CPUs.
pub fn busy(n: usize, ms: Option<u64>) -> Result<usize, String> {
    let secondaries: alloc::vec::Vec<usize> = (1..percpu::planned())
        .filter(|&i| percpu::cpu(i).state() == CpuState::Online)
        .collect();
    if n > secondaries.len() {
        return Err(alloc::format!(
            "only {} other CPU(s) online",
            secondaries.len()
        ));
    }
    BUSY_RELEASE.store(true, Ordering::Release);
    for i in 0..MAX_CPUS {
        if BUSY_HELD[i].swap(false, Ordering::AcqRel) {
            BUSY[i].wait();
            BUSY[i].reset();
        }
    }
    BUSY_RELEASE.store(false, Ordering::Release);
    BUSY_MS.store(ms.unwrap_or(0), Ordering::Release);
    for &i in secondaries.iter().take(n) {
        BUSY_HELD[i].store(true, Ordering::Release);
        hand_work(i, &BUSY[i]);
    }
    Ok(n)
}

/// Each CPU's mailbox: the work handed to it, not yet taken.
static MAILBOX: [AtomicPtr<Work>; MAX_CPUS] =
    [const { AtomicPtr::new(core::ptr::null_mut()) }; MAX_CPUS];

/// Hands `w` to online CPU `i` and wakes it: H_PROD when it is ceded (counted
/// in this CPU's `prods`), and an IPI in any case (an IPI that arrives before
/// its H_CEDE makes the H_CEDE return at once, so the work is never slept
/// through). `w` must stay alive until [`Work::wait`] returned.
fn hand_work(i: usize, w: &Work) {
    MAILBOX[i.min(MAX_CPUS - 1)].store(core::ptr::from_ref(w).cast_mut(), Ordering::Release);
    core::sync::atomic::fence(Ordering::SeqCst);
    let c = percpu::cpu(i);
    if c.ceding.load(Ordering::Acquire) {
        let server = c.server.load(Ordering::Relaxed);
        if hcall::vpa::prod(&mut Sc1::new(), server).is_ok() {
            CpuStats::add(&percpu::this().stats.prods, 1);
        }
    }
    let _ = send_ipi(i);
}

/// Hands `w` to CPU `i` only if it is online, ceded (so running no other
/// work) and its mailbox is empty, and wakes it; false otherwise (nothing
/// handed). For work that may be done here instead (the balloon's notifies,
/// `glue::drivers::virtio_pci_legacy`): `busy` and `stress` keep their CPUs.
pub fn hand_if_ceding(i: usize, w: &'static Work) -> bool {
    if i == 0 || i >= percpu::planned().min(MAX_CPUS) {
        return false;
    }
    let c = percpu::cpu(i);
    if c.state() != CpuState::Online || !c.ceding.load(Ordering::Acquire) {
        return false;
    }
    w.reset();
    let ptr = core::ptr::from_ref(w).cast_mut();
    if MAILBOX[i]
        .compare_exchange(
            core::ptr::null_mut(),
            ptr,
            Ordering::AcqRel,
            Ordering::Acquire,
        )
        .is_err()
    {
        return false;
    }
    hand_work(i, w);
    true
}

/// A secondary CPU's life: run the work handed to it, else cede until an
/// interrupt, and look again.
fn secondary_loop() -> ! {
    let me = percpu::current();
    loop {
        trap::disable_interrupts();
        let step = kernel::smp::secondary_step(
            STOPPING.load(Ordering::Acquire),
            !MAILBOX[me].load(Ordering::Acquire).is_null(),
            irq::events_pending(),
        );
        match step {
            SecondaryStep::Park => park_stopped(),
            SecondaryStep::Run => {
                let w = MAILBOX[me].swap(core::ptr::null_mut(), Ordering::AcqRel);
                trap::enable_interrupts();
                if w.is_null() {
                    continue;
                }
                // SAFETY: `hand_work` stored a live `Work`, kept alive by its
                // owner until `done` is set below.
                let w = unsafe { &*w };
                (w.run)(w.arg, me);
                w.done.store(true, Ordering::Release);
            }
            SecondaryStep::TakeEvents => {
                irq::take_events();
                // Its own timers: what is due (nothing waits on one outside
                // `busy` yet), and the decrementer for the next.
                percpu::expire_timers();
                trap::enable_interrupts();
            }
            SecondaryStep::Cede => idle::cede(),
        }
    }
}

/// Set once a CPU has begun stopping the machine.
static STOPPING: AtomicBool = AtomicBool::new(false);
/// The CPU that stops the machine.
static STOPPER: AtomicUsize = AtomicUsize::new(usize::MAX);

/// True once a CPU has begun stopping the machine: work that runs with
/// interrupts off (and so takes no IPI) looks at this and calls [`park_now`].
pub fn stopping() -> bool {
    STOPPING.load(Ordering::Acquire)
}

/// Parks this CPU for good (state `stopped`): the machine is stopping.
pub fn park_now() -> ! {
    park_stopped()
}

/// From the external-interrupt handler, after an IPI was accepted and cleared.
pub fn on_ipi() {
    if STOPPING.load(Ordering::Acquire) && STOPPER.load(Ordering::Acquire) != percpu::current() {
        park_stopped();
    }
}

fn park_stopped() -> ! {
    percpu::this().set_state(CpuState::Stopped);
    park()
}

/// Stays here for good, interrupts off.
fn park() -> ! {
    trap::disable_interrupts();
    loop {
        core::hint::spin_loop();
    }
}

/// Sends CPU `i` an inter-processor interrupt.
pub fn send_ipi(i: usize) -> bool {
    let server = percpu::cpu(i).server.load(Ordering::Relaxed);
    // The receiver must see what it is woken for.
    core::sync::atomic::fence(Ordering::SeqCst);
    xics::ipi(&mut Sc1::new(), server, IPI_PRIORITY).is_ok()
}

/// Before the machine stops (power-off, os-term, panic, fatal exception):
/// makes this CPU the only one that goes on. The first caller sends every
/// other online CPU an IPI and waits (at most 100 ms) until they have parked;
/// any later caller on another CPU parks itself here and never returns.
pub fn stop_others() {
    let me = percpu::current();
    match STOPPER.compare_exchange(usize::MAX, me, Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => {}
        Err(owner) if owner == me => return,
        Err(_) => park_stopped(),
    }
    STOPPING.store(true, Ordering::Release);
    // No allocation here: the heap's lock may be held by a CPU being stopped.
    let mut sent = [false; MAX_CPUS];
    for (i, s) in sent.iter_mut().enumerate().take(percpu::planned()) {
        if i != me && percpu::cpu(i).state() == CpuState::Online {
            *s = send_ipi(i);
        }
    }
    let t0 = cpu::timebase();
    let limit = clock::hz() / 10;
    while (0..MAX_CPUS).any(|i| sent[i] && percpu::cpu(i).state() == CpuState::Online)
        && cpu::timebase().wrapping_sub(t0) < limit
    {
        core::hint::spin_loop();
    }
    let stopped = (0..MAX_CPUS)
        .filter(|&i| sent[i] && percpu::cpu(i).state() == CpuState::Stopped)
        .count();
    let asked = sent.iter().filter(|&&s| s).count();
    if asked > 0 {
        crate::console::emergency_write(format_args!(
            "[smp] CPU {me} stops the machine: {stopped} of {asked} other CPU(s) stopped\n"
        ));
    }
}
