//! What one balloon round should do, as a pure function of the target, the
//! policy and the free list: loan some pages, return some, or hold.

use crate::params::Policy;

/// The inputs of one round.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlanInput {
    /// The policy in force.
    pub policy: Policy,
    /// The loan target (already clamped to the floor, §6.3).
    pub target: u64,
    /// Pages loaned now.
    pub loaned: u64,
    /// Frames free now.
    pub free: u64,
    /// Free-list low-water mark (conservative policy).
    pub minfree: u64,
    /// Free-list high-water mark (conservative policy).
    pub maxfree: u64,
}

/// The round's action.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Plan {
    /// Nothing to do.
    Hold,
    /// Loan this many more pages (the `limited` flag says the policy, not the
    /// target, set the number: the conservative free list is at `maxfree`).
    Loan {
        /// Pages to loan.
        pages: u64,
        /// True if the target wanted more than the policy allows.
        limited: bool,
    },
    /// Return this many loaned pages (`refill`: to bring the free list back up to
    /// `maxfree`, not because the target dropped).
    Return {
        /// Pages to return.
        pages: u64,
        /// True if the free-list discipline asked for (some of) them.
        refill: bool,
    },
}

/// Decides one round.
pub fn plan(i: PlanInput) -> Plan {
    let excess = i.loaned.saturating_sub(i.target);
    let wanted = i.target.saturating_sub(i.loaned);
    match i.policy {
        Policy::Off => return_pages(i.loaned, false),
        Policy::Aggressive => {
            if excess > 0 {
                return_pages(excess, false)
            } else if wanted > 0 {
                Plan::Loan {
                    pages: wanted,
                    limited: false,
                }
            } else {
                Plan::Hold
            }
        }
        Policy::Conservative => {
            let refill = if i.free < i.minfree {
                i.maxfree.saturating_sub(i.free).min(i.loaned)
            } else {
                0
            };
            if refill > excess {
                return_pages(refill, true)
            } else if excess > 0 {
                return_pages(excess, false)
            } else if wanted > 0 {
                let room = i.free.saturating_sub(i.maxfree);
                let pages = wanted.min(room);
                if pages == 0 {
                    Plan::Loan {
                        pages: 0,
                        limited: true,
                    }
                } else {
                    Plan::Loan {
                        pages,
                        limited: pages < wanted,
                    }
                }
            } else {
                Plan::Hold
            }
        }
    }
}

fn return_pages(pages: u64, refill: bool) -> Plan {
    if pages == 0 {
        Plan::Hold
    } else {
        Plan::Return { pages, refill }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inp(policy: Policy, target: u64, loaned: u64, free: u64) -> PlanInput {
        PlanInput {
            policy,
            target,
            loaned,
            free,
            minfree: 100,
            maxfree: 200,
        }
    }

    #[test]
    fn aggressive_follows_the_target() {
        let a = Policy::Aggressive;
        assert_eq!(
            plan(inp(a, 50, 10, 5)),
            Plan::Loan {
                pages: 40,
                limited: false
            }
        );
        assert_eq!(
            plan(inp(a, 10, 50, 5)),
            Plan::Return {
                pages: 40,
                refill: false
            }
        );
        assert_eq!(plan(inp(a, 10, 10, 0)), Plan::Hold);
    }

    #[test]
    fn off_returns_everything() {
        assert_eq!(
            plan(inp(Policy::Off, 50, 10, 5)),
            Plan::Return {
                pages: 10,
                refill: false
            }
        );
        assert_eq!(plan(inp(Policy::Off, 50, 0, 5)), Plan::Hold);
    }

    #[test]
    fn conservative_keeps_the_free_list() {
        let c = Policy::Conservative;
        // Loans only down to maxfree.
        assert_eq!(
            plan(inp(c, 500, 0, 250)),
            Plan::Loan {
                pages: 50,
                limited: true
            }
        );
        assert_eq!(
            plan(inp(c, 500, 0, 200)),
            Plan::Loan {
                pages: 0,
                limited: true
            }
        );
        assert_eq!(
            plan(inp(c, 20, 0, 1000)),
            Plan::Loan {
                pages: 20,
                limited: false
            }
        );
        // Between minfree and maxfree: hysteresis, nothing moves.
        assert_eq!(plan(inp(c, 300, 300, 150)), Plan::Hold);
        assert_eq!(
            plan(inp(c, 400, 300, 150)),
            Plan::Loan {
                pages: 0,
                limited: true
            }
        );
        // Below minfree: refill to maxfree.
        assert_eq!(
            plan(inp(c, 300, 300, 50)),
            Plan::Return {
                pages: 150,
                refill: true
            }
        );
        assert_eq!(
            plan(inp(c, 300, 30, 50)),
            Plan::Return {
                pages: 30,
                refill: true
            }
        );
        // A falling target that returns more than the refill wins.
        assert_eq!(
            plan(inp(c, 0, 300, 50)),
            Plan::Return {
                pages: 300,
                refill: false
            }
        );
    }
}
