//! # raft-runtime: a node for any state machine, on tokio
//!
//! [`Node::start`] runs any `raft_host::StateMachine` as one node of a cluster: its
//! storage opened (`raft_storage` on `std::fs`), its port listening for peers, the
//! driver's loop running. The [`Node`] gives [`Handle`]s that submit requests (writes,
//! linearizable and local reads, membership changes, transfers), look at the driver
//! between rounds, and tell the node's role and leader. `examples/counter.rs` is a
//! replicated counter on three nodes in under 60 lines.
//!
//! Everything here moves things and decides nothing; the decisions are the driver's,
//! which the simulator tests:
//!
//! - the node loop (private): feeds the driver ticks, messages, requests and
//!   the disk's reports, and carries out its outputs in order.
//! - [`disk`]: the disk thread. It performs the driver's writes on `raft_storage` in
//!   order and reports "durable through N" only after the fsync returned; one sync
//!   covers every write issued while the previous one ran (group commit).
//! - [`transport`]: one TCP link per pair of nodes, carrying the core's messages as
//!   length-prefixed frames, with a handshake, reconnection and bounded queues.
//! - [`peer_auth`]: the handshake's bytes: each side proves the cluster secret with a
//!   challenge and an HMAC; the secret never crosses the wire.
//! - [`tls`]: rustls on the links (and on a caller's shared port), from PEM files.
//!
//! A program that shares its port between peers and its own clients (as `kv-server`
//! does for Redis clients) sets [`PeerListener::Caller`] and hands peer connections to
//! [`Handle::accept_peer`]; a state machine that records members' addresses in the log
//! gives an [`AddressBook`]. Where it sits in the project: `ARCHITECTURE.md` at the
//! repository root.

mod config;
pub mod disk;
mod handle;
mod leadership;
mod node;
mod node_loop;
pub mod peer_auth;
pub mod stats;
pub mod tls;
pub mod transport;

pub use config::{NodeConfig, PeerListener};
/// The driver a node runs: its snapshots are files in its data directory.
pub type NodeDriver<M> = raft_host::Driver<M, raft_storage::SnapshotFiles<raft_storage::StdFs>>;
pub use handle::{Handle, Look, Reply, Status};
pub use node::{AddressBook, Node, Recovered};
pub use peer_auth::ClusterSecret;
pub use raft_core::Role;
pub use tls::{BoxedStream, Tls};
