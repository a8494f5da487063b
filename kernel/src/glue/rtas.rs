//! The one RTAS interface every RTAS user goes through (power-off, os-term,
//! system parameters, PCI configuration, interrupt routing).
//!
//! The kernel owns the buffer of big-endian cells (`token, nargs, nret, args...,
//! rets...`); the shim builds and reads it ([`hcall::rtas`]). The buffer goes to
//! one of two transports (`docs/rtas.md`):
//!
//! - **instantiated**: booted through Open Firmware, the kernel instantiated
//!   RTAS in the RMA (`of::boot`, `kernel::devtree::firmware::instantiate_rtas`) and calls its entry in real mode with r3 = the
//!   buffer and r4 = the RTAS base, as on a PowerVM LPAR;
//! - **hcall**: the `-bios` path has no firmware to instantiate RTAS, so it uses
//!   QEMU's KVMPPC_H_RTAS hcall (0xF000), which exists only under QEMU/KVM.
//!
//! RTAS trusts its arguments as the hypervisor does. [`call`] is safe for the
//! services whose arguments are all values ([`kernel::rtas::VALUE_SERVICES`], their tokens
//! taken from the tree by name in [`set_tokens`]) and refuses any other token;
//! the services that take a real address are made here with memory this module
//! owns ([`get_system_parameter`], [`os_term`]) or through the `unsafe`
//! [`call_with_addresses`] (`start-cpu`, whose entry point is code).

use core::sync::atomic::{AtomicU64, Ordering};

use hcall::raw::sc1::Sc1;
use hcall::rtas::RtasError;
use spin::Mutex;

const MAX_CELLS: usize = 16;

/// The argument buffer: big-endian cells in both images, built and read only
/// by `hcall::rtas` (through `hcall::endian::FIRMWARE`).
#[repr(C, align(16))]
struct Buffer([u8; hcall::rtas::CELL_BYTES * (3 + MAX_CELLS)]);

static BUFFER: Mutex<Buffer> = Mutex::new(Buffer([0; hcall::rtas::CELL_BYTES * (3 + MAX_CELLS)]));

pub use kernel::rtas::Tokens;

/// The one token registry, stored once at boot from the device tree.
static TOKENS: Mutex<Option<Tokens>> = Mutex::new(None);

/// QEMU's own RTAS token numbers for `power-off` and `ibm,os-term`, used only when
/// the tree named none (a fatal error before the RTAS node was read). They are
/// QEMU's internal numbering, 0x2000 plus the call's index (`docs/rtas.md`); on
/// PowerVM the tree always names the tokens, and these numbers would mean
/// something else.
const QEMU_POWER_OFF: u32 = 0x2003;
/// See [`QEMU_POWER_OFF`].
const QEMU_OS_TERM: u32 = 0x201f;

/// Where RTAS was instantiated: its base, size and entry (all below 4 GiB).
pub use kernel::devtree::firmware::RtasArea as Instance;

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

/// `version`'s RTAS facts: the transport, where the instance is, calls made.
pub fn version_facts() -> kernel::version::RtasFacts {
    kernel::version::RtasFacts {
        instance: instance().map(|i| (i.base, i.size, i.entry)),
        instantiated_calls: STATS.instantiated_calls.load(Ordering::Relaxed),
        hcall_calls: STATS.hcall_calls.load(Ordering::Relaxed),
    }
}

/// Records the tokens found in the device tree (once, at boot).
pub fn set_tokens(t: Tokens) {
    *TOKENS.lock() = Some(t);
}

fn is_value_token(token: u32) -> bool {
    tokens().value_tokens().contains(&Some(token))
}

/// The recorded tokens (none before the device tree was read).
pub fn tokens() -> Tokens {
    TOKENS.lock().unwrap_or_default()
}

/// Why an RTAS call failed: the kernel refused it before calling, or RTAS (or
/// the H_RTAS hcall) answered with an error ([`hcall::rtas::RtasError`], the one
/// type for what RTAS itself says).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallError {
    /// The device tree has no token for this call.
    NoToken(&'static str),
    /// A buffer the call passes by address lies above 4 GiB (RTAS takes 32-bit
    /// addresses).
    AboveFourGiB,
    /// The token is not one of [`kernel::rtas::VALUE_SERVICES`]: refused by the safe [`call`].
    TakesAddresses(u32),
    /// The arguments did not fit the buffer, the hcall failed, or the status
    /// cell was negative.
    Rtas(RtasError),
}

impl From<RtasError> for CallError {
    fn from(e: RtasError) -> Self {
        CallError::Rtas(e)
    }
}

impl core::fmt::Display for CallError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            CallError::NoToken(n) => write!(f, "no RTAS token for {n}"),
            CallError::AboveFourGiB => write!(f, "RTAS buffer does not lie below 4 GiB"),
            CallError::TakesAddresses(t) => {
                write!(f, "RTAS token {t:#x} is not a call with value arguments")
            }
            CallError::Rtas(e) => write!(f, "{e}"),
        }
    }
}

/// Calls the RTAS service `token` (one of [`kernel::rtas::VALUE_SERVICES`]) with `args`; fills
/// `rets` (the first is the status). Any other token is refused without a call.
pub fn call(token: u32, args: &[u32], rets: &mut [u32]) -> Result<(), CallError> {
    if !is_value_token(token) {
        return Err(CallError::TakesAddresses(token));
    }
    // SAFETY: the token is the tree's for a service of `kernel::rtas::VALUE_SERVICES`, checked
    // above: it interprets no argument as an address.
    unsafe { call_with_addresses(token, args, rets) }
}

/// Calls RTAS `token` with `args`; fills `rets` (the first is the status).
///
/// # Safety
///
/// `token` is the tree's token for the service the caller means, and every
/// argument that service interprets as a real address (a work area, a string,
/// an entry point) names memory the caller owns for as long as RTAS (or, for an
/// entry point, the processor it starts) uses it, below 4 GiB and inside the
/// RMA.
pub unsafe fn call_with_addresses(
    token: u32,
    args: &[u32],
    rets: &mut [u32],
) -> Result<(), CallError> {
    let mut buf = BUFFER.lock();
    hcall::rtas::build(&mut buf.0, token, args, rets.len())?;
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
            // SAFETY: the buffer is ours (locked) and built by `hcall::rtas::build`;
            // what its arguments name is the caller's contract.
            unsafe { hcall::rtas::call(&mut Sc1::new(), addr) }.map_err(RtasError::Hcall)?;
        }
    }
    hcall::rtas::read_rets(&buf.0, rets);
    Ok(())
}

/// [`call`], then checks the status cell (the first result).
pub fn call_status(token: u32, args: &[u32], rets: &mut [u32]) -> Result<(), CallError> {
    call(token, args, rets)?;
    status_of(rets)
}

/// [`call_with_addresses`], then checks the status cell (the first result).
///
/// # Safety
///
/// As [`call_with_addresses`].
pub unsafe fn call_with_addresses_status(
    token: u32,
    args: &[u32],
    rets: &mut [u32],
) -> Result<(), CallError> {
    // SAFETY: the caller's contract is `call_with_addresses`'s.
    unsafe { call_with_addresses(token, args, rets) }?;
    status_of(rets)
}

fn status_of(rets: &[u32]) -> Result<(), CallError> {
    Ok(hcall::rtas::check_status(rets)?)
}

/// `ibm,get-system-parameter`: fills `buf` (2-byte length prefix, then the value).
pub fn get_system_parameter(param: u32, buf: &mut [u8]) -> Result<(), CallError> {
    let token = tokens()
        .get_system_parameter
        .ok_or(CallError::NoToken("ibm,get-system-parameter"))?;
    crate::glue::rma::check(buf.as_ptr() as u64, buf.len() as u64, "RTAS work area");
    buf.fill(0);
    let args = hcall::rtas::get_system_parameter_args(param, buf.as_ptr() as u64, buf.len())
        .ok_or(CallError::AboveFourGiB)?;
    let mut rets = [0u32; 1];
    // SAFETY: the token is the tree's `ibm,get-system-parameter`; the work area
    // is `buf`, borrowed mutably for the call and checked to lie in the RMA.
    unsafe { call_with_addresses_status(token, &args, &mut rets) }
}

/// `power-off` (the tree's token, or QEMU's before the tree was read); returns
/// only if RTAS did not power off.
pub fn power_off() -> Result<(), CallError> {
    let token = tokens().power_off.unwrap_or(QEMU_POWER_OFF);
    let mut rets = [0u32; 1];
    // SAFETY: power-off takes two values (the power-on masks).
    unsafe { call_with_addresses(token, &[u32::MAX, u32::MAX], &mut rets) }
}

/// The message `ibm,os-term` reads: a NUL-terminated string below 4 GiB.
struct TermMessage([u8; 256]);

static TERM_MSG: Mutex<TermMessage> = Mutex::new(TermMessage([0; 256]));

/// `ibm,os-term` with `msg` (the tree's token, or QEMU's before the tree was
/// read); returns only if RTAS did not terminate.
pub fn os_term(msg: &str) -> Result<(), CallError> {
    if TERM_MSG.is_locked() {
        // SAFETY: only on the way out (exit::os_term), after `smp::stop_others`
        // parked every other CPU: a holder can never run again.
        unsafe { TERM_MSG.force_unlock() };
    }
    let mut buf = TERM_MSG.lock();
    let n = msg.len().min(buf.0.len() - 1);
    buf.0[..n].copy_from_slice(&msg.as_bytes()[..n]);
    buf.0[n] = 0;
    let addr = u32::try_from(buf.0.as_ptr() as usize).map_err(|_| CallError::AboveFourGiB)?;
    let token = tokens().os_term.unwrap_or(QEMU_OS_TERM);
    let mut rets = [0u32; 1];
    // SAFETY: the message is ours (locked) for the call, in the image (below
    // 4 GiB, in the RMA) and NUL-terminated.
    unsafe { call_with_addresses(token, &[addr], &mut rets) }
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
