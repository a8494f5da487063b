//! The `hv` grammar and the pool model it drives: random command sequences,
//! with the guest's own page-state hcalls in between, after which the model's
//! books must still balance.

use hcall::{HStatus, Hypervisor, PageState, Phyp, RawHcall, Simulation};
use powervm_sim::{HvCommand, PoolModel};

use crate::input::Bytes;

/// The hypervisor under the model: every call succeeds with zeros.
#[derive(Debug, Default)]
pub struct Quiet;

impl RawHcall for Quiet {
    /// Touches no memory.
    unsafe fn hcall(&mut self, _opcode: u64, _args: &[u64]) -> (HStatus, [u64; 9]) {
        (HStatus::Success, [0; 9])
    }
}

/// Pages of the small partition the entries model.
pub const MODEL_PAGES: u32 = 2048;
/// Its memory, 8 MiB.
pub const MODEL_BYTES: u64 = MODEL_PAGES as u64 * 4096;
/// The most `hv step <n>` steps one fuzz command runs (a million steps would
/// only make the run slow, not test more).
const MAX_STEPS: u64 = 64;

/// A model of an 8 MiB partition alone in its pool.
pub fn small_model() -> PoolModel<Quiet> {
    // SAFETY: `Quiet` touches no memory, so no address passed through matters.
    let real = unsafe { Phyp::new(Quiet) };
    PoolModel::new(real, MODEL_BYTES).expect("model")
}

/// The model's rows, rendered into `buf` (kept between calls: the fuzzer
/// renders twice per command, and reusing the buffers saves the allocations).
fn rows_into(m: &PoolModel<Quiet>, buf: &mut String) {
    buf.clear();
    m.render(buf).expect("render");
}

thread_local! {
    static BUFS: core::cell::RefCell<(String, String, String)> =
        const { core::cell::RefCell::new((String::new(), String::new(), String::new())) };
}

/// The model's books (the invariants its own property tests check, through its
/// public view): shares and allotments inside `[entitled, logical]`, the pool
/// not overcommitted, every page of the partition loaned, resident or paged out.
pub fn check_books(m: &PoolModel<Quiet>) {
    let pool = m.pool_bytes();
    let mut entitled = 0u64;
    for l in core::iter::once(m.self_view()).chain(m.others()) {
        assert!(l.entitled <= l.logical, "{l:?}");
        assert!(l.entitled <= l.share && l.share <= l.logical, "{l:?}");
        assert!(l.allotment <= l.logical, "{l:?}");
        entitled += l.entitled;
    }
    assert!(entitled <= pool, "entitlements exceed the pool");
    assert!(
        m.total_allotment_bytes() <= pool,
        "allotments exceed the pool"
    );
    assert!(
        m.others_allotment_bytes() + m.resident_bytes() <= pool,
        "resident memory exceeds the pool"
    );
    assert_eq!(
        m.loaned_bytes() + m.resident_bytes() + m.paged_out_bytes(),
        MODEL_BYTES,
        "a page is neither loaned, resident nor paged out"
    );
}

/// Applies a parsed command: a refused one leaves the model's rows unchanged;
/// the books balance afterwards either way.
pub fn apply_checked(m: &mut PoolModel<Quiet>, cmd: &HvCommand<'_>) {
    if matches!(cmd, HvCommand::Step(n) if *n > MAX_STEPS) {
        return;
    }
    BUFS.with(|b| {
        let (before, after, out) = &mut *b.borrow_mut();
        rows_into(m, before);
        out.clear();
        if m.apply(cmd, out).is_err() {
            rows_into(m, after);
            assert_eq!(after, before, "a refused `hv` command changed the model");
        }
    });
    check_books(m);
}

/// Lines of `hv` words (a line starting with `@` is instead a page-state hcall of
/// the guest: `@` then a page byte pair and a state byte), applied in order to a
/// small model; the books balance after every one, and a refused command changes
/// nothing.
pub fn hv(data: &[u8]) {
    let mut m = small_model();
    let mut now_us = 0u64;
    for line in data.split(|&b| b == b'\n') {
        if let Some(rest) = line.strip_prefix(b"@") {
            let mut b = Bytes::new(rest);
            let page = b.below(MODEL_PAGES as usize + 8) as u64;
            let state = match b.u8() % 3 {
                0 => PageState::Active,
                1 => PageState::Unused,
                _ => PageState::Loaned,
            };
            let _ = m.set_page_state(page * 4096, state);
            let _ = m.get_mpp();
            // Time moves forward by up to a quarter second.
            now_us += u64::from(b.u8()) * 1000;
            m.advance(now_us);
            check_books(&m);
            continue;
        }
        let text = String::from_utf8_lossy(line);
        let words: Vec<&str> = text.split_ascii_whitespace().collect();
        let words = words.strip_prefix(&["hv"]).unwrap_or(&words);
        if let Ok(cmd) = HvCommand::parse(words) {
            apply_checked(&mut m, &cmd);
        }
    }
}
