//! The real file system: `std::fs`, `fdatasync` and `flock`.

use crate::fs::{AppendFile, FileSystem, LockError, ReadFile};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Seek, Write};
use std::path::Path;

/// `std::fs` (see [`FileSystem`]).
#[derive(Clone, Copy, Debug, Default)]
pub struct StdFs;

impl AppendFile for File {
    fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.write_all(bytes)
    }

    fn sync(&mut self) -> io::Result<()> {
        self.sync_data()
    }

    fn truncate(&mut self, length: u64) -> io::Result<()> {
        self.set_len(length)?;
        self.sync_all()?;
        self.seek(io::SeekFrom::Start(length)).map(|_| ())
    }
}

impl ReadFile for File {
    fn read_at(&mut self, offset: u64, buffer: &mut [u8]) -> io::Result<usize> {
        std::os::unix::fs::FileExt::read_at(self, buffer, offset)
    }

    fn size(&self) -> io::Result<u64> {
        Ok(self.metadata()?.len())
    }
}

impl FileSystem for StdFs {
    type File = File;
    type Reader = File;
    type Lock = File;

    fn lock(&self, _dir: &Path, lock_file: &Path) -> Result<File, LockError> {
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(lock_file)
            .map_err(LockError::Io)?;
        match lock.try_lock() {
            Ok(()) => Ok(lock),
            Err(fs::TryLockError::WouldBlock) => Err(LockError::InUse),
            Err(fs::TryLockError::Error(error)) => Err(LockError::Io(error)),
        }
    }

    fn is_file(&self, path: &Path) -> bool {
        path.exists() && !path.is_dir()
    }

    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        fs::create_dir_all(dir)
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        fs::read_dir(dir)?
            .map(|entry| entry.map(|entry| entry.file_name().to_string_lossy().into_owned()))
            .collect()
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        fs::read(path)
    }

    fn open_read(&self, path: &Path) -> io::Result<File> {
        File::open(path)
    }

    fn create(&self, path: &Path) -> io::Result<File> {
        OpenOptions::new().write(true).create(true).truncate(true).open(path)
    }

    fn open_append(&self, path: &Path) -> io::Result<File> {
        let mut file = OpenOptions::new().write(true).open(path)?;
        file.seek(io::SeekFrom::End(0))?;
        Ok(file)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }
}
