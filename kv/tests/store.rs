//! The store's behaviour: every operation, sessions, snapshots, and hostile bytes.

use kv::{Bytes, Command, DecodeError, KvError, KvStore, Operation, Query, Response};

fn command(client: u64, sequence: u64, operation: Operation) -> Command {
    Command { client, sequence, operation }
}

fn set(key: &str, value: &str) -> Operation {
    Operation::Set { key: key.into(), value: value.into() }
}

fn get(store: &KvStore, key: &str) -> Response {
    store.query(&Query::Get { key: key.into() })
}

/// A store where clients 1 and 2 opened their sessions (the log's first two entries).
fn with_sessions() -> KvStore {
    let mut store = KvStore::default();
    for index in 1..=2 {
        assert_eq!(
            store.apply_at(index, &command(0, 0, Operation::OpenSession)),
            Response::SessionOpened { client: index }
        );
    }
    store
}

#[test]
fn a_session_opens_through_the_log_and_an_unknown_one_is_refused() {
    let mut store = KvStore::default();
    let open = command(0, 0, Operation::OpenSession);
    assert_eq!(store.apply(&open), Response::Error(KvError::OutsideTheLog), "no index to name it by");
    assert_eq!(
        store.apply(&command(7, 1, set("a", "x"))),
        Response::Error(KvError::SessionExpired { client: 7 })
    );
    assert!(store.is_empty());
    assert_eq!(store.apply_at(7, &open), Response::SessionOpened { client: 7 });
    assert_eq!(store.apply_at(8, &command(7, 1, set("a", "x"))), Response::Done);
    // A retried open leaves a second, unused session: harmless.
    assert_eq!(store.apply_at(9, &open), Response::SessionOpened { client: 9 });
    assert_eq!(store.sessions().len(), 2);
    // Without a session, a write applies each time (sequence 0), as Redis does.
    assert_eq!(store.apply(&command(0, 0, set("b", "1"))), Response::Done);
    assert_eq!(store.sessions().len(), 2);
}

#[test]
fn set_get_delete() {
    let mut store = with_sessions();
    assert_eq!(get(&store, "a"), Response::Value(None));
    assert_eq!(store.apply(&command(1, 1, set("a", "x"))), Response::Done);
    assert_eq!(get(&store, "a"), Response::Value(Some("x".into())));
    assert_eq!(store.apply(&command(1, 2, set("a", "y"))), Response::Done);
    assert_eq!(get(&store, "a"), Response::Value(Some("y".into())));
    let delete = Operation::Delete { key: "a".into() };
    assert_eq!(store.apply(&command(1, 3, delete.clone())), Response::Deleted { existed: true });
    assert_eq!(store.apply(&command(1, 4, delete)), Response::Deleted { existed: false });
    assert_eq!(get(&store, "a"), Response::Value(None));
    assert!(store.is_empty());
}

#[test]
fn compare_and_set_swaps_only_on_the_expected_value() {
    let mut store = with_sessions();
    let cas = |expected: Option<&str>, new: Option<&str>| Operation::CompareAndSet {
        key: "k".into(),
        expected: expected.map(Into::into),
        new: new.map(Into::into),
    };
    // Absent is a value one can expect: create-if-absent.
    assert_eq!(
        store.apply(&command(1, 1, cas(None, Some("a")))),
        Response::Swapped { swapped: true, previous: None }
    );
    assert_eq!(
        store.apply(&command(1, 2, cas(None, Some("b")))),
        Response::Swapped { swapped: false, previous: Some("a".into()) }
    );
    assert_eq!(store.get(b"k"), Some(&b"a"[..]));
    assert_eq!(
        store.apply(&command(1, 3, cas(Some("a"), Some("c")))),
        Response::Swapped { swapped: true, previous: Some("a".into()) }
    );
    // Swapping to None removes the key.
    assert_eq!(
        store.apply(&command(1, 4, cas(Some("c"), None))),
        Response::Swapped { swapped: true, previous: Some("c".into()) }
    );
    assert_eq!(store.get(b"k"), None);
}

#[test]
fn list_returns_a_range_in_key_order_up_to_a_limit() {
    let mut store = with_sessions();
    for (sequence, key) in ["d", "b", "a", "c", "e"].iter().enumerate() {
        store.apply(&command(1, sequence as u64 + 1, set(key, &key.to_uppercase())));
    }
    let list = |from: &str, to: Option<&str>, limit| {
        store.query(&Query::List { from: from.into(), to: to.map(Into::into), limit })
    };
    let entries = |keys: &[&str]| {
        Response::Entries(
            keys.iter().map(|key| (Bytes::from(*key), Bytes::from(key.to_uppercase()))).collect(),
        )
    };
    assert_eq!(list("", None, 0), entries(&["a", "b", "c", "d", "e"]));
    assert_eq!(list("b", Some("d"), 0), entries(&["b", "c"]));
    assert_eq!(list("b", None, 2), entries(&["b", "c"]));
    assert_eq!(list("d", Some("b"), 0), entries(&[]), "an inverted range is empty, not a panic");
    assert_eq!(list("c", Some("c"), 0), entries(&[]));
    // Reads through the log answer the same and leave the state alone.
    let before = store.clone();
    let read = Operation::Read(Query::List { from: "b".into(), to: Some("d".into()), limit: 0 });
    assert_eq!(store.apply(&command(2, 1, read)), entries(&["b", "c"]));
    assert_eq!(store.get(b"b"), before.get(b"b"));
}

#[test]
fn a_retried_command_applies_once_and_gets_the_first_answer() {
    let mut store = with_sessions();
    let delete = command(1, 1, Operation::Delete { key: "a".into() });
    store.apply(&command(2, 1, set("a", "x")));
    assert_eq!(store.apply(&delete), Response::Deleted { existed: true });
    store.apply(&command(2, 2, set("a", "y")));
    // The retry does not delete the new value and answers what the first copy did.
    assert_eq!(store.apply(&delete), Response::Deleted { existed: true });
    assert_eq!(store.get(b"a"), Some(&b"y"[..]));
    // A copy of an older command, once the client moved on, is refused.
    store.apply(&command(1, 2, set("b", "1")));
    assert_eq!(store.apply(&delete), Response::Error(KvError::StaleSequence { last: 2 }));
    assert_eq!(store.get(b"a"), Some(&b"y"[..]));
}

#[test]
fn malformed_entries_answer_an_error_and_change_nothing() {
    let mut store = with_sessions();
    store.apply(&command(1, 1, set("a", "x")));
    let before = store.clone();
    for bytes in [&b""[..], b"liveness probe", &[0xff; 64], &[0u8, 1, 2]] {
        match store.apply_bytes(bytes) {
            Response::Error(KvError::Malformed(_)) => {}
            other => panic!("{bytes:?} answered {other:?}"),
        }
    }
    // A valid command followed by garbage is not a command either.
    let mut trailing = command(1, 2, set("a", "y")).encode();
    trailing.push(0);
    assert!(matches!(store.apply_bytes(&trailing), Response::Error(KvError::Malformed(_))));
    assert_eq!(store, before);
}

#[test]
fn a_length_prefix_past_the_decode_limit_is_refused() {
    // Client 1, sequence 1, Set, then a key whose varint length claims ~2^60 bytes.
    let bytes = [1u8, 1, 0, 0xff, 0, 0, 0, 0, 0, 0, 0x10];
    assert!(Command::decode(&bytes).is_err());
    // Within the limit but far past the input: 200 MB claimed, 3 bytes given.
    let mut bytes = vec![1u8, 1, 0, 0xfc];
    bytes.extend_from_slice(&200_000_000u32.to_le_bytes());
    bytes.extend_from_slice(b"abc");
    assert!(Command::decode(&bytes).is_err());
}

#[test]
fn snapshots_hold_data_and_sessions() {
    let mut store = with_sessions();
    store.apply(&command(1, 1, set("a", "x")));
    store.apply(&command(2, 7, Operation::Delete { key: "zz".into() }));
    let snapshot = store.snapshot();
    let mut restored = KvStore::restore(&snapshot).expect("a snapshot restores");
    assert_eq!(restored, store);
    assert_eq!(restored.snapshot(), snapshot, "equal states, equal bytes");
    // Sessions survive: a retry after restore is still answered from memory.
    assert_eq!(
        restored.apply(&command(2, 7, Operation::Delete { key: "zz".into() })),
        Response::Deleted { existed: false }
    );
    assert_eq!(restored.sessions().get(2).map(|session| session.last_sequence), Some(7));
}

#[test]
fn corrupt_snapshots_are_errors() {
    let mut store = with_sessions();
    store.apply(&command(1, 1, set("a", "x")));
    let snapshot = store.snapshot();
    assert!(KvStore::restore(&[]).is_err());
    assert!(matches!(KvStore::restore(&[9, 0]), Err(DecodeError::Malformed(_))));
    for cut in 1..snapshot.len() {
        assert!(KvStore::restore(&snapshot[..cut]).is_err(), "truncated at {cut}");
    }
    let mut longer = snapshot.clone();
    longer.push(0);
    assert!(matches!(KvStore::restore(&longer), Err(DecodeError::TrailingBytes { extra: 1 })));
}
