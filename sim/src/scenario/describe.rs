//! How a scenario prints messages, logs and nodes: short, stable, one line each.

use raft_core::{Entry, EntryPayload, Message, MessageBody, RaftNode, Role};

/// `index@term` runs of a log, e.g. `1-3@1 4@2` (`[]` for none).
pub fn entries(entries: impl IntoIterator<Item = (u64, u64)>) -> String {
    let mut runs: Vec<(u64, u64, u64)> = Vec::new();
    for (index, term) in entries {
        match runs.last_mut() {
            Some((_, last, run_term)) if *run_term == term && *last + 1 == index => *last = index,
            _ => runs.push((index, index, term)),
        }
    }
    if runs.is_empty() {
        return "[]".to_string();
    }
    runs.iter()
        .map(
            |&(first, last, term)| {
                if first == last {
                    format!("{first}@{term}")
                } else {
                    format!("{first}-{last}@{term}")
                }
            },
        )
        .collect::<Vec<_>>()
        .join(" ")
}

fn entry_list(list: &[Entry]) -> String {
    let kinds: String = list
        .iter()
        .filter_map(|entry| match &entry.payload {
            EntryPayload::MembershipChange { configuration, .. } => {
                Some(format!(" {}@{}", described(configuration, ""), entry.index))
            }
            _ => None,
        })
        .collect();
    if list.is_empty() {
        return "[]".to_string();
    }
    format!("[{}]{kinds}", entries(list.iter().map(|entry| (entry.index, entry.term))))
}

/// A message as one line: `1->2 AppendEntries t2 prev=3@1 [4@2] commit=3`.
pub fn message(message: &Message) -> String {
    let head = format!("{}->{}", message.from, message.to);
    let term = message.term;
    let body = match &message.body {
        MessageBody::RequestVote { pre_vote, leadership_transfer, last_log_index, last_log_term } => format!(
            "{} t{term} last={last_log_index}@{last_log_term}{}",
            if *pre_vote { "PreVote" } else { "RequestVote" },
            if *leadership_transfer { " transfer" } else { "" }
        ),
        MessageBody::RequestVoteResponse { pre_vote, granted } => format!(
            "{} t{term} {}",
            if *pre_vote { "PreVoteResponse" } else { "VoteResponse" },
            if *granted { "granted" } else { "rejected" }
        ),
        MessageBody::AppendEntries { prev_log_index, prev_log_term, entries, leader_commit } => format!(
            "AppendEntries t{term} prev={prev_log_index}@{prev_log_term} {} commit={leader_commit}",
            entry_list(entries)
        ),
        MessageBody::AppendEntriesResponse { success: true, index, .. } => {
            format!("AppendResponse t{term} match={index}")
        }
        MessageBody::AppendEntriesResponse { success: false, index, reject_hint_index, reject_hint_term } => {
            format!("AppendResponse t{term} reject={index} hint={reject_hint_index}@{reject_hint_term}")
        }
        MessageBody::Heartbeat { commit, read_round, .. } => {
            format!("Heartbeat t{term} commit={commit} round={read_round}")
        }
        MessageBody::HeartbeatResponse { read_round, .. } => {
            format!("HeartbeatResponse t{term} round={read_round}")
        }
        MessageBody::InstallSnapshot { meta, configuration, total_bytes, offset, chunk } => {
            // A snapshot in one chunk prints as it always did; chunks say which bytes.
            let bytes = if chunk.len() as u64 == *total_bytes {
                String::new()
            } else {
                format!(" bytes={offset}..{}/{total_bytes}", offset + chunk.len() as u64)
            };
            format!(
                "InstallSnapshot t{term} through={}@{} {}{bytes}",
                meta.last_included_index,
                meta.last_included_term,
                described(configuration, "=")
            )
        }
        MessageBody::SnapshotChunkResponse { last_included_index, received_bytes } => {
            format!("SnapshotChunkResponse t{term} through={last_included_index} received={received_bytes}")
        }
        MessageBody::TimeoutNow => format!("TimeoutNow t{term}"),
        MessageBody::Removed { committed_through } => {
            format!("Removed t{term} committed={committed_through}")
        }
    };
    format!("{head} {body}")
}

/// A message's kind, as scripts name it in filters (`kind=AppendEntries`).
pub fn kind(message: &Message) -> &'static str {
    match &message.body {
        MessageBody::RequestVote { pre_vote: true, .. } => "PreVote",
        MessageBody::RequestVote { pre_vote: false, .. } => "RequestVote",
        MessageBody::RequestVoteResponse { pre_vote: true, .. } => "PreVoteResponse",
        MessageBody::RequestVoteResponse { pre_vote: false, .. } => "VoteResponse",
        MessageBody::AppendEntries { .. } => "AppendEntries",
        MessageBody::AppendEntriesResponse { .. } => "AppendResponse",
        MessageBody::Heartbeat { .. } => "Heartbeat",
        MessageBody::HeartbeatResponse { .. } => "HeartbeatResponse",
        MessageBody::InstallSnapshot { .. } => "InstallSnapshot",
        MessageBody::TimeoutNow => "TimeoutNow",
        MessageBody::Removed { .. } => "Removed",
        MessageBody::SnapshotChunkResponse { .. } => "SnapshotChunkResponse",
    }
}

/// A role's name.
pub fn role(role: Role) -> &'static str {
    match role {
        Role::Follower => "follower",
        Role::PreCandidate => "pre-candidate",
        Role::Candidate => "candidate",
        Role::Leader => "leader",
    }
}

/// A node's state: `leader t2 commit=3 applied=3 log=1-3@1 4@2 voters=1,2,3`, with
/// `learners=..` and `leaving=..` (the outgoing voters of a joint change) when any.
pub fn node(core: &RaftNode, applied: u64) -> String {
    let snapshot = core.snapshot_meta();
    let first = snapshot.last_included_index + 1;
    let log = entries(
        (first..=core.last_index()).filter_map(|index| core.term_at(index).map(|term| (index, term))),
    );
    let snapshot = if snapshot.last_included_index > 0 {
        format!(" snapshot={}@{}", snapshot.last_included_index, snapshot.last_included_term)
    } else {
        String::new()
    };
    let leader = core.leader().map_or("none".to_string(), |leader| leader.to_string());
    let list = |nodes: &[u64]| nodes.iter().map(u64::to_string).collect::<Vec<_>>().join(",");
    let configuration = core.configuration();
    let mut members = format!("voters={}", list(configuration.incoming_voters()));
    if !configuration.learners().is_empty() {
        members += &format!(" learners={}", list(configuration.learners()));
    }
    if configuration.is_joint() {
        members += &format!(" leaving={}", list(configuration.outgoing_voters()));
    }
    format!(
        "{} t{} leader={leader} commit={} applied={applied}{snapshot} log={log} {members}",
        role(core.role()),
        core.term(),
        core.commit_index(),
    )
}

/// A configuration as transcripts show it: `voters[1, 2, 3]` (with `equals` "=":
/// `voters=[1, 2, 3]`), then learners and the voters being left when it has any.
fn described(configuration: &raft_core::Configuration, equals: &str) -> String {
    let mut text = format!("voters{equals}{:?}", configuration.incoming_voters());
    if !configuration.learners().is_empty() {
        text += &format!(" learners{equals}{:?}", configuration.learners());
    }
    if configuration.is_joint() {
        text += &format!(" leaving{equals}{:?}", configuration.outgoing_voters());
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logs_print_as_runs_of_one_term() {
        assert_eq!(entries([(1, 1), (2, 1), (3, 1), (4, 2), (6, 2)]), "1-3@1 4@2 6@2");
        assert_eq!(entries([]), "[]");
    }
}
