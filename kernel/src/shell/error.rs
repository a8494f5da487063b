//! Why a command line was refused, worded as the console contract wants
//! (`docs/console.md`): the glue prints `error: ` and the [`ParseError`]'s text.

use alloc::boxed::Box;
use core::fmt;

use crate::text::NumberError;

/// A refused command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParseError<'a> {
    /// No words at all (`time` with nothing after it is caught by `time` itself).
    Empty,
    /// The first word names no command.
    Unknown(&'a str),
    /// The command exists; its arguments were refused.
    Args {
        /// The command's usage string, from the table.
        usage: &'static str,
        /// What was wrong.
        error: ArgError<'a>,
    },
}

/// What was wrong with a command's arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ArgError<'a> {
    /// The words do not have the command's shape: the reply quotes its usage.
    Usage,
    /// The command takes no arguments and was given some.
    NoArguments,
    /// An argument that should be a number or size is not one.
    Bad {
        /// The argument's name in the usage string (`<ms>`, `<size>`).
        what: &'static str,
        /// What was typed.
        value: &'a str,
        /// Why it was refused.
        reason: NumberError,
    },
    /// A number outside the range the command accepts (the text says which).
    OutOfRange(&'static str),
    /// The workload word was neither absent nor `cache`.
    NotCache(&'a str),
    /// The command `time` was asked to time was refused (its own error).
    Inner(Box<ParseError<'a>>),
    /// The pool model's parser refused an `hv` argument (its own error).
    Model(powervm_sim::ModelError),
}

impl fmt::Display for ParseError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::Empty => f.write_str("no command"),
            ParseError::Unknown(name) => write!(f, "unknown command `{name}` (try `help`)"),
            ParseError::Args {
                usage,
                error: ArgError::Usage,
            } => write!(f, "usage: {usage}"),
            ParseError::Args { error, .. } => error.fmt(f),
        }
    }
}

impl fmt::Display for ArgError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ArgError::Usage => f.write_str("wrong arguments"),
            ArgError::NoArguments => f.write_str("this command takes no arguments"),
            ArgError::Bad {
                what,
                value,
                reason,
            } => write!(f, "bad {what} `{value}`: {reason}"),
            ArgError::OutOfRange(why) => f.write_str(why),
            ArgError::NotCache(other) => write!(f, "expected `cache`, got `{other}`"),
            ArgError::Inner(e) => e.fmt(f),
            ArgError::Model(e) => e.fmt(f),
        }
    }
}
