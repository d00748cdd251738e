//! Durable vote (Raft paper §5.1, Figure 2): a node grants at most one vote per term,
//! even across crashes. A granted vote is a promise; it must be durable before it
//! leaves, so a restarted node still knows it.
//!
//! Watches the vote grants that leave the host (not pre-votes, which promise nothing)
//! and what each node restarts from.

use super::{Check, Invariant, Violation};
use raft_core::{HardState, Message, MessageBody, NodeId, Term};
use std::collections::BTreeMap;

/// Every vote granted, by voter and term.
#[derive(Debug, Default)]
pub struct DurableVote {
    /// `(voter, term) -> candidate`.
    grants: BTreeMap<(NodeId, Term), NodeId>,
}

impl DurableVote {
    /// A message left its sender's host.
    pub fn on_sent(&mut self, message: &Message) -> Check {
        let MessageBody::RequestVoteResponse { pre_vote: false, granted: true } = message.body else {
            return Ok(());
        };
        let (voter, candidate, term) = (message.from, message.to, message.term);
        match self.grants.insert((voter, term), candidate) {
            Some(earlier) if earlier != candidate => Err(Violation::new(
                Invariant::DurableVote,
                vec![voter, earlier, candidate],
                format!("node {voter} voted for both {earlier} and {candidate} in term {term}"),
            )),
            _ => Ok(()),
        }
    }

    /// `node` restarted from `hard_state`: it must remember its latest vote.
    pub fn on_restart(&mut self, node: NodeId, hard_state: HardState) -> Check {
        let latest = self.grants.range((node, 0)..=(node, Term::MAX)).next_back();
        let Some((&(_, term), &candidate)) = latest else {
            return Ok(());
        };
        let remembered =
            hard_state.term > term || (hard_state.term == term && hard_state.voted_for == Some(candidate));
        if remembered {
            return Ok(());
        }
        Err(Violation::new(
            Invariant::DurableVote,
            vec![node, candidate],
            format!(
                "node {node} granted its vote to {candidate} in term {term} but restarted from term {} with vote {:?}",
                hard_state.term, hard_state.voted_for
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vote(from: NodeId, to: NodeId, term: Term, pre_vote: bool) -> Message {
        Message { from, to, term, body: MessageBody::RequestVoteResponse { pre_vote, granted: true } }
    }

    #[test]
    fn two_votes_in_one_term_fire() {
        let mut checker = DurableVote::default();
        checker.on_sent(&vote(1, 2, 4, false)).unwrap();
        checker.on_sent(&vote(1, 2, 4, false)).unwrap();
        let violation = checker.on_sent(&vote(1, 3, 4, false)).unwrap_err();
        assert_eq!(violation.invariant, "durable vote");
        assert_eq!(violation.nodes, vec![1, 2, 3]);
    }

    #[test]
    fn pre_votes_and_refusals_promise_nothing() {
        let mut checker = DurableVote::default();
        checker.on_sent(&vote(1, 2, 4, true)).unwrap();
        checker.on_sent(&vote(1, 3, 4, true)).unwrap();
        let refusal = Message {
            from: 1,
            to: 3,
            term: 4,
            body: MessageBody::RequestVoteResponse { pre_vote: false, granted: false },
        };
        checker.on_sent(&refusal).unwrap();
        checker.on_sent(&vote(1, 3, 4, false)).unwrap();
    }

    #[test]
    fn restarting_without_the_granted_vote_fires() {
        let mut checker = DurableVote::default();
        checker.on_sent(&vote(1, 2, 4, false)).unwrap();
        assert!(checker.on_restart(1, HardState { term: 4, voted_for: None }).is_err());
        assert!(checker.on_restart(1, HardState { term: 3, voted_for: Some(2) }).is_err());
        checker.on_restart(1, HardState { term: 4, voted_for: Some(2) }).unwrap();
        checker.on_restart(1, HardState { term: 5, voted_for: None }).unwrap();
        checker.on_restart(2, HardState::default()).unwrap();
    }
}
