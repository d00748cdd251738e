//! Simulated stable storage: writes land at once in the page cache (the "written"
//! state) and become durable only when a sync that was issued after them completes.
//! A crash keeps the durable state and loses the rest, or, when the write is torn,
//! keeps a prefix of the unsynced writes cut at an entry boundary.
//!
//! Every write is checked against the state it applies to: a core that appends a
//! non-contiguous entry, truncates into its snapshot or compacts past its log breaks
//! the host contract, and the storage says so instead of guessing.

use crate::random::Random;
use raft_core::{DurableState, Entry, HardState, LogIndex, Snapshot};
use std::collections::VecDeque;

/// One write, as the core asked for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Write {
    /// `Action::PersistHardState`.
    HardState(HardState),
    /// `Action::TruncateLog`.
    Truncate {
        /// The first index removed.
        from: LogIndex,
    },
    /// `Action::PersistEntries`.
    Entries(Vec<Entry>),
    /// `Action::PersistSnapshot`: the host's own compaction.
    Compact(Snapshot),
    /// `Action::InstallSnapshot`: a snapshot from the leader.
    Install(Snapshot),
}

/// A write the storage could not make sense of: the core broke the host contract.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StorageViolation(pub String);

/// One node's disk.
#[derive(Debug, Default)]
pub struct Storage {
    durable: DurableState,
    written: DurableState,
    /// Writes not yet durable, oldest first, each with its sequence number.
    pending: VecDeque<(u64, Write)>,
    /// How many writes were issued since the storage was created.
    issued: u64,
    /// Every write with a sequence number at or below this is durable.
    durable_through: u64,
}

impl Storage {
    /// The state a restart would see now.
    pub fn durable(&self) -> &DurableState {
        &self.durable
    }

    /// The state including writes not yet synced (what the node believes it stored).
    pub fn written(&self) -> &DurableState {
        &self.written
    }

    /// The sequence number of the latest write.
    pub fn issued(&self) -> u64 {
        self.issued
    }

    /// Writes up to this sequence number are durable.
    pub fn durable_through(&self) -> u64 {
        self.durable_through
    }

    /// Whether some write is not yet durable.
    pub fn has_unsynced(&self) -> bool {
        self.issued > self.durable_through
    }

    /// Issues a write. It is visible in [`Storage::written`] at once and durable after
    /// a [`Storage::sync_through`] covering it.
    pub fn write(&mut self, write: Write) -> Result<(), StorageViolation> {
        apply(&mut self.written, write.clone())?;
        self.issued += 1;
        self.pending.push_back((self.issued, write));
        Ok(())
    }

    /// Makes every write with a sequence number at or below `through` durable (a sync
    /// issued after that write completed). Returns whether any of them removed entries
    /// from the durable log (a truncation or a snapshot install), the only writes after
    /// which durable coverage can shrink.
    pub fn sync_through(&mut self, through: u64) -> bool {
        let mut removed_entries = false;
        while let Some((sequence, _)) = self.pending.front() {
            if *sequence > through {
                break;
            }
            let (sequence, write) = self.pending.pop_front().expect("front exists");
            removed_entries |= matches!(write, Write::Truncate { .. } | Write::Install(_));
            // The same writes in the same order were already checked against `written`.
            apply(&mut self.durable, write).expect("a write accepted once applies again");
            self.durable_through = sequence;
        }
        self.durable_through = self.durable_through.max(through.min(self.issued));
        removed_entries
    }

    /// The node crashed: unsynced writes are lost, except that with probability
    /// `torn_write_ppm` a prefix of them survives, cut at an entry boundary. Returns
    /// how many writes (counting a partial one) survived unsynced.
    pub fn crash(&mut self, random: &mut Random, torn_write_ppm: u32) -> usize {
        let mut survivors = 0;
        if !self.pending.is_empty() && random.chance(torn_write_ppm) {
            let keep_whole = random.index(self.pending.len());
            for _ in 0..keep_whole {
                let (_, write) = self.pending.pop_front().expect("counted");
                apply(&mut self.durable, write).expect("a write accepted once applies again");
                survivors += 1;
            }
            // The next write may be an append torn in the middle.
            if let Some((_, Write::Entries(entries))) = self.pending.pop_front() {
                let keep = random.index(entries.len() + 1);
                if keep > 0 {
                    let prefix = entries[..keep].to_vec();
                    apply(&mut self.durable, Write::Entries(prefix)).expect("a prefix of an accepted append");
                    survivors += 1;
                }
            }
        }
        self.pending.clear();
        self.durable_through = self.issued;
        self.written = self.durable.clone();
        survivors
    }
}

fn first_index(state: &DurableState) -> LogIndex {
    state.snapshot.as_ref().map_or(0, |snapshot| snapshot.meta.last_included_index) + 1
}

fn last_index(state: &DurableState) -> LogIndex {
    first_index(state) + state.entries.len() as u64 - 1
}

/// The term of the entry at `index` in `state`, counting the snapshot's last entry.
pub fn term_at(state: &DurableState, index: LogIndex) -> Option<u64> {
    let first = first_index(state);
    if index + 1 == first {
        return Some(state.snapshot.as_ref().map_or(0, |snapshot| snapshot.meta.last_included_term));
    }
    let offset = index.checked_sub(first)?;
    state.entries.get(offset as usize).map(|entry| entry.term)
}

fn apply(state: &mut DurableState, write: Write) -> Result<(), StorageViolation> {
    match write {
        Write::HardState(hard_state) => state.hard_state = hard_state,
        Write::Truncate { from } => {
            let first = first_index(state);
            if from < first {
                return Err(StorageViolation(format!(
                    "TruncateLog from {from} reaches into the snapshot, which ends at {}",
                    first - 1
                )));
            }
            state.entries.truncate((from - first) as usize);
        }
        Write::Entries(entries) => {
            for (expected, entry) in (last_index(state) + 1..).zip(&entries) {
                if entry.index != expected {
                    return Err(StorageViolation(format!(
                        "PersistEntries is not contiguous: expected index {expected}, got {}",
                        entry.index
                    )));
                }
            }
            state.entries.extend(entries);
        }
        Write::Compact(snapshot) => {
            let index = snapshot.meta.last_included_index;
            let first = first_index(state);
            if index + 1 < first || index > last_index(state) {
                return Err(StorageViolation(format!(
                    "PersistSnapshot at {index} is outside the log [{}, {}]",
                    first - 1,
                    last_index(state)
                )));
            }
            if term_at(state, index) != Some(snapshot.meta.last_included_term) {
                return Err(StorageViolation(format!(
                    "PersistSnapshot at {index} says term {} but the log has {:?}",
                    snapshot.meta.last_included_term,
                    term_at(state, index)
                )));
            }
            state.entries.drain(..(index + 1 - first) as usize);
            state.snapshot = Some(snapshot);
        }
        Write::Install(snapshot) => {
            let index = snapshot.meta.last_included_index;
            let first = first_index(state);
            if index + 1 < first {
                return Err(StorageViolation(format!(
                    "InstallSnapshot at {index} is older than the stored snapshot at {}",
                    first - 1
                )));
            }
            // Raft paper §7: keep the entries after the snapshot if the log agrees with it.
            if index >= first && term_at(state, index) == Some(snapshot.meta.last_included_term) {
                state.entries.drain(..(index + 1 - first) as usize);
            } else {
                state.entries.clear();
            }
            state.snapshot = Some(snapshot);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::Purpose;
    use raft_core::{EntryPayload, SnapshotMeta};

    fn entries(indexes: std::ops::RangeInclusive<u64>, term: u64) -> Vec<Entry> {
        indexes.map(|index| Entry { term, index, payload: EntryPayload::Noop }).collect()
    }

    fn snapshot(index: u64, term: u64) -> Snapshot {
        Snapshot {
            meta: SnapshotMeta { last_included_index: index, last_included_term: term },
            voters: vec![1],
            data: Vec::new(),
        }
    }

    #[test]
    fn unsynced_writes_are_lost_on_crash_and_synced_ones_survive() {
        let mut storage = Storage::default();
        storage.write(Write::HardState(HardState { term: 1, voted_for: Some(1) })).unwrap();
        storage.write(Write::Entries(entries(1..=2, 1))).unwrap();
        storage.sync_through(storage.issued());
        storage.write(Write::HardState(HardState { term: 2, voted_for: Some(3) })).unwrap();
        storage.write(Write::Entries(entries(3..=3, 2))).unwrap();
        assert_eq!(storage.written().entries.len(), 3);
        assert!(storage.has_unsynced());
        storage.crash(&mut Random::new(0, Purpose::Storage), 0);
        assert_eq!(storage.durable().hard_state, HardState { term: 1, voted_for: Some(1) });
        assert_eq!(storage.durable().entries, entries(1..=2, 1));
        assert_eq!(storage.written(), storage.durable());
        assert!(!storage.has_unsynced());
    }

    #[test]
    fn a_sync_covers_only_writes_issued_before_it() {
        let mut storage = Storage::default();
        storage.write(Write::Entries(entries(1..=1, 1))).unwrap();
        let sync_covers = storage.issued();
        storage.write(Write::Entries(entries(2..=2, 1))).unwrap();
        storage.sync_through(sync_covers);
        assert_eq!(storage.durable().entries, entries(1..=1, 1));
        assert!(storage.has_unsynced());
    }

    #[test]
    fn torn_writes_keep_a_prefix_cut_at_an_entry_boundary() {
        let mut kept_lengths = std::collections::BTreeSet::new();
        for seed in 0..200 {
            let mut storage = Storage::default();
            storage.write(Write::Entries(entries(1..=4, 1))).unwrap();
            storage.write(Write::Entries(entries(5..=8, 1))).unwrap();
            storage.crash(&mut Random::new(seed, Purpose::Storage), 1_000_000);
            let kept = &storage.durable().entries;
            assert_eq!(kept, &entries(1..=kept.len() as u64, 1), "a torn write keeps a contiguous prefix");
            kept_lengths.insert(kept.len());
        }
        assert!(kept_lengths.len() > 4, "tears land at many boundaries: {kept_lengths:?}");
    }

    #[test]
    fn snapshots_drop_covered_entries_and_keep_agreeing_ones() {
        let mut storage = Storage::default();
        storage.write(Write::Entries(entries(1..=5, 1))).unwrap();
        storage.write(Write::Compact(snapshot(2, 1))).unwrap();
        assert_eq!(storage.written().entries, entries(3..=5, 1));
        storage.write(Write::Install(snapshot(4, 1))).unwrap();
        assert_eq!(storage.written().entries, entries(5..=5, 1), "entries after an agreeing snapshot stay");
        storage.write(Write::Install(snapshot(6, 2))).unwrap();
        assert!(storage.written().entries.is_empty());
        assert_eq!(term_at(storage.written(), 6), Some(2));
    }

    #[test]
    fn writes_that_break_the_host_contract_are_refused() {
        let mut storage = Storage::default();
        storage.write(Write::Entries(entries(1..=3, 1))).unwrap();
        assert!(storage.write(Write::Entries(entries(5..=5, 1))).is_err(), "gap");
        storage.write(Write::Compact(snapshot(2, 1))).unwrap();
        assert!(storage.write(Write::Truncate { from: 2 }).is_err(), "into the snapshot");
        assert!(storage.write(Write::Compact(snapshot(3, 9))).is_err(), "wrong term");
        assert!(storage.write(Write::Compact(snapshot(4, 1))).is_err(), "past the log");
        assert!(storage.write(Write::Install(snapshot(1, 1))).is_err(), "older than the snapshot");
        storage.write(Write::Truncate { from: 3 }).unwrap();
        assert!(storage.written().entries.is_empty());
    }
}
