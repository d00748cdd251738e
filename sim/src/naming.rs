//! How the simulator names messages and panics in its reports: message kinds for flow
//! counts and violation texts, and the text a panic carried. A leaf of the module graph.

use raft_core::MessageBody;

/// The text a panic carried.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        text.to_string()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "a panic without a message".to_string()
    }
}

/// How many kinds of message there are (see [`message_kind`]).
pub(crate) const MESSAGE_KINDS: usize = 12;

/// The names of the message kinds, by [`message_kind`].
pub(crate) const MESSAGE_KIND_NAMES: [&str; MESSAGE_KINDS] = [
    "PreVote",
    "PreVoteResponse",
    "RequestVote",
    "RequestVoteResponse",
    "AppendEntries",
    "AppendEntriesResponse",
    "Heartbeat",
    "HeartbeatResponse",
    "InstallSnapshot",
    "TimeoutNow",
    "Removed",
    "SnapshotChunkResponse",
];

/// A message's kind as an index into [`MESSAGE_KIND_NAMES`].
pub(crate) fn message_kind(body: &MessageBody) -> usize {
    match body {
        MessageBody::RequestVote { pre_vote: true, .. } => 0,
        MessageBody::RequestVoteResponse { pre_vote: true, .. } => 1,
        MessageBody::RequestVote { .. } => 2,
        MessageBody::RequestVoteResponse { .. } => 3,
        MessageBody::AppendEntries { .. } => 4,
        MessageBody::AppendEntriesResponse { .. } => 5,
        MessageBody::Heartbeat { .. } => 6,
        MessageBody::HeartbeatResponse { .. } => 7,
        MessageBody::InstallSnapshot { .. } => 8,
        MessageBody::TimeoutNow => 9,
        MessageBody::Removed { .. } => 10,
        MessageBody::SnapshotChunkResponse { .. } => 11,
    }
}

/// A message's kind, for reports.
pub(crate) fn describe_message_kind(body: &MessageBody) -> &'static str {
    MESSAGE_KIND_NAMES[message_kind(body)]
}
