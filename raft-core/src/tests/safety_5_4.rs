//! Raft paper §5.4: the election restriction and the commit rule of Figure 8.

use super::network::{durable, Cluster};
use crate::{Input, Message, MessageBody, Role};
use std::collections::BTreeMap;

fn ack(from: u64, term: u64, index: u64) -> Input {
    Input::Message(Message {
        from,
        to: 1,
        term,
        body: MessageBody::AppendEntriesResponse {
            success: true,
            index,
            reject_hint_index: 0,
            reject_hint_term: 0,
        },
    })
}

#[test]
fn figure_8_an_old_term_entry_on_a_majority_is_not_committed_by_counting() {
    // Raft paper §5.4.2, Figure 8 (c): S1 leads term 4 and has replicated the term-2
    // entry at index 2 to a majority (S1, S2, S3). It must not commit it: S5 (holding
    // a term-3 entry at index 2) could still be elected and overwrite it (Figure 8 (d)).
    let mut logs = BTreeMap::new();
    logs.insert(1, durable(3, &[1, 2]));
    logs.insert(2, durable(3, &[1, 2]));
    logs.insert(3, durable(3, &[1]));
    logs.insert(4, durable(3, &[1]));
    logs.insert(5, durable(3, &[1, 3]));
    let mut cluster = Cluster::with_durable_state(logs, |config| config.pre_vote = false);
    // Votes from S2 and S3 make S1 leader of term 4; it appends its no-op at index 3.
    cluster.elect_isolated(1, &[2, 3]);
    assert_eq!(cluster.node(1).term(), 4);
    assert_eq!(cluster.node(1).role(), Role::Leader);
    assert_eq!(cluster.log_terms(1), vec![1, 2, 4]);
    // S2 and S3 acknowledge index 2 only: a majority holds the term-2 entry.
    cluster.step(1, ack(2, 4, 2));
    cluster.step(1, ack(3, 4, 2));
    assert_eq!(cluster.node(1).commit_index(), 0, "Figure 8: never commit a previous-term entry by counting");
    // Figure 8 (e): once an entry of the current term is on a majority, both commit.
    cluster.step(1, ack(2, 4, 3));
    assert_eq!(cluster.node(1).commit_index(), 0, "index 3 is on two of five nodes");
    cluster.step(1, ack(3, 4, 3));
    assert_eq!(cluster.node(1).commit_index(), 3);
}

#[test]
fn leader_completeness_a_node_missing_committed_entries_cannot_lead() {
    // Raft paper §5.4.1: only a node holding every committed entry can gather votes.
    let mut cluster = Cluster::with_config(5, |config| config.check_quorum = false);
    cluster.campaign(1);
    cluster.partition(&[4, 5]);
    for command in 0..5u8 {
        cluster.propose(1, &[command]);
    }
    cluster.tick_all(15);
    let committed = cluster.node(1).commit_index();
    assert_eq!(committed, 6);
    cluster.crash(1);
    cluster.heal();
    cluster.tick_all(600);
    let leader = cluster.leader().expect("S2 or S3 takes over");
    assert!([2, 3].contains(&leader), "leader {leader} lacks committed entries");
    assert!(cluster.node(leader).last_index() >= committed);
}
