//! Hinting free memory Unused in the background (docs/cmo.md §4.4,
//! docs/balloon-fast-path.md).
//!
//! Every page starts Active. Hinting every free frame before the prompt made boot
//! cost one page-state call per page of RAM; instead the memory manager walks the
//! free bitmap once after boot, a bounded number of frames per call of
//! [`Mm::hint_unused_step`], which the kernel's main loop makes between inputs.
//!
//! A frame's state is right whenever it is handed out: the walk hints only frames
//! that are free in the same call, so it never marks a used or loaned page
//! Unused; a frame allocated before the walk reaches it is still Active (its
//! allocation sets Active anyway); one freed or returned meanwhile was hinted by
//! the free or the return. Until the walk is through, the hypervisor just sees
//! some free pages still Active.

use hcall::{Hypervisor, PageState};

use crate::balloon::pages::hint;
use crate::frames::{FrameBatch, BATCH};
use crate::mm::Mm;

/// Where the walk is: the next frame index, `None` once it is through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct UnusedWalk {
    pub(crate) next: Option<usize>,
}

impl UnusedWalk {
    /// A walk from the first frame.
    pub(crate) fn start() -> Self {
        UnusedWalk { next: Some(0) }
    }
}

/// What one [`Mm::hint_unused_step`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HintStep {
    /// Frames hinted Unused in this call (refused hints included).
    pub hinted: u64,
    /// The walk finished in this call.
    pub finished: bool,
}

impl Mm {
    /// Hints up to `max_pages` more free frames Unused, in batches; nothing once
    /// the walk is through. Refused hints are counted (`hint_failures`) and skipped.
    pub fn hint_unused_step(&mut self, hv: &mut dyn Hypervisor, max_pages: u64) -> HintStep {
        let mut step = HintStep::default();
        let mut b = FrameBatch::new();
        while let Some(from) = self.unused_walk.next {
            if step.hinted >= max_pages {
                break;
            }
            let room = usize::try_from(max_pages - step.hinted).map_or(BATCH, |r| r.min(BATCH));
            let (n, next) = self.frames().pick_free_from(from, &mut b, room);
            hint(hv, b.addrs(), PageState::Unused, self.frames_and_stats().1);
            step.hinted = step.hinted.saturating_add(n as u64);
            if next >= self.frames().index_len() {
                self.unused_walk.next = None;
                step.finished = true;
            } else {
                self.unused_walk.next = Some(next);
            }
        }
        step
    }

    /// True until the walk of [`Mm::hint_unused_step`] is through.
    pub fn unused_hints_pending(&self) -> bool {
        self.unused_walk.next.is_some()
    }
}
