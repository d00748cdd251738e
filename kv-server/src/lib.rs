//! # kv-server: the replicated key-value server
//!
//! The same node driver the simulator tests ([`raft_host::Driver`]), run for real: TCP
//! between nodes, a write-ahead log on disk, clients over the Redis protocol. This
//! crate only moves bytes and reports fsyncs; every decision about ordering, waiting
//! clients and compaction is the driver's.
//!
//! - Storage is `raft_storage` on `std::fs`: the segmented write-ahead log, the hard
//!   state and snapshot files, and recovery, the code the simulator runs on its
//!   crashing in-memory file system.
//! - [`server`]: the process: a `raft_runtime` node (its loop, disk thread and peer
//!   links) with the client port it shares with peers, the connections and `INFO`.
//! - The client protocol (RESP2, the commands, the per-connection session that keeps
//!   pipelined commands in order) is `kv::resp`, sans-IO, where the simulator runs it
//!   too; `server`'s connection task only moves its bytes.
//! - [`machine`]: the replicated state machine (the `kv` store and the address book).
//! - [`config`]: `--node host:port:id` and cluster files.
//!
//! How it fits the rest of the project: `ARCHITECTURE.md` at the repository root.

pub mod client;
pub mod cluster;
pub mod config;
pub mod machine;
pub mod server;
