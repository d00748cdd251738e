//! The sans-IO crates' purity check, shared by raft-core's and raft-host's tests: their
//! sources may not reach IO, a clock, threads, the environment, an unseeded RNG or a
//! hash-ordered collection.

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

fn rust_files(directory: &Path, skip: &str, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(directory).expect("source directory is readable") {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            if path.file_name().is_some_and(|name| name == skip) {
                continue;
            }
            rust_files(&path, skip, found);
        } else if path.extension().is_some_and(|extension| extension == "rs") {
            found.push(path);
        }
    }
}

/// Every forbidden use in the Rust files under `source` (skipping directories named
/// `skip`), as "file:line: pattern (why)"; and how many files were scanned.
pub(crate) fn impurities(source: &Path, skip: &str) -> (Vec<String>, usize) {
    let mut files = Vec::new();
    rust_files(source, skip, &mut files);
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
    (violations, files.len())
}
