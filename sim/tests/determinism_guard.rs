//! What a run may not depend on, checked on the simulator's source: wall-clock time,
//! environment variables, hash-ordered collections, global or unseeded RNGs, thread
//! timing. The command-line front end (`src/bin/`) is exempt (it reads RUST_LOG, draws a
//! seed for `sim run` without one and prints it), and so is each file's measurement of
//! its own wall time, listed below with the reason.
//!
//! The same scan keeps the simulator's layering: no part imports the run loop.

use std::path::{Path, PathBuf};

const FORBIDDEN: &[(&str, &str)] = &[
    ("SystemTime", "wall-clock time"),
    ("Instant", "wall-clock time"),
    ("std::env", "environment variables"),
    ("thread_rng", "a global RNG"),
    ("OsRng", "an unseeded RNG"),
    ("from_entropy", "an unseeded RNG"),
    ("getrandom", "an unseeded RNG"),
    ("RandomState", "an unseeded hasher"),
    ("HashMap", "hash iteration order"),
    ("HashSet", "hash iteration order"),
    ("thread_local!", "thread-local state"),
    ("static mut", "global mutable state"),
];

/// (file, pattern): uses that cannot reach a run.
const ALLOWED: &[(&str, &str)] = &[
    // The report's wall_time_ms, measured around the run, never read by it.
    ("simulation.rs", "Instant"),
    // The sweep summary's seeds/s, measured around the runs.
    ("sweep.rs", "Instant"),
    // The linearizability search's cache of explored configurations: probed, never
    // iterated, with a fixed hasher (no RandomState), so no order can leak into a run.
    ("search.rs", "HashMap"),
    // Output files are written after a run and never read by one; its tests make
    // scratch directories under the system's temporary directory.
    ("output.rs", "std::env"),
];

fn rust_files(directory: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(directory).expect("source directory is readable") {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            if path.file_name().is_some_and(|name| name == "bin") {
                continue;
            }
            rust_files(&path, found);
        } else if path.extension().is_some_and(|extension| extension == "rs") {
            found.push(path);
        }
    }
}

#[test]
fn simulator_sources_let_nothing_but_the_seed_vary_a_run() {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&source, &mut files);
    assert!(files.len() >= 20, "expected the simulator's modules, found {files:?}");
    let mut violations = Vec::new();
    for file in &files {
        let name = file.file_name().and_then(|name| name.to_str()).unwrap_or_default();
        let text = std::fs::read_to_string(file).expect("readable source");
        for (number, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for (pattern, why) in FORBIDDEN {
                if code.contains(pattern) && !ALLOWED.contains(&(name, pattern)) {
                    violations.push(format!("{}:{}: {pattern} ({why})", file.display(), number + 1));
                }
            }
        }
    }
    assert!(violations.is_empty(), "a run must depend on its seed alone:\n{}", violations.join("\n"));
}

/// The run loop sits on top: `simulation.rs` owns the world and the parts of a run and
/// routes events to them; no part imports it (the parts name the run's events from
/// `event.rs` and act on `world.rs`). A part that reached back into the run loop would
/// bring back the import circle this layering removed.
#[test]
fn no_part_of_the_simulator_imports_the_run_loop() {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&source, &mut files);
    assert!(files.len() >= 20, "expected the simulator's modules, found {files:?}");
    let mut offenders = Vec::new();
    for file in &files {
        let relative = file.strip_prefix(&source).expect("under src").to_string_lossy().replace('\\', "/");
        // The crate root declares the module and runs it (the binary, its user, is not
        // scanned).
        if relative == "lib.rs" || relative == "simulation.rs" {
            continue;
        }
        let text = std::fs::read_to_string(file).expect("readable source");
        for (number, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or_default();
            if code.contains("crate::simulation") || code.contains("super::simulation") {
                offenders.push(format!("{relative}:{}: {}", number + 1, line.trim()));
            }
        }
    }
    assert!(offenders.is_empty(), "parts of the simulator importing the run loop:\n{}", offenders.join("\n"));
}
