//! Committed is durable: once a client can see an entry as committed (some node
//! applied it), it is durable on a quorum of the configuration that committed it, so
//! no combination of crashes, which keep durable state, can lose it.
//!
//! The configuration is that of the node that applied the entry first, as of the step
//! in which it decided to commit: with membership changes, the configuration a leader
//! counts is the newest in its log, which is what makes its quorum overlap every later
//! election quorum. Quorums are `raft_core::Configuration`'s: a majority of each half
//! of a joint configuration, learners never counted.

use super::{log_holds, Check, CommittedEntry, Invariant, LogView, Violation};
use raft_core::{Configuration, NodeId};
use std::sync::Arc;

/// The newest committed entry and the configuration that committed it.
#[derive(Debug, Default)]
pub struct CommittedDurable {
    latest: Option<(CommittedEntry, Arc<Configuration>)>,
}

impl CommittedDurable {
    /// `entry` became committed by a quorum of `configuration`. Log matching makes the
    /// newest one enough: a node that durably holds it holds everything committed
    /// before it.
    pub fn on_committed(&mut self, entry: CommittedEntry, configuration: &Arc<Configuration>) {
        if self.latest.as_ref().is_some_and(|(latest, _)| latest.index > entry.index) {
            // An older commit reported late (an old leader that does not know yet).
            return;
        }
        self.latest = Some((entry, Arc::clone(configuration)));
    }

    /// Checks the newest committed entry against every node's durable state.
    pub fn check<'a>(&self, durable_logs: impl Iterator<Item = (NodeId, &'a dyn LogView)>) -> Check {
        let Some((entry, configuration)) = &self.latest else {
            return Ok(());
        };
        let mut holders = Vec::new();
        let mut missing = Vec::new();
        for (node, log) in durable_logs.filter(|(node, _)| configuration.is_voter(*node)) {
            if log_holds(log, entry.index, entry.term) {
                holders.push(node);
            } else {
                missing.push(node);
            }
        }
        if configuration.has_quorum(|node| holders.contains(&node)) {
            return Ok(());
        }
        Err(Violation::new(
            Invariant::CommittedDurable,
            missing.clone(),
            format!(
                "entry {} of term {} was committed by {configuration} but is durable only on {holders:?} (missing on {missing:?})",
                entry.index, entry.term
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft_core::{DurableState, Entry, EntryPayload};

    fn config(voters: &[NodeId], learners: &[NodeId]) -> Arc<Configuration> {
        Arc::new(Configuration::new(voters.iter().copied(), learners.iter().copied()).unwrap())
    }

    fn log(len: u64) -> DurableState {
        let entries = (1..=len).map(|index| Entry { term: 1, index, payload: EntryPayload::Noop }).collect();
        DurableState { entries, ..DurableState::default() }
    }

    #[test]
    fn a_committed_entry_on_only_a_minority_of_disks_fires() {
        let mut checker = CommittedDurable::default();
        checker.check([(1, &log(0) as &dyn LogView)].into_iter()).unwrap();
        checker.on_committed(CommittedEntry { index: 2, term: 1 }, &config(&[1, 2, 3], &[]));
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
        // Voters {1, 2} and learner 3: the entry on 1 and 2 is enough, and a copy on the
        // learner would not make up for a missing one on 2.
        let mut checker = CommittedDurable::default();
        checker.on_committed(CommittedEntry { index: 2, term: 1 }, &config(&[1, 2], &[3]));
        let (full, short) = (log(2), log(1));
        checker.check([(1, &full as &dyn LogView), (2, &full as _), (3, &short as _)].into_iter()).unwrap();
        let violation = checker
            .check([(1, &full as &dyn LogView), (2, &short as _), (3, &full as _)].into_iter())
            .unwrap_err();
        assert_eq!(violation.nodes, vec![2]);
    }

    #[test]
    fn a_joint_commit_needs_a_quorum_of_both_halves() {
        // Leaving {1, 2, 3} for {3, 4, 5}: durable on 1, 2 and 3 is a majority of the
        // old voters only.
        let joint = Arc::new(
            Configuration::voters([1, 2, 3])
                .unwrap()
                .joint_to(&Configuration::voters([3, 4, 5]).unwrap())
                .unwrap(),
        );
        let mut checker = CommittedDurable::default();
        checker.on_committed(CommittedEntry { index: 2, term: 1 }, &joint);
        let (full, short) = (log(2), log(1));
        let logs = |holding: &[NodeId]| -> Vec<(NodeId, DurableState)> {
            (1..=5)
                .map(|node| (node, if holding.contains(&node) { full.clone() } else { short.clone() }))
                .collect()
        };
        let old_only = logs(&[1, 2, 3]);
        let violation =
            checker.check(old_only.iter().map(|(node, log)| (*node, log as &dyn LogView))).unwrap_err();
        assert_eq!(violation.nodes, vec![4, 5]);
        let both = logs(&[1, 3, 4]);
        checker.check(both.iter().map(|(node, log)| (*node, log as &dyn LogView))).unwrap();
    }
}
