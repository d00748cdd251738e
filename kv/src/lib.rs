//! # kv: the replicated key-value state machine
//!
//! A deterministic, ordered key-value store (keys and values are byte strings,
//! [`Bytes`]) meant to sit behind a Raft log: every
//! replica applies the same committed commands in the same order and ends in the same
//! state, byte for byte. Where it sits in the project: `ARCHITECTURE.md` at the
//! repository root.
//!
//! ## The contract
//! - **Operations** ([`Operation`]): `Set`, `Delete`, `CompareAndSet` change state and go
//!   through the log as a [`Command`]; `Get` and `List` ([`Query`]) read it, either
//!   through the log or, linearizably, from a replica after a ReadIndex round.
//! - **Exactly once** ([`session`]): a client opens a session through the log
//!   ([`Operation::OpenSession`]; its id is that entry's index), then each command
//!   carries the id and a sequence number. A client has at most one write outstanding
//!   and numbers its writes 1, 2, 3…; a retry reuses the number. The store remembers
//!   each client's last sequence number and its result, so a retried command
//!   (duplicated in the log by a retry or a network duplicate) is answered with the
//!   first result and applied once. A command older than the last one applied for its
//!   client is refused with [`KvError::StaleSequence`]: its client has already moved
//!   on. Sessions expire through the log: the leader's [`Operation::Clock`] entries
//!   carry log time and the [`session::SessionPolicy`] (idle timeout, bound), so every
//!   replica drops the same sessions at the same entry; a client whose session is gone
//!   gets [`KvError::SessionExpired`].
//! - **Determinism**: only ordered collections (`BTreeMap`); no clock (time comes from
//!   clock entries in the log), no randomness. Equal command sequences give equal states and equal [`KvStore::snapshot`] bytes.
//! - **Untrusted bytes**: [`KvStore::apply_bytes`] decodes a log entry; bytes that are
//!   not a command give [`Response::Error`] with [`KvError::Malformed`] (applied as a
//!   no-op on every replica alike), never a panic. Decoding is bounded by
//!   [`MAX_ENCODED_BYTES`], so a hostile length prefix cannot make it allocate
//!   unbounded memory. [`KvStore::restore`] refuses a corrupt snapshot with an error.
//! - **The client protocol** ([`resp`]): RESP2 requests and replies, the command table,
//!   and [`resp::RespSession`], one client connection, sans-IO, that keeps a pipeline's
//!   commands in order; the server's sockets and the simulator's clients drive it.
//! - **Replication**: [`KvStore`] implements `raft_host::StateMachine`, so a node
//!   driver replicates it as it is: commands through the log, queries answered by
//!   linearizable or local reads, snapshots for compaction.
//!
//! ```
//! use kv::{Command, KvStore, Operation, Query, Response};
//!
//! let mut store = KvStore::default();
//! // The log's entry 7 opens a session: its id is 7.
//! let open = Command { client: 0, sequence: 0, operation: Operation::OpenSession };
//! assert_eq!(store.apply_bytes_at(7, &open.encode()), Response::SessionOpened { client: 7 });
//! let set = Command { client: 7, sequence: 1, operation: Operation::Set { key: "a".into(), value: "1".into() } };
//! let bytes = set.encode();
//! assert_eq!(store.apply_bytes_at(8, &bytes), Response::Done);
//! // A retry of the same command is answered from the session, not applied again.
//! assert_eq!(store.apply_bytes_at(9, &bytes), Response::Done);
//! assert_eq!(store.query(&Query::Get { key: "a".into() }), Response::Value(Some("1".into())));
//!
//! let restored = KvStore::restore(&store.snapshot()).unwrap();
//! assert_eq!(restored, store);
//! ```

mod bytes;
mod codec;
mod command;
pub mod glob;
mod replicated;
pub mod resp;
pub mod session;
mod store;

pub use bytes::Bytes;
pub use codec::{DecodeError, MAX_ENCODED_BYTES};
pub use command::{
    stamp, ClientId, Command, ExpireCondition, Expiry, KvError, Operation, Query, Response, Sequence,
    SetCondition,
};
pub use store::{KvStore, KEY_OVERHEAD_BYTES, MAX_KEYS_ANSWERED, MAX_VALUE_BYTES, SWEEP_PER_CLOCK};
