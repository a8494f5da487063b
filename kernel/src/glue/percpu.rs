//! Per-CPU state: each CPU's index, interrupt server number, state, counters,
//! interrupt events, and its stacks (`docs/smp.md`).
//!
//! A CPU finds its own index in SPRG3 and its interrupt stack's top in SPRG0,
//! both set by [`enter`] before its first interrupt can arrive: the vectors
//! (`arch::trap`'s `interrupt_common`, `arch::entry`'s `exception_common`)
//! build their frames on the stack SPRG0 names, so two CPUs taking interrupts at
//! once never share a stack. The stacks are one static block per CPU inside the
//! image, so inside the real mode area (interrupts arrive in real mode):
//!
//! ```text
//! block i = __cpu_stacks + i * 256 KiB
//!   +0x00000 .. +0x20000  kernel stack (secondary CPUs; the boot CPU keeps the boot stack)
//!   +0x20000 .. +0x30000  exception stack (fatal exceptions: report and exit)
//!   +0x30000 .. +0x40000  interrupt stack (external, decrementer)
//! ```

use core::arch::asm;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering};

use alloc::vec::Vec;
use kernel::cpustats::CpuStats;
pub use kernel::smp::MAX_CPUS;
use kernel::timer::{decrementer_ticks, Timers};

use crate::arch::{cpu as arch_cpu, trap};
use crate::lock::Lock;

/// One CPU's stack block (see the module comment; `arch::entry` uses the same
/// numbers).
pub const STACK_BLOCK: u64 = 0x40000;
/// Offset of the top of the interrupt stack in a block (what SPRG0 holds).
pub const IRQ_STACK_TOP: u64 = 0x40000 - 0x100;

/// The stack blocks' first byte and the byte after them (they must lie in the RMA).
pub fn stacks_area() -> (u64, u64) {
    let start = crate::glue::image::cpu_stacks();
    (start, start + STACK_BLOCK * MAX_CPUS as u64)
}

/// Where a CPU is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum CpuState {
    /// Not in use.
    Absent = 0,
    /// `start-cpu` was called; waiting for it to say it is awake.
    Starting = 1,
    /// Running the kernel.
    Online = 2,
    /// Did not start (or not in time): left out.
    Failed = 3,
    /// Stopped for power-off or a fatal error.
    Stopped = 4,
}

impl CpuState {
    fn from_u8(v: u8) -> CpuState {
        match v {
            1 => CpuState::Starting,
            2 => CpuState::Online,
            3 => CpuState::Failed,
            4 => CpuState::Stopped,
            _ => CpuState::Absent,
        }
    }

    /// As `cpu` prints it.
    pub fn name(self) -> &'static str {
        match self {
            CpuState::Absent => "absent",
            CpuState::Starting => "starting",
            CpuState::Online => "online",
            CpuState::Failed => "failed",
            CpuState::Stopped => "stopped",
        }
    }
}

/// One CPU's shared state: written by the CPU itself (counters, events) or by
/// whoever starts or stops it (state); every field an atomic.
pub struct PerCpu {
    /// Its interrupt server number.
    pub server: AtomicU32,
    state: AtomicU8,
    /// Its counters (interrupts, cedes, ...).
    pub stats: CpuStats,
    /// The timebase when it came online.
    pub online_tb: AtomicU64,
    /// A decrementer interrupt happened and the CPU's loop has not looked yet.
    pub dec_fired: AtomicBool,
    /// An external interrupt happened and the CPU's loop has not looked yet.
    pub external_seen: AtomicBool,
    /// Inside H_CEDE now.
    pub ceding: AtomicBool,
}

impl PerCpu {
    const fn new() -> PerCpu {
        PerCpu {
            server: AtomicU32::new(0),
            state: AtomicU8::new(CpuState::Absent as u8),
            stats: CpuStats::new(),
            online_tb: AtomicU64::new(0),
            dec_fired: AtomicBool::new(false),
            external_seen: AtomicBool::new(false),
            ceding: AtomicBool::new(false),
        }
    }

    /// Its state.
    pub fn state(&self) -> CpuState {
        CpuState::from_u8(self.state.load(Ordering::Acquire))
    }

    /// Sets its state.
    pub fn set_state(&self, s: CpuState) {
        self.state.store(s as u8, Ordering::Release);
    }

    /// Moves it from `from` to `to`; false (and nothing changes) if it was not in `from`.
    pub fn transition(&self, from: CpuState, to: CpuState) -> bool {
        self.state
            .compare_exchange(from as u8, to as u8, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }
}

static CPUS: [PerCpu; MAX_CPUS] = [const { PerCpu::new() }; MAX_CPUS];

/// CPUs planned (index 0 .. count): set once at boot.
static PLANNED: AtomicU32 = AtomicU32::new(1);
/// Hardware threads the device tree lists.
static PRESENT: AtomicU32 = AtomicU32::new(1);

/// The CPU with index `i` (clamped to the table).
pub fn cpu(i: usize) -> &'static PerCpu {
    &CPUS[i.min(MAX_CPUS - 1)]
}

/// This CPU's index (SPRG3; 0 before [`enter`] ran on this CPU).
#[inline]
pub fn current() -> usize {
    let v: u64;
    // SAFETY: mfsprg3 only reads SPRG3, which [`enter`] set to the CPU index.
    unsafe { asm!("mfsprg3 {0}", out(reg) v, options(nomem, nostack)) };
    usize::try_from(v)
        .ok()
        .filter(|&i| i < MAX_CPUS)
        .unwrap_or(0)
}

/// This CPU's state.
#[inline]
pub fn this() -> &'static PerCpu {
    cpu(current())
}

/// Makes the running CPU index `i`: SPRG3 = `i`, SPRG0 = the top of its
/// interrupt stack. The boot CPU calls it before the vectors are installed,
/// every other CPU first thing in `smp::secondary_entry`.
pub fn enter(i: usize, server: u32) {
    let (base, _) = stacks_area();
    let irq_top = base + STACK_BLOCK * i as u64 + IRQ_STACK_TOP;
    // SAFETY: SPRG0 and SPRG3 are the kernel's own scratch registers: SPRG0 is
    // read only by the vectors (as the interrupt stack), SPRG3 only by
    // `current`; the values are this CPU's index and its own stack block.
    unsafe {
        asm!("mtsprg0 {0}", "mtsprg3 {1}", in(reg) irq_top, in(reg) i as u64, options(nostack));
    }
    let c = cpu(i);
    c.server.store(server, Ordering::Relaxed);
}

/// Records how many CPUs are planned and present.
pub fn set_counts(planned: usize, present: usize) {
    PLANNED.store(u32::try_from(planned).unwrap_or(1), Ordering::Relaxed);
    PRESENT.store(u32::try_from(present).unwrap_or(1), Ordering::Relaxed);
}

/// CPUs planned (indices 0 .. planned()).
pub fn planned() -> usize {
    PLANNED.load(Ordering::Relaxed) as usize
}

/// Hardware threads the tree lists.
pub fn present() -> usize {
    PRESENT.load(Ordering::Relaxed) as usize
}

/// CPUs online now.
pub fn online() -> usize {
    (0..planned())
        .filter(|&i| cpu(i).state() == CpuState::Online)
        .count()
}

/// What a CPU's own timers wake it for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CpuWake {
    /// The end of a timed `busy`.
    BusyEnd,
}

/// Each CPU's own timers, by CPU index: armed, expired and turned into its
/// own decrementer by that CPU only (the boot CPU's main loop has its own,
/// `System::timers`). The lock keeps the decrementer handler out while the
/// list changes; the handler itself never takes it.
static TIMERS: [Lock<Timers<CpuWake>>; MAX_CPUS] = [const { Lock::new(Timers::new()) }; MAX_CPUS];

/// Programs this CPU's decrementer for the earliest of its own timers (its
/// largest value when none is armed).
fn program_decrementer(t: &Timers<CpuWake>) {
    trap::set_decrementer(decrementer_ticks(arch_cpu::timebase(), t.next_deadline()));
}

/// Arms this CPU's timer `key` for `deadline` (timebase ticks) and programs
/// its decrementer.
pub fn arm_timer(key: CpuWake, deadline: u64) {
    let mut t = TIMERS[current()].lock();
    t.arm(key, deadline);
    program_decrementer(&t);
}

/// Disarms this CPU's timer `key`.
pub fn cancel_timer(key: CpuWake) {
    let mut t = TIMERS[current()].lock();
    t.cancel(key);
    program_decrementer(&t);
}

/// Takes this CPU's due timers, earliest first, and programs its decrementer
/// for the next one.
pub fn expire_timers() -> Vec<CpuWake> {
    let mut t = TIMERS[current()].lock();
    let due = t.expire(arch_cpu::timebase());
    program_decrementer(&t);
    due
}
