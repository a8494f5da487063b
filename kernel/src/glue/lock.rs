//! The kernel's lock ([`kernel::lock::SpinLock`]) on the machine: interrupts
//! through MSR[EE], the CPU index from SPRG3, yield counts from the VPAs,
//! H_CONFER through `sc 1`, waits and confers counted per CPU (`cpu`, `stress`).

use core::sync::atomic::Ordering;

use hcall::raw::sc1::Sc1;
use hcall::vpa::{self, ConferTo};
use kernel::cpustats::CpuStats;
use kernel::lock::{Confer, LockEnv, SpinLock};

use crate::arch::trap;
use crate::{idle, percpu};

/// The machine, for the lock.
pub struct KernelEnv;

impl LockEnv for KernelEnv {
    fn cpu() -> usize {
        percpu::current()
    }

    fn irq_off() -> bool {
        trap::disable_interrupts()
    }

    fn irq_restore(was_on: bool) {
        if was_on {
            trap::enable_interrupts();
        }
    }

    fn yield_count(cpu: usize) -> Option<u32> {
        idle::yield_count(cpu)
    }

    fn confer(to: Confer) {
        let to = match to {
            Confer::Spin => return,
            Confer::Holder { cpu, yield_count } => ConferTo::Holder {
                server: percpu::cpu(cpu).server.load(Ordering::Relaxed),
                yield_count,
            },
            Confer::All => ConferTo::All,
        };
        let mut raw = Sc1::new();
        let _ = vpa::confer(&mut raw, to);
    }

    fn count_wait() {
        CpuStats::add(&percpu::this().stats.lock_waits, 1);
    }

    fn count_confer() {
        CpuStats::add(&percpu::this().stats.confers, 1);
    }
}

/// A lock shared between CPUs (docs/smp.md lists what each protects).
pub type Lock<T> = SpinLock<T, KernelEnv>;
