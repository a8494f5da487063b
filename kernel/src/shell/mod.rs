//! The shell's commands as data: one table ([`COMMANDS`]) gives every command its
//! name, its usage string, a one-line description and its argument parser; a console
//! line parses into a typed [`Command`]; `help` is generated from the same table, so
//! the parser and `help` cannot drift. Nothing here runs a command: the target glue
//! (`kernel/src/glue/shell/`) executes the typed [`Command`] it is handed.
//!
//! Error texts follow the console contract (`docs/console.md`): a line whose arguments
//! do not fit gets `error: usage: <usage>` with the table's usage string, a bad number
//! `error: bad <what> `value`: <reason>`, and so on (see [`ArgError`]).
//!
//! # Adding a command
//!
//! 1. Add a variant with typed arguments to [`Command`] (`command.rs`).
//! 2. Add one row to [`COMMANDS`] in `table.rs` (name, usage, description, parser)
//!    and its parser below the table. That row is the only place its usage string
//!    lives; `help` and every `usage:` error read it from there.
//! 3. Add good and bad lines for it to `tests.rs` (the test
//!    `every_command_has_good_and_bad_lines` fails until you do).
//! 4. The glue's `match` in `kernel/src/glue/shell/mod.rs` stops compiling until the
//!    new variant has an arm: run the command there.
//!
//! `hv ...` is parsed by the pool model's own parser
//! ([`powervm_sim::HvCommand::parse`]), which the boot arguments share; its row
//! takes the usage string from there ([`powervm_sim::HV_USAGE`]).

mod command;
mod error;
mod table;
#[cfg(test)]
mod tests;

use alloc::string::String;
use alloc::vec::Vec;

pub use command::{
    BenchCommand, CmmCommand, Command, FaultKind, MppCommand, UnmapWhich, VioCommand,
};
pub use error::{ArgError, ParseError};
pub use table::COMMANDS;

/// A command's parser: the words after the name in, the typed command out.
pub type ParseFn = for<'a> fn(&[&'a str]) -> Result<Command<'a>, ArgError<'a>>;

/// One row of the command table.
pub struct Spec {
    /// The first word of the line.
    pub name: &'static str,
    /// The usage string: the name, then its arguments (`sleep <ms>`).
    pub usage: &'static str,
    /// What the command does, in one line, for `help`.
    pub about: &'static str,
    /// Parses the arguments (the words after the name).
    pub parse: ParseFn,
}

impl Spec {
    /// The command's `help` line: `<usage>: <about>`.
    pub fn help_line(&self) -> String {
        alloc::format!("{}: {}", self.usage, self.about)
    }
}

/// Finds a command's row by its name.
pub fn lookup(name: &str) -> Option<&'static Spec> {
    COMMANDS.iter().find(|c| c.name == name)
}

/// Parses a command given as words, its name first.
pub fn parse<'a>(words: &[&'a str]) -> Result<Command<'a>, ParseError<'a>> {
    let Some((&name, args)) = words.split_first() else {
        return Err(ParseError::Empty);
    };
    let spec = lookup(name).ok_or(ParseError::Unknown(name))?;
    (spec.parse)(args).map_err(|error| ParseError::Args {
        usage: spec.usage,
        error,
    })
}

/// Splits a console line into words (runs of ASCII white space separate them).
pub fn words(line: &str) -> Vec<&str> {
    line.split_ascii_whitespace().collect()
}

/// Parses a console line; `None` for a blank line (which gets no reply at all).
pub fn parse_line(line: &str) -> Option<Result<Command<'_>, ParseError<'_>>> {
    let words = words(line);
    if words.is_empty() {
        None
    } else {
        Some(parse(&words))
    }
}

/// `help`'s reply: one line per command, in table order.
pub fn help_lines() -> impl Iterator<Item = String> {
    COMMANDS.iter().map(Spec::help_line)
}
