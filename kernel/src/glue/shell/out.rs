//! Rendering a command's reply into a string and printing it.

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
