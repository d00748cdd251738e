//! Raft thesis §6.4: linearizable reads through ReadIndex, leases, and the leader hint.

use super::network::Cluster;
use crate::{Action, Input, ReadMode, RejectReason, Request};

fn ready(events: &[Action], id: u64) -> Option<u64> {
    events.iter().find_map(|action| match action {
        Action::ReadReady { id: ready_id, read_index } if *ready_id == id => Some(*read_index),
        _ => None,
    })
}

#[test]
fn a_follower_rejects_proposals_and_reads_with_the_leader_hint() {
    // The NOT_LEADER + leader_hint answer of simple Raft servers.
    let mut cluster = Cluster::new(3);
    cluster.campaign(2);
    let actions = cluster.step(1, Input::Propose { id: 5, command: b"x".to_vec() });
    assert_eq!(
        actions,
        vec![Action::Rejected {
            request: Request::Propose(5),
            reason: RejectReason::NotLeader,
            leader_hint: Some(2)
        }]
    );
    let actions = cluster.step(3, Input::Read { id: 6 });
    assert_eq!(
        actions,
        vec![Action::Rejected {
            request: Request::Read(6),
            reason: RejectReason::NotLeader,
            leader_hint: Some(2)
        }]
    );
}

#[test]
fn read_index_waits_for_a_quorum_to_confirm_leadership() {
    let mut cluster = Cluster::new(5);
    cluster.campaign(1);
    cluster.propose(1, b"a");
    cluster.take_events(1);
    // Hold all messages: the read must not be ready before the heartbeat round returns.
    cluster.step(1, Input::Read { id: 1 });
    assert_eq!(ready(&cluster.take_events(1), 1), None);
    let heartbeats: Vec<_> = cluster.queue.drain(..).collect();
    assert_eq!(heartbeats.len(), 4, "one confirmation heartbeat per follower");
    // Answers from two followers plus the leader make a quorum of three.
    for heartbeat in heartbeats.into_iter().take(2) {
        let to = heartbeat.to;
        cluster.step(to, Input::Message(heartbeat));
    }
    let first_answer = cluster.queue.pop_front().expect("answer");
    cluster.step(1, Input::Message(first_answer));
    assert_eq!(ready(&cluster.take_events(1), 1), None, "two of five is not a quorum");
    let second_answer = cluster.queue.pop_front().expect("answer");
    cluster.step(1, Input::Message(second_answer));
    assert_eq!(ready(&cluster.take_events(1), 1), Some(2), "read index is the commit index at the request");
}

#[test]
fn confirmations_that_arrive_ticks_later_still_count() {
    // Real networks answer after the leader's clock moved on.
    let mut cluster = Cluster::new(3);
    cluster.campaign(1);
    cluster.tick_all(10);
    cluster.take_events(1);
    cluster.step(1, Input::Read { id: 5 });
    let heartbeats: Vec<_> = cluster.queue.drain(..).collect();
    for heartbeat in heartbeats {
        let to = heartbeat.to;
        cluster.step(to, Input::Message(heartbeat));
    }
    for _ in 0..3 {
        cluster.step(1, Input::Tick);
    }
    cluster.queue.retain(|message| message.to == 1);
    cluster.deliver_all();
    assert_eq!(ready(&cluster.take_events(1), 5), Some(1));
}

#[test]
fn a_partitioned_leader_never_confirms_a_read() {
    let mut cluster = Cluster::new(5);
    cluster.campaign(1);
    cluster.tick_all(10);
    cluster.partition(&[1, 2]);
    cluster.step(1, Input::Read { id: 3 });
    cluster.deliver_all();
    cluster.tick_all(50);
    assert_eq!(ready(&cluster.take_events(1), 3), None);
}

#[test]
fn a_new_leader_defers_reads_until_its_noop_commits() {
    // Thesis §6.4 step 1: before its first commit, a leader's commit index may be
    // behind what earlier leaders committed.
    let mut cluster = Cluster::with_config(3, |config| config.pre_vote = false);
    // Node 1 leads while its no-op is still undelivered.
    cluster.elect_isolated(1, &[2, 3]);
    assert_eq!(cluster.node(1).role(), crate::Role::Leader);
    assert_eq!(cluster.node(1).commit_index(), 0);
    cluster.step(1, Input::Read { id: 4 });
    assert_eq!(ready(&cluster.take_events(1), 4), None);
    cluster.heal();
    cluster.tick_all(30);
    assert_eq!(ready(&cluster.take_events(1), 4), Some(1), "served once the no-op committed");
}

#[test]
fn reads_beyond_the_pending_bound_are_refused() {
    // Reads waiting for the no-op and reads waiting for a round count together.
    let mut cluster = Cluster::with_config(3, |config| {
        config.pre_vote = false;
        config.max_uncommitted_entries = 3;
    });
    // Node 1 leads while its no-op is still undelivered.
    cluster.elect_isolated(1, &[2, 3]);
    for id in 1..=3 {
        assert!(cluster.step(1, Input::Read { id }).is_empty(), "read {id} waits for the no-op");
    }
    let refused = cluster.step(1, Input::Read { id: 4 });
    assert!(matches!(refused[..], [Action::Rejected { reason: RejectReason::TooManyPendingReads, .. }]));
}

#[test]
fn lease_reads_are_served_at_once_while_a_quorum_recently_acknowledged() {
    let mut cluster = Cluster::with_config(3, |config| config.read_mode = ReadMode::LeaseBased);
    cluster.campaign(1);
    cluster.tick_all(10);
    let actions = cluster.step(1, Input::Read { id: 8 });
    assert!(actions.contains(&Action::ReadReady { id: 8, read_index: 1 }), "{actions:?}");
    // Cut off, the lease runs out and reads fall back to a (never confirmed) round.
    cluster.isolate(1);
    cluster.tick_all(95);
    let actions = cluster.step(1, Input::Read { id: 9 });
    assert!(!actions.iter().any(|action| matches!(action, Action::ReadReady { .. })));
}

#[test]
fn rejection_reasons_read_as_sentences() {
    let texts: Vec<String> = [
        RejectReason::NotLeader,
        RejectReason::LeadershipLost,
        RejectReason::TransferInProgress,
        RejectReason::TooManyUncommitted,
        RejectReason::TooManyPendingReads,
        RejectReason::CommandTooLarge,
        RejectReason::UnknownPeer,
        RejectReason::CompactionOutOfRange,
    ]
    .iter()
    .map(ToString::to_string)
    .collect();
    assert_eq!(texts[0], "not the leader");
    let distinct: std::collections::BTreeSet<_> = texts.iter().collect();
    assert_eq!(distinct.len(), texts.len(), "each reason has its own text: {texts:?}");
}

#[test]
fn the_lease_ends_one_heartbeat_interval_before_the_election_timeout() {
    // Lease: 100 - 10 = 90 ticks from the send of the last heartbeat a quorum acknowledged.
    let mut cluster = Cluster::with_config(3, |config| config.read_mode = ReadMode::LeaseBased);
    cluster.campaign(1);
    cluster.tick_all(10);
    cluster.isolate(1);
    for _ in 0..89 {
        cluster.step(1, Input::Tick);
    }
    let actions = cluster.step(1, Input::Read { id: 1 });
    assert!(actions.contains(&Action::ReadReady { id: 1, read_index: 1 }), "89 ticks in: inside the lease");
    cluster.step(1, Input::Tick);
    let actions = cluster.step(1, Input::Read { id: 2 });
    assert!(!actions.iter().any(|action| matches!(action, Action::ReadReady { .. })), "90 ticks in: outside");
}

#[test]
fn a_new_leader_has_no_lease_until_a_heartbeat_is_acknowledged() {
    let mut cluster = Cluster::with_config(3, |config| config.read_mode = ReadMode::LeaseBased);
    cluster.campaign(1);
    assert_eq!(cluster.node(1).commit_index(), 1, "the no-op committed");
    let actions = cluster.step(1, Input::Read { id: 1 });
    assert!(!actions.iter().any(|action| matches!(action, Action::ReadReady { .. })));
}

#[test]
fn lease_reads_require_check_quorum() {
    let mut config = crate::Config::new(1, vec![1, 2, 3]);
    config.read_mode = ReadMode::LeaseBased;
    config.check_quorum = false;
    assert_eq!(config.validate().unwrap_err().field, "read_mode");
}

#[test]
fn a_batch_of_reads_is_confirmed_by_one_heartbeat_round() {
    let mut cluster = Cluster::new(5);
    cluster.campaign(1);
    cluster.propose(1, b"a");
    cluster.take_events(1);
    cluster.step(1, Input::ReadBatch { ids: (10..18).collect() });
    let heartbeats: Vec<_> = cluster.queue.drain(..).collect();
    assert_eq!(heartbeats.len(), 4, "one heartbeat per follower for eight reads");
    for heartbeat in heartbeats {
        let to = heartbeat.to;
        cluster.step(to, Input::Message(heartbeat));
    }
    cluster.deliver_all();
    let events = cluster.take_events(1);
    for id in 10..18 {
        assert_eq!(ready(&events, id), Some(2), "read {id}");
    }
    // A follower refuses every read of a batch, naming the leader.
    let actions = cluster.step(3, Input::ReadBatch { ids: vec![20, 21] });
    let refused = actions
        .iter()
        .filter(|action| {
            matches!(action, Action::Rejected { reason: RejectReason::NotLeader, leader_hint: Some(1), .. })
        })
        .count();
    assert_eq!(refused, 2);
}
