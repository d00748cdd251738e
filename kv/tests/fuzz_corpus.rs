//! Replays the committed seed corpus of the `kv_apply` fuzz target under `cargo test`,
//! so the cases the fuzzer found keep being checked without nightly. README.md says how
//! to grow it without writing into it, and how to merge new inputs back.

#[path = "support/kv_apply.rs"]
mod kv_apply;

use std::path::Path;

#[test]
fn kv_apply_seed_corpus_runs_clean() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds/kv_apply");
    let mut files: Vec<_> = std::fs::read_dir(&corpus)
        .unwrap_or_else(|error| panic!("seed corpus {} unreadable: {error}", corpus.display()))
        .map(|entry| entry.expect("corpus entry").path())
        .collect();
    files.sort();
    assert!(files.len() >= 50, "expected the committed seed corpus, found {} files", files.len());
    let accepted: usize =
        files.iter().map(|file| kv_apply::run(&std::fs::read(file).expect("readable"))).sum();
    assert!(accepted > files.len() / 4, "the corpus should hold commands and snapshots: {accepted}");
}
