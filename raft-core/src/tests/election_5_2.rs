//! Raft paper §5.2: leader election.

use super::network::Cluster;
use crate::{Action, Input, Role};

#[test]
fn a_cluster_elects_exactly_one_leader_from_timeouts() {
    // Raft paper §5.2: followers that hear nothing time out and one of them wins.
    for size in [1, 3, 5, 7] {
        let mut cluster = Cluster::new(size);
        cluster.tick_all(400);
        let leaders: Vec<_> =
            cluster.live_nodes().into_iter().filter(|&id| cluster.node(id).role() == Role::Leader).collect();
        assert_eq!(leaders.len(), 1, "{size} nodes: leaders {leaders:?}");
        let leader = leaders[0];
        for id in cluster.live_nodes() {
            assert_eq!(cluster.node(id).leader(), Some(leader), "node {id} follows the leader");
            assert_eq!(cluster.node(id).term(), cluster.node(leader).term());
        }
    }
}

#[test]
fn a_candidate_that_wins_a_majority_becomes_leader_and_appends_a_noop() {
    // Raft paper §5.2 and §8: the winner commits a no-op entry of its term.
    let mut cluster = Cluster::new(3);
    cluster.campaign(1);
    assert_eq!(cluster.node(1).role(), Role::Leader);
    assert_eq!(cluster.node(1).term(), 1);
    assert_eq!(cluster.log_terms(1), vec![1]);
    cluster.tick_all(20);
    for id in 1..=3 {
        assert_eq!(cluster.node(id).commit_index(), 1, "node {id} commits the no-op");
    }
}

#[test]
fn each_node_votes_at_most_once_per_term() {
    // Raft paper §5.2: "each server will vote for at most one candidate in a given term".
    let mut cluster = Cluster::with_config(3, |config| config.pre_vote = false);
    cluster.isolate(1);
    cluster.isolate(2);
    cluster.campaign(1);
    cluster.campaign(2);
    assert_eq!(cluster.node(1).term(), 1);
    assert_eq!(cluster.node(2).term(), 1);
    cluster.heal();
    // Node 3 receives both requests for term 1, first from node 1.
    let request = |from| crate::Message {
        from,
        to: 3,
        term: 1,
        body: crate::MessageBody::RequestVote {
            pre_vote: false,
            leadership_transfer: false,
            last_log_index: 0,
            last_log_term: 0,
        },
    };
    let first = cluster.step(3, Input::Message(request(1)));
    let second = cluster.step(3, Input::Message(request(2)));
    let granted = |actions: &[Action]| {
        actions.iter().any(|action| {
            matches!(
                action,
                Action::Send(crate::Message {
                    body: crate::MessageBody::RequestVoteResponse { granted: true, .. },
                    ..
                })
            )
        })
    };
    assert!(granted(&first));
    assert!(!granted(&second), "a second vote in term 1 must be refused");
    assert_eq!(cluster.node(3).voted_for(), Some(1));
}

#[test]
fn duplicated_and_stale_vote_responses_are_counted_not_tallied() {
    // A duplicated grant must not count twice: 1 self + 1 duplicated grant is not 3 of 5.
    let mut cluster = Cluster::with_config(5, |config| config.pre_vote = false);
    cluster.isolate(1);
    cluster.campaign(1);
    let grant = |from| {
        Input::Message(crate::Message {
            from,
            to: 1,
            term: 1,
            body: crate::MessageBody::RequestVoteResponse { pre_vote: false, granted: true },
        })
    };
    cluster.step(1, grant(2));
    cluster.step(1, grant(2));
    assert_eq!(cluster.node(1).role(), Role::Candidate);
    assert_eq!(cluster.node(1).counters().ignored_stale_response, 1);
    // A pre-vote answer while campaigning for real is stale too.
    let pre_vote_grant = crate::Message {
        from: 3,
        to: 1,
        term: 2,
        body: crate::MessageBody::RequestVoteResponse { pre_vote: true, granted: true },
    };
    cluster.step(1, Input::Message(pre_vote_grant));
    assert_eq!(cluster.node(1).counters().ignored_stale_response, 2);
    cluster.step(1, grant(3));
    assert_eq!(cluster.node(1).role(), Role::Leader);
}

#[test]
fn split_vote_is_resolved_in_a_later_term() {
    // Raft paper §5.2: randomized timeouts break split votes.
    let mut cluster = Cluster::with_config(4, |config| config.pre_vote = false);
    cluster.partition(&[1, 2]);
    cluster.campaign(1);
    cluster.campaign(3);
    cluster.heal();
    // Each candidate holds 2 of 4 votes for term 1: no majority of 3.
    assert_eq!(cluster.node(1).role(), Role::Candidate);
    assert_eq!(cluster.node(3).role(), Role::Candidate);
    assert!(cluster.leader().is_none());
    cluster.tick_all(600);
    let leader = cluster.leader().expect("a later term elects a leader");
    assert!(cluster.node(leader).term() >= 2);
}

#[test]
fn a_candidate_steps_down_when_a_leader_of_its_term_appears() {
    // Raft paper §5.2: a candidate receiving AppendEntries from a legitimate leader
    // of its term returns to follower.
    let mut cluster = Cluster::with_config(3, |config| {
        config.pre_vote = false;
        config.check_quorum = false;
    });
    cluster.campaign(1);
    assert_eq!(cluster.leader(), Some(1));
    cluster.isolate(2);
    cluster.campaign(2);
    assert_eq!(cluster.node(2).role(), Role::Candidate);
    assert_eq!(cluster.node(2).term(), 2);
    // Node 2 now hears everything but cannot be heard; node 3 wins term 2 with node 1's vote.
    cluster.heal();
    cluster.cut_links.insert((2, 1));
    cluster.cut_links.insert((2, 3));
    cluster.campaign(3);
    assert_eq!(cluster.node(3).role(), Role::Leader);
    let term = cluster.node(3).term();
    assert_eq!(term, 2);
    cluster.heal();
    cluster.tick_all(15);
    assert_eq!(cluster.node(2).role(), Role::Follower);
    assert_eq!(cluster.node(2).leader(), Some(3));
}

#[test]
fn a_node_with_a_stale_log_cannot_win() {
    // Raft paper §5.4.1: voters refuse candidates whose log is less up-to-date.
    // CheckQuorum is off so that the refusal is due to the log, not to a leader lease.
    let mut cluster = Cluster::with_config(3, |config| {
        config.pre_vote = false;
        config.check_quorum = false;
    });
    cluster.campaign(1);
    cluster.isolate(3);
    cluster.propose(1, b"x");
    cluster.tick_all(20);
    assert_eq!(cluster.node(1).commit_index(), 2);
    cluster.heal();
    cluster.isolate(1);
    cluster.cut_links.remove(&(2, 3));
    cluster.cut_links.remove(&(3, 2));
    cluster.campaign(3);
    assert_ne!(cluster.node(3).role(), Role::Leader, "node 3 lacks committed entry 2");
    assert_eq!(cluster.node(2).voted_for(), None);
}

#[test]
fn election_timeouts_are_randomized_within_bounds_from_the_node_seed() {
    let config = crate::Config::new(1, vec![1, 2, 3]);
    let mut timeouts = std::collections::BTreeSet::new();
    for seed in 0..50 {
        let node = crate::RaftNode::new(config.clone(), Default::default(), seed).unwrap();
        assert!((100..200).contains(&node.election_timeout_ticks));
        timeouts.insert(node.election_timeout_ticks);
    }
    assert!(timeouts.len() > 10, "timeouts should spread: {timeouts:?}");
    let again = crate::RaftNode::new(config.clone(), Default::default(), 7).unwrap();
    let once_more = crate::RaftNode::new(config, Default::default(), 7).unwrap();
    assert_eq!(again.election_timeout_ticks, once_more.election_timeout_ticks);
}

#[test]
fn role_changes_are_reported_once_per_change() {
    let role_changes = |events: Vec<Action>| -> Vec<(Role, u64, Option<u64>)> {
        events
            .into_iter()
            .filter_map(|action| match action {
                Action::RoleChanged { role, term, leader } => Some((role, term, leader)),
                _ => None,
            })
            .collect()
    };
    let mut cluster = Cluster::with_config(3, |config| config.check_quorum = false);
    cluster.campaign(1);
    cluster.tick_all(50);
    assert_eq!(
        role_changes(cluster.take_events(1)),
        vec![(Role::PreCandidate, 0, None), (Role::Candidate, 1, None), (Role::Leader, 1, Some(1)),]
    );
    // Node 2 adopts term 1 from the vote request, then learns the leader; the
    // heartbeats that follow from the same leader change nothing.
    assert_eq!(
        role_changes(cluster.take_events(2)),
        vec![(Role::Follower, 1, None), (Role::Follower, 1, Some(1))]
    );
    // A new term with a new leader is a change; so is learning of the term without a leader.
    cluster.isolate(1);
    cluster.campaign(3);
    assert_eq!(cluster.node(3).role(), Role::Leader);
    assert_eq!(
        role_changes(cluster.take_events(2)),
        vec![(Role::Follower, 2, None), (Role::Follower, 2, Some(3))]
    );
    // The old leader learns term 2 and its leader from one heartbeat: one change.
    cluster.take_events(1);
    cluster.heal();
    cluster.tick_all(10);
    assert_eq!(role_changes(cluster.take_events(1)), vec![(Role::Follower, 2, Some(3))]);
}

#[test]
fn a_candidate_rejected_by_a_majority_gives_up_at_once_and_ignores_non_voters() {
    let mut cluster = Cluster::with_config(3, |config| config.pre_vote = false);
    cluster.isolate(1);
    cluster.campaign(1);
    let answer = |from, granted| {
        Input::Message(crate::Message {
            from,
            to: 1,
            term: 1,
            body: crate::MessageBody::RequestVoteResponse { pre_vote: false, granted },
        })
    };
    // A grant from a node outside the voters neither counts nor decides anything.
    cluster.step(1, answer(42, true));
    assert_eq!(cluster.node(1).counters().ignored_unknown_peer, 1);
    assert_eq!(cluster.node(1).role(), Role::Candidate);
    cluster.step(1, answer(2, false));
    assert_eq!(cluster.node(1).role(), Role::Candidate, "one rejection of three decides nothing");
    cluster.step(1, answer(3, false));
    assert_eq!(cluster.node(1).role(), Role::Follower, "two rejections of three: lost");
    assert_eq!(cluster.node(1).term(), 1);
}

#[test]
fn a_rejected_stale_candidate_does_not_restart_the_voters_election_timer() {
    // Regression (chaos soak, seed 10482): candidates with stale logs kept bumping the
    // term, every voter restarted its timer on adopting it, and the one node whose log
    // could win never timed out. Figure 2: the timer restarts on granting a vote or
    // hearing from the leader, not on seeing a newer term.
    let mut logs = std::collections::BTreeMap::new();
    logs.insert(1, super::network::durable(1, &[1]));
    logs.insert(2, super::network::durable(1, &[1, 1]));
    logs.insert(3, super::network::durable(1, &[1]));
    let mut cluster = Cluster::with_durable_state(logs, |config| {
        config.pre_vote = false;
        config.check_quorum = false;
    });
    let node = cluster.node_mut(2);
    node.election_elapsed_ticks = node.election_timeout_ticks - 2;
    cluster.step(2, Input::Tick);
    let stale_request = crate::Message {
        from: 1,
        to: 2,
        term: 5,
        body: crate::MessageBody::RequestVote {
            pre_vote: false,
            leadership_transfer: false,
            last_log_index: 1,
            last_log_term: 1,
        },
    };
    let answer = cluster.step(2, Input::Message(stale_request));
    assert!(answer.iter().any(|action| matches!(
        action,
        Action::Send(crate::Message {
            body: crate::MessageBody::RequestVoteResponse { granted: false, .. },
            ..
        })
    )));
    assert_eq!(cluster.node(2).term(), 5);
    cluster.step(2, Input::Tick);
    assert_eq!(cluster.node(2).role(), Role::Candidate, "the timer kept running and fired");
    assert_eq!(cluster.node(2).term(), 6);
}
