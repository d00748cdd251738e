//! The documents say what the project does: they point inside the repository, and the
//! commands they give do what they claim.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|error| panic!("{path}: {error}"))
}

/// Every Markdown and Rust file of the repository, outside build output.
fn documents(directory: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(directory).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().and_then(|name| name.to_str()).unwrap_or_default();
        if path.is_dir() {
            if !matches!(name, "target" | ".git" | "seeds" | "corpus" | "artifacts") {
                documents(&path, found);
            }
        } else if name.ends_with(".md") || name.ends_with(".rs") || name.ends_with(".toml") {
            found.push(path);
        }
    }
}

#[test]
fn no_document_sends_readers_outside_the_repository() {
    let mut files = Vec::new();
    documents(&root(), &mut files);
    assert!(files.len() > 50, "{files:?}");
    // Spelled in two parts so this file does not name it.
    let shared = concat!("..", "/shared");
    let outside: Vec<String> = files
        .iter()
        .filter(|file| std::fs::read_to_string(file).is_ok_and(|text| text.contains(shared)))
        .map(|file| file.display().to_string())
        .collect();
    assert!(outside.is_empty(), "these point outside the repository: {outside:?}");
    assert!(read("README.md").contains("ARCHITECTURE.md"));
}

#[test]
fn the_readme_fuzzes_into_a_scratch_corpus_never_into_the_committed_seeds() {
    let readme = read("README.md");
    let runs: Vec<&str> =
        readme.lines().filter(|line| line.contains("fuzz run ") && line.contains("seeds/")).collect();
    assert!(runs.len() >= 2, "the README shows how to fuzz with the seeds and merge: {runs:?}");
    for line in runs {
        let directories: Vec<&str> = line
            .split_whitespace()
            .filter(|word| word.starts_with("corpus/") || word.starts_with("seeds/"))
            .collect();
        // libFuzzer writes new inputs into the first directory; with -merge=1 into the
        // first too, which is then the point.
        let writes_into = directories.first().copied().unwrap_or_default();
        if line.contains("-merge=1") {
            assert!(writes_into.starts_with("seeds/"), "{line}");
        } else {
            assert!(
                writes_into.starts_with("corpus/"),
                "a fuzzing run must not write into the seeds: {line}"
            );
        }
    }
    let ignored = read(".gitignore");
    assert!(ignored.lines().any(|line| line == "/fuzz/corpus"), "the scratch corpus is not committed");
}

#[test]
fn the_readmes_data_directories_are_ignored_by_git() {
    let readme = read("README.md");
    let ignored = read(".gitignore");
    let directories: Vec<&str> = readme
        .split("--data-dir ")
        .skip(1)
        .filter_map(|rest| rest.split(|c: char| c.is_whitespace() || c == '`' || c == ')').next())
        .filter(|directory| !directory.is_empty() && *directory != "DIR")
        .collect();
    assert!(!directories.is_empty(), "the README starts servers with --data-dir");
    for directory in directories {
        let top = directory.split('/').next().unwrap_or_default();
        assert!(
            ignored.lines().any(|line| line.trim_matches('/') == top),
            "README's --data-dir {directory} would show in git status: add /{top}/ to .gitignore"
        );
    }
    assert!(!readme.contains("Planned, as an issue: `sim-scenarios`"), "sim-scenarios exists");
}
