//! Translation on (`docs/hash-mmu.md`): the hash page table filled through the
//! hypervisor with a bolted linear map of all RAM (effective = real address),
//! MMIO ranges mapped cache-inhibited and guarded, the SLB loaded, IR and DR
//! set. The decisions (geometry, entries, hashes, segments) are in
//! [`kernel::mmu`]; this file makes the hcalls and moves the registers.
//!
//! Interrupts arrive in real mode: `exception_common` ORs
//! [`EXCEPTION_MSR_BITS`] into the MSR before it touches anything outside the
//! RMA, so handlers run with translation on once it is on.

use alloc::vec::Vec;
use core::arch::asm;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use hcall::mmu::RawHpte;
use hcall::raw::sc1::Sc1;
use kernel::devtree::{Fdt, MemRange};
use kernel::mmu::cpu::CpuMmu;
use kernel::mmu::fault::{classify, Report, Storage};
use kernel::mmu::lazy::{boot_ranges, LazyMap, Touch, BOOT_MAPPED};
use kernel::mmu::linear::{enter_page, enter_range, Geometry, MapStats, PageTable};
use kernel::mmu::slb::{segments_covering, SlbEntry};
use kernel::mmu::sweep::{self, HashTable};
use kernel::mmu::{Hpte, HpteR, Vsid};
use spin::Mutex;

/// MSR[IR] | MSR[DR].
const MSR_IR_DR: u64 = crate::arch::trap::Msr::IR.bits() | crate::arch::trap::Msr::DR.bits();

/// What `exception_common` ORs into the MSR: 0 until translation is on.
#[no_mangle]
pub static EXCEPTION_MSR_BITS: AtomicU64 = AtomicU64::new(0);

static ON: AtomicBool = AtomicBool::new(false);

/// The state after [`init`].
struct State {
    geometry: Geometry,
    ram: Vec<MemRange>,
    mmio: Vec<(u64, u64)>,
    segments: Vec<u64>,
    slb_size: u32,
    stats: MapStats,
}

static STATE: Mutex<Option<State>> = Mutex::new(None);

/// The pages of RAM entered after boot (`kernel::mmu::lazy`), with the
/// geometry to enter them. The data storage handler takes this lock: nothing
/// that holds it touches a page that is not entered (it lives in the heap, in
/// the boot part), so the handler never finds it held by the code it
/// interrupted.
struct Lazy {
    geometry: Geometry,
    map: LazyMap,
    /// Pages entered by a fault, and by the background walk.
    on_fault: u64,
    in_background: u64,
    batch: Vec<u64>,
    /// The walk is through (logged once).
    complete: bool,
}

static LAZY: Mutex<Option<Lazy>> = Mutex::new(None);

/// DSISR: the page has no translation.
const DSISR_NO_TRANSLATION: u64 = 0x4000_0000;

/// The hashed page table through the hypervisor.
struct Hpt(Sc1);

impl PageTable for Hpt {
    fn enter(&mut self, ptex: u64, hpte: Hpte) -> Result<u64, i64> {
        let e = RawHpte {
            v: hpte.v,
            r: hpte.r,
        };
        // SAFETY: the kernel only enters the linear map (each RAM page at its own
        // real address) and MMIO ranges it owns at their own addresses; an
        // effective address never means anything else, so no translation the
        // kernel relies on changes.
        unsafe { hcall::mmu::enter(&mut self.0, ptex, e) }.map_err(|e| e.status.to_raw())
    }
}

impl HashTable for Hpt {
    fn read4(&mut self, ptex: u64) -> Result<[u64; 4], i64> {
        hcall::mmu::read4(&mut self.0, ptex)
            .map(|es| es.map(|e| e.v))
            .map_err(|e| e.status.to_raw())
    }
    fn remove(&mut self, ptex: u64) -> Result<(), i64> {
        // SAFETY: called by the sweep only, before translation is on: the kernel
        // runs in real mode and relies on no entry of the table.
        unsafe { hcall::mmu::remove(&mut self.0, ptex) }
            .map(|_| ())
            .map_err(|e| e.status.to_raw())
    }
}

/// Whether translation is on.
pub fn is_on() -> bool {
    ON.load(Ordering::Relaxed)
}

/// `version`'s MMU facts; `None` while translation is off (or its state is busy).
pub fn version_facts() -> Option<kernel::version::MmuFacts> {
    let state = STATE.try_lock();
    let s = state.as_deref()?.as_ref().filter(|_| is_on())?;
    let lazy = LAZY.try_lock().and_then(|l| {
        l.as_ref().map(|l| kernel::version::LazyFacts {
            pages: l.map.pages(),
            pending: l.map.pending(),
            on_fault: l.on_fault,
            in_background: l.in_background,
        })
    });
    Some(kernel::version::MmuFacts {
        lazy,
        page_kib: s.geometry.page.bytes() >> 10,
        segment: s.geometry.segment.name(),
        entries: s.stats.total(),
        secondary: s.stats.secondary,
        segments: s.segments.len(),
        slb_size: s.slb_size,
        pft_shift: s.geometry.pft_shift,
    })
}

fn slb_load(segments: &[u64], g: &Geometry, slb_size: u32) -> Result<(), alloc::string::String> {
    if segments.len() > slb_size as usize {
        return Err(alloc::format!(
            "{} segments needed, the SLB has {slb_size} entries",
            segments.len()
        ));
    }
    for (slot, &esid) in segments.iter().enumerate() {
        let vsid = Vsid::for_esid(esid).ok_or("segment beyond the kernel's VSIDs")?;
        let e = SlbEntry::new(g.segment, esid, vsid, g.slb_enc, slot as u32)
            .ok_or("SLB slot out of range")?;
        // SAFETY: slbmte only loads an SLB entry; entries for the identity map
        // of RAM and mapped MMIO change no translation the kernel relies on
        // (the kernel runs with translation off until `init` sets IR/DR, and
        // segments are only ever added).
        unsafe {
            asm!("slbmte {rs}, {rb}", "isync", rs = in(reg) e.vsid_data, rb = in(reg) e.esid_data, options(nostack));
        }
    }
    Ok(())
}

/// Sets MSR[IR|DR] on the calling CPU.
///
/// # Safety
/// Every RAM address must be mapped at itself (effective = real) and its
/// segment must be in this CPU's SLB, so that the next instruction, the stack
/// and all data are found at the same addresses with translation on.
unsafe fn translation_on() {
    // SAFETY: the caller guarantees the identity map and the SLB.
    unsafe {
        asm!(
            "mfmsr {t}",
            "ori {t}, {t}, {ir_dr}",
            "mtmsrd {t}",
            "isync",
            t = out(reg) _,
            ir_dr = const MSR_IR_DR,
            options(nostack)
        );
    }
}

/// Maps all RAM, loads the SLB and turns translation on. On failure nothing is
/// turned on (the kernel keeps running in real mode, inside the RMA).
pub fn init(fdt: &Fdt<'_>, ram: &[MemRange]) -> Result<(), alloc::string::String> {
    let cpu = CpuMmu::from_fdt(fdt)?;
    let g = cpu.geometry();
    let mut raw = Sc1::new();
    if kernel::mmu::cpu::registers_process_table(crate::arch::cpu::pvr()) {
        match hcall::mmu::register_hash_with_segments(&mut raw) {
            Ok(()) => log::info!("H_REGISTER_PROC_TBL: hash MMU with segments"),
            Err(e) => log::warn!("{e}: carrying on with hash"),
        }
    }
    let mut pt = Hpt(raw);
    let swept = sweep::sweep(&mut pt, sweep::entries_of(g.pft_shift));
    if swept.read_unsupported {
        log::info!("page table not swept: H_READ is not offered (H_FUNCTION)");
    } else {
        log::info!(
            "page table swept: {} entries, {} stale removed, {} VRMA kept",
            swept.entries,
            swept.removed,
            swept.vrma
        );
    }
    if let Some(r) = swept.first_refusal.filter(|_| !swept.read_unsupported) {
        log::warn!(
            "page table sweep: {} groups unread, {} stale entries left; first: {} of entry {} answered {}",
            swept.unread_groups,
            swept.not_removed,
            r.call,
            r.ptex,
            r.status
        );
    }
    let mut stats = MapStats::default();
    let page = g.page.bytes();
    // All of RAM (page-aligned), of which only the boot part is entered now;
    // the rest waits for its first touch or the background walk.
    let mapped = boot_ranges(ram, page, u64::MAX);
    for m in boot_ranges(ram, page, BOOT_MAPPED) {
        enter_range(&mut pt, &g, m.base, m.size, HpteR::RAM, &mut stats)
            .map_err(|e| alloc::format!("linear map: {e}"))?;
    }
    let lazy = LazyMap::new(ram, page, BOOT_MAPPED);
    let ranges: Vec<(u64, u64)> = mapped.iter().map(|m| (m.base, m.size)).collect();
    let segments = segments_covering(g.segment, &ranges);
    // SAFETY: slbia invalidates the SLB; translation is still off, so nothing
    // depends on it.
    unsafe { asm!("slbia", "isync", options(nostack)) };
    slb_load(&segments, &g, cpu.slb_size)?;
    // SAFETY: every RAM address is mapped at itself and its segment is in the SLB.
    unsafe { translation_on() };
    EXCEPTION_MSR_BITS.store(MSR_IR_DR, Ordering::SeqCst);
    ON.store(true, Ordering::SeqCst);
    log::info!(
        "translation on: {} {}K pages bolted ({} through the secondary hash), {} more on first touch or in the background, {} segments of {}, page table 2^{} bytes",
        stats.total(),
        page >> 10,
        stats.secondary,
        lazy.pages(),
        segments.len(),
        g.segment.name(),
        g.pft_shift
    );
    let complete = lazy.pages() == 0;
    *LAZY.lock() = Some(Lazy {
        geometry: g,
        map: lazy,
        on_fault: 0,
        in_background: 0,
        batch: Vec::new(),
        complete,
    });
    *STATE.lock() = Some(State {
        geometry: g,
        ram: mapped,
        mmio: Vec::new(),
        segments,
        slb_size: cpu.slb_size,
        stats,
    });
    Ok(())
}

/// Gives a CPU that just started (in real mode) the boot CPU's translation:
/// the hash table is the partition's (registered once by the boot CPU), so
/// only its own SLB needs loading with the same segments before IR/DR go on.
/// Without translation it does nothing.
pub fn start_secondary() -> Result<(), alloc::string::String> {
    if !is_on() {
        return Ok(());
    }
    let (segments, g, slb_size) = {
        let guard = STATE.lock();
        let s = guard.as_ref().ok_or("no MMU state")?;
        (s.segments.clone(), s.geometry, s.slb_size)
    };
    // SAFETY: this CPU runs in real mode: its SLB is not used yet.
    unsafe { asm!("slbia", "isync", options(nostack)) };
    slb_load(&segments, &g, slb_size)?;
    // SAFETY: as in `init`: every RAM address is mapped at itself and its
    // segment is now in this CPU's SLB.
    unsafe { translation_on() };
    Ok(())
}

/// Maps `[base, base + size)` cache-inhibited and guarded (MMIO), adding its
/// segment to the SLB if needed. Call before the other CPUs start: only the
/// calling CPU's SLB gets the new segment (the others load the list when they
/// start). Without translation it only records the
/// range (for fault reports).
pub fn map_io(base: u64, size: u64) -> Result<(), alloc::string::String> {
    let mut guard = STATE.lock();
    let Some(s) = guard.as_mut() else {
        return Ok(());
    };
    let page = s.geometry.page.bytes();
    let start = base & !(page - 1);
    let end = base
        .checked_add(size)
        .and_then(|e| e.checked_add(page - 1))
        .ok_or("MMIO range overflows")?
        & !(page - 1);
    let mut pt = Hpt(Sc1::new());
    let g = s.geometry;
    enter_range(&mut pt, &g, start, end - start, HpteR::MMIO, &mut s.stats)
        .map_err(|e| alloc::format!("MMIO map: {e}"))?;
    let mut segs = s.segments.clone();
    for esid in segments_covering(g.segment, &[(start, end - start)]) {
        if !segs.contains(&esid) {
            segs.push(esid);
        }
    }
    if segs.len() != s.segments.len() {
        slb_load(&segs, &g, s.slb_size)?;
        s.segments = segs;
    }
    s.mmio.push((start, end - start));
    log::info!("mapped MMIO {start:#x}..{end:#x} cache-inhibited and guarded");
    Ok(())
}

/// DAR and DSISR, as the data storage interrupt left them.
pub fn fault_registers() -> (u64, u64) {
    let (dar, dsisr): (u64, u64);
    // SAFETY: mfdar and mfdsisr only read the two registers.
    unsafe {
        asm!("mfdar {0}", "mfdsisr {1}", out(reg) dar, out(reg) dsisr, options(nomem, nostack));
    }
    (dar, dsisr)
}

/// The data storage handler's part: if `dar` is a RAM page not entered yet
/// (DSISR says no translation), enters it and returns true (the access is
/// retried); false for a real fault.
pub fn enter_on_fault(dar: u64, dsisr: u64) -> bool {
    if dsisr & DSISR_NO_TRANSLATION == 0 || !is_on() {
        return false;
    }
    let mut guard = LAZY.lock();
    let Some(l) = guard.as_mut() else {
        return false;
    };
    let page = match l.map.on_fault(dar) {
        Touch::Enter(page) => page,
        Touch::Entered => return true,
        Touch::Fault => return false,
    };
    let mut stats = MapStats::default();
    let g = l.geometry;
    if enter_page(&mut Hpt(Sc1::new()), &g, page, HpteR::RAM, &mut stats).is_err() {
        return false;
    }
    l.map.mark_entered(page);
    l.on_fault += 1;
    true
}

/// Background work: enters up to `max` more pages of the linear map; true
/// while some are left.
pub fn enter_pending(max: usize) -> bool {
    let mut guard = LAZY.lock();
    let Some(l) = guard.as_mut() else {
        return false;
    };
    if l.complete {
        return false;
    }
    let mut batch = core::mem::take(&mut l.batch);
    l.map.next_pending(max, &mut batch);
    let g = l.geometry;
    let mut pt = Hpt(Sc1::new());
    let mut stats = MapStats::default();
    for &page in &batch {
        match enter_page(&mut pt, &g, page, HpteR::RAM, &mut stats) {
            Ok(()) => {
                l.map.mark_entered(page);
                l.in_background += 1;
            }
            Err(e) => {
                log::error!("linear map: {e}; the page is entered on its first touch");
            }
        }
    }
    let done = batch.is_empty() || l.map.pending() == 0;
    l.batch = batch;
    if done {
        l.complete = true;
        log::info!(
            "linear map complete: {} pages after boot ({} on first touch)",
            l.map.pages(),
            l.on_fault
        );
    }
    !done
}

/// Prints the storage-fault report (`kernel::mmu::fault::Report`): what the
/// faulting address is, asked of the linear map and the frame table's loaned view.
pub fn report_storage_fault(storage: Storage, srr0: u64, srr1: u64, dar: u64, dsisr: u64) {
    let addr = storage.address(srr0, dar);
    let kind = STATE.try_lock().as_deref().and_then(|s| {
        let s = s.as_ref()?;
        Some(classify(addr, &s.ram, &s.mmio, |pfn| {
            crate::mem::loaned_view().is_some_and(|v| v.is_loaned(pfn))
        }))
    });
    let report = Report {
        storage,
        srr0,
        srr1,
        dar,
        dsisr,
        kind,
    };
    crate::console::emergency_write(format_args!("{report}\n"));
}
