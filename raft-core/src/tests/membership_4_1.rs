//! Raft thesis §4.1-4.2: single-server membership changes.

use super::network::{encode_state_machine, Cluster};
use crate::{Action, Input, MembershipChange, RejectReason, Role};

fn change(cluster: &mut Cluster, leader: u64, change: MembershipChange) -> Vec<Action> {
    let actions = cluster.step(
        leader,
        Input::ChangeMembership { id: 77, change, context: std::sync::Arc::from(&b"where it listens"[..]) },
    );
    cluster.deliver_all();
    actions
}

fn accepted(actions: &[Action]) -> bool {
    actions.iter().any(|action| matches!(action, Action::ProposalAccepted { id: 77, .. }))
}

fn refused_because(actions: &[Action]) -> Option<RejectReason> {
    actions.iter().find_map(|action| match action {
        Action::Rejected { reason, .. } => Some(*reason),
        _ => None,
    })
}

#[test]
fn an_added_voter_catches_up_and_then_counts_in_the_majority() {
    let mut cluster = Cluster::new(3);
    cluster.campaign(1);
    cluster.propose(1, b"before");
    cluster.add_node(4, vec![1, 2, 3, 4]);
    assert!(accepted(&change(&mut cluster, 1, MembershipChange::AddVoter(4))));
    cluster.tick_all(20);
    for id in 1..=4 {
        assert_eq!(cluster.node(id).voters(), &[1, 2, 3, 4], "node {id}");
        assert_eq!(cluster.node(id).commit_index(), 3, "node {id}: no-op, command, membership entry");
    }
    cluster.assert_state_machines_agree();
    // Four voters need three acknowledgements: the leader and node 4 are not enough.
    cluster.partition(&[1, 4]);
    cluster.propose(1, b"needs three");
    cluster.tick_all(20);
    assert_eq!(cluster.node(1).commit_index(), 3);
    cluster.heal();
    cluster.tick_all(20);
    assert_eq!(cluster.node(1).commit_index(), 4);
}

#[test]
fn a_removed_follower_no_longer_counts_and_cannot_disrupt() {
    // The leader stops replicating to a removed server at once, so that server never
    // learns of its removal (the host should stop it). Until then it may campaign, but
    // no voter grants a non-member a vote, even with CheckQuorum off.
    let mut cluster = Cluster::with_config(3, |config| config.check_quorum = false);
    cluster.campaign(1);
    assert!(accepted(&change(&mut cluster, 1, MembershipChange::RemoveNode(3))));
    assert_eq!(cluster.node(1).voters(), &[1, 2]);
    assert_eq!(cluster.node(3).voters(), &[1, 2, 3], "it never received the change");
    cluster.propose(1, b"two of two");
    cluster.tick_all(1_000);
    assert_eq!(cluster.leader(), Some(1));
    assert_eq!(cluster.node(1).term(), 1, "node 3's campaigns changed nothing");
    assert_eq!(cluster.node(1).commit_index(), 3);
    assert_eq!(cluster.node(3).last_index(), 1, "nothing after its removal reached it");
}

#[test]
fn a_node_that_knows_its_removal_committed_stops_campaigning() {
    // A removed server that holds its removal, committed, is not a voter in its own
    // eyes and stays quiet. (With the removal uncommitted it may still campaign: see
    // `a_removed_node_holding_the_longest_log_may_still_lead_to_commit_its_removal`.)
    let mut cluster = Cluster::new(3);
    cluster.campaign(1);
    cluster.tick_all(12);
    let node = cluster.node_mut(3);
    let durable_voters = node.voters().to_vec();
    assert_eq!(durable_voters, vec![1, 2, 3]);
    let entry = crate::Entry {
        term: 1,
        index: 2,
        payload: crate::EntryPayload::MembershipChange {
            configuration: crate::Configuration::voters([1, 2]).unwrap(),
            context: std::sync::Arc::from(&[][..]),
        },
    };
    let append = crate::Message {
        from: 1,
        to: 3,
        term: 1,
        body: crate::MessageBody::AppendEntries {
            prev_log_index: 1,
            prev_log_term: 1,
            entries: vec![entry],
            leader_commit: 2,
        },
    };
    cluster.step(3, Input::Message(append));
    assert_eq!(cluster.node(3).voters(), &[1, 2]);
    cluster.isolate(3);
    cluster.tick_all(1_000);
    assert_eq!(cluster.node(3).role(), Role::Follower);
    assert_eq!(cluster.node(3).term(), 1);
}

#[test]
fn a_leader_that_removes_itself_steps_down_once_the_change_commits() {
    // Thesis §4.2.2: it manages the cluster until then without counting itself.
    let mut cluster = Cluster::new(3);
    cluster.campaign(1);
    assert!(accepted(&change(&mut cluster, 1, MembershipChange::RemoveNode(1))));
    assert_eq!(cluster.node(1).role(), Role::Follower);
    assert_eq!(cluster.node(1).commit_index(), 2);
    cluster.tick_all(600);
    let leader = cluster.leader().expect("nodes 2 and 3 elect a leader");
    assert!([2, 3].contains(&leader));
    assert_eq!(cluster.node(1).role(), Role::Follower, "node 1 is out and stays quiet");
    cluster.propose(leader, b"without node 1");
    assert_eq!(cluster.node(leader).commit_index(), cluster.node(leader).last_index());
}

#[test]
fn a_self_removing_leader_does_not_count_its_own_acknowledgement() {
    let mut cluster = Cluster::new(3);
    cluster.campaign(1);
    cluster.tick_all(12);
    cluster.isolate(3);
    cluster.cut_links.insert((1, 2));
    // The entry reaches nobody: the leader alone must not commit it, even though it
    // holds it and, among the old voters, is one of... nobody else.
    change(&mut cluster, 1, MembershipChange::RemoveNode(1));
    assert_eq!(cluster.node(1).role(), Role::Leader);
    assert_eq!(cluster.node(1).commit_index(), 1);
}

#[test]
fn changes_go_one_at_a_time() {
    let mut cluster = Cluster::new(5);
    cluster.campaign(1);
    cluster.isolate(1);
    assert!(accepted(&change(&mut cluster, 1, MembershipChange::RemoveNode(5))));
    let second = change(&mut cluster, 1, MembershipChange::RemoveNode(4));
    assert_eq!(refused_because(&second), Some(RejectReason::MembershipChangeInProgress));
    cluster.heal();
    cluster.tick_all(20);
    assert!(accepted(&change(&mut cluster, 1, MembershipChange::RemoveNode(4))), "after the first commits");
}

#[test]
fn a_new_leader_changes_nothing_before_it_commits_in_its_term() {
    let mut cluster = Cluster::with_config(3, |config| config.pre_vote = false);
    // Node 1 leads while its no-op is still undelivered.
    cluster.elect_isolated(1, &[2, 3]);
    assert_eq!(cluster.node(1).role(), Role::Leader);
    let refused = change(&mut cluster, 1, MembershipChange::RemoveNode(3));
    assert_eq!(refused_because(&refused), Some(RejectReason::MembershipChangeInProgress));
}

#[test]
fn changes_that_change_nothing_are_refused() {
    let mut cluster = Cluster::new(3);
    cluster.campaign(1);
    let add_existing = change(&mut cluster, 1, MembershipChange::AddVoter(2));
    assert_eq!(refused_because(&add_existing), Some(RejectReason::InvalidMembershipChange));
    let remove_stranger = change(&mut cluster, 1, MembershipChange::RemoveNode(9));
    assert_eq!(refused_because(&remove_stranger), Some(RejectReason::InvalidMembershipChange));
    let at_follower = change(&mut cluster, 2, MembershipChange::AddVoter(4));
    assert_eq!(refused_because(&at_follower), Some(RejectReason::NotLeader));
}

#[test]
fn a_truncated_membership_entry_is_undone() {
    // The change takes effect when appended, so truncating it must restore the old set.
    let mut cluster = Cluster::with_config(5, |config| config.check_quorum = false);
    cluster.campaign(1);
    cluster.tick_all(12);
    cluster.partition(&[1, 2]);
    change(&mut cluster, 1, MembershipChange::RemoveNode(5));
    assert_eq!(cluster.node(2).voters(), &[1, 2, 3, 4]);
    cluster.crash(1);
    cluster.heal();
    cluster.cut_links.insert((2, 3));
    cluster.cut_links.insert((2, 4));
    cluster.cut_links.insert((2, 5));
    cluster.campaign(3);
    assert_eq!(cluster.node(3).role(), Role::Leader);
    cluster.propose(3, b"overwrites");
    cluster.heal();
    cluster.tick_all(30);
    assert_eq!(cluster.node(2).voters(), &[1, 2, 3, 4, 5], "node 2 dropped the uncommitted change");
    assert_eq!(cluster.node(2).commit_index(), cluster.node(3).commit_index());
}

#[test]
fn snapshots_carry_the_membership_to_lagging_and_restarted_nodes() {
    let mut cluster = Cluster::new(3);
    cluster.campaign(1);
    cluster.add_node(4, vec![1, 2, 3, 4]);
    cluster.isolate(4);
    change(&mut cluster, 1, MembershipChange::AddVoter(4));
    cluster.propose(1, b"a");
    let applied = cluster.node(1).applied_index();
    let data = encode_state_machine(&cluster.applied[&1]);
    cluster.compact(1, applied, data);
    cluster.heal();
    cluster.tick_all(30);
    assert_eq!(cluster.node(4).snapshot_meta().last_included_index, applied, "caught up from the snapshot");
    assert_eq!(cluster.node(4).voters(), &[1, 2, 3, 4]);
    cluster.crash(1);
    cluster.restart(1);
    assert_eq!(cluster.node(1).voters(), &[1, 2, 3, 4], "restored from the snapshot's voter set");
}

#[test]
fn a_node_whose_own_removal_is_uncommitted_may_still_campaign() {
    // A leader removes itself, cannot commit the change, and restarts. Its log may be
    // the longest, the only one some voters will vote for; if it refused to campaign
    // the cluster could stall. So it campaigns (counting only the new voters' votes)
    // and, should it win, leads until the change commits (thesis §4.2.2).
    let mut cluster = Cluster::with_config(3, |config| config.pre_vote = false);
    cluster.campaign(1);
    cluster.tick_all(12);
    cluster.isolate(1);
    assert!(accepted(&change(&mut cluster, 1, MembershipChange::RemoveNode(1))));
    cluster.crash(1);
    cluster.restart(1);
    assert_eq!(cluster.node(1).voters(), &[2, 3]);
    cluster.tick_all(400);
    assert!(cluster.node(1).term() > 1, "it campaigned");
    assert_ne!(cluster.node(1).role(), Role::Leader, "isolated, it cannot win votes of 2 and 3");
}

#[test]
fn the_context_travels_in_the_changes_entry_and_a_refused_change_appends_nothing() {
    let mut cluster = Cluster::new(3);
    cluster.campaign(1);
    cluster.propose(1, b"before");
    let last = cluster.node(1).last_index();
    // Adding a voter that already is one: refused, nothing appended, context and all.
    let refused = change(&mut cluster, 1, MembershipChange::AddVoter(2));
    assert_eq!(refused_because(&refused), Some(RejectReason::InvalidMembershipChange));
    assert_eq!(cluster.node(1).last_index(), last);
    // Too large a context is refused like too large a command.
    let huge = std::sync::Arc::from(vec![0u8; cluster.node(1).config().max_command_bytes as usize + 1]);
    let actions = cluster
        .step(1, Input::ChangeMembership { id: 78, change: MembershipChange::AddVoter(4), context: huge });
    assert_eq!(refused_because(&actions), Some(RejectReason::CommandTooLarge));
    assert_eq!(cluster.node(1).last_index(), last);

    cluster.add_node(4, vec![1, 2, 3, 4]);
    assert!(accepted(&change(&mut cluster, 1, MembershipChange::AddVoter(4))));
    cluster.tick_all(20);
    for id in 1..=4 {
        let entry = cluster.node(id).entry(last + 1).expect("the membership entry");
        match &entry.payload {
            crate::EntryPayload::MembershipChange { configuration, context } => {
                assert_eq!(configuration.incoming_voters(), &[1, 2, 3, 4], "node {id}");
                assert_eq!(&context[..], b"where it listens", "node {id}");
            }
            other => panic!("node {id}: {other:?}"),
        }
    }
}

#[test]
fn a_learner_gets_the_log_never_counts_never_campaigns_and_is_promoted() {
    let mut cluster = Cluster::new(3);
    cluster.campaign(1);
    cluster.propose(1, b"before");
    for learner in [4, 5] {
        cluster.add_learner_node(learner, vec![1, 2, 3]);
        assert!(accepted(&change(&mut cluster, 1, MembershipChange::AddLearner(learner))));
        cluster.tick_all(20);
    }
    for id in 1..=5 {
        let configuration = cluster.node(id).configuration();
        let lists = (configuration.incoming_voters(), configuration.learners());
        assert_eq!(lists, (&[1, 2, 3][..], &[4, 5][..]), "node {id}");
        assert_eq!(cluster.node(id).commit_index(), 4, "node {id}: no-op, command, two membership entries");
    }
    cluster.assert_state_machines_agree();
    // The leader and the learners are three of five members, a majority if learners
    // counted, but one of three voters.
    cluster.partition(&[1, 4, 5]);
    cluster.propose(1, b"needs a voter");
    cluster.tick_all(20);
    assert_eq!(cluster.node(4).last_index(), 5, "the learner has the entry");
    assert_eq!(cluster.node(1).commit_index(), 4, "but does not count toward committing it");
    // Cut off from every voter but a deposed leader, the learners never campaign.
    let term_before = cluster.node(4).term();
    cluster.tick_all(2_000);
    for learner in [4, 5] {
        assert_eq!(cluster.node(learner).role(), Role::Follower, "node {learner}");
        assert_eq!(cluster.node(learner).term(), term_before, "node {learner} never started an election");
    }
    cluster.heal();
    cluster.tick_all(400);
    let leader =
        (1..=3).find(|&id| cluster.node(id).role() == Role::Leader).expect("a leader among the voters");
    assert!(accepted(&change(&mut cluster, leader, MembershipChange::AddVoter(4))), "promoted");
    cluster.tick_all(20);
    for id in 1..=5 {
        assert_eq!(cluster.node(id).voters(), &[1, 2, 3, 4], "node {id}");
        assert_eq!(cluster.node(id).configuration().learners(), &[5], "node {id}");
    }
    cluster.assert_state_machines_agree();
}

#[test]
fn a_learner_marked_for_promotion_is_promoted_once_caught_up_even_by_a_new_leader() {
    let mut cluster = Cluster::new(3);
    cluster.campaign(1);
    for round in 0..20 {
        cluster.propose(1, format!("before {round}").as_bytes());
    }
    cluster.add_learner_node(4, vec![1, 2, 3]);
    // The new node cannot hear anyone yet: it stays a learner, the quorum unchanged.
    cluster.isolate(4);
    assert!(accepted(&change(&mut cluster, 1, MembershipChange::AddVoterWhenCaughtUp(4))));
    cluster.tick_all(40);
    let configuration = cluster.node(1).configuration().clone();
    assert_eq!(configuration.learners(), &[4]);
    assert_eq!(configuration.catching_up(), &[4]);
    assert_eq!(cluster.node(1).voters(), &[1, 2, 3], "not promoted while it lags");
    // A new leader inherits the mark with the configuration.
    cluster.crash(1);
    cluster.tick_all(600);
    let leader = cluster.leader().expect("nodes 2 and 3 elect a leader");
    cluster.restart(1);
    cluster.heal();
    cluster.tick_all(100);
    for id in 1..=4 {
        let configuration = cluster.node(id).configuration();
        assert_eq!(configuration.incoming_voters(), &[1, 2, 3, 4], "node {id}: promoted");
        assert!(configuration.learners().is_empty() && configuration.catching_up().is_empty(), "node {id}");
    }
    assert!(cluster.node(leader).match_index(4) >= Some(cluster.node(leader).commit_index() - 1));
    cluster.assert_state_machines_agree();
    // Marking a learner for promotion twice, or a voter, is refused; `AddLearner` on a
    // marked learner withdraws the mark.
    let again = change(&mut cluster, leader, MembershipChange::AddVoterWhenCaughtUp(4));
    assert_eq!(refused_because(&again), Some(RejectReason::InvalidMembershipChange));
}
