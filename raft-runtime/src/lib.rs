//! # raft-runtime: the tokio side of a node
//!
//! Everything a `raft_host::Driver` needs from the real world that decides nothing:
//!
//! - [`disk`]: the disk thread. It performs the driver's writes on `raft_storage` in
//!   order and reports "durable through N" only after the fsync returned; one sync
//!   covers every write issued while the previous one ran (group commit).
//! - [`transport`]: one TCP link per pair of nodes, carrying the core's messages as
//!   length-prefixed frames, with a handshake, reconnection and bounded queues; what
//!   arrives goes to a channel the node loop reads.
//!
//! - [`node`]: [`Node::start`] runs any `raft_host::StateMachine` as one node of a
//!   cluster (its storage opened, its port listening for peers, the driver's loop
//!   running) and returns a [`Node`] that submits requests (writes, linearizable and
//!   local reads, membership changes, transfers) and tells the node's role and leader.
//!   `examples/counter.rs` is a replicated counter on three nodes in 56 lines.
//!
//! `kv-server` still assembles the disk thread and the links with a node loop of its
//! own (it shares one port between peers and Redis clients, and keeps an address book
//! in its state machine); moving it onto [`Node`] is the next step. Where it sits in
//! the project: `ARCHITECTURE.md` at the repository root.

pub mod disk;
pub mod node;
pub mod transport;

pub use node::{Node, NodeConfig, Status};
pub use raft_core::Role;
