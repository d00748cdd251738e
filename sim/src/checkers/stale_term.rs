//! Stale terms change nothing (Raft paper §5.1: "If a server receives a request with a
//! stale term number, it rejects the request"). A message from a term older than its
//! receiver's may be answered, so the sender learns the newer term, but it must not
//! change anything: no write, no truncation, no snapshot, no applied entry, no role.
//!
//! Checked on each step that delivers a message, from the receiver's term just before
//! the step and the actions the step produced. A core that lets an old leader's
//! entries, an old candidate's request or an old acknowledgement through fails here
//! at once, where the damage it does downstream may take many seeds to surface.

use super::{Check, Invariant, Violation};
use raft_core::{Message, Term};
use raft_host::ActionKinds;

/// Checks what a node did with a message from an older term.
#[derive(Debug, Default)]
pub struct StaleTerm;

impl StaleTerm {
    /// Whether `message` is stale for a receiver in `receiver_term`. (A pre-vote request
    /// carries the term its sender would campaign in, and is judged by that.)
    pub fn is_stale(message: &Message, receiver_term: Term) -> bool {
        message.term < receiver_term
    }

    /// A node in `receiver_term` was given the stale `message`, and the step asked for
    /// the kinds of action in `did`.
    pub fn on_stale_message(&self, message: &Message, receiver_term: Term, did: ActionKinds) -> Check {
        let Some(action) = did.first_besides_sends() else {
            return Ok(());
        };
        Err(Violation::new(
            Invariant::StaleTerm,
            vec![message.to, message.from],
            format!(
                "node {} in term {receiver_term} acted on a term-{} message from node {} ({}): it did {}",
                message.to,
                message.term,
                message.from,
                crate::naming::describe_message_kind(&message.body),
                action
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft_core::{Action, Entry, EntryPayload, HardState, MessageBody};

    fn append(term: Term) -> Message {
        Message {
            from: 2,
            to: 1,
            term,
            body: MessageBody::AppendEntries {
                prev_log_index: 0,
                prev_log_term: 0,
                entries: vec![Entry { term, index: 1, payload: EntryPayload::Noop }],
                leader_commit: 0,
            },
        }
    }

    fn kinds(actions: &[Action]) -> ActionKinds {
        let mut did = ActionKinds::default();
        actions.iter().for_each(|action| did.insert(action));
        did
    }

    #[test]
    fn acting_on_an_old_leaders_entries_fires() {
        let checker = StaleTerm;
        let message = append(3);
        assert!(StaleTerm::is_stale(&message, 4));
        let writes = kinds(&[Action::PersistEntries { entries: vec![] }]);
        let violation = checker.on_stale_message(&message, 4, writes).unwrap_err();
        assert_eq!(violation.invariant, "stale term");
        assert!(violation.detail.contains("PersistEntries"), "{violation}");
        let hard_state = kinds(&[Action::PersistHardState(HardState { term: 4, voted_for: Some(2) })]);
        assert!(checker.on_stale_message(&message, 4, hard_state).is_err());
    }

    #[test]
    fn answering_a_stale_message_with_the_newer_term_is_fine() {
        let checker = StaleTerm;
        let message = append(3);
        let reply = Message {
            from: 1,
            to: 2,
            term: 4,
            body: MessageBody::HeartbeatResponse { read_round: 0, leader_tick: 0 },
        };
        checker
            .on_stale_message(&message, 4, kinds(&[Action::Send(reply.clone()), Action::SendAhead(reply)]))
            .unwrap();
        assert!(!StaleTerm::is_stale(&append(4), 4));
    }
}
