//! Messages round-trip through bincode; untrusted bytes never panic; bad configs are named.

use crate::{decode_message, encode_message, Config, DecodeError, Entry, EntryPayload, Message, MessageBody};
use proptest::prelude::*;

pub(super) fn arbitrary_body() -> impl Strategy<Value = MessageBody> {
    let entry = (1u64..5, any::<u64>(), proptest::collection::vec(any::<u8>(), 0..16)).prop_map(
        |(term, index, bytes)| Entry {
            term,
            index,
            payload: if bytes.is_empty() { EntryPayload::Noop } else { EntryPayload::Command(bytes) },
        },
    );
    prop_oneof![
        (any::<bool>(), any::<bool>(), any::<u64>(), any::<u64>()).prop_map(
            |(pre, transfer, index, term)| {
                MessageBody::RequestVote {
                    pre_vote: pre,
                    leadership_transfer: transfer,
                    last_log_index: index,
                    last_log_term: term,
                }
            }
        ),
        (any::<bool>(), any::<bool>())
            .prop_map(|(pre_vote, granted)| MessageBody::RequestVoteResponse { pre_vote, granted }),
        (any::<u64>(), any::<u64>(), proptest::collection::vec(entry, 0..4), any::<u64>()).prop_map(
            |(prev_log_index, prev_log_term, entries, leader_commit)| MessageBody::AppendEntries {
                prev_log_index,
                prev_log_term,
                entries,
                leader_commit,
            }
        ),
        (any::<bool>(), any::<u64>(), any::<u64>(), any::<u64>()).prop_map(|(success, index, hint, term)| {
            MessageBody::AppendEntriesResponse {
                success,
                index,
                reject_hint_index: hint,
                reject_hint_term: term,
            }
        }),
        (any::<u64>(), any::<u64>(), any::<u64>()).prop_map(|(commit, read_round, leader_tick)| {
            MessageBody::Heartbeat { commit, read_round, leader_tick }
        }),
        Just(MessageBody::TimeoutNow),
    ]
}

proptest! {
    #[test]
    fn messages_round_trip(from in any::<u64>(), to in any::<u64>(), term in any::<u64>(), body in arbitrary_body()) {
        let message = Message { from, to, term, body };
        let bytes = encode_message(&message);
        prop_assert_eq!(decode_message(&bytes), Ok(message));
    }

    #[test]
    fn random_bytes_decode_to_an_error_or_a_message_never_a_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = decode_message(&bytes);
    }

    #[test]
    fn truncated_encodings_are_errors(body in arbitrary_body(), cut in 1usize..8) {
        let bytes = encode_message(&Message { from: 1, to: 2, term: 3, body });
        let cut = cut.min(bytes.len());
        prop_assert!(decode_message(&bytes[..bytes.len() - cut]).is_err());
    }
}

#[test]
fn a_huge_length_prefix_does_not_allocate_without_bound() {
    // from, to, term, the AppendEntries tag, two varints, then a vector length of 2^60.
    let mut bytes = encode_message(&Message {
        from: 1,
        to: 2,
        term: 3,
        body: MessageBody::AppendEntries {
            prev_log_index: 0,
            prev_log_term: 0,
            entries: vec![],
            leader_commit: 0,
        },
    });
    bytes.truncate(bytes.len() - 2); // drop the empty vector's length and the commit
    bytes.push(0xFD); // bincode varint marker for a u64
    bytes.extend_from_slice(&(1u64 << 60).to_le_bytes());
    assert!(matches!(decode_message(&bytes), Err(DecodeError::Malformed(_))));
}

#[test]
fn trailing_bytes_are_an_error() {
    let mut bytes = encode_message(&Message { from: 1, to: 2, term: 3, body: MessageBody::TimeoutNow });
    bytes.push(0);
    assert_eq!(decode_message(&bytes), Err(DecodeError::TrailingBytes { extra: 1 }));
}

#[test]
fn unworkable_configs_are_refused_naming_the_field() {
    let base = Config::new(1, vec![1, 2, 3]);
    assert!(base.validate().is_ok());
    type Breakage = Box<dyn Fn(&mut Config)>;
    let cases: Vec<(&str, Breakage)> = vec![
        ("id", Box::new(|config| config.id = 9)),
        ("voters", Box::new(|config| config.voters = vec![])),
        ("voters", Box::new(|config| config.voters = vec![1, 1, 2])),
        ("election_timeout_min_ticks", Box::new(|config| config.heartbeat_interval_ticks = 100)),
        ("election_timeout_max_ticks", Box::new(|config| config.election_timeout_max_ticks = 100)),
        ("heartbeat_interval_ticks", Box::new(|config| config.heartbeat_interval_ticks = 0)),
        ("max_entries_per_message", Box::new(|config| config.max_entries_per_message = 0)),
        ("max_bytes_per_message", Box::new(|config| config.max_bytes_per_message = 0)),
        ("max_inflight_appends", Box::new(|config| config.max_inflight_appends = 0)),
        ("max_uncommitted_entries", Box::new(|config| config.max_uncommitted_entries = 0)),
        ("max_command_bytes", Box::new(|config| config.max_command_bytes = 0)),
    ];
    for (field, break_it) in cases {
        let mut config = base.clone();
        break_it(&mut config);
        let error = config.validate().unwrap_err();
        assert_eq!(error.field, field);
        assert!(error.to_string().contains(field));
        assert!(crate::RaftNode::new(config, Default::default(), 0).is_err());
    }
}
