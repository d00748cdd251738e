//! What the host reports durable (`Input::LogPersisted`), and what a leader may count
//! because of it.
//!
//! A leader sends its appends before its own write of them is durable (Raft thesis
//! §10.2.1), so it cannot count itself toward a commit as soon as it appends: only as
//! far as the host says its log is durable. A follower's acknowledgement, by contrast,
//! leaves only once its writes are durable (`Action::Send`), so the leader counts it
//! when it arrives.

use crate::io::{Action, Role};
use crate::node::RaftNode;
use crate::types::{LogIndex, Term};

impl RaftNode {
    pub(crate) fn log_persisted(&mut self, index: LogIndex, term: Term, actions: &mut Vec<Action>) {
        // (index, term) names one entry and, by Log Matching, the whole prefix before it:
        // if the log still holds it, that prefix is the one on disk.
        if index > self.log.last_index() || self.log.term_at(index) != Some(term) {
            self.counters.ignored_persistence_reports += 1;
            return;
        }
        self.log.persisted_index = index;
        if self.role == Role::Leader {
            self.maybe_commit(actions);
        }
    }
}
