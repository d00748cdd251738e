//! Output files that are all or nothing: each is written under a temporary name next
//! to its destination and renamed into place only when complete, so a run that fails
//! (bad input, an error, a crash of the process) leaves every existing file as it was.
//! Before a run starts, every output path is checked: creatable, and no two the same.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// A file being written; it replaces its destination on [`OutputFile::commit`], and
/// disappears if dropped first.
pub struct OutputFile {
    destination: PathBuf,
    temporary: PathBuf,
    writer: Option<BufWriter<File>>,
    what: &'static str,
}

impl OutputFile {
    /// Starts writing `destination` (a `what` file: "trace", "history"): creates the
    /// temporary file next to it now, so a path that cannot be written fails here,
    /// before anything runs.
    pub fn create(destination: &Path, what: &'static str) -> Result<OutputFile, String> {
        let temporary = temporary_path(destination)
            .ok_or_else(|| format!("cannot create {what} file {}: not a file name", destination.display()))?;
        if destination.is_dir() {
            return Err(format!("cannot create {what} file {}: it is a directory", destination.display()));
        }
        let file = File::create(&temporary)
            .map_err(|error| format!("cannot create {what} file {}: {error}", destination.display()))?;
        Ok(OutputFile {
            destination: destination.to_path_buf(),
            temporary,
            writer: Some(BufWriter::new(file)),
            what,
        })
    }

    /// Where the contents go until the file is committed.
    pub fn writer(&mut self) -> &mut BufWriter<File> {
        self.writer.as_mut().expect("written only before it is committed")
    }

    /// The temporary file's path, where the contents are until the commit.
    pub fn temporary(&self) -> &Path {
        &self.temporary
    }

    /// Finishes the file and puts it in place of its destination.
    pub fn commit(mut self) -> Result<PathBuf, String> {
        let writer = self.writer.take().expect("committed once");
        let failed = |error: std::io::Error| {
            format!("cannot write {} file {}: {error}", self.what, self.destination.display())
        };
        // No fsync: the rename is atomic against the process dying (what matters for a
        // tool's output); surviving a power cut would cost a sync per repro file, which
        // is most of what an interrupted sweep with thousands of failures spends.
        writer.into_inner().map_err(|error| failed(error.into_error()))?;
        std::fs::rename(&self.temporary, &self.destination).map_err(failed)?;
        Ok(self.destination.clone())
    }
}

impl Drop for OutputFile {
    fn drop(&mut self) {
        if self.writer.take().is_some() {
            // Not committed: the run failed. The destination was never touched.
            let _ = std::fs::remove_file(&self.temporary);
        }
    }
}

/// `.<name>.<pid>.tmp` in the destination's directory: the same file system, so the
/// final rename is atomic; hidden, and unique to this process.
fn temporary_path(destination: &Path) -> Option<PathBuf> {
    let name = destination.file_name()?.to_string_lossy();
    let directory = match destination.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    Some(directory.join(format!(".{name}.{}.tmp", std::process::id())))
}

/// Writes `bytes` to `destination` all at once: a temporary file, then a rename.
pub fn write_atomically(destination: &Path, bytes: &[u8], what: &'static str) -> Result<PathBuf, String> {
    let mut file = OutputFile::create(destination, what)?;
    file.writer()
        .write_all(bytes)
        .map_err(|error| format!("cannot write {what} file {}: {error}", destination.display()))?;
    file.commit()
}

/// The path a destination names once links and `..` are resolved, for comparing.
fn resolved(path: &Path) -> PathBuf {
    if let Ok(existing) = path.canonicalize() {
        return existing;
    }
    let parent = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    match (parent.canonicalize(), path.file_name()) {
        (Ok(parent), Some(name)) => parent.join(name),
        _ => std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()),
    }
}

/// Refuses two outputs that name the same file: each `(flag, path)` must differ from
/// every other.
pub fn check_distinct(outputs: &[(&str, &Path)]) -> Result<(), String> {
    let resolved: Vec<PathBuf> = outputs.iter().map(|(_, path)| resolved(path)).collect();
    for first in 0..outputs.len() {
        for second in first + 1..outputs.len() {
            if resolved[first] == resolved[second] {
                let ((first_flag, path), (second_flag, _)) = (outputs[first], outputs[second]);
                return Err(format!(
                    "{first_flag} and {second_flag} both name {}: each output needs a file of its own",
                    path.display()
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let directory = std::env::temp_dir().join(format!("sim-output-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&directory);
        std::fs::create_dir_all(&directory).unwrap();
        directory
    }

    #[test]
    fn a_file_replaces_its_destination_only_when_committed() {
        let directory = scratch("commit");
        let destination = directory.join("out.jsonl");
        std::fs::write(&destination, "old\n").unwrap();
        let mut file = OutputFile::create(&destination, "trace").unwrap();
        file.writer().write_all(b"new\n").unwrap();
        assert_eq!(std::fs::read_to_string(&destination).unwrap(), "old\n", "untouched until committed");
        let temporary = file.temporary().to_path_buf();
        file.commit().unwrap();
        assert_eq!(std::fs::read_to_string(&destination).unwrap(), "new\n");
        assert!(!temporary.exists());
    }

    #[test]
    fn a_file_dropped_before_commit_leaves_nothing_behind() {
        let directory = scratch("drop");
        let destination = directory.join("out.jsonl");
        std::fs::write(&destination, "old\n").unwrap();
        let mut file = OutputFile::create(&destination, "trace").unwrap();
        file.writer().write_all(b"half").unwrap();
        drop(file);
        assert_eq!(std::fs::read_to_string(&destination).unwrap(), "old\n");
        assert_eq!(std::fs::read_dir(&directory).unwrap().count(), 1, "no temporary file left");
    }

    #[test]
    fn unwritable_paths_and_directories_are_refused_up_front() {
        let directory = scratch("refuse");
        assert!(OutputFile::create(Path::new("/nonexistent/dir/h.jsonl"), "history").is_err());
        let error = OutputFile::create(&directory, "trace").err().unwrap();
        assert!(error.contains("is a directory"), "{error}");
    }

    #[test]
    fn two_outputs_naming_one_file_are_refused() {
        let directory = scratch("distinct");
        let one = directory.join("one.jsonl");
        let same = directory.join(".").join("one.jsonl");
        let other = directory.join("other.jsonl");
        assert!(check_distinct(&[("--trace", &one), ("--history", &other)]).is_ok());
        let error = check_distinct(&[("--trace", &one), ("--history", &same)]).unwrap_err();
        assert!(error.contains("--trace and --history both name"), "{error}");
    }
}
