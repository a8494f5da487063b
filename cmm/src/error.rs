//! The one error type of the `cmm` crate. Every refusal is a value with a
//! human-readable `Display` (the console prints it after `error: `); nothing in
//! this crate panics on bad input.

use alloc::string::String;
use core::fmt;

use hcall::page::PAGE_SIZE;
use hcall::HcallError;

/// Why a `cmm` operation was refused or failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CmmError {
    /// `cmm set` with a parameter name this balloon does not have.
    UnknownParam(String),
    /// A parameter value that is out of range.
    InvalidValue {
        /// The parameter.
        param: &'static str,
        /// What is wrong with the value.
        reason: &'static str,
    },
    /// A parameter's value that is not a number, in the console's words
    /// ([`lpar_units`], the one parser every command uses).
    BadNumber {
        /// The parameter's name.
        param: &'static str,
        /// Why the number was refused.
        reason: lpar_units::NumberError,
    },
    /// The RAM / reserved region list cannot describe a frame table.
    BadRegions(&'static str),
    /// An address that is not the start of a 4 KiB page.
    Unaligned {
        /// The address given.
        addr: u64,
    },
    /// A size that must be a whole number of pages is not.
    NotPageMultiple {
        /// The size given, in bytes.
        bytes: u64,
    },
    /// An address that is not a RAM frame managed by the frame table.
    NotAFrame {
        /// The address given.
        addr: u64,
    },
    /// A frame that is not in the state the operation needs (e.g. freeing a free frame).
    WrongState {
        /// The frame's address.
        addr: u64,
        /// The state the operation needed.
        expected: &'static str,
    },
    /// No free frame, even after the OOM notifier chain ran.
    OutOfMemory {
        /// Pages the operation asked for.
        requested: u64,
        /// Pages it could have had at most.
        available: u64,
    },
    /// Fewer workload pages are allocated than the operation wants to free.
    NotEnoughWorkload {
        /// Pages asked for.
        requested: u64,
        /// Pages held.
        held: u64,
    },
    /// The caller asked a long operation to stop (Ctrl-C on the console); what
    /// it had done was undone.
    Interrupted,
    /// A hypervisor call failed where that is fatal to the operation.
    Hcall(HcallError),
}

impl fmt::Display for CmmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CmmError::UnknownParam(name) => write!(f, "unknown cmm parameter `{name}`"),
            CmmError::InvalidValue { param, reason } => {
                write!(f, "invalid value for {param}: {reason}")
            }
            CmmError::BadNumber { param, reason } => {
                write!(f, "invalid value for {param}: {reason}")
            }
            CmmError::BadRegions(why) => write!(f, "bad memory regions: {why}"),
            CmmError::Unaligned { addr } => write!(f, "address {addr:#x} is not page aligned"),
            CmmError::NotPageMultiple { bytes } => {
                write!(f, "size {bytes} is not a multiple of {PAGE_SIZE} bytes")
            }
            CmmError::NotAFrame { addr } => write!(f, "address {addr:#x} is not a RAM frame"),
            CmmError::WrongState { addr, expected } => {
                write!(f, "frame {addr:#x} is not {expected}")
            }
            CmmError::OutOfMemory {
                requested,
                available,
            } => write!(
                f,
                "out of memory: {requested} pages requested, at most {available} available"
            ),
            CmmError::NotEnoughWorkload { requested, held } => write!(
                f,
                "cannot free {requested} pages: only {held} workload pages allocated"
            ),
            CmmError::Interrupted => f.write_str("interrupted"),
            CmmError::Hcall(e) => write!(f, "{e}"),
        }
    }
}

impl From<HcallError> for CmmError {
    fn from(e: HcallError) -> Self {
        CmmError::Hcall(e)
    }
}
