//! The file system the storage engine runs on: the few operations it needs, so the
//! server runs it on `std::fs` ([`crate::StdFs`]) and the simulator on files in memory
//! that a crash can tear ([`crate::MemFs`]).
//!
//! The contract is POSIX's, as the engine relies on it: appended bytes are durable
//! once a later [`AppendFile::sync`] of the file returns; a created, renamed or removed
//! name is durable once a later [`FileSystem::sync_dir`] of its directory returns;
//! until then a crash may keep or lose each of them, and may keep an unsynced tail of a
//! file cut at any byte. A failed sync is final: what it should have made durable may
//! be lost, and the caller must not go on as if it were not.

use std::io;
use std::path::Path;

/// A file open for appending (a WAL segment, a file being written whole).
pub trait AppendFile {
    /// Writes `bytes` at the end of the file.
    fn append(&mut self, bytes: &[u8]) -> io::Result<()>;
    /// Makes every byte appended so far durable (fdatasync).
    fn sync(&mut self) -> io::Result<()>;
    /// Cuts the file to `length` bytes, durably (a torn tail removed at recovery);
    /// appends go on from there.
    fn truncate(&mut self, length: u64) -> io::Result<()>;
}

/// A file open for reading at any offset (a snapshot being sent or restored).
pub trait ReadFile {
    /// Reads up to `buffer.len()` bytes at `offset`; 0 at the end of the file.
    fn read_at(&mut self, offset: u64, buffer: &mut [u8]) -> io::Result<usize>;
    /// The file's length in bytes.
    fn size(&self) -> io::Result<u64>;
}

/// Why a directory could not be locked.
#[derive(Debug)]
pub enum LockError {
    /// Another process holds it.
    InUse,
    /// The lock file could not be opened or locked.
    Io(io::Error),
}

/// The operations the storage engine performs on a directory of files.
pub trait FileSystem {
    /// A file open for appending.
    type File: AppendFile;
    /// A file open for reading.
    type Reader: ReadFile;
    /// Holds a directory for this process until dropped.
    type Lock;

    /// Takes the directory `dir` for this process (the file `lock_file` in it).
    fn lock(&self, dir: &Path, lock_file: &Path) -> Result<Self::Lock, LockError>;
    /// Whether `path` names something that is not a directory.
    fn is_file(&self, path: &Path) -> bool;
    /// Creates `dir` and its parents if missing.
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// The names in `dir`, in no particular order.
    fn list(&self, dir: &Path) -> io::Result<Vec<String>>;
    /// The whole contents of `path` (`ErrorKind::NotFound` if there is no such file).
    fn read(&self, path: &Path) -> io::Result<Vec<u8>>;
    /// Opens the existing `path` for reading.
    fn open_read(&self, path: &Path) -> io::Result<Self::Reader>;
    /// Creates `path`, empty (replacing a file of that name), open for appending.
    fn create(&self, path: &Path) -> io::Result<Self::File>;
    /// Opens the existing `path` for appending at its end.
    fn open_append(&self, path: &Path) -> io::Result<Self::File>;
    /// Renames `from` to `to`, replacing `to` if it exists.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Removes the file `path`.
    fn remove(&self, path: &Path) -> io::Result<()>;
    /// Makes the names in `dir` (created, renamed, removed) durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
}
