//! Target glue: the parts of the kernel that touch the machine (entry and vectors,
//! the hypervisor console, RTAS, MMIO, frames in real memory) and the main loop that
//! wires the host-tested libraries (`kernel`, `cmm`, `hcall`) to them. Built only for
//! powerpc64; nothing here has a host test, so decisions belong in the libraries.
//!
//! `unsafe` is denied for the whole binary; the modules below that touch the machine
//! allow it by name, each saying what for. The rest (shell, system state, waiting,
//! clock, RMA checks) only orchestrate and cannot use it.

#[macro_use]
#[allow(unsafe_code)] // entry, vectors, special registers, deliberate faults
pub mod arch;
#[allow(unsafe_code)] // reads the device tree blob at the address firmware passed
pub mod boot;
pub mod clock;
#[allow(unsafe_code)] // the emergency path takes the prompt lock by force
pub mod console;
#[allow(unsafe_code)] // MMIO: the virtio device's registers and rings
pub mod drivers;
#[allow(unsafe_code)] // the os-term message buffer RTAS reads
pub mod exit;
#[allow(unsafe_code)] // hands the heap's memory to the allocator
pub mod heap;
#[allow(unsafe_code)] // mints the `sc 1` handle (the raw call)
pub mod hv;
#[allow(unsafe_code)] // the VPA the hypervisor reads and writes, and H_CEDE
pub mod idle;
#[allow(unsafe_code)] // the raw call in interrupt context and the device's ISR register
pub mod irq;
#[allow(unsafe_code)] // the lock mints the `sc 1` handle for H_CONFER
pub mod lock;
#[allow(unsafe_code)] // physical memory: page contents by real address
pub mod mem;
#[allow(unsafe_code)] // H_ENTER/H_REMOVE, the SLB and MSR[IR|DR]
pub mod mmu;
#[allow(unsafe_code)] // the Open Firmware client interface entry
pub mod of;
#[allow(unsafe_code)] // per-CPU blocks reached through SPRG3
pub mod percpu;
#[allow(unsafe_code)] // calls into RTAS and OF in real mode
pub mod realcall;
pub mod rma;
#[allow(unsafe_code)] // the RTAS argument buffer and entry
pub mod rtas;
pub mod shell;
#[allow(unsafe_code)] // starts secondary CPUs on their stacks
pub mod smp;
#[allow(unsafe_code)] // a secondary CPU takes its job from a raw pointer the boot CPU handed over
pub mod stress;
pub mod sys;
pub mod wait;
