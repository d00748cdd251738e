//! The election restriction (Raft paper §5.4.1), for votes and pre-votes alike: a node
//! grants only to a candidate whose log is at least as up to date as its own (a later
//! last term, or the same last term and at least as long).
//!
//! A vote granted to a stale log breaks safety only if that candidate then wins with
//! it and overwrites committed entries; a pre-vote granted to a stale log breaks
//! nothing at all, it only lets a node that cannot win bump the term and depose a
//! leader. Both are checked here where they are decided: the granter's log is noted
//! when the request reaches it, and the grant is judged when it leaves.

use super::{Check, Invariant, Violation};
use raft_core::{LogIndex, Message, MessageBody, NodeId, Term};
use std::collections::BTreeMap;

/// A request as it reached the granter: (granter, candidate, term, pre-vote).
type Key = (NodeId, NodeId, Term, bool);

/// The two logs a vote request compares: (last term, last index) of each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Asked {
    candidate: (Term, LogIndex),
    granter: (Term, LogIndex),
}

/// Remembers what each vote request compared until its answer leaves.
#[derive(Debug, Default)]
pub struct VoteRule {
    /// Every comparison made for one key: a candidate may ask again in the same term
    /// with a longer log (a new pre-vote round), and the granter's log may have grown,
    /// so a grant is wrong only if no request of its key justified it.
    asked: BTreeMap<Key, Vec<Asked>>,
    /// The newest term of a request each granter received.
    newest: BTreeMap<NodeId, Term>,
}

/// The memory is pruned (of terms long past) once it holds this many keys.
const PRUNE_AT_KEYS: usize = 1_024;

/// Requests of this many terms before the newest a node received are forgotten.
const TERMS_KEPT: Term = 64;

/// More comparisons than this for one key and its grants are no longer judged.
const ASKED_PER_KEY_MAX: usize = 16;

impl VoteRule {
    /// A vote request reached `granter`, in `term`, whose log ends at (`last_term`,
    /// `last_index`).
    pub fn on_request_received(
        &mut self,
        message: &Message,
        term: Term,
        last_term: Term,
        last_index: LogIndex,
    ) {
        let MessageBody::RequestVote { pre_vote, last_log_index, last_log_term, .. } = message.body else {
            return;
        };
        // A request of an older term is refused whatever the logs (a late duplicate, or
        // one a paused node reads after moving on): it says nothing about a grant.
        if message.term < term {
            return;
        }
        let granter = message.to;
        let newest = self.newest.entry(granter).or_insert(0);
        *newest = (*newest).max(message.term);
        // Answers to much older campaigns are not judged: forget them, so the memory
        // stays bounded. (A grant waits for a sync, and a paused node's for its resume,
        // but never for dozens of terms.)
        if self.asked.len() >= PRUNE_AT_KEYS {
            let newest = &self.newest;
            self.asked
                .retain(|&(at, _, term, _), _| term + TERMS_KEPT >= newest.get(&at).copied().unwrap_or(0));
        }
        let asked = Asked { candidate: (last_log_term, last_log_index), granter: (last_term, last_index) };
        let all = self.asked.entry((granter, message.from, message.term, pre_vote)).or_default();
        if all.len() <= ASKED_PER_KEY_MAX && !all.contains(&asked) {
            all.push(asked);
        }
    }

    /// A message left; a granted vote or pre-vote is judged against its request.
    pub fn on_sent(&self, message: &Message) -> Check {
        let MessageBody::RequestVoteResponse { pre_vote, granted: true } = message.body else {
            return Ok(());
        };
        let key = (message.from, message.to, message.term, pre_vote);
        let Some(all) = self.asked.get(&key) else { return Ok(()) };
        if all.len() > ASKED_PER_KEY_MAX || all.iter().any(|asked| asked.candidate >= asked.granter) {
            return Ok(());
        }
        let asked = all[0];
        let what = if pre_vote { "pre-vote" } else { "vote" };
        Err(Violation::new(
            Invariant::VoteRule,
            vec![message.from, message.to],
            format!(
                "node {} granted its {what} in term {} to node {}, whose log ends at {}@{}, behind its own {}@{}: a {what} goes only to a log at least as up to date",
                message.from,
                message.term,
                message.to,
                asked.candidate.1,
                asked.candidate.0,
                asked.granter.1,
                asked.granter.0,
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(from: NodeId, to: NodeId, term: Term, pre_vote: bool, last: (Term, LogIndex)) -> Message {
        let body = MessageBody::RequestVote {
            pre_vote,
            leadership_transfer: false,
            last_log_index: last.1,
            last_log_term: last.0,
        };
        Message { from, to, term, body }
    }

    fn grant(from: NodeId, to: NodeId, term: Term, pre_vote: bool) -> Message {
        Message { from, to, term, body: MessageBody::RequestVoteResponse { pre_vote, granted: true } }
    }

    #[test]
    fn grants_to_logs_at_least_as_up_to_date_pass() {
        let mut rule = VoteRule::default();
        // Same last term and as long; a later last term though shorter.
        rule.on_request_received(&request(1, 2, 3, false, (2, 5)), 0, 2, 5);
        rule.on_sent(&grant(2, 1, 3, false)).unwrap();
        rule.on_request_received(&request(1, 3, 3, true, (3, 1)), 0, 2, 9);
        rule.on_sent(&grant(3, 1, 3, true)).unwrap();
    }

    #[test]
    fn a_vote_for_a_shorter_log_of_the_same_term_fires() {
        let mut rule = VoteRule::default();
        rule.on_request_received(&request(1, 2, 4, false, (2, 4)), 0, 2, 6);
        let violation = rule.on_sent(&grant(2, 1, 4, false)).unwrap_err();
        assert_eq!(violation.invariant, "vote rule");
        assert!(violation.to_string().contains("whose log ends at 4@2, behind its own 6@2"), "{violation}");
    }

    #[test]
    fn a_pre_vote_for_an_older_last_term_fires() {
        let mut rule = VoteRule::default();
        rule.on_request_received(&request(1, 2, 4, true, (1, 9)), 0, 3, 2);
        let violation = rule.on_sent(&grant(2, 1, 4, true)).unwrap_err();
        assert!(violation.to_string().contains("granted its pre-vote in term 4"), "{violation}");
    }

    #[test]
    fn a_grant_justified_by_a_later_request_of_the_same_term_passes() {
        // The first pre-vote round met a longer log and was refused; the candidate's log
        // grew and it asked again in the same term.
        let mut rule = VoteRule::default();
        rule.on_request_received(&request(1, 2, 4, true, (2, 3)), 0, 2, 6);
        rule.on_request_received(&request(1, 2, 4, true, (2, 7)), 0, 2, 6);
        rule.on_sent(&grant(2, 1, 4, true)).unwrap();
    }

    #[test]
    fn a_late_request_of_an_older_term_is_not_held_against_an_earlier_grant() {
        // Node 2 granted in term 31 (its grant waiting for a sync) and moved on to term
        // 33 with a longer log; a duplicate of the term-31 request reaches it then.
        let mut rule = VoteRule::default();
        rule.on_request_received(&request(1, 2, 31, false, (30, 96)), 30, 30, 96);
        rule.on_request_received(&request(5, 2, 33, false, (33, 97)), 31, 30, 96);
        rule.on_request_received(&request(1, 2, 31, false, (30, 96)), 33, 33, 97);
        rule.on_sent(&grant(2, 1, 31, false)).unwrap();
    }

    #[test]
    fn refusals_and_unknown_requests_are_not_judged() {
        let mut rule = VoteRule::default();
        rule.on_request_received(&request(1, 2, 4, false, (1, 1)), 0, 3, 9);
        let refusal = Message {
            from: 2,
            to: 1,
            term: 4,
            body: MessageBody::RequestVoteResponse { pre_vote: false, granted: false },
        };
        rule.on_sent(&refusal).unwrap();
        rule.on_sent(&grant(3, 1, 4, false)).unwrap();
    }
}
