//! Replays every committed corpus file and every saved crash of every fuzz
//! target through its entry: a panic is a regression.

use std::cell::RefCell;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

thread_local! {
    /// The file being replayed, for the panic message (panics abort here).
    static CURRENT: RefCell<String> = const { RefCell::new(String::new()) };
}

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(rd) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = rd
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    v.sort();
    v
}

#[test]
fn every_target_has_a_fuzz_target_file_and_a_corpus() {
    for (name, _) in fuzz_entries::TARGETS {
        let target = fuzz_dir().join("fuzz_targets").join(format!("{name}.rs"));
        assert!(target.is_file(), "{} missing", target.display());
        let corpus = files(&fuzz_dir().join("corpus").join(name));
        assert!(!corpus.is_empty(), "no corpus for {name}");
    }
    // And no stray target without an entry.
    for f in files(&fuzz_dir().join("fuzz_targets")) {
        let stem = f.file_stem().unwrap().to_str().unwrap().to_string();
        assert!(
            fuzz_entries::entry(&stem).is_some(),
            "fuzz target {stem} has no entry"
        );
    }
}

#[test]
fn corpus_and_crashes_replay() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let file = CURRENT.with(|c| c.borrow().clone());
        let _ = writeln!(std::io::stderr(), "replaying {file}:");
        default(info);
    }));
    let mut replayed = 0;
    for (name, entry) in fuzz_entries::TARGETS {
        for kind in ["corpus", "crashes"] {
            for f in files(&fuzz_dir().join(kind).join(name)) {
                let data = fs::read(&f).expect("read");
                CURRENT.with(|c| *c.borrow_mut() = format!("{name}: {}", f.display()));
                entry(&data);
                replayed += 1;
            }
        }
    }
    assert!(replayed >= fuzz_entries::TARGETS.len());
}
