//! `lpar-pool`: the host pool manager (docs/pool-manager.md).
//!
//! `lpar-pool check <config.toml>` checks a configuration and prints the initial
//! division of the pool.

use std::path::Path;
use std::process::ExitCode;

use lpar_pool::config::Config;
use lpar_pool::policy::{Policy, PAGE};

const USAGE: &str = "usage: lpar-pool check <config.toml>";

fn check(path: &Path) -> Result<(), String> {
    let cfg = Config::load(path).map_err(|e| e.to_string())?;
    let policy =
        Policy::new(cfg.pool / PAGE, cfg.specs(), cfg.params).map_err(|e| e.to_string())?;
    println!("pool_bytes: {}", cfg.pool);
    println!("tick_ms: {}", cfg.tick_ms);
    for p in policy.partitions() {
        println!(
            "{}: logical={} weight={} entitled={} allotted={}",
            p.spec.name,
            p.spec.logical * PAGE,
            p.spec.weight,
            p.spec.entitled * PAGE,
            p.allotment * PAGE
        );
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let r = match args.as_slice() {
        [cmd, path] if cmd == "check" => check(Path::new(path)),
        _ => Err(USAGE.to_string()),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lpar-pool: {e}");
            ExitCode::from(2)
        }
    }
}
