//! Balloon traces: parsing the kernel's `trace ...` lines, writing them as CSV,
//! and rendering them as an SVG plot with `plotters`.

use std::fmt::Write as _;
use std::path::Path;

use lpar_pool::trace::{Line, Plot};
use plotters::prelude::*;

/// One `trace t_us=.. loaned_kb=.. target_kb=.. free_kb=.. [other_kb=..]` sample.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Sample {
    /// Microseconds since boot.
    pub t_us: u64,
    /// Loaned memory.
    pub loaned_kb: u64,
    /// The balloon's target.
    pub target_kb: u64,
    /// Free memory in the kernel.
    pub free_kb: u64,
    /// Another partition's share of the pool (pool scenarios only).
    pub other_kb: Option<u64>,
}

/// Parses one console line; `None` unless it is a trace line.
pub fn parse_line(line: &str) -> Option<Sample> {
    let rest = line.strip_prefix("trace ")?;
    let mut s = Sample::default();
    let mut seen = 0;
    for kv in rest.split_whitespace() {
        let (k, v) = kv.split_once('=')?;
        let v: u64 = v.parse().ok()?;
        match k {
            "t_us" => s.t_us = v,
            "loaned_kb" => s.loaned_kb = v,
            "target_kb" => s.target_kb = v,
            "free_kb" => s.free_kb = v,
            "other_kb" => s.other_kb = Some(v),
            _ => continue,
        }
        seen += 1;
    }
    (seen >= 4).then_some(s)
}

/// All trace samples in a transcript.
pub fn parse_transcript(text: &str) -> Vec<Sample> {
    text.lines()
        .filter_map(|l| parse_line(l.trim_end()))
        .collect()
}

/// The samples as CSV with a header row.
pub fn to_csv(samples: &[Sample]) -> String {
    let mut out = String::from("t_us,loaned_kb,target_kb,free_kb,other_kb\n");
    for s in samples {
        let other = s.other_kb.map(|o| o.to_string()).unwrap_or_default();
        let _ = writeln!(
            out,
            "{},{},{},{},{}",
            s.t_us, s.loaned_kb, s.target_kb, s.free_kb, other
        );
    }
    out
}

/// One plotted line: its legend label, colour, and the value it takes from a sample.
type Series = (&'static str, RGBColor, fn(&Sample) -> Option<u64>);

/// Renders the samples as an SVG plot: loaned, target, free and (when present)
/// the other partition's share, in MiB over seconds.
pub fn render_svg(samples: &[Sample], title: &str, path: &Path) -> Result<(), String> {
    if samples.is_empty() {
        return Err("no trace samples to plot".into());
    }
    let t0 = samples[0].t_us;
    let secs = |s: &Sample| (s.t_us - t0) as f64 / 1e6;
    let mib = |kb: u64| kb as f64 / 1024.0;
    let t_max = samples.iter().map(secs).fold(0.0, f64::max).max(0.001);
    let y_max = samples
        .iter()
        .map(|s| {
            [s.loaned_kb, s.target_kb, s.free_kb, s.other_kb.unwrap_or(0)]
                .into_iter()
                .max()
                .unwrap_or(0)
        })
        .max()
        .map(mib)
        .unwrap_or(1.0)
        .max(1.0)
        * 1.1;

    let series: [Series; 4] = [
        ("loaned", RGBColor(0x1f, 0x77, 0xb4), |s| Some(s.loaned_kb)),
        ("target", RGBColor(0xd6, 0x27, 0x28), |s| Some(s.target_kb)),
        ("free", RGBColor(0x2c, 0xa0, 0x2c), |s| Some(s.free_kb)),
        ("other partition's share", RGBColor(0x94, 0x67, 0xbd), |s| {
            s.other_kb
        }),
    ];
    let lines = series
        .into_iter()
        .map(|(name, colour, get)| Line {
            label: name.into(),
            style: colour.stroke_width(2),
            points: samples
                .iter()
                .filter_map(|s| get(s).map(|v| (secs(s), mib(v))))
                .collect(),
        })
        .collect();
    let plot = Plot {
        title,
        x_desc: "time since the first sample (s)",
        size: (900, 520),
        t_max,
        y_max,
    };
    plot.draw(path, lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_trace_lines() {
        let s = parse_line("trace t_us=10 loaned_kb=4 target_kb=8 free_kb=100").unwrap();
        assert_eq!(
            (s.t_us, s.loaned_kb, s.target_kb, s.free_kb, s.other_kb),
            (10, 4, 8, 100, None)
        );
        let s = parse_line("trace t_us=1 loaned_kb=0 target_kb=0 free_kb=5 other_kb=7").unwrap();
        assert_eq!(s.other_kb, Some(7));
        assert!(parse_line("trace t_us=1 loaned_kb=0").is_none());
        assert!(parse_line("[ 1.0 ] trace t_us=1").is_none());
        assert!(parse_line("trace t_us=x loaned_kb=0 target_kb=0 free_kb=5").is_none());
    }

    #[test]
    fn svg_is_valid_xml_with_labels() {
        let samples: Vec<Sample> = (0..50)
            .map(|i| Sample {
                t_us: i * 20_000,
                loaned_kb: i * 1024,
                target_kb: 40 * 1024,
                free_kb: 400_000 - i * 1024,
                other_kb: Some(i * 512),
            })
            .collect();
        let dir = std::env::temp_dir().join(format!("lpar-cmm-svg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("t.svg");
        render_svg(&samples, "unit test", &p).unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        let doc = roxmltree::Document::parse(&text).expect("valid SVG/XML");
        assert_eq!(doc.root_element().tag_name().name(), "svg");
        for label in [
            "loaned",
            "target",
            "free",
            "time since the first sample (s)",
            "memory (MiB)",
        ] {
            assert!(text.contains(label), "{label} missing");
        }
        let csv = to_csv(&samples);
        assert_eq!(csv.lines().count(), 51);
    }
}
