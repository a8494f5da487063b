//! Target glue: the parts of the kernel that touch the machine (entry and vectors,
//! the hypervisor console, RTAS, MMIO, frames in real memory) and the main loop that
//! wires the host-tested libraries (`kernel`, `cmm`, `hcall`) to them. Built only for
//! powerpc64; nothing here has a host test, so decisions belong in the libraries.

#[macro_use]
pub mod arch;
pub mod boot;
pub mod clock;
pub mod console;
pub mod drivers;
pub mod exit;
pub mod heap;
pub mod hv;
pub mod idle;
pub mod irq;
pub mod lock;
pub mod mem;
pub mod mmu;
pub mod of;
pub mod percpu;
pub mod realcall;
pub mod rma;
pub mod rtas;
pub mod shell;
pub mod smp;
pub mod stress;
pub mod sys;
pub mod wait;
