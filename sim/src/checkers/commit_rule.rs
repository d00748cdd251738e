//! A leader commits only entries of its own term (Raft paper §5.4.2, Figure 8): it may
//! advance its commit index to `N` only if the entry at `N` is of its current term;
//! entries of older terms become committed only with it, indirectly.
//!
//! Counting replicas of an old-term entry is the Figure 8 bug: the entry can still be
//! overwritten by a leader that never had it, after a majority held it. Its damage
//! shows downstream only when such an overwrite happens and a read or an apply sees
//! it, which takes a rare schedule; this checks the rule where it is made, at every
//! commit decision a leader takes.

use super::{Check, Invariant, Violation};
use raft_core::{LogIndex, NodeId, Term};

/// Checks each commit decision against the Figure 8 rule.
#[derive(Debug, Default)]
pub struct CommitRule;

impl CommitRule {
    /// Leader `node` of `leader_term` advanced its commit index to `index`, an entry of
    /// `entry_term`.
    pub fn on_committed(&self, node: NodeId, index: LogIndex, entry_term: Term, leader_term: Term) -> Check {
        if entry_term == leader_term {
            return Ok(());
        }
        Err(Violation::new(
            Invariant::CommitRule,
            vec![node],
            format!(
                "leader {node} of term {leader_term} advanced its commit index to {index}, an entry of term \
                 {entry_term}: a leader may count replicas only of entries of its own term"
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_leader_committing_its_own_terms_entry_is_fine() {
        assert!(CommitRule.on_committed(1, 7, 3, 3).is_ok());
    }

    #[test]
    fn a_leader_committing_an_older_terms_entry_fires() {
        let violation = CommitRule.on_committed(2, 5, 2, 4).unwrap_err();
        assert_eq!(violation.invariant, "leader commits its own term");
        assert_eq!(violation.nodes, vec![2]);
        assert!(violation.detail.contains("entry of term 2"), "{}", violation.detail);
    }
}
