//! RTAS through the KVMPPC_H_RTAS hcall (0xF000): a buffer of big-endian 32-bit
//! cells `token, nargs, nret, args..., rets...` whose real address goes in r4.

use spin::Mutex;

use crate::arch::hvcall::hcall;

const KVMPPC_H_RTAS: u64 = 0xF000;
const MAX_CELLS: usize = 16;

#[repr(C, align(16))]
struct Buffer([u32; 3 + MAX_CELLS]);

static BUFFER: Mutex<Buffer> = Mutex::new(Buffer([0; 3 + MAX_CELLS]));

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
    /// Too many arguments or results for the buffer.
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
            RtasError::TooManyCells => write!(f, "too many RTAS arguments"),
            RtasError::Hcall(rc) => write!(f, "H_RTAS failed with {rc}"),
            RtasError::Status(s) => write!(f, "RTAS status {s}"),
        }
    }
}

/// Calls RTAS `token` with `args`; returns the `nret` result cells (the first is the status).
pub fn call(token: u32, args: &[u32], rets: &mut [u32]) -> Result<(), RtasError> {
    if args.len() + rets.len() > MAX_CELLS {
        return Err(RtasError::TooManyCells);
    }
    let mut buf = BUFFER.lock();
    let cells = &mut buf.0;
    cells[0] = token.to_be();
    cells[1] = u32::try_from(args.len()).unwrap_or(0).to_be();
    cells[2] = u32::try_from(rets.len()).unwrap_or(0).to_be();
    for (d, s) in cells[3..].iter_mut().zip(args) {
        *d = s.to_be();
    }
    for c in cells[3 + args.len()..].iter_mut() {
        *c = 0;
    }
    let addr = cells.as_ptr() as u64;
    let (rc, _) = hcall(KVMPPC_H_RTAS, &[addr]);
    if rc != 0 {
        return Err(RtasError::Hcall(rc));
    }
    for (d, s) in rets.iter_mut().zip(&cells[3 + args.len()..]) {
        *d = u32::from_be(*s);
    }
    Ok(())
}

/// Calls RTAS and checks the status cell (the first result).
pub fn call_status(token: u32, args: &[u32], rets: &mut [u32]) -> Result<(), RtasError> {
    call(token, args, rets)?;
    match rets.first() {
        Some(&s) if (s as i32) < 0 => Err(RtasError::Status(s as i32)),
        _ => Ok(()),
    }
}

/// `ibm,get-system-parameter`: fills `buf` (2-byte length prefix, then the value).
pub fn get_system_parameter(param: u32, buf: &mut [u8]) -> Result<(), RtasError> {
    let token = tokens()
        .get_system_parameter
        .ok_or(RtasError::NoToken("ibm,get-system-parameter"))?;
    buf.fill(0);
    let addr = u32::try_from(buf.as_ptr() as usize).map_err(|_| RtasError::TooManyCells)?;
    let len = u32::try_from(buf.len()).unwrap_or(u32::MAX);
    let mut rets = [0u32; 1];
    call_status(token, &[param, addr, len], &mut rets)
}

/// Releases the buffer lock if a panic left it held (the exit paths call this).
pub fn break_lock() {
    if BUFFER.is_locked() {
        // SAFETY: only called on the way out of the machine (panic, exception), on
        // the single CPU, when the holder can never run again.
        unsafe { BUFFER.force_unlock() };
    }
}
