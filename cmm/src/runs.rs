//! Loaned pages in whole 2 MiB runs: a host frees a huge page only when all 512 of
//! its 4 KiB pages are loaned, so the `hv` report counts the complete, 2 MiB-aligned
//! runs of loaned frames (`loaned_whole_runs`) and the pages in them
//! (`loaned_in_whole_runs`). Computed from the frame table's loaned set when shown.

use core::fmt::{self, Write};

use crate::frames::{FrameSet, FrameTable};
use crate::units::FRAMES_PER_BLOCK;

/// Complete 2 MiB runs of loaned frames.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WholeRuns {
    /// Runs of 512 loaned frames starting at a 2 MiB-aligned frame number.
    pub runs: u64,
    /// Loaned frames inside those runs.
    pub pages: u64,
}

impl WholeRuns {
    /// Counts the whole runs in `pfns`, loaned frame numbers in ascending order
    /// (as [`FrameTable::iter`] yields them), each at most once.
    pub fn count(pfns: impl IntoIterator<Item = u64>) -> Self {
        let mut runs = 0u64;
        let mut block = None;
        let mut count = 0u64;
        for pfn in pfns {
            let b = pfn / FRAMES_PER_BLOCK;
            if block != Some(b) {
                runs += u64::from(count == FRAMES_PER_BLOCK);
                block = Some(b);
                count = 0;
            }
            count += 1;
        }
        runs += u64::from(count == FRAMES_PER_BLOCK);
        WholeRuns {
            runs,
            pages: runs * FRAMES_PER_BLOCK,
        }
    }

    /// The whole runs among the frame table's loaned frames.
    pub fn of_loaned(frames: &FrameTable) -> Self {
        Self::count(frames.iter(FrameSet::Loaned))
    }

    /// The two rows the `hv` report ends with.
    pub fn write_rows(&self, w: &mut dyn Write) -> fmt::Result {
        writeln!(w, "loaned_whole_runs: {}", self.runs)?;
        writeln!(w, "loaned_in_whole_runs: {}", self.pages)
    }
}
