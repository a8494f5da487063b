//! The live table: one row per partition, in the spirit of `amsstat` and the HMC's
//! memory listing. Sizes in MiB.
//!
//! ```text
//! tick 120  t 30.0 s  pool 768 MiB  allotted 768 MiB  free 0 MiB
//! partition  logical weight entitled allotted  loaned    rss  demand faults state
//! grow           512    128       64      330     182    341     352      0 ok
//! ```
//! `allotted` is the balloon target the manager set, `loaned` is logical minus what
//! the guest holds (QMP `actual`), `rss` is its QEMU's resident set, `demand` is
//! used memory plus headroom (or all of logical under pressure).

use std::fmt::Write as _;

use crate::config::Config;
use crate::manager::Sample;

fn mib(b: u64) -> u64 {
    b >> 20
}

fn opt(v: Option<u64>) -> String {
    v.map_or_else(|| "-".into(), |v| v.to_string())
}

/// Renders the table for one tick's samples.
pub fn render(cfg: &Config, samples: &[Sample]) -> String {
    let mut out = String::new();
    let (tick, t_ms) = samples.first().map_or((0, 0), |s| (s.tick, s.t_ms));
    let allotted: u64 = samples.iter().map(|s| s.allotted).sum();
    let committed: u64 = samples.iter().map(|s| s.allotted.max(s.held)).sum();
    let _ = writeln!(
        out,
        "tick {tick}  t {:.1} s  pool {} MiB  allotted {} MiB  free {} MiB",
        t_ms as f64 / 1000.0,
        mib(cfg.pool),
        mib(allotted),
        mib(cfg.pool.saturating_sub(committed))
    );
    let _ = writeln!(
        out,
        "{:<12} {:>7} {:>6} {:>8} {:>8} {:>7} {:>6} {:>7} {:>6} state",
        "partition",
        "logical",
        "weight",
        "entitled",
        "allotted",
        "loaned",
        "rss",
        "demand",
        "faults"
    );
    for s in samples {
        let Some(p) = cfg.partitions.get(s.partition) else {
            continue;
        };
        let _ = writeln!(
            out,
            "{:<12} {:>7} {:>6} {:>8} {:>8} {:>7} {:>6} {:>7} {:>6} {}",
            p.name,
            mib(p.logical),
            p.weight,
            mib(p.entitled),
            mib(s.allotted),
            mib(p.logical.saturating_sub(s.held)),
            opt(s.rss.map(mib)),
            mib(s.demand),
            opt(s.faults),
            s.state.name()
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::State;

    #[test]
    fn one_row_per_partition() {
        let cfg = Config::parse(
            "pool = \"768M\"\n[[partition]]\nname = \"grow\"\nlogical = \"512M\"\n[[partition]]\nname = \"b\"\nlogical = \"512M\"\nweight = 7\n",
        )
        .unwrap();
        let s = |partition, allotted: u64, held: u64, state| Sample {
            tick: 3,
            t_ms: 750,
            partition,
            share: allotted,
            allotted,
            held,
            rss: Some(341 << 20),
            demand: 352 << 20,
            used: None,
            faults: None,
            state,
        };
        let t = render(
            &cfg,
            &[
                s(0, 330 << 20, 330 << 20, State::Following),
                s(1, 438 << 20, 450 << 20, State::Lagging),
            ],
        );
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 4, "{t}");
        assert!(
            lines[0].starts_with("tick 3  t 0.8 s  pool 768 MiB  allotted 768 MiB  free 0 MiB"),
            "{t}"
        );
        let row: Vec<&str> = lines[2].split_whitespace().collect();
        assert_eq!(
            row,
            ["grow", "512", "128", "64", "330", "182", "341", "352", "-", "ok"]
        );
        let row: Vec<&str> = lines[3].split_whitespace().collect();
        assert_eq!(row[2], "7");
        assert_eq!(row[9], "lagging");
    }
}
