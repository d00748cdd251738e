//! A leader is elected by a quorum of its configuration (Raft paper §5.2, thesis §4.3):
//! a majority of its voters and, during a joint change, a majority of the outgoing
//! voters too; a learner's or a stranger's vote never counts.
//!
//! Counting a vote that should not count breaks nothing at once: it takes a second
//! leader elected in the same term by the other half of a joint configuration, or by
//! voters that learners outnumbered. Election safety sees that only if both win; this
//! sees the first leader win without the quorum, from the votes that left the voters.

use super::{Check, Invariant, Violation};
use raft_core::{Configuration, Message, MessageBody, NodeId, Term};
use std::collections::{BTreeMap, BTreeSet};

/// How many terms back granted votes are kept. A candidate may win an older term after
/// a leader of a newer one is known (a partition delays it), so votes are not dropped
/// at the newest election, only once they are this far behind it.
const TERMS_KEPT: Term = 1_000;

/// The votes granted so far, by (term, candidate).
#[derive(Debug, Default)]
pub struct ElectionQuorum {
    granted: BTreeMap<(Term, NodeId), BTreeSet<NodeId>>,
}

impl ElectionQuorum {
    /// A message left a node: a granted vote is noted.
    pub fn on_sent(&mut self, message: &Message) {
        if let MessageBody::RequestVoteResponse { pre_vote: false, granted: true } = message.body {
            self.granted.entry((message.term, message.to)).or_default().insert(message.from);
        }
    }

    /// `leader` became leader of `term` under `configuration`: the votes it was sent,
    /// with its own, must form a quorum of it.
    pub fn on_leader(&mut self, leader: NodeId, term: Term, configuration: &Configuration) -> Check {
        self.granted = self.granted.split_off(&(term.saturating_sub(TERMS_KEPT), 0));
        let mut voters = self.granted.remove(&(term, leader)).unwrap_or_default();
        voters.insert(leader);
        if configuration.has_quorum(|node| voters.contains(&node)) {
            return Ok(());
        }
        Err(Violation::new(
            Invariant::ElectionQuorum,
            vec![leader],
            format!(
                "node {leader} became leader of term {term} with the votes of {voters:?} (its own included), not a quorum of {configuration}"
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(from: NodeId, to: NodeId, term: Term) -> Message {
        Message { from, to, term, body: MessageBody::RequestVoteResponse { pre_vote: false, granted: true } }
    }

    #[test]
    fn a_majority_of_voters_elects() {
        let mut checker = ElectionQuorum::default();
        checker.on_sent(&grant(2, 1, 3));
        checker.on_leader(1, 3, &Configuration::voters([1, 2, 3]).unwrap()).unwrap();
    }

    #[test]
    fn votes_of_learners_and_pre_votes_do_not_count() {
        let mut checker = ElectionQuorum::default();
        let configuration = Configuration::new([1, 2, 3], [4, 5]).unwrap();
        checker.on_sent(&grant(4, 1, 3));
        checker.on_sent(&grant(5, 1, 3));
        let pre_vote = Message {
            from: 2,
            to: 1,
            term: 3,
            body: MessageBody::RequestVoteResponse { pre_vote: true, granted: true },
        };
        checker.on_sent(&pre_vote);
        let violation = checker.on_leader(1, 3, &configuration).unwrap_err();
        assert_eq!(violation.invariant, "leader elected by a quorum");
        assert!(
            violation.to_string().contains("not a quorum of voters [1, 2, 3], learners [4, 5]"),
            "{violation}"
        );
    }

    #[test]
    fn a_joint_configuration_needs_both_majorities() {
        let joint = Configuration::voters([1, 2, 3])
            .unwrap()
            .joint_to(&Configuration::voters([1, 4, 5]).unwrap())
            .unwrap();
        let mut checker = ElectionQuorum::default();
        checker.on_sent(&grant(4, 1, 3));
        checker.on_sent(&grant(5, 1, 3));
        assert!(checker.on_leader(1, 3, &joint).is_err(), "the new voters alone");
        checker.on_sent(&grant(2, 1, 4));
        checker.on_sent(&grant(4, 1, 4));
        checker.on_leader(1, 4, &joint).unwrap();
    }
}
