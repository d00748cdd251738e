//! State machine safety (Raft paper Figure 3): every node applies the same entry at a
//! given index, so the applied sequences of all nodes are prefixes of one another.
//! Snapshots are held to the same rule: a state machine restored from a snapshot at
//! index `i` must equal the applied prefix up to `i`.
//!
//! The same entries must also get the same answers ([`Invariant::ReplicaAgreement`]):
//! each node's state machine fingerprints its answer to every entry, and a node that
//! answers an index differently from the first node to apply it has a state that
//! diverged, though it applied the same log. That is a state machine (or a host around
//! it) that is not deterministic: one that reads a clock, iterates a hash map, or
//! restores a snapshot that forgot a field. A divergence shows when an answer depends
//! on it (a compare-and-set's previous value, a delete's "existed", a session's
//! refusal), so it is caught at the first entry that reveals it.

use super::{payload_digest, Check, Invariant, Violation};
use raft_core::{Entry, LogIndex, NodeId, Term};

/// An entry some node applied: committed, as far as the cluster's clients can tell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommittedEntry {
    /// Its index.
    pub index: LogIndex,
    /// Its term.
    pub term: Term,
}

/// The fingerprint of an applied prefix extended by one entry. The simulated state
/// machine computes the same chain, so a snapshot can be compared with the history.
pub fn extend_prefix_digest(prefix_digest: u64, entry: &Entry) -> u64 {
    let mut hasher = crate::random::Fingerprint::default();
    hasher.number(prefix_digest);
    hasher.number(entry.index);
    hasher.number(entry.term);
    hasher.number(payload_digest(entry));
    hasher.finish()
}

/// The prefix digest of the empty log.
pub const EMPTY_PREFIX_DIGEST: u64 = 0;

#[derive(Clone, Copy, Debug)]
struct AppliedEntry {
    term: Term,
    payload_digest: u64,
    prefix_digest: u64,
    first_node: NodeId,
    answer: u64,
}

/// The one applied sequence every node must follow.
#[derive(Debug, Default)]
pub struct StateMachineSafety {
    /// `applied[i - 1]` is the entry at index `i`.
    applied: Vec<AppliedEntry>,
}

impl StateMachineSafety {
    /// `node` applied `entry` and its state machine answered with fingerprint `answer`.
    /// Returns the entry if it extends the applied sequence (no node had applied that
    /// index before).
    pub fn on_applied(
        &mut self,
        node: NodeId,
        entry: &Entry,
        answer: u64,
    ) -> Result<Option<CommittedEntry>, Violation> {
        let Some(position) = entry.index.checked_sub(1).map(|position| position as usize) else {
            return Err(Violation::new(
                Invariant::StateMachineSafety,
                vec![node],
                format!("node {node} applied an entry at index 0"),
            ));
        };
        let payload_digest = payload_digest(entry);
        if let Some(first) = self.applied.get(position) {
            if (first.term, first.payload_digest) != (entry.term, payload_digest) {
                return Err(Violation::new(
                    Invariant::StateMachineSafety,
                    vec![first.first_node, node],
                    format!(
                        "node {} applied entry {} of term {} but node {node} applied one of term {}{}",
                        first.first_node,
                        entry.index,
                        first.term,
                        entry.term,
                        if first.term == entry.term { " with another payload" } else { "" }
                    ),
                ));
            }
            if first.answer != answer {
                return Err(Violation::new(
                    Invariant::ReplicaAgreement,
                    vec![first.first_node, node],
                    format!(
                        "node {node} answered entry {} (term {}) differently from node {}, which applied it first: their state machines diverged on the same log",
                        entry.index, entry.term, first.first_node
                    ),
                ));
            }
            return Ok(None);
        }
        if position != self.applied.len() {
            return Err(Violation::new(
                Invariant::StateMachineSafety,
                vec![node],
                format!(
                    "node {node} applied entry {} but no node has applied entry {} yet",
                    entry.index,
                    self.applied.len() + 1
                ),
            ));
        }
        let previous = self.applied.last().map_or(EMPTY_PREFIX_DIGEST, |last| last.prefix_digest);
        self.applied.push(AppliedEntry {
            term: entry.term,
            payload_digest,
            prefix_digest: extend_prefix_digest(previous, entry),
            first_node: node,
            answer,
        });
        Ok(Some(CommittedEntry { index: entry.index, term: entry.term }))
    }

    /// `node` restored its state machine from a snapshot at `index` whose state has
    /// fingerprint `prefix_digest`.
    pub fn on_restored(&mut self, node: NodeId, index: LogIndex, prefix_digest: u64) -> Check {
        if index == 0 {
            return Ok(());
        }
        let Some(applied) = self.applied.get(index as usize - 1) else {
            return Err(Violation::new(
                Invariant::StateMachineSafety,
                vec![node],
                format!(
                    "node {node} restored a snapshot at {index}, beyond anything applied ({})",
                    self.applied.len()
                ),
            ));
        };
        if applied.prefix_digest != prefix_digest {
            return Err(Violation::new(
                Invariant::StateMachineSafety,
                vec![node, applied.first_node],
                format!("node {node} restored a snapshot at {index} that differs from the applied history"),
            ));
        }
        Ok(())
    }

    /// The term of the entry applied at `index`, if some node applied it.
    pub fn term_at(&self, index: LogIndex) -> Option<Term> {
        let position = usize::try_from(index.checked_sub(1)?).ok()?;
        self.applied.get(position).map(|applied| applied.term)
    }

    /// How many entries have been applied by some node.
    pub fn applied_len(&self) -> LogIndex {
        self.applied.len() as LogIndex
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft_core::EntryPayload;

    fn command(index: LogIndex, term: Term, bytes: &[u8]) -> Entry {
        Entry { term, index, payload: EntryPayload::Command(bytes.into()) }
    }

    #[test]
    fn nodes_applying_the_same_sequence_at_different_paces_is_fine() {
        let mut checker = StateMachineSafety::default();
        assert!(checker.on_applied(1, &command(1, 1, b"a"), 0).unwrap().is_some());
        assert!(checker.on_applied(1, &command(2, 1, b"b"), 0).unwrap().is_some());
        assert!(checker.on_applied(2, &command(1, 1, b"a"), 0).unwrap().is_none());
        assert_eq!(checker.applied_len(), 2);
    }

    #[test]
    fn two_nodes_applying_different_entries_at_one_index_fires() {
        let mut checker = StateMachineSafety::default();
        checker.on_applied(1, &command(1, 1, b"a"), 0).unwrap();
        let violation = checker.on_applied(2, &command(1, 2, b"a"), 0).unwrap_err();
        assert_eq!(violation.invariant, "state machine safety");
        assert_eq!(violation.nodes, vec![1, 2]);
        let violation = checker.on_applied(3, &command(1, 1, b"z"), 0).unwrap_err();
        assert!(violation.detail.contains("another payload"));
    }

    #[test]
    fn a_replica_answering_the_same_entry_differently_fires() {
        let mut checker = StateMachineSafety::default();
        checker.on_applied(1, &command(1, 1, b"a"), 7).unwrap();
        checker.on_applied(2, &command(1, 1, b"a"), 7).unwrap();
        let violation = checker.on_applied(3, &command(1, 1, b"a"), 8).unwrap_err();
        assert_eq!(violation.invariant, "replicas agree");
        assert_eq!(violation.nodes, vec![1, 3]);
        assert!(violation.detail.contains("diverged"), "{}", violation.detail);
    }

    #[test]
    fn applying_past_a_gap_fires() {
        let mut checker = StateMachineSafety::default();
        checker.on_applied(1, &command(1, 1, b"a"), 0).unwrap();
        assert!(checker.on_applied(1, &command(3, 1, b"c"), 0).is_err());
    }

    #[test]
    fn a_snapshot_must_match_the_applied_prefix() {
        let mut checker = StateMachineSafety::default();
        let first = command(1, 1, b"a");
        checker.on_applied(1, &first, 0).unwrap();
        let good = extend_prefix_digest(EMPTY_PREFIX_DIGEST, &first);
        checker.on_restored(2, 1, good).unwrap();
        assert!(checker.on_restored(2, 1, good ^ 1).is_err(), "a diverging snapshot");
        assert!(checker.on_restored(2, 2, good).is_err(), "a snapshot of entries nobody applied");
        checker.on_restored(2, 0, EMPTY_PREFIX_DIGEST).unwrap();
    }
}
