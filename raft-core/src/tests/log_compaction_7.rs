//! Raft paper §7: log compaction and InstallSnapshot.

use super::network::{encode_state_machine, Cluster};
use crate::{Action, Input, MessageBody, RejectReason, Request};

#[test]
fn a_lagging_follower_catches_up_from_a_snapshot() {
    let mut cluster = Cluster::new(3);
    cluster.campaign(1);
    cluster.isolate(3);
    for command in 0..10u8 {
        cluster.propose(1, &[command]);
    }
    cluster.tick_all(12);
    let applied = cluster.node(1).applied_index();
    assert_eq!(applied, 11);
    let data = encode_state_machine(&cluster.applied[&1]);
    let actions = cluster.compact(1, applied, data);
    assert!(matches!(actions[..], [Action::PersistSnapshot { .. }]));
    assert_eq!(cluster.node(1).snapshot_meta().last_included_index, 11);
    cluster.heal();
    cluster.propose(1, b"after");
    cluster.tick_all(30);
    assert_eq!(cluster.node(3).snapshot_meta().last_included_index, 11);
    assert_eq!(cluster.node(3).commit_index(), 12);
    assert_eq!(cluster.applied_indexes(3), cluster.applied_indexes(1));
    // A restart of the follower starts from its snapshot.
    cluster.crash(3);
    cluster.restart(3);
    assert_eq!(cluster.node(3).commit_index(), 11);
    cluster.tick_all(20);
    assert_eq!(cluster.applied_indexes(3), cluster.applied_indexes(1));
}

/// Node 3 missed entries 2-6, which node 1 (the leader) has compacted into a snapshot;
/// the network is healed, nothing delivered yet.
fn follower_behind_the_leaders_snapshot() -> Cluster {
    let mut cluster = Cluster::new(3);
    cluster.campaign(1);
    cluster.isolate(3);
    for command in 0..5u8 {
        cluster.propose(1, &[command]);
    }
    let data = encode_state_machine(&cluster.applied[&1]);
    cluster.compact(1, 6, data);
    cluster.heal();
    cluster
}

#[test]
fn a_snapshot_is_not_resent_when_only_its_acknowledgement_was_lost() {
    let mut cluster = follower_behind_the_leaders_snapshot();
    let mut snapshots_sent = 0;
    let mut acknowledgement_dropped = false;
    for _ in 0..300 {
        for id in cluster.live_nodes() {
            cluster.step(id, Input::Tick);
        }
        while let Some(message) = cluster.queue.pop_front() {
            if matches!(message.body, MessageBody::InstallSnapshot { .. }) {
                snapshots_sent += 1;
            }
            let answers_snapshot = message.from == 3
                && snapshots_sent == 1
                && matches!(message.body, MessageBody::AppendEntriesResponse { success: true, .. });
            if answers_snapshot && !acknowledgement_dropped {
                acknowledgement_dropped = true;
                continue;
            }
            let to = message.to;
            cluster.step(to, Input::Message(message));
        }
    }
    assert!(acknowledgement_dropped);
    assert_eq!(cluster.node(3).snapshot_meta().last_included_index, 6);
    assert_eq!(snapshots_sent, 1, "after the timeout a probe found the snapshot installed");
    assert_eq!(cluster.node(3).commit_index(), cluster.node(1).commit_index());
}

#[test]
fn compaction_beyond_the_applied_index_is_refused() {
    let mut cluster = Cluster::new(3);
    cluster.campaign(1);
    let actions = cluster.compact(1, 5, vec![]);
    assert!(matches!(
        actions[..],
        [Action::Rejected { request: Request::CompactLog, reason: RejectReason::CompactionOutOfRange, .. }]
    ));
}

#[test]
fn a_lost_snapshot_is_resent_after_an_election_timeout_not_before() {
    let mut cluster = follower_behind_the_leaders_snapshot();
    let mut sends = Vec::new();
    for _ in 0..250 {
        for id in cluster.live_nodes() {
            cluster.step(id, Input::Tick);
        }
        while let Some(message) = cluster.queue.pop_front() {
            if matches!(message.body, MessageBody::InstallSnapshot { .. }) {
                sends.push(cluster.node(1).now_tick());
                if sends.len() == 1 {
                    continue; // the first snapshot is lost
                }
            }
            let to = message.to;
            cluster.step(to, Input::Message(message));
        }
    }
    assert_eq!(sends.len(), 2, "resent once, then installed: {sends:?}");
    let wait = sends[1] - sends[0];
    // Retried on the first heartbeat answer at least 100 ticks after the send.
    assert!((100..110).contains(&wait), "resent after {wait} ticks");
    assert_eq!(cluster.node(3).snapshot_meta().last_included_index, 6);
}

/// Figure 13: a snapshot larger than a chunk travels in chunks, each answered before
/// the next leaves; a chunk lost mid-stream stalls the transfer until the leader's
/// retry, which resumes where the follower's bytes end instead of starting over.
#[test]
fn a_snapshot_travels_in_chunks_and_resumes_after_a_lost_one() {
    let mut cluster = Cluster::with_config(3, |config| config.max_snapshot_chunk_bytes = 8);
    cluster.campaign(1);
    cluster.isolate(3);
    for command in 0..10u8 {
        cluster.propose(1, &[command; 4]);
    }
    cluster.tick_all(12);
    let applied = cluster.node(1).applied_index();
    let data = encode_state_machine(&cluster.applied[&1]);
    let total = data.len();
    assert!(total > 5 * 8, "several chunks: {total} bytes");
    cluster.compact(1, applied, data);
    cluster.heal();
    let (mut offsets, mut dropped_one) = (Vec::new(), false);
    for _ in 0..400 {
        for id in cluster.live_nodes() {
            cluster.step(id, Input::Tick);
        }
        while let Some(message) = cluster.queue.pop_front() {
            if let MessageBody::InstallSnapshot { offset, chunk, total_bytes, .. } = &message.body {
                assert!(chunk.len() <= 8, "no chunk above the limit");
                assert_eq!(*total_bytes as usize, total);
                offsets.push(*offset);
                if *offset == 24 && !dropped_one {
                    dropped_one = true;
                    continue;
                }
            }
            if !cluster.cut_links.contains(&(message.from, message.to)) {
                cluster.step(message.to, Input::Message(message));
            }
        }
    }
    assert!(dropped_one);
    assert_eq!(cluster.node(3).snapshot_meta().last_included_index, applied);
    assert_eq!(cluster.applied_indexes(3), cluster.applied_indexes(1));
    // After the loss the leader's retry started at 0, the follower said it held 24
    // bytes, and the transfer went on from there: no chunk from 8 to 16 went twice.
    let resent_at_zero = offsets.iter().filter(|&&offset| offset == 0).count();
    assert_eq!(resent_at_zero, 2, "{offsets:?}");
    assert_eq!(offsets.iter().filter(|&&offset| offset == 8).count(), 1, "{offsets:?}");
    assert_eq!(offsets.iter().filter(|&&offset| offset == 24).count(), 2, "{offsets:?}");
    cluster.assert_state_machines_agree();
}
