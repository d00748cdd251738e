//! Shape checks for incoming messages: what no correct peer could ever send.
//!
//! Checks that need the receiver's state (an acknowledged index beyond the leader's
//! log, say) live with the handlers; these need only the message.

use crate::config::MAX_ENTRIES_PER_MESSAGE_LIMIT;
use crate::message::{Message, MessageBody};
use crate::types::EntryPayload;

/// The largest term or log index a message may carry. No real cluster gets near it
/// (one term per nanosecond would take 146 years), and refusing more keeps every
/// `+ 1` on terms and indexes from overflowing after a hostile message is adopted.
pub const MAX_TERM_OR_INDEX: u64 = u64::MAX / 2;

fn out_of_range(values: &[u64]) -> bool {
    values.iter().any(|&value| value > MAX_TERM_OR_INDEX)
}

/// Returns why a message is malformed, or `None` if its shape is plausible.
pub(crate) fn malformed_reason(message: &Message) -> Option<&'static str> {
    let term = message.term;
    let numbers_out_of_range = match &message.body {
        MessageBody::RequestVote { last_log_index, last_log_term, .. } => {
            out_of_range(&[term, *last_log_index, *last_log_term])
        }
        MessageBody::AppendEntries { prev_log_index, prev_log_term, entries, leader_commit } => {
            let last_index = prev_log_index.saturating_add(entries.len() as u64);
            out_of_range(&[term, *prev_log_index, *prev_log_term, *leader_commit, last_index])
        }
        MessageBody::AppendEntriesResponse { index, reject_hint_index, reject_hint_term, .. } => {
            out_of_range(&[term, *index, *reject_hint_index, *reject_hint_term])
        }
        MessageBody::Heartbeat { commit, .. } => out_of_range(&[term, *commit]),
        MessageBody::InstallSnapshot { meta, total_bytes, offset, .. } => {
            out_of_range(&[term, meta.last_included_index, meta.last_included_term, *total_bytes, *offset])
        }
        MessageBody::SnapshotChunkResponse { last_included_index, received_bytes } => {
            out_of_range(&[term, *last_included_index, *received_bytes])
        }
        MessageBody::Removed { committed_through } => out_of_range(&[term, *committed_through]),
        MessageBody::RequestVoteResponse { .. }
        | MessageBody::HeartbeatResponse { .. }
        | MessageBody::TimeoutNow => out_of_range(&[term]),
    };
    if numbers_out_of_range {
        return Some("term or index beyond MAX_TERM_OR_INDEX");
    }
    match &message.body {
        MessageBody::RequestVote { last_log_term, .. } => {
            if term == 0 {
                return Some("vote request in term 0");
            }
            if *last_log_term >= term {
                return Some("candidate's last log term is not below its campaign term");
            }
        }
        MessageBody::AppendEntries { prev_log_index, prev_log_term, entries, .. } => {
            if term == 0 {
                return Some("append from a leader in term 0");
            }
            if *prev_log_term > term {
                return Some("prev_log_term above the leader's term");
            }
            if entries.len() as u64 > MAX_ENTRIES_PER_MESSAGE_LIMIT {
                return Some("absurd entry count");
            }
            if *prev_log_index == 0 && *prev_log_term != 0 {
                return Some("index 0 has term 0");
            }
            let mut expected_index = *prev_log_index;
            let mut previous_term = *prev_log_term;
            for entry in entries {
                expected_index = match expected_index.checked_add(1) {
                    Some(index) => index,
                    None => return Some("entry index overflows"),
                };
                if entry.index != expected_index {
                    return Some("entries not contiguous after prev_log_index");
                }
                if entry.term < previous_term || entry.term > term || entry.term == 0 {
                    return Some("entry terms not within the leader's history");
                }
                if let EntryPayload::MembershipChange { configuration, .. } = &entry.payload {
                    if !configuration.is_valid() {
                        return Some("membership entry with an invalid voter set");
                    }
                }
                previous_term = entry.term;
            }
        }
        MessageBody::Heartbeat { .. } | MessageBody::TimeoutNow => {
            if term == 0 {
                return Some("leader message in term 0");
            }
        }
        MessageBody::Removed { committed_through } => {
            if term == 0 || *committed_through == 0 {
                return Some("removal notice in term 0 or at index 0");
            }
        }
        MessageBody::InstallSnapshot { meta, configuration, total_bytes, offset, chunk } => {
            if term == 0 || meta.last_included_index == 0 || meta.last_included_term == 0 {
                return Some("snapshot at index or term 0");
            }
            if meta.last_included_term > term {
                return Some("snapshot term above the leader's term");
            }
            if !configuration.is_valid() {
                return Some("snapshot with an invalid voter set");
            }
            if offset.checked_add(chunk.len() as u64).is_none_or(|end| end > *total_bytes) {
                return Some("snapshot chunk beyond the snapshot's length");
            }
            if chunk.is_empty() && *offset < *total_bytes {
                return Some("empty snapshot chunk before the end");
            }
        }
        MessageBody::RequestVoteResponse { .. }
        | MessageBody::SnapshotChunkResponse { .. }
        | MessageBody::AppendEntriesResponse { .. }
        | MessageBody::HeartbeatResponse { .. } => {}
    }
    None
}
