//! Raft paper §5.1 and Figure 2: durable state, the persist-before-send ordering, and
//! nodes restarted from what they made durable.

use super::network::Cluster;
use crate::{Action, DurableState, HardState, Input, Message, MessageBody, RaftNode, Role};

/// Checks the ordering contract on one step's actions: whatever a `Send` promises
/// (our term and vote, the entries an ack covers) was persisted earlier in the list.
fn assert_persisted_before_sent(node_before: HardState, actions: &[Action]) {
    let mut persisted = node_before;
    for action in actions {
        match action {
            Action::PersistHardState(hard_state) => persisted = *hard_state,
            Action::Send(message) | Action::SendAhead(message) => {
                if let MessageBody::RequestVoteResponse { pre_vote: false, granted: true } = message.body {
                    assert_eq!(persisted.voted_for, Some(message.to), "vote sent before it was persisted");
                }
                if !matches!(message.body, MessageBody::RequestVote { pre_vote: true, .. })
                    && !matches!(message.body, MessageBody::RequestVoteResponse { pre_vote: true, .. })
                {
                    assert_eq!(persisted.term, message.term, "message term ahead of persisted term");
                }
            }
            _ => {}
        }
    }
}

#[test]
fn votes_and_terms_are_persisted_before_any_message_leaves() {
    let mut cluster = Cluster::with_config(3, |config| config.pre_vote = false);
    let before = HardState::default();
    let node = cluster.node_mut(1);
    node.election_elapsed_ticks = node.election_timeout_ticks - 1;
    let campaign = cluster.step(1, Input::Tick);
    assert!(matches!(campaign[..], [Action::RoleChanged { .. }, Action::PersistHardState(_), ..]));
    assert_persisted_before_sent(before, &campaign);
    let request = cluster.queue.pop_front().expect("vote request");
    let reply = cluster.step(request.to, Input::Message(request));
    assert_persisted_before_sent(before, &reply);
}

#[test]
fn an_append_is_persisted_before_it_is_acknowledged() {
    let mut cluster = Cluster::new(3);
    cluster.campaign(1);
    cluster.step(1, Input::Propose { id: 9, command: b"x".to_vec() });
    let append = cluster.queue.iter().find(|message| message.to == 2).cloned().expect("append to 2");
    let actions = cluster.step(2, Input::Message(append));
    let persist = actions.iter().position(|action| matches!(action, Action::PersistEntries { .. }));
    let ack = actions.iter().position(|action| {
        matches!(
            action,
            Action::Send(Message { body: MessageBody::AppendEntriesResponse { success: true, .. }, .. })
        )
    });
    assert!(persist.expect("persisted") < ack.expect("acknowledged"));
}

#[test]
fn a_restarted_node_keeps_its_vote_and_does_not_vote_twice() {
    // Figure 2: votedFor is persistent state; a restart must not free the vote.
    let mut cluster = Cluster::with_config(3, |config| {
        config.pre_vote = false;
        config.check_quorum = false;
    });
    cluster.cut_links.insert((1, 3));
    cluster.campaign(1);
    assert_eq!(cluster.node(2).voted_for(), Some(1));
    cluster.crash(2);
    cluster.restart(2);
    assert_eq!(cluster.node(2).voted_for(), Some(1));
    assert_eq!(cluster.node(2).term(), 1);
    let rival = Message {
        from: 3,
        to: 2,
        term: 1,
        body: MessageBody::RequestVote {
            pre_vote: false,
            leadership_transfer: false,
            last_log_index: 5,
            last_log_term: 0,
        },
    };
    let actions = cluster.step(2, Input::Message(rival));
    assert!(actions.iter().any(|action| matches!(
        action,
        Action::Send(Message { body: MessageBody::RequestVoteResponse { granted: false, .. }, .. })
    )));
}

#[test]
fn a_fully_restarted_cluster_recovers_its_committed_log() {
    let mut cluster = Cluster::new(5);
    cluster.campaign(1);
    for command in 0..10u8 {
        cluster.propose(1, &[command]);
    }
    cluster.tick_all(15);
    let committed = cluster.node(1).commit_index();
    let before: Vec<_> = cluster.applied_indexes(1);
    for id in 1..=5 {
        cluster.crash(id);
    }
    for id in 1..=5 {
        cluster.restart(id);
        assert_eq!(cluster.node(id).role(), Role::Follower);
        assert_eq!(cluster.node(id).commit_index(), 0, "commit is relearned, not persisted");
        assert_eq!(cluster.node(id).last_index(), committed);
    }
    cluster.tick_all(600);
    let leader = cluster.leader().expect("leader after restart");
    cluster.tick_all(20);
    let after = cluster.applied_indexes(leader);
    assert_eq!(after[..before.len()], before[..], "committed entries re-applied in order");
    cluster.assert_state_machines_agree();
}

#[test]
fn restoring_an_inconsistent_durable_state_is_an_error() {
    let config = crate::Config::new(1, vec![1, 2, 3]);
    let gap = DurableState {
        hard_state: HardState { term: 2, voted_for: None },
        snapshot: None,
        entries: vec![
            crate::Entry { term: 1, index: 1, payload: crate::EntryPayload::Noop },
            crate::Entry { term: 1, index: 3, payload: crate::EntryPayload::Noop },
        ],
    };
    assert_eq!(
        RaftNode::new(config.clone(), gap, 0).unwrap_err(),
        crate::RestoreError::NonContiguousLog { expected: 2, found: 3 }
    );
    let future_term = DurableState {
        hard_state: HardState { term: 1, voted_for: None },
        snapshot: None,
        entries: vec![crate::Entry { term: 2, index: 1, payload: crate::EntryPayload::Noop }],
    };
    let error = RaftNode::new(config.clone(), future_term, 0).unwrap_err();
    assert_eq!(error, crate::RestoreError::InconsistentTerms { index: 1 });
    assert_eq!(error.to_string(), "durable log has inconsistent terms at index 1");
    let mut bad_config = config;
    bad_config.voters = vec![2, 3];
    let error = RaftNode::new(bad_config, DurableState::default(), 0).unwrap_err();
    assert_eq!(error.to_string(), "invalid config: `id` must be one of the voters or learners");
}

#[test]
fn a_restarted_node_resumes_term_log_and_clock_from_scratch() {
    let durable = super::network::durable(4, &[1, 2, 4]);
    let node = RaftNode::new(crate::Config::new(1, vec![1, 2, 3]), durable, 0).unwrap();
    assert_eq!((node.term(), node.last_index(), node.last_term()), (4, 3, 4));
    assert_eq!(node.now_tick(), 0, "ticks count from the restart");
    assert_eq!(node.voted_for(), None);
    assert_eq!(node.config().id, 1);
}
