//! Identifiers and log entries shared by every part of the protocol.

use crate::configuration::Configuration;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Identifies one node of the cluster. Ids are chosen by the host and never reused.
pub type NodeId = u64;

/// A Raft term: a logical epoch with at most one leader (Raft paper §5.1).
pub type Term = u64;

/// A position in the replicated log. Index 0 is the empty prefix; the first entry is 1.
pub type LogIndex = u64;

/// An id the host attaches to a proposal or read so it can match the answer to the request.
pub type RequestId = u64;

/// One entry of the replicated log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The term of the leader that created the entry.
    pub term: Term,
    /// The entry's position in the log.
    pub index: LogIndex,
    /// What the entry carries.
    pub payload: EntryPayload,
}

/// What a log entry carries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EntryPayload {
    /// Appended by every new leader so it can commit an entry of its own term
    /// (Raft paper §5.4.2, §8). Hosts skip it when applying.
    Noop,
    /// An opaque command for the host's state machine. Shared, not copied: the same
    /// bytes go to the log, to every follower's message and to `Apply`.
    Command(#[serde(with = "shared_bytes")] Arc<[u8]>),
    /// A new configuration (Raft thesis §4.1, §4.3). It takes effect when appended.
    /// Hosts skip it when applying, or record it for their own bookkeeping.
    MembershipChange {
        /// The members from this entry on.
        configuration: Configuration,
        /// Opaque bytes the host attached to the change (etcd's `ConfChange.Context`):
        /// what the members must learn together with it, such as a new node's address.
        /// It reaches the state machine when the entry commits, and only if it does.
        context: Arc<[u8]>,
    },
}

impl Entry {
    /// Bytes the entry counts against `Config::max_bytes_per_message`.
    /// The fixed part approximates the encoded header so empty commands still count.
    pub fn size_bytes(&self) -> u64 {
        const HEADER_BYTES: u64 = 24;
        match &self.payload {
            EntryPayload::Noop => HEADER_BYTES,
            EntryPayload::Command(bytes) => HEADER_BYTES + bytes.len() as u64,
            EntryPayload::MembershipChange { configuration, context } => {
                HEADER_BYTES + 8 * configuration.members().len() as u64 + context.len() as u64
            }
        }
    }
}

/// The state a node must keep durable across restarts besides its log (Raft paper Figure 2).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HardState {
    /// The latest term the node has seen.
    pub term: Term,
    /// The candidate the node voted for in `term`, if any.
    pub voted_for: Option<NodeId>,
}

/// The position of the last entry a snapshot covers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotMeta {
    /// The index of the last entry the snapshot replaces.
    pub last_included_index: LogIndex,
    /// The term of that entry.
    pub last_included_term: Term,
}

/// A state machine snapshot that replaces the log prefix up to `meta.last_included_index`.
///
/// The core never holds the snapshot's bytes: the host keeps them (a file, named by
/// `meta`), the core names them. It asks the host for a chunk to send
/// (`Action::SendSnapshotChunk`), hands over each chunk that arrives
/// (`Action::StoreSnapshotChunk`), and says when they make a whole snapshot to install;
/// so a snapshot of any size takes no more of a node's memory than one chunk.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Where the snapshot ends in the log.
    pub meta: SnapshotMeta,
    /// The configuration in force at that point, since the entries that set it are gone.
    pub configuration: Configuration,
    /// How many bytes the host's snapshot is, as it travels to a follower.
    pub size_bytes: u64,
}

/// Entry bytes as one byte string. The encoding is the one `Arc<[u8]>`'s own serde impl
/// gives in bincode and JSON (a length, then the bytes; an array of numbers), but a
/// decoder that can lend the input's bytes (bincode from a slice) copies them once,
/// straight into the shared allocation, instead of into a vector and then again into
/// the `Arc`: a 64 MiB command arriving in a message is held twice, not three times.
mod shared_bytes {
    use serde::de::{Deserializer, Error, SeqAccess, Visitor};
    use serde::Serializer;
    use std::fmt;
    use std::sync::Arc;

    pub(super) fn serialize<S: Serializer>(bytes: &Arc<[u8]>, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(bytes)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Arc<[u8]>, D::Error> {
        deserializer.deserialize_bytes(SharedBytesVisitor)
    }

    struct SharedBytesVisitor;

    impl<'de> Visitor<'de> for SharedBytesVisitor {
        type Value = Arc<[u8]>;

        fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
            formatter.write_str("a byte string")
        }

        fn visit_bytes<E: Error>(self, bytes: &[u8]) -> Result<Arc<[u8]>, E> {
            Ok(Arc::from(bytes))
        }

        fn visit_byte_buf<E: Error>(self, bytes: Vec<u8>) -> Result<Arc<[u8]>, E> {
            Ok(Arc::from(bytes))
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Arc<[u8]>, A::Error> {
            // Formats without byte strings (JSON) give an array; its size hint is not
            // trusted for more than a small reservation.
            let mut bytes = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
            while let Some(byte) = seq.next_element()? {
                bytes.push(byte);
            }
            Ok(Arc::from(bytes))
        }
    }
}
