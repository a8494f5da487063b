//! Reports in the formats other tools read: `amsstat` (powerpc-utils' layout) and
//! `sysfs` (one `path=value` line per file amsstat reads on Linux).

use cmm::amsstat::{write_sysfs_tree, Amsstat};

use super::out::emit;
use super::CmdResult;
use crate::clock;
use crate::sys::System;

/// `amsstat`: gathers the lparcfg figures (H_GET_MPP through the retry policy)
/// and the uptime; the report is assembled by [`cmm::amsstat`].
pub fn amsstat(sys: &mut System) -> CmdResult {
    let lparcfg = super::hv::lparcfg_data(sys);
    let report = Amsstat {
        uptime_us: clock::now_us(),
        mm: &sys.mm,
        lparcfg: &lparcfg,
        vio: &sys.vio,
    };
    emit(|w| report.write(w))
}

/// `sysfs`.
pub fn sysfs(sys: &mut System) -> CmdResult {
    emit(|w| write_sysfs_tree(w, &sys.mm, &sys.vio))
}
