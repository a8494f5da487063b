//! Commands every build has: help, version, meminfo, devtree, sleep, echo,
//! poweroff, panic.

use alloc::string::ToString;

use kernel::shell::{Command, FaultKind};

use kernel::devtree::report::{write_dump, write_facts};
use kernel::meminfo::{write_meminfo, HeapUsage};
use kernel::shutdown::{loans_on_exit, Exit, LoanReturn};

use super::out::emit;
use super::CmdResult;
use crate::arch::fault;
use crate::sys::System;
use crate::{clock, exit, println};
use hcall::Simulation;

/// `help`: one line per command, generated from the command table.
pub fn help() -> CmdResult {
    for line in kernel::shell::help_lines() {
        println!("{line}");
    }
    Ok(())
}

/// `version`: name, version, target, boot mode, hypervisor backend, CPUs,
/// RTAS, MMU and RMA, written by `kernel::version` from the facts gathered here.
pub fn version(sys: &mut System) -> CmdResult {
    let rma = crate::glue::rma::current();
    let facts = kernel::version::Facts {
        version: env!("CARGO_PKG_VERSION"),
        target: TARGET,
        endian: hcall::endian::ByteOrder::NATIVE.name(),
        boot_mode: sys.boot_mode.name(),
        hypervisor: sys.hv.kind().name(),
        free_page_reporting: sys.reporting_on(),
        cpus_online: crate::percpu::online(),
        cpus_present: crate::percpu::present(),
        rtas: crate::rtas::version_facts(),
        mmu: crate::glue::mmu::version_facts(),
        rma_bytes: rma.size,
        rma_firmware_bytes: rma.firmware_size,
    };
    emit(|w| kernel::version::write_version(w, &facts))
}

#[cfg(target_endian = "big")]
const TARGET: &str = "powerpc64-unknown-linux-gnu";
#[cfg(target_endian = "little")]
const TARGET: &str = "powerpc64le-unknown-linux-gnu";

/// `meminfo`: `/proc/meminfo`-style rows.
pub fn meminfo(sys: &mut System) -> CmdResult {
    let (used, free) = crate::heap::usage();
    let heap = HeapUsage { used, free };
    // Frames free in the CPUs' caches are free memory (the table counts them used).
    emit(|w| write_meminfo(w, &sys.mm.meminfo_with(sys.cached_free()), heap))
}

/// `devtree [dump]`: the platform facts, or the blob as hex lines.
pub fn devtree(sys: &mut System, dump: bool) -> CmdResult {
    if dump {
        emit(|w| write_dump(w, &sys.fdt_blob))
    } else {
        emit(|w| write_facts(w, &sys.platform, sys.fdt_blob.len()))
    }
}

/// `sleep <ms>`: runs background work for `ms` milliseconds.
pub fn sleep(sys: &mut System, ms: u64) -> CmdResult {
    let start = clock::now_us();
    let r = sys.sleep_ms(ms);
    println!("slept_ms: {}", (clock::now_us() - start) / 1000);
    r.map_err(|e| e.to_string())
}

/// `echo <words>`.
pub fn echo(words: &[&str]) -> CmdResult {
    println!("{}", words.join(" "));
    Ok(())
}

/// `poweroff`: every loaned page goes back to the hypervisor first (as Linux's CMM
/// does from its reboot notifier, so the next boot starts with all its memory),
/// then RTAS power-off.
pub fn poweroff(sys: &mut System) -> CmdResult {
    let loaned = sys.mm.stats().loaned_pages;
    let left = match loans_on_exit(Exit::PowerOff, sys.hv.kind(), loaned) {
        LoanReturn::Balloon => sys.mm.return_all(&mut sys.hv, &mut sys.mem),
        LoanReturn::EachPage | LoanReturn::Nothing => loaned,
    };
    log::info!(
        "cmm: {} loaned pages returned before power-off",
        loaned.saturating_sub(left)
    );
    if left > 0 {
        log::warn!("cmm: {left} pages still loaned at power-off (the hypervisor refused them)");
    }
    exit::power_off()
}

/// `panic`: a deliberate panic.
pub fn panic() -> CmdResult {
    panic!("deliberate panic from the console")
}

/// `fault program|loaned|unmapped`: a deliberate fault.
pub fn fault(sys: &mut System, kind: FaultKind) -> CmdResult {
    match kind {
        FaultKind::Loaned => {
            // A deliberate broken promise, for testing poison mode: one word into
            // the first loaned page, as buggy code using a loaned page would.
            let addr = fault::write_first_loaned(sys.mm.frames())
                .ok_or_else(|| "no page is loaned".to_string())?;
            println!("addr: {addr:#x}");
            Ok(())
        }
        FaultKind::Unmapped => {
            // An address beyond RAM: with translation off, the real-mode check
            // stops the kernel naming it and the path.
            let top = sys
                .platform
                .memory
                .iter()
                .map(|m| m.base.saturating_add(m.size))
                .max()
                .unwrap_or(0);
            let addr = fault::above_ram(top);
            println!("addr: {addr:#x}");
            let v = fault::read_above_ram(top);
            Err(alloc::format!("read {v:#x} at {addr:#x} without a fault"))
        }
        FaultKind::Program => {
            fault::program_interrupt();
            Err("the trap returned".to_string())
        }
    }
}

/// `time <command...>`: runs `inner` and prints how long it took.
pub fn time(sys: &mut System, inner: Command<'_>) -> CmdResult {
    let t0 = clock::ticks();
    let r = super::run_command(sys, inner);
    println!("elapsed_us: {}", clock::ticks_to_us(clock::ticks() - t0));
    r
}
