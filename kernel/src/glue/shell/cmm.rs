//! Balloon commands: `cmm`, `cmm set`, `cmm reset-oom`, `cmm wait`, the workload
//! (`alloc`, `free`, `verify`) and `trace`.

use alloc::format;
use alloc::string::ToString;
use cmm::percpu::OnCpu;
use cmm::Workload;
use kernel::shell::CmmCommand;

use super::out::emit;
use super::CmdResult;
use crate::sys::System;
use crate::{clock, println};

/// `cmm [set <param> <value> | reset-oom | wait [<ms>]]`.
pub fn cmm(sys: &mut System, c: CmmCommand<'_>) -> CmdResult {
    match c {
        CmmCommand::Show => {
            emit(|w| cmm::render::write_cmm_rows(w, &sys.mm))?;
            // Of the used pages, those free in the CPUs' frame caches.
            println!("percpu_cached_pages: {}", sys.cached_free());
            Ok(())
        }
        CmmCommand::Set { param, value } => {
            let (_, short) = sys
                .mm
                .set_param(param, value, &mut sys.hv, &mut sys.mem)
                .map_err(|e| e.to_string())?;
            if let Some(why) = short {
                println!("shortfall: {why}");
            }
            Ok(())
        }
        CmmCommand::ResetOom => {
            sys.mm.reset_oom();
            Ok(())
        }
        CmmCommand::Wait { ms } => wait(sys, ms),
    }
}

/// Runs background work until the balloon has converged or `ms` have passed.
fn wait(sys: &mut System, ms: u64) -> CmdResult {
    let end = kernel::timer::after_ms(clock::ticks(), ms, clock::hz());
    let polls_at_start = sys.mm.stats().polls;
    let converged = sys
        .wait_until(end, |sys| {
            sys.background();
            sys.mm.converged_since(polls_at_start)
        })
        .map_err(|e| e.to_string())?;
    let s = sys.mm.stats();
    println!("loaned_kb: {}", s.loaned_pages * 4);
    println!("loaned_target_kb: {}", s.loaned_target_pages * 4);
    if converged {
        Ok(())
    } else {
        Err("timeout".to_string())
    }
}

/// `alloc <size> [cache]`.
pub fn alloc(sys: &mut System, n: u64, kind: Workload) -> CmdResult {
    let cpu = OnCpu {
        caches: &mut sys.caches,
        me: crate::percpu::current(),
    };
    let got = sys
        .mm
        .alloc_workload_cached(n, kind, cpu, &mut sys.hv, &mut sys.mem, &mut || {
            crate::console::input::interrupt_pending()
        })
        .map_err(|e| e.to_string())?;
    println!("allocated_kb: {}", got * 4);
    Ok(())
}

/// `free <size>|all [cache]`: `n` pages, or all of them.
pub fn free(sys: &mut System, n: Option<u64>, kind: Workload) -> CmdResult {
    let cpu = OnCpu {
        caches: &mut sys.caches,
        me: crate::percpu::current(),
    };
    let freed = sys
        .mm
        .free_workload_cached(n, kind, cpu, &mut sys.hv)
        .map_err(|e| e.to_string())?;
    println!("freed_kb: {}", freed * 4);
    Ok(())
}

/// `verify`.
pub fn verify(sys: &mut System) -> CmdResult {
    let r = sys.mm.verify(&mut sys.hv, &sys.mem);
    println!("verified_pages: {}", r.verified_pages);
    println!("corrupt_pages: {}", r.corrupt_pages);
    println!("poisoned_corrupt: {}", r.poisoned_corrupt);
    if r.corrupt_pages == 0 {
        Ok(())
    } else {
        Err(format!("{} corrupt pages", r.corrupt_pages))
    }
}

/// `trace on|off`.
pub fn trace(sys: &mut System, on: bool) -> CmdResult {
    sys.trace = on;
    Ok(())
}
