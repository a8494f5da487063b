//! Several virtual processors: which hardware threads to start, in what order,
//! and the `smp=<n>` boot argument. The target glue (`glue/smp.rs`) starts them
//! through RTAS; the decisions are here so that they have host tests.
//!
//! Every `/cpus` node is one core; its `ibm,ppc-interrupt-server#s` lists one
//! interrupt server number per hardware thread ([`crate::devtree::platform::Cpu::threads`]).
//! The kernel numbers the threads it runs 0.. (its *CPU index*), the boot thread
//! first, then every other thread in tree order, up to `smp=<n>` and to
//! [`MAX_CPUS`]. Facts: docs/smp.md.

use alloc::string::String;
use alloc::vec::Vec;

use crate::devtree::platform::Cpu;

/// The most CPUs the kernel runs (its per-CPU stacks and VPAs are static).
pub const MAX_CPUS: usize = 8;

/// Which threads to run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Interrupt server numbers by CPU index; index 0 is the boot thread.
    pub servers: Vec<u32>,
    /// Threads the tree lists that are not run, with why.
    pub left_out: Vec<(u32, &'static str)>,
    /// Every thread the tree lists (the `present` count).
    pub present: usize,
}

/// Parses `smp=<n>`: how many CPUs to run, at least 1.
pub fn parse_limit(v: &str) -> Result<usize, String> {
    let n = crate::text::number::parse_number(v).map_err(|e| alloc::format!("smp={v}: {e}"))?;
    if n == 0 {
        return Err(String::from("smp=0: at least the boot CPU runs"));
    }
    Ok(usize::try_from(n).unwrap_or(usize::MAX))
}

/// The threads to run: `boot` first (added if the tree does not list it), then
/// every other listed thread in tree order, at most `limit` (`smp=`) and
/// [`MAX_CPUS`] in all. A server number listed twice is run once.
pub fn plan(cpus: &[Cpu], boot: u32, limit: Option<usize>) -> Plan {
    let mut all: Vec<u32> = Vec::new();
    for c in cpus {
        for &t in &c.threads {
            if !all.contains(&t) {
                all.push(t);
            }
        }
    }
    let present = all.len().max(1);
    let cap = limit.unwrap_or(usize::MAX).clamp(1, MAX_CPUS);
    let mut p = Plan {
        servers: alloc::vec![boot],
        left_out: Vec::new(),
        present,
    };
    for s in all.into_iter().filter(|&s| s != boot) {
        if p.servers.len() < cap {
            p.servers.push(s);
        } else if limit.is_some_and(|l| p.servers.len() >= l) {
            p.left_out.push((s, "smp= asks for fewer CPUs"));
        } else {
            p.left_out
                .push((s, "more CPUs than the kernel supports (8)"));
        }
    }
    p
}

/// What a secondary CPU's idle loop does next, decided with interrupts off
/// from what it sees ([`secondary_step`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecondaryStep {
    /// The machine is stopping: park for good, work or not.
    Park,
    /// Take the work handed to it and run it (interrupts on).
    Run,
    /// An interrupt woke it: take the event, expire its own timers and
    /// program the decrementer for the next, then look again.
    TakeEvents,
    /// Nothing to do: cede (H_CEDE) until an interrupt (an IPI or its
    /// decrementer).
    Cede,
}

/// The secondary CPU's idle decision: a stop beats work, work beats events,
/// and it cedes only when there is nothing at all (so an IPI that handed work
/// before the look is never slept through: it left the work in the mailbox).
pub fn secondary_step(stopping: bool, work_handed: bool, events_pending: bool) -> SecondaryStep {
    if stopping {
        SecondaryStep::Park
    } else if work_handed {
        SecondaryStep::Run
    } else if events_pending {
        SecondaryStep::TakeEvents
    } else {
        SecondaryStep::Cede
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_secondary_cpu_parks_first_runs_work_next_and_cedes_only_when_idle() {
        use super::{secondary_step, SecondaryStep::*};
        for bits in 0..8u8 {
            let (stopping, work, events) = (bits & 4 != 0, bits & 2 != 0, bits & 1 != 0);
            let expect = match (stopping, work, events) {
                (true, _, _) => Park,
                (false, true, _) => Run,
                (false, false, true) => TakeEvents,
                (false, false, false) => Cede,
            };
            assert_eq!(secondary_step(stopping, work, events), expect, "{bits:03b}");
        }
    }

    use super::*;
    use alloc::vec;

    fn core(reg: u32, threads: &[u32]) -> Cpu {
        Cpu {
            name: alloc::format!("PowerPC,POWER9@{reg:x}"),
            reg,
            threads: threads.to_vec(),
        }
    }

    #[test]
    fn boot_thread_first_then_tree_order() {
        let cpus = [core(0, &[0, 1]), core(2, &[2, 3])];
        let p = plan(&cpus, 2, None);
        assert_eq!(p.servers, vec![2, 0, 1, 3]);
        assert_eq!(p.present, 4);
        assert!(p.left_out.is_empty());
    }

    #[test]
    fn smp_limit_and_max_cpus_leave_threads_out_with_a_reason() {
        let cpus = [core(0, &[0]), core(1, &[1]), core(2, &[2]), core(3, &[3])];
        let p = plan(&cpus, 0, Some(1));
        assert_eq!(p.servers, vec![0]);
        assert_eq!(p.left_out.len(), 3);
        assert!(p.left_out.iter().all(|(_, why)| why.contains("smp=")));
        let many: Vec<Cpu> = (0..12).map(|i| core(i, &[i])).collect();
        let p = plan(&many, 0, None);
        assert_eq!(p.servers.len(), MAX_CPUS);
        assert_eq!(p.present, 12);
        assert_eq!(p.left_out.len(), 4);
        assert!(p.left_out.iter().all(|(_, why)| why.contains("supports")));
    }

    #[test]
    fn an_unlisted_boot_thread_and_duplicates() {
        let cpus = [core(0, &[0, 0]), core(1, &[1])];
        let p = plan(&cpus, 7, None);
        assert_eq!(p.servers, vec![7, 0, 1]);
        assert_eq!(plan(&[], 0, None).servers, vec![0]);
    }

    #[test]
    fn parse_limit_refuses_zero_and_junk() {
        assert_eq!(parse_limit("4"), Ok(4));
        assert_eq!(parse_limit("0x2"), Ok(2));
        assert!(parse_limit("0").is_err());
        assert!(parse_limit("four").is_err());
        assert!(parse_limit("").is_err());
    }
}
