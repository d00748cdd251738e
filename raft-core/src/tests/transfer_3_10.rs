//! Raft thesis §3.10: leadership transfer.

use super::network::Cluster;
use crate::{Action, Input, RejectReason, Request, Role};

#[test]
fn leadership_moves_to_the_target_once_it_is_caught_up() {
    let mut cluster = Cluster::new(3);
    cluster.campaign(1);
    cluster.propose(1, b"a");
    cluster.step(1, Input::TransferLeadership { to: 3 });
    cluster.deliver_all();
    assert_eq!(cluster.node(3).role(), Role::Leader);
    assert_eq!(cluster.node(3).term(), 2);
    assert_eq!(cluster.node(1).leader(), Some(3));
    cluster.tick_all(20);
    assert_eq!(cluster.node(1).commit_index(), 3, "the new leader's no-op commits everywhere");
}

#[test]
fn a_lagging_target_is_caught_up_first() {
    let mut cluster = Cluster::new(3);
    cluster.campaign(1);
    cluster.isolate(3);
    for command in 0..5u8 {
        cluster.propose(1, &[command]);
    }
    cluster.heal();
    cluster.step(1, Input::TransferLeadership { to: 3 });
    // While the transfer is under way the leader refuses proposals.
    let refused = cluster.step(1, Input::Propose { id: 1, command: b"late".to_vec() });
    assert!(matches!(refused[..], [Action::Rejected { reason: RejectReason::TransferInProgress, .. }]));
    cluster.deliver_all();
    cluster.tick_all(20);
    assert_eq!(cluster.leader(), Some(3));
    assert!(cluster.node(3).commit_index() >= 6);
}

#[test]
fn transfer_to_an_unknown_node_or_from_a_follower_is_rejected() {
    let mut cluster = Cluster::new(3);
    cluster.campaign(1);
    let actions = cluster.step(1, Input::TransferLeadership { to: 9 });
    assert_eq!(
        actions,
        vec![Action::Rejected {
            request: Request::TransferLeadership,
            reason: RejectReason::UnknownPeer,
            leader_hint: Some(1)
        }]
    );
    let actions = cluster.step(2, Input::TransferLeadership { to: 3 });
    assert!(matches!(
        actions[..],
        [Action::Rejected { reason: RejectReason::NotLeader, leader_hint: Some(1), .. }]
    ));
}

#[test]
fn an_unfinished_transfer_expires_and_proposals_resume() {
    let mut cluster = Cluster::new(3);
    cluster.campaign(1);
    cluster.tick_all(10);
    cluster.cut_links.insert((1, 3));
    cluster.step(1, Input::TransferLeadership { to: 3 });
    cluster.propose(1, b"x");
    cluster.tick_all(99);
    let still_refused = cluster.propose(1, b"x");
    assert!(matches!(still_refused[..], [Action::Rejected { reason: RejectReason::TransferInProgress, .. }]));
    cluster.tick_all(1);
    assert_eq!(cluster.leader(), Some(1));
    let actions = cluster.propose(1, b"y");
    assert!(actions.iter().any(|action| matches!(action, Action::ProposalAccepted { .. })), "{actions:?}");
}

#[test]
fn leadership_goes_only_to_a_voter_and_a_non_voter_ignores_timeout_now() {
    // Found by the simulator (swarm seeds 3758 on 5 nodes, 368 on 7): a transfer to a
    // learner, or to a node removed while its TimeoutNow was on the way, made that node
    // campaign and depose a healthy leader.
    let mut cluster = Cluster::new(3);
    cluster.campaign(1);
    cluster.add_learner_node(4, vec![1, 2, 3]);
    let add = Input::ChangeMembership {
        id: 7,
        change: crate::MembershipChange::AddLearner(4),
        context: std::sync::Arc::from(&[][..]),
    };
    cluster.step(1, add);
    cluster.deliver_all();
    cluster.tick_all(20);
    let actions = cluster.step(1, Input::TransferLeadership { to: 4 });
    assert_eq!(
        actions,
        vec![Action::Rejected {
            request: Request::TransferLeadership,
            reason: RejectReason::NotAVoter,
            leader_hint: Some(1)
        }]
    );
    // A TimeoutNow reaching the learner anyway (sent by a leader that still counted it a
    // voter) is ignored and counted.
    let term = cluster.node(1).term();
    let timeout_now = crate::Message { from: 1, to: 4, term, body: crate::MessageBody::TimeoutNow };
    let actions = cluster.step(4, Input::Message(timeout_now));
    assert!(actions.iter().all(|action| !matches!(action, Action::RoleChanged { .. })), "{actions:?}");
    assert_eq!(cluster.node(4).role(), Role::Follower);
    assert_eq!(cluster.node(4).term(), term);
    assert_eq!(cluster.node(4).counters().ignored_timeout_now, 1);
    cluster.tick_all(50);
    assert_eq!(cluster.leader(), Some(1));
    assert_eq!(cluster.node(1).term(), term);
}
