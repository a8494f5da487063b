//! Loaning one page and returning one page: the exact hcall sequences, and what
//! happens when a call fails.
//!
//! Loan: pick a free frame (whole 2 MiB blocks first); in poison mode fill it with
//! the poison pattern *before* it is marked Loaned (a loaned page must not be
//! touched afterwards); H_PAGE_INIT(Loaned); only on success set its loaned bit.
//! A failed Loaned call leaves the frame free and uncounted.
//!
//! Return: H_PAGE_INIT(Active) first. If that fails the frame stays loaned — still
//! marked Loaned to the hypervisor and in the loaned bitmap — and is retried by the
//! next round (Linux frees it anyway and may then use a page the hypervisor still
//! thinks is loaned: no page is lost and none is used while loaned here). Once
//! Active: check the poison pattern if the page was poisoned, zero it, clear the
//! loaned bit, put it on the free list and hint it Unused like any free frame
//! (best effort).

use hcall::{Hypervisor, PageState};

use crate::frames::FrameTable;
use crate::memory::{poison_seed, PageMemory};
use crate::stats::{CmmStats, Shortfall};
use crate::units::pfn_to_addr;

/// What a balloon operation works on.
pub(crate) struct Ctx<'a> {
    pub frames: &'a mut FrameTable,
    pub stats: &'a mut CmmStats,
    pub hv: &'a mut dyn Hypervisor,
    pub mem: &'a mut dyn PageMemory,
}

fn inc(c: &mut u64) {
    *c = c.saturating_add(1);
}

/// Loans one free frame. `Err` says why not (and nothing changed).
pub(crate) fn loan_one(ctx: &mut Ctx<'_>, poison: bool) -> Result<(), Shortfall> {
    let pfn = ctx.frames.pick_for_loan().ok_or(Shortfall::NoFreeFrame)?;
    let addr = pfn_to_addr(pfn);
    if poison {
        ctx.hv.note_access(addr);
        ctx.mem.fill(addr, poison_seed(addr));
    }
    if let Err(e) = ctx.hv.set_page_state(addr, PageState::Loaned) {
        inc(&mut ctx.stats.page_state_failures);
        inc(&mut ctx.stats.loan_failures);
        return Err(Shortfall::Loan(e));
    }
    if ctx.frames.mark_loaned(pfn).is_err() {
        // pick_for_loan only yields free frames; nothing to undo if it ever did not.
        return Err(Shortfall::NoFreeFrame);
    }
    ctx.frames.set_poisoned(pfn, poison);
    inc(&mut ctx.stats.loaned_pages);
    inc(&mut ctx.stats.pages_loaned_total);
    Ok(())
}

/// Returns one loaned frame; `Ok(false)` if nothing is loaned.
pub(crate) fn return_one(ctx: &mut Ctx<'_>) -> Result<bool, Shortfall> {
    let Some(pfn) = ctx.frames.pick_for_return() else {
        return Ok(false);
    };
    let addr = pfn_to_addr(pfn);
    if let Err(e) = ctx.hv.set_page_state(addr, PageState::Active) {
        inc(&mut ctx.stats.page_state_failures);
        inc(&mut ctx.stats.return_failures);
        return Err(Shortfall::Return(e));
    }
    ctx.hv.note_access(addr);
    if ctx.frames.is_poisoned(pfn) && !poison_intact(ctx.mem, addr) {
        inc(&mut ctx.stats.poison_errors);
    }
    ctx.mem.zero(addr);
    if ctx.frames.mark_returned(pfn).is_err() {
        return Ok(false);
    }
    ctx.stats.loaned_pages = ctx.stats.loaned_pages.saturating_sub(1);
    inc(&mut ctx.stats.pages_returned_total);
    if ctx.hv.set_page_state(addr, PageState::Unused).is_err() {
        inc(&mut ctx.stats.page_state_failures);
        inc(&mut ctx.stats.hint_failures);
    }
    Ok(true)
}

/// True if a poisoned page still holds its poison, or reads as zeros (the
/// hypervisor may drop a loaned page's contents; only other data means the guest
/// wrote to a page it had loaned).
pub(crate) fn poison_intact(mem: &dyn PageMemory, addr: u64) -> bool {
    mem.check(addr, poison_seed(addr)) || mem.is_zero(addr)
}

/// Loans up to `n` pages; stops at the first failure. Returns the count loaned and
/// why it stopped short, if it did.
pub(crate) fn loan_pages(ctx: &mut Ctx<'_>, n: u64, poison: bool) -> (u64, Option<Shortfall>) {
    let mut done = 0;
    while done < n {
        if let Err(why) = loan_one(ctx, poison) {
            return (done, Some(why));
        }
        done += 1;
    }
    (done, None)
}

/// Returns up to `n` pages; stops at the first failure (the next round retries).
pub(crate) fn return_pages(ctx: &mut Ctx<'_>, n: u64) -> (u64, Option<Shortfall>) {
    let mut done = 0;
    while done < n {
        match return_one(ctx) {
            Ok(true) => done += 1,
            Ok(false) => break,
            Err(why) => return (done, Some(why)),
        }
    }
    (done, None)
}
