//! Client sessions: what makes a retried command apply exactly once (Raft thesis §6.3).
//!
//! Each client numbers its writes and has one outstanding at a time, so remembering its
//! last sequence number and that command's response is enough: the same number again
//! is a retry (answer from memory), a lower one is a late copy of a command the client
//! has given up on or already seen answered (refuse it), a higher one is new.

use crate::command::{ClientId, KvError, Response, Sequence};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A client's last applied command and its response.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// The sequence number of the client's last applied command.
    pub last_sequence: Sequence,
    /// What that command answered.
    pub last_response: Response,
}

/// What to do with a command, given its client's session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Not seen before: apply it.
    Apply,
    /// A retry of the last command: answer this without applying anything.
    Duplicate(Response),
    /// Older than the last command: refuse it.
    Stale(KvError),
}

/// Every client's session, in client order (the order snapshots are written in).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sessions {
    by_client: BTreeMap<ClientId, Session>,
}

impl Sessions {
    /// Decides what a command numbered `sequence` from `client` does.
    pub fn admit(&self, client: ClientId, sequence: Sequence) -> Admission {
        if sequence == 0 {
            return Admission::Apply;
        }
        match self.by_client.get(&client) {
            Some(session) if sequence == session.last_sequence => {
                Admission::Duplicate(session.last_response.clone())
            }
            Some(session) if sequence < session.last_sequence => {
                Admission::Stale(KvError::StaleSequence { last: session.last_sequence })
            }
            _ => Admission::Apply,
        }
    }

    /// Remembers that `client`'s command `sequence` was applied and answered `response`.
    pub fn record(&mut self, client: ClientId, sequence: Sequence, response: &Response) {
        if sequence == 0 {
            return;
        }
        match self.by_client.get_mut(&client) {
            Some(session) => {
                session.last_sequence = sequence;
                session.last_response.clone_from(response);
            }
            None => {
                let session = Session { last_sequence: sequence, last_response: response.clone() };
                self.by_client.insert(client, session);
            }
        }
    }

    /// The session of `client`, if it has had a command applied.
    pub fn get(&self, client: ClientId) -> Option<&Session> {
        self.by_client.get(&client)
    }

    /// How many clients have a session.
    pub fn len(&self) -> usize {
        self.by_client.len()
    }

    /// Whether no client has a session.
    pub fn is_empty(&self) -> bool {
        self.by_client.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_number_is_a_retry_a_lower_one_is_stale_a_higher_one_is_new() {
        let mut sessions = Sessions::default();
        assert_eq!(sessions.admit(1, 1), Admission::Apply);
        sessions.record(1, 1, &Response::Done);
        assert_eq!(sessions.admit(1, 1), Admission::Duplicate(Response::Done));
        assert_eq!(sessions.admit(1, 2), Admission::Apply);
        sessions.record(1, 2, &Response::Deleted { existed: true });
        assert_eq!(sessions.admit(1, 1), Admission::Stale(KvError::StaleSequence { last: 2 }));
        assert_eq!(sessions.admit(1, 2), Admission::Duplicate(Response::Deleted { existed: true }));
        // Other clients are independent.
        assert_eq!(sessions.admit(2, 1), Admission::Apply);
    }

    #[test]
    fn sequence_zero_is_sessionless() {
        let mut sessions = Sessions::default();
        sessions.record(1, 0, &Response::Done);
        assert!(sessions.is_empty());
        assert_eq!(sessions.admit(1, 0), Admission::Apply);
    }
}
