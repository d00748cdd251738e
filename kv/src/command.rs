//! What clients send and what the store answers.

use crate::bytes::Bytes;
use crate::codec::{self, DecodeError};
use serde::{Deserialize, Serialize};

/// Identifies a client session.
pub type ClientId = u64;

/// A client's write number: 1, 2, 3…, reused by retries. 0 means "no session": the
/// command is applied every time it appears in the log and nothing is remembered.
pub type Sequence = u64;

/// A command as it travels through the log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Command {
    /// The client that sent it.
    pub client: ClientId,
    /// The client's sequence number for it (see [`Sequence`]).
    pub sequence: Sequence,
    /// What to do.
    pub operation: Operation,
}

impl Command {
    /// The command's bytes for a log entry.
    pub fn encode(&self) -> Vec<u8> {
        codec::encode(self)
    }

    /// Decodes untrusted bytes; never panics (see [`crate::MAX_ENCODED_BYTES`]).
    pub fn decode(bytes: &[u8]) -> Result<Command, DecodeError> {
        codec::decode(bytes)
    }
}

/// An operation on the store.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Operation {
    /// Sets `key` to `value`. Answers [`Response::Done`].
    Set {
        /// The key.
        key: Bytes,
        /// Its new value.
        value: Bytes,
    },
    /// Removes `key`. Answers [`Response::Deleted`].
    Delete {
        /// The key.
        key: Bytes,
    },
    /// Sets `key` to `new` (or removes it if `new` is `None`) only if its value is
    /// `expected` (`None`: absent). Answers [`Response::Swapped`].
    CompareAndSet {
        /// The key.
        key: Bytes,
        /// The value the key must hold for the swap to happen.
        expected: Option<Bytes>,
        /// What the key holds after a swap; `None` removes it.
        new: Option<Bytes>,
    },
    /// A read ordered through the log (the slow, always-linearizable way to read).
    Read(Query),
    /// Opens a client session, named by the index of the entry that carries this (an id
    /// never handed out again). Answers [`Response::SessionOpened`].
    OpenSession,
    /// The leader's log time and session policy: expires idle sessions on every replica
    /// at once (see [`crate::session`]). Put in the log by the leader, never by a
    /// client. Answers [`Response::Done`].
    Clock {
        /// The leader's log time, in milliseconds.
        now_ms: u64,
        /// The session policy from now on.
        policy: crate::session::SessionPolicy,
    },
}

/// A read of the store.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Query {
    /// The value of `key`. Answers [`Response::Value`].
    Get {
        /// The key.
        key: Bytes,
    },
    /// Keys in `[from, to)` (`to: None`: to the end) in key order, at most `limit` of
    /// them (0: no limit). Answers [`Response::Entries`].
    List {
        /// The first key that may be listed.
        from: Bytes,
        /// The first key past the range, if any.
        to: Option<Bytes>,
        /// The most entries to return; 0 for all.
        limit: u32,
    },
}

/// The store's answer to a command or query.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    /// A `Set` was applied.
    Done,
    /// A `Delete` was applied; whether the key existed.
    Deleted {
        /// Whether there was a value to remove.
        existed: bool,
    },
    /// A `CompareAndSet` was applied.
    Swapped {
        /// Whether the key held `expected` and now holds `new`.
        swapped: bool,
        /// The value before the operation.
        previous: Option<Bytes>,
    },
    /// A `Get`'s value (`None`: absent).
    Value(Option<Bytes>),
    /// A `List`'s entries, in key order.
    Entries(Vec<(Bytes, Bytes)>),
    /// An `OpenSession` was applied: the new session's client id.
    SessionOpened {
        /// The id to send the session's writes with.
        client: ClientId,
    },
    /// The command was not applied.
    Error(KvError),
}

/// Why a command was not applied.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KvError {
    /// The log entry does not hold a command (what the decoder said).
    Malformed(String),
    /// The client has already had a later command applied; this one is a late copy.
    StaleSequence {
        /// The client's last applied sequence number.
        last: Sequence,
    },
    /// The client has no session: it expired (unused for the idle timeout), was evicted
    /// (the table was full), or was never opened (`KV.SESSION` gives a client its id).
    SessionExpired {
        /// The client.
        client: ClientId,
    },
    /// An [`Operation::OpenSession`] applied without a log index to name the session by.
    OutsideTheLog,
}

impl std::fmt::Display for KvError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KvError::Malformed(why) => write!(f, "not a key-value command: {why}"),
            KvError::StaleSequence { last } => {
                write!(f, "a later command of this client (sequence {last}) was already applied")
            }
            KvError::SessionExpired { client } => write!(
                f,
                "client {client} has no session (it expired, was evicted, or was never opened); open a new one with KV.SESSION"
            ),
            KvError::OutsideTheLog => write!(f, "a session opens only through the log"),
        }
    }
}

impl std::error::Error for KvError {}
