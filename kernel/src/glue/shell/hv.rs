//! Hypervisor commands: `hv` (the pool model), `mpp`, `lparcfg`.

use alloc::string::{String, ToString};
use hcall::{Hypervisor, Lparcfg, MppData};
use powervm_sim::HvCommand;

use kernel::shell::MppCommand;

use super::out::emit;
use super::CmdResult;
use crate::println;
use crate::sys::System;

/// H_GET_MPP (under the retry policy, as every hcall).
pub fn get_mpp(sys: &mut System) -> Result<MppData, String> {
    sys.hv.get_mpp().map_err(|e| e.to_string())
}

/// `hv ...`: the parsed command goes to the pool model (through the backend).
pub fn hv(sys: &mut System, cmd: &HvCommand<'_>) -> CmdResult {
    let mut out = String::new();
    let r = sys.hv.inner_mut().model_command(cmd, &mut out);
    crate::print!("{out}");
    r?;
    if *cmd == HvCommand::Show {
        let runs = cmm::runs::WholeRuns::of_loaned(sys.mm.frames());
        emit(|w| runs.write_rows(w))?;
        let round = crate::sys::ROUND_NS.load(core::sync::atomic::Ordering::Relaxed);
        println!("balloon_round_ns: {round}");
    }
    Ok(())
}

/// `mpp [weight <0-255> | entitle <size>]`.
pub fn mpp(sys: &mut System, c: MppCommand) -> CmdResult {
    match c {
        MppCommand::Show => {
            let m = get_mpp(sys)?;
            emit(|w| m.write_rows(w))?;
            if let Ok(x) = sys.hv.get_mpp_x() {
                emit(|w| x.write_rows(w))?;
            }
            Ok(())
        }
        MppCommand::Weight(w) => {
            let cur = get_mpp(sys)?;
            let out = sys
                .hv
                .set_mpp(cur.entitled_mem, w)
                .map_err(|e| e.to_string())?;
            println!("outcome: {}", outcome(out));
            Ok(())
        }
        MppCommand::Entitle(bytes) => {
            let cur = get_mpp(sys)?;
            let out = sys
                .vio
                .set_entitlement(&mut sys.hv, bytes, cur.mem_weight)
                .map_err(|e| e.to_string())?;
            println!("outcome: {}", outcome(out));
            println!("entitled: {}", sys.vio.stats().entitled);
            Ok(())
        }
    }
}

fn outcome(o: hcall::SetMppOutcome) -> &'static str {
    match o {
        hcall::SetMppOutcome::Set => "set",
        hcall::SetMppOutcome::Constrained => "constrained",
    }
}

/// Gathers what lparcfg prints.
pub fn lparcfg_data(sys: &mut System) -> Lparcfg {
    let mpp = get_mpp(sys).ok();
    let mpp_x = if mpp.is_some() && sys.cmo.enabled() {
        sys.hv.get_mpp_x().ok()
    } else {
        None
    };
    Lparcfg {
        des_mem_mb: sys.des_mem_mb,
        mpp,
        mpp_x,
        cmo: Some(sys.cmo),
        faults: sys.cmo_faults(),
    }
}

/// `lparcfg`.
pub fn lparcfg(sys: &mut System) -> CmdResult {
    let data = lparcfg_data(sys);
    emit(|w| data.render(w))
}
