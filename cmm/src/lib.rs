//! The guest side of PowerVM Active Memory Sharing (PAPR CMO), as pure logic:
//! the CMM balloon, the frame bookkeeping it loans from, the OOM notifier chain,
//! the page-usage hints, and VIO entitled-memory accounting.
//!
//! - [`frames`]: the 4 KiB frame table (bitmaps outside the frames they describe).
//! - [`mm`]: [`Mm`], the memory manager: frames + hints + balloon + OOM chain + the
//!   one [`CmmStats`]; [`workload`] adds the console's test workload to it.
//! - [`balloon`]: the balloon's round, OOM notifier and parameter effects;
//!   [`target`] (docs/cmo.md §6.3) and [`policy`] (aggressive / conservative /
//!   off) are pure functions it calls; [`params`] are its tunables.
//! - [`percpu`]: per-CPU caches of free frames, refilled and drained in batches,
//!   which the balloon drains when a loan needs them.
//! - [`hints`]: the background walk that hints free memory Unused after boot.
//! - [`reporting`]: free page reporting, whole free 2 MiB blocks told to a
//!   device (virtio-balloon's reporting queue) so the host takes them back.
//! - [`memory`]: [`PageMemory`], what the kernel provides to fill, check and zero pages.
//! - [`render`]: the console's fixed output formats; [`amsstat`] assembles the whole
//!   `amsstat` report and `sysfs` listing from them; [`runs`] counts loaned pages in
//!   whole 2 MiB runs.
//! - [`vio`]: VIO entitled-memory accounting.
//!
//! The contract with the hypervisor (docs/cmo.md §4, §6): a loaned page is
//! never read or written (except by the debugging `poison` mode, which reads them
//! in `verify`); no bookkeeping lives in a free, Unused or Loaned page; a page is
//! counted loaned exactly when the hypervisor accepted H_PAGE_INIT(Loaned) for it
//! and has not yet accepted H_PAGE_INIT(Active); the balloon never loans below the
//! `min_mem_mb` floor, never busy-polls, and gives memory back on OOM.
#![cfg_attr(not(test), no_std)]
// No unsafe code: page contents are reached through `PageMemory`, whose kernel
// implementation checks every address against the managed frames.
#![forbid(unsafe_code)]

extern crate alloc;

/// The README's examples, compiled and run as doctests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

pub mod amsstat;
pub mod balloon;
pub mod bitmap;
pub mod error;
pub mod frames;
pub mod hints;
pub mod memory;
pub mod mm;
pub mod oom;
pub mod params;
pub mod percpu;
pub mod policy;
pub mod render;
pub mod reporting;
pub mod runs;
pub mod stats;
pub mod target;
pub mod units;
pub mod vio;
pub mod workload;

pub use balloon::StepReport;
pub use error::CmmError;
pub use frames::{
    FrameCounts, FrameSet, FrameState, FrameTable, Owner, Region, ReportCounts, ReportRange,
};
pub use hints::HintStep;
pub use memory::PageMemory;
pub use mm::Mm;
pub use oom::{OomNotifier, OomReport};
pub use params::{Param, ParamValue, Params, Policy};
pub use percpu::FrameCache;
pub use render::MemInfo;
pub use reporting::{
    FreeReporter, HintReporter, ReportPoll, ReportStats, ReportStep, HINT_BLOCKS_PER_REPORT,
};
pub use stats::{CmmStats, Shortfall};
pub use workload::{VerifyReport, Workload};
