//! The kernel's state, owned by the main loop and lent to shell commands and
//! background work. One CPU, no interrupts: plain `&mut` borrowing is the lock.

use alloc::string::String;
use alloc::vec::Vec;
use kernel::devtree::Platform;

/// How the kernel was entered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BootMode {
    /// A flattened device tree in r3 (the boot ROM).
    Fdt,
    /// The Open Firmware client interface in r5 (SLOF, VOF, PowerVM).
    Of,
}

impl BootMode {
    /// `fdt` or `of`, as `version` prints it.
    pub fn name(self) -> &'static str {
        match self {
            BootMode::Fdt => "fdt",
            BootMode::Of => "of",
        }
    }
}

/// Everything the shell and the background work share.
pub struct System {
    /// Facts from the device tree.
    pub platform: Platform,
    /// How we booted.
    pub boot_mode: BootMode,
    /// The device tree blob (a copy in the heap).
    pub fdt_blob: Vec<u8>,
    /// Boot arguments that were applied, as given.
    pub bootargs: Vec<(String, String)>,
    /// Physical memory.
    pub mem: crate::mem::Memory,
}

impl System {
    /// Work done while the shell waits for input, and during `sleep`.
    pub fn background(&mut self) {}

    /// Runs background work for `ms` milliseconds.
    pub fn sleep_ms(&mut self, ms: u64) {
        let end = crate::clock::now_us().saturating_add(ms.saturating_mul(1000));
        while crate::clock::now_us() < end {
            self.background();
        }
    }
}

impl System {
    /// The hypervisor backend's name (`phyp` or `model`).
    pub fn hv_backend(&self) -> &'static str {
        "model"
    }

    /// Sets a parameter by its boot-argument name (`cmm.delay_ms`, `hv.pool`, ...).
    pub fn set_param(&mut self, key: &str, _value: &str) -> Result<(), String> {
        Err(alloc::format!("unknown parameter `{key}`"))
    }

    /// Prints `/proc/meminfo`-style rows.
    pub fn print_meminfo(&self) {
        let total_kb = self.mem.total_frames * 4;
        crate::println!("MemTotal:       {total_kb:>8} kB");
        crate::println!("MemFree:        {total_kb:>8} kB");
        crate::println!("Cached:         {:>8} kB", 0);
        crate::println!("SwapTotal:      {:>8} kB", 0);
        crate::println!("SwapFree:       {:>8} kB", 0);
    }
}
