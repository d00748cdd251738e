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
//! Being built: the node loop and a handle that run any `raft_host::StateMachine`, so
//! an application embeds a replicated state machine without writing these again.
//! Today `kv-server` assembles them with its own node loop. Where it sits in the
//! project: `ARCHITECTURE.md` at the repository root.

pub mod disk;
pub mod transport;
