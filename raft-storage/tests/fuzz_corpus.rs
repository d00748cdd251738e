//! Replays the committed seed corpus of the `storage_recovery` fuzz target under `cargo
//! test` (see `support/storage_recovery.rs`); `RAFT_STORAGE_WRITE_SEEDS=1` writes the
//! seeds the support module makes into the corpus (after a change of the file format).

#[path = "support/storage_recovery.rs"]
mod storage_recovery;

use std::path::Path;

#[test]
fn storage_recovery_seed_corpus_runs_clean() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds/storage_recovery");
    if std::env::var_os("RAFT_STORAGE_WRITE_SEEDS").is_some() {
        std::fs::create_dir_all(&corpus).unwrap();
        for (name, input) in storage_recovery::seeds() {
            std::fs::write(corpus.join(name), input).unwrap();
        }
    }
    let mut files: Vec<_> = std::fs::read_dir(&corpus)
        .unwrap_or_else(|error| panic!("seed corpus {} unreadable: {error}", corpus.display()))
        .map(|entry| entry.expect("corpus entry").path())
        .collect();
    files.sort();
    assert!(files.len() >= 6, "expected the committed seed corpus, found {} files", files.len());
    let opened = files.iter().filter(|file| storage_recovery::run(&std::fs::read(file).unwrap()) > 0).count();
    assert!(opened > 0 && opened < files.len(), "intact files open, damaged ones are refused: {opened}");
}

#[test]
fn every_truncation_and_every_flipped_bit_of_every_file_opens_or_is_refused() {
    for (_, input) in storage_recovery::seeds().into_iter().filter(|(name, _)| name.ends_with("intact")) {
        for cut in 1..input.len() {
            storage_recovery::run(&input[..cut]);
        }
        for position in (1..input.len()).step_by(7) {
            let mut damaged = input.clone();
            damaged[position] ^= 1 << (position % 8);
            storage_recovery::run(&damaged);
        }
    }
}
