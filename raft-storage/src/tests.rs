//! The storage's contract: what is synced comes back after a restart; a torn tail is
//! cut to a prefix of what was written; damage to synced data is refused by name.

use crate::files::{self, HARD_STATE_FILE};
use crate::record;
use crate::storage::*;
use crate::{SnapshotFiles, StdFs};
use raft_core::{DurableState, Entry, HardState, Snapshot};
use raft_core::{EntryPayload, SnapshotMeta};
use raft_host::SnapshotStore;
use raft_host::Write;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// A fresh directory under the system's temporary directory, removed on drop.
pub(crate) struct TempDir(pub(crate) PathBuf);

impl TempDir {
    pub(crate) fn new(label: &str) -> TempDir {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let path = std::env::temp_dir().join(format!(
            "kv-storage-{label}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&path);
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn entry(index: u64, term: u64) -> Entry {
    Entry { index, term, payload: EntryPayload::Command(format!("command {index:03}").into_bytes().into()) }
}

fn open(dir: &Path) -> Result<(Storage<StdFs>, DurableState, OpenReport), StorageError> {
    Storage::open(StdFs, dir, 1, StorageOptions::default())
}

fn small_segments() -> StorageOptions {
    StorageOptions { segment_bytes: 300 }
}

fn segment_path(dir: &Path, sequence: u64) -> PathBuf {
    dir.join(files::segment_name(sequence))
}

#[test]
fn synced_writes_come_back_after_a_restart() {
    let dir = TempDir::new("restart");
    {
        let (mut storage, state, report) = open(&dir.0).unwrap();
        assert!(report.fresh);
        assert_eq!(state, DurableState::default());
        storage.write(&Write::HardState(HardState { term: 3, voted_for: Some(2) })).unwrap();
        storage.write(&Write::Entries((1..=5).map(|index| entry(index, 3)).collect())).unwrap();
        storage.write(&Write::Truncate { from: 4 }).unwrap();
        storage.write(&Write::Entries(vec![entry(4, 4)])).unwrap();
        storage.sync().unwrap();
    }
    let (storage, state, report) = open(&dir.0).unwrap();
    assert!(!report.fresh);
    assert_eq!(state.hard_state, HardState { term: 3, voted_for: Some(2) });
    let terms: Vec<(u64, u64)> = state.entries.iter().map(|entry| (entry.index, entry.term)).collect();
    assert_eq!(terms, vec![(1, 3), (2, 3), (3, 3), (4, 4)]);
    assert_eq!(storage.mirror(), &state);
}

#[test]
fn a_directory_belongs_to_one_node_and_one_process() {
    let dir = TempDir::new("owner");
    let (first, _, _) = open(&dir.0).unwrap();
    let busy = open(&dir.0).err().unwrap();
    assert!(busy.0.contains("in use by another process"), "{busy}");
    drop(first);
    let wrong = Storage::open(StdFs, &dir.0, 2, StorageOptions::default()).err().unwrap();
    assert!(wrong.0.contains("holds the state of node 1, not of node 2"), "{wrong}");
}

/// A snapshot whose bytes the driver's store wrote into `dir`, as before a compaction.
fn snapshot(dir: &Path, index: u64, term: u64, data: &[u8]) -> Snapshot {
    let meta = SnapshotMeta { last_included_index: index, last_included_term: term };
    let mut files = SnapshotFiles::new(StdFs, dir);
    files.create(meta).unwrap();
    files.write(data).unwrap();
    let size_bytes = files.finish().unwrap();
    Snapshot { meta, configuration: raft_core::Configuration::voters([1, 2, 3]).unwrap(), size_bytes }
}

/// The state machine's bytes of the snapshot `meta` in `dir`.
fn snapshot_data(dir: &Path, meta: SnapshotMeta) -> Result<Vec<u8>, String> {
    let mut data = Vec::new();
    raft_host::snapshots::read_to_end(&mut *SnapshotFiles::new(StdFs, dir).open(meta)?, &mut data)?;
    Ok(data)
}

#[test]
fn a_compaction_starts_a_checkpoint_and_drops_what_it_covers() {
    let dir = TempDir::new("compact");
    {
        let (mut storage, _, _) = Storage::open(StdFs, &dir.0, 1, small_segments()).unwrap();
        for index in 1..=20 {
            storage.write(&Write::Entries(vec![entry(index, 1)])).unwrap();
        }
        storage.sync().unwrap();
        assert!(storage.current_segment() >= 2, "small segments rotate");
        storage.write(&Write::Compact(snapshot(&dir.0, 15, 1, b"state at 15"))).unwrap();
        storage.write(&Write::Entries(vec![entry(21, 2)])).unwrap();
        storage.sync().unwrap();
    }
    let names: Vec<String> =
        fs::read_dir(&dir.0).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    let segments = names.iter().filter(|name| files::parse_segment_name(name).is_some()).count();
    assert_eq!(segments, 1, "older segments are removed: {names:?}");
    let (_, state, _) = Storage::open(StdFs, &dir.0, 1, small_segments()).unwrap();
    let snapshot = state.snapshot.expect("the snapshot comes back");
    assert_eq!(snapshot.meta.last_included_index, 15);
    assert_eq!(snapshot_data(&dir.0, snapshot.meta).unwrap(), b"state at 15");
    let indexes: Vec<u64> = state.entries.iter().map(|entry| entry.index).collect();
    assert_eq!(indexes, vec![16, 17, 18, 19, 20, 21]);
}

#[test]
fn an_installed_snapshot_drops_a_conflicting_tail() {
    let dir = TempDir::new("install");
    {
        let (mut storage, _, _) = open(&dir.0).unwrap();
        storage.write(&Write::Entries((1..=6).map(|index| entry(index, 1)).collect())).unwrap();
        storage.sync().unwrap();
        // The leader's snapshot ends at 8 in term 3: nothing of the local log survives.
        storage.write(&Write::Install(snapshot(&dir.0, 8, 3, b"leader state"))).unwrap();
        storage.sync().unwrap();
    }
    let (_, state, _) = open(&dir.0).unwrap();
    assert_eq!(state.snapshot.unwrap().meta.last_included_index, 8);
    assert!(state.entries.is_empty());
}

#[test]
fn a_missing_segment_is_refused_by_name() {
    for missing in ["middle", "newest"] {
        let dir = TempDir::new("missing");
        let last = {
            let (mut storage, _, _) = Storage::open(StdFs, &dir.0, 1, small_segments()).unwrap();
            for index in 1..=30 {
                storage.write(&Write::Entries(vec![entry(index, 1)])).unwrap();
            }
            storage.sync().unwrap();
            storage.current_segment()
        };
        let gone = if missing == "middle" { last - 1 } else { last };
        fs::remove_file(segment_path(&dir.0, gone)).unwrap();
        let error = Storage::open(StdFs, &dir.0, 1, small_segments()).err().unwrap();
        assert!(error.0.contains(&files::segment_name(gone)), "{missing}: {error}");
        assert!(error.0.contains("missing"), "{error}");
    }
}

/// Writes 12 entries, syncing after each, and returns the bytes of the one segment.
fn twelve_synced_entries(dir: &Path) -> Vec<u8> {
    let (mut storage, _, _) = open(dir).unwrap();
    for index in 1..=12 {
        storage.write(&Write::Entries(vec![entry(index, 1)])).unwrap();
        storage.sync().unwrap();
    }
    drop(storage);
    fs::read(segment_path(dir, 1)).unwrap()
}

#[test]
fn a_cut_at_any_byte_of_the_last_records_recovers_a_prefix() {
    let dir = TempDir::new("cut");
    let whole = twelve_synced_entries(&dir.0);
    // The last three records, cut at every byte offset.
    let record_bytes = (whole.len() - first_record_end(&whole)) / 12;
    for cut in whole.len() - 3 * record_bytes..whole.len() {
        fs::write(segment_path(&dir.0, 1), &whole[..cut]).unwrap();
        let (_, state, report) = open(&dir.0).unwrap_or_else(|error| panic!("cut at {cut}: {error}"));
        let indexes: Vec<u64> = state.entries.iter().map(|entry| entry.index).collect();
        let expected: Vec<u64> = (1..=indexes.len() as u64).collect();
        assert_eq!(indexes, expected, "cut at {cut}: a prefix");
        assert!(indexes.len() >= 9, "cut at {cut}: only the cut records are lost");
        let intact = first_record_end(&whole) + indexes.len() * record_bytes;
        assert_eq!(report.torn_tail.is_some(), cut != intact, "cut at {cut}");
        // The cut tail is gone from the file, so appends continue after whole records.
        assert_eq!(fs::read(segment_path(&dir.0, 1)).unwrap().len(), intact, "cut at {cut}");
    }
}

fn first_record_end(segment: &[u8]) -> usize {
    match record::decode_frame(segment, 0) {
        record::Frame::Record(_, next) => next,
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_flipped_bit_in_an_early_record_is_refused_with_file_and_offset() {
    let dir = TempDir::new("flip");
    let whole = twelve_synced_entries(&dir.0);
    let second_record = first_record_end(&whole) + (whole.len() - first_record_end(&whole)) / 12;
    for position in [second_record, second_record + 5, second_record + 14, second_record + 20] {
        let mut damaged = whole.clone();
        damaged[position] ^= 0x04;
        fs::write(segment_path(&dir.0, 1), &damaged).unwrap();
        let error =
            open(&dir.0).err().unwrap_or_else(|| panic!("a bit flipped at {position} went unnoticed"));
        let place = format!("{} at offset {second_record}", segment_path(&dir.0, 1).display());
        assert!(error.0.contains(&place), "{error}");
        assert!(error.0.contains("refusing to start"), "{error}");
    }
}

#[test]
fn a_damaged_hard_state_or_snapshot_is_refused() {
    let dir = TempDir::new("sealed");
    {
        let (mut storage, _, _) = open(&dir.0).unwrap();
        storage.write(&Write::Entries(vec![entry(1, 1), entry(2, 1)])).unwrap();
        storage.write(&Write::Compact(snapshot(&dir.0, 2, 1, b"two"))).unwrap();
        storage.sync().unwrap();
    }
    let snapshot_path = dir.0.join(files::snapshot_name(2, 1));
    let whole = fs::read(&snapshot_path).unwrap();
    let mut bytes = whole.clone();
    bytes[0] ^= 1;
    fs::write(&snapshot_path, &bytes).unwrap();
    // The storage opens (it checks the file is whole); restoring from it reads every
    // byte and finds the damage.
    let (_, state, _) = open(&dir.0).unwrap();
    let error = snapshot_data(&dir.0, state.snapshot.unwrap().meta).unwrap_err();
    assert!(error.contains("snapshot-") && error.contains("checksum"), "{error}");
    fs::write(&snapshot_path, &whole[..whole.len() - 1]).unwrap();
    let error = open(&dir.0).err().unwrap();
    assert!(error.0.contains("snapshot-") && error.0.contains("the file is"), "{error}");
    fs::remove_file(&snapshot_path).unwrap();
    assert!(open(&dir.0).err().unwrap().0.contains("cannot be read"));

    let hard_path = dir.0.join(HARD_STATE_FILE);
    fs::write(&hard_path, b"KVHARD04garbage").unwrap();
    let error = open(&dir.0).err().unwrap();
    assert!(error.0.contains("hardstate") && error.0.contains("checksum"), "{error}");
    fs::write(&hard_path, b"KVHARD01garbage").unwrap();
    let error = open(&dir.0).err().unwrap();
    assert!(error.0.contains("format KVHARD01 and this build reads KVHARD04"), "{error}");
    fs::remove_file(&hard_path).unwrap();
    assert!(open(&dir.0).err().unwrap().0.contains("hard state file is missing"));
}

#[test]
fn writes_the_log_cannot_take_are_refused() {
    let dir = TempDir::new("contract");
    let (mut storage, _, _) = open(&dir.0).unwrap();
    let gap = storage.write(&Write::Entries(vec![entry(3, 1)])).unwrap_err();
    assert!(gap.to_string().contains("does not fit the log"), "{gap}");
}
