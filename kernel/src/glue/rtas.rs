//! The one RTAS interface every RTAS user goes through (power-off, os-term,
//! system parameters, PCI configuration, interrupt routing).
//!
//! The kernel owns the buffer of big-endian cells (`token, nargs, nret, args...,
//! rets...`); the shim builds and reads it ([`hcall::rtas`]). The buffer goes to
//! one of two transports (`docs/rtas.md`):
//!
//! - **instantiated**: booted through Open Firmware, the kernel instantiated
//!   RTAS in the RMA (`of::rtas`) and calls its entry in real mode with r3 = the
//!   buffer and r4 = the RTAS base, as on a PowerVM LPAR;
//! - **hcall**: the `-bios` path has no firmware to instantiate RTAS, so it uses
//!   QEMU's KVMPPC_H_RTAS hcall (0xF000), which exists only under QEMU/KVM.

use core::sync::atomic::{AtomicU64, Ordering};

use spin::Mutex;

const MAX_CELLS: usize = 16;

/// The argument buffer: big-endian cells in both images, built and read only
/// by `hcall::rtas` (through `hcall::endian::FIRMWARE`).
#[repr(C, align(16))]
struct Buffer([u8; hcall::rtas::CELL_BYTES * (3 + MAX_CELLS)]);

static BUFFER: Mutex<Buffer> = Mutex::new(Buffer([0; hcall::rtas::CELL_BYTES * (3 + MAX_CELLS)]));

/// Tokens the kernel uses, from `/rtas`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Tokens {
    /// `power-off`
    pub power_off: Option<u32>,
    /// `ibm,os-term`
    pub os_term: Option<u32>,
    /// `ibm,get-system-parameter`
    pub get_system_parameter: Option<u32>,
}

static TOKENS: Mutex<Tokens> = Mutex::new(Tokens {
    power_off: None,
    os_term: None,
    get_system_parameter: None,
});

/// Where RTAS was instantiated: its base and entry (both below 4 GiB).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Instance {
    /// The RTAS area's real address (RTAS wants it in r4).
    pub base: u32,
    /// Its size in bytes.
    pub size: u32,
    /// The entry point `instantiate-rtas` returned.
    pub entry: u32,
}

/// The transport in force: `None` means the KVMPPC_H_RTAS hcall.
static INSTANCE: Mutex<Option<Instance>> = Mutex::new(None);

/// RTAS calls made, by transport (the counters `version` prints).
pub struct RtasStats {
    /// Calls through instantiated RTAS.
    pub instantiated_calls: AtomicU64,
    /// Calls through the KVMPPC_H_RTAS hcall.
    pub hcall_calls: AtomicU64,
}

/// The RTAS statistics.
pub static STATS: RtasStats = RtasStats {
    instantiated_calls: AtomicU64::new(0),
    hcall_calls: AtomicU64::new(0),
};

/// Makes every later call go to the instantiated RTAS.
pub fn use_instance(i: Instance) {
    *INSTANCE.lock() = Some(i);
}

/// The instantiated RTAS, if any.
pub fn instance() -> Option<Instance> {
    *INSTANCE.lock()
}

/// `instantiated` or `hcall`, as `version` prints it.
pub fn mode_name() -> &'static str {
    if instance().is_some() {
        "instantiated"
    } else {
        "hcall"
    }
}

/// `version`'s RTAS lines: the transport, where the instance is, calls made.
pub fn print_version_lines() {
    crate::println!("rtas: {}", mode_name());
    if let Some(i) = instance() {
        crate::println!(
            "rtas_area: base={:#x} size={:#x} entry={:#x}",
            i.base,
            i.size,
            i.entry
        );
    }
    crate::println!(
        "rtas_calls: instantiated={} hcall={}",
        STATS.instantiated_calls.load(Ordering::Relaxed),
        STATS.hcall_calls.load(Ordering::Relaxed)
    );
}

/// Records the tokens found in the device tree.
pub fn set_tokens(t: Tokens) {
    *TOKENS.lock() = t;
}

/// The recorded tokens.
pub fn tokens() -> Tokens {
    *TOKENS.lock()
}

/// Why an RTAS call failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RtasError {
    /// The device tree has no token for this call.
    NoToken(&'static str),
    /// Too many arguments or results for the buffer, or an address above 4 GiB.
    TooManyCells,
    /// The hcall itself failed.
    Hcall(i64),
    /// The RTAS status cell was negative.
    Status(i32),
}

impl core::fmt::Display for RtasError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            RtasError::NoToken(n) => write!(f, "no RTAS token for {n}"),
            RtasError::TooManyCells => write!(f, "RTAS arguments do not fit"),
            RtasError::Hcall(rc) => write!(f, "H_RTAS failed with {rc}"),
            RtasError::Status(s) => write!(f, "RTAS status {s}"),
        }
    }
}

/// Calls RTAS `token` with `args`; fills `rets` (the first is the status).
pub fn call(token: u32, args: &[u32], rets: &mut [u32]) -> Result<(), RtasError> {
    let mut buf = BUFFER.lock();
    hcall::rtas::build(&mut buf.0, token, args, rets.len()).map_err(|_| RtasError::TooManyCells)?;
    let addr = buf.0.as_ptr() as u64;
    crate::glue::rma::check(
        addr,
        core::mem::size_of::<Buffer>() as u64,
        "RTAS argument buffer",
    );
    match instance() {
        Some(i) => {
            STATS.instantiated_calls.fetch_add(1, Ordering::Relaxed);
            // SAFETY: `i` came from `instantiate-rtas` and its area is reserved
            // from every other use; the buffer is ours (locked), in the kernel
            // image, so below 4 GiB and in the RMA; RTAS is entered in 32-bit
            // real mode by the trampoline.
            unsafe { crate::glue::realcall::call(addr, u64::from(i.base), u64::from(i.entry)) };
        }
        None => {
            STATS.hcall_calls.fetch_add(1, Ordering::Relaxed);
            let mut raw = crate::hv::sc1();
            hcall::rtas::call(&mut raw, addr).map_err(|e| RtasError::Hcall(e.status.to_raw()))?;
        }
    }
    hcall::rtas::read_rets(&buf.0, rets);
    Ok(())
}

/// Calls RTAS and checks the status cell (the first result).
pub fn call_status(token: u32, args: &[u32], rets: &mut [u32]) -> Result<(), RtasError> {
    call(token, args, rets)?;
    hcall::rtas::check_status(rets)
        .map_err(|_| RtasError::Status(rets.first().map_or(0, |&s| s as i32)))
}

/// `ibm,get-system-parameter`: fills `buf` (2-byte length prefix, then the value).
pub fn get_system_parameter(param: u32, buf: &mut [u8]) -> Result<(), RtasError> {
    let token = tokens()
        .get_system_parameter
        .ok_or(RtasError::NoToken("ibm,get-system-parameter"))?;
    crate::glue::rma::check(buf.as_ptr() as u64, buf.len() as u64, "RTAS work area");
    buf.fill(0);
    let args = hcall::rtas::get_system_parameter_args(param, buf.as_ptr() as u64, buf.len())
        .ok_or(RtasError::TooManyCells)?;
    let mut rets = [0u32; 1];
    call_status(token, &args, &mut rets)
}

/// Releases the buffer lock if a panic left it held (the exit paths call this).
pub fn break_lock() {
    if BUFFER.is_locked() {
        // SAFETY: only called on the way out of the machine (panic, exception),
        // after `smp::stop_others` parked every other CPU: the holder can never
        // run again.
        unsafe { BUFFER.force_unlock() };
    }
}
