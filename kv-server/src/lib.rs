//! # kv-server: the replicated key-value server
//!
//! The same node driver the simulator tests ([`raft_host::Driver`]), run for real: TCP
//! between nodes, a write-ahead log on disk, clients over the Redis protocol. This
//! crate only moves bytes and reports fsyncs; every decision about ordering, waiting
//! clients and compaction is the driver's.
//!
//! - [`storage`]: the segmented write-ahead log, the hard state and snapshot files, and
//!   recovery.
//! - [`server`]: the process: the node loop, the disk thread, peer links, the client port.
//! - [`resp`] and [`commands`]: RESP2 and the commands clients send.
//! - [`machine`]: the replicated state machine (the `kv` store and the address book).
//! - [`config`]: `--node host:port:id` and cluster files.
//!
//! How it fits the rest of the project: `ARCHITECTURE.md` at the repository root.

pub mod client;
pub mod cluster;
pub mod command_table;
pub mod commands;
pub mod config;
pub mod machine;
pub mod resp;
pub mod server;
pub mod storage;
