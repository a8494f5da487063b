//! The console: the hvterm vty driven with H_PUT_TERM_CHAR / H_GET_TERM_CHAR, a
//! formatted writer over it, input buffering, and the `log` logger.

pub mod hvterm;
pub mod logger;

use core::fmt::{self, Write};
use core::sync::atomic::{AtomicU32, Ordering};

/// The vty unit address in use (QEMU's default until the device tree says otherwise).
static VTY_UNIT: AtomicU32 = AtomicU32::new(0x7100_0000);

/// Sets the vty unit address (from the device tree).
pub fn set_unit(unit: u32) {
    VTY_UNIT.store(unit, Ordering::Relaxed);
}

/// The vty unit address in use.
pub fn unit() -> u32 {
    VTY_UNIT.load(Ordering::Relaxed)
}

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
    let unit = unit();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'\n' {
            hvterm::put(unit, &bytes[start..i]);
            hvterm::put(unit, b"\r\n");
            start = i + 1;
        }
    }
    hvterm::put(unit, &bytes[start..]);
}

/// Log lines held back while the user is in the middle of typing a line, so that
/// they never split the echo of a command (released when the line ends).
static HELD: spin::Mutex<Held> = spin::Mutex::new(Held {
    on: false,
    text: alloc::string::String::new(),
    dropped: 0,
});

struct Held {
    on: bool,
    text: alloc::string::String,
    dropped: u64,
}

/// Most bytes of log output held back at once; beyond it lines are counted and dropped.
const MAX_HELD: usize = 64 * 1024;

/// Starts holding log lines back.
pub fn hold_logs() {
    HELD.lock().on = true;
}

/// Prints the held log lines and stops holding.
pub fn release_logs() {
    let (text, dropped) = {
        let mut h = HELD.lock();
        h.on = false;
        (
            core::mem::take(&mut h.text),
            core::mem::take(&mut h.dropped),
        )
    };
    write_bytes(text.as_bytes());
    if dropped > 0 {
        print(format_args!(
            "[ (console: {dropped} held log lines dropped) ]\n"
        ));
    }
}

/// Prints a log line now, or holds it while a line is being typed.
pub fn log_line(args: fmt::Arguments<'_>) {
    {
        let mut h = HELD.lock();
        if h.on {
            if h.text.len() < MAX_HELD {
                let _ = h.text.write_fmt(args);
            } else {
                h.dropped += 1;
            }
            return;
        }
    }
    print(args);
}

/// Prints formatted text (used by the `print!` macros and the logger).
pub fn print(args: fmt::Arguments<'_>) {
    let _ = Console.write_fmt(args);
}

/// Writes without any lock or allocation: for the panic and exception paths.
pub fn emergency_write(args: fmt::Arguments<'_>) {
    if HELD.is_locked() {
        // SAFETY: only on the way out (panic, exception) on the single CPU, when
        // the holder can never run again.
        unsafe { HELD.force_unlock() };
    }
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
