//! [`Storage`]: one node's log, hard state and snapshots on a [`FileSystem`].

use crate::files::{self, path_of, HARD_STATE_FILE, LOCK_FILE};
use crate::fs::{AppendFile, FileSystem, LockError, ReadFile};
use crate::record::{encode_frame, WalRecord, FRAME_HEADER_BYTES};
use crate::recovery::{self, Found};
use crate::sealed;
use raft_core::{DurableState, Entry, HardState, NodeId, Snapshot};
use raft_host::{durable_image, Write};
use serde::{Deserialize, Serialize};
use std::io;
use std::path::{Path, PathBuf};

// The last two bytes are the format version: 02 since configurations carry learners
// and joint changes (a membership entry or snapshot of 01 does not decode as 02). The
// hard state is read first, so a data directory of another version is refused before
// any of its log is read.
pub(crate) const HARD_STATE_MAGIC: &[u8; 8] = b"KVHARD04";

/// Buffered appends are written to the file (not yet synced) past this size, so a long
/// batch does not sit in memory.
const WRITE_BUFFER_BYTES: usize = 1 << 20;
/// Entries per record in a checkpoint.
const CHECKPOINT_ENTRIES_PER_RECORD: usize = 64;

/// The contents of the `hardstate` file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct HardStateFile {
    /// Whose directory this is.
    pub(crate) node_id: NodeId,
    /// Term and vote.
    pub(crate) hard_state: HardState,
    /// The newest WAL segment.
    pub(crate) last_segment: u64,
}

/// Why storage cannot be opened: the message names the file and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StorageError(pub String);

impl std::fmt::Display for StorageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StorageError {}

/// Settings of the storage.
#[derive(Clone, Copy, Debug)]
pub struct StorageOptions {
    /// A segment is followed by a new one once it holds this many bytes.
    pub segment_bytes: u64,
}

impl Default for StorageOptions {
    fn default() -> StorageOptions {
        StorageOptions { segment_bytes: 64 << 20 }
    }
}

/// What opening the storage found, for the log.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OpenReport {
    /// Whether the directory was new.
    pub fresh: bool,
    /// Records replayed.
    pub records: u64,
    /// A torn tail cut off: the file, its intact length, and the bytes removed.
    pub torn_tail: Option<(PathBuf, u64, u64, String)>,
    /// Files removed as no longer needed.
    pub removed: usize,
}

struct Segment<File> {
    file: File,
    sequence: u64,
    bytes: u64,
}

/// One node's durable storage (see the crate docs).
pub struct Storage<F: FileSystem> {
    fs: F,
    dir: PathBuf,
    _lock: F::Lock,
    options: StorageOptions,
    hard: HardStateFile,
    mirror: DurableState,
    segment: Segment<F::File>,
    buffer: Vec<u8>,
    unsynced: bool,
}

impl<F: FileSystem> std::fmt::Debug for Storage<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Storage")
            .field("dir", &self.dir)
            .field("segment", &self.segment.sequence)
            .field("segment_bytes", &self.segment.bytes)
            .field("buffered", &self.buffer.len())
            .field("unsynced", &self.unsynced)
            .finish_non_exhaustive()
    }
}

impl<F: FileSystem> Storage<F> {
    /// Opens (or creates) `dir` for node `node_id`: recovers its durable state, cuts a
    /// torn tail, removes obsolete files. Fails with a message naming the file if the
    /// directory is damaged, belongs to another node, or is in use by another process.
    pub fn open(
        fs: F,
        dir: &Path,
        node_id: NodeId,
        options: StorageOptions,
    ) -> Result<(Storage<F>, DurableState, OpenReport), StorageError> {
        let at = |path: &Path, error: io::Error| StorageError(format!("{}: {error}", path.display()));
        if fs.is_file(dir) {
            return Err(StorageError(format!(
                "{} is not a directory (--data-dir names a directory)",
                dir.display()
            )));
        }
        fs.create_dir_all(dir).map_err(|error| at(dir, error))?;
        let lock_path = path_of(dir, LOCK_FILE);
        let lock = match fs.lock(dir, &lock_path) {
            Ok(lock) => lock,
            Err(LockError::InUse) => {
                return Err(StorageError(format!(
                    "{} is in use by another process (it holds {})",
                    dir.display(),
                    lock_path.display()
                )))
            }
            Err(LockError::Io(error)) => return Err(at(&lock_path, error)),
        };
        let mut report = OpenReport::default();
        match recovery::recover(&fs, dir, node_id)? {
            Found::Fresh { leftovers } => {
                for path in leftovers {
                    fs.remove(&path).map_err(|error| at(&path, error))?;
                }
                let hard = HardStateFile { node_id, hard_state: HardState::default(), last_segment: 1 };
                let segment =
                    create_segment(&fs, dir, 1, &WalRecord::Checkpoint { sequence: 1, snapshot: None }, &[])
                        .map_err(|error| at(dir, error))?;
                write_hard_state(&fs, dir, &hard).map_err(|error| at(dir, error))?;
                report.fresh = true;
                let storage =
                    Storage::assemble(fs, dir, lock, options, hard, DurableState::default(), segment);
                Ok((storage, DurableState::default(), report))
            }
            Found::Existing(recovered) => {
                let recovered = *recovered;
                let tail_path = dir.join(files::segment_name(recovered.tail_sequence));
                let mut file = fs.open_append(&tail_path).map_err(|error| at(&tail_path, error))?;
                if let Some((bytes, why)) = recovered.torn {
                    file.truncate(recovered.tail_intact_bytes).map_err(|error| at(&tail_path, error))?;
                    report.torn_tail = Some((tail_path.clone(), recovered.tail_intact_bytes, bytes, why));
                }
                for path in &recovered.obsolete {
                    fs.remove(path).map_err(|error| at(path, error))?;
                }
                report.removed = recovered.obsolete.len();
                report.records = recovered.records;
                if report.removed > 0 {
                    fs.sync_dir(dir).map_err(|error| at(dir, error))?;
                }
                let segment =
                    Segment { file, sequence: recovered.tail_sequence, bytes: recovered.tail_intact_bytes };
                let mirror = recovered.state.clone();
                let storage = Storage::assemble(fs, dir, lock, options, recovered.hard, mirror, segment);
                Ok((storage, recovered.state, report))
            }
        }
    }

    fn assemble(
        fs: F,
        dir: &Path,
        lock: F::Lock,
        options: StorageOptions,
        hard: HardStateFile,
        mirror: DurableState,
        segment: Segment<F::File>,
    ) -> Storage<F> {
        Storage {
            fs,
            dir: dir.to_path_buf(),
            _lock: lock,
            options,
            hard,
            mirror,
            segment,
            buffer: Vec::with_capacity(64 << 10),
            unsynced: false,
        }
    }

    /// Performs `write` after every earlier one. It is durable once a later
    /// [`Storage::sync`] returns (hard state and snapshots are durable at once).
    pub fn write(&mut self, write: &Write) -> io::Result<()> {
        durable_image::apply(&mut self.mirror, write).map_err(|why| {
            io::Error::other(format!("the driver issued a write that does not fit the log: {why}"))
        })?;
        match write {
            Write::HardState(hard_state) => {
                self.sync()?;
                self.hard.hard_state = *hard_state;
                write_hard_state(&self.fs, &self.dir, &self.hard)
            }
            Write::Entries(entries) => {
                // Room for the record at once, so a large entry is encoded into one
                // allocation of its size instead of a doubling series of them.
                let payload: u64 = entries.iter().map(Entry::size_bytes).sum();
                self.buffer.reserve(payload as usize + FRAME_HEADER_BYTES);
                encode_frame(&WalRecord::Entries(entries.clone()), &mut self.buffer);
                self.after_append()
            }
            Write::Truncate { from } => {
                encode_frame(&WalRecord::Truncate { from: *from }, &mut self.buffer);
                self.after_append()
            }
            Write::Compact(snapshot) | Write::Install(snapshot) => {
                self.sync()?;
                // The driver wrote and named the file (`SnapshotFiles`); it joins the
                // durable state here: its bytes and its name synced, then a checkpoint
                // that names it.
                let path = crate::snapshot_files::snapshot_path(&self.dir, snapshot.meta);
                let size = self.fs.open_read(&path).and_then(|file| file.size())?;
                if size != snapshot.size_bytes {
                    return Err(io::Error::other(format!(
                        "{} is {size} bytes, but the snapshot it holds is {} bytes",
                        path.display(),
                        snapshot.size_bytes
                    )));
                }
                self.fs.open_append(&path)?.sync()?;
                self.fs.sync_dir(&self.dir)?;
                self.start_checkpoint(snapshot)
            }
        }
    }

    fn after_append(&mut self) -> io::Result<()> {
        self.unsynced = true;
        if self.buffer.len() >= WRITE_BUFFER_BYTES {
            self.flush_buffer()?;
        }
        if self.segment.bytes + self.buffer.len() as u64 >= self.options.segment_bytes {
            self.sync()?;
            let sequence = self.segment.sequence + 1;
            let segment =
                create_segment(&self.fs, &self.dir, sequence, &WalRecord::Continue { sequence }, &[])?;
            self.switch_to(segment)?;
        }
        Ok(())
    }

    fn flush_buffer(&mut self) -> io::Result<()> {
        if !self.buffer.is_empty() {
            self.segment.file.append(&self.buffer)?;
            self.segment.bytes += self.buffer.len() as u64;
            self.buffer.clear();
            if self.buffer.capacity() > 4 * WRITE_BUFFER_BYTES {
                // A large entry passed through: give its memory back rather than keep it.
                self.buffer = Vec::with_capacity(64 << 10);
            }
        }
        Ok(())
    }

    /// Makes every write so far durable (one fdatasync for the whole batch).
    pub fn sync(&mut self) -> io::Result<()> {
        self.flush_buffer()?;
        if self.unsynced {
            self.segment.file.sync()?;
            self.unsynced = false;
        }
        Ok(())
    }

    /// Opens a segment that restarts the log from `snapshot`, with the entries the log
    /// keeps after it; then drops the segments it makes obsolete.
    fn start_checkpoint(&mut self, snapshot: &Snapshot) -> io::Result<()> {
        let sequence = self.segment.sequence + 1;
        let header = WalRecord::Checkpoint { sequence, snapshot: Some(snapshot.clone()) };
        let segment = create_segment(&self.fs, &self.dir, sequence, &header, &self.mirror.entries)?;
        self.switch_to(segment)?;
        let mut names = self.fs.list(&self.dir)?;
        names.sort_unstable();
        for name in names {
            // Old snapshot files are the driver's to remove (`SnapshotStore::
            // retire_older_than`): a restore waiting for its turn may still read one.
            if files::parse_segment_name(&name).is_some_and(|number| number < sequence) {
                self.fs.remove(&self.dir.join(&name))?;
            }
        }
        self.fs.sync_dir(&self.dir)
    }

    /// Names `segment` in the hard state file (it is durable already) and appends there.
    fn switch_to(&mut self, segment: Segment<F::File>) -> io::Result<()> {
        self.hard.last_segment = segment.sequence;
        write_hard_state(&self.fs, &self.dir, &self.hard)?;
        self.segment = segment;
        Ok(())
    }

    /// The durable state as the writes so far leave it (snapshot data left out).
    pub fn mirror(&self) -> &DurableState {
        &self.mirror
    }

    /// The segment appends go to.
    pub fn current_segment(&self) -> u64 {
        self.segment.sequence
    }
}

/// Creates segment `sequence` holding `header` and `entries`, durable (file and
/// directory entry) before it returns.
fn create_segment<F: FileSystem>(
    fs: &F,
    dir: &Path,
    sequence: u64,
    header: &WalRecord,
    entries: &[Entry],
) -> io::Result<Segment<F::File>> {
    let path = dir.join(files::segment_name(sequence));
    let mut bytes = Vec::new();
    encode_frame(header, &mut bytes);
    for chunk in entries.chunks(CHECKPOINT_ENTRIES_PER_RECORD) {
        encode_frame(&WalRecord::Entries(chunk.to_vec()), &mut bytes);
    }
    let mut file = fs.create(&path)?;
    file.append(&bytes)?;
    file.sync()?;
    fs.sync_dir(dir)?;
    Ok(Segment { file, sequence, bytes: bytes.len() as u64 })
}

fn write_hard_state<F: FileSystem>(fs: &F, dir: &Path, hard: &HardStateFile) -> io::Result<()> {
    files::replace_atomically(fs, dir, HARD_STATE_FILE, &sealed::seal(HARD_STATE_MAGIC, hard))
}
