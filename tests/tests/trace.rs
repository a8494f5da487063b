//! Every scenario in `tests/scenarios/` runs, its trace satisfies the scenario's
//! expectations, and its CSV and SVG are written (the SVG parses as XML with the
//! axis labels and legend in it).

use lpar_cmm_tests::scenario;

fn run(name: &str) {
    let s = scenario::load(name).unwrap();
    let o = scenario::run(&s);
    let bad = scenario::check(&s, &o);
    assert!(
        bad.is_empty(),
        "{name}: {bad:?}\nsamples: {:?}",
        o.samples.iter().map(|x| x.loaned_kb).collect::<Vec<_>>()
    );
    let dir = lpar_cmm_tests::workspace_root().join("target/trace");
    let (csv, svg) = scenario::write_outputs(&s, &o, &dir).unwrap();
    let csv = std::fs::read_to_string(csv).unwrap();
    assert_eq!(csv.lines().count(), o.samples.len() + 1);
    let text = std::fs::read_to_string(svg).unwrap();
    let doc = roxmltree::Document::parse(&text).expect("the SVG parses");
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    for label in [
        "loaned",
        "target",
        "free",
        "memory (MiB)",
        "time since the first sample (s)",
    ] {
        assert!(text.contains(label), "{name}: no {label:?} in the SVG");
    }
}

#[test]
fn every_scenario_is_tested() {
    let names = scenario::names();
    assert_eq!(names, ["conservative", "inflate_deflate", "oom", "pool"]);
}

#[test]
fn inflate_deflate() {
    run("inflate_deflate");
}

#[test]
fn pool() {
    run("pool");
}

#[test]
fn oom() {
    run("oom");
}

#[test]
fn conservative() {
    run("conservative");
}
