//! The regression corpus: `tests/regressions/` holds the repro file of every bug the
//! testbed has found (in the core, the driver or the testbed itself) and of every
//! checker that must keep firing, each with a note saying what it was. Each is
//! replayed from its saved plan and must reach the verdict it records.
//!
//! To add one: `sim run --seed N [options] --record tests/regressions/NAME.json --note
//! "what it found"` (README, "The regression corpus").

use sim::repro;
use std::path::{Path, PathBuf};

fn entries() -> Vec<PathBuf> {
    let directory = Path::new(env!("CARGO_MANIFEST_DIR")).join("regressions");
    let mut entries: Vec<PathBuf> = std::fs::read_dir(&directory)
        .unwrap_or_else(|error| panic!("{}: {error}", directory.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|extension| extension == "json"))
        .collect();
    entries.sort();
    entries
}

#[test]
fn every_corpus_entry_replays_to_its_recorded_verdict() {
    let entries = entries();
    assert!(entries.len() >= 8, "the corpus lost entries: {entries:?}");
    let mut wrong = Vec::new();
    for path in &entries {
        let file = repro::load(path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
        let note = file.note.as_deref().unwrap_or_default();
        assert!(!note.trim().is_empty(), "{}: a corpus entry must say what it was (--note)", path.display());
        let report = sim::run(&file.options, &file.plan, None).unwrap();
        let invariant = |failure: Option<&sim::Failure>| failure.map(|failure| failure.violation.invariant);
        let expected = (file.verdict, invariant(file.violation.as_ref()));
        let found = (report.verdict, invariant(report.violation.as_ref()));
        if expected != found {
            wrong.push(format!(
                "{}: recorded {expected:?}, now {found:?} ({note})\n  reproduce: sim replay {}",
                path.display(),
                path.display()
            ));
        }
    }
    assert!(wrong.is_empty(), "corpus entries that changed verdict:\n{}", wrong.join("\n"));
}
