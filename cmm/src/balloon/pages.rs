//! Loaning and returning pages in batches: the exact hcall sequences, and what
//! happens when a call fails part-way through a batch (docs/balloon-fast-path.md).
//!
//! A batch is up to [`BATCH`] frames from one 2 MiB block, picked word-at-a-time
//! from the frame bitmaps into a [`FrameBatch`] on the stack (no allocation), handed to
//! the hypervisor in one [`Hypervisor::set_page_states`] call (one `H_PAGE_INIT`
//! per page on PowerVM, one buffer for a virtio balloon), and marked in the frame
//! table and the counters once.
//!
//! Loan: pick free frames (whole 2 MiB blocks first); in poison mode fill each
//! with the poison pattern *before* it is marked Loaned (a loaned page must not be
//! touched afterwards); set them Loaned. Exactly the pages the hypervisor accepted
//! are marked loaned and counted; the refused page and those after it stay free
//! and uncounted.
//!
//! Return: set the batch Active first. Pages the hypervisor accepted go to the
//! free list; the refused one and those after it stay loaned — still Loaned to
//! the hypervisor and in the loaned bitmap — and are retried by the next round
//! (Linux frees a page whose call failed and may then use a page the hypervisor
//! still thinks is loaned: no page is lost and none is used while loaned here).
//! A returned page is neither read nor zeroed (it may hold anything, or nothing
//! the hypervisor kept): whoever allocates it next initializes it
//! ([`crate::Mm::alloc_page`]). Only poison mode reads it, to check its poison.
//! Then the accepted pages are hinted Unused like any free frame (best effort).

use hcall::{Backend, Hypervisor, PageState};

use crate::frames::{FrameBatch, FrameTable, BATCH};
use crate::memory::{poison_seed, PageMemory};
use crate::stats::{CmmStats, Shortfall};

/// What a balloon operation works on.
pub(crate) struct Ctx<'a> {
    pub frames: &'a mut FrameTable,
    pub stats: &'a mut CmmStats,
    pub hv: &'a mut dyn Backend,
    pub mem: &'a mut dyn PageMemory,
}

fn add(c: &mut u64, n: usize) {
    *c = c.saturating_add(n as u64);
}

fn inc(c: &mut u64) {
    *c = c.saturating_add(1);
}

/// Room in a batch for what is left of `n` pages after `done`.
fn room(n: u64, done: u64) -> usize {
    usize::try_from(n.saturating_sub(done)).map_or(BATCH, |r| r.min(BATCH))
}

/// Sets `addrs` to `state` as far as the hypervisor accepts: how many (from the
/// front) it took, and its refusal if it took fewer.
fn set_states(
    hv: &mut dyn Hypervisor,
    addrs: &[u64],
    state: PageState,
) -> (usize, Option<hcall::HcallError>) {
    match hv.set_page_states(addrs, state) {
        Ok(()) => (addrs.len(), None),
        Err(e) => (e.done.min(addrs.len()), Some(e.error)),
    }
}

/// Hints `addrs` `state` (best effort): a refused page is counted and skipped,
/// the rest of the batch still goes. Returns how many were refused.
pub(crate) fn hint(
    hv: &mut dyn Hypervisor,
    addrs: &[u64],
    state: PageState,
    stats: &mut CmmStats,
) -> u64 {
    let mut failed = 0u64;
    let mut rest = addrs;
    while !rest.is_empty() {
        match hv.set_page_states(rest, state) {
            Ok(()) => break,
            Err(e) => {
                failed = failed.saturating_add(1);
                rest = rest.get(e.done.saturating_add(1)..).unwrap_or(&[]);
            }
        }
    }
    stats.page_state_failures = stats.page_state_failures.saturating_add(failed);
    stats.hint_failures = stats.hint_failures.saturating_add(failed);
    failed
}

/// True if a poisoned page still holds its poison, or reads as zeros (the
/// hypervisor may drop a loaned page's contents; only other data means the guest
/// wrote to a page it had loaned).
pub(crate) fn poison_intact(mem: &dyn PageMemory, addr: u64) -> bool {
    mem.check(addr, poison_seed(addr)) || mem.is_zero(addr)
}

/// Loans up to `n` pages, a batch at a time; stops at the first failure.
/// Returns the count loaned and why it stopped short, if it did.
pub(crate) fn loan_pages(ctx: &mut Ctx<'_>, n: u64, poison: bool) -> (u64, Option<Shortfall>) {
    let mut b = FrameBatch::new();
    let mut done = 0u64;
    while done < n {
        if ctx.frames.pick_loan_batch(&mut b, room(n, done)) == 0 {
            return (done, Some(Shortfall::NoFreeFrame));
        }
        if poison {
            for &addr in b.addrs() {
                ctx.hv.note_access(addr);
                ctx.mem.fill(addr, poison_seed(addr));
            }
        }
        let (accepted, refused) = set_states(ctx.hv, b.addrs(), PageState::Loaned);
        if ctx.frames.mark_loaned(&b, accepted).is_err() {
            // Nothing else touched the table since the pick.
            return (done, Some(Shortfall::NoFreeFrame));
        }
        if poison {
            ctx.frames.set_poisoned(&b, accepted);
        }
        add(&mut ctx.stats.loaned_pages, accepted);
        add(&mut ctx.stats.pages_loaned_total, accepted);
        debug_assert_eq!(ctx.frames.check(), Ok(()));
        done = done.saturating_add(accepted as u64);
        if let Some(e) = refused {
            inc(&mut ctx.stats.page_state_failures);
            inc(&mut ctx.stats.loan_failures);
            return (done, Some(Shortfall::Loan(e)));
        }
    }
    (done, None)
}

/// Returns up to `n` loaned pages, a batch at a time; stops at the first refused
/// Active call (the next round retries, starting behind the refused page, so a
/// page the hypervisor keeps refusing does not hold up the others). Returns the
/// count returned and why it stopped short, if it did.
pub(crate) fn return_pages(ctx: &mut Ctx<'_>, n: u64) -> (u64, Option<Shortfall>) {
    let mut b = FrameBatch::new();
    let mut done = 0u64;
    while done < n {
        if ctx.frames.pick_return_batch(&mut b, room(n, done)) == 0 {
            break;
        }
        let (accepted, refused) = set_states(ctx.hv, b.addrs(), PageState::Active);
        if ctx.frames.may_hold_poison() {
            check_poison(ctx, &b, accepted);
        }
        if ctx.frames.mark_returned(&b, accepted).is_err() {
            // Nothing else touched the table since the pick.
            return (done, None);
        }
        add(&mut ctx.stats.pages_returned_total, accepted);
        ctx.stats.loaned_pages = ctx.stats.loaned_pages.saturating_sub(accepted as u64);
        debug_assert_eq!(ctx.frames.check(), Ok(()));
        hint(ctx.hv, &b.addrs()[..accepted], PageState::Unused, ctx.stats);
        done = done.saturating_add(accepted as u64);
        if let Some(e) = refused {
            ctx.frames.return_refused(&b, accepted);
            inc(&mut ctx.stats.page_state_failures);
            inc(&mut ctx.stats.return_failures);
            return (done, Some(Shortfall::Return(e)));
        }
    }
    (done, None)
}

/// Poison mode's check of the first `len` pages of a batch that came back Active:
/// a poisoned page must still hold its poison (or zeros).
fn check_poison(ctx: &mut Ctx<'_>, b: &FrameBatch, len: usize) {
    let poisoned = ctx.frames.poisoned_in(b, len);
    for (&addr, is) in b.addrs().iter().zip(poisoned) {
        if is {
            ctx.hv.note_access(addr);
            if !poison_intact(ctx.mem, addr) {
                inc(&mut ctx.stats.poison_errors);
            }
        }
    }
}
