//! What the committed configuration changes of a run did: counted from the membership
//! entries as they are first applied, for the run summary (a sweep whose seeds never
//! made a joint change or promoted a learner has not tested them).

use raft_core::Configuration;
use serde::{Deserialize, Serialize};

/// Counts of committed configuration changes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MembershipStats {
    /// Configuration entries committed.
    pub changes: u64,
    /// Joint configurations committed (each a change of several voters at once).
    pub joint_changes: u64,
    /// Learners that became voters.
    pub promotions: u64,
    /// Members removed (voters and learners).
    pub removals: u64,
}

impl MembershipStats {
    /// Adds another run's counts.
    pub fn add(&mut self, other: &MembershipStats) {
        self.changes += other.changes;
        self.joint_changes += other.joint_changes;
        self.promotions += other.promotions;
        self.removals += other.removals;
    }
}

/// Follows the committed configurations of a run.
#[derive(Debug, Default)]
pub struct MembershipTally {
    /// The counts so far.
    pub stats: MembershipStats,
    last: Option<Configuration>,
}

impl MembershipTally {
    /// `configuration` was committed (first applied anywhere).
    pub fn on_committed(&mut self, configuration: &Configuration) {
        self.stats.changes += 1;
        if configuration.is_joint() {
            self.stats.joint_changes += 1;
        }
        if let Some(before) = &self.last {
            let promoted = before.learners().iter().filter(|node| configuration.is_voter(**node));
            self.stats.promotions += promoted.count() as u64;
            let removed = before.members().iter().filter(|node| !configuration.contains(**node));
            self.stats.removals += removed.count() as u64;
        }
        self.last = Some(configuration.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joint_changes_promotions_and_removals_are_counted() {
        let mut tally = MembershipTally::default();
        tally.on_committed(&Configuration::new([1, 2, 3], [4]).unwrap());
        let joint = Configuration::new([1, 2, 3], [4])
            .unwrap()
            .joint_to(&Configuration::new([1, 4, 5], []).unwrap())
            .unwrap();
        tally.on_committed(&joint);
        tally.on_committed(&joint.leave_joint());
        let stats = tally.stats;
        assert_eq!((stats.changes, stats.joint_changes, stats.promotions, stats.removals), (3, 1, 1, 2));
    }
}
