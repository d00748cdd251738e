//! Cluster membership and single-server changes (Raft thesis §4.1).
//!
//! A change is a log entry carrying the complete new voter set. It takes effect on a
//! node as soon as the node appends it, committed or not, and is undone if the entry is
//! truncated away. The leader allows one uncommitted change at a time, and none before
//! it has committed an entry of its own term, so any two successive voter sets differ
//! by one server and every majority of one overlaps every majority of the next.

use crate::types::{Entry, EntryPayload, LogIndex, NodeId};
use serde::{Deserialize, Serialize};

/// A request to change the voter set by one server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MembershipChange {
    /// Make a node a voter. Start the new node with a `Config` whose voters are the
    /// set after this change, so that it accepts the leader's messages.
    AddVoter(NodeId),
    /// Remove a voter. A leader that removes itself steps down once the change commits.
    RemoveVoter(NodeId),
}

impl MembershipChange {
    /// The voter set after applying this change to `voters`, or `None` if the change
    /// is not a change (adding a voter, removing a non-voter) or removes the last voter.
    pub(crate) fn apply_to(self, voters: &[NodeId]) -> Option<Vec<NodeId>> {
        let mut next = voters.to_vec();
        match self {
            MembershipChange::AddVoter(node) => {
                if voters.contains(&node) {
                    return None;
                }
                next.push(node);
                next.sort_unstable();
            }
            MembershipChange::RemoveVoter(node) => {
                if !voters.contains(&node) || voters.len() == 1 {
                    return None;
                }
                next.retain(|&voter| voter != node);
            }
        }
        Some(next)
    }
}

/// Whether a voter set is well formed: non-empty, sorted, no duplicates.
pub(crate) fn is_valid_voter_set(voters: &[NodeId]) -> bool {
    !voters.is_empty() && voters.windows(2).all(|pair| pair[0] < pair[1])
}

/// The voter sets a log defines: the one in force at its start (from the snapshot, or
/// the bootstrap configuration) and one per membership entry still in the log.
#[derive(Debug)]
pub(crate) struct MembershipLog {
    base: Vec<NodeId>,
    changes: Vec<(LogIndex, Vec<NodeId>)>,
}

impl MembershipLog {
    pub(crate) fn new(base: Vec<NodeId>) -> MembershipLog {
        debug_assert!(is_valid_voter_set(&base));
        MembershipLog { base, changes: Vec::new() }
    }

    /// The voters in force: those of the newest membership entry in the log.
    pub(crate) fn current(&self) -> &[NodeId] {
        self.changes.last().map_or(&self.base, |(_, voters)| voters)
    }

    /// The index of the newest membership entry still in the log, if any.
    pub(crate) fn latest_change_index(&self) -> Option<LogIndex> {
        self.changes.last().map(|(index, _)| *index)
    }

    /// The voters in force at `index` (for the snapshot that ends there).
    pub(crate) fn at(&self, index: LogIndex) -> &[NodeId] {
        self.changes
            .iter()
            .rev()
            .find(|(change_index, _)| *change_index <= index)
            .map_or(&self.base, |(_, voters)| voters)
    }

    pub(crate) fn on_append(&mut self, entries: &[Entry]) {
        for entry in entries {
            if let EntryPayload::MembershipChange { voters, .. } = &entry.payload {
                self.changes.push((entry.index, voters.clone()));
            }
        }
    }

    pub(crate) fn on_truncate(&mut self, from: LogIndex) {
        self.changes.retain(|(index, _)| *index < from);
    }

    /// Entries up to `index` are folded into a snapshot whose voters are `voters`.
    pub(crate) fn on_snapshot(&mut self, index: LogIndex, voters: Vec<NodeId>) {
        self.changes.retain(|(change_index, _)| *change_index > index);
        self.base = voters;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change_entry(index: LogIndex, voters: &[NodeId]) -> Entry {
        Entry {
            term: 1,
            index,
            payload: EntryPayload::MembershipChange {
                voters: voters.to_vec(),
                context: std::sync::Arc::from(&[][..]),
            },
        }
    }

    #[test]
    fn changes_apply_by_one_server_and_refuse_non_changes() {
        assert_eq!(MembershipChange::AddVoter(4).apply_to(&[1, 2, 3]), Some(vec![1, 2, 3, 4]));
        assert_eq!(MembershipChange::AddVoter(0).apply_to(&[1, 2]), Some(vec![0, 1, 2]));
        assert_eq!(MembershipChange::AddVoter(2).apply_to(&[1, 2, 3]), None);
        assert_eq!(MembershipChange::RemoveVoter(2).apply_to(&[1, 2, 3]), Some(vec![1, 3]));
        assert_eq!(MembershipChange::RemoveVoter(9).apply_to(&[1, 2, 3]), None);
        assert_eq!(MembershipChange::RemoveVoter(1).apply_to(&[1]), None, "never remove the last voter");
    }

    #[test]
    fn membership_follows_appends_truncation_and_snapshots() {
        let mut membership = MembershipLog::new(vec![1, 2, 3]);
        membership.on_append(&[change_entry(4, &[1, 2, 3, 4]), change_entry(7, &[1, 2, 4])]);
        assert_eq!(membership.current(), &[1, 2, 4]);
        assert_eq!(membership.at(3), &[1, 2, 3]);
        assert_eq!(membership.at(6), &[1, 2, 3, 4]);
        assert_eq!(membership.latest_change_index(), Some(7));
        membership.on_truncate(7);
        assert_eq!(membership.current(), &[1, 2, 3, 4], "a truncated change is undone");
        membership.on_snapshot(5, membership.at(5).to_vec());
        assert_eq!(membership.current(), &[1, 2, 3, 4]);
        assert_eq!(membership.latest_change_index(), None);
    }

    #[test]
    fn voter_sets_must_be_sorted_unique_and_non_empty() {
        assert!(is_valid_voter_set(&[1, 2, 5]));
        assert!(!is_valid_voter_set(&[]));
        assert!(!is_valid_voter_set(&[2, 1]));
        assert!(!is_valid_voter_set(&[1, 1]));
    }
}
