//! Host test harness.
