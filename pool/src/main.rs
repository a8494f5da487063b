//! `lpar-pool`: the host pool manager (docs/pool-manager.md).
//!
//! - `lpar-pool check <config.toml>`: checks a configuration and prints the
//!   initial division of the pool.
//! - `lpar-pool run <config.toml> [--out <dir>]`: starts (or attaches to) the
//!   guests, manages the pool until `duration_s` or until every guest is gone,
//!   then writes `<dir>/pool.csv` and `<dir>/pool.svg` and prints the summary.
//!   With a terminal the table is redrawn every tick; without one it is printed
//!   every 10 s. Exits 1 if Σ allotments ever exceeded the pool. SIGINT or
//!   SIGTERM ends the run the same way (guests shut down, trace and plot
//!   written, summary printed).
//!
//! Environment: `QEMU` (default `qemu-system-ppc64`), `LPAR_CMM_KERNEL`,
//! `LPAR_CMM_BOOTROM` (default: under `target/`).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use lpar_pool::config::Config;
use lpar_pool::guest::{Guest, Launch};
use lpar_pool::manager::Manager;
use lpar_pool::policy::PAGE_SIZE;

const USAGE: &str =
    "usage: lpar-pool check <config.toml>\n       lpar-pool run <config.toml> [--out <dir>]";

fn check(path: &Path) -> Result<(), String> {
    let cfg = Config::load(path).map_err(|e| e.to_string())?;
    let policy = cfg.policy().map_err(|e| e.to_string())?;
    println!("pool_bytes: {}", cfg.pool);
    println!("tick_ms: {}", cfg.tick_ms);
    for p in policy.partitions() {
        println!(
            "{}: logical={} weight={} entitled={} allotted={}",
            p.spec.name,
            p.spec.logical * PAGE_SIZE,
            p.spec.weight,
            p.spec.entitled * PAGE_SIZE,
            p.allotment * PAGE_SIZE
        );
    }
    Ok(())
}

fn env_path(var: &str, default: &str) -> PathBuf {
    std::env::var_os(var).map_or_else(|| PathBuf::from(default), PathBuf::from)
}

fn run(path: &Path, out: &Path) -> Result<bool, String> {
    let cfg = Config::load(path).map_err(|e| e.to_string())?;
    // Refused before anything starts.
    cfg.policy().map_err(|e| e.to_string())?;
    let launch = Launch {
        qemu: env_path("QEMU", "qemu-system-ppc64"),
        kernel: env_path(
            "LPAR_CMM_KERNEL",
            "target/powerpc64-unknown-linux-gnu/release/lpar-cmm",
        ),
        bootrom: env_path("LPAR_CMM_BOOTROM", "target/boot/bootrom.bin"),
        dir: out.to_path_buf(),
    };
    let mut guests = Vec::new();
    for p in &cfg.partitions {
        let g = match &p.qmp {
            Some(sock) => Guest::attach(&p.name, sock),
            None => Guest::start(p, &launch),
        }
        .map_err(|e| format!("partition {}: {e}", p.name))?;
        eprintln!(
            "lpar-pool: {}: {} (pid {})",
            p.name,
            if p.qmp.is_some() {
                "attached"
            } else {
                "started"
            },
            g.pid().map_or_else(|| "?".into(), |p| p.to_string())
        );
        guests.push(g);
    }
    let tick = Duration::from_millis(cfg.tick_ms);
    let print_every = (10_000 / cfg.tick_ms).max(1);
    let duration = cfg.duration_ms;
    let mut m = Manager::new(cfg, guests)?;
    lpar_pool::proc::stop_on_signals();
    let tty = std::io::stdout().is_terminal();
    let start = Instant::now();
    let mut n: u32 = 0;
    loop {
        m.tick();
        for msg in m.take_messages() {
            eprintln!("lpar-pool: t={:.1}s {msg}", m.elapsed_ms() as f64 / 1000.0);
        }
        let table = lpar_pool::table::render(m.config(), m.last_samples());
        if tty {
            print!("\x1b[H\x1b[2J{table}");
        } else if m.policy().ticks() % print_every == 0 {
            println!("{table}");
        }
        if duration.is_some_and(|d| m.elapsed_ms() >= d) {
            break;
        }
        if !m.any_alive() {
            eprintln!("lpar-pool: every guest is gone");
            break;
        }
        n = n.saturating_add(1);
        let next = start + tick * n;
        // Sleep in slices so that a signal ends the run at once.
        while let Some(wait) = next.checked_duration_since(Instant::now()) {
            if lpar_pool::proc::stop_requested() {
                break;
            }
            std::thread::sleep(wait.min(Duration::from_millis(50)));
        }
        if lpar_pool::proc::stop_requested() {
            eprintln!(
                "lpar-pool: signal received: stopping (guests shut down, trace and plot written)"
            );
            break;
        }
    }
    std::fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let csv = out.join("pool.csv");
    std::fs::write(&csv, lpar_pool::trace::to_csv(m.config(), m.samples()))
        .map_err(|e| format!("{}: {e}", csv.display()))?;
    let svg = out.join("pool.svg");
    let title = format!(
        "{} guests sharing a {} MiB pool",
        m.config().partitions.len(),
        m.config().pool >> 20
    );
    lpar_pool::trace::render_svg(m.config(), m.samples(), &title, &svg)?;
    println!("{}", lpar_pool::table::render(m.config(), m.last_samples()));
    println!("trace: {}\nplot: {}", csv.display(), svg.display());
    let summary = m.summary();
    print!("{summary}");
    Ok(m.policy().violations() == 0)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let r = match args.as_slice() {
        [cmd, path] if cmd == "check" => check(Path::new(path)).map(|()| true),
        [cmd, path] if cmd == "run" => run(Path::new(path), Path::new("target/pool")),
        [cmd, path, flag, out] if cmd == "run" && flag == "--out" => {
            run(Path::new(path), Path::new(out))
        }
        _ => Err(USAGE.to_string()),
    };
    match r {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("lpar-pool: {e}");
            ExitCode::from(2)
        }
    }
}
