//! Files in memory that a crash treats as a real file system would: the simulator's
//! disk, and the storage tests' crash harness.
//!
//! Each file keeps its bytes and how many of them are durable; each directory keeps
//! its names as they are and as they were at its last completed sync. Syncs do not
//! complete when they are called: the caller groups them with [`MemFs::seal_syncs`]
//! and completes a group with [`MemFs::complete_syncs`] when its simulated latency has
//! passed, as a disk finishes an fsync some time after it was asked. A crash
//! ([`MemFs::crash`]) keeps:
//!
//! - every name as of its directory's last completed sync (a file created or renamed
//!   since is gone, or back under its old name);
//! - every file's durable bytes and, when the crash tears, a prefix of the bytes
//!   appended since, cut at any byte;
//! - of the syncs in flight at the crash, a prefix in the order they were asked for;
//! - nothing appended after the first sync that did not complete: an fsync blocks its
//!   caller, so a crash during one comes before anything the caller would have written
//!   after it returned (a hard-state file replaced, then entries appended: the entries
//!   cannot outlive a replacement that never became durable).
//!
//! Faults the simulator injects besides crashes: a sync that fails
//! ([`MemFs::fail_next_sync`]: it returns an error and makes nothing durable) and a bit
//! flipped in bytes that were durable ([`MemFs::flip_durable_bit`], latent sector
//! damage). A truncation ([`AppendFile::truncate`]) is durable at once, as the engine
//! syncs right after one.
//!
//! One `MemFs` value is one disk; clones share it. It is single-threaded (`Rc`), as
//! the simulator is.

use crate::fs::{AppendFile, FileSystem, LockError};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::rc::Rc;

type InodeId = u64;

#[derive(Debug, Default)]
struct Inode {
    data: Vec<u8>,
    durable: usize,
}

#[derive(Debug)]
enum PendingSync {
    /// The file's first `length` bytes become durable.
    File { inode: InodeId, length: usize },
    /// The directory's names become what they were when the sync was asked for.
    Directory { directory: PathBuf, names: Vec<(PathBuf, InodeId)> },
}

/// Each file's length at one instant.
type Lengths = Vec<(InodeId, usize)>;

#[derive(Debug, Default)]
struct Disk {
    inodes: BTreeMap<InodeId, Inode>,
    names: BTreeMap<PathBuf, InodeId>,
    durable_names: BTreeMap<PathBuf, InodeId>,
    directories: Vec<PathBuf>,
    next_inode: InodeId,
    /// Syncs asked for and not completed, each with the group it belongs to and
    /// every file's length when it was asked for.
    pending: Vec<(u64, PendingSync, Lengths)>,
    /// The group syncs asked for now join.
    open_group: u64,
    fail_next_sync: bool,
    syncs_failed: u64,
}

/// A disk in memory (see the module docs).
#[derive(Clone, Debug, Default)]
pub struct MemFs {
    disk: Rc<RefCell<Disk>>,
}

/// A file of a [`MemFs`], open for appending.
#[derive(Debug)]
pub struct MemFile {
    disk: Rc<RefCell<Disk>>,
    inode: InodeId,
}

fn not_found(path: &Path) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("{}: no such file", path.display()))
}

fn injected_failure() -> io::Error {
    io::Error::other("fsync failed (injected: the disk reported an I/O error)")
}

impl Disk {
    fn sync(&mut self, sync: PendingSync) -> io::Result<()> {
        if std::mem::take(&mut self.fail_next_sync) {
            self.syncs_failed += 1;
            return Err(injected_failure());
        }
        let lengths = self.inodes.iter().map(|(inode, file)| (*inode, file.data.len())).collect();
        self.pending.push((self.open_group, sync, lengths));
        Ok(())
    }

    fn complete(&mut self, sync: PendingSync) {
        match sync {
            PendingSync::File { inode, length } => {
                if let Some(file) = self.inodes.get_mut(&inode) {
                    file.durable = file.durable.max(length.min(file.data.len()));
                }
            }
            PendingSync::Directory { directory, names } => {
                self.durable_names.retain(|path, _| path.parent() != Some(directory.as_path()));
                self.durable_names.extend(names);
            }
        }
    }

    /// Drops files no name refers to, durable or not, and no sync will touch: once
    /// they outnumber the named ones, so the scan is paid rarely.
    fn collect_garbage(&mut self) {
        if self.inodes.len() <= 2 * self.names.len() + 8 {
            return;
        }
        let pending: Vec<InodeId> = self
            .pending
            .iter()
            .filter_map(|(_, sync, _)| match sync {
                PendingSync::File { inode, .. } => Some(*inode),
                PendingSync::Directory { .. } => None,
            })
            .collect();
        let (names, durable) = (&self.names, &self.durable_names);
        let pending_names: Vec<InodeId> = self
            .pending
            .iter()
            .flat_map(|(_, sync, _)| match sync {
                PendingSync::Directory { names, .. } => names.iter().map(|(_, inode)| *inode).collect(),
                PendingSync::File { .. } => Vec::new(),
            })
            .collect();
        self.inodes.retain(|inode, _| {
            names.values().any(|id| id == inode)
                || durable.values().any(|id| id == inode)
                || pending.contains(inode)
                || pending_names.contains(inode)
        });
    }

    fn file(&self, path: &Path) -> io::Result<&Inode> {
        let inode = self.names.get(path).ok_or_else(|| not_found(path))?;
        Ok(&self.inodes[inode])
    }
}

impl MemFs {
    /// An empty disk.
    pub fn new() -> MemFs {
        MemFs::default()
    }

    /// Closes the group of syncs asked for so far and returns its number: complete it
    /// with [`MemFs::complete_syncs`] once its latency has passed.
    pub fn seal_syncs(&self) -> u64 {
        let mut disk = self.disk.borrow_mut();
        let group = disk.open_group;
        disk.open_group += 1;
        group
    }

    /// Completes every sync of group `group` and earlier.
    pub fn complete_syncs(&self, group: u64) {
        let mut disk = self.disk.borrow_mut();
        let pending = std::mem::take(&mut disk.pending);
        let (done, waiting): (Vec<_>, Vec<_>) = pending.into_iter().partition(|(of, _, _)| *of <= group);
        disk.pending = waiting;
        for (_, sync, _) in done {
            disk.complete(sync);
        }
        disk.collect_garbage();
    }

    /// Whether any sync was asked for and has not completed.
    pub fn has_pending_syncs(&self) -> bool {
        !self.disk.borrow().pending.is_empty()
    }

    /// The machine lost power. Of the syncs in flight, the first `below(n + 1)` of the
    /// `n` complete; the power went during the next one, if any, so nothing appended
    /// after it was asked for survives; then each file keeps its durable bytes and, if
    /// `torn`, a prefix of the rest (up to that point) cut at a byte drawn by `below`;
    /// names go back to their last durable state. `below(n)` draws a number under `n`,
    /// from the caller's seeded source.
    pub fn crash(&self, below: &mut dyn FnMut(u64) -> u64, torn: bool) {
        let mut disk = self.disk.borrow_mut();
        let pending = std::mem::take(&mut disk.pending);
        let completing = below(pending.len() as u64 + 1) as usize;
        let mut pending = pending.into_iter();
        for (_, sync, _) in pending.by_ref().take(completing) {
            disk.complete(sync);
        }
        // The sync the power cut short: what each file held when it was asked for.
        let cut: Option<Lengths> = pending.next().map(|(_, _, lengths)| lengths);
        disk.names = disk.durable_names.clone();
        let Disk { inodes, names, .. } = &mut *disk;
        for inode in names.values() {
            let file = inodes.get_mut(inode).expect("a named file exists");
            if let Some(cut) = &cut {
                let written = cut.iter().find(|(id, _)| id == inode).map_or(0, |(_, length)| *length);
                file.data.truncate(written.max(file.durable));
            }
            let unsynced = (file.data.len() - file.durable) as u64;
            let kept = if torn && unsynced > 0 { below(unsynced + 1) as usize } else { 0 };
            file.data.truncate(file.durable + kept);
            file.durable = file.data.len();
        }
        disk.fail_next_sync = false;
        disk.collect_garbage();
    }

    /// Makes the next sync (of a file or a directory) fail.
    pub fn fail_next_sync(&self) {
        self.disk.borrow_mut().fail_next_sync = true;
    }

    /// Syncs that failed so far.
    pub fn syncs_failed(&self) -> u64 {
        self.disk.borrow().syncs_failed
    }

    /// Flips one bit of a durable byte of a file a crash would keep, drawn by `below`
    /// uniformly over all durable bytes (latent sector damage strikes bytes, so big
    /// files take more of it), and says where; `None` if no file holds durable bytes.
    pub fn flip_durable_bit(&self, below: &mut dyn FnMut(u64) -> u64) -> Option<(PathBuf, u64)> {
        let mut disk = self.disk.borrow_mut();
        let candidates: Vec<(PathBuf, InodeId, usize)> = disk
            .durable_names
            .iter()
            .map(|(path, inode)| (path.clone(), *inode, disk.inodes[inode].durable))
            .filter(|(_, _, durable)| *durable > 0)
            .collect();
        let total: usize = candidates.iter().map(|(_, _, durable)| durable).sum();
        if total == 0 {
            return None;
        }
        let mut byte = below(total as u64) as usize;
        let bit = below(8) as u8;
        for (path, inode, durable) in candidates {
            if byte < durable {
                disk.inodes.get_mut(&inode).expect("a durable file").data[byte] ^= 1 << bit;
                return Some((path, byte as u64));
            }
            byte -= durable;
        }
        unreachable!("the byte falls in one of the files")
    }

    /// Every file a crash would keep and its durable length, by path (for tests).
    pub fn durable_files(&self) -> BTreeMap<PathBuf, usize> {
        let disk = self.disk.borrow();
        disk.durable_names.iter().map(|(path, inode)| (path.clone(), disk.inodes[inode].durable)).collect()
    }
}

impl AppendFile for MemFile {
    fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        let mut disk = self.disk.borrow_mut();
        disk.inodes.get_mut(&self.inode).expect("an open file exists").data.extend_from_slice(bytes);
        Ok(())
    }

    fn sync(&mut self) -> io::Result<()> {
        let mut disk = self.disk.borrow_mut();
        let length = disk.inodes[&self.inode].data.len();
        disk.sync(PendingSync::File { inode: self.inode, length })
    }

    fn truncate(&mut self, length: u64) -> io::Result<()> {
        let mut disk = self.disk.borrow_mut();
        let file = disk.inodes.get_mut(&self.inode).expect("an open file exists");
        file.data.truncate(length as usize);
        file.durable = file.durable.min(file.data.len());
        Ok(())
    }
}

/// A file of a [`MemFs`] open for reading: it reads the bytes as they are now, synced
/// or not (what a process reads from its page cache).
#[derive(Debug)]
pub struct MemReader {
    disk: Rc<RefCell<Disk>>,
    inode: InodeId,
}

impl crate::fs::ReadFile for MemReader {
    fn read_at(&mut self, offset: u64, buffer: &mut [u8]) -> io::Result<usize> {
        let disk = self.disk.borrow();
        let data =
            &disk.inodes.get(&self.inode).ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?.data;
        let start = (offset as usize).min(data.len());
        let length = buffer.len().min(data.len() - start);
        buffer[..length].copy_from_slice(&data[start..start + length]);
        Ok(length)
    }

    fn size(&self) -> io::Result<u64> {
        let disk = self.disk.borrow();
        let inode = disk.inodes.get(&self.inode).ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        Ok(inode.data.len() as u64)
    }
}

impl FileSystem for MemFs {
    type File = MemFile;
    type Reader = MemReader;
    type Lock = ();

    fn lock(&self, _dir: &Path, _lock_file: &Path) -> Result<(), LockError> {
        Ok(())
    }

    fn is_file(&self, path: &Path) -> bool {
        self.disk.borrow().names.contains_key(path)
    }

    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        let mut disk = self.disk.borrow_mut();
        if disk.names.contains_key(dir) {
            return Err(io::Error::new(io::ErrorKind::AlreadyExists, format!("{} is a file", dir.display())));
        }
        if !disk.directories.iter().any(|known| known == dir) {
            disk.directories.push(dir.to_path_buf());
        }
        Ok(())
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let disk = self.disk.borrow();
        if !disk.directories.iter().any(|known| known == dir) {
            return Err(not_found(dir));
        }
        Ok(disk
            .names
            .keys()
            .filter(|path| path.parent() == Some(dir))
            .filter_map(|path| path.file_name().map(|name| name.to_string_lossy().into_owned()))
            .collect())
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        Ok(self.disk.borrow().file(path)?.data.clone())
    }

    fn open_read(&self, path: &Path) -> io::Result<MemReader> {
        let inode = *self.disk.borrow().names.get(path).ok_or_else(|| not_found(path))?;
        Ok(MemReader { disk: Rc::clone(&self.disk), inode })
    }

    fn create(&self, path: &Path) -> io::Result<MemFile> {
        let mut disk = self.disk.borrow_mut();
        let inode = disk.next_inode;
        disk.next_inode += 1;
        disk.inodes.insert(inode, Inode::default());
        disk.names.insert(path.to_path_buf(), inode);
        Ok(MemFile { disk: Rc::clone(&self.disk), inode })
    }

    fn open_append(&self, path: &Path) -> io::Result<MemFile> {
        let inode = *self.disk.borrow().names.get(path).ok_or_else(|| not_found(path))?;
        Ok(MemFile { disk: Rc::clone(&self.disk), inode })
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut disk = self.disk.borrow_mut();
        let inode = disk.names.remove(from).ok_or_else(|| not_found(from))?;
        disk.names.insert(to.to_path_buf(), inode);
        Ok(())
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        let mut disk = self.disk.borrow_mut();
        disk.names.remove(path).ok_or_else(|| not_found(path))?;
        Ok(())
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut disk = self.disk.borrow_mut();
        let names: Vec<(PathBuf, InodeId)> = disk
            .names
            .iter()
            .filter(|(path, _)| path.parent() == Some(dir))
            .map(|(path, inode)| (path.clone(), *inode))
            .collect();
        disk.sync(PendingSync::Directory { directory: dir.to_path_buf(), names })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A source that always draws `n - 1` (keep everything it may).
    fn most(n: u64) -> u64 {
        n - 1
    }

    fn least(_: u64) -> u64 {
        0
    }

    fn dir() -> PathBuf {
        PathBuf::from("/node")
    }

    fn synced(fs: &MemFs) {
        let group = fs.seal_syncs();
        fs.complete_syncs(group);
    }

    #[test]
    fn nothing_written_after_a_sync_the_crash_cut_short_survives() {
        let fs = MemFs::new();
        fs.create_dir_all(&dir()).unwrap();
        let (log, state) = (dir().join("log"), dir().join("state"));
        let mut file = fs.create(&log).unwrap();
        fs.sync_dir(&dir()).unwrap();
        synced(&fs);
        file.append(b"before").unwrap();
        // The engine blocks on this sync (say, replacing its hard-state file); the
        // power goes during it, so what it appends next was never written.
        let mut other = fs.create(&state).unwrap();
        other.append(b"term 30").unwrap();
        other.sync().unwrap();
        file.append(b" after").unwrap();
        file.sync().unwrap();
        fs.seal_syncs();
        // No sync completes; tears keep every byte they may.
        let mut draws = 0;
        let mut none_complete_then_most = |n: u64| {
            draws += 1;
            if draws == 1 {
                0
            } else {
                n - 1
            }
        };
        fs.crash(&mut none_complete_then_most, true);
        assert_eq!(fs.read(&log).unwrap(), b"before", "the append after the cut-short sync is gone");
        assert!(!fs.is_file(&state), "its name was never synced");
    }

    #[test]
    fn only_completed_syncs_make_bytes_and_names_durable() {
        let fs = MemFs::new();
        fs.create_dir_all(&dir()).unwrap();
        let path = dir().join("log");
        let mut file = fs.create(&path).unwrap();
        file.append(b"synced").unwrap();
        file.sync().unwrap();
        fs.sync_dir(&dir()).unwrap();
        synced(&fs);
        file.append(b" and not").unwrap();
        file.sync().unwrap();
        let group = fs.seal_syncs();
        // Crashed before the sync completed, tearing nothing: the synced bytes only.
        let crashed = fs.clone();
        crashed.crash(&mut least, false);
        assert_eq!(crashed.read(&path).unwrap(), b"synced");
        fs.complete_syncs(group);
        assert!(!fs.has_pending_syncs());
    }

    #[test]
    fn a_crash_may_keep_an_unsynced_tail_cut_at_any_byte() {
        let mut kept = std::collections::BTreeSet::new();
        for cut in 0..=8 {
            let fs = MemFs::new();
            fs.create_dir_all(&dir()).unwrap();
            let path = dir().join("log");
            let mut file = fs.create(&path).unwrap();
            fs.sync_dir(&dir()).unwrap();
            file.append(b"ab").unwrap();
            file.sync().unwrap();
            synced(&fs);
            file.append(b"cdefghij").unwrap();
            let mut draws = [0, cut].into_iter();
            fs.crash(&mut |_| draws.next().unwrap_or(0), true);
            let data = fs.read(&path).unwrap();
            assert_eq!(&data[..], &b"abcdefghij"[..2 + cut as usize]);
            kept.insert(data.len());
        }
        assert_eq!(kept.len(), 9);
    }

    #[test]
    fn a_name_is_durable_only_once_its_directory_is_synced() {
        let fs = MemFs::new();
        fs.create_dir_all(&dir()).unwrap();
        let (old, new, temporary) = (dir().join("state"), dir().join("fresh"), dir().join("state.tmp"));
        let mut file = fs.create(&old).unwrap();
        file.append(b"old").unwrap();
        file.sync().unwrap();
        fs.sync_dir(&dir()).unwrap();
        synced(&fs);
        // A new file, synced, and a rename over the old one, neither directory-synced.
        let mut file = fs.create(&new).unwrap();
        file.append(b"x").unwrap();
        file.sync().unwrap();
        let mut file = fs.create(&temporary).unwrap();
        file.append(b"new").unwrap();
        file.sync().unwrap();
        fs.rename(&temporary, &old).unwrap();
        synced(&fs);
        assert_eq!(fs.read(&old).unwrap(), b"new", "before the crash, the rename is seen");
        fs.crash(&mut most, true);
        assert_eq!(fs.read(&old).unwrap(), b"old", "the rename was not durable");
        assert!(fs.read(&new).is_err(), "nor the new name");
        let mut names = fs.list(&dir()).unwrap();
        names.sort();
        assert_eq!(names, ["state"]);
    }

    #[test]
    fn of_the_syncs_in_flight_a_crash_completes_a_prefix() {
        let fs = MemFs::new();
        fs.create_dir_all(&dir()).unwrap();
        let (first, second) = (dir().join("first"), dir().join("second"));
        let mut one = fs.create(&first).unwrap();
        let mut two = fs.create(&second).unwrap();
        fs.sync_dir(&dir()).unwrap();
        synced(&fs);
        one.append(b"1").unwrap();
        two.append(b"2").unwrap();
        one.sync().unwrap();
        two.sync().unwrap();
        fs.crash(&mut |n| if n == 3 { 1 } else { 0 }, false);
        assert_eq!(fs.read(&first).unwrap(), b"1", "the first sync completed");
        assert_eq!(fs.read(&second).unwrap(), b"", "the second did not");
    }

    #[test]
    fn a_failed_sync_says_so_and_makes_nothing_durable() {
        let fs = MemFs::new();
        fs.create_dir_all(&dir()).unwrap();
        let path = dir().join("log");
        let mut file = fs.create(&path).unwrap();
        fs.sync_dir(&dir()).unwrap();
        synced(&fs);
        file.append(b"lost").unwrap();
        fs.fail_next_sync();
        assert!(file.sync().is_err());
        assert_eq!(fs.syncs_failed(), 1);
        synced(&fs);
        fs.crash(&mut least, false);
        assert_eq!(fs.read(&path).unwrap(), b"");
    }

    #[test]
    fn a_flipped_bit_lands_in_durable_bytes() {
        let fs = MemFs::new();
        fs.create_dir_all(&dir()).unwrap();
        let path = dir().join("log");
        let mut file = fs.create(&path).unwrap();
        file.append(&[0; 16]).unwrap();
        file.sync().unwrap();
        fs.sync_dir(&dir()).unwrap();
        synced(&fs);
        file.append(&[0; 16]).unwrap();
        let (at, offset) = fs.flip_durable_bit(&mut most).unwrap();
        assert_eq!((at, offset), (path.clone(), 15));
        let data = fs.read(&path).unwrap();
        assert_eq!(data.iter().filter(|&&byte| byte != 0).count(), 1);
        assert_eq!(data[15], 0x80);
    }
}
