//! The console shell: prompt, line editing, and running the typed commands that
//! [`kernel::shell`] parses (the command table, usage strings and `help` live there;
//! a new command gets its row there and its arm in [`run_command`] here), and the
//! background work that runs while it waits for input.

mod basic;
mod bench;
mod cmm;
mod hv;
mod out;
mod report;
mod vio;

use alloc::collections::VecDeque;
use alloc::string::{String, ToString};
use kernel::shell::{self, Command};
use kernel::text::{LineEditor, LineEvent};

use crate::console::{self, hvterm};
use crate::sys::System;
use crate::{print, println};

/// What a command returns: `Ok` prints `ok`, `Err(reason)` prints `error: reason`.
pub type CmdResult = Result<(), String>;

/// Runs one typed command (parsed by [`kernel::shell`]) and returns its result,
/// without the status line. A command added to the table gets its arm here.
pub fn run_command(sys: &mut System, cmd: Command<'_>) -> CmdResult {
    match cmd {
        Command::Help => basic::help(),
        Command::Version => basic::version(sys),
        Command::Meminfo => basic::meminfo(sys),
        Command::Devtree { dump } => basic::devtree(sys, dump),
        Command::Sleep { ms } => basic::sleep(sys, ms),
        Command::Echo(words) => basic::echo(&words),
        Command::Poweroff => basic::poweroff(),
        Command::Panic => basic::panic(),
        Command::Time(inner) => basic::time(sys, *inner),
        Command::Fault(kind) => basic::fault(sys, kind),
        Command::Cmm(c) => cmm::cmm(sys, c),
        Command::Alloc { pages, kind } => cmm::alloc(sys, pages, kind),
        Command::Free { pages, kind } => cmm::free(sys, pages, kind),
        Command::Verify => cmm::verify(sys),
        Command::Trace(on) => cmm::trace(sys, on),
        Command::Hv(c) => hv::hv(sys, &c),
        Command::Mpp(c) => hv::mpp(sys, c),
        Command::Lparcfg => hv::lparcfg(sys),
        Command::Vio(c) => vio::vio(sys, c),
        Command::Amsstat => report::amsstat(sys),
        Command::Sysfs => report::sysfs(sys),
        Command::Bench(c) => bench::bench(sys, c),
    }
}

/// Runs one command line and prints its status line (a blank line gets none).
pub fn execute(sys: &mut System, line: &str) {
    let Some(parsed) = shell::parse_line(line) else {
        return;
    };
    match parsed
        .map_err(|e| e.to_string())
        .and_then(|c| run_command(sys, c))
    {
        Ok(()) => println!("ok"),
        Err(e) => println!("error: {e}"),
    }
}

/// How long the idle loop waits between two empty polls of the console.
const IDLE_POLL_US: u64 = 200;

/// Reads lines forever, running background work while waiting for input.
///
/// Bytes are taken from the vty 16 at a time into a queue and fed to the line
/// editor one by one, so input typed ahead (even many commands at once) is
/// answered in order. Log lines produced while a line is half typed are held
/// back until it ends, so they never split a command's echo.
pub fn run(sys: &mut System) -> ! {
    let mut editor = LineEditor::new();
    let mut input: VecDeque<u8> = VecDeque::new();
    let unit = console::unit();
    let mut prompted = false;
    let mut typing = false;
    loop {
        if !prompted {
            print!("cmm> ");
            prompted = true;
        }
        let Some(b) = input.pop_front() else {
            let mut buf = [0u8; 16];
            let n = hvterm::get(unit, &mut buf);
            if n == 0 {
                sys.background();
                // Leave the hypervisor alone for a moment: under QEMU, an hcall
                // in a tight loop starves the thread that delivers console input.
                crate::clock::spin_us(IDLE_POLL_US);
            } else {
                input.extend(&buf[..n]);
            }
            continue;
        };
        let ended = match editor.feed(b) {
            LineEvent::None => None,
            LineEvent::Echo(s) => {
                console::write_bytes(s);
                None
            }
            LineEvent::EchoByte(c) => {
                if !typing {
                    typing = true;
                    console::hold_logs();
                }
                console::write_bytes(&[c]);
                None
            }
            LineEvent::Line(l) => Some(Ok(l)),
            LineEvent::TooLong => Some(Err(())),
        };
        if let Some(line) = ended {
            console::write_bytes(b"\n");
            typing = false;
            console::release_logs();
            match line {
                Ok(l) if l.trim().is_empty() => {}
                Ok(l) => execute(sys, &l),
                Err(()) => println!("error: line too long"),
            }
            prompted = false;
        }
    }
}
