//! Target glue: the parts of the kernel that touch the machine (entry and vectors,
//! the hypervisor console, RTAS, MMIO, frames in real memory) and the main loop that
//! wires the host-tested libraries (`kernel`, `cmm`, `hcall`) to them. Built only for
//! powerpc64; nothing here has a host test, so decisions belong in the libraries.
//!
//! `unsafe` is denied for the whole binary; the modules below that touch the machine
//! allow it by name, each saying what for: `arch` (entry, vectors, special
//! registers, deliberate faults), `mem` (physical memory: page contents, the
//! firmware's blob, the VPAs, the real hypervisor's page calls), `mmu` (the page
//! table hcalls and translation), `drivers` (MMIO), `realcall` and `of::call`
//! (firmware entered in real mode), `rtas` (its buffers), `heap`, `percpu` and
//! `smp` (per-CPU registers, starting CPUs). The rest (boot, the shell, system
//! state, waiting, idle, interrupts, locks, stress, console, exit, clock, RMA
//! checks) only orchestrates and cannot use it.

#[macro_use]
#[allow(unsafe_code)] // entry, vectors, special registers, deliberate faults
pub mod arch;
pub mod boot;
pub mod clock;
pub mod console;
#[allow(unsafe_code)] // MMIO: the virtio device's registers and rings
pub mod drivers;
pub mod exit;
#[allow(unsafe_code)] // hands the heap's memory to the allocator
pub mod heap;
pub mod hv;
pub mod idle;
pub mod image;
pub mod irq;
pub mod lock;
#[allow(unsafe_code)] // physical memory: pages, the firmware's blob, the VPAs, `Phyp`
pub mod mem;
#[allow(unsafe_code)] // H_ENTER/H_REMOVE, the SLB and MSR[IR|DR]
pub mod mmu;
pub mod of;
#[allow(unsafe_code)] // per-CPU blocks reached through SPRG3
pub mod percpu;
#[allow(unsafe_code)] // calls into RTAS and OF in real mode
pub mod realcall;
pub mod rma;
#[allow(unsafe_code)] // the RTAS argument buffer, the os-term message, RTAS entry
pub mod rtas;
pub mod shell;
#[allow(unsafe_code)] // starts secondary CPUs on their stacks, hands them work
pub mod smp;
pub mod stress;
pub mod sys;
pub mod wait;
