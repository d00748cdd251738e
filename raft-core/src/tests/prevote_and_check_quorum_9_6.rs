//! Raft thesis §9.6 (PreVote) and §6.2 (CheckQuorum): keeping partitioned nodes from
//! disrupting a healthy cluster, and stepping down when cut off from a quorum.

use super::network::Cluster;
use crate::{Action, Input, RejectReason, Request, Role};

#[test]
fn prevote_keeps_an_isolated_node_from_inflating_its_term() {
    let mut cluster = Cluster::new(3);
    cluster.campaign(1);
    cluster.isolate(3);
    cluster.tick_all(1_000);
    assert_eq!(cluster.node(3).term(), 1, "pre-candidates never bump their term");
    assert_eq!(cluster.node(3).role(), Role::PreCandidate);
}

#[test]
fn prevote_stops_a_rejoining_node_from_disrupting_the_leader() {
    // Thesis §9.6: without PreVote, a node rejoining after a partition forces the
    // leader to step down with its inflated term. With it, nothing happens.
    let mut cluster = Cluster::new(3);
    cluster.campaign(1);
    cluster.isolate(3);
    cluster.tick_all(1_000);
    cluster.heal();
    cluster.tick_all(50);
    assert_eq!(cluster.leader(), Some(1));
    assert_eq!(cluster.node(1).term(), 1);
    assert_eq!(cluster.node(3).leader(), Some(1), "node 3 rejoins as a follower");
}

#[test]
fn without_prevote_a_rejoining_node_disrupts_the_leader() {
    // The contrast case: the test above would fail for a node without PreVote.
    let mut cluster = Cluster::with_config(3, |config| {
        config.pre_vote = false;
        config.check_quorum = false;
    });
    cluster.campaign(1);
    cluster.isolate(3);
    cluster.tick_all(1_000);
    let inflated = cluster.node(3).term();
    assert!(inflated > 3);
    cluster.heal();
    cluster.tick_all(400);
    assert!(cluster.node(1).term() >= inflated, "the old leader was deposed by the term");
}

#[test]
fn check_quorum_makes_an_isolated_leader_step_down() {
    // Thesis §6.2: a leader that cannot reach a quorum for an election timeout steps
    // down, so clients stop waiting on it.
    let mut cluster = Cluster::new(5);
    cluster.campaign(1);
    cluster.tick_all(20);
    cluster.isolate(1);
    cluster.step(1, Input::Read { id: 77 });
    cluster.tick_all(99);
    assert_eq!(cluster.node(1).role(), Role::Leader, "within the election timeout it may still lead");
    cluster.tick_all(1);
    assert_eq!(cluster.node(1).role(), Role::Follower);
    let events = cluster.take_events(1);
    assert!(
        events.contains(&Action::Rejected {
            request: Request::Read(77),
            reason: RejectReason::LeadershipLost,
            leader_hint: None
        }),
        "the pending read is failed, not left hanging"
    );
}

#[test]
fn check_quorum_followers_ignore_votes_while_their_leader_is_alive() {
    // Thesis §4.2.3: a node that heard from the leader within the minimum election
    // timeout ignores RequestVote, even for a higher term.
    let mut cluster = Cluster::with_config(3, |config| config.pre_vote = false);
    cluster.campaign(1);
    cluster.tick_all(20);
    cluster.cut_links.insert((1, 3));
    cluster.cut_links.insert((3, 1));
    // Node 3 misses heartbeats and campaigns; node 2 still hears node 1.
    cluster.campaign(3);
    assert_eq!(cluster.node(2).term(), 1);
    assert!(cluster.node(2).counters().ignored_vote_in_lease >= 1);
    assert_eq!(cluster.leader(), Some(1));
}

fn vote_request_from_3(term: u64) -> Input {
    Input::Message(crate::Message {
        from: 3,
        to: 2,
        term,
        body: crate::MessageBody::RequestVote {
            pre_vote: false,
            leadership_transfer: false,
            last_log_index: 10,
            last_log_term: term - 1,
        },
    })
}

fn granted(actions: &[Action]) -> bool {
    actions.iter().any(|action| {
        matches!(
            action,
            Action::Send(crate::Message {
                body: crate::MessageBody::RequestVoteResponse { granted: true, .. },
                ..
            })
        )
    })
}

#[test]
fn the_vote_lease_lasts_exactly_the_minimum_election_timeout() {
    // Just inside the lease the request is ignored; just outside it is granted.
    let mut cluster = Cluster::with_config(3, |config| config.pre_vote = false);
    cluster.campaign(1);
    cluster.crash(1);
    cluster.node_mut(2).election_timeout_ticks = 10_000; // keep node 2 from campaigning itself
    let contact = cluster.node(2).now_tick();
    for _ in 0..99 {
        cluster.step(2, Input::Tick);
    }
    assert_eq!(cluster.node(2).now_tick() - contact, 99);
    assert!(!granted(&cluster.step(2, vote_request_from_3(2))));
    assert_eq!(cluster.node(2).term(), 1, "an ignored request does not even move the term");
    cluster.step(2, Input::Tick);
    assert!(granted(&cluster.step(2, vote_request_from_3(2))));
}

#[test]
fn a_restarted_node_honours_a_lease_it_may_have_given_before_the_crash() {
    let mut cluster = Cluster::with_config(3, |config| config.pre_vote = false);
    cluster.campaign(1);
    cluster.crash(2);
    cluster.restart(2);
    assert_eq!(cluster.node(2).leader(), None);
    cluster.node_mut(2).election_timeout_ticks = 10_000;
    for _ in 0..99 {
        cluster.step(2, Input::Tick);
    }
    assert!(!granted(&cluster.step(2, vote_request_from_3(2))));
    cluster.step(2, Input::Tick);
    assert!(granted(&cluster.step(2, vote_request_from_3(2))));
}

#[test]
fn a_fresh_node_has_no_lease_to_honour() {
    let mut cluster = Cluster::with_config(3, |config| config.pre_vote = false);
    assert!(granted(&cluster.step(2, vote_request_from_3(1))));
}
