//! `make trace SCENARIO=<name>`: runs `tests/scenarios/<name>.scn` under QEMU with
//! `trace on` and writes `target/trace/<name>.svg` and `<name>.csv`. Exits 1 if
//! the scenario's expectations fail.

use lpar_cmm_tests::scenario;

fn main() {
    let name = std::env::args().nth(1).unwrap_or_default();
    if name.is_empty() {
        eprintln!(
            "usage: trace <scenario>   (one of: {})",
            scenario::names().join(", ")
        );
        std::process::exit(2);
    }
    let s = match scenario::load(&name) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let o = scenario::run(&s);
    let dir = lpar_cmm_tests::workspace_root().join("target/trace");
    match scenario::write_outputs(&s, &o, &dir) {
        Ok((csv, svg)) => println!(
            "{} samples\n{}\n{}",
            o.samples.len(),
            csv.display(),
            svg.display()
        ),
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    }
    let bad = scenario::check(&s, &o);
    if !bad.is_empty() {
        eprintln!("scenario {name}: {}", bad.join("; "));
        std::process::exit(1);
    }
    println!("scenario {name}: all expectations hold");
}
