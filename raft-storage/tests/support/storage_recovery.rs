//! Recovery fed untrusted bytes, as a fuzz target and a test: a data directory of a
//! real log (segments, a checkpoint, a snapshot, the hard state) on the in-memory file
//! system, with one of its files replaced by the input. Opening it must give a state
//! or a refusal naming what is wrong; never a panic, never unbounded memory.

use raft_core::{Entry, EntryPayload, HardState, Snapshot, SnapshotMeta};
use raft_host::SnapshotStore;
use raft_host::Write;
use raft_storage::{AppendFile, FileSystem, MemFs, SnapshotFiles, Storage, StorageOptions};
use std::path::Path;

const DIR: &str = "/fuzz";

fn options() -> StorageOptions {
    StorageOptions { segment_bytes: 512 }
}

fn entry(index: u64, term: u64) -> Entry {
    Entry { index, term, payload: EntryPayload::Command(format!("command {index}").into_bytes().into()) }
}

/// A directory holding a log that rotated and checkpointed; its files, sorted by name.
pub(crate) fn base() -> (MemFs, Vec<String>) {
    let fs = MemFs::new();
    let dir = Path::new(DIR);
    let (mut storage, _, _) = Storage::open(fs.clone(), dir, 1, options()).expect("a fresh directory opens");
    let mut writes = vec![Write::HardState(HardState { term: 2, voted_for: Some(1) })];
    writes.push(Write::Entries((1..=20).map(|index| entry(index, 1)).collect()));
    let meta = SnapshotMeta { last_included_index: 10, last_included_term: 1 };
    let mut files = SnapshotFiles::new(fs.clone(), dir);
    files.create(meta).expect("a snapshot file starts");
    files.write(b"state at 10").expect("written");
    let size_bytes = files.finish().expect("named");
    writes.push(Write::Compact(Snapshot {
        meta,
        configuration: raft_core::Configuration::voters([1, 2, 3]).unwrap(),
        size_bytes,
    }));
    for first in (21..=100).step_by(20) {
        writes.push(Write::Entries((first..first + 20).map(|index| entry(index, 2)).collect()));
    }
    for write in &writes {
        storage.write(write).expect("the engine takes a valid write");
    }
    storage.sync().expect("syncs");
    fs.complete_syncs(fs.seal_syncs());
    drop(storage);
    let mut names = fs.list(dir).expect("the directory lists");
    names.sort();
    (fs, names)
}

/// Replaces the file the first byte picks with the rest and opens the directory;
/// returns the number of entries recovered plus one, or zero for a refusal.
pub(crate) fn run(data: &[u8]) -> usize {
    let Some((&which, contents)) = data.split_first() else {
        return 0;
    };
    let (fs, names) = base();
    let dir = Path::new(DIR);
    let path = dir.join(&names[usize::from(which) % names.len()]);
    let mut file = fs.create(&path).expect("creates");
    file.append(contents).expect("appends");
    file.sync().expect("syncs");
    fs.sync_dir(dir).expect("syncs the directory");
    fs.complete_syncs(fs.seal_syncs());
    match Storage::open(fs, dir, 1, options()) {
        Ok((_, state, _)) => state.entries.len() + 1,
        Err(error) => {
            assert!(error.to_string().contains(DIR), "a refusal names the file: {error}");
            0
        }
    }
}

/// Seeds: every file of the base directory as it is, and with a byte changed.
pub(crate) fn seeds() -> Vec<(String, Vec<u8>)> {
    let (fs, names) = base();
    let mut seeds = Vec::new();
    for (at, name) in names.iter().enumerate() {
        let contents = fs.read(&Path::new(DIR).join(name)).expect("reads");
        let mut input = vec![at as u8];
        input.extend_from_slice(&contents);
        seeds.push((format!("{name}-intact"), input.clone()));
        let middle = input.len() / 2;
        if middle > 0 {
            input[middle] ^= 0x40;
            seeds.push((format!("{name}-damaged"), input));
        }
    }
    seeds
}
