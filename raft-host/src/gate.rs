//! The ordering gate: which effects may happen now and which must wait for the disk.
//!
//! Writes are numbered as they are issued. An effect that may promise the writes before
//! it (a send, an apply, a read answer, a snapshot install) waits until every one of
//! them is durable; a leader's send-ahead waits only for the hard-state writes before
//! it. Effects that wait leave in the order they came, send-aheads excepted (they may
//! overtake, which the network may do anyway). The gate also remembers where the log
//! ended after each write, so a durable frontier can be reported to the core as the
//! entry it reaches.

use crate::io::{CommitDecision, WriteId};
use raft_core::{Entry, LogIndex, Message, RequestId, Snapshot, Term};
use std::collections::VecDeque;

/// Something the core asked for that has an effect outside the node.
#[derive(Debug)]
pub(crate) enum Effect {
    /// A message.
    Send(Message),
    /// Committed entries for the state machine, and how the commit was decided (when
    /// observed).
    Apply(Vec<Entry>, Option<CommitDecision>),
    /// A confirmed read.
    ReadReady { id: RequestId, read_index: LogIndex },
    /// A snapshot that replaces the state machine.
    Install(Snapshot),
    /// Snapshots older than this one may go: the write that made it the durable one
    /// is durable.
    RetireSnapshots(raft_core::SnapshotMeta),
}

#[derive(Debug)]
struct Held {
    /// It may happen once the writes through this one are durable.
    needs: WriteId,
    effect: Effect,
}

/// Writes issued and made durable, and the effects waiting for them.
#[derive(Debug, Default)]
pub(crate) struct Gate {
    issued: WriteId,
    durable: WriteId,
    last_hard_state: WriteId,
    sync_in_flight: Option<WriteId>,
    held: VecDeque<Held>,
    /// Where the log ended after each log write not yet durable: (write, index, term).
    log_ends: VecDeque<(WriteId, LogIndex, Term)>,
}

impl Gate {
    /// The last write issued.
    pub(crate) fn issued(&self) -> WriteId {
        self.issued
    }

    /// Every write through this one is durable.
    pub(crate) fn durable(&self) -> WriteId {
        self.durable
    }

    /// How many effects wait for the disk.
    pub(crate) fn held(&self) -> usize {
        self.held.len()
    }

    /// Numbers a new write; `log_end` is where the log ends after it, for a log write.
    #[inline]
    pub(crate) fn issue(&mut self, hard_state: bool, log_end: Option<(LogIndex, Term)>) -> WriteId {
        self.issued += 1;
        if hard_state {
            self.last_hard_state = self.issued;
        }
        if let Some((index, term)) = log_end {
            self.log_ends.push_back((self.issued, index, term));
        }
        self.issued
    }

    /// Whether an effect may happen now: every write it waits for is durable and no
    /// effect it must follow is still held. `ahead`: a leader's send-ahead, which waits
    /// only for the hard state and may overtake held effects.
    #[inline]
    pub(crate) fn may_pass(&self, ahead: bool) -> bool {
        if ahead {
            self.last_hard_state <= self.durable
        } else {
            self.issued <= self.durable && self.held.is_empty()
        }
    }

    /// Holds an effect that may not happen yet (see [`Gate::may_pass`]).
    pub(crate) fn hold(&mut self, effect: Effect, ahead: bool) {
        let needs = if ahead { self.last_hard_state } else { self.issued };
        self.held.push_back(Held { needs, effect });
    }

    /// The writes through `through` are durable. Returns the log's end as of the
    /// newest durable log write, if one became durable.
    pub(crate) fn made_durable(&mut self, through: WriteId) -> Option<(LogIndex, Term)> {
        self.durable = self.durable.max(through.min(self.issued));
        if self.sync_in_flight.is_some_and(|in_flight| in_flight <= self.durable) {
            self.sync_in_flight = None;
        }
        let mut end = None;
        while self.log_ends.front().is_some_and(|&(write, _, _)| write <= self.durable) {
            let (_, index, term) = self.log_ends.pop_front().expect("front exists");
            end = Some((index, term));
        }
        end
    }

    /// Moves the effects that may happen now into `ready`, in order.
    pub(crate) fn release(&mut self, ready: &mut Vec<Effect>) {
        let durable = self.durable;
        // Waiting effects have non-decreasing needs, so this keeps their order; a
        // send-ahead behind them leaves as soon as its own need is met.
        let mut index = 0;
        while index < self.held.len() {
            if self.held[index].needs <= durable {
                ready.push(self.held.remove(index).expect("in range").effect);
            } else {
                index += 1;
            }
        }
    }

    /// A sync to ask for now, if writes are not durable and none is under way.
    pub(crate) fn sync_to_request(&mut self) -> Option<WriteId> {
        if self.sync_in_flight.is_some() || self.issued <= self.durable {
            return None;
        }
        self.sync_in_flight = Some(self.issued);
        Some(self.issued)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft_core::MessageBody;

    impl Gate {
        /// The effect back if it may happen now, else held.
        fn admit(&mut self, effect: Effect, ahead: bool) -> Option<Effect> {
            if self.may_pass(ahead) {
                return Some(effect);
            }
            self.hold(effect, ahead);
            None
        }
    }

    fn message(to: u64) -> Effect {
        Effect::Send(Message { from: 1, to, term: 1, body: MessageBody::TimeoutNow })
    }

    fn destinations(effects: &[Effect]) -> Vec<u64> {
        effects
            .iter()
            .map(|effect| match effect {
                Effect::Send(message) => message.to,
                _ => 0,
            })
            .collect()
    }

    #[test]
    fn effects_wait_for_the_writes_before_them_and_leave_in_order() {
        let mut gate = Gate::default();
        assert!(gate.admit(message(1), false).is_some(), "nothing written: at once");
        gate.issue(false, Some((1, 1)));
        assert!(gate.admit(message(2), false).is_none());
        gate.issue(false, Some((2, 1)));
        assert!(gate.admit(message(3), false).is_none());
        assert_eq!(gate.sync_to_request(), Some(2));
        assert_eq!(gate.sync_to_request(), None, "one sync at a time");
        assert_eq!(gate.made_durable(1), Some((1, 1)));
        let mut ready = Vec::new();
        gate.release(&mut ready);
        assert_eq!(destinations(&ready), vec![2]);
        assert_eq!(gate.made_durable(2), Some((2, 1)));
        gate.release(&mut ready);
        assert_eq!(destinations(&ready), vec![2, 3]);
        assert_eq!(gate.held(), 0);
    }

    #[test]
    fn a_send_ahead_waits_only_for_the_hard_state() {
        let mut gate = Gate::default();
        gate.issue(true, None);
        gate.issue(false, Some((1, 1)));
        assert!(gate.admit(message(1), true).is_none(), "the hard state is not durable");
        assert!(gate.admit(message(2), false).is_none());
        gate.made_durable(1);
        let mut ready = Vec::new();
        gate.release(&mut ready);
        assert_eq!(destinations(&ready), vec![1], "the send-ahead leaves before the write is durable");
        assert!(gate.admit(message(3), true).is_some(), "and so does a new one, past the held effect");
    }
}
