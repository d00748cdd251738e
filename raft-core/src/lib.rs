//! # raft-core: the Raft consensus protocol as a pure state machine
//!
//! This crate is deterministic and owns no IO: it never reads a clock, a file, a
//! socket, an environment variable or a global random number generator, and it spawns
//! no threads. A [`RaftNode`] is a function of its [`Config`], the [`DurableState`] it
//! was restarted from, a `u64` seed for its private ChaCha RNG (which only randomizes
//! election timeouts), and the sequence of [`Input`]s it is given. The same inputs
//! always produce the same [`Action`]s.
//!
//! How this crate fits with the node driver, the simulator and the server, and the
//! project's other contracts: `ARCHITECTURE.md` at the repository root.
//!
//! ## Inputs
//! One entry point, [`RaftNode::step`] (or [`RaftNode::step_into`] to reuse a buffer):
//! - [`Input::Tick`]: one unit of logical time. Election timeouts and heartbeats are
//!   counted in ticks; clock skew is modelled by ticking nodes at different rates.
//! - [`Input::Message`]: a message from a peer, possibly stale, duplicated, reordered
//!   or malformed. Bad messages are ignored and counted in [`Counters`], never a panic.
//! - [`Input::Propose`], [`Input::Read`]: client requests. A non-leader answers
//!   [`Action::Rejected`] with [`RejectReason::NotLeader`] and the leader it knows of.
//!   [`Input::ProposeBatch`] proposes several commands in one step: each is answered
//!   as alone, and the accepted ones are written together and reach each follower in
//!   one round of appends. A host that proposes what arrived in one round this way
//!   sends one append per follower instead of one per command. [`Input::ReadBatch`]
//!   does the same for reads: one heartbeat round confirms them all.
//! - [`Input::ChangeMembership`], [`Input::TransferLeadership`], [`Input::CompactLog`]:
//!   admin requests.
//! - [`Input::LogPersisted`]: the host's report that the node's writes are durable up
//!   to a given entry.
//!
//! ## Outputs
//! An ordered list of [`Action`]s: persist hard state, truncate or append log entries,
//! persist or install a snapshot, send a message (two kinds, below), apply committed
//! entries, answer a read, report a rejected or accepted request, and (informational)
//! report a role change.
//!
//! ## The host's duties, in order
//! 1. Perform the actions of one step **in the order given**; perform the writes
//!    (`PersistHardState`, `TruncateLog`, `PersistEntries`, `PersistSnapshot`,
//!    `InstallSnapshot`) in that order on storage.
//! 2. **Nothing that promises a write leaves before the write is durable.** An
//!    [`Action::Send`], an [`Action::Apply`] answered to a client and an
//!    [`Action::ReadReady`] answered take effect only once every write emitted before
//!    them is durable. This is what makes a granted vote or an append acknowledgement
//!    a promise that survives a crash (Raft paper §5.1, Figure 2: "updated on stable
//!    storage before responding to RPCs").
//! 3. An [`Action::SendAhead`] (a leader's append, heartbeat, snapshot or TimeoutNow)
//!    may leave before the *entry* writes emitted before it are durable, so the leader
//!    writes its log in parallel with sending it (Raft thesis §10.2.1); it still waits
//!    for the `PersistHardState` writes before it (the leader's term and vote).
//!    Treating it as a `Send` is always correct, only slower.
//! 4. **Report durability only once it is real**: after a sync, give the node
//!    [`Input::LogPersisted`] with the index and term of the log's last entry as of the
//!    last durable write. A leader counts its own log toward a commit only that far.
//!    A host may batch: issue writes, sync once, report once.
//! 5. Apply `Apply` entries to the state machine in order (skipping `Noop` payloads);
//!    on `InstallSnapshot`, replace the state machine with the snapshot's data.
//!    Snapshot bytes are the host's (see [`Snapshot`]): it writes its own before
//!    `Input::CompactLog` says how big they are, fills each
//!    [`Action::SendSnapshotChunk`] from them (sent like a `SendAhead`), and keeps each
//!    [`Action::StoreSnapshotChunk`] until the `InstallSnapshot` that completes it.
//! 6. Answer a `ReadReady` from the state machine after applying everything before it.
//! 7. Deliver messages best-effort: losing, delaying, duplicating or reordering them
//!    never breaks safety.
//! 8. After a crash, rebuild the node with [`RaftNode::new`] from exactly what was made
//!    durable (and the state machine from the persisted snapshot, if any). The node
//!    re-applies committed entries after the snapshot as it learns the commit index;
//!    everything it was built from counts as persisted.
//!
//! A host that syncs after every step, reports at once and then performs the rest is
//! always correct. The `raft-host` crate is such a host loop written once, sans-IO,
//! with group commit; the simulator and the server both run it.
//!
//! A proposal is committed when an `Apply` hands over an entry with the index and term
//! reported by [`Action::ProposalAccepted`]; a different term at that index means it
//! was lost and may be retried.
//!
//! ## What is implemented
//! Leader election with randomized timeouts (§5.2), PreVote and CheckQuorum (Raft
//! thesis §9.6, §6.2), log replication with the consistency check, fast backtracking,
//! flow control (message size limits, a bounded in-flight window, probe and pipelined
//! states), the commit rule for the current term (§5.4.2, Figure 8), ReadIndex and
//! optional lease-based reads (thesis §6.4), leadership transfer (thesis §3.10),
//! log compaction with snapshot transfer in chunks that resume after a loss (§7,
//! Figure 13; `Config::max_snapshot_chunk_bytes`), and membership changes with learners
//! and joint consensus (thesis §4.1–§4.3) through [`Input::ChangeMembership`].
//!
//! ## Membership
//! A [`Configuration`] names the voters and the learners (members that receive the
//! log and snapshots but never vote or count toward a quorum). `Config::voters` and
//! `Config::learners` are the bootstrap configuration. A membership entry in the log
//! replaces it from the moment it is appended, and is undone if truncated; snapshots
//! carry the configuration in force at their end. To add a server, start it with a
//! `Config` that lists the voters and itself among the learners, ask the leader for
//! [`MembershipChange::AddLearner`], and once it has caught up for
//! [`MembershipChange::AddVoter`] (or add it as a voter at once, listing it among the
//! voters of its own `Config`). [`MembershipChange::SetMembers`] makes any change in
//! one request: a change of more than one voter goes through a joint configuration
//! (the old and the new voters each need a majority) that the leader leaves by itself
//! once it commits. One change is in flight at a time, and a leader makes none before
//! it has committed an entry of its term.
//!
//! A removed server ([`MembershipChange::RemoveNode`], or left out by `SetMembers`) is
//! no longer replicated to; when the change commits, and whenever it asks for votes
//! later, the leader tells it (`MessageBody::Removed`), and it stops campaigning until
//! its log holds a later change that adds it back. The host may stop it then.

//! Internal invariants are checked with `assert!`, which stays on in every build.
//!
//! ## Example: a host loop for a single-node cluster
//! ```
//! use raft_core::{Action, Config, DurableState, EntryPayload, Input, RaftNode, Role};
//!
//! let mut node = RaftNode::new(Config::new(1, vec![1]), DurableState::default(), 42).unwrap();
//! let mut durable = DurableState::default();
//! let mut applied = Vec::new();
//! let mut perform = |actions: Vec<Action>, durable: &mut DurableState| {
//!     for action in actions {
//!         match action {
//!             Action::PersistHardState(hard_state) => durable.hard_state = hard_state,
//!             Action::TruncateLog { from } => durable.entries.retain(|entry| entry.index < from),
//!             Action::PersistEntries { entries } => durable.entries.extend(entries),
//!             // A real host syncs its writes here, before anything leaves the node.
//!             Action::Apply { entries } => applied.extend(entries),
//!             _ => {}
//!         }
//!     }
//! };
//! // Each step's writes are durable at once here: report them, and perform what that causes.
//! let mut step = |node: &mut RaftNode, input: Input, durable: &mut DurableState| {
//!     perform(node.step(input), durable);
//!     let report = Input::LogPersisted { index: node.last_index(), term: node.last_term() };
//!     perform(node.step(report), durable);
//! };
//! // Tick until the election timeout fires; alone, the node elects itself.
//! while node.role() != Role::Leader {
//!     step(&mut node, Input::Tick, &mut durable);
//! }
//! step(&mut node, Input::Propose { id: 1, command: b"set x 1".to_vec() }, &mut durable);
//! assert_eq!(node.commit_index(), 2); // the leader's no-op, then the command
//! assert!(matches!(applied[1].payload, EntryPayload::Command(ref bytes) if &bytes[..] == b"set x 1"));
//!
//! // After a crash, the node restarts from exactly what was made durable.
//! let restarted = RaftNode::new(Config::new(1, vec![1]), durable, 43).unwrap();
//! assert_eq!(restarted.last_index(), 2);
//! ```

mod config;
mod configuration;
mod election;
mod io;
mod log;
mod membership;
mod message;
mod node;
mod persistence;
mod progress;
mod quorum;
mod reads;
mod receive;
mod replication;
mod requests;
mod snapshot_transfer;
mod types;
mod validate;

#[cfg(test)]
mod tests;

pub use config::{
    Config, ConfigError, ReadMode, MAX_COMMAND_BYTES_LIMIT, MAX_ENTRIES_PER_MESSAGE_LIMIT,
    MAX_SNAPSHOT_CHUNK_LIMIT,
};
pub use configuration::{Configuration, ConfigurationError, VoteResult};
pub use io::{Action, Counters, DurableState, Input, RejectReason, Request, RestoreError, Role};
pub use membership::MembershipChange;
pub use message::{
    decode_message, decode_message_within, encode_message, DecodeError, Message, MessageBody,
    MAX_ENCODED_MESSAGE_BYTES,
};
pub use node::RaftNode;
pub use types::{Entry, EntryPayload, HardState, LogIndex, NodeId, RequestId, Snapshot, SnapshotMeta, Term};
pub use validate::MAX_TERM_OR_INDEX;
