//! The invariants a run must keep, one checker per file, all behind [`Checkers`].
//!
//! Checkers see the run as the host sees it: roles the core reports, writes it issues,
//! what becomes durable, messages that leave, entries applied, reads answered. Each
//! one keeps only what its invariant needs and answers with a [`Violation`] the moment
//! the invariant breaks. None of them looks inside the core, so they judge any core.

mod committed_durable;
mod durable_promises;
mod durable_vote;
mod election_safety;
mod leader_completeness;
pub mod linearizability;
mod log_matching;
mod monotonic;
mod read_freshness;
mod stale_term;
mod state_machine_safety;

pub use committed_durable::CommittedDurable;
pub use durable_promises::DurablePromises;
pub use durable_vote::DurableVote;
pub use election_safety::ElectionSafety;
pub use leader_completeness::LeaderCompleteness;
pub use log_matching::LogMatching;
pub use monotonic::Monotonic;
pub use read_freshness::{PendingRead, ReadFreshness};
pub use stale_term::StaleTerm;
pub use state_machine_safety::{
    extend_prefix_digest, CommittedEntry, StateMachineSafety, EMPTY_PREFIX_DIGEST,
};

use crate::storage;
use raft_core::{DurableState, Entry, EntryPayload, LogIndex, NodeId, RaftNode, Term};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A broken invariant: which one, on which nodes, and what was seen.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    /// The invariant's name, e.g. "election safety".
    pub invariant: String,
    /// The nodes involved.
    pub nodes: Vec<NodeId>,
    /// What was seen, in words.
    pub detail: String,
}

impl Violation {
    /// A violation of `invariant` on `nodes`.
    pub fn new(invariant: &str, nodes: Vec<NodeId>, detail: String) -> Violation {
        Violation { invariant: invariant.to_string(), nodes, detail }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let nodes: Vec<String> = self.nodes.iter().map(|node| node.to_string()).collect();
        write!(f, "{} violated on node(s) {}: {}", self.invariant, nodes.join(", "), self.detail)
    }
}

/// What a checker answers.
pub type Check = Result<(), Violation>;

/// A read-only view of a log: what a checker needs to know about a node's entries.
pub trait LogView {
    /// The term of the entry at `index`, including the snapshot's last entry; `None`
    /// if the log does not hold it.
    fn term_at(&self, index: LogIndex) -> Option<Term>;
    /// The last index covered by the snapshot (0 if none).
    fn snapshot_index(&self) -> LogIndex;
}

impl LogView for RaftNode {
    fn term_at(&self, index: LogIndex) -> Option<Term> {
        RaftNode::term_at(self, index)
    }
    fn snapshot_index(&self) -> LogIndex {
        self.snapshot_meta().last_included_index
    }
}

impl LogView for DurableState {
    fn term_at(&self, index: LogIndex) -> Option<Term> {
        storage::term_at(self, index)
    }
    fn snapshot_index(&self) -> LogIndex {
        self.snapshot.as_ref().map_or(0, |snapshot| snapshot.meta.last_included_index)
    }
}

/// Whether `log` holds the entry at `index` with `term`, or a snapshot covering it.
/// A snapshot covers only committed entries, which state machine safety checks.
pub fn log_holds(log: &dyn LogView, index: LogIndex, term: Term) -> bool {
    index < log.snapshot_index() || log.term_at(index) == Some(term)
}

/// A fixed fingerprint of an entry's payload.
pub fn payload_digest(entry: &Entry) -> u64 {
    let mut hasher = crate::random::Fnv64::default();
    match &entry.payload {
        EntryPayload::Noop => hasher.number(0),
        EntryPayload::Command(bytes) => {
            hasher.number(1);
            hasher.bytes(bytes);
        }
        EntryPayload::MembershipChange(voters) => {
            hasher.number(2);
            voters.iter().for_each(|voter| hasher.number(*voter));
        }
    }
    hasher.finish()
}

/// Every checker of a run, fed by the simulator.
#[derive(Debug, Default)]
pub struct Checkers {
    /// One leader per term.
    pub election_safety: ElectionSafety,
    /// Equal (index, term) means equal prefixes.
    pub log_matching: LogMatching,
    /// Committed entries are in every later leader's log.
    pub leader_completeness: LeaderCompleteness,
    /// All nodes apply one sequence.
    pub state_machine_safety: StateMachineSafety,
    /// Terms, commit and applied indexes only move forward.
    pub monotonic: Monotonic,
    /// One vote per term, across restarts.
    pub durable_vote: DurableVote,
    /// What a message promises is durable when it leaves.
    pub durable_promises: DurablePromises,
    /// Committed entries are durable on a majority.
    pub committed_durable: CommittedDurable,
    /// Reads observe everything committed before them.
    pub read_freshness: ReadFreshness,
    /// Messages from older terms change nothing.
    pub stale_term: StaleTerm,
}
