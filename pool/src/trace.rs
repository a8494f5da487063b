//! The run as a CSV trace (one row per partition per tick) and an SVG plot
//! (plotters): each partition's allotment (solid) and what it holds (thin), Σ
//! QEMU RSS and the pool, in MiB over seconds.

use std::fmt::Write as _;
use std::path::Path;

use plotters::prelude::*;

use crate::config::Config;
use crate::manager::Sample;

/// The CSV header.
pub const CSV_HEADER: &str =
    "tick,t_ms,partition,logical,weight,entitled,share,allotted,held,loaned,rss,demand,used,faults,state";

/// The samples as CSV (bytes; empty fields where unknown).
pub fn to_csv(cfg: &Config, samples: &[Sample]) -> String {
    let o = |v: Option<u64>| v.map(|v| v.to_string()).unwrap_or_default();
    let mut out = String::from(CSV_HEADER);
    out.push('\n');
    for s in samples {
        let Some(p) = cfg.partitions.get(s.partition) else {
            continue;
        };
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
            s.tick,
            s.t_ms,
            p.name,
            p.logical,
            p.weight,
            p.entitled,
            s.share,
            s.allotted,
            s.held,
            p.logical.saturating_sub(s.held),
            o(s.rss),
            s.demand,
            o(s.used),
            o(s.faults),
            s.state.name()
        );
    }
    out
}

const COLOURS: [RGBColor; 6] = [
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0xd6, 0x27, 0x28),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0x94, 0x67, 0xbd),
    RGBColor(0xff, 0x7f, 0x0e),
    RGBColor(0x8c, 0x56, 0x4b),
];

/// One line of a plot: its legend label, its style and its points (seconds, MiB).
pub struct Line {
    /// The legend's label.
    pub label: String,
    /// Colour and width.
    pub style: ShapeStyle,
    /// (seconds, MiB).
    pub points: Vec<(f64, f64)>,
}

/// A plot of memory over time: the frame both the manager's plot and the
/// kernel's trace plots (`make trace`) are drawn in.
pub struct Plot<'a> {
    /// The caption.
    pub title: &'a str,
    /// What the time axis counts from.
    pub x_desc: &'a str,
    /// Width and height in pixels.
    pub size: (u32, u32),
    /// The time axis ends here (s).
    pub t_max: f64,
    /// The memory axis ends here (MiB).
    pub y_max: f64,
}

impl Plot<'_> {
    /// Draws `lines` (a line without points is left out, legend and all), with
    /// a legend, as an SVG file at `path`.
    pub fn draw(&self, path: &Path, lines: Vec<Line>) -> Result<(), String> {
        let root = SVGBackend::new(path, self.size).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let mut chart = ChartBuilder::on(&root)
            .caption(self.title, ("sans-serif", 22))
            .margin(12)
            .x_label_area_size(44)
            .y_label_area_size(64)
            .build_cartesian_2d(0.0..self.t_max, 0.0..self.y_max)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc(self.x_desc)
            .y_desc("memory (MiB)")
            .draw()
            .map_err(|e| e.to_string())?;
        for line in lines.into_iter().filter(|l| !l.points.is_empty()) {
            let style = line.style;
            chart
                .draw_series(LineSeries::new(line.points, style))
                .map_err(|e| e.to_string())?
                .label(line.label)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], style));
        }
        chart
            .configure_series_labels()
            .border_style(BLACK)
            .background_style(WHITE.mix(0.85))
            .position(SeriesLabelPosition::UpperRight)
            .draw()
            .map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())
    }
}

/// Renders the plot.
pub fn render_svg(
    cfg: &Config,
    samples: &[Sample],
    title: &str,
    path: &Path,
) -> Result<(), String> {
    let Some(last) = samples.last() else {
        return Err("no samples to plot".into());
    };
    let secs = |s: &Sample| s.t_ms as f64 / 1000.0;
    let mib = |b: u64| b as f64 / f64::from(1u32 << 20);
    let t_max = secs(last).max(0.001);
    let ticks: Vec<u64> = {
        let mut t: Vec<u64> = samples.iter().map(|s| s.tick).collect();
        t.dedup();
        t
    };
    let rss_total: Vec<(f64, f64)> = ticks
        .iter()
        .filter_map(|&t| {
            let of_tick: Vec<&Sample> = samples.iter().filter(|s| s.tick == t).collect();
            let total: u64 = of_tick.iter().filter_map(|s| s.rss).sum();
            Some((secs(of_tick.first()?), mib(total)))
        })
        .collect();
    let y_max = samples
        .iter()
        .map(|s| s.allotted.max(s.held))
        .chain(std::iter::once(cfg.pool))
        .map(mib)
        .chain(rss_total.iter().map(|p| p.1))
        .fold(1.0, f64::max)
        * 1.1;

    let pool = mib(cfg.pool);
    let mut lines = vec![
        Line {
            label: "pool".into(),
            style: BLACK.stroke_width(1),
            points: vec![(0.0, pool), (t_max, pool)],
        },
        Line {
            label: "sum of QEMU RSS".into(),
            style: RGBColor(0x60, 0x60, 0x60).stroke_width(2),
            points: rss_total,
        },
    ];
    for (i, p) in cfg.partitions.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let of: Vec<&Sample> = samples.iter().filter(|s| s.partition == i).collect();
        lines.push(Line {
            label: format!("{}: allotted", p.name),
            style: colour.stroke_width(3),
            points: of.iter().map(|s| (secs(s), mib(s.allotted))).collect(),
        });
        lines.push(Line {
            label: format!("{}: held", p.name),
            style: colour.mix(0.5).stroke_width(1),
            points: of.iter().map(|s| (secs(s), mib(s.held))).collect(),
        });
    }
    let plot = Plot {
        title,
        x_desc: "time since the manager started (s)",
        size: (960, 560),
        t_max,
        y_max,
    };
    plot.draw(path, lines)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::State;

    fn cfg() -> Config {
        Config::parse("pool = \"768M\"\n[[partition]]\nname = \"grow\"\nlogical = \"512M\"\n[[partition]]\nname = \"idle\"\nlogical = \"512M\"\n").unwrap()
    }

    fn samples() -> Vec<Sample> {
        (1..=20u64)
            .flat_map(|t| {
                (0..2).map(move |p| Sample {
                    tick: t,
                    t_ms: t * 250,
                    partition: p,
                    share: 300 << 20,
                    allotted: (256 + if p == 0 { t } else { 0 }) << 20,
                    held: 256 << 20,
                    rss: Some(100 << 20),
                    demand: 300 << 20,
                    used: Some(10 << 20),
                    faults: None,
                    state: State::Following,
                })
            })
            .collect()
    }

    #[test]
    fn csv_has_a_row_per_partition_per_tick() {
        let csv = to_csv(&cfg(), &samples());
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines.len(), 41);
        assert_eq!(lines[0], CSV_HEADER);
        assert_eq!(
            lines[1],
            "1,250,grow,536870912,128,67108864,314572800,269484032,268435456,268435456,104857600,314572800,10485760,,ok"
        );
    }

    #[test]
    fn svg_is_xml_with_every_label() {
        let dir = std::env::temp_dir().join(format!("lpar-pool-svg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("t.svg");
        render_svg(&cfg(), &samples(), "unit test", &p).unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(text.starts_with("<svg"), "{}", &text[..40]);
        assert!(text.trim_end().ends_with("</svg>"));
        for l in [
            "grow: allotted",
            "idle: held",
            "pool",
            "sum of QEMU RSS",
            "memory (MiB)",
        ] {
            assert!(text.contains(l), "{l} missing");
        }
        assert!(render_svg(&cfg(), &[], "x", &p).is_err());
    }

    #[test]
    fn a_line_without_points_has_no_legend() {
        let dir = std::env::temp_dir().join(format!("lpar-pool-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("t.svg");
        let line = |label: &str, points: Vec<(f64, f64)>| Line {
            label: label.into(),
            style: BLACK.stroke_width(1),
            points,
        };
        let plot = Plot {
            title: "unit test",
            x_desc: "seconds",
            size: (400, 300),
            t_max: 1.0,
            y_max: 10.0,
        };
        let lines = vec![
            line("drawn", vec![(0.0, 1.0), (1.0, 2.0)]),
            line("empty", vec![]),
        ];
        plot.draw(&p, lines).unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(text.contains("drawn") && text.contains("seconds"));
        assert!(!text.contains("empty"));
    }
}
