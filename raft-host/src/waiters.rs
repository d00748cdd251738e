//! The clients' requests the driver has taken and not yet answered.
//!
//! A write or membership change is first submitted to the core, which accepts it at
//! an index (or refuses it at once); it is answered when the entry at that index is
//! applied here (applied, or unknown if another entry took its place), when this node
//! stops leading (unknown: the new leader may still commit it), or when it has waited
//! too long (unknown). A read waits for the core to confirm it, or to refuse it. Every
//! request ends in exactly one answer.

use crate::io::Answer;
use raft_core::{LogIndex, NodeId, RequestId, Term};
use std::collections::BTreeMap;

/// What an accepted request becomes when its entry is applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Write,
    Membership,
}

#[derive(Debug)]
struct Accepted {
    request: RequestId,
    term: Term,
    kind: Kind,
    since_tick: u64,
}

#[derive(Debug)]
struct PendingRead<Q> {
    query: Q,
    since_tick: u64,
}

/// Requests waiting for their answer.
#[derive(Debug)]
pub(crate) struct Waiters<Q> {
    /// Accepted writes and membership changes, by the index they were appended at.
    accepted: BTreeMap<LogIndex, Accepted>,
    /// Writes and membership changes submitted in the current step, not yet accepted.
    submitted: BTreeMap<RequestId, Kind>,
    /// Reads waiting for the core to confirm them.
    reads: BTreeMap<RequestId, PendingRead<Q>>,
    /// No request has waited since before this tick: [`Waiters::expire`] has nothing to
    /// look at until the oldest could be due (a lower bound, refreshed by each scan).
    oldest_since_tick: u64,
}

impl<Q> Default for Waiters<Q> {
    fn default() -> Self {
        Waiters {
            accepted: BTreeMap::new(),
            submitted: BTreeMap::new(),
            reads: BTreeMap::new(),
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
        self.submitted.insert(request, kind);
    }

    /// A read goes to the core.
    pub(crate) fn submit_read(&mut self, request: RequestId, query: Q, now_tick: u64) {
        self.oldest_since_tick = self.oldest_since_tick.min(now_tick);
        self.reads.insert(request, PendingRead { query, since_tick: now_tick });
    }

    /// The core accepted `request` at `index` in `term`. An older request still waiting
    /// at that index (from an earlier term of this node's) lost its entry: unknown.
    pub(crate) fn accepted<R>(
        &mut self,
        request: RequestId,
        index: LogIndex,
        term: Term,
        now_tick: u64,
        answers: &mut Vec<(RequestId, Answer<R>)>,
    ) {
        let Some(kind) = self.submitted.remove(&request) else {
            return;
        };
        self.oldest_since_tick = self.oldest_since_tick.min(now_tick);
        let accepted = Accepted { request, term, kind, since_tick: now_tick };
        if let Some(displaced) = self.accepted.insert(index, accepted) {
            answers.push((displaced.request, Answer::Unknown { leader_hint: None }));
        }
    }

    /// The core refused a write or membership change.
    pub(crate) fn refused_write(&mut self, request: RequestId) -> bool {
        self.submitted.remove(&request).is_some()
    }

    /// The core refused a read.
    pub(crate) fn refused_read(&mut self, request: RequestId) -> bool {
        self.reads.remove(&request).is_some()
    }

    /// The core confirmed a read: its query, if someone still waits for it.
    pub(crate) fn confirmed_read(&mut self, request: RequestId) -> Option<Q> {
        self.reads.remove(&request).map(|read| read.query)
    }

    /// The entry at `index` of `term` was applied. Returns who waited for it, how, and
    /// whether it is the entry they were accepted with.
    pub(crate) fn applied(&mut self, index: LogIndex, term: Term) -> Option<(RequestId, Kind, bool)> {
        let accepted = self.accepted.remove(&index)?;
        Some((accepted.request, accepted.kind, accepted.term == term))
    }

    /// Entries up to `index` were replaced by a snapshot: whoever waited on them cannot
    /// tell what happened.
    pub(crate) fn covered_by_snapshot<R>(
        &mut self,
        index: LogIndex,
        answers: &mut Vec<(RequestId, Answer<R>)>,
    ) {
        while let Some(entry) = self.accepted.first_entry() {
            if *entry.key() > index {
                break;
            }
            let accepted = entry.remove();
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
        for (_, accepted) in std::mem::take(&mut self.accepted) {
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
        let stale: Vec<LogIndex> = self
            .accepted
            .iter()
            .filter(|(_, accepted)| expired(accepted.since_tick))
            .map(|(index, _)| *index)
            .collect();
        for index in stale {
            let accepted = self.accepted.remove(&index).expect("listed");
            answers.push((accepted.request, Answer::Unknown { leader_hint }));
        }
        let stale: Vec<RequestId> = self
            .reads
            .iter()
            .filter(|(_, read)| expired(read.since_tick))
            .map(|(request, _)| *request)
            .collect();
        for request in stale {
            self.reads.remove(&request);
            answers.push((request, Answer::Unknown { leader_hint }));
        }
        let accepted = self.accepted.values().map(|accepted| accepted.since_tick);
        let reads = self.reads.values().map(|read| read.since_tick);
        self.oldest_since_tick = accepted.chain(reads).min().unwrap_or(u64::MAX);
    }
}
