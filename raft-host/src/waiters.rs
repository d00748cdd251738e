//! The clients' requests the driver has taken and not yet answered.
//!
//! A write or membership change is first submitted to the core, which accepts it at
//! an index (or refuses it at once); it is answered when the entry at that index is
//! applied here (applied, or unknown if another entry took its place), when this node
//! stops leading (unknown: the new leader may still commit it), or when it has waited
//! too long (unknown). A read waits for the core to confirm it, or to refuse it. Every
//! request ends in exactly one answer.
//!
//! The queues are short and ordered (a leader appends at increasing indexes and
//! applies in index order; reads are confirmed in the order they came), so they are
//! double-ended queues searched from the front rather than maps.

use crate::io::Answer;
use raft_core::{LogIndex, NodeId, RequestId, Term};
use std::collections::VecDeque;

/// What an accepted request becomes when its entry is applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Write,
    Membership,
}

#[derive(Debug)]
struct Accepted {
    index: LogIndex,
    request: RequestId,
    term: Term,
    kind: Kind,
    since_tick: u64,
}

#[derive(Debug)]
struct PendingRead<Q> {
    request: RequestId,
    query: Q,
    since_tick: u64,
}

/// Requests waiting for their answer.
#[derive(Debug)]
pub(crate) struct Waiters<Q> {
    /// Accepted writes and membership changes, by increasing index.
    accepted: VecDeque<Accepted>,
    /// Writes and membership changes submitted in the current step, not yet accepted
    /// (the core answers in the step that takes them, so at most a few).
    submitted: Vec<(RequestId, Kind)>,
    /// Reads waiting for the core to confirm them, oldest first.
    reads: VecDeque<PendingRead<Q>>,
    /// No request has waited since before this tick: [`Waiters::expire`] has nothing to
    /// look at until the oldest could be due (a lower bound, refreshed by each scan).
    oldest_since_tick: u64,
}

impl<Q> Default for Waiters<Q> {
    fn default() -> Self {
        Waiters {
            accepted: VecDeque::new(),
            submitted: Vec::new(),
            reads: VecDeque::new(),
            oldest_since_tick: u64::MAX,
        }
    }
}

impl<Q> Waiters<Q> {
    /// How many requests wait.
    pub(crate) fn len(&self) -> usize {
        self.accepted.len() + self.submitted.len() + self.reads.len()
    }

    /// A write or membership change goes to the core.
    pub(crate) fn submit(&mut self, request: RequestId, kind: Kind) {
        self.submitted.push((request, kind));
    }

    /// A read goes to the core.
    pub(crate) fn submit_read(&mut self, request: RequestId, query: Q, now_tick: u64) {
        self.oldest_since_tick = self.oldest_since_tick.min(now_tick);
        self.reads.push_back(PendingRead { request, query, since_tick: now_tick });
    }

    fn take_submitted(&mut self, request: RequestId) -> Option<Kind> {
        let position = self.submitted.iter().position(|&(submitted, _)| submitted == request)?;
        Some(self.submitted.swap_remove(position).1)
    }

    /// The core accepted `request` at `index` in `term`. Requests still waiting at that
    /// index or after (from an earlier term of this node's) lost their entries: unknown.
    pub(crate) fn accepted<R>(
        &mut self,
        request: RequestId,
        index: LogIndex,
        term: Term,
        now_tick: u64,
        answers: &mut Vec<(RequestId, Answer<R>)>,
    ) {
        let Some(kind) = self.take_submitted(request) else {
            return;
        };
        while self.accepted.back().is_some_and(|last| last.index >= index) {
            let displaced = self.accepted.pop_back().expect("checked");
            answers.push((displaced.request, Answer::Unknown { leader_hint: None }));
        }
        self.oldest_since_tick = self.oldest_since_tick.min(now_tick);
        self.accepted.push_back(Accepted { index, request, term, kind, since_tick: now_tick });
    }

    /// The core refused a write or membership change.
    pub(crate) fn refused_write(&mut self, request: RequestId) -> bool {
        self.take_submitted(request).is_some()
    }

    /// The core refused a read.
    pub(crate) fn refused_read(&mut self, request: RequestId) -> bool {
        self.take_read(request).is_some()
    }

    fn take_read(&mut self, request: RequestId) -> Option<Q> {
        let position = self.reads.iter().position(|read| read.request == request)?;
        self.reads.remove(position).map(|read| read.query)
    }

    /// The core confirmed a read: its query, if someone still waits for it.
    pub(crate) fn confirmed_read(&mut self, request: RequestId) -> Option<Q> {
        self.take_read(request)
    }

    /// The entry at `index` of `term` was applied. Returns who waited for it, how, and
    /// whether it is the entry they were accepted with. (Entries are applied in index
    /// order, so a waiter at a lower index was answered already.)
    pub(crate) fn applied(&mut self, index: LogIndex, term: Term) -> Option<(RequestId, Kind, bool)> {
        if self.accepted.front()?.index != index {
            return None;
        }
        let accepted = self.accepted.pop_front().expect("checked");
        Some((accepted.request, accepted.kind, accepted.term == term))
    }

    /// Entries up to `index` were replaced by a snapshot: whoever waited on them cannot
    /// tell what happened.
    pub(crate) fn covered_by_snapshot<R>(
        &mut self,
        index: LogIndex,
        answers: &mut Vec<(RequestId, Answer<R>)>,
    ) {
        while self.accepted.front().is_some_and(|first| first.index <= index) {
            let accepted = self.accepted.pop_front().expect("checked");
            answers.push((accepted.request, Answer::Unknown { leader_hint: None }));
        }
    }

    /// This node stopped leading: its accepted entries may or may not commit under the
    /// next leader.
    pub(crate) fn leadership_lost<R>(
        &mut self,
        leader_hint: Option<NodeId>,
        answers: &mut Vec<(RequestId, Answer<R>)>,
    ) {
        for accepted in self.accepted.drain(..) {
            answers.push((accepted.request, Answer::Unknown { leader_hint }));
        }
    }

    /// Answers unknown every request that has waited `timeout_ticks` or more.
    pub(crate) fn expire<R>(
        &mut self,
        now_tick: u64,
        timeout_ticks: u64,
        leader_hint: Option<NodeId>,
        answers: &mut Vec<(RequestId, Answer<R>)>,
    ) {
        if timeout_ticks == 0 || now_tick.saturating_sub(self.oldest_since_tick) < timeout_ticks {
            return;
        }
        let expired = |since: u64| now_tick.saturating_sub(since) >= timeout_ticks;
        self.accepted.retain(|accepted| {
            let keep = !expired(accepted.since_tick);
            if !keep {
                answers.push((accepted.request, Answer::Unknown { leader_hint }));
            }
            keep
        });
        self.reads.retain(|read| {
            let keep = !expired(read.since_tick);
            if !keep {
                answers.push((read.request, Answer::Unknown { leader_hint }));
            }
            keep
        });
        let accepted = self.accepted.iter().map(|accepted| accepted.since_tick);
        let reads = self.reads.iter().map(|read| read.since_tick);
        self.oldest_since_tick = accepted.chain(reads).min().unwrap_or(u64::MAX);
    }
}
