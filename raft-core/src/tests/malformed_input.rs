//! A buggy or hostile peer must not crash a node: impossible messages are ignored and counted.

use super::network::Cluster;
use crate::{Entry, EntryPayload, Input, Message, MessageBody};

fn append(from: u64, to: u64, term: u64, prev_log_index: u64, entries: Vec<Entry>) -> Message {
    Message {
        from,
        to,
        term,
        body: MessageBody::AppendEntries {
            prev_log_index,
            prev_log_term: 0,
            entries,
            leader_commit: 1_000_000,
        },
    }
}

fn noop(term: u64, index: u64) -> Entry {
    Entry { term, index, payload: EntryPayload::Noop }
}

#[test]
fn misaddressed_messages_and_answers_from_untracked_nodes_are_ignored() {
    let mut cluster = Cluster::new(3);
    cluster.campaign(1);
    let before = cluster.node(1).term();
    let answer = |from| Message {
        from,
        to: 1,
        term: 1,
        body: MessageBody::AppendEntriesResponse {
            success: true,
            index: 1,
            reject_hint_index: 0,
            reject_hint_term: 0,
        },
    };
    let heartbeat_answer = Message {
        from: 42,
        to: 1,
        term: 1,
        body: MessageBody::HeartbeatResponse { read_round: 0, leader_tick: 0 },
    };
    cluster.step(1, Input::Message(answer(42)));
    cluster.step(1, Input::Message(heartbeat_answer));
    cluster.step(1, Input::Message(append(2, 7, 9, 0, vec![])));
    cluster.step(1, Input::Message(append(1, 1, 9, 0, vec![])));
    assert_eq!(cluster.node(1).counters().ignored_unknown_peer, 4);
    assert_eq!(cluster.node(1).term(), before);
    assert_eq!(cluster.node(1).role(), crate::Role::Leader);
}

#[test]
fn requests_are_heard_from_nodes_this_log_does_not_know_yet() {
    // Raft thesis §4.1: the sender may have been added by a membership entry this node
    // has not received; ignoring it could stall the cluster.
    let mut cluster = Cluster::new(3);
    cluster.step(1, Input::Message(append(42, 1, 9, 0, vec![])));
    assert_eq!(cluster.node(1).leader(), Some(42));
    assert_eq!(cluster.node(1).term(), 9);
}

#[test]
fn impossible_appends_are_ignored_and_counted() {
    let mut cluster = Cluster::new(3);
    let cases = vec![
        ("term 0 from a leader", append(2, 1, 0, 0, vec![])),
        ("entries not contiguous", append(2, 1, 3, 0, vec![noop(1, 1), noop(1, 3)])),
        ("entry beyond the leader's term", append(2, 1, 3, 0, vec![noop(4, 1)])),
        ("entry term decreasing", append(2, 1, 3, 0, vec![noop(2, 1), noop(1, 2)])),
        ("index overflow", append(2, 1, 3, u64::MAX, vec![noop(1, 0)])),
        ("absurd entry count", append(2, 1, 3, 0, (1..=70_000).map(|index| noop(1, index)).collect())),
    ];
    let count = cases.len() as u64;
    for (name, message) in cases {
        let actions = cluster.step(1, Input::Message(message));
        assert!(actions.is_empty(), "{name}: {actions:?}");
    }
    assert_eq!(cluster.node(1).counters().ignored_malformed, count);
    assert_eq!(cluster.node(1).term(), 0, "no malformed message moved the term");
    assert_eq!(cluster.node(1).last_index(), 0);
}

#[test]
fn an_append_far_beyond_the_log_is_rejected_not_trusted() {
    let mut cluster = Cluster::new(3);
    let actions = cluster.step(1, Input::Message(append(2, 1, 3, 1_000_000, vec![noop(1, 1_000_001)])));
    assert!(actions.iter().any(|action| matches!(
        action,
        crate::Action::Send(Message { body: MessageBody::AppendEntriesResponse { success: false, .. }, .. })
    )));
    assert_eq!(cluster.node(1).last_index(), 0);
    assert_eq!(cluster.node(1).commit_index(), 0);
}

#[test]
fn acknowledgements_beyond_the_leaders_log_are_ignored() {
    let mut cluster = Cluster::new(3);
    cluster.campaign(1);
    let bogus = Message {
        from: 2,
        to: 1,
        term: 1,
        body: MessageBody::AppendEntriesResponse {
            success: true,
            index: 99,
            reject_hint_index: 0,
            reject_hint_term: 0,
        },
    };
    cluster.step(1, Input::Message(bogus));
    assert_eq!(cluster.node(1).counters().ignored_malformed, 1);
    assert_eq!(cluster.node(1).commit_index(), 1);
    let bogus_round = Message {
        from: 2,
        to: 1,
        term: 1,
        body: MessageBody::HeartbeatResponse { read_round: 1_000, leader_tick: 0 },
    };
    cluster.step(1, Input::Message(bogus_round));
    assert_eq!(cluster.node(1).counters().ignored_malformed, 2);
}

#[test]
fn stale_terms_are_counted_and_stale_senders_are_told_the_current_term() {
    // CheckQuorum off so node 3 can depose node 1 while node 2 is cut off.
    let mut cluster = Cluster::with_config(3, |config| config.check_quorum = false);
    cluster.campaign(1);
    cluster.isolate(2);
    cluster.campaign(3);
    cluster.heal();
    cluster.queue.clear();
    // Node 1 is at term 2 now; a pre-vote from an older term gets a rejection in term 2.
    assert_eq!(cluster.node(1).term(), 2);
    let stale_pre_vote = Message {
        from: 2,
        to: 1,
        term: 1,
        body: MessageBody::RequestVote {
            pre_vote: true,
            leadership_transfer: false,
            last_log_index: 0,
            last_log_term: 0,
        },
    };
    let actions = cluster.step(1, Input::Message(stale_pre_vote));
    assert_eq!(
        actions,
        vec![crate::Action::Send(Message {
            from: 1,
            to: 2,
            term: 2,
            body: MessageBody::RequestVoteResponse { pre_vote: true, granted: false },
        })]
    );
    let stale_response = Message {
        from: 2,
        to: 1,
        term: 1,
        body: MessageBody::RequestVoteResponse { pre_vote: false, granted: true },
    };
    assert!(cluster.step(1, Input::Message(stale_response)).is_empty());
    assert_eq!(cluster.node(1).counters().ignored_stale_term, 2);
    // An append answer reaching a follower answers nothing it sent.
    let misdirected = Message {
        from: 2,
        to: 1,
        term: 2,
        body: MessageBody::AppendEntriesResponse {
            success: true,
            index: 0,
            reject_hint_index: 0,
            reject_hint_term: 0,
        },
    };
    let before = cluster.node(1).counters().ignored_stale_response;
    cluster.step(1, Input::Message(misdirected.clone()));
    cluster.step(1, Input::Message(misdirected));
    let heartbeat_answer = Message {
        from: 2,
        to: 1,
        term: 2,
        body: MessageBody::HeartbeatResponse { read_round: 0, leader_tick: 0 },
    };
    cluster.step(1, Input::Message(heartbeat_answer));
    assert_eq!(cluster.node(1).counters().ignored_stale_response, before + 3);
}

#[test]
fn a_second_leader_in_the_same_term_is_a_protocol_violation() {
    let mut cluster = Cluster::new(3);
    cluster.campaign(1);
    let before = cluster.log_terms(2);
    let impostor = Message {
        from: 3,
        to: 2,
        term: 1,
        body: MessageBody::AppendEntries {
            prev_log_index: 0,
            prev_log_term: 0,
            entries: vec![noop(1, 1), noop(1, 2)],
            leader_commit: 2,
        },
    };
    assert!(cluster.step(2, Input::Message(impostor)).is_empty());
    assert_eq!(cluster.node(2).counters().protocol_violations, 1);
    assert_eq!(cluster.node(2).leader(), Some(1));
    assert_eq!(cluster.log_terms(2), before);
}

#[test]
fn a_leader_contradicting_a_committed_entry_is_refused() {
    // Leader Completeness says no later leader lacks a committed entry; one that sends
    // a conflicting entry below our commit index is broken or hostile.
    let mut cluster = Cluster::new(3);
    cluster.campaign(1);
    cluster.propose(1, b"committed");
    cluster.tick_all(12);
    assert_eq!(cluster.node(2).commit_index(), 2);
    let rewrite = Message {
        from: 3,
        to: 2,
        term: 5,
        body: MessageBody::AppendEntries {
            prev_log_index: 1,
            prev_log_term: 1,
            entries: vec![noop(5, 2)],
            leader_commit: 0,
        },
    };
    cluster.step(2, Input::Message(rewrite));
    assert_eq!(cluster.node(2).counters().protocol_violations, 1);
    assert_eq!(cluster.log_terms(2), vec![1, 1]);
}

#[test]
fn malformed_snapshots_and_vote_requests_are_ignored() {
    let mut cluster = Cluster::new(3);
    let snapshot_message = |index, snapshot_term| Message {
        from: 2,
        to: 1,
        term: 3,
        body: MessageBody::InstallSnapshot {
            meta: crate::SnapshotMeta { last_included_index: index, last_included_term: snapshot_term },
            configuration: crate::Configuration::voters([1, 2, 3]).unwrap(),
            total_bytes: 0,
            offset: 0,
            chunk: vec![],
        },
    };
    for (index, snapshot_term) in [(0, 1), (5, 0), (5, 4)] {
        cluster.step(1, Input::Message(snapshot_message(index, snapshot_term)));
    }
    assert_eq!(cluster.node(1).counters().ignored_malformed, 3, "index 0, term 0, term above the leader's");
    let zero_snapshot = Message {
        from: 2,
        to: 1,
        term: 3,
        body: MessageBody::InstallSnapshot {
            meta: crate::SnapshotMeta::default(),
            configuration: crate::Configuration::default(),
            total_bytes: 0,
            offset: 0,
            chunk: vec![],
        },
    };
    let vote_with_future_log = Message {
        from: 2,
        to: 1,
        term: 3,
        body: MessageBody::RequestVote {
            pre_vote: false,
            leadership_transfer: false,
            last_log_index: 5,
            last_log_term: 9,
        },
    };
    cluster.step(1, Input::Message(zero_snapshot));
    cluster.step(1, Input::Message(vote_with_future_log));
    assert_eq!(cluster.node(1).counters().ignored_malformed, 5);
    assert_eq!(cluster.node(1).term(), 0);
}

#[test]
fn oversized_and_overflowing_proposals_are_refused() {
    let mut cluster = Cluster::with_config(3, |config| {
        config.max_command_bytes = 8;
        config.max_uncommitted_entries = 2;
    });
    cluster.campaign(1);
    let too_big = cluster.step(1, Input::Propose { id: 1, command: vec![0; 9] });
    assert!(matches!(
        too_big[..],
        [crate::Action::Rejected { reason: crate::RejectReason::CommandTooLarge, .. }]
    ));
    let accepted = |actions: &[crate::Action]| {
        actions.iter().any(|action| matches!(action, crate::Action::ProposalAccepted { .. }))
    };
    assert!(accepted(&cluster.step(1, Input::Propose { id: 5, command: vec![0; 8] })), "exactly the limit");
    cluster.tick_all(12);
    cluster.isolate(1);
    assert!(accepted(&cluster.step(1, Input::Propose { id: 2, command: vec![1] })));
    assert!(accepted(&cluster.step(1, Input::Propose { id: 3, command: vec![2] })));
    let full = cluster.step(1, Input::Propose { id: 4, command: vec![3] });
    assert!(matches!(
        full[..],
        [crate::Action::Rejected { reason: crate::RejectReason::TooManyUncommitted, .. }]
    ));
}

mod hostile_peers {
    use super::super::codec_and_config::arbitrary_body;
    use super::super::network::Cluster;
    use crate::{Input, Message, MessageBody};
    use proptest::prelude::*;

    fn hostile_message() -> impl Strategy<Value = Message> {
        // Mostly small terms and indexes so that messages hit real code paths, not just
        // the stale-term and out-of-range early exits.
        let small_body = (0u64..6, 0u64..6, 0u64..8).prop_map(|(index, term, commit)| {
            MessageBody::Heartbeat { commit, read_round: index, leader_tick: term }
        });
        (1u64..=4, 0u64..6, prop_oneof![arbitrary_body(), small_body])
            .prop_map(|(from, term, body)| Message { from, to: 1, term, body })
    }

    /// Terms and indexes at the top of the u64 range, where arithmetic overflows.
    fn extreme_message() -> impl Strategy<Value = Message> {
        let extreme =
            prop_oneof![Just(u64::MAX), Just(u64::MAX - 1), Just(u64::MAX / 2), Just(u64::MAX / 2 + 1)];
        (extreme.clone(), arbitrary_body()).prop_map(|(term, body)| Message { from: 2, to: 1, term, body })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        /// Whatever a peer sends, in whatever order, neither a leader nor a follower
        /// panics or breaks an internal invariant (checked by `assert!` on every step).
        #[test]
        fn arbitrary_message_sequences_never_panic(messages in proptest::collection::vec(hostile_message(), 1..30)) {
            let mut cluster = Cluster::with_config(3, |config| config.pre_vote = false);
            cluster.campaign(1);
            cluster.propose(1, b"x");
            let mut follower = Cluster::new(3);
            for message in messages {
                check_survives(&mut cluster, &mut follower, message);
            }
        }

        /// Huge terms and indexes must be refused, not adopted and later overflowed
        /// (a campaign adds one to the term; a snapshot at u64::MAX has no next index).
        #[test]
        fn extreme_terms_and_indexes_never_overflow(messages in proptest::collection::vec(extreme_message(), 1..6)) {
            let mut cluster = Cluster::with_config(3, |config| config.pre_vote = false);
            cluster.campaign(1);
            let mut follower = Cluster::new(3);
            for message in messages {
                check_survives(&mut cluster, &mut follower, message);
            }
            for _ in 0..250 {
                cluster.step(1, Input::Tick);
                follower.step(1, Input::Tick);
                cluster.queue.clear();
                follower.queue.clear();
            }
        }
    }

    /// Steps one message into the leader and the follower, then a tick; a panic or a
    /// broken invariant (asserted on every step) fails the test.
    fn check_survives(cluster: &mut Cluster, follower: &mut Cluster, message: Message) {
        cluster.step(1, Input::Message(message.clone()));
        cluster.step(1, Input::Tick);
        follower.step(1, Input::Message(message));
        follower.step(1, Input::Tick);
        cluster.queue.clear();
        follower.queue.clear();
    }
}

#[test]
fn the_largest_allowed_term_is_accepted_and_one_more_is_not() {
    let heartbeat = |term| Message {
        from: 2,
        to: 1,
        term,
        body: MessageBody::Heartbeat { commit: 0, read_round: 0, leader_tick: 0 },
    };
    let mut cluster = Cluster::new(3);
    cluster.step(1, Input::Message(heartbeat(crate::MAX_TERM_OR_INDEX + 1)));
    assert_eq!(cluster.node(1).counters().ignored_malformed, 1);
    cluster.step(1, Input::Message(heartbeat(crate::MAX_TERM_OR_INDEX)));
    assert_eq!(cluster.node(1).term(), crate::MAX_TERM_OR_INDEX);
    assert_eq!(cluster.node(1).leader(), Some(2));
}
