//! VIO commands: `vio`, `vio map`, `vio unmap`, `vio tce`, `vio desired`,
//! `vio remove`, `vio probe`.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use cmm::vio::PageSource;
use hcall::Hypervisor;

use kernel::shell::{UnmapWhich, VioCommand};

use super::out::emit;
use super::CmdResult;
use crate::println;
use crate::sys::System;

/// Pages handed to a mapping: allocated beforehand from the frame allocator (with
/// hints and the OOM chain), so the VIO code never needs the hypervisor twice.
struct Pages {
    given: Vec<u64>,
    back: Vec<u64>,
}

impl PageSource for Pages {
    fn alloc_page(&mut self) -> Option<u64> {
        self.given.pop()
    }
    fn free_page(&mut self, addr: u64) {
        self.back.push(addr);
    }
}

/// Frees every page the VIO code handed back (or did not use).
fn give_back(sys: &mut System, p: Pages) {
    for addr in p.given.into_iter().chain(p.back) {
        if let Err(e) = sys.free_kernel_page(addr) {
            log::error!("vio: page {addr:#x} could not be freed: {e}");
        }
    }
}

/// `vio [map ... | unmap ... | tce ... | desired ... | remove ... | probe ...]`.
pub fn vio(sys: &mut System, c: VioCommand<'_>) -> CmdResult {
    match c {
        VioCommand::Show => emit(|w| sys.vio.write_vio_rows(w)),
        VioCommand::Map { unit, bytes } => map(sys, unit, bytes),
        VioCommand::Unmap { unit, which } => unmap(sys, unit, which),
        VioCommand::Tce { unit, id } => tce(sys, unit, id),
        VioCommand::Desired { unit, bytes } => {
            let unit = sys.vio.resolve(unit).map_err(|e| e.to_string())?;
            sys.vio.set_desired(unit, bytes).map_err(|e| e.to_string())
        }
        VioCommand::Remove { unit } => {
            let unit = sys.vio.resolve(unit).map_err(|e| e.to_string())?;
            sys.vio.remove(unit).map_err(|e| e.to_string())
        }
        VioCommand::Probe { unit } => {
            let unit = sys.vio.resolve(unit).map_err(|e| e.to_string())?;
            sys.vio.probe(unit, None).map_err(|e| e.to_string())
        }
    }
}

fn map(sys: &mut System, unit: &str, bytes: u64) -> CmdResult {
    let unit = sys.vio.resolve(unit).map_err(|e| e.to_string())?;
    // Pages are taken only when the charge can succeed; otherwise the mapping
    // fails inside the VIO code (and counts) without touching memory.
    let mut src = Pages {
        given: Vec::new(),
        back: Vec::new(),
    };
    for _ in 0..sys.vio.pages_for_map(unit, bytes) {
        match sys.alloc_kernel_page() {
            Some(a) => src.given.push(a),
            None => break,
        }
    }
    let r = sys.vio.map(&mut sys.hv, &mut src, unit, bytes);
    give_back(sys, src);
    let id = r.map_err(|e| e.to_string())?;
    println!("id: {id}");
    Ok(())
}

fn unmap(sys: &mut System, unit: &str, which: UnmapWhich) -> CmdResult {
    let unit = sys.vio.resolve(unit).map_err(|e| e.to_string())?;
    let mut back = Pages {
        given: Vec::new(),
        back: Vec::new(),
    };
    let r = match which {
        UnmapWhich::All => sys
            .vio
            .unmap_all(&mut sys.hv, &mut back, unit)
            .map(|n| n as u64),
        UnmapWhich::One(id) => sys.vio.unmap(&mut sys.hv, &mut back, unit, id).map(|()| 1),
    };
    give_back(sys, back);
    let n = r.map_err(|e| e.to_string())?;
    println!("unmapped: {n}");
    Ok(())
}

fn tce(sys: &mut System, unit: &str, id: u64) -> CmdResult {
    let unit = sys.vio.resolve(unit).map_err(|e| e.to_string())?;
    let m = sys
        .vio
        .mappings()
        .find(|m| m.id == id && m.unit == unit)
        .cloned()
        .ok_or_else(|| format!("no mapping {id} on {unit:x}"))?;
    let liobn = sys
        .vio
        .device(unit)
        .ok()
        .and_then(|d| d.dma_window)
        .map(|w| w.liobn)
        .ok_or_else(|| String::from("device has no DMA window"))?;
    let mut mismatches = 0u64;
    for ((ioba, want), page) in m.tces().zip(&m.pages) {
        let got = sys.hv.get_tce(liobn, ioba).map_err(|e| e.to_string())?;
        mismatches += u64::from(got != want);
        println!("tce: ioba={ioba:#x} value={got:#x} page={page:#x}");
    }
    println!("pages: {}", m.pages.len());
    println!("mismatches: {mismatches}");
    Ok(())
}
