//! Messages round-trip through bincode; untrusted bytes never panic; bad configs are named.

use crate::{decode_message, encode_message, Config, DecodeError, Entry, EntryPayload, Message, MessageBody};
use proptest::prelude::*;

pub(super) fn arbitrary_body() -> impl Strategy<Value = MessageBody> {
    // Configurations of nodes 0..6 with learners, or the empty one a hostile peer's
    // in-memory message may carry (decoding refuses it and any malformed list).
    let voters = || {
        prop_oneof![
            Just(crate::Configuration::default()),
            (proptest::collection::btree_set(0u64..6, 1..5), proptest::collection::btree_set(0u64..6, 0..3))
                .prop_map(|(voters, learners)| {
                    let learners: Vec<u64> =
                        learners.into_iter().filter(|learner| !voters.contains(learner)).collect();
                    crate::Configuration::new(voters, learners).expect("voters and distinct learners")
                }),
        ]
    };
    let payload = prop_oneof![
        Just(EntryPayload::Noop),
        proptest::collection::vec(any::<u8>(), 0..16).prop_map(|bytes| EntryPayload::Command(bytes.into())),
        (voters(), proptest::collection::vec(any::<u8>(), 0..8)).prop_map(|(configuration, context)| {
            EntryPayload::MembershipChange { configuration, context: context.into() }
        }),
    ];
    let entry =
        (1u64..5, any::<u64>(), payload).prop_map(|(term, index, payload)| Entry { term, index, payload });
    let snapshot = (0u64..8, 0u64..5, voters(), proptest::collection::vec(any::<u8>(), 0..8)).prop_map(
        |(index, term, configuration, data)| {
            let meta = crate::SnapshotMeta { last_included_index: index, last_included_term: term };
            (meta, configuration, data)
        },
    );
    prop_oneof![
        (snapshot, any::<u64>(), any::<u64>()).prop_map(
            |((meta, configuration, chunk), total_bytes, offset)| {
                MessageBody::InstallSnapshot { meta, configuration, total_bytes, offset, chunk }
            }
        ),
        (any::<u64>(), any::<u64>()).prop_map(|(last_included_index, received_bytes)| {
            MessageBody::SnapshotChunkResponse { last_included_index, received_bytes }
        }),
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
    bytes.extend_from_slice(&[0, 0, 0]);
    let error = decode_message(&bytes).unwrap_err();
    assert_eq!(error, DecodeError::TrailingBytes { extra: 3 });
    assert_eq!(error.to_string(), "message followed by 3 unexpected bytes");
}

#[test]
fn inputs_over_the_size_limit_are_refused_before_decoding() {
    let limit = crate::MAX_ENCODED_MESSAGE_BYTES;
    let oversized = vec![0u8; limit + 1];
    let error = decode_message(&oversized).unwrap_err();
    assert_eq!(error, DecodeError::TooLarge { bytes: limit + 1, limit });
    assert!(error.to_string().contains("exceeds"));
    // Exactly at the limit the bytes are decoded: zeros make a small message and a long tail.
    assert!(matches!(decode_message(&oversized[..limit]), Err(DecodeError::TrailingBytes { .. })));
}

#[test]
fn more_entries_than_any_config_allows_is_an_error() {
    let append = |count: u64| Message {
        from: 1,
        to: 2,
        term: 3,
        body: MessageBody::AppendEntries {
            prev_log_index: 0,
            prev_log_term: 0,
            entries: (1..=count).map(|index| Entry { term: 1, index, payload: EntryPayload::Noop }).collect(),
            leader_commit: 0,
        },
    };
    let limit = crate::MAX_ENTRIES_PER_MESSAGE_LIMIT;
    assert!(decode_message(&encode_message(&append(limit))).is_ok());
    let error = decode_message(&encode_message(&append(limit + 1))).unwrap_err();
    assert_eq!(error, DecodeError::TooManyEntries { count: limit as usize + 1 });
    assert!(error.to_string().contains("65537 entries"));
    assert!(DecodeError::Malformed("bad tag".into()).to_string().contains("bad tag"));
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
        (
            "max_command_bytes",
            Box::new(|config| config.max_command_bytes = crate::MAX_COMMAND_BYTES_LIMIT + 1),
        ),
        (
            "max_bytes_per_message",
            Box::new(|config| config.max_bytes_per_message = crate::MAX_COMMAND_BYTES_LIMIT + 1),
        ),
    ];
    let mut at_limit = base.clone();
    at_limit.max_entries_per_message = crate::MAX_ENTRIES_PER_MESSAGE_LIMIT;
    assert!(at_limit.validate().is_ok());
    at_limit.max_entries_per_message += 1;
    assert_eq!(at_limit.validate().unwrap_err().field, "max_entries_per_message");
    for (field, break_it) in cases {
        let mut config = base.clone();
        break_it(&mut config);
        let error = config.validate().unwrap_err();
        assert_eq!(error.field, field);
        assert!(error.to_string().contains(field));
        assert!(crate::RaftNode::new(config, Default::default(), 0).is_err());
    }
}

#[test]
fn a_message_over_the_limit_encodes_but_is_refused_by_the_receiver() {
    // No correct node sends one (snapshots travel in chunks of at most 16 MiB), but a
    // hostile one may: encoding must not panic, decoding refuses it.
    let body = MessageBody::InstallSnapshot {
        meta: crate::SnapshotMeta { last_included_index: 5, last_included_term: 1 },
        configuration: crate::Configuration::voters([1, 2, 3]).unwrap(),
        total_bytes: crate::MAX_ENCODED_MESSAGE_BYTES as u64 + 1,
        offset: 0,
        chunk: vec![7; crate::MAX_ENCODED_MESSAGE_BYTES + 1],
    };
    let bytes = encode_message(&Message { from: 1, to: 2, term: 1, body });
    assert!(matches!(decode_message(&bytes), Err(DecodeError::TooLarge { .. })));
}

#[test]
fn the_message_limit_follows_the_command_limit_and_never_drops_below_the_floor() {
    let mut config = Config::new(1, vec![1, 2, 3]);
    assert_eq!(config.max_message_bytes(), crate::MAX_ENCODED_MESSAGE_BYTES);
    config.max_command_bytes = 129 << 20;
    let limit = config.max_message_bytes();
    assert!(limit >= (129 << 20) + (1 << 20), "a full batch topped by the largest command fits: {limit}");
    config.max_command_bytes = crate::MAX_COMMAND_BYTES_LIMIT;
    config.max_bytes_per_message = crate::MAX_COMMAND_BYTES_LIMIT;
    assert!(config.validate().is_ok());
    assert!(config.max_message_bytes() < u32::MAX as usize, "a frame length still fits in 32 bits");
}

#[test]
fn a_command_past_the_default_message_limit_decodes_under_a_raised_one() {
    // A 70 MiB command: past the 64 MiB floor, inside the limit a config allowing it derives.
    let mut config = Config::new(1, vec![1, 2]);
    config.max_command_bytes = 70 << 20;
    let entry = Entry { term: 1, index: 1, payload: EntryPayload::Command(vec![9; 70 << 20].into()) };
    let message = Message {
        from: 1,
        to: 2,
        term: 1,
        body: MessageBody::AppendEntries {
            prev_log_index: 0,
            prev_log_term: 0,
            entries: vec![entry],
            leader_commit: 0,
        },
    };
    let bytes = encode_message(&message);
    let error = decode_message(&bytes).unwrap_err();
    assert_eq!(error, DecodeError::TooLarge { bytes: bytes.len(), limit: crate::MAX_ENCODED_MESSAGE_BYTES });
    assert!(error.to_string().contains(&format!("the {}-byte limit", crate::MAX_ENCODED_MESSAGE_BYTES)));
    assert_eq!(crate::decode_message_within(&bytes, config.max_message_bytes()).unwrap(), message);
    // A hostile length prefix cannot claim more than the limit: a tiny input stays refused.
    assert!(crate::decode_message_within(&bytes[..1000], config.max_message_bytes()).is_err());
}

#[test]
fn command_bytes_encode_as_they_did_before_they_were_decoded_in_one_copy() {
    // The payload as plain serde would write it: logs and messages written before
    // `shared_bytes` must still decode, and new ones must read the same to old nodes.
    #[derive(serde::Serialize)]
    enum PlainPayload {
        #[allow(dead_code)]
        Noop,
        Command(std::sync::Arc<[u8]>),
    }
    for length in [0usize, 1, 127, 128, 300, 70_000] {
        let bytes: std::sync::Arc<[u8]> = (0..length).map(|at| (at % 251) as u8).collect();
        let config = bincode::config::standard();
        let ours = bincode::serde::encode_to_vec(EntryPayload::Command(bytes.clone()), config).unwrap();
        let plain = bincode::serde::encode_to_vec(PlainPayload::Command(bytes.clone()), config).unwrap();
        assert_eq!(ours, plain, "bincode, {length} bytes");
        let (decoded, _): (EntryPayload, usize) = bincode::serde::decode_from_slice(&plain, config).unwrap();
        assert_eq!(decoded, EntryPayload::Command(bytes.clone()));
        let mut reader = plain.as_slice();
        let streamed: EntryPayload = bincode::serde::decode_from_std_read(&mut reader, config).unwrap();
        assert_eq!(streamed, EntryPayload::Command(bytes.clone()), "a reader that cannot lend bytes");
        let json = serde_json::to_string(&EntryPayload::Command(bytes.clone())).unwrap();
        assert_eq!(json, serde_json::to_string(&PlainPayload::Command(bytes.clone())).unwrap());
        assert_eq!(serde_json::from_str::<EntryPayload>(&json).unwrap(), EntryPayload::Command(bytes));
    }
}
