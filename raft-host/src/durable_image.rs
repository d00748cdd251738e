//! What a sequence of writes leaves on disk: the meaning of each [`Write`], applied to
//! a [`DurableState`]. A simulated disk and a real log's recovery both replay writes
//! through this, so they agree on what a write means, and every write is checked
//! against the state it applies to: a node that appends a gap, truncates into its
//! snapshot or compacts past its log broke the host contract, and this says how
//! instead of guessing.

use crate::io::Write;
use raft_core::{DurableState, LogIndex, Term};
use std::fmt;

/// A write that makes no sense on the state it was applied to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WriteError(pub String);

impl fmt::Display for WriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for WriteError {}

/// The first index the state holds as an entry (one past its snapshot).
pub fn first_index(state: &DurableState) -> LogIndex {
    snapshot_index(state) + 1
}

/// The last index the state's snapshot covers (0 without one).
pub fn snapshot_index(state: &DurableState) -> LogIndex {
    state.snapshot.as_ref().map_or(0, |snapshot| snapshot.meta.last_included_index)
}

/// The index of the state's last entry (or of its snapshot's end).
pub fn last_index(state: &DurableState) -> LogIndex {
    snapshot_index(state) + state.entries.len() as u64
}

/// The term of the entry at `index`, counting the snapshot's last entry.
pub fn term_at(state: &DurableState, index: LogIndex) -> Option<Term> {
    let first = first_index(state);
    if index + 1 == first {
        return Some(state.snapshot.as_ref().map_or(0, |snapshot| snapshot.meta.last_included_term));
    }
    let offset = index.checked_sub(first)?;
    state.entries.get(offset as usize).map(|entry| entry.term)
}

/// Applies `write` to `state`, or says why it cannot be (leaving `state` as it was).
pub fn apply(state: &mut DurableState, write: &Write) -> Result<(), WriteError> {
    match write {
        Write::HardState(hard_state) => state.hard_state = *hard_state,
        Write::Truncate { from } => {
            let first = first_index(state);
            if *from < first {
                return Err(WriteError(format!(
                    "TruncateLog from {from} reaches into the snapshot, which ends at {}",
                    first - 1
                )));
            }
            state.entries.truncate((from - first) as usize);
        }
        Write::Entries(entries) => {
            for (expected, entry) in (last_index(state) + 1..).zip(entries) {
                if entry.index != expected {
                    return Err(WriteError(format!(
                        "PersistEntries is not contiguous: expected index {expected}, got {}",
                        entry.index
                    )));
                }
            }
            state.entries.extend(entries.iter().cloned());
        }
        Write::Compact(snapshot) => {
            let index = snapshot.meta.last_included_index;
            let first = first_index(state);
            if index + 1 < first || index > last_index(state) {
                return Err(WriteError(format!(
                    "PersistSnapshot at {index} is outside the log [{}, {}]",
                    first - 1,
                    last_index(state)
                )));
            }
            if term_at(state, index) != Some(snapshot.meta.last_included_term) {
                return Err(WriteError(format!(
                    "PersistSnapshot at {index} says term {} but the log has {:?}",
                    snapshot.meta.last_included_term,
                    term_at(state, index)
                )));
            }
            state.entries.drain(..(index + 1 - first) as usize);
            state.snapshot = Some(snapshot.clone());
        }
        Write::Install(snapshot) => {
            let index = snapshot.meta.last_included_index;
            let first = first_index(state);
            if index + 1 < first {
                return Err(WriteError(format!(
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
            state.snapshot = Some(snapshot.clone());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft_core::{Entry, EntryPayload, HardState, Snapshot, SnapshotMeta};

    fn entries(indexes: std::ops::RangeInclusive<u64>, term: u64) -> Vec<Entry> {
        indexes.map(|index| Entry { term, index, payload: EntryPayload::Noop }).collect()
    }

    fn snapshot(index: u64, term: u64) -> Snapshot {
        Snapshot {
            meta: SnapshotMeta { last_included_index: index, last_included_term: term },
            configuration: raft_core::Configuration::voters([1]).unwrap(),
            size_bytes: 0,
        }
    }

    #[test]
    fn snapshots_drop_covered_entries_and_keep_agreeing_ones() {
        let mut state = DurableState::default();
        apply(&mut state, &Write::Entries(entries(1..=5, 1))).unwrap();
        apply(&mut state, &Write::Compact(snapshot(2, 1))).unwrap();
        assert_eq!(state.entries, entries(3..=5, 1));
        apply(&mut state, &Write::Install(snapshot(4, 1))).unwrap();
        assert_eq!(state.entries, entries(5..=5, 1), "entries after an agreeing snapshot stay");
        apply(&mut state, &Write::Install(snapshot(6, 2))).unwrap();
        assert!(state.entries.is_empty());
        assert_eq!(term_at(&state, 6), Some(2));
        assert_eq!(last_index(&state), 6);
    }

    #[test]
    fn writes_that_break_the_host_contract_are_refused_and_change_nothing() {
        let mut state = DurableState::default();
        apply(&mut state, &Write::HardState(HardState { term: 1, voted_for: Some(1) })).unwrap();
        apply(&mut state, &Write::Entries(entries(1..=3, 1))).unwrap();
        let before = state.clone();
        assert!(apply(&mut state, &Write::Entries(entries(5..=5, 1))).is_err(), "gap");
        assert_eq!(state, before);
        apply(&mut state, &Write::Compact(snapshot(2, 1))).unwrap();
        assert!(apply(&mut state, &Write::Truncate { from: 2 }).is_err(), "into the snapshot");
        assert!(apply(&mut state, &Write::Compact(snapshot(3, 9))).is_err(), "wrong term");
        assert!(apply(&mut state, &Write::Compact(snapshot(4, 1))).is_err(), "past the log");
        assert!(apply(&mut state, &Write::Install(snapshot(1, 1))).is_err(), "older than the snapshot");
        apply(&mut state, &Write::Truncate { from: 3 }).unwrap();
        assert!(state.entries.is_empty());
    }
}
