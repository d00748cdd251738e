//! Leader completeness (Raft paper §5.4): an entry committed in some term is in the
//! log of the leader of every later term.
//!
//! An entry counts as committed once some node applied it. The term it was committed
//! in is not observable from outside, so the checker takes the highest term any node
//! has led at that moment: the entry was committed in that term or earlier, and only
//! leaders of strictly later terms are held to it. That never blames a correct core
//! (a leader elected late in an older term owes nothing), and still catches a new
//! leader missing an entry committed before its election.

use super::{log_holds, Check, LogView, Violation};
use raft_core::{LogIndex, NodeId, Term};

#[derive(Clone, Copy, Debug)]
struct Committed {
    index: LogIndex,
    term: Term,
    /// The entry was committed in this term or earlier.
    committed_by_term: Term,
}

/// The committed entries every later leader must hold.
#[derive(Debug, Default)]
pub struct LeaderCompleteness {
    committed: Vec<Committed>,
}

impl LeaderCompleteness {
    /// The entry at `index` of `term` became committed while the highest term with a
    /// leader was `highest_leader_term`.
    pub fn on_committed(&mut self, index: LogIndex, term: Term, highest_leader_term: Term) {
        self.committed.push(Committed { index, term, committed_by_term: highest_leader_term.max(term) });
    }

    /// `node` became leader of `term` with `log`.
    pub fn on_leader(&mut self, node: NodeId, term: Term, log: &dyn LogView) -> Check {
        for committed in self.committed.iter().filter(|committed| committed.committed_by_term < term) {
            if !log_holds(log, committed.index, committed.term) {
                return Err(Violation::new(
                    "leader completeness",
                    vec![node],
                    format!(
                        "node {node} became leader of term {term} without entry {} of term {}, committed by term {}",
                        committed.index, committed.term, committed.committed_by_term
                    ),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft_core::{DurableState, Entry, EntryPayload};

    fn log_with_terms(terms: &[Term]) -> DurableState {
        let entries = terms
            .iter()
            .enumerate()
            .map(|(position, term)| Entry {
                term: *term,
                index: position as u64 + 1,
                payload: EntryPayload::Noop,
            })
            .collect();
        DurableState { entries, ..DurableState::default() }
    }

    #[test]
    fn a_later_leader_missing_a_committed_entry_fires() {
        let mut checker = LeaderCompleteness::default();
        checker.on_committed(1, 1, 1);
        checker.on_committed(2, 1, 1);
        checker.on_leader(2, 2, &log_with_terms(&[1, 1, 2])).unwrap();
        let violation = checker.on_leader(3, 3, &log_with_terms(&[1])).unwrap_err();
        assert_eq!(violation.invariant, "leader completeness");
        assert_eq!(violation.nodes, vec![3]);
        assert!(checker.on_leader(3, 3, &log_with_terms(&[1, 2])).is_err(), "a different entry at the index");
    }

    #[test]
    fn a_leader_of_the_committing_term_or_earlier_owes_nothing() {
        let mut checker = LeaderCompleteness::default();
        checker.on_committed(1, 2, 3);
        checker.on_leader(1, 3, &log_with_terms(&[])).unwrap();
        checker.on_leader(2, 2, &log_with_terms(&[])).unwrap();
    }

    #[test]
    fn a_snapshot_covering_the_entry_counts_as_holding_it() {
        let mut checker = LeaderCompleteness::default();
        checker.on_committed(1, 1, 1);
        let mut log = log_with_terms(&[]);
        log.snapshot = Some(raft_core::Snapshot {
            meta: raft_core::SnapshotMeta { last_included_index: 5, last_included_term: 2 },
            voters: vec![1],
            data: Vec::new(),
        });
        checker.on_leader(1, 4, &log).unwrap();
    }
}
