//! Host-side harness for lpar-cmm: boots the kernel under QEMU and drives its
//! serial console as docs/console.md fixes it.
//!
//! ```no_run
//! use lpar_cmm_tests::Qemu;
//! let mut vm = Qemu::builder().mem("512M").boot();
//! let reply = vm.ok("version");
//! assert!(reply.text().contains("lpar-cmm"));
//! assert_eq!(vm.poweroff(), 0);
//! ```
//!
//! Every wait has a deadline; a failure panics with the tail of the console
//! transcript, so a failing test shows what the kernel said.

pub mod amsstat;
pub mod dts;
pub mod fdt_dump;
pub mod qemu;
pub mod qmp;
pub mod reply;
pub mod scenario;
pub mod trace;

pub use qemu::{Builder, Firmware, Qemu};
pub use reply::Reply;

use std::path::PathBuf;

/// The workspace root (the parent of this crate).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// The kernel ELF: `$LPAR_CMM_KERNEL`, else cargo's usual place.
pub fn kernel_path() -> PathBuf {
    std::env::var_os("LPAR_CMM_KERNEL")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            workspace_root().join("target/powerpc64-unknown-linux-gnu/release/lpar-cmm")
        })
}

/// The boot ROM: `$LPAR_CMM_BOOTROM`, else `target/boot/bootrom.bin`.
pub fn bootrom_path() -> PathBuf {
    std::env::var_os("LPAR_CMM_BOOTROM")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target/boot/bootrom.bin"))
}
