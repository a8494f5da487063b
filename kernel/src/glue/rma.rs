//! The real mode area on the machine (`docs/real-mode-area.md`): what must lie
//! inside it, the RMA in force, and the check every translation-off access path
//! makes. The decisions are in [`kernel::rma`]; this file gathers the addresses
//! and stops the kernel, naming the address and the path, when a check fails.

use core::sync::atomic::{AtomicU64, Ordering};

use kernel::rma::{Item, Rma};

/// The boot stack's size (see `arch::entry`).
const BOOT_STACK: u64 = 0x40000;

/// The RMA size in force; `u64::MAX` until boot has chosen it (the firmware
/// phase, before the tree is read, is covered by the layout check afterwards).
static RMA_SIZE: AtomicU64 = AtomicU64::new(u64::MAX);
/// `memory@0`'s size.
static FIRMWARE_RMA: AtomicU64 = AtomicU64::new(0);

/// Everything the kernel touches with translation off, by name.
pub fn items() -> alloc::vec::Vec<Item> {
    use crate::glue::image;
    let (start, end, boot_top) = (
        image::kernel_start(),
        image::kernel_end(),
        image::boot_stack_top(),
    );
    let (vec_start, vec_end) = image::vector_table();
    let (heap_start, heap_end) = crate::heap::area();
    let mut v = alloc::vec![
        Item {
            name: "exception vectors",
            start: 0,
            end: vec_end.saturating_sub(vec_start),
        },
        Item {
            name: "kernel image",
            start,
            end,
        },
        Item {
            name: "heap (device tree copy, frame bookkeeping)",
            start: heap_start,
            end: heap_end,
        },
        Item {
            name: "boot stack",
            start: boot_top.saturating_sub(BOOT_STACK),
            end: boot_top,
        },
        Item {
            name: "per-CPU stacks (kernel, exception, interrupt)",
            start: crate::percpu::stacks_area().0,
            end: crate::percpu::stacks_area().1,
        },
        Item {
            name: "VPAs",
            start: crate::idle::area().0,
            end: crate::idle::area().1,
        },
    ];
    if let Some(i) = crate::rtas::instance() {
        v.push(Item {
            name: "RTAS area",
            start: u64::from(i.base),
            end: u64::from(i.base) + u64::from(i.size),
        });
    }
    v
}

/// Chooses the RMA from the memory ranges and `rma=`, checks the layout against
/// it and records it. A refused `rma=` is logged and changes nothing; a layout
/// that does not fit is fatal (`Err` with the reason).
pub fn init(
    memory: &[kernel::devtree::MemRange],
    arg: Option<&str>,
) -> Result<Rma, alloc::string::String> {
    let items = items();
    let (rma, refused) = Rma::choose(memory, arg, kernel::rma::needed(&items));
    if let Some(why) = refused {
        log::warn!("boot argument {why}; the RMA stays {} MiB", rma.size >> 20);
    }
    rma.check_layout(&items)
        .map_err(|v| alloc::format!("{v}"))?;
    RMA_SIZE.store(rma.size, Ordering::Relaxed);
    FIRMWARE_RMA.store(rma.firmware_size, Ordering::Relaxed);
    Ok(rma)
}

/// The RMA in force (`size` is `u64::MAX` before [`init`]).
pub fn current() -> Rma {
    Rma {
        size: RMA_SIZE.load(Ordering::Relaxed),
        firmware_size: FIRMWARE_RMA.load(Ordering::Relaxed),
    }
}

/// Stops the kernel unless `len` bytes at `addr` lie in the RMA: called by every
/// path that touches memory with translation off.
pub fn check(addr: u64, len: u64, path: &'static str) {
    if let Err(v) = current().check(addr, len, path) {
        panic!("{v}");
    }
}
