//! Membership changes and the configurations a log defines (Raft thesis §4.1).
//!
//! A change is a log entry carrying the complete new [`Configuration`]. It takes
//! effect on a node as soon as the node appends it, committed or not, and is undone if
//! the entry is truncated away. The leader allows one change in flight (uncommitted, or
//! a joint configuration not yet left), and none before it has committed an entry of its
//! own term.
//!
//! A change of at most one voter goes straight to its target: two voter sets that differ
//! by one server have overlapping majorities (§4.1). Anything bigger goes through a
//! **joint** configuration (§4.3): the old and new voters both need a majority until the
//! leader, once the joint entry commits, appends the target configuration by itself.
//! Learners may come and go freely: they never count toward a quorum.

use crate::configuration::Configuration;
use crate::types::{Entry, EntryPayload, LogIndex, NodeId};
use serde::{Deserialize, Serialize};

/// A request to change the configuration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MembershipChange {
    /// Make a node a voter: a new node, or a learner promoted. Start a new node with a
    /// `Config` that lists the voters after this change, so it accepts the leader's
    /// messages. Adding a learner first and promoting it once it has caught up keeps
    /// the quorum from waiting on an empty log.
    AddVoter(NodeId),
    /// Make a node a learner: it receives the log and snapshots, never votes and never
    /// counts toward a quorum. A voter named here is demoted; a learner the leader was
    /// to promote stays a learner.
    AddLearner(NodeId),
    /// Add a node as a learner that the leader promotes to voter by itself once the
    /// node holds every committed entry (hashicorp/raft's staging servers): the quorum
    /// never waits on an empty log, and the promotion survives leader changes because
    /// it is part of the configuration. A learner named here is marked for promotion.
    AddVoterWhenCaughtUp(NodeId),
    /// Remove a voter or a learner. A leader that removes itself steps down once the
    /// change commits.
    RemoveNode(NodeId),
    /// Make the voters and the learners exactly these lists, in one request: a change of
    /// at most one voter is made directly, a bigger one (adding two voters, replacing
    /// one, moving the cluster to other machines) through a joint configuration the
    /// leader leaves on its own once it commits. A node in neither list is removed.
    SetMembers {
        /// The voters after the change; at least one.
        voters: Vec<NodeId>,
        /// The learners after the change; none of them a voter.
        learners: Vec<NodeId>,
    },
}

impl MembershipChange {
    /// The configuration the leader appends for this change to `current`: the target
    /// itself when at most one voter differs, else the joint configuration leading to
    /// it. `None` if the change is not a change (adding a voter twice, removing a
    /// non-member, naming the current members), removes or demotes the last voter,
    /// names a node as both voter and learner, or `current` is joint.
    pub(crate) fn apply_to(&self, current: &Configuration) -> Option<Configuration> {
        if current.is_joint() {
            return None;
        }
        let target = self.target(current)?;
        if target == *current {
            return None;
        }
        let changed_voters = symmetric_difference(current.incoming_voters(), target.incoming_voters());
        if changed_voters <= 1 {
            Some(target)
        } else {
            current.joint_to(&target)
        }
    }

    /// The configuration this change asks for, ignoring how it is reached.
    fn target(&self, current: &Configuration) -> Option<Configuration> {
        let mut voters = current.incoming_voters().to_vec();
        let mut learners = current.learners().to_vec();
        let mut catching_up = current.catching_up().to_vec();
        let last_voter = |node: NodeId| voters == [node];
        match *self {
            MembershipChange::SetMembers { voters: ref wanted, learners: ref wanted_learners } => {
                return Configuration::new(wanted.iter().copied(), wanted_learners.iter().copied()).ok();
            }
            MembershipChange::AddVoter(node) => {
                if current.is_voter(node) {
                    return None;
                }
                learners.retain(|&learner| learner != node);
                catching_up.retain(|&learner| learner != node);
                voters.push(node);
            }
            MembershipChange::AddLearner(node) => {
                if catching_up.contains(&node) {
                    catching_up.retain(|&learner| learner != node);
                } else if current.learners().contains(&node) || last_voter(node) {
                    return None;
                } else {
                    voters.retain(|&voter| voter != node);
                    learners.push(node);
                }
            }
            MembershipChange::AddVoterWhenCaughtUp(node) => {
                if current.is_voter(node) || catching_up.contains(&node) {
                    return None;
                }
                if !learners.contains(&node) {
                    learners.push(node);
                }
                catching_up.push(node);
            }
            MembershipChange::RemoveNode(node) => {
                if !current.contains(node) || last_voter(node) {
                    return None;
                }
                voters.retain(|&voter| voter != node);
                learners.retain(|&learner| learner != node);
                catching_up.retain(|&learner| learner != node);
            }
        }
        Configuration::with_catching_up(voters, learners, catching_up).ok()
    }
}

/// How many nodes are in exactly one of two sorted lists.
fn symmetric_difference(a: &[NodeId], b: &[NodeId]) -> usize {
    a.iter().filter(|node| b.binary_search(node).is_err()).count()
        + b.iter().filter(|node| a.binary_search(node).is_err()).count()
}

/// The configurations a log defines: the one in force at its start (from the
/// snapshot, or the bootstrap configuration) and one per membership entry still in the
/// log.
#[derive(Debug)]
pub(crate) struct MembershipLog {
    base: Configuration,
    changes: Vec<(LogIndex, Configuration)>,
}

impl MembershipLog {
    pub(crate) fn new(base: Configuration) -> MembershipLog {
        MembershipLog { base, changes: Vec::new() }
    }

    /// The configuration in force: that of the newest membership entry in the log.
    pub(crate) fn current(&self) -> &Configuration {
        self.changes.last().map_or(&self.base, |(_, configuration)| configuration)
    }

    /// The index of the newest membership entry still in the log, if any.
    pub(crate) fn latest_change_index(&self) -> Option<LogIndex> {
        self.changes.last().map(|(index, _)| *index)
    }

    /// The configuration in force at `index` (for the snapshot that ends there).
    pub(crate) fn at(&self, index: LogIndex) -> &Configuration {
        self.changes
            .iter()
            .rev()
            .find(|(change_index, _)| *change_index <= index)
            .map_or(&self.base, |(_, configuration)| configuration)
    }

    pub(crate) fn on_append(&mut self, entries: &[Entry]) {
        for entry in entries {
            if let EntryPayload::MembershipChange { configuration, .. } = &entry.payload {
                self.changes.push((entry.index, configuration.clone()));
            }
        }
    }

    pub(crate) fn on_truncate(&mut self, from: LogIndex) {
        self.changes.retain(|(index, _)| *index < from);
    }

    /// Entries up to `index` are folded into a snapshot whose configuration is
    /// `configuration`.
    pub(crate) fn on_snapshot(&mut self, index: LogIndex, configuration: Configuration) {
        self.changes.retain(|(change_index, _)| *change_index > index);
        self.base = configuration;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn voters(ids: &[NodeId]) -> Configuration {
        Configuration::voters(ids.iter().copied()).unwrap()
    }

    fn change_entry(index: LogIndex, ids: &[NodeId]) -> Entry {
        Entry {
            term: 1,
            index,
            payload: EntryPayload::MembershipChange {
                configuration: voters(ids),
                context: std::sync::Arc::from(&[][..]),
            },
        }
    }

    #[test]
    fn changes_apply_by_one_server_and_refuse_non_changes() {
        let three = voters(&[1, 2, 3]);
        assert_eq!(MembershipChange::AddVoter(4).apply_to(&three), Some(voters(&[1, 2, 3, 4])));
        assert_eq!(MembershipChange::AddVoter(0).apply_to(&voters(&[1, 2])), Some(voters(&[0, 1, 2])));
        assert_eq!(MembershipChange::AddVoter(2).apply_to(&three), None);
        assert_eq!(MembershipChange::RemoveNode(2).apply_to(&three), Some(voters(&[1, 3])));
        assert_eq!(MembershipChange::RemoveNode(9).apply_to(&three), None);
        assert_eq!(
            MembershipChange::RemoveNode(1).apply_to(&voters(&[1])),
            None,
            "never remove the last voter"
        );
    }

    #[test]
    fn learners_are_added_promoted_demoted_and_removed() {
        let three = voters(&[1, 2, 3]);
        let with_learner = MembershipChange::AddLearner(4).apply_to(&three).unwrap();
        assert_eq!(with_learner, Configuration::new([1, 2, 3], [4]).unwrap());
        assert_eq!(MembershipChange::AddLearner(4).apply_to(&with_learner), None, "already a learner");
        assert_eq!(
            MembershipChange::AddVoter(4).apply_to(&with_learner),
            Some(voters(&[1, 2, 3, 4])),
            "promoted"
        );
        assert_eq!(MembershipChange::RemoveNode(4).apply_to(&with_learner), Some(three.clone()));
        assert_eq!(
            MembershipChange::AddLearner(3).apply_to(&three),
            Some(Configuration::new([1, 2], [3]).unwrap()),
            "a voter demoted"
        );
        assert_eq!(
            MembershipChange::AddLearner(1).apply_to(&voters(&[1])),
            None,
            "never demote the last voter"
        );
        let joint = three.joint_to(&voters(&[1, 2, 4])).unwrap();
        assert_eq!(MembershipChange::AddLearner(5).apply_to(&joint), None, "not during a joint change");
    }

    #[test]
    fn membership_follows_appends_truncation_and_snapshots() {
        let mut membership = MembershipLog::new(voters(&[1, 2, 3]));
        membership.on_append(&[change_entry(4, &[1, 2, 3, 4]), change_entry(7, &[1, 2, 4])]);
        assert_eq!(membership.current(), &voters(&[1, 2, 4]));
        assert_eq!(membership.at(3), &voters(&[1, 2, 3]));
        assert_eq!(membership.at(6), &voters(&[1, 2, 3, 4]));
        assert_eq!(membership.latest_change_index(), Some(7));
        membership.on_truncate(7);
        assert_eq!(membership.current(), &voters(&[1, 2, 3, 4]), "a truncated change is undone");
        membership.on_snapshot(5, membership.at(5).clone());
        assert_eq!(membership.current(), &voters(&[1, 2, 3, 4]));
        assert_eq!(membership.latest_change_index(), None);
    }
}
