//! The data directory's files: their names, and replacing a file atomically.
//!
//! ```text
//! DIR/LOCK                      held (flock) while a server uses the directory
//! DIR/hardstate                 node id, term, vote, the newest WAL segment; replaced atomically
//! DIR/wal-0000000000000001.log  WAL segments, appended to, numbered without gaps
//! DIR/snapshot-<index>-<term>.snap  the snapshot the newest checkpoint names; replaced atomically
//! ```

use crate::fs::{AppendFile, FileSystem};
use std::io;
use std::path::{Path, PathBuf};

/// The hard state file's name.
pub(crate) const HARD_STATE_FILE: &str = "hardstate";
/// The lock file's name.
pub(crate) const LOCK_FILE: &str = "LOCK";

/// The file of WAL segment `sequence`.
pub(crate) fn segment_name(sequence: u64) -> String {
    format!("wal-{sequence:016}.log")
}

/// The sequence number a segment file name carries, if it is one.
pub(crate) fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("wal-")?.strip_suffix(".log")?;
    (digits.len() == 16 && digits.bytes().all(|byte| byte.is_ascii_digit())).then(|| digits.parse().ok())?
}

/// The file of the snapshot that ends at `index` of `term`.
pub(crate) fn snapshot_name(index: u64, term: u64) -> String {
    format!("snapshot-{index:020}-{term:020}.snap")
}

/// Whether `name` is a snapshot file or a leftover temporary file of this module.
pub(crate) fn is_snapshot_name(name: &str) -> bool {
    name.starts_with("snapshot-") && name.ends_with(".snap")
}

/// Whether `name` is a temporary file [`replace_atomically`] left behind in a crash.
pub(crate) fn is_temporary_name(name: &str) -> bool {
    name.ends_with(".tmp")
}

/// Replaces `dir/name` with `bytes` so that a crash leaves either the old file or the
/// new one, whole: write a temporary file, fsync it, rename it over the old one, fsync
/// the directory. When this returns, the new file is durable.
pub(crate) fn replace_atomically<F: FileSystem>(
    fs: &F,
    dir: &Path,
    name: &str,
    bytes: &[u8],
) -> io::Result<()> {
    let temporary = dir.join(format!("{name}.tmp"));
    {
        let mut file = fs.create(&temporary)?;
        file.append(bytes)?;
        file.sync()?;
    }
    fs.rename(&temporary, &dir.join(name))?;
    fs.sync_dir(dir)
}

/// The path of `name` in `dir`, for messages.
pub(crate) fn path_of(dir: &Path, name: &str) -> PathBuf {
    dir.join(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_names_sort_by_sequence_and_parse_back() {
        assert_eq!(segment_name(12), "wal-0000000000000012.log");
        assert_eq!(parse_segment_name(&segment_name(12)), Some(12));
        assert!(segment_name(9) < segment_name(10));
        assert_eq!(parse_segment_name("wal-12.log"), None);
        assert_eq!(parse_segment_name("wal-000000000000001x.log"), None);
        assert!(is_snapshot_name(&snapshot_name(5, 2)));
    }
}
