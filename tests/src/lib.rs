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
pub mod linux;
pub mod pool_guest;
pub mod qemu;
pub mod qmp;
pub mod relay;
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

/// Which of the two kernel images a QEMU test boots.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endian {
    /// `powerpc64-unknown-linux-gnu` (ELFv1).
    Big,
    /// `powerpc64le-unknown-linux-gnu` (ELFv2).
    Little,
}

impl Endian {
    /// The image the tests boot unless a test asks for one: `$LPAR_CMM_ENDIAN`
    /// (`be` or `le`; `make test-le` sets `le`), big-endian when unset. Any other
    /// value stops the test with a clear message.
    pub fn from_env() -> Endian {
        match std::env::var("LPAR_CMM_ENDIAN").as_deref() {
            Err(_) | Ok("") | Ok("be") => Endian::Big,
            Ok("le") => Endian::Little,
            Ok(other) => panic!("LPAR_CMM_ENDIAN must be be or le, not {other:?}"),
        }
    }

    /// `big` or `little`, as the kernel's `version` prints it.
    pub fn name(self) -> &'static str {
        match self {
            Endian::Big => "big",
            Endian::Little => "little",
        }
    }

    /// The Rust target the image is built for.
    pub fn target(self) -> &'static str {
        match self {
            Endian::Big => "powerpc64-unknown-linux-gnu",
            Endian::Little => "powerpc64le-unknown-linux-gnu",
        }
    }

    /// The kernel ELF: `$LPAR_CMM_KERNEL` (big) or `$LPAR_CMM_KERNEL_LE`
    /// (little), else cargo's usual place.
    pub fn kernel_path(self) -> PathBuf {
        let var = match self {
            Endian::Big => "LPAR_CMM_KERNEL",
            Endian::Little => "LPAR_CMM_KERNEL_LE",
        };
        std::env::var_os(var).map(PathBuf::from).unwrap_or_else(|| {
            workspace_root()
                .join("target")
                .join(self.target())
                .join("release/lpar-cmm")
        })
    }
}

/// The kernel ELF of the image the tests boot by default ([`Endian::from_env`]).
pub fn kernel_path() -> PathBuf {
    Endian::from_env().kernel_path()
}

/// The boot ROM: `$LPAR_CMM_BOOTROM`, else `target/boot/bootrom.bin`.
pub fn bootrom_path() -> PathBuf {
    std::env::var_os("LPAR_CMM_BOOTROM")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target/boot/bootrom.bin"))
}

/// QEMU from Debian bookworm-backports (`make qemu-bpo`) and its firmware
/// directory: `$LPAR_CMM_QEMU_BPO` and `$LPAR_CMM_QEMU_BPO_DATA`, else under
/// `target/qemu-bpo/root`. Bookworm's QEMU 7.2 refuses more than one thread per
/// core under TCG on pseries; this one (10.0) does not.
pub fn qemu_bpo_paths() -> (PathBuf, PathBuf) {
    let root = workspace_root().join("target/qemu-bpo/root/usr");
    let bin = std::env::var_os("LPAR_CMM_QEMU_BPO")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("bin/qemu-system-ppc64"));
    let data = std::env::var_os("LPAR_CMM_QEMU_BPO_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("share/qemu"));
    (bin, data)
}
