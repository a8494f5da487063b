//! Calling the Open Firmware client interface.
//!
//! The client interface takes one argument, r3 = the real address of an array
//! of big-endian 32-bit cells: the service name's address, the number of
//! arguments, the number of results, the arguments, then room for the results.
//! Every address in it must lie below 4 GiB. The firmware expects to be called
//! the way the PowerPC binding of IEEE 1275 enters a client: 32-bit mode
//! (MSR[SF] = 0), real mode, big-endian: the trampoline in `realcall` does that,
//! for RTAS too. The cells are built and read by the library's
//! [`ArgBlock`], big-endian in both images.

use core::ffi::CStr;
use core::sync::atomic::{compiler_fence, Ordering};

use kernel::devtree::argblock::ArgBlock;
use kernel::devtree::flatten::CiError;

/// The real address of `p` as one cell, or an error if it is above 4 GiB.
pub fn cell_addr<T>(service: &'static str, p: *const T) -> Result<u32, CiError> {
    u32::try_from(p as usize).map_err(|_| CiError::Address { service })
}

/// A length as one cell.
pub fn cell_len(service: &'static str, len: usize) -> Result<u32, CiError> {
    u32::try_from(len).map_err(|_| CiError::Address { service })
}

pub use kernel::devtree::firmware::signed;

/// The firmware's client interface, while it is still ours to call.
pub struct Prom {
    entry: u64,
    calls: usize,
}

impl Prom {
    /// Wraps the client interface entry point.
    ///
    /// # Safety
    /// `entry` must be the client interface entry that Open Firmware passed in
    /// r5, the firmware's memory must be intact, and nothing may have been
    /// written over low memory (the exception vectors) yet.
    pub unsafe fn new(entry: u64) -> Prom {
        Prom { entry, calls: 0 }
    }

    /// The client interface entry.
    pub fn entry(&self) -> u64 {
        self.entry
    }

    /// How many calls were made.
    pub fn calls(&self) -> usize {
        self.calls
    }

    /// Calls `service` with `args` and fills `rets` with its results.
    ///
    /// Fails if an address does not fit a cell, or if the entry returns a
    /// non-zero status (an unknown service, or arguments it refused). What the
    /// results mean is the caller's business.
    pub fn call(
        &mut self,
        service: &'static CStr,
        args: &[u32],
        rets: &mut [u32],
    ) -> Result<(), CiError> {
        let name = service.to_str().unwrap_or("(unnamed service)");
        let mut block = ArgBlock::new(cell_addr(name, service.as_ptr())?, args, rets.len())
            .ok_or(CiError::TooManyCells { service: name })?;
        let ptr = block.as_mut_bytes().as_mut_ptr();
        cell_addr(name, ptr)?;
        self.calls = self.calls.saturating_add(1);
        compiler_fence(Ordering::SeqCst);
        // SAFETY: `Prom::new`'s contract says `entry` is the live client
        // interface. The cell array and every address in it lie below 4 GiB
        // (checked above and by the callers); they stay valid for the call. The
        // trampoline saves and restores every register Rust expects preserved
        // and returns in 64-bit mode.
        let status = unsafe { crate::glue::realcall::call(ptr as u64, 0, self.entry) };
        compiler_fence(Ordering::SeqCst);
        let status = signed(u32::try_from(status & 0xffff_ffff).unwrap_or(u32::MAX));
        if status != 0 {
            return Err(CiError::Call {
                service: name,
                status: i64::from(status),
            });
        }
        block.rets(rets);
        Ok(())
    }
}
