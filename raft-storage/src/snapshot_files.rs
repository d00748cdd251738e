//! Snapshot bytes in files: [`SnapshotFiles`], the store the driver keeps its
//! snapshots in (`raft_host::SnapshotStore`), on the same file system as the log.
//!
//! A snapshot file is the state machine's bytes followed by a trailer,
//! `[CRC-32 of the bytes: u32 LE][their length: u64 LE][TRAILER_MAGIC]`, and travels
//! to a follower whole, trailer included, so the follower checks what it received
//! before it keeps it. A file is written under a temporary name and renamed once whole;
//! it becomes part of the node's durable state only when the storage has synced it and
//! written a checkpoint that names it (`Write::Compact`/`Write::Install`), so a file a
//! crash interrupted, or one no checkpoint names, is removed at the next start.

use crate::files;
use crate::fs::{AppendFile, FileSystem, ReadFile};
use raft_core::SnapshotMeta;
use raft_host::{ByteSource, SnapshotStore};
use std::path::{Path, PathBuf};

/// The last 8 bytes of every snapshot file.
pub(crate) const TRAILER_MAGIC: &[u8; 8] = b"KVSNAPD1";
/// Bytes of the trailer.
pub(crate) const TRAILER_BYTES: usize = 4 + 8 + 8;
/// Bytes gathered before one append to the file.
const WRITE_BUFFER_BYTES: usize = 1 << 20;

fn trailer(crc: u32, length: u64) -> [u8; TRAILER_BYTES] {
    let mut bytes = [0; TRAILER_BYTES];
    bytes[..4].copy_from_slice(&crc.to_le_bytes());
    bytes[4..12].copy_from_slice(&length.to_le_bytes());
    bytes[12..].copy_from_slice(TRAILER_MAGIC);
    bytes
}

/// What a trailer says: the CRC and the length of the bytes before it.
fn parse_trailer(bytes: &[u8]) -> Result<(u32, u64), String> {
    if bytes.len() != TRAILER_BYTES || &bytes[12..] != TRAILER_MAGIC {
        return Err("not a snapshot file (no trailer)".to_string());
    }
    let crc = u32::from_le_bytes(bytes[..4].try_into().expect("4 bytes"));
    let length = u64::from_le_bytes(bytes[4..12].try_into().expect("8 bytes"));
    Ok((crc, length))
}

/// A snapshot file being written: its temporary path, the open file, the bytes not yet
/// appended, and the checksum of the state machine's bytes so far.
struct Writing<File> {
    meta: SnapshotMeta,
    temporary: PathBuf,
    file: File,
    buffer: Vec<u8>,
    written: u64,
    hasher: crc32fast::Hasher,
    /// Receiving only: the last bytes that arrived, which may be the trailer and so
    /// are not hashed yet.
    held_back: Vec<u8>,
}

impl<File: AppendFile> Writing<File> {
    fn append(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.written += bytes.len() as u64;
        if self.buffer.len() + bytes.len() > WRITE_BUFFER_BYTES {
            self.flush()?;
        }
        if bytes.len() >= WRITE_BUFFER_BYTES {
            return self.file.append(bytes);
        }
        self.buffer.extend_from_slice(bytes);
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if !self.buffer.is_empty() {
            self.file.append(&self.buffer)?;
            self.buffer.clear();
        }
        Ok(())
    }

    /// Hashes the received `bytes` except whatever may be the trailer: the last
    /// `TRAILER_BYTES` of everything received so far are held back.
    fn hash_received(&mut self, bytes: &[u8]) {
        let pending = self.held_back.len() + bytes.len();
        if pending <= TRAILER_BYTES {
            self.held_back.extend_from_slice(bytes);
            return;
        }
        let release = pending - TRAILER_BYTES;
        let from_held = release.min(self.held_back.len());
        self.hasher.update(&self.held_back[..from_held]);
        let from_bytes = release - from_held;
        self.hasher.update(&bytes[..from_bytes]);
        self.held_back.drain(..from_held);
        self.held_back.extend_from_slice(&bytes[from_bytes..]);
    }
}

/// The snapshot files in a node's data directory (see the module docs).
pub struct SnapshotFiles<F: FileSystem> {
    fs: F,
    dir: PathBuf,
    creating: Option<Writing<F::File>>,
    receiving: Option<Writing<F::File>>,
    /// The file last read from, kept open while a follower is sent chunk after chunk.
    reading: Option<(SnapshotMeta, F::Reader)>,
}

impl<F: FileSystem> std::fmt::Debug for SnapshotFiles<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnapshotFiles").field("dir", &self.dir).finish_non_exhaustive()
    }
}

/// The file of the snapshot ending at `meta` in `dir`.
pub(crate) fn snapshot_path(dir: &Path, meta: SnapshotMeta) -> PathBuf {
    dir.join(files::snapshot_name(meta.last_included_index, meta.last_included_term))
}

impl<F: FileSystem> SnapshotFiles<F> {
    /// The snapshots of the data directory `dir` (which `Storage::open` has opened).
    pub fn new(fs: F, dir: &Path) -> SnapshotFiles<F> {
        SnapshotFiles { fs, dir: dir.to_path_buf(), creating: None, receiving: None, reading: None }
    }

    fn start(&self, meta: SnapshotMeta) -> Result<Writing<F::File>, String> {
        let path = snapshot_path(&self.dir, meta);
        let temporary = path.with_extension("snap.tmp");
        let file = self.fs.create(&temporary).map_err(|error| format!("{}: {error}", temporary.display()))?;
        Ok(Writing {
            meta,
            temporary,
            file,
            buffer: Vec::new(),
            written: 0,
            hasher: crc32fast::Hasher::new(),
            held_back: Vec::new(),
        })
    }

    /// Flushes `writing` and gives it its name.
    fn keep(&mut self, mut writing: Writing<F::File>) -> Result<(), String> {
        let at = |path: &Path, error: std::io::Error| format!("{}: {error}", path.display());
        writing.flush().map_err(|error| at(&writing.temporary, error))?;
        let path = snapshot_path(&self.dir, writing.meta);
        drop(writing.file);
        self.reading = None;
        self.fs.rename(&writing.temporary, &path).map_err(|error| at(&path, error))
    }

    fn reader(&mut self, meta: SnapshotMeta) -> Result<&mut F::Reader, String> {
        if self.reading.as_ref().is_none_or(|(open, _)| *open != meta) {
            let path = snapshot_path(&self.dir, meta);
            let reader = self.fs.open_read(&path).map_err(|error| format!("{}: {error}", path.display()))?;
            self.reading = Some((meta, reader));
        }
        Ok(&mut self.reading.as_mut().expect("opened above").1)
    }
}

impl<F: FileSystem> SnapshotStore for SnapshotFiles<F> {
    fn create(&mut self, meta: SnapshotMeta) -> Result<(), String> {
        self.creating = Some(self.start(meta)?);
        Ok(())
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), String> {
        let writing = self.creating.as_mut().ok_or("a snapshot write before create")?;
        writing.hasher.update(bytes);
        writing.append(bytes).map_err(|error| format!("{}: {error}", writing.temporary.display()))
    }

    fn finish(&mut self) -> Result<u64, String> {
        let mut writing = self.creating.take().ok_or("a snapshot finished before create")?;
        let length = writing.written;
        let end = trailer(writing.hasher.clone().finalize(), length);
        writing.append(&end).map_err(|error| format!("{}: {error}", writing.temporary.display()))?;
        let size = writing.written;
        self.keep(writing)?;
        Ok(size)
    }

    fn receive(&mut self, meta: SnapshotMeta, offset: u64, bytes: &[u8]) -> Result<(), String> {
        if offset == 0 {
            self.receiving = Some(self.start(meta)?);
        }
        let writing = match &mut self.receiving {
            Some(writing) if writing.meta == meta && writing.written == offset => writing,
            _ => {
                return Err(format!("a chunk at {offset} of {meta:?} that does not follow what was received"))
            }
        };
        writing.hash_received(bytes);
        writing.append(bytes).map_err(|error| format!("{}: {error}", writing.temporary.display()))
    }

    fn received(&mut self, meta: SnapshotMeta, size: u64) -> Result<(), String> {
        let writing = match self.receiving.take() {
            Some(writing) if writing.meta == meta => writing,
            _ => return Err(format!("no snapshot at {meta:?} was being received")),
        };
        if writing.written != size {
            return Err(format!("received {} bytes of a {size}-byte snapshot", writing.written));
        }
        let (crc, length) = parse_trailer(&writing.held_back)?;
        if length + TRAILER_BYTES as u64 != size {
            return Err(format!("the trailer says {length} bytes, but {size} arrived"));
        }
        if writing.hasher.clone().finalize() != crc {
            return Err("checksum mismatch (the snapshot was damaged on the way)".to_string());
        }
        self.keep(writing)
    }

    fn read_at(&mut self, meta: SnapshotMeta, offset: u64, buffer: &mut [u8]) -> Result<usize, String> {
        let path = snapshot_path(&self.dir, meta);
        self.reader(meta)?.read_at(offset, buffer).map_err(|error| format!("{}: {error}", path.display()))
    }

    fn retire_older_than(&mut self, meta: SnapshotMeta) {
        let keep = files::snapshot_name(meta.last_included_index, meta.last_included_term);
        let Ok(names) = self.fs.list(&self.dir) else { return };
        for name in names {
            // Names sort by index, then term: the older ones sort first.
            if files::is_snapshot_name(&name) && name < keep {
                let _ = self.fs.remove(&self.dir.join(&name));
            }
        }
        if self.reading.as_ref().is_some_and(|(open, _)| *open != meta) {
            self.reading = None;
        }
    }

    fn open(&mut self, meta: SnapshotMeta) -> Result<Box<dyn ByteSource + '_>, String> {
        let path = snapshot_path(&self.dir, meta);
        let at = |error: std::io::Error| format!("{}: {error}", path.display());
        let reader = self.reader(meta)?;
        let size = reader.size().map_err(at)?;
        let mut end = [0; TRAILER_BYTES];
        if size < TRAILER_BYTES as u64
            || reader.read_at(size - TRAILER_BYTES as u64, &mut end).map_err(at)? != TRAILER_BYTES
        {
            return Err(format!("{}: not a snapshot file (too short)", path.display()));
        }
        let (crc, length) = parse_trailer(&end).map_err(|why| format!("{}: {why}", path.display()))?;
        if length + TRAILER_BYTES as u64 != size {
            return Err(format!("{}: the trailer says {length} bytes in a {size}-byte file", path.display()));
        }
        Ok(Box::new(Restoring { reader, path, offset: 0, length, crc, hasher: crc32fast::Hasher::new() }))
    }
}

/// The state machine's bytes of a snapshot file, read in order; the checksum is checked
/// when the last byte has been read, so a damaged file fails the restore.
struct Restoring<'a, R> {
    reader: &'a mut R,
    path: PathBuf,
    offset: u64,
    length: u64,
    crc: u32,
    hasher: crc32fast::Hasher,
}

impl<R: ReadFile> ByteSource for Restoring<'_, R> {
    fn read(&mut self, buffer: &mut [u8]) -> Result<usize, String> {
        let left = (self.length - self.offset).min(buffer.len() as u64) as usize;
        if left == 0 {
            return if self.hasher.clone().finalize() == self.crc {
                Ok(0)
            } else {
                Err(format!("{}: checksum mismatch (the snapshot is damaged)", self.path.display()))
            };
        }
        let read = self
            .reader
            .read_at(self.offset, &mut buffer[..left])
            .map_err(|error| format!("{}: {error}", self.path.display()))?;
        if read == 0 {
            return Err(format!("{}: shorter than its trailer says", self.path.display()));
        }
        self.hasher.update(&buffer[..read]);
        self.offset += read as u64;
        Ok(read)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemFs;

    fn meta(index: u64) -> SnapshotMeta {
        SnapshotMeta { last_included_index: index, last_included_term: 2 }
    }

    /// The snapshots of directory `dir` on `fs`, which it creates.
    fn store_in(fs: &MemFs, dir: &str) -> SnapshotFiles<MemFs> {
        fs.create_dir_all(Path::new(dir)).unwrap();
        SnapshotFiles::new(fs.clone(), Path::new(dir))
    }

    fn restore(files: &mut SnapshotFiles<MemFs>, meta: SnapshotMeta) -> Result<Vec<u8>, String> {
        let mut data = Vec::new();
        raft_host::snapshots::read_to_end(&mut *files.open(meta)?, &mut data)?;
        Ok(data)
    }

    #[test]
    fn a_snapshot_sent_in_chunks_of_any_size_arrives_checked_and_restores() {
        let fs = MemFs::new();
        let mut leader = store_in(&fs, "/data");
        let state: Vec<u8> = (0..1000u32).map(|at| (at * 7 % 251) as u8).collect();
        leader.create(meta(9)).unwrap();
        for piece in state.chunks(33) {
            leader.write(piece).unwrap();
        }
        let size = leader.finish().unwrap();
        assert_eq!(size, state.len() as u64 + TRAILER_BYTES as u64);
        assert_eq!(restore(&mut leader, meta(9)).unwrap(), state);
        for chunk in [1, 7, 19, 20, 21, 500, 2000] {
            let mut follower = store_in(&fs, "/follower");
            let mut offset = 0;
            while offset < size {
                let mut bytes = vec![0; chunk.min((size - offset) as usize)];
                assert_eq!(leader.read_at(meta(9), offset, &mut bytes).unwrap(), bytes.len());
                follower.receive(meta(9), offset, &bytes).unwrap();
                offset += bytes.len() as u64;
            }
            follower.received(meta(9), size).unwrap();
            assert_eq!(restore(&mut follower, meta(9)).unwrap(), state, "chunks of {chunk}");
        }
    }

    #[test]
    fn a_damaged_or_short_transfer_is_not_kept() {
        let fs = MemFs::new();
        let mut leader = store_in(&fs, "/data");
        leader.create(meta(3)).unwrap();
        leader.write(b"the state").unwrap();
        let size = leader.finish().unwrap();
        let mut whole = vec![0; size as usize];
        leader.read_at(meta(3), 0, &mut whole).unwrap();
        let follower_dir = Path::new("/follower");
        let mut follower = store_in(&fs, "/follower");
        let mut damaged = whole.clone();
        damaged[2] ^= 1;
        follower.receive(meta(3), 0, &damaged).unwrap();
        assert!(follower.received(meta(3), size).unwrap_err().contains("checksum"));
        assert!(!fs.is_file(&snapshot_path(follower_dir, meta(3))), "nothing kept under the name");
        follower.receive(meta(3), 0, &whole[..5]).unwrap();
        assert!(follower.receive(meta(3), 9, &whole[9..]).is_err(), "a gap");
        assert!(follower.received(meta(3), size).is_err(), "short");
        follower.receive(meta(3), 0, &whole).unwrap();
        follower.received(meta(3), size).unwrap();
        assert!(fs.is_file(&snapshot_path(follower_dir, meta(3))));
    }
}
