//! The OOM notifier chain: who is asked to give memory back when no frame is free.
//!
//! Members are named by id and dispatched by [`crate::Mm`], which owns them all, so
//! a notifier can be handed the frame table without any borrow running in circles.
//! Linux calls its OOM notifiers in priority order before the OOM killer; here the
//! chain runs, in order, before an allocation fails.

/// A member of the OOM notifier chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OomNotifier {
    /// The CMM balloon: returns `oom_kb` worth of loaned pages (docs/cmo.md §6.6).
    Balloon,
}

/// What one run of the chain did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OomReport {
    /// Pages the chain made free.
    pub freed_pages: u64,
}
