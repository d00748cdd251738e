//! Committed is durable: once a client can see an entry as committed (some node
//! applied it), it is durable on a majority of the voters that committed it, so no
//! combination of crashes, which keep durable state, can lose it.
//!
//! The voters are those of the node that applied the entry first, as of the step in
//! which it decided to commit: with membership changes, the configuration a leader
//! counts is the newest in its log, which is what makes its quorum overlap every
//! later election quorum.

use super::{log_holds, Check, CommittedEntry, Invariant, LogView, Violation};
use raft_core::NodeId;

/// The newest committed entry and the voters that committed it.
#[derive(Debug, Default)]
pub struct CommittedDurable {
    latest: Option<(CommittedEntry, Vec<NodeId>)>,
}

impl CommittedDurable {
    /// `entry` became committed by a quorum of `voters`. Log matching makes the newest
    /// one enough: a node that durably holds it holds everything committed before it.
    pub fn on_committed(&mut self, entry: CommittedEntry, voters: &[NodeId]) {
        if self.latest.as_ref().is_some_and(|(latest, _)| latest.index > entry.index) {
            // An older commit reported late (an old leader that does not know yet).
            return;
        }
        match &mut self.latest {
            Some((latest, latest_voters)) => {
                *latest = entry;
                if latest_voters.as_slice() != voters {
                    *latest_voters = voters.to_vec();
                }
            }
            None => self.latest = Some((entry, voters.to_vec())),
        }
    }

    /// Checks the newest committed entry against every node's durable state.
    pub fn check<'a>(&self, durable_logs: impl Iterator<Item = (NodeId, &'a dyn LogView)>) -> Check {
        let Some((entry, voters)) = &self.latest else {
            return Ok(());
        };
        let mut holders = 0;
        let mut missing = Vec::new();
        for (node, log) in durable_logs.filter(|(node, _)| voters.contains(node)) {
            if log_holds(log, entry.index, entry.term) {
                holders += 1;
            } else {
                missing.push(node);
            }
        }
        let majority = voters.len() / 2 + 1;
        if holders >= majority {
            return Ok(());
        }
        Err(Violation::new(
            Invariant::CommittedDurable,
            missing.clone(),
            format!(
                "entry {} of term {} was committed by voters {voters:?} but is durable on only {holders} of them (missing on {missing:?})",
                entry.index, entry.term
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft_core::{DurableState, Entry, EntryPayload};

    fn log(len: u64) -> DurableState {
        let entries = (1..=len).map(|index| Entry { term: 1, index, payload: EntryPayload::Noop }).collect();
        DurableState { entries, ..DurableState::default() }
    }

    #[test]
    fn a_committed_entry_on_only_a_minority_of_disks_fires() {
        let mut checker = CommittedDurable::default();
        checker.check([(1, &log(0) as &dyn LogView)].into_iter()).unwrap();
        checker.on_committed(CommittedEntry { index: 2, term: 1 }, &[1, 2, 3]);
        let (full, short) = (log(2), log(1));
        checker.check([(1, &full as &dyn LogView), (2, &full as _), (3, &short as _)].into_iter()).unwrap();
        let violation = checker
            .check([(1, &full as &dyn LogView), (2, &short as _), (3, &short as _)].into_iter())
            .unwrap_err();
        assert_eq!(violation.invariant, "committed is durable");
        assert_eq!(violation.nodes, vec![2, 3]);
    }

    #[test]
    fn only_the_committing_voters_count() {
        // Voters {1, 2} after node 3's removal: the entry on 1 and 2 is enough, and a
        // copy on the removed node 3 would not make up for a missing one on 2.
        let mut checker = CommittedDurable::default();
        checker.on_committed(CommittedEntry { index: 2, term: 1 }, &[1, 2]);
        let (full, short) = (log(2), log(1));
        checker.check([(1, &full as &dyn LogView), (2, &full as _), (3, &short as _)].into_iter()).unwrap();
        let violation = checker
            .check([(1, &full as &dyn LogView), (2, &short as _), (3, &full as _)].into_iter())
            .unwrap_err();
        assert_eq!(violation.nodes, vec![2]);
    }
}
