//! The core's contract, checked on its source: no IO, no clock, no threads, no
//! environment, no global or thread-local RNG, no hash-ordered collections.
//! (The in-crate test network under `src/tests/` is exempt; it never ships.)

use std::path::{Path, PathBuf};

const FORBIDDEN: &[(&str, &str)] = &[
    ("std::fs", "file IO"),
    ("std::net", "network IO"),
    ("std::io::", "IO"),
    ("std::env", "environment variables"),
    ("std::thread", "threads"),
    ("std::process", "processes"),
    ("Instant", "wall-clock time"),
    ("SystemTime", "wall-clock time"),
    ("thread_rng", "a global RNG"),
    ("OsRng", "an unseeded RNG"),
    ("from_entropy", "an unseeded RNG"),
    ("getrandom", "an unseeded RNG"),
    ("HashMap", "hash iteration order"),
    ("HashSet", "hash iteration order"),
    ("thread_local!", "thread-local state"),
    ("static mut", "global mutable state"),
];

fn rust_files(directory: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(directory).expect("source directory is readable") {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            if path.file_name().is_some_and(|name| name == "tests") {
                continue;
            }
            rust_files(&path, found);
        } else if path.extension().is_some_and(|extension| extension == "rs") {
            found.push(path);
        }
    }
}

#[test]
fn core_sources_use_no_io_clock_threads_or_unseeded_randomness() {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&source, &mut files);
    assert!(files.len() >= 10, "expected the core's modules, found {files:?}");
    let mut violations = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("readable source");
        for (number, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for (pattern, what) in FORBIDDEN {
                if code.contains(pattern) {
                    violations.push(format!("{}:{}: {pattern} ({what})", file.display(), number + 1));
                }
            }
        }
    }
    assert!(violations.is_empty(), "raft-core must stay pure:\n{}", violations.join("\n"));
}
