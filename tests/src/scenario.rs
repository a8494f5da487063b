//! Named balloon scenarios (`tests/scenarios/<name>.scn`): boot the kernel, run
//! console commands with `trace on`, collect the trace, and check what the
//! scenario expects of it.
//!
//! A scenario file has one directive per line (`#` starts a comment):
//! `title <text>`, `mem <size>`, `append <boot arguments>`, `run <command>`,
//! `expect <check> [<value>]`. Checks: `reaches_kb N` (some sample has
//! loaned_kb = N), `final_kb N` (the last sample), `within_floor` (loaned never
//! exceeds managed memory minus `min_mem_mb`), `free_at_least_kb N` (the last
//! sample's free memory), `other_rises` (the other partition's share grows),
//! `loan_rises_and_falls`, `loan_drops` (loaned falls at some point), `oom_freed`
//! (`oom_freed_kb` > 0 at the end, in whole `oom_kb` steps).

use std::path::{Path, PathBuf};

use crate::trace::{self, Sample};
use crate::Qemu;

/// A parsed scenario.
#[derive(Clone, Debug, Default)]
pub struct Scenario {
    /// Its name (file stem).
    pub name: String,
    /// Plot title.
    pub title: String,
    /// Guest RAM.
    pub mem: String,
    /// Boot arguments.
    pub append: String,
    /// Console commands, in order.
    pub commands: Vec<String>,
    /// Checks: (name, optional value).
    pub expects: Vec<(String, Option<i64>)>,
}

/// The scenario directory.
pub fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scenarios")
}

/// Every scenario name, sorted.
pub fn names() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir())
        .map(|d| {
            d.filter_map(Result::ok)
                .filter_map(|e| {
                    let p = e.path();
                    (p.extension()? == "scn").then(|| p.file_stem()?.to_str().map(String::from))?
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Parses `text` as the scenario `name`.
pub fn parse(name: &str, text: &str) -> Result<Scenario, String> {
    let mut s = Scenario {
        name: name.to_string(),
        title: name.to_string(),
        mem: "256M".into(),
        ..Scenario::default()
    };
    for (i, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let (word, rest) = line.split_once(' ').unwrap_or((line, ""));
        let rest = rest.trim();
        match word {
            "title" => s.title = rest.to_string(),
            "mem" => s.mem = rest.to_string(),
            "append" => s.append = rest.to_string(),
            "run" if !rest.is_empty() => s.commands.push(rest.to_string()),
            "expect" => {
                let mut w = rest.split_whitespace();
                let check = w.next().ok_or(format!("line {}: expect what?", i + 1))?;
                let value = match w.next() {
                    Some(v) => Some(
                        v.parse()
                            .map_err(|_| format!("line {}: bad number {v}", i + 1))?,
                    ),
                    None => None,
                };
                s.expects.push((check.to_string(), value));
            }
            _ => return Err(format!("line {}: unknown directive {line:?}", i + 1)),
        }
    }
    if s.commands.is_empty() {
        return Err("a scenario needs at least one `run`".into());
    }
    Ok(s)
}

/// Loads `tests/scenarios/<name>.scn`.
pub fn load(name: &str) -> Result<Scenario, String> {
    let path = dir().join(format!("{name}.scn"));
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    parse(name, &text)
}

/// What a run produced.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The trace samples.
    pub samples: Vec<Sample>,
    /// Managed memory in KiB (MemTotal + loaned at the start).
    pub total_kb: i64,
    /// The floor in KiB.
    pub floor_kb: i64,
    /// `cmm` rows at the end.
    pub final_cmm: std::collections::BTreeMap<String, i64>,
}

/// Boots, runs the scenario with `trace on`, and returns the samples.
pub fn run(s: &Scenario) -> Outcome {
    let mut vm = Qemu::builder().mem(&s.mem).append(&s.append).boot();
    let start = vm.oks(&["meminfo", "cmm"]);
    let total_kb = start[0].get("MemTotal") + start[1].get("loaned_kb");
    let floor_kb = start[1].get("min_mem_mb") * 1024;
    vm.ok("trace on");
    for c in &s.commands {
        vm.ok(c);
    }
    vm.ok("trace off");
    let final_cmm = vm.ok("cmm").rows();
    let samples = trace::parse_transcript(&vm.transcript());
    Outcome {
        samples,
        total_kb,
        floor_kb,
        final_cmm,
    }
}

/// Checks the scenario's expectations; returns the failures (empty: all hold).
pub fn check(s: &Scenario, o: &Outcome) -> Vec<String> {
    let mut bad = Vec::new();
    let sm = &o.samples;
    if sm.len() < 5 {
        bad.push(format!("only {} trace samples", sm.len()));
        return bad;
    }
    let loaned: Vec<i64> = sm.iter().map(|x| x.loaned_kb as i64).collect();
    let max_loaned = *loaned.iter().max().unwrap_or(&0);
    for (check, value) in &s.expects {
        let ok = match (check.as_str(), value) {
            ("reaches_kb", Some(v)) => loaned.contains(v),
            ("final_kb", Some(v)) => loaned.last() == Some(v),
            ("within_floor", None) => max_loaned <= o.total_kb - o.floor_kb,
            ("free_at_least_kb", Some(v)) => sm.last().is_some_and(|x| x.free_kb as i64 >= *v),
            ("other_rises", None) => {
                let first = sm.first().and_then(|x| x.other_kb).unwrap_or(0);
                sm.iter().filter_map(|x| x.other_kb).max().unwrap_or(0) > first + 32 * 1024
            }
            ("loan_rises_and_falls", None) => {
                max_loaned >= 16 * 1024 && *loaned.last().unwrap_or(&0) < max_loaned / 2
            }
            ("loan_drops", None) => loaned.windows(2).any(|w| w[1] < w[0]),
            ("oom_freed", None) => {
                let f = o.final_cmm.get("oom_freed_kb").copied().unwrap_or(0);
                let kb = o.final_cmm.get("oom_kb").copied().unwrap_or(1024).max(1);
                f > 0 && f % kb == 0
            }
            _ => {
                bad.push(format!("unknown check {check} {value:?}"));
                continue;
            }
        };
        if !ok {
            bad.push(format!(
                "expect {check} {} failed",
                value.map(|v| v.to_string()).unwrap_or_default()
            ));
        }
    }
    bad
}

/// Writes `<dir>/<name>.csv` and `<dir>/<name>.svg`; returns their paths.
pub fn write_outputs(s: &Scenario, o: &Outcome, dir: &Path) -> Result<(PathBuf, PathBuf), String> {
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let csv = dir.join(format!("{}.csv", s.name));
    let svg = dir.join(format!("{}.svg", s.name));
    std::fs::write(&csv, trace::to_csv(&o.samples)).map_err(|e| e.to_string())?;
    trace::render_svg(&o.samples, &s.title, &svg)?;
    Ok((csv, svg))
}
