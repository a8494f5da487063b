//! Small helpers shared by the commands: rendering into a string and printing it,
//! argument parsing with errors that say which argument was wrong.

use alloc::format;
use alloc::string::String;
use core::fmt;

use super::CmdResult;
use crate::print;

/// Renders with `f` into a buffer and prints it (rendering never fails midway).
pub fn emit(f: impl FnOnce(&mut String) -> fmt::Result) -> CmdResult {
    let mut s = String::new();
    f(&mut s).map_err(|_| String::from("output formatting failed"))?;
    print!("{s}");
    Ok(())
}

/// Parses `<size>` in bytes.
pub fn size(what: &str, s: &str) -> Result<u64, String> {
    kernel::text::parse_size(s).map_err(|e| format!("bad {what} `{s}`: {e}"))
}

/// Parses a `<size>` that must be a whole number of 4 KiB pages.
pub fn pages(what: &str, s: &str) -> Result<u64, String> {
    kernel::text::parse_pages(s).map_err(|e| format!("bad {what} `{s}`: {e}"))
}

/// Parses `<n>`.
pub fn number(what: &str, s: &str) -> Result<u64, String> {
    kernel::text::parse_number(s).map_err(|e| format!("bad {what} `{s}`: {e}"))
}
