//! Log matching (Raft paper §5.3): two logs holding an entry with the same index and
//! term hold the same entries up to it.
//!
//! Checked inductively on every write of every node: an (index, term) pair must always
//! carry the same payload and follow the same predecessor term. If that holds for
//! every written entry, equal (index, term) pairs have equal prefixes.

use super::{payload_digest, Check, Violation};
use raft_core::{Entry, LogIndex, NodeId, Term};
use std::collections::BTreeMap;

#[derive(Clone, Copy, Debug)]
struct FirstSeen {
    payload_digest: u64,
    previous_term: Term,
    node: NodeId,
}

/// Remembers every (index, term) ever written and what it carried.
#[derive(Debug, Default)]
pub struct LogMatching {
    entries: BTreeMap<(LogIndex, Term), FirstSeen>,
}

impl LogMatching {
    /// `node` appended `entries` after an entry of term `previous_term`.
    pub fn on_entries_written(&mut self, node: NodeId, previous_term: Term, entries: &[Entry]) -> Check {
        let mut previous_term = previous_term;
        for entry in entries {
            let seen = FirstSeen { payload_digest: payload_digest(entry), previous_term, node };
            let first = *self.entries.entry((entry.index, entry.term)).or_insert(seen);
            if first.payload_digest != seen.payload_digest {
                return Err(Violation::new(
                    "log matching",
                    vec![first.node, node],
                    format!(
                        "entry {} of term {} carries different payloads on nodes {} and {node}",
                        entry.index, entry.term, first.node
                    ),
                ));
            }
            if first.previous_term != previous_term {
                return Err(Violation::new(
                    "log matching",
                    vec![first.node, node],
                    format!(
                        "entry {} of term {} follows an entry of term {} on node {} but of term {previous_term} on node {node}",
                        entry.index, entry.term, first.previous_term, first.node
                    ),
                ));
            }
            previous_term = entry.term;
        }
        Ok(())
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
    fn the_same_entry_on_two_nodes_is_fine() {
        let mut checker = LogMatching::default();
        checker.on_entries_written(1, 0, &[command(1, 1, b"a"), command(2, 1, b"b")]).unwrap();
        checker.on_entries_written(2, 0, &[command(1, 1, b"a")]).unwrap();
        checker.on_entries_written(2, 1, &[command(2, 1, b"b")]).unwrap();
    }

    #[test]
    fn one_index_and_term_with_two_payloads_fires() {
        let mut checker = LogMatching::default();
        checker.on_entries_written(1, 0, &[command(1, 1, b"a")]).unwrap();
        let violation = checker.on_entries_written(2, 0, &[command(1, 1, b"other")]).unwrap_err();
        assert_eq!(violation.invariant, "log matching");
        assert_eq!(violation.nodes, vec![1, 2]);
    }

    #[test]
    fn the_same_entry_after_different_histories_fires() {
        // Node 2 holds entry 3 of term 2 after an entry of term 1; node 1 after term 2:
        // their logs agree at 3 but not before it.
        let mut checker = LogMatching::default();
        checker.on_entries_written(1, 2, &[command(3, 2, b"x")]).unwrap();
        let violation = checker.on_entries_written(2, 1, &[command(3, 2, b"x")]).unwrap_err();
        assert!(violation.detail.contains("follows"), "{violation}");
    }
}
