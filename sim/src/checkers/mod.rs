//! The invariants a run must keep, one checker per file, all behind [`Checkers`].
//!
//! Checkers see the run as the host sees it: roles the core reports, writes the driver
//! issues, what becomes durable, messages that leave, entries applied, reads answered.
//! All of it arrives as [`Observed`] events at one place, `Checkers::observe`
//! (`dispatch`), which hands each to the checkers it concerns. Each checker keeps only
//! what its invariant needs and answers with a [`Violation`] naming the [`Invariant`]
//! the moment it breaks. None of them looks inside the core, so they judge any core.

mod commit_rule;
mod committed_durable;
pub mod connection_order;
mod dispatch;
mod durable_promises;
mod durable_vote;
mod election_quorum;
mod election_safety;
mod leader_completeness;
pub mod linearizability;
mod log_image;
mod log_matching;
mod membership_rule;
mod membership_stats;
mod monotonic;
mod observed;
mod read_freshness;
mod removed_quiet;
mod stale_term;
mod state_machine_safety;
mod vote_rule;

pub use commit_rule::CommitRule;
pub use committed_durable::CommittedDurable;
pub use durable_promises::DurablePromises;
pub use durable_vote::DurableVote;
pub use election_quorum::ElectionQuorum;
pub use election_safety::ElectionSafety;
pub use leader_completeness::LeaderCompleteness;
pub use log_matching::LogMatching;
pub use membership_rule::MembershipRule;
pub use membership_stats::{MembershipStats, MembershipTally};
pub use monotonic::Monotonic;
pub use observed::Observed;
pub use read_freshness::{PendingRead, ReadFreshness};
pub use removed_quiet::RemovedQuiet;
pub use stale_term::StaleTerm;
pub use state_machine_safety::{
    extend_prefix_digest, CommittedEntry, StateMachineSafety, EMPTY_PREFIX_DIGEST,
};
pub use vote_rule::VoteRule;

use raft_core::{DurableState, Entry, EntryPayload, LogIndex, NodeId, RaftNode, Term};
use raft_host::durable_image;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Every rule a run can find broken. Repro files and reports spell each by its name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Invariant {
    /// At most one leader per term.
    #[serde(rename = "election safety")]
    ElectionSafety,
    /// Equal (index, term) means equal prefixes.
    #[serde(rename = "log matching")]
    LogMatching,
    /// Committed entries are in every later leader's log.
    #[serde(rename = "leader completeness")]
    LeaderCompleteness,
    /// Every node applies the same sequence (snapshots included).
    #[serde(rename = "state machine safety")]
    StateMachineSafety,
    /// Every replica answers the entry at an index as the first did: state machines
    /// that applied the same log are in the same state (determinism).
    #[serde(rename = "replicas agree")]
    ReplicaAgreement,
    /// A node's term never goes back.
    #[serde(rename = "monotonic term")]
    MonotonicTerm,
    /// A node's commit index never goes back.
    #[serde(rename = "monotonic commit index")]
    MonotonicCommitIndex,
    /// A node applies each entry once, in order.
    #[serde(rename = "monotonic applied index")]
    MonotonicAppliedIndex,
    /// A node's durable term never goes back.
    #[serde(rename = "monotonic durable term")]
    MonotonicDurableTerm,
    /// One vote per term, across restarts.
    #[serde(rename = "durable vote")]
    DurableVote,
    /// What a message promises is durable when it leaves.
    #[serde(rename = "durable promises")]
    DurablePromises,
    /// Committed entries are durable on a majority.
    #[serde(rename = "committed is durable")]
    CommittedDurable,
    /// The core's log is the log its writes describe (last entry and snapshot point).
    #[serde(rename = "log image")]
    LogImage,
    /// A vote or pre-vote is granted only to a log at least as up to date (§5.4.1).
    #[serde(rename = "vote rule")]
    VoteRule,
    /// A leader appends a configuration change only after committing an entry of its own
    /// term, only while no other change is in flight, and only by a safe step: one
    /// voter, or into and out of a joint configuration (thesis §4.1–§4.3).
    #[serde(rename = "membership change rule")]
    MembershipRule,
    /// A leader is elected by a quorum of its configuration (both halves when joint;
    /// learners never counted).
    #[serde(rename = "leader elected by a quorum")]
    ElectionQuorum,
    /// A node told that a committed configuration leaves it out stops campaigning.
    #[serde(rename = "removed nodes stay quiet")]
    RemovedQuiet,
    /// A leader advances its commit index only to an entry of its own term (Figure 8).
    #[serde(rename = "leader commits its own term")]
    CommitRule,
    /// Reads observe everything committed before them.
    #[serde(rename = "read freshness")]
    ReadFreshness,
    /// Messages from older terms change nothing.
    #[serde(rename = "stale term")]
    StaleTerm,
    /// The host's writes make sense and its state machine can read what it is given.
    #[serde(rename = "host contract")]
    HostContract,
    /// One of the core's own assertions fired.
    #[serde(rename = "core assertion")]
    CoreAssertion,
    /// A node restarts from what it made durable.
    #[serde(rename = "restart")]
    Restart,
    /// The healed cluster recovers within the bound (and no storm floods it).
    #[serde(rename = "liveness")]
    Liveness,
    /// A majority connected, running and unpaused for long enough commits what it holds.
    #[serde(rename = "availability")]
    Availability,
    /// Once a healed cluster follows one leader, no term changes unless asked for.
    #[serde(rename = "unprovoked election")]
    UnprovokedElection,
    /// A leader cut off from a quorum for longer than its election timeout steps down.
    #[serde(rename = "check quorum")]
    CheckQuorum,
    /// The client history has a linearization.
    #[serde(rename = "linearizability")]
    Linearizability,
    /// A connection's commands take effect in the order it sent them.
    #[serde(rename = "connection order")]
    ConnectionOrder,
    /// Every reply a client reads is well-formed RESP of the shape its command gets.
    #[serde(rename = "client protocol")]
    ClientProtocol,
    /// The linearizability search could not decide.
    #[serde(rename = "linearizability unknown")]
    LinearizabilityUnknown,
    /// The run was stopped before its verdict.
    #[serde(rename = "interrupted")]
    Interrupted,
}

impl Invariant {
    /// The name reports and repro files use.
    pub fn name(self) -> &'static str {
        match self {
            Invariant::ElectionSafety => "election safety",
            Invariant::LogMatching => "log matching",
            Invariant::LeaderCompleteness => "leader completeness",
            Invariant::StateMachineSafety => "state machine safety",
            Invariant::ReplicaAgreement => "replicas agree",
            Invariant::MonotonicTerm => "monotonic term",
            Invariant::MonotonicCommitIndex => "monotonic commit index",
            Invariant::MonotonicAppliedIndex => "monotonic applied index",
            Invariant::MonotonicDurableTerm => "monotonic durable term",
            Invariant::DurableVote => "durable vote",
            Invariant::DurablePromises => "durable promises",
            Invariant::CommittedDurable => "committed is durable",
            Invariant::LogImage => "log image",
            Invariant::CommitRule => "leader commits its own term",
            Invariant::MembershipRule => "membership change rule",
            Invariant::ElectionQuorum => "leader elected by a quorum",
            Invariant::RemovedQuiet => "removed nodes stay quiet",
            Invariant::VoteRule => "vote rule",
            Invariant::ReadFreshness => "read freshness",
            Invariant::StaleTerm => "stale term",
            Invariant::HostContract => "host contract",
            Invariant::CoreAssertion => "core assertion",
            Invariant::Restart => "restart",
            Invariant::Liveness => "liveness",
            Invariant::Availability => "availability",
            Invariant::UnprovokedElection => "unprovoked election",
            Invariant::CheckQuorum => "check quorum",
            Invariant::Linearizability => "linearizability",
            Invariant::ConnectionOrder => "connection order",
            Invariant::ClientProtocol => "client protocol",
            Invariant::LinearizabilityUnknown => "linearizability unknown",
            Invariant::Interrupted => "interrupted",
        }
    }
}

impl fmt::Display for Invariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl PartialEq<&str> for Invariant {
    fn eq(&self, name: &&str) -> bool {
        self.name() == *name
    }
}

/// A broken invariant: which one, on which nodes, and what was seen.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    /// The invariant.
    pub invariant: Invariant,
    /// The nodes involved.
    pub nodes: Vec<NodeId>,
    /// What was seen, in words.
    pub detail: String,
}

impl Violation {
    /// A violation of `invariant` on `nodes`.
    pub fn new(invariant: Invariant, nodes: Vec<NodeId>, detail: String) -> Violation {
        Violation { invariant, nodes, detail }
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
        durable_image::term_at(self, index)
    }
    fn snapshot_index(&self) -> LogIndex {
        durable_image::snapshot_index(self)
    }
}

/// Whether `log` holds the entry at `index` with `term`, or a snapshot covering it.
/// A snapshot covers only committed entries, which state machine safety checks.
pub fn log_holds(log: &dyn LogView, index: LogIndex, term: Term) -> bool {
    index < log.snapshot_index() || log.term_at(index) == Some(term)
}

/// A fixed fingerprint of an entry's payload.
pub fn payload_digest(entry: &Entry) -> u64 {
    let mut hasher = crate::random::Fingerprint::default();
    match &entry.payload {
        EntryPayload::Noop => hasher.number(0),
        EntryPayload::Command(bytes) => {
            hasher.number(1);
            hasher.bytes(bytes);
        }
        EntryPayload::MembershipChange { configuration, .. } => {
            hasher.number(2);
            for list in
                [configuration.incoming_voters(), configuration.outgoing_voters(), configuration.learners()]
            {
                hasher.number(list.len() as u64);
                list.iter().for_each(|node| hasher.number(*node));
            }
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
    /// Leaders commit only entries of their own term.
    pub commit_rule: CommitRule,
    /// A leader changes the configuration one change at a time, after a commit of its term.
    pub membership_rule: MembershipRule,
    /// Votes and pre-votes go only to logs at least as up to date.
    pub vote_rule: VoteRule,
    /// Leaders win with a quorum of their configuration's votes.
    pub election_quorum: ElectionQuorum,
    /// What the committed configuration changes did, for the run summary.
    pub membership: MembershipTally,
    /// Removed nodes, once told, stop campaigning.
    pub removed_quiet: RemovedQuiet,
    /// Reads observe everything committed before them.
    pub read_freshness: ReadFreshness,
    /// Messages from older terms change nothing.
    pub stale_term: StaleTerm,
    /// Leaders' commit decisions not yet matched by a first apply: (commit index,
    /// leader's term), increasing. They tell leader completeness in which term an entry
    /// was committed.
    commit_terms: std::collections::VecDeque<(LogIndex, Term)>,
}
