//! The console shell: prompt, line editing, dispatch, and the background work
//! that runs while it waits for input.

mod basic;
mod bench;
mod cmm;
mod hv;
mod out;
mod report;
mod vio;

use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::vec::Vec;
use kernel::text::{LineEditor, LineEvent};

use crate::console::{self, hvterm};
use crate::sys::System;
use crate::{print, println};

/// What a command returns: `Ok` prints `ok`, `Err(reason)` prints `error: reason`.
pub type CmdResult = Result<(), String>;

/// One shell command.
pub struct Command {
    /// The first word.
    pub name: &'static str,
    /// Usage and one-line description for `help`.
    pub help: &'static str,
    /// The handler; `args` excludes the command name.
    pub run: fn(&mut System, &[&str]) -> CmdResult,
}

/// Every command, in `help` order.
fn commands() -> Vec<&'static [Command]> {
    alloc::vec![
        basic::COMMANDS,
        cmm::COMMANDS,
        hv::COMMANDS,
        vio::COMMANDS,
        report::COMMANDS,
        bench::COMMANDS
    ]
}

/// Finds a command by name.
fn lookup(name: &str) -> Option<&'static Command> {
    commands().into_iter().flatten().find(|c| c.name == name)
}

/// Runs the command `words` (name first) and returns its result, without the
/// status line.
pub fn run_words(sys: &mut System, words: &[&str]) -> CmdResult {
    let Some((&name, args)) = words.split_first() else {
        return Err(alloc::string::String::from("no command"));
    };
    match lookup(name) {
        Some(c) => (c.run)(sys, args),
        None => Err(alloc::format!("unknown command `{name}` (try `help`)")),
    }
}

/// Runs one command line and prints its status line.
pub fn execute(sys: &mut System, line: &str) {
    let words: Vec<&str> = line.split_ascii_whitespace().collect();
    if words.is_empty() {
        return;
    }
    match run_words(sys, &words) {
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
