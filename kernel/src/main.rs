//! The lpar-cmm kernel binary: target glue only (entry, console, device tree,
//! frames, RTAS, shell, main loop). Pure logic lives in the `kernel` library,
//! `hcall` and `cmm`, all tested on the host.
#![cfg_attr(target_arch = "powerpc64", no_std, no_main)]
// The binary is built only for 64-bit powerpc, where `u64 as usize` (addresses)
// is lossless; narrowing to smaller types uses checked conversions.
#![allow(clippy::cast_possible_truncation)]
// `unsafe` only in the glue modules that touch the machine, named in `glue/mod.rs`.
#![deny(unsafe_code)]

#[cfg(target_arch = "powerpc64")]
extern crate alloc;

// Everything that touches hardware lives in `glue/` and is built for the target only;
// the host-testable library is the `kernel` crate (`lib.rs`). The re-export keeps
// `crate::console` and friends short inside the glue.
#[cfg(target_arch = "powerpc64")]
mod glue;
#[cfg(target_arch = "powerpc64")]
use glue::{
    arch, clock, console, drivers, exit, heap, hv, idle, irq, lock, mem, of, percpu, rtas, shell,
    smp, sys, wait,
};

#[cfg(not(target_arch = "powerpc64"))]
fn main() {
    eprintln!("the lpar-cmm kernel runs under qemu-system-ppc64: build it with `make kernel`");
}
