//! Replays the committed seed corpus of the `resp_session` fuzz target under `cargo test`
//! (see `support/resp_session.rs`), and a few inputs made here that every build must
//! take: pipelines, every command of the table, protocol errors, a cut at every byte.

#[path = "support/resp_session.rs"]
mod resp_session;

use std::path::Path;

#[test]
fn resp_session_seed_corpus_runs_clean() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds/resp_session");
    let mut files: Vec<_> = std::fs::read_dir(&corpus)
        .unwrap_or_else(|error| panic!("seed corpus {} unreadable: {error}", corpus.display()))
        .map(|entry| entry.expect("corpus entry").path())
        .collect();
    files.sort();
    assert!(files.len() >= 10, "expected the committed seed corpus, found {} files", files.len());
    let written: usize =
        files.iter().map(|file| resp_session::run(&std::fs::read(file).expect("readable"))).sum();
    assert!(written > 0, "the seeds hold commands that get replies");
}

#[test]
fn every_command_of_the_table_and_every_cut_of_a_pipeline_runs_clean() {
    let mut pipeline = Vec::new();
    for spec in kv::resp::COMMANDS {
        let mut command =
            format!("*{}\r\n${}\r\n{}\r\n", spec.arity.unsigned_abs(), spec.name.len(), spec.name);
        for _ in 1..spec.arity.unsigned_abs() {
            command.push_str("$1\r\n1\r\n");
        }
        pipeline.extend_from_slice(command.as_bytes());
    }
    pipeline.extend_from_slice(b"SET a b\r\nGET a\r\nKV.EXEC 1 1 SET a c\r\nQUIT\r\n");
    for piece in [1u8, 3, 7, 64, 255] {
        let mut input = vec![piece];
        input.extend_from_slice(&pipeline);
        assert!(resp_session::run(&input) > 0);
    }
    for cut in 0..pipeline.len() {
        let mut input = vec![13];
        input.extend_from_slice(&pipeline[..cut]);
        resp_session::run(&input);
    }
}
