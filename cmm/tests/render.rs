//! The console's fixed formats (docs/console.md): amsstat rows, sysfs lines, the
//! trace line, meminfo, and the `cmm` rows.

mod common;

use cmm::render::{
    write_amsstat_cmm, write_amsstat_meminfo, write_amsstat_row, write_cmm_rows, write_meminfo,
    write_sysfs, write_trace,
};
use cmm::Param;
use cmm::Workload;
use common::{Request, World};

fn text(f: impl FnOnce(&mut String) -> core::fmt::Result) -> String {
    let mut s = String::new();
    f(&mut s).unwrap();
    s
}

/// Parses a row as the tests do: `^\s*([A-Za-z_]+):\s+(-?\d+)`.
fn row(line: &str) -> Option<(&str, i64)> {
    let line = line.trim_start();
    let (name, rest) = line.split_once(':')?;
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphabetic() || c == '_') {
        return None;
    }
    if !rest.starts_with(char::is_whitespace) {
        return None;
    }
    let rest = rest.trim_start();
    let end = rest
        .char_indices()
        .find(|&(i, c)| !(c.is_ascii_digit() || (i == 0 && c == '-')))
        .map_or(rest.len(), |(i, _)| i);
    Some((name, rest[..end].parse().ok()?))
}

fn loaned_world() -> World {
    let mut w = World::new(4096, 64, 4);
    w.hv.request = Request::LoanPages(100);
    w.poll();
    w.alloc(10, Workload::Cache).unwrap();
    w
}

#[test]
fn amsstat_row_is_printf_4_30_30() {
    let s = text(|s| write_amsstat_row(s, "disable", 0));
    assert_eq!(s, format!("{:<4} {:<30} {:<30}\n", " ", "disable:", "0"));
    assert_eq!(s.len(), 4 + 1 + 30 + 1 + 30 + 1);
    let long = text(|s| write_amsstat_row(s, "a_name_longer_than_thirty_columns", "x"));
    assert!(long.starts_with("     a_name_longer_than_thirty_columns: x"));
}

#[test]
fn amsstat_cmm_rows() {
    let w = loaned_world();
    let s = text(|s| write_amsstat_cmm(s, &w.mm));
    // Every parameter (as sysfs lists them), Linux's five first, then cmm0's files.
    let names: Vec<&str> = s
        .lines()
        .map(|l| l.trim_start().split(':').next().unwrap())
        .collect();
    assert_eq!(
        &names[..5],
        ["disable", "debug", "min_mem_mb", "oom_kb", "delay"]
    );
    assert_eq!(names.len(), Param::ALL.len() + 3);
    assert!(names.contains(&"policy") && names.contains(&"poison"));
    let rows: Vec<(&str, i64)> = s.lines().filter_map(row).collect();
    for want in [
        ("disable", 0),
        ("debug", 0),
        ("min_mem_mb", 4),
        ("oom_kb", 1024),
        ("delay", 0),
        ("loaned_kb", 400),
        ("loaned_target_kb", 400),
        ("oom_freed_kb", 0),
    ] {
        assert!(rows.contains(&want), "{want:?} missing in {rows:?}");
    }
    assert_eq!(
        &rows[rows.len() - 3..],
        [
            ("loaned_kb", 400),
            ("loaned_target_kb", 400),
            ("oom_freed_kb", 0)
        ]
    );
}

#[test]
fn sysfs_lines() {
    let w = loaned_world();
    let s = text(|s| write_sysfs(s, &w.mm));
    for want in [
        "/sys/module/cmm/parameters/disable=0",
        "/sys/module/cmm/parameters/min_mem_mb=4",
        "/sys/module/cmm/parameters/delay_ms=1",
        "/sys/module/cmm/parameters/policy=aggressive",
        "/sys/devices/system/cmm/cmm0/loaned_kb=400",
        "/sys/devices/system/cmm/cmm0/loaned_target_kb=400",
        "/sys/devices/system/cmm/cmm0/oom_freed_kb=0",
    ] {
        assert!(s.lines().any(|l| l == want), "missing {want} in\n{s}");
    }
}

#[test]
fn trace_line() {
    let w = loaned_world();
    let s = text(|s| write_trace(s, 1234, &w.mm, None));
    let free_kb = w.mm.frames().counts().free * 4;
    assert_eq!(
        s,
        format!("trace t_us=1234 loaned_kb=400 target_kb=400 free_kb={free_kb}\n")
    );
    let s = text(|s| write_trace(s, 1234, &w.mm, Some(2048)));
    assert_eq!(
        s,
        format!("trace t_us=1234 loaned_kb=400 target_kb=400 free_kb={free_kb} other_kb=2048\n")
    );
}

#[test]
fn meminfo_excludes_loaned_memory() {
    let w = loaned_world();
    let m = w.mm.meminfo();
    assert_eq!(m.mem_total_kb, (4032 - 100) * 4);
    assert_eq!(m.mem_free_kb, (4032 - 110) * 4);
    assert_eq!(m.cached_kb, 40);
    let s = text(|s| write_meminfo(s, &m));
    assert!(s.starts_with("MemTotal:          15728 kB\n"), "{s}");
    let rows: Vec<(&str, i64)> = s.lines().map(|l| row(l).unwrap()).collect();
    assert_eq!(rows[2], ("Cached", 40));
    let a = text(|s| write_amsstat_meminfo(s, &m));
    assert_eq!(row(a.lines().next().unwrap()), Some(("MemTotal", 15728)));
    assert!(a.lines().next().unwrap().contains("15728 kB"));
}

#[test]
fn cmm_rows_are_name_value() {
    let w = loaned_world();
    let s = text(|s| write_cmm_rows(s, &w.mm));
    let rows: Vec<(&str, i64)> = s.lines().filter_map(row).collect();
    let get = |n: &str| rows.iter().find(|r| r.0 == n).map(|r| r.1);
    assert_eq!(get("loaned_kb"), Some(400));
    assert_eq!(get("loaned_pages"), Some(100));
    assert_eq!(get("pages_loaned_total"), Some(100));
    assert_eq!(get("cache_pages"), Some(10));
    assert_eq!(get("loan_request"), Some(400 * 1024));
    assert_eq!(get("poison"), Some(0));
    assert!(s.contains("policy: aggressive\n"));
    assert!(s.contains("shortfall: none\n"));
    for line in s.lines() {
        assert!(line.contains(": "), "{line}");
        assert!(!line.starts_with('['));
    }
}
