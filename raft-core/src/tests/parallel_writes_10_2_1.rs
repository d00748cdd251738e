//! Raft thesis §10.2.1: the leader writes its log in parallel with replicating it. Its
//! appends and heartbeats may leave before its own write is durable
//! (`Action::SendAhead`), and it counts itself toward a commit only as far as the host
//! reports its log persisted (`Input::LogPersisted`). Acknowledgements and votes still
//! wait for the writes before them (`Action::Send`).

use super::network::Cluster;
use crate::{Action, Input, Message, MessageBody, RaftNode};

/// Node 1 leads a 3-node cluster, everything committed and durable.
fn settled_leader() -> Cluster {
    let mut cluster = Cluster::new(3);
    cluster.campaign(1);
    cluster.deliver_all();
    assert_eq!(cluster.node(1).commit_index(), 1, "the no-op is committed");
    cluster
}

fn acknowledgement(from: u64, index: u64) -> Input {
    let body = MessageBody::AppendEntriesResponse {
        success: true,
        index,
        reject_hint_index: 0,
        reject_hint_term: 0,
    };
    Input::Message(Message { from, to: 1, term: 1, body })
}

fn proposes_without_reporting(node: &mut RaftNode) -> Vec<Action> {
    node.step(Input::Propose { id: 7, command: b"x".to_vec() })
}

#[test]
fn the_leaders_appends_may_leave_before_its_own_write_is_durable() {
    let mut cluster = settled_leader();
    let actions = proposes_without_reporting(cluster.node_mut(1));
    let write =
        actions.iter().position(|action| matches!(action, Action::PersistEntries { .. })).expect("a write");
    let appends: Vec<usize> = actions
        .iter()
        .enumerate()
        .filter(|(_, action)| {
            matches!(action, Action::SendAhead(Message { body: MessageBody::AppendEntries { .. }, .. }))
        })
        .map(|(position, _)| position)
        .collect();
    assert_eq!(appends.len(), 2, "one append per follower: {actions:?}");
    assert!(appends.iter().all(|&position| position > write));
    assert!(
        !actions.iter().any(|action| matches!(action, Action::Send(_))),
        "nothing waits for the write: {actions:?}"
    );
}

#[test]
fn the_leader_counts_itself_only_for_what_the_host_reported_durable() {
    let mut cluster = settled_leader();
    let node = cluster.node_mut(1);
    proposes_without_reporting(node);
    assert_eq!((node.last_index(), node.persisted_index()), (2, 1));
    // One follower holds entry 2, the leader's own copy is not durable: no majority.
    node.step(acknowledgement(2, 2));
    assert_eq!(node.commit_index(), 1, "two of three hold it, but only one durably");
    // The host reports the leader's write durable: now two of three.
    let actions = node.step(Input::LogPersisted { index: 2, term: 1 });
    assert_eq!(node.commit_index(), 2);
    assert!(actions
        .iter()
        .any(|action| matches!(action, Action::Apply { entries } if entries[0].index == 2)));
}

#[test]
fn followers_alone_can_commit_while_the_leaders_write_is_slow() {
    let mut cluster = settled_leader();
    let node = cluster.node_mut(1);
    proposes_without_reporting(node);
    node.step(acknowledgement(2, 2));
    node.step(acknowledgement(3, 2));
    assert_eq!(node.commit_index(), 2, "both followers hold it durably: a majority without the leader");
    assert_eq!(node.persisted_index(), 1);
}

#[test]
fn stale_and_impossible_persistence_reports_are_ignored_and_counted() {
    let mut cluster = settled_leader();
    let node = cluster.node_mut(1);
    proposes_without_reporting(node);
    let counted = node.counters().ignored_persistence_reports;
    // An entry the log never held at that term, and one beyond its end.
    node.step(Input::LogPersisted { index: 2, term: 5 });
    node.step(Input::LogPersisted { index: 9, term: 1 });
    assert_eq!(node.counters().ignored_persistence_reports, counted + 2);
    assert_eq!(node.persisted_index(), 1);
}

#[test]
fn a_follower_forgets_what_it_truncated_was_durable() {
    let mut cluster = settled_leader();
    // Node 2 appends an entry of term 1 that the next leader will overwrite.
    let stale = Message {
        from: 1,
        to: 2,
        term: 1,
        body: MessageBody::AppendEntries {
            prev_log_index: 1,
            prev_log_term: 1,
            entries: vec![crate::Entry { term: 1, index: 2, payload: crate::EntryPayload::Noop }],
            leader_commit: 1,
        },
    };
    let node = cluster.node_mut(2);
    node.step(Input::Message(stale));
    node.step(Input::LogPersisted { index: 2, term: 1 });
    assert_eq!(node.persisted_index(), 2);
    let overwrite = Message {
        from: 3,
        to: 2,
        term: 2,
        body: MessageBody::AppendEntries {
            prev_log_index: 1,
            prev_log_term: 1,
            entries: vec![crate::Entry { term: 2, index: 2, payload: crate::EntryPayload::Noop }],
            leader_commit: 1,
        },
    };
    node.step(Input::Message(overwrite));
    assert_eq!(
        node.persisted_index(),
        1,
        "the durable entry 2 was of term 1; the new one is not durable yet"
    );
    // A late report of the old entry is stale now.
    node.step(Input::LogPersisted { index: 2, term: 1 });
    assert_eq!(node.persisted_index(), 1);
    node.step(Input::LogPersisted { index: 2, term: 2 });
    assert_eq!(node.persisted_index(), 2);
}
