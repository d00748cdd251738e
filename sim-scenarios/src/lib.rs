//! # sim-scenarios: scripted scenarios for the simulator
//!
//! Each scenario is a transcript in `scenarios/NAME.txt` (the format and the commands:
//! `sim::scenario`): a schedule written out message by message, with what the cluster
//! must do at each step. `sim scenario list` names them, `sim scenario run NAME` runs
//! one (`--rewrite` records the actual output), and `cargo test` runs them all
//! (`tests/tests/scenarios.rs`), with every checker of the simulator on.

/// Every scenario: its name and its transcript.
pub const SCENARIOS: &[(&str, &str)] = include!(concat!(env!("OUT_DIR"), "/scenarios.rs"));

/// The transcript of scenario `name`, if there is one.
pub fn transcript(name: &str) -> Option<&'static str> {
    SCENARIOS.iter().find(|(scenario, _)| *scenario == name).map(|(_, text)| *text)
}

/// Where the transcripts live in the source tree (for rewriting them).
pub fn source_directory() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios")
}

/// Every scenario's name: those built in, and any new transcript in the source tree.
pub fn names() -> Vec<String> {
    let mut names: Vec<String> = SCENARIOS.iter().map(|(name, _)| name.to_string()).collect();
    if let Ok(entries) = std::fs::read_dir(source_directory()) {
        for entry in entries.flatten() {
            if let Some(name) = entry.file_name().to_str().and_then(|name| name.strip_suffix(".txt")) {
                names.push(name.to_string());
            }
        }
    }
    names.sort();
    names.dedup();
    names
}

/// The transcript of `name` as it is now: from the source tree when this build's tree
/// is at hand (so an edited transcript runs without a rebuild), else the built-in copy.
pub fn load(name: &str) -> Option<String> {
    match std::fs::read_to_string(source_directory().join(format!("{name}.txt"))) {
        Ok(text) => Some(text),
        Err(_) => transcript(name).map(str::to_string),
    }
}
