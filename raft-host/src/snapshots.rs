//! Where a node's snapshot bytes live while the core only names them (see
//! `raft_core::Snapshot`): written by the state machine at compaction, read a chunk at
//! a time to send to a follower, written a chunk at a time as a leader's arrives, and
//! read from start to end to restore. The IO layer implements [`SnapshotStore`] (files
//! on a real or simulated disk); the driver calls it in its own order. Its own small
//! byte traits stand in for `std::io`, which this crate does not name.

use raft_core::SnapshotMeta;
use std::collections::BTreeMap;

/// Where the state machine writes its snapshot.
pub trait ByteSink {
    /// Appends `bytes`.
    fn write(&mut self, bytes: &[u8]) -> Result<(), String>;
}

/// Where the state machine reads a snapshot from.
pub trait ByteSource {
    /// Reads up to `buffer.len()` bytes into `buffer`; 0 at the end.
    fn read(&mut self, buffer: &mut [u8]) -> Result<usize, String>;
}

impl ByteSink for Vec<u8> {
    fn write(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.extend_from_slice(bytes);
        Ok(())
    }
}

impl ByteSource for &[u8] {
    fn read(&mut self, buffer: &mut [u8]) -> Result<usize, String> {
        let length = buffer.len().min(self.len());
        buffer[..length].copy_from_slice(&self[..length]);
        *self = &self[length..];
        Ok(length)
    }
}

/// Reads `source` to its end into `data`.
pub fn read_to_end(source: &mut dyn ByteSource, data: &mut Vec<u8>) -> Result<(), String> {
    let mut buffer = vec![0; 64 << 10];
    loop {
        match source.read(&mut buffer)? {
            0 => return Ok(()),
            read => data.extend_from_slice(&buffer[..read]),
        }
    }
}

/// A node's snapshots, named by where they end in the log. Errors are messages for the
/// operator; the driver stops the node on one (its snapshots are part of its state).
pub trait SnapshotStore {
    /// Starts this node's own snapshot ending at `meta` (a compaction): the machine's
    /// bytes follow through [`SnapshotStore::write`].
    fn create(&mut self, meta: SnapshotMeta) -> Result<(), String>;
    /// Appends to the snapshot [`SnapshotStore::create`] started.
    fn write(&mut self, bytes: &[u8]) -> Result<(), String>;
    /// Completes it under its name; returns its size as it travels to a follower.
    fn finish(&mut self) -> Result<u64, String>;
    /// Keeps `bytes` at `offset` of the snapshot ending at `meta` that a leader is
    /// sending; offset 0 starts it afresh, dropping a partial one.
    fn receive(&mut self, meta: SnapshotMeta, offset: u64, bytes: &[u8]) -> Result<(), String>;
    /// The snapshot being received is whole at `size` bytes: verify it and keep it
    /// under its name, or say why it is not a snapshot.
    fn received(&mut self, meta: SnapshotMeta, size: u64) -> Result<(), String>;
    /// Reads the kept snapshot `meta` (as it travels) from `offset` into `buffer`;
    /// returns how many bytes were read.
    fn read_at(&mut self, meta: SnapshotMeta, offset: u64, buffer: &mut [u8]) -> Result<usize, String>;
    /// The state machine's bytes of the kept snapshot `meta`, to restore from.
    fn open(&mut self, meta: SnapshotMeta) -> Result<Box<dyn ByteSource + '_>, String>;
    /// Drops the kept snapshots older than `meta`. The driver calls it once the write
    /// that made `meta` the node's durable snapshot is durable and nothing it still has
    /// to do reads an older one (a restore waiting for its turn does). Best effort: what
    /// is left is cleaned up at the next start.
    fn retire_older_than(&mut self, meta: SnapshotMeta);
}

/// Snapshots in memory: for tests and hosts that keep no files. A snapshot survives
/// as long as the value does.
#[derive(Clone, Debug, Default)]
pub struct MemorySnapshots {
    kept: BTreeMap<(u64, u64), Vec<u8>>,
    creating: Option<(SnapshotMeta, Vec<u8>)>,
    receiving: Option<(SnapshotMeta, Vec<u8>)>,
}

fn key(meta: SnapshotMeta) -> (u64, u64) {
    (meta.last_included_index, meta.last_included_term)
}

impl MemorySnapshots {
    fn kept(&self, meta: SnapshotMeta) -> Result<&Vec<u8>, String> {
        self.kept.get(&key(meta)).ok_or_else(|| format!("no snapshot at {meta:?}"))
    }
}

impl SnapshotStore for MemorySnapshots {
    fn create(&mut self, meta: SnapshotMeta) -> Result<(), String> {
        self.creating = Some((meta, Vec::new()));
        Ok(())
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), String> {
        let (_, data) = self.creating.as_mut().ok_or("write before create")?;
        data.extend_from_slice(bytes);
        Ok(())
    }

    fn finish(&mut self) -> Result<u64, String> {
        let (meta, data) = self.creating.take().ok_or("finish before create")?;
        let size = data.len() as u64;
        self.kept.insert(key(meta), data);
        Ok(size)
    }

    fn receive(&mut self, meta: SnapshotMeta, offset: u64, bytes: &[u8]) -> Result<(), String> {
        if offset == 0 {
            self.receiving = Some((meta, Vec::new()));
        }
        match &mut self.receiving {
            Some((receiving, data)) if *receiving == meta && data.len() as u64 == offset => {
                data.extend_from_slice(bytes);
                Ok(())
            }
            _ => Err(format!("a chunk at {offset} of {meta:?} that does not follow what was received")),
        }
    }

    fn received(&mut self, meta: SnapshotMeta, size: u64) -> Result<(), String> {
        let data = match self.receiving.take() {
            Some((receiving, data)) if receiving == meta => data,
            // An empty snapshot arrives in one empty chunk, which the core keeps nothing of.
            _ if size == 0 => Vec::new(),
            _ => return Err(format!("no snapshot at {meta:?} was being received")),
        };
        if data.len() as u64 != size {
            return Err(format!("received {} bytes of a {size}-byte snapshot", data.len()));
        }
        self.kept.insert(key(meta), data);
        Ok(())
    }

    fn read_at(&mut self, meta: SnapshotMeta, offset: u64, buffer: &mut [u8]) -> Result<usize, String> {
        let data = self.kept(meta)?;
        let start = (offset as usize).min(data.len());
        let length = buffer.len().min(data.len() - start);
        buffer[..length].copy_from_slice(&data[start..start + length]);
        Ok(length)
    }

    fn open(&mut self, meta: SnapshotMeta) -> Result<Box<dyn ByteSource + '_>, String> {
        Ok(Box::new(self.kept(meta)?.as_slice()))
    }

    fn retire_older_than(&mut self, meta: SnapshotMeta) {
        self.kept.retain(|&kept, _| kept >= key(meta));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(index: u64) -> SnapshotMeta {
        SnapshotMeta { last_included_index: index, last_included_term: 1 }
    }

    #[test]
    fn a_created_snapshot_reads_back_in_chunks_and_whole() {
        let mut store = MemorySnapshots::default();
        store.create(meta(5)).unwrap();
        store.write(b"hello ").unwrap();
        store.write(b"world").unwrap();
        assert_eq!(store.finish().unwrap(), 11);
        let mut chunk = [0; 4];
        assert_eq!(store.read_at(meta(5), 8, &mut chunk).unwrap(), 3);
        assert_eq!(&chunk[..3], b"rld");
        let mut whole = Vec::new();
        read_to_end(&mut *store.open(meta(5)).unwrap(), &mut whole).unwrap();
        assert_eq!(whole, b"hello world");
        assert!(store.open(meta(6)).is_err());
    }

    #[test]
    fn a_received_snapshot_is_kept_only_whole_and_in_order() {
        let mut store = MemorySnapshots::default();
        store.receive(meta(7), 0, b"abc").unwrap();
        assert!(store.receive(meta(7), 5, b"x").is_err(), "a gap");
        store.receive(meta(7), 3, b"de").unwrap();
        assert!(store.received(meta(7), 6).is_err(), "a byte short");
        store.receive(meta(8), 0, b"new").unwrap();
        store.received(meta(8), 3).unwrap();
        let mut buffer = [0; 8];
        assert_eq!(store.read_at(meta(8), 0, &mut buffer).unwrap(), 3);
        store.received(meta(9), 0).unwrap();
        assert_eq!(store.read_at(meta(9), 0, &mut buffer).unwrap(), 0);
    }
}
