//! Log matching (Raft paper §5.3): two logs holding an entry with the same index and
//! term hold the same entries up to it.
//!
//! Checked inductively on every write of every node: an (index, term) pair must always
//! carry the same payload and follow the same predecessor term. If that holds for
//! every written entry, equal (index, term) pairs have equal prefixes.

use super::{payload_digest, Check, Invariant, Violation};
use raft_core::{Entry, LogIndex, NodeId, Term};
use std::collections::BTreeMap;

#[derive(Clone, Copy, Debug)]
struct FirstSeen {
    term: Term,
    payload_digest: u64,
    previous_term: Term,
    node: NodeId,
}

/// What was first written at one index: usually one term, sometimes a few.
#[derive(Clone, Debug)]
struct AtIndex {
    first: FirstSeen,
    /// Entries of other terms at this index (rare: only after leader changes). Empty
    /// vectors do not allocate, so the common case costs one slot.
    other_terms: Vec<FirstSeen>,
}

/// Remembers every (index, term) ever written and what it carried.
#[derive(Debug, Default)]
pub struct LogMatching {
    /// `by_index[i - 1]` describes index `i`; written on every append, so a vector
    /// rather than a map.
    by_index: Vec<Option<AtIndex>>,
    /// Per node and term, the lowest index it wrote an entry of that term at, for the
    /// terms above its durable term at its last crash: where a crash's forgetting starts.
    written_from: BTreeMap<(NodeId, Term), LogIndex>,
}

impl LogMatching {
    /// The first entry written at (`index`, `seen.term`), recording `seen` if it is the first.
    fn first_seen(&mut self, index: LogIndex, seen: FirstSeen) -> FirstSeen {
        let position = usize::try_from(index - 1).expect("log indexes fit in memory");
        if position >= self.by_index.len() {
            self.by_index.resize(position + 1, None);
        }
        let slot = &mut self.by_index[position];
        let Some(at_index) = slot else {
            *slot = Some(AtIndex { first: seen, other_terms: Vec::new() });
            return seen;
        };
        if at_index.first.term == seen.term {
            return at_index.first;
        }
        if let Some(other) = at_index.other_terms.iter().find(|other| other.term == seen.term) {
            return *other;
        }
        at_index.other_terms.push(seen);
        seen
    }
}

impl LogMatching {
    /// `node` crashed and came back to `durable_term`. Entries it alone wrote in a later
    /// term are gone with that term: only a lone leader writes entries of a term it has
    /// not made durable (any other needs votes, and no message of a term leaves before
    /// the term is on disk), so nobody else ever held them, and the term may be led
    /// again, with other entries.
    pub fn on_crash(&mut self, node: NodeId, durable_term: Term) {
        // Where the node started writing terms above the durable one: nothing before it
        // can be forgotten. After this crash none of its starts is needed again: its
        // terms above the durable one are forgotten below, and durable terms never go back.
        let above = (node, durable_term.saturating_add(1))..=(node, Term::MAX);
        let from = self.written_from.range(above).map(|(_, &index)| index).min();
        self.written_from.retain(|&(at, _), _| at != node);
        let Some(from) = from else { return };
        let start = usize::try_from(from - 1).expect("log indexes fit in memory").min(self.by_index.len());
        for slot in self.by_index[start..].iter_mut() {
            let Some(at_index) = slot else { continue };
            let gone = |seen: &FirstSeen| seen.node == node && seen.term > durable_term;
            at_index.other_terms.retain(|seen| !gone(seen));
            if gone(&at_index.first) {
                *slot = match at_index.other_terms.is_empty() {
                    true => None,
                    false => {
                        let first = at_index.other_terms.remove(0);
                        Some(AtIndex { first, other_terms: std::mem::take(&mut at_index.other_terms) })
                    }
                };
            }
        }
    }

    /// `node` appended `entries` after an entry of term `previous_term`.
    pub fn on_entries_written(&mut self, node: NodeId, previous_term: Term, entries: &[Entry]) -> Check {
        let mut previous_term = previous_term;
        for (position, entry) in entries.iter().enumerate() {
            if position == 0 || entry.term != previous_term {
                let from = self.written_from.entry((node, entry.term)).or_insert(entry.index);
                *from = (*from).min(entry.index);
            }
            if entry.index == 0 {
                return Err(Violation::new(
                    Invariant::LogMatching,
                    vec![node],
                    format!("node {node} wrote an entry at index 0"),
                ));
            }
            let seen =
                FirstSeen { term: entry.term, payload_digest: payload_digest(entry), previous_term, node };
            let first = self.first_seen(entry.index, seen);
            if first.payload_digest != seen.payload_digest {
                return Err(Violation::new(
                    Invariant::LogMatching,
                    vec![first.node, node],
                    format!(
                        "entry {} of term {} carries different payloads on nodes {} and {node}",
                        entry.index, entry.term, first.node
                    ),
                ));
            }
            if first.previous_term != previous_term {
                return Err(Violation::new(
                    Invariant::LogMatching,
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
    fn a_lone_leaders_term_lost_in_a_crash_may_be_led_again() {
        // Node 1 led term 3 alone and wrote entry 2 of term 3; the crash took the term
        // (durable term 2) and the entry; it leads term 3 again with another entry 2.
        let mut checker = LogMatching::default();
        checker.on_entries_written(1, 0, &[command(1, 2, b"a")]).unwrap();
        checker.on_entries_written(1, 2, &[command(2, 3, b"lost")]).unwrap();
        checker.on_entries_written(2, 3, &[command(3, 4, b"node 2's")]).unwrap();
        checker.on_crash(1, 2);
        checker.on_entries_written(1, 2, &[command(2, 3, b"new")]).unwrap();
        // Entries of durable terms, and other nodes' entries, are remembered.
        assert!(checker.on_entries_written(1, 0, &[command(1, 2, b"other")]).is_err());
        assert!(checker.on_entries_written(1, 3, &[command(3, 4, b"other")]).is_err());
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
