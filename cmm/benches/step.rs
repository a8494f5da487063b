//! Host benchmark of the balloon round: one step that loans 32768 pages (128 MiB)
//! and one that returns them, against the test fake hypervisor (whose own page
//! book is part of the cost). Prints `name:`, `pages:` and `elapsed_ns:` rows.
//!
//! Run with `cargo bench -p cmm --bench step`.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::Instant;

use common::{Request, World};

const PAGES: u64 = 32768;

fn timed(w: &mut World, name: &str, expect_loaned: u64) {
    let start = Instant::now();
    let r = w.poll();
    let elapsed = start.elapsed();
    assert!(r.polled && r.shortfall.is_none(), "{r:?}");
    assert_eq!(w.loaned(), expect_loaned);
    println!("name: {name}");
    println!("pages: {}", r.pages_loaned + r.pages_returned);
    println!("elapsed_ns: {}", elapsed.as_nanos());
}

fn main() {
    // 512 MiB of RAM, 64 frames reserved, the default 256 MiB floor.
    let mut w = World::new(131_072, 64, 256);
    w.hv.request = Request::LoanPages(PAGES);
    timed(&mut w, "step_loan", PAGES);
    w.hv.request = Request::LoanPages(0);
    timed(&mut w, "step_return", 0);
    w.set("poison", "1").expect("poison");
    w.hv.request = Request::LoanPages(PAGES);
    timed(&mut w, "step_loan_poison", PAGES);
    w.hv.request = Request::LoanPages(0);
    timed(&mut w, "step_return_poison", 0);
}
