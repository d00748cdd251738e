//! Raft paper §5.3: log replication, the consistency check and log repair.

use super::network::{durable, Cluster};
use crate::{Action, Input, Message, MessageBody, Role};
use std::collections::BTreeMap;

#[test]
fn proposals_replicate_commit_and_apply_everywhere_in_order() {
    let mut cluster = Cluster::new(5);
    cluster.campaign(1);
    for command in 0..20u8 {
        cluster.propose(1, &[command]);
    }
    cluster.tick_all(20);
    for id in 1..=5 {
        assert_eq!(cluster.node(id).commit_index(), 21, "node {id}");
        assert_eq!(cluster.applied_indexes(id).len(), 21);
    }
    cluster.assert_state_machines_agree();
}

#[test]
fn proposal_acceptance_reports_index_and_term() {
    let mut cluster = Cluster::new(3);
    cluster.campaign(1);
    let actions = cluster.propose(1, b"set x");
    assert!(actions.contains(&Action::ProposalAccepted { id: 1_001, index: 2, term: 1 }), "{actions:?}");
}

/// The leader's log in the paper's Figure 7 (term 8, indexes 1-10).
const FIGURE_7_LEADER: [u64; 10] = [1, 1, 1, 4, 4, 5, 5, 6, 6, 6];

/// The follower logs (a)-(f) of Figure 7, with the highest term each could have seen.
fn figure_7_followers() -> Vec<(&'static str, u64, Vec<u64>)> {
    vec![
        ("a", 6, vec![1, 1, 1, 4, 4, 5, 5, 6, 6]),
        ("b", 4, vec![1, 1, 1, 4]),
        ("c", 6, vec![1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6]),
        ("d", 7, vec![1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7]),
        ("e", 4, vec![1, 1, 1, 4, 4, 4, 4]),
        ("f", 3, vec![1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3]),
    ]
}

#[test]
fn figure_7_follower_logs_are_repaired_to_match_the_leader() {
    // Raft paper §5.3, Figure 7: whatever a follower's log holds, the leader brings it
    // in line with its own: missing entries added, extraneous ones removed.
    for (case, follower_term, follower_log) in figure_7_followers() {
        // Node 1 leads in term 8; node 2 holds case (x); node 3 has an empty log and votes.
        let mut logs = BTreeMap::new();
        logs.insert(1, durable(7, &FIGURE_7_LEADER));
        logs.insert(2, durable(follower_term, &follower_log));
        logs.insert(3, durable(7, &[]));
        // CheckQuorum off: restarted nodes would otherwise honour a possible leader lease
        // for an election timeout before voting.
        let mut cluster = Cluster::with_durable_state(logs, |config| {
            config.pre_vote = false;
            config.check_quorum = false;
        });
        cluster.campaign(1);
        assert_eq!(cluster.node(1).role(), Role::Leader, "case {case}");
        assert_eq!(cluster.node(1).term(), 8);
        cluster.tick_all(30);
        let mut expected = FIGURE_7_LEADER.to_vec();
        expected.push(8);
        assert_eq!(cluster.log_terms(2), expected, "case ({case}) repaired");
        assert_eq!(cluster.node(2).commit_index(), 11, "case ({case}) commits through the no-op");
        cluster.assert_state_machines_agree();
    }
}

#[test]
fn fast_backtracking_repairs_a_long_divergent_log_in_few_round_trips() {
    // Figure 7 (f) scaled up: 300 entries from terms 2 and 3 the leader never had.
    let mut follower_log = vec![1, 1, 1];
    follower_log.extend(std::iter::repeat_n(2, 150));
    follower_log.extend(std::iter::repeat_n(3, 150));
    let mut logs = BTreeMap::new();
    logs.insert(1, durable(7, &FIGURE_7_LEADER));
    logs.insert(2, durable(3, &follower_log));
    logs.insert(3, durable(7, &[]));
    let mut cluster = Cluster::with_durable_state(logs, |config| {
        config.pre_vote = false;
        config.check_quorum = false;
    });
    let node = cluster.node_mut(1);
    node.election_elapsed_ticks = node.election_timeout_ticks - 1;
    cluster.step(1, Input::Tick);
    let rejections = count_rejections_sent_by(&mut cluster, 2);
    assert_eq!(cluster.log_terms(2)[..10], FIGURE_7_LEADER);
    // About one rejection per divergent term (3, then 2), not one per entry.
    assert!(rejections <= 3, "needed {rejections} rejections");
}

/// Runs the cluster for a while, counting the append rejections node `id` sends.
fn count_rejections_sent_by(cluster: &mut Cluster, id: u64) -> usize {
    let mut rejections = 0;
    for _ in 0..30 {
        while let Some(message) = cluster.queue.pop_front() {
            if message.from == id
                && matches!(message.body, MessageBody::AppendEntriesResponse { success: false, .. })
            {
                rejections += 1;
            }
            let to = message.to;
            cluster.step(to, Input::Message(message));
        }
        for node in cluster.live_nodes() {
            cluster.step(node, Input::Tick);
        }
    }
    rejections
}

#[test]
fn a_stale_duplicate_append_does_not_truncate_newer_entries() {
    // Raft paper §5.3: "If an existing entry conflicts with a new one ... delete the
    // existing entry and all that follow it". Only a conflict truncates.
    let mut cluster = Cluster::new(3);
    cluster.campaign(1);
    let old_append = Message {
        from: 1,
        to: 2,
        term: 1,
        body: MessageBody::AppendEntries {
            prev_log_index: 0,
            prev_log_term: 0,
            entries: vec![cluster.node(1).entry(1).unwrap().clone()],
            leader_commit: 0,
        },
    };
    cluster.propose(1, b"a");
    cluster.propose(1, b"b");
    assert_eq!(cluster.node(2).last_index(), 3);
    let actions = cluster.step(2, Input::Message(old_append));
    assert!(!actions.iter().any(|action| matches!(action, Action::TruncateLog { .. })));
    assert_eq!(cluster.node(2).last_index(), 3, "the replayed append cut nothing");
}

#[test]
fn a_replayed_latest_append_writes_nothing() {
    // Re-delivering the append that carried the follower's last entry must neither
    // truncate nor rewrite it: duplicate messages are no-ops.
    let mut cluster = Cluster::new(3);
    cluster.campaign(1);
    cluster.tick_all(10);
    cluster.step(1, Input::Propose { id: 1, command: b"a".to_vec() });
    let append = cluster.queue.iter().find(|message| message.to == 2).cloned().expect("append");
    cluster.deliver_all();
    let actions = cluster.step(2, Input::Message(append));
    assert!(
        !actions
            .iter()
            .any(|action| matches!(action, Action::TruncateLog { .. } | Action::PersistEntries { .. })),
        "{actions:?}"
    );
}

#[test]
fn a_leader_sends_one_heartbeat_per_interval() {
    let mut cluster = Cluster::new(3);
    cluster.campaign(1);
    let mut heartbeats = 0;
    for _ in 0..30 {
        for action in cluster.step(1, Input::Tick) {
            if matches!(action, Action::SendAhead(Message { body: MessageBody::Heartbeat { .. }, .. })) {
                heartbeats += 1;
            }
        }
        cluster.deliver_all();
    }
    assert_eq!(heartbeats, 3 * 2, "every 10 ticks, to each of 2 followers");
}

#[test]
fn an_append_overlapping_the_commit_index_still_delivers_its_new_entries() {
    // Entries at or below our commit index are skipped, the rest appended.
    let mut cluster = Cluster::new(3);
    cluster.campaign(1);
    cluster.propose(1, b"a");
    cluster.propose(1, b"b");
    cluster.tick_all(12);
    assert_eq!(cluster.node(2).commit_index(), 3);
    cluster.isolate(2);
    cluster.propose(1, b"c");
    let entries: Vec<_> = (2..=4).map(|index| cluster.node(1).entry(index).unwrap().clone()).collect();
    let overlapping = Message {
        from: 1,
        to: 2,
        term: 1,
        body: MessageBody::AppendEntries { prev_log_index: 1, prev_log_term: 1, entries, leader_commit: 3 },
    };
    let actions = cluster.step(2, Input::Message(overlapping));
    assert_eq!(cluster.node(2).last_index(), 4);
    assert!(actions.iter().any(|action| matches!(
        action,
        Action::Send(Message {
            body: MessageBody::AppendEntriesResponse { success: true, index: 4, .. },
            ..
        })
    )));
}

#[test]
fn a_duplicated_rejection_is_counted_and_does_not_back_off_twice() {
    let mut logs = BTreeMap::new();
    logs.insert(1, durable(2, &[1, 1, 2, 2]));
    logs.insert(2, durable(1, &[1]));
    logs.insert(3, durable(2, &[1, 1, 2, 2]));
    let mut cluster = Cluster::with_durable_state(logs, |config| {
        config.pre_vote = false;
        config.check_quorum = false;
    });
    cluster.elect_isolated(1, &[3]);
    // The leader probes node 2 at index 5 (after its no-op); node 2 holds only index 1.
    let rejection = Message {
        from: 2,
        to: 1,
        term: 3,
        body: MessageBody::AppendEntriesResponse {
            success: false,
            index: 4,
            reject_hint_index: 1,
            reject_hint_term: 1,
        },
    };
    cluster.step(1, Input::Message(rejection.clone()));
    let next_after_first = cluster.node(1).progress[&2].next_index;
    assert_eq!(next_after_first, 2, "the hint jumps straight to where the logs agree");
    let before = cluster.node(1).counters().ignored_stale_response;
    cluster.step(1, Input::Message(rejection));
    assert_eq!(cluster.node(1).counters().ignored_stale_response, before + 1);
    assert_eq!(cluster.node(1).progress[&2].next_index, next_after_first);
}

#[test]
fn a_duplicate_acknowledgement_is_counted_and_changes_nothing() {
    let mut cluster = Cluster::new(3);
    cluster.campaign(1);
    cluster.propose(1, b"a");
    let ack = Message {
        from: 2,
        to: 1,
        term: 1,
        body: MessageBody::AppendEntriesResponse {
            success: true,
            index: 2,
            reject_hint_index: 0,
            reject_hint_term: 0,
        },
    };
    let before = cluster.node(1).counters().ignored_stale_response;
    cluster.step(1, Input::Message(ack));
    assert_eq!(cluster.node(1).counters().ignored_stale_response, before + 1);
    assert_eq!(cluster.node(1).progress[&2].match_index, 2);
}

#[test]
fn a_follower_commits_no_further_than_the_entries_it_verified() {
    // Raft paper Figure 2: commitIndex = min(leaderCommit, index of last new entry).
    let mut logs = BTreeMap::new();
    // Node 2 holds two stale entries from term 1 beyond what node 1 will verify.
    logs.insert(1, durable(1, &[1]));
    logs.insert(2, durable(1, &[1, 1, 1]));
    logs.insert(3, durable(1, &[1]));
    let mut cluster = Cluster::with_durable_state(logs, |config| config.pre_vote = false);
    let append = Message {
        from: 1,
        to: 2,
        term: 2,
        body: MessageBody::AppendEntries {
            prev_log_index: 1,
            prev_log_term: 1,
            entries: vec![],
            leader_commit: 3,
        },
    };
    cluster.step(2, Input::Message(append));
    assert_eq!(cluster.node(2).commit_index(), 1, "entries 2-3 were not verified");
}

#[test]
fn appends_respect_the_entry_limit_and_the_inflight_window() {
    let mut cluster = Cluster::with_config(3, |config| {
        config.max_entries_per_message = 2;
        config.max_inflight_appends = 3;
    });
    cluster.campaign(1);
    cluster.tick_all(12);
    cluster.isolate(2);
    cluster.isolate(3);
    for command in 0..20u8 {
        cluster.step(1, Input::Propose { id: command.into(), command: vec![command] });
    }
    // Nothing was acknowledged: each follower has at most 3 appends in flight.
    let appends_to_2 = cluster.node(1).progress[&2].inflight.len();
    assert!(appends_to_2 <= 3, "{appends_to_2} in flight");
    cluster.heal();
    cluster.queue.clear();
    cluster.tick_all(60);
    assert_eq!(cluster.node(2).last_index(), 21, "the no-op and 20 commands");
    for message in cluster.queue.iter() {
        if let MessageBody::AppendEntries { entries, .. } = &message.body {
            assert!(entries.len() <= 2);
        }
    }
}

#[test]
fn once_the_logs_agree_a_full_window_of_appends_is_pipelined_at_once() {
    let mut cluster = Cluster::with_config(3, |config| {
        config.max_entries_per_message = 1;
        config.max_inflight_appends = 4;
    });
    cluster.campaign(1);
    cluster.tick_all(12);
    cluster.cut_links.insert((1, 2));
    for command in 0..6u8 {
        cluster.propose(1, &[command]);
    }
    cluster.heal();
    // Node 2 holds only the no-op; the leader finds the gap, probes, then pipelines.
    let mut largest_burst = 0;
    for _ in 0..30 {
        for id in cluster.live_nodes() {
            cluster.step(id, Input::Tick);
        }
        while let Some(message) = cluster.queue.pop_front() {
            let to = message.to;
            let actions = cluster.step(to, Input::Message(message));
            let burst = actions
                .iter()
                .filter(|action| {
                    matches!(action, Action::SendAhead(Message { to: 2, body: MessageBody::AppendEntries { entries, .. }, .. })
                        if !entries.is_empty())
                })
                .count();
            largest_burst = largest_burst.max(burst);
        }
    }
    assert_eq!(cluster.node(2).commit_index(), 7);
    assert_eq!(largest_burst, 4, "one acknowledgement opens the whole window");
}

#[test]
fn lost_pipelined_appends_are_retransmitted_without_new_proposals() {
    // Regression: appends lost while the window was not full were never resent until
    // the next proposal exposed the gap, so an idle follower lagged forever.
    let mut cluster = Cluster::new(3);
    cluster.campaign(1);
    cluster.tick_all(12);
    cluster.isolate(3);
    for command in 0..5u8 {
        cluster.propose(1, &[command]);
    }
    cluster.heal();
    cluster.tick_all(25);
    assert_eq!(cluster.node(3).last_index(), 6);
    assert_eq!(cluster.node(3).commit_index(), 6);
}

#[test]
fn a_leader_never_overwrites_its_own_log() {
    // Raft paper Figure 3, Leader Append-Only.
    let mut cluster = Cluster::new(3);
    cluster.campaign(1);
    cluster.propose(1, b"a");
    let before = cluster.log_terms(1);
    // A rival's append in our term is a protocol violation and is ignored.
    let rival = Message {
        from: 2,
        to: 1,
        term: 1,
        body: MessageBody::AppendEntries {
            prev_log_index: 0,
            prev_log_term: 0,
            entries: vec![],
            leader_commit: 0,
        },
    };
    cluster.step(1, Input::Message(rival));
    assert_eq!(cluster.log_terms(1), before);
    assert_eq!(cluster.node(1).counters().protocol_violations, 1);
}

/// The appends a step sent, per follower.
fn appends_per_follower(actions: &[Action]) -> BTreeMap<u64, Vec<usize>> {
    let mut sent: BTreeMap<u64, Vec<usize>> = BTreeMap::new();
    for action in actions {
        if let Action::Send(Message { to, body: MessageBody::AppendEntries { entries, .. }, .. })
        | Action::SendAhead(Message { to, body: MessageBody::AppendEntries { entries, .. }, .. }) = action
        {
            sent.entry(*to).or_default().push(entries.len());
        }
    }
    sent
}

#[test]
fn a_batch_of_proposals_reaches_each_follower_as_one_append_and_one_write() {
    let mut cluster = Cluster::new(3);
    cluster.campaign(1);
    let proposals: Vec<_> = (0..64u64).map(|id| (5_000 + id, id.to_le_bytes().to_vec())).collect();
    let actions = cluster.step(1, Input::ProposeBatch { proposals });
    let writes: Vec<usize> = actions
        .iter()
        .filter_map(|action| match action {
            Action::PersistEntries { entries } => Some(entries.len()),
            _ => None,
        })
        .collect();
    assert_eq!(writes, [64], "one write for the batch");
    let accepted: Vec<(u64, u64)> = actions
        .iter()
        .filter_map(|action| match action {
            Action::ProposalAccepted { id, index, .. } => Some((*id, *index)),
            _ => None,
        })
        .collect();
    assert_eq!(accepted, (0..64).map(|n| (5_000 + n, 2 + n)).collect::<Vec<_>>(), "answered in order");
    let sent = appends_per_follower(&actions);
    assert_eq!(sent.get(&2).map(Vec::as_slice), Some(&[64][..]), "one append to node 2");
    assert_eq!(sent.get(&3).map(Vec::as_slice), Some(&[64][..]), "one append to node 3");
    cluster.deliver_all();
    cluster.tick_all(20);
    for id in 1..=3 {
        assert_eq!(cluster.node(id).commit_index(), 65, "node {id}");
    }
    cluster.assert_state_machines_agree();
}

#[test]
fn a_batch_is_split_only_by_the_message_limit_and_refuses_past_the_uncommitted_bound() {
    let mut cluster = Cluster::with_config(3, |config| {
        config.max_entries_per_message = 16;
        config.max_uncommitted_entries = 40;
    });
    cluster.campaign(1);
    // The no-op of the new term is committed; 40 more may wait uncommitted.
    let proposals: Vec<_> = (0..50u64).map(|id| (7_000 + id, vec![id as u8])).collect();
    let actions = cluster.step(1, Input::ProposeBatch { proposals });
    let refused: Vec<u64> = actions
        .iter()
        .filter_map(|action| match action {
            Action::Rejected { request: crate::Request::Propose(id), reason, .. } => {
                assert_eq!(*reason, crate::RejectReason::TooManyUncommitted);
                Some(*id)
            }
            _ => None,
        })
        .collect();
    assert_eq!(refused, (7_040..7_050).collect::<Vec<_>>(), "the ten past the bound, in order");
    let sent = appends_per_follower(&actions);
    assert_eq!(sent.get(&2).map(Vec::as_slice), Some(&[16, 16, 8][..]), "40 entries, 16 per message");
}

#[test]
fn a_batch_to_a_follower_is_refused_whole_with_the_leader_named() {
    let mut cluster = Cluster::new(3);
    cluster.campaign(1);
    let actions =
        cluster.step(2, Input::ProposeBatch { proposals: vec![(1, b"a".to_vec()), (2, b"b".to_vec())] });
    let refused = actions
        .iter()
        .filter(|action| {
            matches!(
                action,
                Action::Rejected { reason: crate::RejectReason::NotLeader, leader_hint: Some(1), .. }
            )
        })
        .count();
    assert_eq!(refused, 2);
    assert!(!actions.iter().any(|action| matches!(action, Action::PersistEntries { .. })));
}
