//! H_GET_MPP figures that cannot all be true (a buggy or lying hypervisor): the
//! balloon does not steer by them (docs/cmo.md §2 gives the fields' meanings).
//! A partition's `logical` memory bounds what it can be entitled to, backed by,
//! or asked to loan; the pool holds at least this partition's entitlement.

use core::fmt;

use crate::mpp::MppData;

/// Why a set of H_GET_MPP figures is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MppContradiction {
    /// The I/O entitlement (r4) is above the partition's memory.
    EntitledAboveLogical {
        /// r4, bytes.
        entitled: u64,
        /// The partition's memory, bytes.
        logical: u64,
    },
    /// More memory backs the partition (r10) than it has.
    BackingAboveLogical {
        /// r10, bytes.
        backing: u64,
        /// The partition's memory, bytes.
        logical: u64,
    },
    /// The pool (r8) is smaller than this partition's entitlement alone.
    PoolBelowEntitled {
        /// r8, bytes.
        pool: u64,
        /// r4, bytes.
        entitled: u64,
    },
    /// The loan request (r9) asks for more than the partition's whole memory.
    LoanAboveLogical {
        /// r9, bytes.
        request: i64,
        /// The partition's memory, bytes.
        logical: u64,
    },
}

impl fmt::Display for MppContradiction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            MppContradiction::EntitledAboveLogical { entitled, logical } => write!(
                f,
                "H_GET_MPP says {entitled} bytes entitled, above the partition's {logical} bytes"
            ),
            MppContradiction::BackingAboveLogical { backing, logical } => write!(
                f,
                "H_GET_MPP says {backing} bytes back the partition, above its {logical} bytes"
            ),
            MppContradiction::PoolBelowEntitled { pool, entitled } => write!(
                f,
                "H_GET_MPP says the pool has {pool} bytes, below this partition's {entitled} bytes entitled"
            ),
            MppContradiction::LoanAboveLogical { request, logical } => write!(
                f,
                "H_GET_MPP asks for a {request}-byte loan, above the partition's {logical} bytes"
            ),
        }
    }
}

impl MppData {
    /// The first figure that cannot be true of a partition with `logical` bytes
    /// of memory, or `None` when they fit together.
    pub fn contradiction(&self, logical: u64) -> Option<MppContradiction> {
        let entitled = self.entitled_mem;
        if entitled > logical {
            return Some(MppContradiction::EntitledAboveLogical { entitled, logical });
        }
        if self.backing_mem > logical {
            return Some(MppContradiction::BackingAboveLogical {
                backing: self.backing_mem,
                logical,
            });
        }
        if let Some(pool) = self.pool_size {
            if pool < entitled {
                return Some(MppContradiction::PoolBelowEntitled { pool, entitled });
            }
        }
        if i128::from(self.loan_request) > i128::from(logical) {
            return Some(MppContradiction::LoanAboveLogical {
                request: self.loan_request,
                logical,
            });
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    fn honest() -> MppData {
        MppData {
            entitled_mem: 64 * MIB,
            mapped_mem: Some(MIB),
            pool_size: Some(1024 * MIB),
            loan_request: 32 * MIB as i64,
            backing_mem: 480 * MIB,
            ..MppData::default()
        }
    }

    #[test]
    fn figures_that_fit_pass() {
        assert_eq!(honest().contradiction(512 * MIB), None);
        // Dedicated memory: no pool, nothing entitled or backed reported.
        assert_eq!(MppData::default().contradiction(512 * MIB), None);
        // Asked to give everything back, or loan all of it: possible.
        let mut d = honest();
        d.loan_request = -(512 * MIB as i64);
        assert_eq!(d.contradiction(512 * MIB), None);
        d.loan_request = 512 * MIB as i64;
        assert_eq!(d.contradiction(512 * MIB), None);
    }

    #[test]
    fn each_contradiction_is_named() {
        let l = 512 * MIB;
        let mut d = honest();
        d.entitled_mem = l + 4096;
        assert!(matches!(
            d.contradiction(l),
            Some(MppContradiction::EntitledAboveLogical { .. })
        ));
        let mut d = honest();
        d.backing_mem = l + 1;
        assert!(matches!(
            d.contradiction(l),
            Some(MppContradiction::BackingAboveLogical { .. })
        ));
        let mut d = honest();
        d.pool_size = Some(MIB);
        assert!(matches!(
            d.contradiction(l),
            Some(MppContradiction::PoolBelowEntitled { .. })
        ));
        let mut d = honest();
        d.loan_request = i64::MAX;
        let c = d.contradiction(l).unwrap();
        assert!(matches!(c, MppContradiction::LoanAboveLogical { .. }));
        assert!(c.to_string().contains("loan"), "{c}");
    }
}
