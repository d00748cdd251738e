//! Messages exchanged between nodes, and their untrusted-bytes codec.
//!
//! Every message carries the sender's term. The receiver applies the term rules of
//! Raft paper §5.1 before it looks at the body.

use crate::config::MAX_ENTRIES_PER_MESSAGE_LIMIT;
use crate::configuration::Configuration;
use crate::types::{Entry, LogIndex, NodeId, SnapshotMeta, Term};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A message from one node to another.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// The sender.
    pub from: NodeId,
    /// The receiver.
    pub to: NodeId,
    /// The sender's term (for a pre-vote request: the term it would campaign in).
    pub term: Term,
    /// What the message says.
    pub body: MessageBody,
}

/// The kinds of message of the protocol.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MessageBody {
    /// Asks for a vote (Raft paper §5.2) or, with `pre_vote`, asks whether a vote
    /// would be granted without anyone changing term (Raft thesis §9.6).
    RequestVote {
        /// A pre-vote: receivers answer but change neither term nor vote.
        pre_vote: bool,
        /// The campaign follows a leadership transfer, so receivers must not
        /// ignore it on the grounds that they heard from a leader recently.
        leadership_transfer: bool,
        /// The index of the candidate's last log entry.
        last_log_index: LogIndex,
        /// The term of the candidate's last log entry.
        last_log_term: Term,
    },
    /// The answer to `RequestVote`.
    RequestVoteResponse {
        /// Answers a pre-vote.
        pre_vote: bool,
        /// Whether the vote (or pre-vote) is granted.
        granted: bool,
    },
    /// Replicates entries and doubles as the leader's claim to the term (Raft paper §5.3).
    AppendEntries {
        /// The index of the entry immediately preceding `entries`.
        prev_log_index: LogIndex,
        /// The term of that entry.
        prev_log_term: Term,
        /// The entries to store, contiguous from `prev_log_index + 1`.
        entries: Vec<Entry>,
        /// The leader's commit index.
        leader_commit: LogIndex,
    },
    /// The answer to `AppendEntries` or `InstallSnapshot`.
    AppendEntriesResponse {
        /// Whether the consistency check passed.
        success: bool,
        /// On success: the last index the follower now holds that matches the leader.
        /// On rejection: the `prev_log_index` that was rejected.
        index: LogIndex,
        /// On rejection: the largest index at or below the rejected one whose term is
        /// at most the rejected `prev_log_term`, a hint for fast backtracking.
        reject_hint_index: LogIndex,
        /// The term of the follower's entry at `reject_hint_index` (0 if none).
        reject_hint_term: Term,
    },
    /// Keeps followers from campaigning, carries the commit index a follower may
    /// safely adopt, and confirms leadership for reads (Raft thesis §6.4).
    Heartbeat {
        /// The leader's commit index, capped at what the follower is known to hold.
        commit: LogIndex,
        /// The newest read round; the follower echoes it back.
        read_round: u64,
        /// The leader's tick when it sent this; echoed back so the leader knows from
        /// when a quorum has acknowledged it (the start of its read lease).
        leader_tick: u64,
    },
    /// The answer to `Heartbeat`; also how a node tells a stale leader its newer term.
    HeartbeatResponse {
        /// The read round being acknowledged.
        read_round: u64,
        /// The `leader_tick` of the heartbeat being acknowledged.
        leader_tick: u64,
    },
    /// One chunk of a snapshot that replaces a lagging follower's log prefix (Raft paper
    /// §7, Figure 13): the snapshot travels in chunks of at most
    /// `Config::max_snapshot_chunk_bytes`, each acknowledged (`SnapshotChunkResponse`)
    /// before the next leaves, so no message is bigger than a chunk. The follower
    /// installs once it holds every byte; after a loss it says how much it holds and the
    /// leader resumes there.
    InstallSnapshot {
        /// Where the snapshot ends in the log.
        meta: SnapshotMeta,
        /// The configuration in force at that point.
        configuration: Configuration,
        /// The length of the snapshot's data.
        total_bytes: u64,
        /// Where this chunk starts in the data.
        offset: u64,
        /// The bytes from `offset` on.
        chunk: Vec<u8>,
    },
    /// A follower holds the first `received_bytes` of the snapshot ending at
    /// `last_included_index`, and wants the rest (once it holds all of it, it installs
    /// and answers with `AppendEntriesResponse` instead).
    SnapshotChunkResponse {
        /// The snapshot the follower is receiving.
        last_included_index: LogIndex,
        /// How many bytes of its data the follower holds, from the start.
        received_bytes: u64,
    },
    /// Tells the transfer target to campaign at once (Raft thesis §3.10).
    TimeoutNow,
    /// Tells a node that the configuration committed through `committed_through` does
    /// not include it, so it stops campaigning (thesis §4.2.3). Sent by a leader when a
    /// removal commits and whenever a non-member asks for votes. Committed facts hold in
    /// every later term, so it is believed whatever the term it carries. A membership
    /// entry the receiver holds at or below that index is either committed, and so
    /// older than the configuration that left it out, or doomed to be truncated; only a
    /// later one (adding the node back) outranks the notice.
    Removed {
        /// The sender's commit index; its newest configuration is committed and at or
        /// below it.
        committed_through: LogIndex,
    },
}

/// The largest encoded message `decode_message` accepts, and the floor of
/// [`crate::Config::max_message_bytes`]. Bounds what a hostile length prefix can make the
/// decoder allocate.
pub const MAX_ENCODED_MESSAGE_BYTES: usize = 64 << 20;

/// The bound under which bincode decodes, as a type-level constant: the smallest step of
/// this ladder at or above the caller's limit (the input's length is checked against the
/// limit itself first, so a step above it only bounds what a lying length prefix inside
/// the message can claim).
fn decode_with_limit<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    limit: usize,
) -> Result<(T, usize), bincode::error::DecodeError> {
    let standard = bincode::config::standard();
    if limit <= MAX_ENCODED_MESSAGE_BYTES {
        bincode::serde::decode_from_slice(bytes, standard.with_limit::<MAX_ENCODED_MESSAGE_BYTES>())
    } else if limit <= 256 << 20 {
        bincode::serde::decode_from_slice(bytes, standard.with_limit::<{ 256 << 20 }>())
    } else {
        bincode::serde::decode_from_slice(bytes, standard.with_limit::<{ 1 << 30 }>())
    }
}

/// Encodes a message for the wire.
pub fn encode_message(message: &Message) -> Vec<u8> {
    // Encoding into a vector cannot fail: bincode applies the size limit only when
    // decoding. No correct node builds a message above its config's
    // `max_message_bytes` (entries are bounded by `max_bytes_per_message` and
    // `max_command_bytes`, snapshots travel in chunks), but one would encode and be
    // refused by the receiver's decoder.
    bincode::serde::encode_to_vec(message, bincode::config::standard()).expect("message encodes")
}

/// Decodes untrusted bytes into a message of at most [`MAX_ENCODED_MESSAGE_BYTES`]:
/// [`decode_message_within`] with the default limit.
pub fn decode_message(bytes: &[u8]) -> Result<Message, DecodeError> {
    decode_message_within(bytes, MAX_ENCODED_MESSAGE_BYTES)
}

/// Decodes untrusted bytes into a message of at most `limit` bytes (a receiver passes
/// its [`crate::Config::max_message_bytes`]). Never panics; allocation is bounded by the
/// limit. Trailing bytes and absurd entry counts are errors.
pub fn decode_message_within(bytes: &[u8], limit: usize) -> Result<Message, DecodeError> {
    if bytes.len() > limit {
        return Err(DecodeError::TooLarge { bytes: bytes.len(), limit });
    }
    let (message, read): (Message, usize) =
        decode_with_limit(bytes, limit).map_err(|error| DecodeError::Malformed(error.to_string()))?;
    if read != bytes.len() {
        return Err(DecodeError::TrailingBytes { extra: bytes.len() - read });
    }
    if let MessageBody::AppendEntries { entries, .. } = &message.body {
        if entries.len() as u64 > MAX_ENTRIES_PER_MESSAGE_LIMIT {
            return Err(DecodeError::TooManyEntries { count: entries.len() });
        }
    }
    Ok(message)
}

/// Why bytes could not be decoded into a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// The input exceeds the receiver's limit.
    TooLarge {
        /// The input's length.
        bytes: usize,
        /// The limit it exceeds.
        limit: usize,
    },
    /// The bytes are not a valid encoding (truncated, bad tag, over the size limit).
    Malformed(String),
    /// A valid message followed by bytes that belong to nothing.
    TrailingBytes {
        /// How many bytes were left over.
        extra: usize,
    },
    /// More entries than any configuration allows in one message.
    TooManyEntries {
        /// How many entries the message carried.
        count: usize,
    },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::TooLarge { bytes, limit } => {
                write!(f, "message of {bytes} bytes exceeds the {limit}-byte limit")
            }
            DecodeError::Malformed(reason) => write!(f, "malformed message: {reason}"),
            DecodeError::TrailingBytes { extra } => {
                write!(f, "message followed by {extra} unexpected bytes")
            }
            DecodeError::TooManyEntries { count } => write!(
                f,
                "message carries {count} entries, more than the limit of {MAX_ENTRIES_PER_MESSAGE_LIMIT}"
            ),
        }
    }
}

impl std::error::Error for DecodeError {}
