//! Raft thesis §4.3: arbitrary configuration changes through a joint configuration,
//! and §4.2.3: removed servers are told and stop campaigning.

use super::network::Cluster;
use crate::{Action, Configuration, Input, MembershipChange, NodeId, RejectReason, Role};

fn set_members(cluster: &mut Cluster, leader: NodeId, voters: &[NodeId], learners: &[NodeId]) -> Vec<Action> {
    let change = MembershipChange::SetMembers { voters: voters.to_vec(), learners: learners.to_vec() };
    let actions = cluster
        .step(leader, Input::ChangeMembership { id: 88, change, context: std::sync::Arc::from(&[][..]) });
    cluster.deliver_all();
    actions
}

fn accepted(actions: &[Action]) -> bool {
    actions.iter().any(|action| matches!(action, Action::ProposalAccepted { id: 88, .. }))
}

fn refused_because(actions: &[Action]) -> Option<RejectReason> {
    actions.iter().find_map(|action| match action {
        Action::Rejected { reason, .. } => Some(*reason),
        _ => None,
    })
}

fn joint(incoming: &[NodeId], outgoing: &[NodeId]) -> Configuration {
    Configuration::voters(outgoing.iter().copied())
        .unwrap()
        .joint_to(&Configuration::voters(incoming.iter().copied()).unwrap())
        .unwrap()
}

#[test]
fn replacing_two_voters_goes_through_a_joint_configuration_that_is_left_on_its_own() {
    let mut cluster = Cluster::new(3);
    cluster.campaign(1);
    cluster.propose(1, b"before");
    cluster.add_node(4, vec![1, 4, 5]);
    cluster.add_node(5, vec![1, 4, 5]);
    // Hold the joint entry back from everyone to see it take effect on the leader first.
    cluster.isolate(1);
    assert!(accepted(&set_members(&mut cluster, 1, &[1, 4, 5], &[])));
    assert_eq!(cluster.node(1).configuration(), &joint(&[1, 4, 5], &[1, 2, 3]), "in force when appended");
    let changes = set_members(&mut cluster, 1, &[1, 2, 3], &[]);
    assert_eq!(refused_because(&changes), Some(RejectReason::MembershipChangeInProgress));
    cluster.heal();
    cluster.tick_all(40);
    for id in [1, 4, 5] {
        let configuration = cluster.node(id).configuration();
        assert_eq!(configuration, &Configuration::voters([1, 4, 5]).unwrap(), "node {id}: joint left");
        assert_eq!(cluster.node(id).commit_index(), 4, "node {id}: no-op, command, joint, final");
    }
    cluster.assert_state_machines_agree();
    // Nodes 2 and 3 were told: they never campaign again.
    cluster.tick_all(2_000);
    for id in [2, 3] {
        assert_eq!(cluster.node(id).role(), Role::Follower, "node {id}");
        assert!(!cluster.node(id).may_campaign(), "node {id} knows it was removed");
    }
    assert_eq!(cluster.leader(), Some(1));
    assert_eq!(cluster.node(1).term(), 1, "nobody disrupted the leader");
    // A new change is accepted once the joint one is left.
    assert!(accepted(&set_members(&mut cluster, 1, &[1, 4, 5], &[2])));
}

#[test]
fn a_joint_entry_needs_a_majority_of_the_old_voters_and_of_the_new() {
    for (group, half) in [(&[1, 2, 3][..], "new"), (&[1, 4, 5][..], "old")] {
        let mut cluster = Cluster::new(3);
        cluster.campaign(1);
        cluster.add_node(4, vec![1, 4, 5]);
        cluster.add_node(5, vec![1, 4, 5]);
        cluster.partition(group);
        assert!(accepted(&set_members(&mut cluster, 1, &[1, 4, 5], &[])));
        cluster.tick_all(20);
        assert_eq!(
            cluster.node(1).commit_index(),
            1,
            "without a majority of the {half} voters, nothing commits"
        );
        assert!(cluster.node(1).configuration().is_joint());
        cluster.heal();
        cluster.tick_all(40);
        let leader = cluster.leader().expect("a leader once healed");
        assert_eq!(cluster.node(leader).configuration(), &Configuration::voters([1, 4, 5]).unwrap());
    }
}

#[test]
fn a_single_voter_difference_needs_no_joint_configuration() {
    let mut cluster = Cluster::new(3);
    cluster.campaign(1);
    cluster.add_node(4, vec![1, 2, 3, 4]);
    cluster.add_learner_node(5, vec![1, 2, 3]);
    cluster.isolate(1);
    // One voter added, one learner added: the target directly.
    assert!(accepted(&set_members(&mut cluster, 1, &[1, 2, 3, 4], &[5])));
    assert_eq!(cluster.node(1).configuration(), &Configuration::new([1, 2, 3, 4], [5]).unwrap());
}

#[test]
fn a_new_leader_leaves_a_committed_joint_configuration() {
    let mut cluster = Cluster::new(3);
    cluster.campaign(1);
    cluster.add_node(4, vec![1, 4, 5]);
    cluster.add_node(5, vec![1, 4, 5]);
    // Let the joint entry commit on the leader, then take the leader down before its
    // final entry reaches anyone.
    let change = MembershipChange::SetMembers { voters: vec![2, 4, 5], learners: vec![1] };
    let actions =
        cluster.step(1, Input::ChangeMembership { id: 88, change, context: std::sync::Arc::from(&[][..]) });
    assert!(accepted(&actions));
    let joint_index = 2;
    while cluster.node(1).commit_index() < joint_index {
        assert!(!cluster.queue.is_empty(), "stalled: {:?}", cluster.node(1).progress);
        cluster.deliver_one(0);
    }
    assert_eq!(cluster.node(1).last_index(), joint_index + 1, "the leader appended the final configuration");
    cluster.queue.retain(|message| message.from != 1);
    cluster.crash(1);
    cluster.tick_all(600);
    let leader = cluster.leader().expect("nodes of both halves elect a leader");
    assert_ne!(leader, 1);
    let configuration = cluster.node(leader).configuration().clone();
    assert_eq!(
        &configuration,
        &Configuration::new([2, 4, 5], [1]).unwrap(),
        "the new leader left the joint state"
    );
    cluster.restart(1);
    cluster.tick_all(100);
    assert_eq!(cluster.node(1).configuration(), &configuration, "the old leader, now a learner, caught up");
    cluster.assert_state_machines_agree();
}

#[test]
fn a_leader_replaced_through_a_joint_change_steps_down_after_leaving_it() {
    let mut cluster = Cluster::new(3);
    cluster.campaign(1);
    cluster.add_node(4, vec![2, 3, 4]);
    assert!(accepted(&set_members(&mut cluster, 1, &[2, 3, 4], &[])));
    cluster.tick_all(20);
    assert_ne!(cluster.node(1).role(), Role::Leader, "node 1 led until the final configuration committed");
    cluster.tick_all(600);
    let leader = cluster.leader().expect("the new voters elect a leader");
    assert!([2, 3, 4].contains(&leader));
    assert_eq!(cluster.node(leader).configuration(), &Configuration::voters([2, 3, 4]).unwrap());
    assert!(!cluster.node(1).may_campaign(), "node 1 knows it is out");
}

#[test]
fn a_server_removed_while_unreachable_is_told_when_it_asks_for_votes() {
    let mut cluster = Cluster::with_config(3, |config| config.check_quorum = false);
    cluster.campaign(1);
    cluster.isolate(3);
    assert!(accepted(&set_members(&mut cluster, 1, &[1, 2], &[])));
    cluster.tick_all(20);
    assert_eq!(cluster.node(3).voters(), &[1, 2, 3], "it never heard of the change");
    cluster.tick_all(300);
    assert!(cluster.node(3).may_campaign(), "isolated, it keeps trying");
    cluster.heal();
    cluster.tick_all(300);
    assert!(!cluster.node(3).may_campaign(), "its next pre-vote was answered with the news");
    let term = cluster.node(3).term();
    cluster.tick_all(2_000);
    assert_eq!(cluster.node(3).term(), term, "and it stayed quiet");
    assert_eq!(cluster.leader(), Some(1));
    // Added back, it votes again.
    cluster.step(
        1,
        Input::ChangeMembership {
            id: 88,
            change: MembershipChange::AddVoter(3),
            context: std::sync::Arc::from(&[][..]),
        },
    );
    cluster.tick_all(40);
    assert_eq!(cluster.node(3).voters(), &[1, 2, 3]);
    assert!(cluster.node(3).may_campaign(), "a later change outranks the notice");
}

#[test]
fn refused_joint_changes_leave_the_configuration_alone() {
    let mut cluster = Cluster::new(3);
    cluster.campaign(1);
    let before = cluster.node(1).configuration().clone();
    for (voters, learners, why) in [
        (&[][..], &[4][..], "no voters"),
        (&[1, 2, 3][..], &[][..], "no change"),
        (&[1, 2, 4][..], &[4][..], "a voter and a learner at once"),
    ] {
        let actions = set_members(&mut cluster, 1, voters, learners);
        assert_eq!(refused_because(&actions), Some(RejectReason::InvalidMembershipChange), "{why}");
        assert_eq!(cluster.node(1).configuration(), &before, "{why}");
    }
    assert_eq!(cluster.node(1).last_index(), 1, "nothing appended");
}
