//! Balloon commands: `cmm`, `cmm set`, `cmm reset-oom`, `cmm wait`, the workload
//! (`alloc`, `free`, `verify`) and `trace`.

use alloc::format;
use alloc::string::{String, ToString};
use cmm::Workload;

use super::out::{emit, number, pages};
use super::{CmdResult, Command};
use crate::sys::System;
use crate::{clock, println};

/// The balloon commands.
pub static COMMANDS: &[Command] = &[
    Command { name: "cmm", help: "cmm [set <param> <value> | reset-oom | wait [<ms>]]: balloon parameters and statistics", run: cmm },
    Command { name: "alloc", help: "alloc <size> [cache]: allocate workload pages filled with a pattern (runs the OOM path when memory runs out)", run: alloc },
    Command { name: "free", help: "free <size>|all [cache]: free workload pages", run: free },
    Command { name: "verify", help: "verify: check every workload page (and, with poison on, every loaned page)", run: verify },
    Command { name: "trace", help: "trace on|off: print a trace line after every balloon round", run: trace },
];

fn cmm(sys: &mut System, args: &[&str]) -> CmdResult {
    match args {
        [] => emit(|w| cmm::render::write_cmm_rows(w, &sys.mm)),
        ["set", param, value] => {
            let (_, short) = sys
                .mm
                .set_param(param, value, &mut sys.hv, &mut sys.mem)
                .map_err(|e| e.to_string())?;
            if let Some(why) = short {
                println!("shortfall: {why}");
            }
            Ok(())
        }
        ["reset-oom"] => {
            sys.mm.reset_oom();
            Ok(())
        }
        ["wait"] => wait(sys, 10_000),
        ["wait", ms] => {
            let ms = number("<ms>", ms)?;
            if ms > 3_600_000 {
                return Err("wait is limited to one hour".to_string());
            }
            wait(sys, ms)
        }
        _ => Err("usage: cmm [set <param> <value> | reset-oom | wait [<ms>]]".to_string()),
    }
}

/// Runs background work until the balloon has converged or `ms` have passed.
fn wait(sys: &mut System, ms: u64) -> CmdResult {
    let end = clock::now_us().saturating_add(ms.saturating_mul(1000));
    // At least one full round must happen after the wait starts, so a target set
    // just before is seen.
    let polls_at_start = sys.mm.stats().polls;
    let converged = loop {
        sys.background();
        if sys.mm.stats().polls >= polls_at_start + 2 && sys.mm.is_converged() {
            break true;
        }
        if clock::now_us() >= end {
            break false;
        }
    };
    let s = sys.mm.stats();
    println!("loaned_kb: {}", s.loaned_pages * 4);
    println!("loaned_target_kb: {}", s.loaned_target_pages * 4);
    if converged {
        Ok(())
    } else {
        Err("timeout".to_string())
    }
}

fn workload(kind: Option<&&str>) -> Result<Workload, String> {
    match kind {
        None => Ok(Workload::Working),
        Some(&"cache") => Ok(Workload::Cache),
        Some(other) => Err(format!("expected `cache`, got `{other}`")),
    }
}

fn alloc(sys: &mut System, args: &[&str]) -> CmdResult {
    let (size, rest) = args.split_first().ok_or("usage: alloc <size> [cache]")?;
    if rest.len() > 1 {
        return Err("usage: alloc <size> [cache]".to_string());
    }
    let kind = workload(rest.first())?;
    let n = pages("<size>", size)?;
    let got = sys
        .mm
        .alloc_workload(n, kind, &mut sys.hv, &mut sys.mem)
        .map_err(|e| e.to_string())?;
    println!("allocated_kb: {}", got * 4);
    Ok(())
}

fn free(sys: &mut System, args: &[&str]) -> CmdResult {
    let (size, rest) = args.split_first().ok_or("usage: free <size>|all [cache]")?;
    if rest.len() > 1 {
        return Err("usage: free <size>|all [cache]".to_string());
    }
    let kind = workload(rest.first())?;
    let n = match *size {
        "all" => None,
        s => Some(pages("<size>", s)?),
    };
    let freed = sys
        .mm
        .free_workload(n, kind, &mut sys.hv)
        .map_err(|e| e.to_string())?;
    println!("freed_kb: {}", freed * 4);
    Ok(())
}

fn verify(sys: &mut System, args: &[&str]) -> CmdResult {
    if !args.is_empty() {
        return Err("usage: verify".to_string());
    }
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

fn trace(sys: &mut System, args: &[&str]) -> CmdResult {
    sys.trace = match args {
        ["on"] => true,
        ["off"] => false,
        _ => return Err(String::from("usage: trace on|off")),
    };
    Ok(())
}
