//! The console shell: prompt, line editing, and running the typed commands that
//! [`kernel::shell`] parses (the command table, usage strings and `help` live there;
//! a new command gets its row there and its arm in [`run_command`] here), and the
//! background work that runs while it waits for input.

mod basic;
mod bench;
mod cmm;
mod cpu;
mod hv;
mod out;
mod report;
mod vio;

use alloc::string::{String, ToString};
use kernel::shell::{self, Command};
use kernel::text::input::CTRL_C;
use kernel::text::{LineEditor, LineEvent};

use crate::console;
use crate::println;
use crate::sys::System;

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
        Command::Poweroff => basic::poweroff(sys),
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
        Command::Cpu => cpu::cpu(sys),
        Command::Busy { cpus, ms } => {
            let n = crate::smp::busy(usize::try_from(cpus).unwrap_or(usize::MAX), ms)?;
            crate::println!("busy_cpus: {n}");
            Ok(())
        }
        Command::Stress { ms, cpus } => crate::glue::stress::stress(sys, ms, cpus),
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

/// The prompt.
const PROMPT: &str = "cmm> ";

/// Reads lines forever; while no input waits, the kernel idles (background work
/// when due, then H_CEDE until the next deadline or interrupt: see `wait`).
///
/// Input arrives in the console's ring (by the vty's interrupt, or a timed poll)
/// and is fed to the line editor byte by byte, so input typed ahead (even many
/// commands at once) is answered in order. A log line printed while the prompt is
/// shown is followed by the prompt and the half-typed line again.
pub fn run(sys: &mut System) -> ! {
    let mut editor = LineEditor::new();
    let mut prompted = false;
    loop {
        if !prompted {
            console::show_prompt(PROMPT);
            prompted = true;
        }
        let Some(b) = console::input::pop() else {
            sys.idle(true);
            continue;
        };
        if b == CTRL_C {
            // Ctrl-C at the prompt drops the half-typed line; after a command it
            // interrupted, there is none and it is simply swallowed.
            if !editor.is_clear() {
                editor = LineEditor::new();
                console::prompt_done();
                console::write_bytes(b"^C\n");
                prompted = false;
            }
            continue;
        }
        let ended = match editor.feed(b) {
            LineEvent::None => None,
            LineEvent::Echo(s) => {
                console::write_bytes(s);
                console::set_typed(editor.pending());
                None
            }
            LineEvent::EchoByte(c) => {
                console::write_bytes(&[c]);
                console::set_typed(editor.pending());
                None
            }
            LineEvent::Line(l) => Some(Ok(l)),
            LineEvent::TooLong => Some(Err("line too long")),
            LineEvent::Junk => Some(Err("NUL byte in line (line discarded)")),
        };
        if let Some(line) = ended {
            console::prompt_done();
            console::write_bytes(b"\n");
            match line {
                Ok(l) if l.trim().is_empty() => {}
                Ok(l) => execute(sys, &l),
                Err(why) => println!("error: {why}"),
            }
            prompted = false;
        }
    }
}
