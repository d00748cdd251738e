//! What goes into the driver and what comes out: writes, syncs, sends and answers for
//! the IO layer, requests from clients, and observations for those who watch.

use raft_core::{
    Configuration, Entry, HardState, LogIndex, MembershipChange, Message, NodeId, RejectReason, RequestId,
    Role, Snapshot, Term,
};
use std::sync::Arc;

/// A write's place in the sequence of writes one driver issued, from 1. Writes become
/// durable in this order: "durable through N" covers every write up to N.
pub type WriteId = u64;

/// One write to stable storage, as the core asked for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Write {
    /// Replace the term and vote.
    HardState(HardState),
    /// Remove every log entry at or after `from`.
    Truncate {
        /// The first index removed.
        from: LogIndex,
    },
    /// Append entries directly after the current last entry.
    Entries(Vec<Entry>),
    /// Store a snapshot of this node's state machine and drop the entries it covers.
    Compact(Snapshot),
    /// Store a snapshot from the leader: drop the entries it covers, and the rest too
    /// unless the log agrees with it at its end.
    Install(Snapshot),
}

/// What the driver asks of its IO layer, and what it tells its clients, in order.
#[derive(Clone, Debug, PartialEq)]
pub enum Output<R> {
    /// Perform this write, after every write before it. It is not durable yet.
    Write {
        /// Its place in the sequence.
        id: WriteId,
        /// The write.
        write: Write,
    },
    /// Make every write up to `through` durable (fsync), then call
    /// [`crate::Driver::durable`] with `through`. At most one is outstanding: the next
    /// comes after that call, covering whatever was written meanwhile (group commit).
    Sync {
        /// The last write the sync must cover.
        through: WriteId,
    },
    /// Send a message to a peer, best effort (`raft_core::encode_message` gives the
    /// bytes). Losing, delaying, duplicating or reordering it is safe.
    Send(Message),
    /// The answer to request `request`.
    Answer {
        /// The request's id, as given to [`crate::Driver::submit`].
        request: RequestId,
        /// The answer.
        answer: Answer<R>,
    },
    /// The node cannot go on: its state machine refused a snapshot the core installed.
    /// Stop it and restart it from what is durable. Nothing else comes after this.
    Failed(String),
    /// Something an observer (the simulator's checkers, metrics) may want to know;
    /// only with [`crate::DriverConfig::observe`]. Nothing for the IO layer to do.
    Event(Event),
}

/// A client's request to the node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request<Q> {
    /// Append a command to the log; answered once it is applied here.
    Write(Vec<u8>),
    /// A linearizable read (ReadIndex, Raft thesis §6.4).
    Read(Q),
    /// A read of this node's state as it is now: at once, from any node, possibly stale.
    LocalRead(Q),
    /// Change the membership; answered once the change is applied here (a change of
    /// several voters once the configuration its joint entry leads to is). `context`
    /// travels in the change's entry and reaches [`crate::StateMachine::apply_entry`]
    /// when it commits, and only if the change is made (a new node's address, say).
    ChangeMembership {
        /// The change.
        change: MembershipChange,
        /// Bytes that travel with it (empty for none).
        context: Vec<u8>,
    },
    /// Hand leadership to a node; answered when the transfer starts.
    TransferLeadership(NodeId),
}

/// How a request ended. Every request gets exactly one answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer<R> {
    /// The write was committed at `index` and applied here; `response` is the state
    /// machine's answer.
    Applied {
        /// Where it was committed.
        index: LogIndex,
        /// The state machine's answer.
        response: R,
    },
    /// A read's answer.
    Read(R),
    /// A membership change was committed at `index` and is in force (for a change of
    /// several voters, `index` is that of the final configuration).
    Done {
        /// Where it was committed.
        index: LogIndex,
    },
    /// A leadership transfer has started; the new leader takes over if it can.
    Started,
    /// Certainly not done (this node is not the leader, a limit was hit, ...): it may be
    /// retried, at `leader_hint` if given.
    Refused {
        /// Why.
        reason: RejectReason,
        /// Where to retry, if this node knows a leader.
        leader_hint: Option<NodeId>,
    },
    /// It may or may not have happened (leadership was lost, or the request waited too
    /// long): retry. A write retried with the same session sequence applies once.
    Unknown {
        /// Where to retry, if this node knows a leader.
        leader_hint: Option<NodeId>,
    },
}

/// What an observer sees, in order with the outputs around it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The core's commit index changed (it only ever grows in a correct core).
    CommitChanged {
        /// The commit index after the step.
        commit: LogIndex,
    },
    /// The core's role changed.
    RoleChanged {
        /// The new role.
        role: Role,
        /// Its term.
        term: Term,
    },
    /// This node, as leader, advanced its commit index to `index` (of `term`), counting
    /// a quorum of `configuration` in `leader_term`: the moment an entry becomes committed.
    Committed {
        /// The new commit index.
        index: LogIndex,
        /// The term of the entry there.
        term: Term,
        /// The configuration whose quorum decided it.
        configuration: Arc<Configuration>,
        /// The leader's term.
        leader_term: Term,
    },
    /// A committed entry reached the state machine (no-ops and membership changes too).
    Applied {
        /// The entry.
        entry: Entry,
        /// How the node decided the commit.
        decision: CommitDecision,
        /// The state machine's fingerprint of its answer
        /// ([`crate::StateMachine::answer_fingerprint`]; 0 for entries without one).
        /// Deterministic replicas give equal fingerprints for the entry at an index.
        answer: u64,
    },
    /// The state machine was replaced by a snapshot from the leader.
    SnapshotInstalled {
        /// The snapshot.
        snapshot: Snapshot,
        /// The state machine's bytes of it, read back for the observer (the driver
        /// retires the file once a newer snapshot is durable, so it may be gone by the
        /// time an observer looks; the simulator's snapshots are small).
        data: Vec<u8>,
    },
    /// A linearizable read was answered at `read_index`, the state machine having
    /// applied up to `applied_index`.
    ReadServed {
        /// The read.
        request: RequestId,
        /// The commit index the read had to observe.
        read_index: LogIndex,
        /// What the state machine had applied when it answered.
        applied_index: LogIndex,
    },
}

/// What a node knew when it emitted an apply: the checkers judge the commit by it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommitDecision {
    /// The configuration whose quorum decided the commit (the node's then).
    pub configuration: Arc<Configuration>,
    /// The node's term if it was leader then: the term the entries were committed in.
    pub leader_term: Option<Term>,
}

/// A set of kinds of [`raft_core::Action`], as [`crate::Driver::last_input_did`] reports them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ActionKinds(u16);

/// The kinds of action, in the order of [`ActionKinds`]' bits.
const ACTION_KIND_NAMES: [&str; 14] = [
    "PersistHardState",
    "TruncateLog",
    "PersistEntries",
    "PersistSnapshot",
    "InstallSnapshot",
    "Send",
    "SendAhead",
    "Apply",
    "ProposalAccepted",
    "ReadReady",
    "Rejected",
    "RoleChanged",
    "SendSnapshotChunk",
    "StoreSnapshotChunk",
];

impl ActionKinds {
    /// Adds the kind of `action`.
    pub fn insert(&mut self, action: &raft_core::Action) {
        use raft_core::Action;
        let bit = match action {
            Action::PersistHardState(_) => 0,
            Action::TruncateLog { .. } => 1,
            Action::PersistEntries { .. } => 2,
            Action::PersistSnapshot { .. } => 3,
            Action::InstallSnapshot { .. } => 4,
            Action::Send(_) => 5,
            Action::SendAhead(_) => 6,
            Action::Apply { .. } => 7,
            Action::ProposalAccepted { .. } => 8,
            Action::ReadReady { .. } => 9,
            Action::Rejected { .. } => 10,
            Action::RoleChanged { .. } => 11,
            Action::SendSnapshotChunk { .. } => 12,
            Action::StoreSnapshotChunk { .. } => 13,
        };
        self.0 |= 1 << bit;
    }

    /// The names of the kinds in the set, in a fixed order.
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        ACTION_KIND_NAMES
            .iter()
            .enumerate()
            .filter(move |(bit, _)| self.0 & (1 << bit) != 0)
            .map(|(_, name)| *name)
    }

    /// The first kind in the set that is not a message send, if any.
    pub fn first_besides_sends(self) -> Option<&'static str> {
        self.names().find(|name| !matches!(*name, "Send" | "SendAhead"))
    }
}
