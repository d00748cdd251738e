//! Properties over random command sequences: exactly-once under retries, snapshot
//! round trips, agreement with a plain map, and decoding that never panics.

use kv::session::SessionPolicy;
use kv::{Bytes, Command, KvError, KvStore, Operation, Query, Response};
use proptest::prelude::*;
use std::collections::BTreeMap;

/// Keys are byte strings: two of them are not UTF-8, and one sorts before every other.
fn key() -> impl Strategy<Value = Bytes> {
    prop::sample::select(vec![&b"a"[..], b"b", b"\xff\x00", b"\x00", b"d"]).prop_map(Bytes::from)
}

fn value() -> impl Strategy<Value = Bytes> {
    prop::sample::select(vec![&b"1"[..], b"2", b"\r\n3\x80"]).prop_map(Bytes::from)
}

fn operation() -> impl Strategy<Value = Operation> {
    prop_oneof![
        (key(), value()).prop_map(|(key, value)| Operation::Set { key, value }),
        key().prop_map(|key| Operation::Delete { key }),
        (key(), prop::option::of(value()), prop::option::of(value()))
            .prop_map(|(key, expected, new)| Operation::CompareAndSet { key, expected, new }),
        key().prop_map(|key| Operation::Read(Query::Get { key })),
    ]
}

/// Commands from three clients, each numbering its own 1, 2, 3…, and for each a
/// number of extra copies the log may hold (retries, duplicated proposals).
fn workload() -> impl Strategy<Value = Vec<(u64, Operation, usize)>> {
    prop::collection::vec((1u64..=3, operation(), 0usize..3), 0..40)
}

fn numbered(workload: &[(u64, Operation, usize)]) -> Vec<(Command, usize)> {
    let mut next = BTreeMap::new();
    workload
        .iter()
        .map(|(client, operation, copies)| {
            let sequence = next.entry(*client).or_insert(0u64);
            *sequence += 1;
            (Command { client: *client, sequence: *sequence, operation: operation.clone() }, *copies)
        })
        .collect()
}

/// What a plain map answers, applying each command once.
fn reference(model: &mut BTreeMap<Bytes, Bytes>, operation: &Operation) -> Response {
    match operation {
        Operation::Set { key, value } => {
            model.insert(key.clone(), value.clone());
            Response::Done
        }
        Operation::Delete { key } => Response::Deleted { existed: model.remove(key).is_some() },
        Operation::CompareAndSet { key, expected, new } => {
            let previous = model.get(key).cloned();
            let swapped = previous == *expected;
            if swapped {
                match new {
                    Some(value) => model.insert(key.clone(), value.clone()),
                    None => model.remove(key),
                };
            }
            Response::Swapped { swapped, previous }
        }
        Operation::Read(Query::Get { key }) => Response::Value(model.get(key).cloned()),
        other => unreachable!("the strategy draws no {other:?}"),
    }
}

/// A store where clients 1, 2 and 3 have opened their sessions (entries 1 to 3).
fn store_with_clients() -> KvStore {
    let mut store = KvStore::default();
    for index in 1..=3 {
        let open = Command { client: 0, sequence: 0, operation: Operation::OpenSession };
        assert_eq!(store.apply_at(index, &open), Response::SessionOpened { client: index });
    }
    store
}

/// A log of numbered `SET a <unique value>` commands from clients that reopen their
/// session when told it expired, clock entries between them (log time jumps, a small
/// idle timeout, a small bound), and late copies of earlier commands.
#[derive(Clone, Debug)]
enum Step {
    Write { client: usize },
    Clock { advance_ms: u64 },
    Copy { back: usize },
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    let step = prop_oneof![
        4 => (0usize..3).prop_map(|client| Step::Write { client }),
        2 => (0u64..300).prop_map(|advance_ms| Step::Clock { advance_ms }),
        2 => (0usize..10).prop_map(|back| Step::Copy { back }),
    ];
    prop::collection::vec(step, 0..80)
}

proptest! {
    /// Whatever expires when, a command never applies twice: a late copy repeats the
    /// first answer or is refused as expired, and never changes the key again.
    #[test]
    fn expiry_never_lets_a_command_apply_twice(steps in steps(), idle_ms in 1u64..400, bound in 0u64..3) {
        let policy = SessionPolicy { idle_timeout_ms: idle_ms, max_sessions: bound };
        let mut store = KvStore::default();
        let mut index = 0u64;
        let mut now_ms = 0u64;
        // Each client's session id (None: not open) and next sequence number.
        let mut clients: Vec<(Option<u64>, u64)> = vec![(None, 1); 3];
        // Every write applied so far, with its first answer.
        let mut sent: Vec<(Command, Response)> = Vec::new();
        let mut current: Option<Bytes> = None;
        for step in steps {
            index += 1;
            match step {
                Step::Write { client } => {
                    let session = match clients[client].0 {
                        Some(session) => session,
                        None => {
                            let open = Command { client: 0, sequence: 0, operation: Operation::OpenSession };
                            prop_assert_eq!(store.apply_at(index, &open), Response::SessionOpened { client: index });
                            clients[client] = (Some(index), 1);
                            index += 1;
                            clients[client].0.unwrap()
                        }
                    };
                    let sequence = clients[client].1;
                    clients[client].1 += 1;
                    let value = Bytes::from(format!("{client}.{index}").as_bytes());
                    let operation = Operation::Set { key: "a".into(), value: value.clone() };
                    let command = Command { client: session, sequence, operation };
                    let response = store.apply_at(index, &command);
                    match &response {
                        Response::Done => current = Some(value),
                        Response::Error(KvError::SessionExpired { .. }) => clients[client].0 = None,
                        other => prop_assert!(false, "a write answered {:?}", other),
                    }
                    sent.push((command, response));
                }
                Step::Clock { advance_ms } => {
                    now_ms += advance_ms;
                    let clock = Command { client: 0, sequence: 0, operation: Operation::Clock { now_ms, policy } };
                    prop_assert_eq!(store.apply_at(index, &clock), Response::Done);
                    prop_assert!(bound == 0 || store.sessions().len() as u64 <= bound);
                }
                Step::Copy { back } => {
                    let Some((command, first)) = sent.iter().rev().nth(back).cloned() else { continue };
                    let again = store.apply_at(index, &command);
                    let refused = matches!(
                        again,
                        Response::Error(KvError::SessionExpired { .. } | KvError::StaleSequence { .. })
                    );
                    prop_assert!(again == first || refused, "a copy answered {:?}, first {:?}", again, first);
                }
            }
            prop_assert_eq!(store.get(b"a"), current.as_ref().map(Bytes::as_slice));
        }
    }

    #[test]
    fn retries_apply_once_and_repeat_the_first_answer(workload in workload()) {
        let mut store = store_with_clients();
        let mut model = BTreeMap::new();
        for (command, copies) in numbered(&workload) {
            let expected = reference(&mut model, &command.operation);
            prop_assert_eq!(store.apply(&command), expected.clone());
            for _ in 0..copies {
                prop_assert_eq!(store.apply(&command), expected.clone());
            }
            let state: BTreeMap<Bytes, Bytes> = model.clone();
            for (key, value) in &state {
                prop_assert_eq!(store.get(key), Some(value.as_slice()));
            }
            prop_assert_eq!(store.len(), state.len());
        }
    }

    #[test]
    fn a_restored_snapshot_continues_like_the_original(workload in workload(), cut in 0usize..40) {
        let commands = numbered(&workload);
        let cut = cut.min(commands.len());
        let mut original = store_with_clients();
        for (command, _) in &commands[..cut] {
            original.apply(command);
        }
        let mut restored = KvStore::restore(&original.snapshot()).expect("restores");
        for (command, _) in &commands[cut..] {
            prop_assert_eq!(original.apply(command), restored.apply(command));
        }
        prop_assert_eq!(original.snapshot(), restored.snapshot());
    }

    #[test]
    fn list_agrees_with_a_filtered_map(workload in workload(), from in key(), to in prop::option::of(key()), limit in 0u32..4) {
        let mut store = store_with_clients();
        let mut model = BTreeMap::new();
        for (command, _) in numbered(&workload) {
            store.apply(&command);
            reference(&mut model, &command.operation);
        }
        let take = if limit == 0 { usize::MAX } else { limit as usize };
        let expected: Vec<(Bytes, Bytes)> = model
            .iter()
            .filter(|(key, _)| **key >= from && to.as_ref().is_none_or(|to| *key < to))
            .take(take)
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect();
        prop_assert_eq!(store.query(&Query::List { from, to, limit }), Response::Entries(expected));
    }

    #[test]
    fn commands_round_trip(client in any::<u64>(), sequence in any::<u64>(), operation in operation()) {
        let command = Command { client, sequence, operation };
        prop_assert_eq!(Command::decode(&command.encode()), Ok(command));
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        let mut store = KvStore::default();
        let _ = store.apply_bytes(&bytes);
        let _ = KvStore::restore(&bytes);
    }

    #[test]
    fn every_mutation_of_a_valid_command_decodes_or_errs(operation in operation(), at in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let mut bytes = Command { client: 1, sequence: 1, operation }.encode();
        let at = at.index(bytes.len());
        bytes[at] = byte;
        let _ = Command::decode(&bytes);
        let _ = Command::decode(&bytes[..at]);
    }
}

/// The Redis writes on strings and keys, times to live included.
fn redis_operation() -> impl Strategy<Value = Operation> {
    use kv::{ExpireCondition, Expiry, SetCondition};
    let expiry = prop_oneof![
        Just(Expiry::Keep),
        Just(Expiry::Clear),
        (-5i64..50).prop_map(Expiry::In),
        (0i64..200).prop_map(Expiry::At),
    ];
    let condition =
        prop_oneof![Just(SetCondition::Always), Just(SetCondition::IfAbsent), Just(SetCondition::IfPresent)];
    let expire_condition = prop_oneof![
        Just(ExpireCondition::Always),
        Just(ExpireCondition::IfNone),
        Just(ExpireCondition::IfSome),
        Just(ExpireCondition::IfLater),
        Just(ExpireCondition::IfEarlier),
    ];
    let plain = prop_oneof![
        (key(), value(), condition, expiry.clone(), any::<bool>()).prop_map(
            |(key, value, condition, expiry, get)| Operation::SetWith { key, value, condition, expiry, get }
        ),
        (prop::collection::vec((key(), value()), 1..3), any::<bool>())
            .prop_map(|(pairs, only_if_none_exist)| Operation::SetMany { pairs, only_if_none_exist }),
        prop::collection::vec(key(), 1..3).prop_map(|keys| Operation::DeleteMany { keys }),
        (key(), -3i64..3).prop_map(|(key, by)| Operation::IncrementBy { key, by }),
        (key(), value()).prop_map(|(key, value)| Operation::Append { key, value }),
        (key(), 0u64..6, value()).prop_map(|(key, offset, value)| Operation::SetRange { key, offset, value }),
        key().prop_map(|key| Operation::GetDelete { key }),
        (key(), expiry.clone()).prop_map(|(key, expiry)| Operation::GetExpire { key, expiry }),
        (key(), expiry, expire_condition).prop_map(|(key, expiry, condition)| Operation::Expire {
            key,
            expiry,
            condition
        }),
        (key(), key(), any::<bool>()).prop_map(|(from, to, only_if_absent)| Operation::Rename {
            from,
            to,
            only_if_absent
        }),
        Just(Operation::FlushAll),
        key().prop_map(|key| Operation::Read(Query::TimeToLive { key })),
    ];
    prop_oneof![
        8 => plain.clone(),
        1 => prop::collection::vec(plain, 1..4).prop_map(Operation::Transaction),
    ]
}

proptest! {
    /// Two replicas applying the same stamped entries, one of them restarted from a
    /// snapshot half-way, end in the same state; the kept size always equals a recount;
    /// reads never show a key past its deadline.
    #[test]
    fn redis_writes_with_times_to_live_replicate_and_count_their_bytes(
        entries in prop::collection::vec((redis_operation(), 0u64..20), 0..40),
        cut in 0usize..40,
    ) {
        let (mut first, mut second) = (KvStore::default(), KvStore::default());
        let mut now = 0;
        for (index, (operation, advance)) in entries.iter().enumerate() {
            now += advance;
            let mut bytes = Command { client: 0, sequence: 0, operation: operation.clone() }.encode();
            kv::stamp(&mut bytes, now);
            let answers = (first.apply_bytes_at(index as u64 + 1, &bytes), second.apply_bytes_at(index as u64 + 1, &bytes));
            prop_assert_eq!(&answers.0, &answers.1);
            prop_assert_eq!(first.used_bytes(), first.recount_used_bytes());
            if index == cut {
                second = KvStore::restore(&second.snapshot()).unwrap();
                prop_assert_eq!(second.used_bytes(), second.recount_used_bytes());
            }
            for probe in [&b"a"[..], b"b", b"\xff\x00", b"\x00", b"d"] {
                if let Response::Integer(ttl) = first.query(&Query::TimeToLive { key: probe.into() }) {
                    prop_assert!(ttl == -2 || ttl == -1 || ttl > 0, "a live key past its deadline: {}", ttl);
                }
            }
        }
        prop_assert_eq!(&first, &second);
        prop_assert_eq!(first.snapshot(), second.snapshot());
    }
}
