//! The in-memory copy of the node's log: a snapshot boundary followed by entries.
//!
//! The host holds the durable copy; this one mirrors it so a step never has to read
//! storage. Every mutation here is matched by a persist action emitted by the node.

use crate::configuration::Configuration;
use crate::membership::MembershipLog;
use crate::types::{Entry, LogIndex, SnapshotMeta, Term};

/// The log after the last snapshot, with commit and apply positions.
#[derive(Debug)]
pub(crate) struct RaftLog {
    /// The index and term of the last entry folded into the snapshot (0, 0 if none).
    snapshot: SnapshotMeta,
    /// Entries `snapshot.last_included_index + 1 ..= last_index()`, contiguous.
    entries: Vec<Entry>,
    /// The highest index known to be committed.
    pub(crate) commit_index: LogIndex,
    /// The highest index handed to the host for applying.
    pub(crate) applied_index: LogIndex,
    /// The log is durable through this index, as the host reported (`Input::LogPersisted`):
    /// what a leader counts for itself toward a commit. Never above the last index.
    pub(crate) persisted_index: LogIndex,
    /// The voter sets this log defines; kept here so that every append, truncation and
    /// compaction updates them without the node having to remember to.
    membership: MembershipLog,
}

impl RaftLog {
    /// A log restored from durable state, with `configuration` in force at the snapshot
    /// (or the bootstrap one without it). The caller has checked contiguity.
    pub(crate) fn restore(
        snapshot: SnapshotMeta,
        configuration: Configuration,
        entries: Vec<Entry>,
    ) -> RaftLog {
        debug_assert!(entries
            .iter()
            .enumerate()
            .all(|(offset, entry)| entry.index == snapshot.last_included_index + 1 + offset as u64));
        let mut membership = MembershipLog::new(configuration);
        membership.on_append(&entries);
        // Restored from durable state: all of it is durable.
        let persisted_index = snapshot.last_included_index + entries.len() as u64;
        RaftLog {
            snapshot,
            entries,
            commit_index: snapshot.last_included_index,
            applied_index: snapshot.last_included_index,
            persisted_index,
            membership,
        }
    }

    /// The configuration in force: set by the newest membership entry, committed or not.
    pub(crate) fn configuration(&self) -> &Configuration {
        self.membership.current()
    }

    /// The configuration in force at `index` (an index this log or its snapshot covers).
    pub(crate) fn configuration_at(&self, index: LogIndex) -> &Configuration {
        self.membership.at(index)
    }

    /// The index of the newest membership entry still in the log.
    pub(crate) fn latest_membership_change(&self) -> Option<LogIndex> {
        self.membership.latest_change_index()
    }

    pub(crate) fn snapshot_meta(&self) -> SnapshotMeta {
        self.snapshot
    }

    /// The first index still held as an entry.
    pub(crate) fn first_index(&self) -> LogIndex {
        self.snapshot.last_included_index + 1
    }

    pub(crate) fn last_index(&self) -> LogIndex {
        self.snapshot.last_included_index + self.entries.len() as u64
    }

    pub(crate) fn last_term(&self) -> Term {
        self.entries.last().map_or(self.snapshot.last_included_term, |entry| entry.term)
    }

    /// The term of the entry at `index`, or `None` if it is compacted away or beyond the log.
    pub(crate) fn term_at(&self, index: LogIndex) -> Option<Term> {
        if index == self.snapshot.last_included_index {
            return Some(self.snapshot.last_included_term);
        }
        self.entry(index).map(|entry| entry.term)
    }

    pub(crate) fn entry(&self, index: LogIndex) -> Option<&Entry> {
        let offset = index.checked_sub(self.first_index())?;
        self.entries.get(usize::try_from(offset).ok()?)
    }

    /// Whether a candidate whose log ends at (`last_index`, `last_term`) is at least as
    /// up-to-date as this log (Raft paper §5.4.1).
    pub(crate) fn candidate_is_up_to_date(&self, last_index: LogIndex, last_term: Term) -> bool {
        last_term > self.last_term() || (last_term == self.last_term() && last_index >= self.last_index())
    }

    /// Entries from `from` on, at most `max_entries` and about `max_bytes` (at least one
    /// entry when any exists). `from` must not be compacted.
    pub(crate) fn entries_for_message(&self, from: LogIndex, max_entries: u64, max_bytes: u64) -> &[Entry] {
        assert!(from >= self.first_index(), "entries {from}.. are compacted");
        if from > self.last_index() {
            return &[];
        }
        let start = (from - self.first_index()) as usize;
        let available = &self.entries[start..];
        let mut count = 0usize;
        let mut bytes = 0u64;
        for entry in available.iter().take(max_entries as usize) {
            bytes += entry.size_bytes();
            if count > 0 && bytes > max_bytes {
                break;
            }
            count += 1;
        }
        &available[..count]
    }

    /// Entries in `from ..= to`, all of which must be held.
    pub(crate) fn entries_between(&self, from: LogIndex, to: LogIndex) -> &[Entry] {
        if from > to {
            return &[];
        }
        assert!(from >= self.first_index() && to <= self.last_index());
        let start = (from - self.first_index()) as usize;
        let end = (to - self.first_index()) as usize;
        &self.entries[start..=end]
    }

    /// The largest index at or below `index` whose term is at most `term`: where a log
    /// ending in `term` most likely agrees with this one (fast backtracking).
    /// Terms never decrease along a log, so this is a binary search: a rejection
    /// costs O(log n) however far the logs diverge.
    pub(crate) fn last_index_with_term_at_most(&self, index: LogIndex, term: Term) -> LogIndex {
        let upto = index.min(self.last_index());
        if upto <= self.snapshot.last_included_index {
            return upto;
        }
        let candidates = &self.entries[..(upto - self.snapshot.last_included_index) as usize];
        let at_most = candidates.partition_point(|entry| entry.term <= term);
        self.snapshot.last_included_index + at_most as u64
    }

    /// The index of the first entry in `entries` that conflicts with this log (same
    /// index, different term), or that this log does not have yet. `None` if every
    /// entry is already present: then nothing must be written or truncated.
    pub(crate) fn first_new_or_conflicting(&self, entries: &[Entry]) -> Option<usize> {
        entries.iter().position(|entry| {
            entry.index > self.last_index()
                || (entry.index > self.snapshot.last_included_index
                    && self.term_at(entry.index) != Some(entry.term))
        })
    }

    /// Appends entries that directly follow the last one.
    pub(crate) fn append(&mut self, new_entries: &[Entry]) {
        if let Some(first) = new_entries.first() {
            assert_eq!(first.index, self.last_index() + 1, "log append must be contiguous");
        }
        self.entries.extend_from_slice(new_entries);
        self.membership.on_append(new_entries);
    }

    /// Removes every entry at or after `from`. Committed entries are never removed.
    pub(crate) fn truncate_from(&mut self, from: LogIndex) {
        assert!(from > self.commit_index, "truncating committed entry {from} (commit {})", self.commit_index);
        assert!(from > self.snapshot.last_included_index);
        let keep = (from - self.first_index()) as usize;
        self.entries.truncate(keep);
        self.persisted_index = self.persisted_index.min(from - 1);
        self.membership.on_truncate(from);
    }

    /// Drops entries up to `meta.last_included_index`, which must be applied. Returns
    /// the configuration in force there, which the snapshot must carry.
    pub(crate) fn compact_to(&mut self, meta: SnapshotMeta) -> Configuration {
        let drop_through = meta.last_included_index;
        assert!(drop_through <= self.applied_index && drop_through <= self.last_index());
        let drop_count = (drop_through - self.snapshot.last_included_index) as usize;
        self.entries.drain(..drop_count);
        self.snapshot = meta;
        let configuration = self.membership.at(drop_through).clone();
        self.membership.on_snapshot(drop_through, configuration.clone());
        configuration
    }

    /// Replaces the log with a snapshot received from the leader, keeping any entries
    /// after it that agree with it (Raft paper §7).
    pub(crate) fn install_snapshot(&mut self, meta: SnapshotMeta, configuration: Configuration) {
        let index = meta.last_included_index;
        if self.term_at(index) == Some(meta.last_included_term) && index >= self.first_index() {
            let drop_count = (index - self.snapshot.last_included_index) as usize;
            self.entries.drain(..drop_count);
        } else {
            self.entries.clear();
            self.persisted_index = self.persisted_index.min(index);
            self.membership.on_truncate(index + 1);
        }
        self.membership.on_snapshot(index, configuration);
        self.snapshot = meta;
        self.commit_index = self.commit_index.max(index);
        self.applied_index = self.applied_index.max(index);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::NodeId;

    fn voters(ids: &[NodeId]) -> Configuration {
        Configuration::voters(ids.iter().copied()).unwrap()
    }
    use crate::types::EntryPayload;

    fn entries(terms: &[Term]) -> Vec<Entry> {
        terms
            .iter()
            .enumerate()
            .map(|(offset, &term)| Entry { term, index: offset as u64 + 1, payload: EntryPayload::Noop })
            .collect()
    }

    #[test]
    fn term_lookup_covers_snapshot_boundary_and_nothing_beyond() {
        let mut log = RaftLog::restore(SnapshotMeta::default(), voters(&[1]), entries(&[1, 1, 2, 3]));
        assert_eq!(log.term_at(0), Some(0));
        assert_eq!(log.term_at(3), Some(2));
        assert_eq!(log.term_at(5), None);
        log.commit_index = 2;
        log.applied_index = 2;
        log.compact_to(SnapshotMeta { last_included_index: 2, last_included_term: 1 });
        assert_eq!(log.term_at(1), None);
        assert_eq!(log.term_at(2), Some(1));
        assert_eq!(log.term_at(4), Some(3));
        assert_eq!(log.first_index(), 3);
        assert_eq!(log.last_index(), 4);
    }

    #[test]
    fn duplicate_entries_are_not_new_and_a_conflict_is_found() {
        let log = RaftLog::restore(SnapshotMeta::default(), voters(&[1]), entries(&[1, 1, 2]));
        assert_eq!(log.first_new_or_conflicting(&entries(&[1, 1])), None);
        assert_eq!(log.first_new_or_conflicting(&entries(&[1, 1, 2, 2])), Some(3));
        assert_eq!(log.first_new_or_conflicting(&entries(&[1, 1, 3])), Some(2));
    }

    #[test]
    fn backtracking_hint_finds_last_entry_not_newer_than_term() {
        let log = RaftLog::restore(SnapshotMeta::default(), voters(&[1]), entries(&[1, 1, 4, 4, 5, 5]));
        assert_eq!(log.last_index_with_term_at_most(6, 4), 4);
        assert_eq!(log.last_index_with_term_at_most(6, 3), 2);
        assert_eq!(log.last_index_with_term_at_most(9, 9), 6);
        assert_eq!(log.last_index_with_term_at_most(6, 0), 0);
    }

    #[test]
    fn message_batches_respect_count_and_byte_limits_but_send_at_least_one() {
        let log = RaftLog::restore(SnapshotMeta::default(), voters(&[1]), entries(&[1, 1, 1, 1]));
        assert_eq!(log.entries_for_message(1, 2, u64::MAX).len(), 2);
        let commands: Vec<Entry> = (1..=3)
            .map(|index| Entry { term: 1, index, payload: EntryPayload::Command(vec![0; 100].into()) })
            .collect();
        let log_of_commands = RaftLog::restore(SnapshotMeta::default(), voters(&[1]), commands);
        assert_eq!(log_of_commands.entries_for_message(1, 10, 248).len(), 2, "124 bytes each");
        assert_eq!(log_of_commands.entries_for_message(1, 10, 247).len(), 1);
        assert_eq!(log.entries_for_message(2, 100, 1).len(), 1);
        assert_eq!(log.entries_for_message(1, 100, 48).len(), 2);
        assert_eq!(log.entries_for_message(5, 100, 100).len(), 0);
    }

    #[test]
    fn installing_a_snapshot_over_a_divergent_log_drops_its_membership_entries() {
        let mut divergent = entries(&[1, 1, 1, 1]);
        divergent[3].payload = EntryPayload::MembershipChange {
            configuration: voters(&[1, 9]),
            context: std::sync::Arc::from(&[][..]),
        };
        let mut log = RaftLog::restore(SnapshotMeta::default(), voters(&[1, 2, 3]), divergent);
        assert_eq!(log.configuration().incoming_voters(), &[1, 9]);
        // The leader's snapshot ends at index 3 in term 2: our entries conflict there.
        log.install_snapshot(
            SnapshotMeta { last_included_index: 3, last_included_term: 2 },
            voters(&[1, 2, 3]),
        );
        assert_eq!(log.configuration().incoming_voters(), &[1, 2, 3]);
        assert_eq!(log.latest_membership_change(), None);
        assert_eq!(log.last_index(), 3);
    }

    #[test]
    fn installing_a_snapshot_keeps_the_agreeing_suffix_and_its_membership() {
        let mut agreeing = entries(&[1, 1, 1, 1]);
        agreeing[3].payload = EntryPayload::MembershipChange {
            configuration: voters(&[1, 9]),
            context: std::sync::Arc::from(&[][..]),
        };
        let mut log = RaftLog::restore(SnapshotMeta::default(), voters(&[1, 2, 3]), agreeing);
        log.install_snapshot(
            SnapshotMeta { last_included_index: 3, last_included_term: 1 },
            voters(&[1, 2, 3]),
        );
        assert_eq!(
            log.configuration().incoming_voters(),
            &[1, 9],
            "entry 4 agrees with the snapshot and stays"
        );
        assert_eq!(log.last_index(), 4);
    }

    #[test]
    #[should_panic(expected = "truncating committed entry")]
    fn truncating_a_committed_entry_is_an_invariant_violation() {
        let mut log = RaftLog::restore(SnapshotMeta::default(), voters(&[1]), entries(&[1, 1, 1]));
        log.commit_index = 2;
        log.truncate_from(2);
    }
}
