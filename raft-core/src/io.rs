//! What goes into a node (`Input`), what comes out (`Action`), and what it is built from.

use crate::config::ConfigError;
use crate::membership::MembershipChange;
use crate::message::Message;
use crate::types::{Entry, HardState, LogIndex, NodeId, RequestId, Snapshot, SnapshotMeta, Term};
use std::fmt;
use std::sync::Arc;

/// Everything that can happen to a node. Feed inputs one at a time to [`crate::RaftNode::step`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// One unit of logical time passed. The host decides how long a tick is.
    Tick,
    /// A message arrived from a peer. It may be stale, duplicated or malformed.
    Message(Message),
    /// A client asks to append `command` to the log.
    Propose {
        /// Echoed in `ProposalAccepted` or `Rejected`.
        id: RequestId,
        /// The command, opaque to the core.
        command: Vec<u8>,
    },
    /// Clients ask to append several commands at once, in order: each is accepted or
    /// refused as an [`Input::Propose`] would be, and the accepted ones reach each
    /// follower together, in as few appends as the message limits allow, with one
    /// `PersistEntries` for them all. A host proposes the commands that arrived in one
    /// round this way (etcd, TiKV and dragonboat batch here too).
    ProposeBatch {
        /// Each command and the id echoed in its `ProposalAccepted` or `Rejected`.
        proposals: Vec<(RequestId, Vec<u8>)>,
    },
    /// Clients ask for several linearizable reads at once: each is refused or served
    /// as an [`Input::Read`] would be, and those that wait for leadership to be
    /// confirmed share one heartbeat round.
    ReadBatch {
        /// Each echoed in its `ReadReady` or `Rejected`.
        ids: Vec<RequestId>,
    },
    /// A client asks for a linearizable read.
    Read {
        /// Echoed in `ReadReady` or `Rejected`.
        id: RequestId,
    },
    /// Ask the leader to add or remove one voter (Raft thesis §4.1). Answered like a
    /// proposal: `ProposalAccepted` with the index of the membership entry, or `Rejected`.
    ChangeMembership {
        /// Echoed in `ProposalAccepted` or `Rejected`.
        id: RequestId,
        /// The change.
        change: MembershipChange,
        /// Bytes that travel in the change's entry (see `EntryPayload::MembershipChange`);
        /// at most `Config::max_command_bytes`.
        context: Arc<[u8]>,
    },
    /// Ask the leader to hand leadership to `to` (Raft thesis §3.10).
    TransferLeadership {
        /// The node that should become leader.
        to: NodeId,
    },
    /// The host made the node's writes durable up to the one that left `(index, term)`
    /// as the log's last entry (or its snapshot's end): every write the node asked for
    /// up to and including that one survives a crash now. A leader counts its own log
    /// toward a commit only this far (Raft thesis §10.2.1). A report for an entry the log
    /// no longer holds (truncated or replaced since) is stale and ignored.
    LogPersisted {
        /// The index of the log's last entry after the durable writes.
        index: LogIndex,
        /// Its term.
        term: Term,
    },
    /// The host has snapshotted its state machine at `up_to` (an applied index);
    /// entries up to there may be dropped (Raft paper §7).
    CompactLog {
        /// The last index the snapshot includes.
        up_to: LogIndex,
        /// The size of the snapshot the host keeps for it (what a follower receives).
        size_bytes: u64,
    },
}

/// What a node asks its host to do, in order. See the crate docs for the ordering duties.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Durably store the term and vote.
    PersistHardState(HardState),
    /// Durably remove every log entry at or after `from`.
    TruncateLog {
        /// The first index to remove.
        from: LogIndex,
    },
    /// Durably append entries directly after the current last entry.
    PersistEntries {
        /// The entries, contiguous.
        entries: Vec<Entry>,
    },
    /// Durably store a snapshot the host asked for (`Input::CompactLog`); entries up to
    /// it may then be dropped from storage.
    PersistSnapshot {
        /// The snapshot, as the host supplied it.
        snapshot: Snapshot,
    },
    /// A snapshot from the leader replaces the state machine and the log up to its
    /// index: durably store it, drop covered entries, and restore the state machine from it.
    InstallSnapshot {
        /// The snapshot to install.
        snapshot: Snapshot,
    },
    /// Send `message`, an `InstallSnapshot` whose `chunk` is empty, once the host has put
    /// in it the `length` bytes at its `offset` of the snapshot its `meta` names (this
    /// node's own, the one its last `PersistSnapshot` or `InstallSnapshot` named). Sent
    /// like `SendAhead`. The core never holds snapshot bytes (see `Snapshot`).
    SendSnapshotChunk {
        /// The message, all but its bytes.
        message: Message,
        /// How many bytes from `offset` go in it.
        length: u64,
    },
    /// Keep `bytes`, which start at `offset` of the snapshot ending at `meta` that the
    /// leader is sending. A chunk at offset 0 starts that snapshot afresh (dropping any
    /// partial one); chunks arrive in order, without gaps. Nothing to make durable: a
    /// node that restarts asks for the snapshot from the start. Once every byte is here,
    /// an `InstallSnapshot` names it.
    StoreSnapshotChunk {
        /// The snapshot the bytes belong to.
        meta: SnapshotMeta,
        /// Where they start in it.
        offset: u64,
        /// The bytes.
        bytes: Vec<u8>,
    },
    /// Send a message to a peer, once every write emitted before it is durable: it may
    /// promise them (a vote, an acknowledgement). May be lost; the protocol recovers.
    Send(Message),
    /// Send a leader's message (an append, a heartbeat, a snapshot, TimeoutNow) that
    /// promises nothing about the sender's log: it may leave before the entry writes
    /// emitted before it are durable, so the leader writes its log in parallel with
    /// replicating it (Raft thesis §10.2.1). Like every message, not before the hard
    /// state emitted before it is durable.
    SendAhead(Message),
    /// Apply committed entries to the state machine, in order. `Noop` entries carry nothing.
    Apply {
        /// Consecutive committed entries, starting just after the last applied one.
        entries: Vec<Entry>,
    },
    /// A proposal was appended to the leader's log at `index` in `term`. It is committed
    /// if and when an `Apply` hands over an entry with this index and term; an applied
    /// entry at `index` with another term means the proposal was lost.
    ProposalAccepted {
        /// The proposal's id.
        id: RequestId,
        /// Where it was appended.
        index: LogIndex,
        /// The leader's term.
        term: Term,
    },
    /// A read may be answered from the state machine once it has applied `read_index`
    /// (already true for a host that performs `Apply` actions in order).
    ReadReady {
        /// The read's id.
        id: RequestId,
        /// The commit index the read must observe.
        read_index: LogIndex,
    },
    /// A request cannot be served here. Includes the leader as known to this node.
    Rejected {
        /// Which request.
        request: Request,
        /// Why.
        reason: RejectReason,
        /// Where a client should retry, if this node knows a leader.
        leader_hint: Option<NodeId>,
    },
    /// The node's role changed. Informational: no duty for the host; observers (the
    /// simulator's checkers, metrics) rely on it.
    RoleChanged {
        /// The new role.
        role: Role,
        /// The term the role is held in.
        term: Term,
        /// The leader as known to this node.
        leader: Option<NodeId>,
    },
}

/// A node's role in its current term (Raft paper §5.1; PreCandidate from thesis §9.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Follows a leader, or waits for one.
    Follower,
    /// Asks whether it could win an election, without changing terms.
    PreCandidate,
    /// Campaigns for votes in a new term.
    Candidate,
    /// Leads its term.
    Leader,
}

/// Identifies the request a `Rejected` answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    /// `Input::Propose` with this id.
    Propose(RequestId),
    /// `Input::Read` with this id.
    Read(RequestId),
    /// `Input::ChangeMembership` with this id.
    ChangeMembership(RequestId),
    /// `Input::TransferLeadership`.
    TransferLeadership,
    /// `Input::CompactLog`.
    CompactLog,
}

/// Why a request was refused. All are expected conditions, not bugs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RejectReason {
    /// This node is not the leader; try `leader_hint`.
    NotLeader,
    /// The leader lost leadership before the read was confirmed.
    LeadershipLost,
    /// A leadership transfer is under way; proposals wait for the new leader.
    TransferInProgress,
    /// Too many entries await commit; back off.
    TooManyUncommitted,
    /// Too many reads await confirmation; back off.
    TooManyPendingReads,
    /// The command exceeds `Config::max_command_bytes`.
    CommandTooLarge,
    /// The named node is not a member of the cluster.
    UnknownPeer,
    /// Leadership can only go to a voter, and the named node is a learner.
    NotAVoter,
    /// Compaction must stop at or before the applied index, after the current snapshot.
    CompactionOutOfRange,
    /// A membership change is not committed yet, or this leader has not yet committed
    /// an entry of its term; changes go one at a time.
    MembershipChangeInProgress,
    /// The change changes nothing (adds a voter, removes a non-voter) or removes the last voter.
    InvalidMembershipChange,
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            RejectReason::NotLeader => "not the leader",
            RejectReason::LeadershipLost => "leadership lost before the request completed",
            RejectReason::TransferInProgress => "leadership transfer in progress",
            RejectReason::TooManyUncommitted => "too many uncommitted entries",
            RejectReason::TooManyPendingReads => "too many pending reads",
            RejectReason::CommandTooLarge => "command too large",
            RejectReason::UnknownPeer => "unknown peer",
            RejectReason::NotAVoter => "the node is not a voter",
            RejectReason::CompactionOutOfRange => "compaction index out of range",
            RejectReason::MembershipChangeInProgress => "a membership change is in progress",
            RejectReason::InvalidMembershipChange => "the membership change is not valid",
        };
        f.write_str(text)
    }
}

/// What a node restarts from: everything its host made durable.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DurableState {
    /// The last persisted term and vote.
    pub hard_state: HardState,
    /// The last persisted snapshot, if any. The host restores its state machine from it.
    pub snapshot: Option<Snapshot>,
    /// The persisted entries after the snapshot, contiguous.
    pub entries: Vec<Entry>,
}

/// Why a node could not be built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RestoreError {
    /// The configuration cannot work.
    Config(ConfigError),
    /// The durable log is not contiguous after the snapshot.
    NonContiguousLog {
        /// The index that was expected.
        expected: LogIndex,
        /// The index found.
        found: LogIndex,
    },
    /// An entry or the snapshot has a term above the persisted term, or terms decrease.
    InconsistentTerms {
        /// The first index where the terms are wrong.
        index: LogIndex,
    },
    /// The term or the last log index exceeds [`crate::MAX_TERM_OR_INDEX`].
    OutOfRange,
    /// The snapshot or a membership entry holds an empty, unsorted or duplicated voter set.
    InvalidVoterSet {
        /// The index of the snapshot or entry.
        index: LogIndex,
    },
}

impl fmt::Display for RestoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RestoreError::Config(error) => error.fmt(f),
            RestoreError::NonContiguousLog { expected, found } => {
                write!(f, "durable log is not contiguous: expected index {expected}, found {found}")
            }
            RestoreError::InconsistentTerms { index } => {
                write!(f, "durable log has inconsistent terms at index {index}")
            }
            RestoreError::OutOfRange => write!(f, "durable term or log index is out of range"),
            RestoreError::InvalidVoterSet { index } => {
                write!(f, "durable state has an invalid voter set at index {index}")
            }
        }
    }
}

impl std::error::Error for RestoreError {}

impl From<ConfigError> for RestoreError {
    fn from(error: ConfigError) -> Self {
        RestoreError::Config(error)
    }
}

/// Inputs the node ignored, by reason. Ignoring is the right response to each of
/// these; the counts let hosts and tests see that it happened.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Messages addressed to another node or from this node itself, and answers from
    /// nodes that are not voters this node tracks (votes, replication answers).
    pub ignored_unknown_peer: u64,
    /// Messages whose contents are impossible (term 0 from a leader, non-contiguous
    /// entries, an index beyond what we sent, absurd counts).
    pub ignored_malformed: u64,
    /// Messages from an older term.
    pub ignored_stale_term: u64,
    /// Responses that answer a request already superseded (stale or duplicated).
    pub ignored_stale_response: u64,
    /// Vote requests ignored because a leader was heard from recently (CheckQuorum).
    pub ignored_vote_in_lease: u64,
    /// Messages that can only come from a peer violating the protocol (a second leader
    /// in our term, a conflict below our commit index). A correct cluster never has any.
    pub protocol_violations: u64,
    /// `Input::LogPersisted` reports for an entry the log no longer holds (stale) or
    /// beyond its end (a host reporting what it never wrote).
    pub ignored_persistence_reports: u64,
    /// TimeoutNow from a leader to a node that may not campaign: one its configuration
    /// no longer counts as a voter, or one told it was removed (thesis §4.2.3). A leader
    /// that sent it started the transfer before the target's removal.
    pub ignored_timeout_now: u64,
}
