//! Leader election (Raft paper §5.2), the up-to-date vote rule (§5.4.1), PreVote
//! (Raft thesis §9.6) and the campaign that ends a leadership transfer (thesis §3.10).

use crate::configuration::VoteResult;
use crate::io::{Action, Role};
use crate::message::MessageBody;
use crate::node::RaftNode;
use crate::types::{LogIndex, NodeId, Term};

impl RaftNode {
    /// The election timer fired: campaign, first as a pre-candidate if PreVote is on.
    pub(crate) fn start_election(&mut self, actions: &mut Vec<Action>) {
        self.campaign(self.config.pre_vote, false, actions);
    }

    pub(crate) fn campaign(&mut self, pre_vote: bool, leadership_transfer: bool, actions: &mut Vec<Action>) {
        let campaign_term;
        if pre_vote {
            // The term is not bumped: a pre-candidate that loses leaves no trace.
            self.role = Role::PreCandidate;
            self.leader = None;
            campaign_term = self.term + 1;
        } else {
            self.term += 1;
            self.voted_for = Some(self.config.id);
            self.role = Role::Candidate;
            self.leader = None;
            campaign_term = self.term;
        }
        self.reset_election_timer();
        self.votes.clear();
        self.votes.insert(self.config.id, true);
        actions.push(Action::RoleChanged { role: self.role, term: self.term, leader: None });
        if self.count_votes(actions) {
            return;
        }
        let body = MessageBody::RequestVote {
            pre_vote,
            leadership_transfer,
            last_log_index: self.log.last_index(),
            last_log_term: self.log.last_term(),
        };
        // Only voters are asked: a learner's vote would never count.
        for position in 0..self.member_count() {
            match self.peer_at(position) {
                Some(peer) if self.log.configuration().is_voter(peer) => {
                    self.send_with_term(peer, campaign_term, body.clone(), actions);
                }
                _ => {}
            }
        }
    }

    /// Counts the votes so far and acts on a decided outcome. Returns true if decided.
    fn count_votes(&mut self, actions: &mut Vec<Action>) -> bool {
        // Only the votes of current voters count (of both halves during a joint change);
        // that may exclude our own (a node whose removal is not yet committed may still
        // campaign; see `may_campaign`).
        let votes = &self.votes;
        match self.log.configuration().vote_result(|voter| votes.get(&voter).copied()) {
            VoteResult::Pending => false,
            VoteResult::Won if self.role == Role::PreCandidate => {
                if self.may_campaign() {
                    self.campaign(false, false, actions);
                } else {
                    // Told meanwhile that we were removed: the campaign ends here.
                    self.become_follower(self.term, None, actions);
                }
                true
            }
            VoteResult::Won => {
                self.become_leader(actions);
                true
            }
            VoteResult::Lost => {
                self.become_follower(self.term, None, actions);
                true
            }
        }
    }

    pub(crate) fn handle_vote_request(
        &mut self,
        candidate: NodeId,
        campaign_term: Term,
        pre_vote: bool,
        last_log_index: LogIndex,
        last_log_term: Term,
        actions: &mut Vec<Action>,
    ) {
        // The membership is not consulted (thesis §4.1): a candidate this node does not
        // yet know as a voter may be one. A removed server cannot win anyway once its
        // removal is on a majority, since its log lacks that entry.
        let up_to_date = self.log.candidate_is_up_to_date(last_log_index, last_log_term);
        let granted = if pre_vote {
            // Would we vote for it in the term it proposes? Only if that term is newer
            // than ours and its log is as complete as ours. Our state does not change.
            // (Requests inside a leader lease never get here: `receive` drops them.)
            campaign_term > self.term && up_to_date
        } else {
            debug_assert_eq!(campaign_term, self.term);
            // One vote per term (§5.2), and a node following a known leader does not vote.
            let free_to_vote =
                self.voted_for == Some(candidate) || (self.voted_for.is_none() && self.leader.is_none());
            free_to_vote && up_to_date
        };
        if granted && !pre_vote {
            self.voted_for = Some(candidate);
            // Granting a vote restarts the timer so this node does not compete with the
            // candidate it just backed.
            self.reset_election_timer();
        }
        let response_term = if pre_vote && granted { campaign_term } else { self.term };
        let body = MessageBody::RequestVoteResponse { pre_vote, granted };
        self.send_with_term(candidate, response_term, body, actions);
    }

    pub(crate) fn handle_vote_response(
        &mut self,
        voter: NodeId,
        response_term: Term,
        pre_vote: bool,
        granted: bool,
        actions: &mut Vec<Action>,
    ) {
        let expected_role = if pre_vote { Role::PreCandidate } else { Role::Candidate };
        // A granted pre-vote is in the term we would campaign in; everything else in ours.
        let expected_term = if pre_vote && granted { self.term + 1 } else { self.term };
        if self.role != expected_role || response_term != expected_term {
            self.counters.ignored_stale_response += 1;
            return;
        }
        if !self.log.configuration().is_voter(voter) {
            self.counters.ignored_unknown_peer += 1;
            return;
        }
        if self.votes.contains_key(&voter) {
            self.counters.ignored_stale_response += 1;
            return;
        }
        self.votes.insert(voter, granted);
        self.count_votes(actions);
    }

    /// The leader asked us to take over (Raft thesis §3.10): campaign now, skipping
    /// PreVote, and tell voters to ignore their leader lease.
    pub(crate) fn handle_timeout_now(&mut self, actions: &mut Vec<Action>) {
        // The leader's transfer may predate this node's removal (the TimeoutNow was
        // delayed, or the transfer was asked for just before the change): a removed
        // node must not disrupt the cluster that removed it.
        if !self.may_campaign() {
            self.counters.ignored_timeout_now += 1;
            return;
        }
        self.campaign(false, true, actions);
    }
}
