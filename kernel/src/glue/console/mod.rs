//! The console over its device (`drivers::vty`): a formatted writer, input
//! ([`input`]), the prompt line, and the `log` logger.
//!
//! A log line printed while the prompt is shown starts on a new line and is
//! followed by the prompt and the half-typed line again, as a shell user expects.

pub mod input;
pub mod logger;

use core::fmt::{self, Write};

use crate::drivers::vty;

/// A writer to the console that turns `\n` into `\r\n`.
pub struct Console;

impl Write for Console {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        write_bytes(s.as_bytes());
        Ok(())
    }
}

/// Writes raw bytes, `\n` becoming `\r\n`.
pub fn write_bytes(bytes: &[u8]) {
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'\n' {
            vty::put(&bytes[start..i]);
            vty::put(b"\r\n");
            start = i + 1;
        }
    }
    vty::put(&bytes[start..]);
}

/// The prompt line as shown: the prompt and what has been typed after it.
static PROMPT: spin::Mutex<PromptLine> = spin::Mutex::new(PromptLine {
    shown: false,
    prompt: "",
    typed: alloc::vec::Vec::new(),
});

struct PromptLine {
    shown: bool,
    prompt: &'static str,
    typed: alloc::vec::Vec<u8>,
}

/// Prints the prompt and remembers that it is shown.
pub fn show_prompt(prompt: &'static str) {
    {
        let mut p = PROMPT.lock();
        p.shown = true;
        p.prompt = prompt;
        p.typed.clear();
    }
    write_bytes(prompt.as_bytes());
}

/// Records what is typed after the prompt now (after each echo).
pub fn set_typed(bytes: &[u8]) {
    let mut p = PROMPT.lock();
    p.typed.clear();
    p.typed.extend_from_slice(bytes);
}

/// The line ended: the prompt is no longer shown.
pub fn prompt_done() {
    let mut p = PROMPT.lock();
    p.shown = false;
    p.typed.clear();
}

/// Prints a log line; over a shown prompt it starts a new line and redraws the
/// prompt and the half-typed line after it.
pub fn log_line(args: fmt::Arguments<'_>) {
    let p = PROMPT.lock();
    if !p.shown {
        drop(p);
        print(args);
        return;
    }
    write_bytes(b"\n");
    print(args);
    write_bytes(p.prompt.as_bytes());
    vty::put(&p.typed);
}

/// Prints formatted text (used by the `print!` macros and the logger).
pub fn print(args: fmt::Arguments<'_>) {
    let _ = Console.write_fmt(args);
}

/// Writes without any lock or allocation: for the panic and exception paths.
/// It never takes the prompt lock, so a CPU that stopped holding it (or a panic
/// inside [`log_line`]) cannot block it.
pub fn emergency_write(args: fmt::Arguments<'_>) {
    let _ = Console.write_fmt(args);
}

/// Prints to the console.
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => { $crate::console::print(format_args!($($arg)*)) };
}

/// Prints a line to the console.
#[macro_export]
macro_rules! println {
    () => { $crate::console::print(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::console::print(format_args!("{}\n", format_args!($($arg)*))) };
}
