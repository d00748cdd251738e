//! Leader completeness (Raft paper §5.4): an entry committed in some term is in the
//! log of the leader of every later term.
//!
//! An entry counts as committed once some node applied it. If that node was the leader
//! when it decided to apply, the entry was committed in that leader's term. Otherwise
//! the term is not observable from outside, and the checker takes the highest term any
//! node has led so far as a bound: only leaders of strictly later terms are held to it.
//! That never blames a correct core and still catches a new leader missing an entry
//! committed before its election.
//!
//! Checked twice: when a node becomes leader, against every entry committed in an
//! earlier term; and when an entry becomes committed, against every node leading a
//! later term at that moment (a leader elected while the commit was on its way to disk
//! must hold the entry too).

use super::{log_holds, Check, Invariant, LogView, Violation};
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
    /// The entry at `index` of `term` became committed in term `committed_by_term` or
    /// earlier; `current_leaders` are the nodes leading now, with their terms and logs.
    pub fn on_committed<'a>(
        &mut self,
        index: LogIndex,
        term: Term,
        committed_by_term: Term,
        current_leaders: impl Iterator<Item = (NodeId, Term, &'a dyn LogView)>,
    ) -> Check {
        let committed = Committed { index, term, committed_by_term: committed_by_term.max(term) };
        self.committed.push(committed);
        for (node, leader_term, log) in current_leaders {
            if leader_term > committed.committed_by_term && !log_holds(log, index, term) {
                return Err(Violation::new(
                    Invariant::LeaderCompleteness,
                    vec![node],
                    format!(
                        "entry {index} of term {term} was committed in term {} but node {node}, leader of term {leader_term}, does not hold it",
                        committed.committed_by_term
                    ),
                ));
            }
        }
        Ok(())
    }

    /// `node` became leader of `term` with `log`.
    pub fn on_leader(&mut self, node: NodeId, term: Term, log: &dyn LogView) -> Check {
        for committed in self.committed.iter().filter(|committed| committed.committed_by_term < term) {
            if !log_holds(log, committed.index, committed.term) {
                return Err(Violation::new(
                    Invariant::LeaderCompleteness,
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
        checker.on_committed(1, 1, 1, std::iter::empty()).unwrap();
        checker.on_committed(2, 1, 1, std::iter::empty()).unwrap();
        checker.on_leader(2, 2, &log_with_terms(&[1, 1, 2])).unwrap();
        let violation = checker.on_leader(3, 3, &log_with_terms(&[1])).unwrap_err();
        assert_eq!(violation.invariant, "leader completeness");
        assert_eq!(violation.nodes, vec![3]);
        assert!(checker.on_leader(3, 3, &log_with_terms(&[1, 2])).is_err(), "a different entry at the index");
    }

    #[test]
    fn a_leader_of_the_committing_term_or_earlier_owes_nothing() {
        let mut checker = LeaderCompleteness::default();
        checker.on_committed(1, 2, 3, std::iter::empty()).unwrap();
        checker.on_leader(1, 3, &log_with_terms(&[])).unwrap();
        checker.on_leader(2, 2, &log_with_terms(&[])).unwrap();
    }

    #[test]
    fn a_leader_already_in_office_in_a_later_term_must_hold_a_newly_committed_entry() {
        // Node 1 led term 2 and committed entry 2 while node 3 already led term 3
        // without it: the Figure 8 outcome, caught at the commit.
        let mut checker = LeaderCompleteness::default();
        let without = log_with_terms(&[1]);
        let with = log_with_terms(&[1, 2]);
        let leaders = [(3, 3, &without as &dyn LogView)];
        let violation = checker.on_committed(2, 2, 2, leaders.into_iter()).unwrap_err();
        assert_eq!(violation.nodes, vec![3]);
        let leaders = [(3, 3, &with as &dyn LogView), (1, 2, &without as &dyn LogView)];
        checker.on_committed(2, 2, 2, leaders.into_iter()).unwrap();
    }

    #[test]
    fn a_snapshot_covering_the_entry_counts_as_holding_it() {
        let mut checker = LeaderCompleteness::default();
        checker.on_committed(1, 1, 1, std::iter::empty()).unwrap();
        let mut log = log_with_terms(&[]);
        log.snapshot = Some(raft_core::Snapshot {
            meta: raft_core::SnapshotMeta { last_included_index: 5, last_included_term: 2 },
            configuration: raft_core::Configuration::voters([1]).unwrap(),
            size_bytes: 0,
        });
        checker.on_leader(1, 4, &log).unwrap();
    }
}
