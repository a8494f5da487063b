//! The guest's balloon statistics as QMP `qom-get ... guest-stats` returns them,
//! and what the manager takes from them: used memory and pressure.
//!
//! lpar-cmm reports (docs/pool-manager.md): free, total (RAM minus loaned) and
//! available memory, CMO faults as major faults, and, in tags QEMU 7.2 passes on
//! but a kernel without swap and huge pages would leave at zero, its OOM-notifier
//! events (`stat-swap-in`) and allocation failures (`stat-htlb-pgfail`). QEMU
//! reports 2^64 − 1 for a figure never received.

use serde_json::Value;

/// One reading of the guest's statistics; `None` where never reported.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GuestStats {
    /// Free memory, bytes.
    pub free: Option<u64>,
    /// Total memory the guest manages (without loaned pages), bytes.
    pub total: Option<u64>,
    /// Available memory (free plus reclaimable cache), bytes.
    pub available: Option<u64>,
    /// CMO faults (reported as major faults).
    pub faults: Option<u64>,
    /// OOM-notifier events, cumulative.
    pub oom_events: Option<u64>,
    /// Allocation failures, cumulative.
    pub alloc_failures: Option<u64>,
    /// QEMU's `last-update` (seconds since the epoch; 0 before any report).
    pub last_update: u64,
}

fn stat(v: &Value, key: &str) -> Option<u64> {
    v.get("stats")?
        .get(key)?
        .as_u64()
        .filter(|&n| n != u64::MAX)
}

impl GuestStats {
    /// Reads a `guest-stats` value.
    pub fn parse(v: &Value) -> GuestStats {
        GuestStats {
            free: stat(v, "stat-free-memory"),
            total: stat(v, "stat-total-memory"),
            available: stat(v, "stat-available-memory"),
            faults: stat(v, "stat-major-faults"),
            oom_events: stat(v, "stat-swap-in"),
            alloc_failures: stat(v, "stat-htlb-pgfail"),
            last_update: v.get("last-update").and_then(Value::as_u64).unwrap_or(0),
        }
    }

    /// Memory in use: total minus available (or minus free), bytes.
    pub fn used(&self) -> Option<u64> {
        let total = self.total?;
        let spare = self.available.or(self.free)?;
        Some(total.saturating_sub(spare))
    }

    /// Whether OOM events or allocation failures grew since `earlier`.
    pub fn pressure_since(&self, earlier: &GuestStats) -> bool {
        let grew = |a: Option<u64>, b: Option<u64>| matches!((a, b), (Some(n), Some(o)) if n > o);
        grew(self.oom_events, earlier.oom_events)
            || grew(self.alloc_failures, earlier.alloc_failures)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_qemu_returns() {
        let v: Value = serde_json::from_str(
            r#"{"stats": {"stat-swap-out": 0, "stat-available-memory": 300000000,
                "stat-free-memory": 200000000, "stat-minor-faults": 0,
                "stat-major-faults": 7, "stat-total-memory": 500000000,
                "stat-swap-in": 3, "stat-disk-caches": 100000000,
                "stat-htlb-pgfail": 18446744073709551615}, "last-update": 1700000000}"#,
        )
        .unwrap();
        let s = GuestStats::parse(&v);
        assert_eq!(s.used(), Some(200_000_000));
        assert_eq!(s.faults, Some(7));
        assert_eq!(s.oom_events, Some(3));
        assert_eq!(s.alloc_failures, None);
        assert_eq!(s.last_update, 1_700_000_000);
        let earlier = GuestStats {
            oom_events: Some(2),
            ..GuestStats::default()
        };
        assert!(s.pressure_since(&earlier));
        assert!(!s.pressure_since(&s));
    }

    #[test]
    fn never_reported_is_unknown() {
        let v: Value = serde_json::from_str(
            r#"{"stats": {"stat-free-memory": 18446744073709551615, "stat-total-memory": 18446744073709551615}, "last-update": 0}"#,
        )
        .unwrap();
        let s = GuestStats::parse(&v);
        assert_eq!(s.used(), None);
        assert_eq!(s.last_update, 0);
    }
}
