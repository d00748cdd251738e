//! Promises are durable (Raft paper Figure 2: "updated on stable storage before
//! responding to RPCs"): when a message leaves a node, everything it promises is
//! already on the sender's disk. A granted vote needs the vote durable; a successful
//! append acknowledgement needs the acknowledged entries durable; any message of a
//! term needs that term durable (pre-vote traffic excepted: it promises nothing).
//! An acknowledgement is held to its entries only while its sender is still in the
//! acknowledgement's term (see the comment at the check).
//!
//! This catches an ordering bug the moment the message leaves, where waiting for a
//! crash to land in the window between the send and the write would catch it rarely.

use super::{Check, Invariant, LogView, Violation};
use raft_core::{DurableState, Message, MessageBody};

/// Checks each message against its sender's durable state as it leaves.
#[derive(Debug, Default)]
pub struct DurablePromises;

impl DurablePromises {
    /// `message` leaves its sender, whose disk holds `durable`.
    pub fn on_send(&self, message: &Message, durable: &DurableState) -> Check {
        let sender = message.from;
        let hard_state = durable.hard_state;
        let pre_vote = matches!(
            message.body,
            MessageBody::RequestVote { pre_vote: true, .. }
                | MessageBody::RequestVoteResponse { pre_vote: true, .. }
        );
        if !pre_vote && hard_state.term < message.term {
            return Err(Violation::new(
                Invariant::DurablePromises,
                vec![sender],
                format!(
                    "node {sender} sent a message of term {} while its durable term was {}",
                    message.term, hard_state.term
                ),
            ));
        }
        match message.body {
            MessageBody::RequestVoteResponse { pre_vote: false, granted: true } => {
                let vote_durable = hard_state.term > message.term
                    || (hard_state.term == message.term && hard_state.voted_for == Some(message.to));
                if !vote_durable {
                    return Err(Violation::new(
                        Invariant::DurablePromises,
                        vec![sender, message.to],
                        format!(
                            "node {sender} granted its vote to {} in term {} before the vote was durable (durable: term {}, vote {:?})",
                            message.to, message.term, hard_state.term, hard_state.voted_for
                        ),
                    ));
                }
            }
            // Only while the sender is still in the acknowledgement's term: a node that has
            // since moved to a newer term may already have truncated those entries for the
            // newer leader (the same sync can make both the append and the truncation
            // durable), and an old-term leader can no longer commit with the answer.
            MessageBody::AppendEntriesResponse { success: true, index, .. }
                if hard_state.term == message.term =>
            {
                let held = index <= durable.snapshot_index() || durable.term_at(index).is_some();
                if !held {
                    return Err(Violation::new(
                        Invariant::DurablePromises,
                        vec![sender, message.to],
                        format!(
                            "node {sender} acknowledged entries up to {index} to {} before they were durable",
                            message.to
                        ),
                    ));
                }
            }
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft_core::{Entry, EntryPayload, HardState};

    fn durable(term: u64, voted_for: Option<u64>, entries: u64) -> DurableState {
        DurableState {
            hard_state: HardState { term, voted_for },
            snapshot: None,
            entries: (1..=entries)
                .map(|index| Entry { term: 1, index, payload: EntryPayload::Noop })
                .collect(),
        }
    }

    fn message(term: u64, body: MessageBody) -> Message {
        Message { from: 1, to: 2, term, body }
    }

    fn acknowledgement(term: u64, index: u64) -> Message {
        let body = MessageBody::AppendEntriesResponse {
            success: true,
            index,
            reject_hint_index: 0,
            reject_hint_term: 0,
        };
        message(term, body)
    }

    #[test]
    fn a_vote_that_leaves_before_it_is_durable_fires() {
        let checker = DurablePromises;
        let grant = message(3, MessageBody::RequestVoteResponse { pre_vote: false, granted: true });
        checker.on_send(&grant, &durable(3, Some(2), 0)).unwrap();
        let violation = checker.on_send(&grant, &durable(3, None, 0)).unwrap_err();
        assert_eq!(violation.invariant, "durable promises");
        assert!(checker.on_send(&grant, &durable(2, Some(2), 0)).is_err(), "the term itself is not durable");
    }

    #[test]
    fn an_acknowledgement_of_entries_not_yet_durable_fires() {
        let checker = DurablePromises;
        let ack = acknowledgement(1, 3);
        checker.on_send(&ack, &durable(1, None, 3)).unwrap();
        assert!(checker.on_send(&ack, &durable(1, None, 2)).is_err());
    }

    /// Found by heavy seed 955: a paused follower resumed, appended entries from the
    /// term-8 leader, then truncated them for the term-9 leader; one sync made both
    /// durable, and the term-8 acknowledgement left after it. Safe: the old leader
    /// cannot commit with it, since the follower has moved on to term 9.
    #[test]
    fn an_old_term_acknowledgement_of_entries_a_newer_leader_truncated_is_fine() {
        let checker = DurablePromises;
        let ack = acknowledgement(8, 3);
        checker.on_send(&ack, &durable(9, None, 2)).unwrap();
    }

    #[test]
    fn pre_votes_may_travel_in_a_term_not_yet_adopted() {
        let checker = DurablePromises;
        let pre_vote = message(
            5,
            MessageBody::RequestVote {
                pre_vote: true,
                leadership_transfer: false,
                last_log_index: 0,
                last_log_term: 0,
            },
        );
        checker.on_send(&pre_vote, &durable(4, None, 0)).unwrap();
        let heartbeat = message(5, MessageBody::Heartbeat { commit: 0, read_round: 0, leader_tick: 0 });
        assert!(checker.on_send(&heartbeat, &durable(4, None, 0)).is_err());
    }
}
