//! The balloon's loan target (docs/cmo.md §6.3), as a pure function.
//!
//! `target = clamp(request_pages + loaned − oom_freed, 0, total − min_pages)`, with
//! `request_pages` the hypervisor's signed loan request in bytes divided by the page
//! size truncating toward zero (for both signs), and `target = 0` when the partition
//! is smaller than the floor. Computed in 128-bit so no input can overflow.

use crate::units::PAGE_SIZE;

/// Everything the target depends on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TargetInput {
    /// H_GET_MPP r9: signed bytes (positive: loan this much more).
    pub loan_request_bytes: i64,
    /// Pages loaned now.
    pub loaned_pages: u64,
    /// Pages given back on OOM since the last reset (the OOM credit).
    pub oom_freed_pages: u64,
    /// Managed pages, loaned ones included (`free + used + loaned`).
    pub total_pages: u64,
    /// The floor: pages never loaned (`min_mem_mb` in pages).
    pub min_pages: u64,
}

/// The loan request in whole pages, truncated toward zero.
pub const fn request_pages(loan_request_bytes: i64) -> i64 {
    // PAGE_SIZE is 4096, well inside i64.
    loan_request_bytes / (PAGE_SIZE as i64)
}

/// The most the balloon may ever loan: `total − min_pages`, or 0 below the floor.
pub const fn loan_ceiling(total_pages: u64, min_pages: u64) -> u64 {
    total_pages.saturating_sub(min_pages)
}

/// The loan target in pages for one poll (docs/cmo.md §6.3 steps 1-6).
pub fn loan_target(input: TargetInput) -> u64 {
    if input.total_pages < input.min_pages {
        return 0;
    }
    let wanted = i128::from(request_pages(input.loan_request_bytes))
        + i128::from(input.loaned_pages)
        - i128::from(input.oom_freed_pages);
    let ceiling = i128::from(loan_ceiling(input.total_pages, input.min_pages));
    let t = wanted.clamp(0, ceiling);
    // 0 <= t <= ceiling <= u64::MAX.
    u64::try_from(t).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn input(req: i64, loaned: u64, oom: u64, total: u64, min: u64) -> TargetInput {
        TargetInput {
            loan_request_bytes: req,
            loaned_pages: loaned,
            oom_freed_pages: oom,
            total_pages: total,
            min_pages: min,
        }
    }

    #[test]
    fn positive_request_adds_to_loaned() {
        assert_eq!(loan_target(input(4096 * 10, 5, 0, 1000, 100)), 15);
    }

    #[test]
    fn negative_request_larger_than_loaned_is_zero() {
        assert_eq!(loan_target(input(-4096 * 50, 10, 0, 1000, 100)), 0);
        assert_eq!(loan_target(input(i64::MIN, 10, 0, 1000, 100)), 0);
    }

    #[test]
    fn partial_pages_truncate_toward_zero() {
        assert_eq!(request_pages(4095), 0);
        assert_eq!(request_pages(-4095), 0);
        assert_eq!(request_pages(8191), 1);
        assert_eq!(request_pages(-8191), -1);
        assert_eq!(loan_target(input(8191, 10, 0, 1000, 0)), 11);
        assert_eq!(loan_target(input(-8191, 10, 0, 1000, 0)), 9);
        assert_eq!(loan_target(input(-4095, 10, 0, 1000, 0)), 10);
    }

    #[test]
    fn floor_clamps() {
        assert_eq!(loan_target(input(4096 * 5000, 0, 0, 1000, 100)), 900);
        assert_eq!(
            loan_target(input(i64::MAX, u64::MAX, 0, u64::MAX, 0)),
            u64::MAX
        );
        assert_eq!(loan_ceiling(1000, 100), 900);
    }

    #[test]
    fn oom_credit_reduces_the_target() {
        assert_eq!(loan_target(input(4096 * 100, 0, 30, 1000, 0)), 70);
        assert_eq!(loan_target(input(4096 * 100, 0, 300, 1000, 0)), 0);
    }

    #[test]
    fn below_the_floor_is_zero() {
        assert_eq!(loan_target(input(4096 * 100, 0, 0, 99, 100)), 0);
        assert_eq!(loan_target(input(4096 * 100, 50, 0, 99, 100)), 0);
        assert_eq!(loan_target(input(0, 0, 0, 100, 100)), 0);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]
        #[test]
        fn within_bounds_and_linux_steps(req in any::<i64>(), loaned in 0u64..1 << 40, oom in 0u64..1 << 40,
                                         total in 0u64..1 << 40, min in 0u64..1 << 40) {
            let t = loan_target(input(req, loaned, oom, total, min));
            prop_assert!(t <= total.saturating_sub(min));
            // Linux's step order (§6.3 steps 2-6) in i128 gives the same number.
            let mut l = i128::from(req / 4096) + i128::from(loaned);
            if l < 0 || total < min { l = 0; }
            l = if l > i128::from(oom) { l - i128::from(oom) } else { 0 };
            if i128::from(min) > i128::from(total) - l { l = i128::from(total) - i128::from(min); }
            if l < 0 { l = 0; }
            prop_assert_eq!(i128::from(t), l);
        }
    }
}
