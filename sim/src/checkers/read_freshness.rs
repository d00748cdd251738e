//! Read freshness (Raft thesis §6.4): a linearizable read must observe every entry
//! committed before the read was asked. The read index a leader answers with must be
//! at least the newest entry any node had applied when the read arrived, and the host
//! must have applied up to the read index before it answers.
//!
//! This is the cheap, always-on half of linearizability; the full history check
//! comes with the key-value clients. The reads still pending are also a liveness
//! question: once the cluster has healed, every read must be answered or refused.

use super::{Check, Invariant, Violation};
use raft_core::{LogIndex, NodeId, RequestId};
use std::collections::BTreeMap;

/// A read in flight.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PendingRead {
    /// The node asked.
    pub node: NodeId,
    /// The read's id.
    pub id: RequestId,
    /// The newest applied index anywhere when it was asked: the least it may observe.
    pub required: LogIndex,
    /// When it was asked (virtual microseconds).
    pub asked_at_micros: u64,
}

/// Reads in flight and the index each must observe.
#[derive(Debug, Default)]
pub struct ReadFreshness {
    pending: BTreeMap<(NodeId, RequestId), PendingRead>,
}

impl ReadFreshness {
    /// A read `id` was asked of `node` at `asked_at_micros`, while the newest applied
    /// entry anywhere was `applied_anywhere`.
    pub fn on_read_asked(
        &mut self,
        node: NodeId,
        id: RequestId,
        applied_anywhere: LogIndex,
        asked_at_micros: u64,
    ) {
        let read = PendingRead { node, id, required: applied_anywhere, asked_at_micros };
        self.pending.insert((node, id), read);
    }

    /// The longest-waiting read not yet answered or refused, if any.
    pub fn oldest_pending(&self) -> Option<PendingRead> {
        self.pending.values().min_by_key(|read| (read.asked_at_micros, read.node, read.id)).copied()
    }

    /// `node` answered read `id` at `read_index`, its state machine having applied `applied_here`.
    pub fn on_read_ready(
        &mut self,
        node: NodeId,
        id: RequestId,
        read_index: LogIndex,
        applied_here: LogIndex,
    ) -> Check {
        let Some(PendingRead { required, .. }) = self.pending.remove(&(node, id)) else {
            return Err(Violation::new(
                Invariant::ReadFreshness,
                vec![node],
                format!("node {node} answered read {id}, which it was never asked or already answered"),
            ));
        };
        if read_index < required {
            return Err(Violation::new(
                Invariant::ReadFreshness,
                vec![node],
                format!(
                    "node {node} answered read {id} at index {read_index}, but entry {required} was applied before the read was asked (a stale read)"
                ),
            ));
        }
        if applied_here < read_index {
            return Err(Violation::new(
                Invariant::ReadFreshness,
                vec![node],
                format!(
                    "node {node} answered read {id} at index {read_index} having applied only {applied_here}"
                ),
            ));
        }
        Ok(())
    }

    /// Read `id` at `node` will not be answered (rejected, or the node crashed).
    pub fn on_read_dropped(&mut self, node: NodeId, id: RequestId) {
        self.pending.remove(&(node, id));
    }

    /// `node` crashed: its reads will never be answered.
    pub fn on_crash(&mut self, node: NodeId) {
        self.pending.retain(|(asked, _), _| *asked != node);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_index_behind_an_earlier_commit_fires() {
        let mut checker = ReadFreshness::default();
        checker.on_read_asked(1, 7, 10, 0);
        let violation = checker.on_read_ready(1, 7, 9, 12).unwrap_err();
        assert_eq!(violation.invariant, "read freshness");
        assert!(violation.detail.contains("stale read"));
    }

    #[test]
    fn answering_before_applying_the_read_index_fires() {
        let mut checker = ReadFreshness::default();
        checker.on_read_asked(1, 7, 10, 0);
        assert!(checker.on_read_ready(1, 7, 11, 10).is_err());
    }

    #[test]
    fn a_fresh_read_passes_and_unknown_answers_fire() {
        let mut checker = ReadFreshness::default();
        checker.on_read_asked(1, 7, 10, 0);
        checker.on_read_ready(1, 7, 10, 10).unwrap();
        assert!(checker.on_read_ready(1, 7, 10, 10).is_err(), "answered twice");
        checker.on_read_asked(2, 8, 3, 5);
        assert_eq!(checker.oldest_pending().map(|read| (read.node, read.id)), Some((2, 8)));
        checker.on_crash(2);
        assert_eq!(checker.oldest_pending(), None);
        assert!(checker.on_read_ready(2, 8, 3, 3).is_err(), "a crashed node's read is gone");
    }
}
