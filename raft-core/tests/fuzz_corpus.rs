//! Replays the committed seed corpus of the `message_intake` fuzz target under
//! `cargo test`, so the cases the fuzzer found keep being checked without nightly.
//! Grow the corpus with `cargo +nightly fuzz run message_intake` in `fuzz/`, minimize
//! it with `cargo fuzz cmin`, and copy it into `fuzz/seeds/message_intake/`.

#[path = "support/message_intake.rs"]
mod message_intake;

use std::path::Path;

#[test]
fn message_intake_seed_corpus_runs_clean() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds/message_intake");
    let mut files: Vec<_> = std::fs::read_dir(&corpus)
        .unwrap_or_else(|error| panic!("seed corpus {} unreadable: {error}", corpus.display()))
        .map(|entry| entry.expect("corpus entry").path())
        .collect();
    files.sort();
    assert!(files.len() >= 100, "expected the committed seed corpus, found {} files", files.len());
    let mut decoded = 0;
    for file in &files {
        let data = std::fs::read(file).expect("corpus file readable");
        decoded += message_intake::run(&data);
    }
    assert!(decoded > files.len(), "the corpus should mostly decode into messages: {decoded}");
}
