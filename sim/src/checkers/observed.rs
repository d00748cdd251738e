//! What the checkers see: one enum of everything observed in a run, fed to them at one
//! place ([`super::Checkers::observe`]) as it happens, whatever part of the simulator
//! observed it (the cluster as it carries out a driver's outputs, the clients, the
//! nemesis). As TigerBeetle's replica events feed its checkers.

use crate::event_queue::Micros;
use raft_core::{Entry, HardState, LogIndex, Message, NodeId, RequestId, Role, Snapshot, Term};
use raft_host::{ActionKinds, CommitDecision};

/// One observation, borrowing what it is about.
#[derive(Clone, Copy, Debug)]
pub enum Observed<'a> {
    /// Node `node`'s commit index changed.
    CommitChanged {
        /// The node.
        node: NodeId,
        /// Its commit index now.
        commit: LogIndex,
    },
    /// Node `node`, in `term_before`, was given `message` from an older term, and its
    /// core asked for the kinds of action in `did`.
    StaleMessageHandled {
        /// The node.
        node: NodeId,
        /// The message.
        message: &'a Message,
        /// The node's term before it.
        term_before: Term,
        /// What the step asked for.
        did: ActionKinds,
    },
    /// Node `node`, in `term` with its log ending at (`last_term`, `last_index`), is
    /// about to step on a vote request (`message`).
    VoteRequestReceived {
        /// The node.
        node: NodeId,
        /// The request.
        message: &'a Message,
        /// The node's term before it.
        term: Term,
        /// The term of its last entry.
        last_term: Term,
        /// Its last index.
        last_index: LogIndex,
    },
    /// A node took a step in which it wrote to its disk (the disk has taken the writes).
    StepWrote {
        /// The node.
        node: NodeId,
    },
    /// A node's role changed.
    RoleChanged {
        /// The node.
        node: NodeId,
        /// The new role.
        role: Role,
        /// Its term.
        term: Term,
    },
    /// A node wrote its hard state (not durable yet).
    HardStateWritten {
        /// The node.
        node: NodeId,
        /// What it wrote.
        hard_state: HardState,
    },
    /// A node wrote entries after one of `previous_term` (unknown for a gap, which the
    /// disk refuses).
    EntriesWritten {
        /// The node.
        node: NodeId,
        /// The term of the entry before them, as written.
        previous_term: Option<Term>,
        /// The entries.
        entries: &'a [Entry],
    },
    /// A message left its sender.
    Sent {
        /// The message.
        message: &'a Message,
    },
    /// A leader advanced its commit index: `index` (of `term`) became committed by a
    /// quorum of `voters` in `leader_term`.
    Committed {
        /// The leader.
        node: NodeId,
        /// The new commit index.
        index: LogIndex,
        /// The term of the entry there.
        term: Term,
        /// The configuration whose quorum decided it.
        configuration: &'a std::sync::Arc<raft_core::Configuration>,
        /// The leader's term.
        leader_term: Term,
    },
    /// A committed entry reached a node's state machine.
    Applied {
        /// The node.
        node: NodeId,
        /// The entry.
        entry: &'a Entry,
        /// How the node decided the commit.
        decision: &'a CommitDecision,
        /// The fingerprint of the node's state machine's answer to it.
        answer: u64,
    },
    /// A node's state machine was replaced by a snapshot from the leader.
    SnapshotInstalled {
        /// The node.
        node: NodeId,
        /// The snapshot.
        snapshot: &'a Snapshot,
        /// Its state machine bytes.
        data: &'a [u8],
    },
    /// A client asked a node for a linearizable read.
    ReadAsked {
        /// The node.
        node: NodeId,
        /// The request.
        request: RequestId,
        /// When.
        at_micros: Micros,
    },
    /// A node answered a linearizable read.
    ReadServed {
        /// The node.
        node: NodeId,
        /// The request.
        request: RequestId,
        /// The commit index the read had to observe.
        read_index: LogIndex,
        /// What the node's state machine had applied.
        applied_index: LogIndex,
    },
    /// A node refused a request or gave up on it (it may have been a read).
    ReadDropped {
        /// The node.
        node: NodeId,
        /// The request.
        request: RequestId,
    },
    /// A sync completed on a node's disk; `removed_entries`: it made a truncation or a
    /// snapshot install durable, after which durable coverage can shrink.
    Synced {
        /// The node.
        node: NodeId,
        /// Whether entries left the durable log.
        removed_entries: bool,
    },
    /// A node received a notice that the configuration committed through
    /// `committed_through` leaves it out.
    RemovalNoticeReceived {
        /// The node.
        node: NodeId,
        /// The sender's commit index.
        committed_through: LogIndex,
    },
    /// A node crashed (its disk kept what was durable).
    Crashed {
        /// The node.
        node: NodeId,
    },
    /// A node restarted from its disk.
    Restarted {
        /// The node.
        node: NodeId,
    },
}
