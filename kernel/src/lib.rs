//! The host-testable part of the lpar-cmm kernel: pure logic that the target glue
//! in `main.rs` uses. Nothing here touches hardware.
//!
//! - [`boot`]: the order of the boot steps and what a failed one means.
//! - [`cas`]: the client-architecture-support vector and what option vector 5 granted.
//! - [`cpustats`]: interrupts by kind, cedes, time ceded.
//! - [`devtree`]: device tree reader and platform facts.
//! - [`driver`]: the driver seam: a driver's entry, its probe, the list's turns.
//! - [`hv`]: CMO detection, the backend dispatch, the virtio-balloon decorator.
//! - [`irq`]: the interrupt handler table drivers register their sources into.
//! - [`lock`]: the spin lock for a shared-processor LPAR: interrupt-safe, confers to a
//!   preempted holder (H_CONFER) by its VPA yield count.
//! - [`mmu`]: hash MMU arithmetic: HPTEs, hashes, SLB entries, page sizes.
//! - [`rma`]: the real mode area: its size, the layout check, real-mode access checks.
//! - [`rtas`]: the RTAS token registry: every token the kernel uses, looked up once.
//! - [`pci`]: PHB windows, configuration space, BAR sizing and assignment.
//! - [`virtio_balloon`]: the balloon protocol, the split virtqueue, the legacy registers.
//! - [`meminfo`]: the `meminfo` reply (the balloon's rows and the kernel heap's).
//! - [`smp`]: which hardware threads run, the boot thread first; `smp=<n>`.
//! - [`shell`]: the command table, typed commands parsed from a console line, `help`.
//! - [`timer`]: tickless timers: many deadlines, the earliest programs the decrementer.
//! - [`vector`]: the interrupt vectors, named once for the table, the dispatch and the reports.
//! - [`version`]: the `version` reply, from the facts the glue gathers.
//! - [`xics`]: interrupt source numbers from the device tree (VIO, PCI INTx).
//! - [`text`]: console line editing, command tokenising, size and boot-argument parsing.
//! - [`irq_storm`]: the interrupt storm guard: when to turn a source off, when to retry.
#![cfg_attr(not(test), no_std)]
// `unsafe` only in the modules named below: the spin lock and the two that touch
// device memory.
#![deny(unsafe_code)]

extern crate alloc;

pub mod boot;
pub mod cas;
pub mod cpustats;
pub mod devtree;
pub mod driver;
pub mod hv;
pub mod irq;
#[allow(unsafe_code)] // the spin lock hands out its data under the lock (UnsafeCell)
pub mod lock;
pub mod meminfo;
pub mod mmu;
pub mod pci;
pub mod rma;
pub mod rtas;
pub mod shell;
pub mod shutdown;
pub mod smp;
pub mod text;
pub mod timer;
pub mod vector;
pub mod version;
pub mod virtio_balloon;
pub mod xics;

// Kept apart from the list above (alphabetical within it).
pub mod irq_storm;
