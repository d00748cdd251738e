//! The run loop sits on top: `simulation.rs` owns the world and the parts of a run and
//! routes events to them; no part of the simulator imports it (the parts name the
//! run's events from `event.rs` and act on `world.rs`). A part that reached back into
//! the run loop would bring back the import circle this layering removed.

use std::path::{Path, PathBuf};

fn rust_files(directory: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(directory).expect("source directory is readable") {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|extension| extension == "rs") {
            found.push(path);
        }
    }
}

#[test]
fn no_part_of_the_simulator_imports_the_run_loop() {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&source, &mut files);
    assert!(files.len() >= 20, "expected the simulator's modules, found {files:?}");
    let mut offenders = Vec::new();
    for file in &files {
        let relative = file.strip_prefix(&source).expect("under src").to_string_lossy().replace('\\', "/");
        // The crate root declares the module and runs it; the binary is its user.
        if relative == "lib.rs" || relative == "simulation.rs" || relative.starts_with("bin/") {
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
