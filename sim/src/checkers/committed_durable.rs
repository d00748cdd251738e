//! Committed is durable: once a client can see an entry as committed (some node
//! applied it), it is durable on a majority of the voters, so no combination of
//! crashes, which keep durable state, can lose it.

use super::{log_holds, Check, CommittedEntry, LogView, Violation};
use raft_core::NodeId;

/// The newest committed entry and the cluster's size.
#[derive(Debug)]
pub struct CommittedDurable {
    latest: Option<CommittedEntry>,
    voters: usize,
}

impl CommittedDurable {
    /// A checker for a cluster of `voters` voters.
    pub fn new(voters: usize) -> CommittedDurable {
        CommittedDurable { latest: None, voters }
    }

    /// `entry` became committed. Log matching makes the newest one enough: a node that
    /// durably holds it holds everything committed before it.
    pub fn on_committed(&mut self, entry: CommittedEntry) {
        self.latest = Some(entry);
    }

    /// Checks the newest committed entry against every node's durable state.
    pub fn check<'a>(&self, durable_logs: impl Iterator<Item = (NodeId, &'a dyn LogView)>) -> Check {
        let Some(entry) = self.latest else {
            return Ok(());
        };
        let mut holders = 0;
        let mut missing = Vec::new();
        for (node, log) in durable_logs {
            if log_holds(log, entry.index, entry.term) {
                holders += 1;
            } else {
                missing.push(node);
            }
        }
        let majority = self.voters / 2 + 1;
        if holders >= majority {
            return Ok(());
        }
        Err(Violation::new(
            "committed is durable",
            missing.clone(),
            format!(
                "entry {} of term {} was committed but is durable on only {holders} of {} nodes (missing on {missing:?})",
                entry.index, entry.term, self.voters
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
        let mut checker = CommittedDurable::new(3);
        checker.check([(1, &log(0) as &dyn LogView)].into_iter()).unwrap();
        checker.on_committed(CommittedEntry { index: 2, term: 1 });
        let (full, short) = (log(2), log(1));
        checker.check([(1, &full as &dyn LogView), (2, &full as _), (3, &short as _)].into_iter()).unwrap();
        let violation = checker
            .check([(1, &full as &dyn LogView), (2, &short as _), (3, &short as _)].into_iter())
            .unwrap_err();
        assert_eq!(violation.invariant, "committed is durable");
        assert_eq!(violation.nodes, vec![2, 3]);
    }
}
