//! The lpar-cmm kernel binary: target glue only (entry, console, device tree,
//! frames, RTAS, shell, main loop). Pure logic lives in the `kernel` library,
//! `hcall` and `cmm`, all tested on the host.
#![cfg_attr(target_arch = "powerpc64", no_std, no_main)]
// The binary is built only for 64-bit powerpc, where `u64 as usize` (addresses)
// is lossless; narrowing to smaller types uses checked conversions.
#![allow(clippy::cast_possible_truncation)]

#[cfg(target_arch = "powerpc64")]
extern crate alloc;

#[cfg(target_arch = "powerpc64")]
mod arch;
#[cfg(target_arch = "powerpc64")]
mod boot;
#[cfg(target_arch = "powerpc64")]
mod clock;
#[cfg(target_arch = "powerpc64")]
mod console;
#[cfg(target_arch = "powerpc64")]
mod drivers;
#[cfg(target_arch = "powerpc64")]
mod exit;
#[cfg(target_arch = "powerpc64")]
mod heap;
#[cfg(target_arch = "powerpc64")]
mod hv;
#[cfg(target_arch = "powerpc64")]
mod mem;
#[cfg(target_arch = "powerpc64")]
mod of;
#[cfg(target_arch = "powerpc64")]
mod rtas;
#[cfg(target_arch = "powerpc64")]
mod shell;
#[cfg(target_arch = "powerpc64")]
mod sys;

#[cfg(not(target_arch = "powerpc64"))]
fn main() {
    eprintln!("the lpar-cmm kernel runs under qemu-system-ppc64: build it with `make kernel`");
}
