//! The store: ordered data plus client sessions, applied one command at a time.

use crate::bytes::Bytes;
use crate::codec::{self, DecodeError};
use crate::command::{Command, KvError, Operation, Query, Response};
use crate::session::{Admission, SessionPolicy, Sessions};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::ops::Bound;

/// The replicated key-value state: data in key order and every client's session.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvStore {
    data: BTreeMap<Bytes, Bytes>,
    sessions: Sessions,
}

/// The snapshot format's first byte, so a future layout can be told apart. Format 3 is
/// written and read an item at a time (the sessions, the number of keys, then each key
/// and value in key order), so neither side holds the whole store's bytes and a store
/// of any size restores. Format 2 (one value, session expiry) and 1 (before expiry)
/// still restore.
const SNAPSHOT_FORMAT: u8 = 3;
const SNAPSHOT_FORMAT_2: u8 = 2;
const SNAPSHOT_FORMAT_1: u8 = 1;

impl KvStore {
    /// Applies the bytes of the log entry at `index`. Bytes that are not a command
    /// answer [`KvError::Malformed`] and change nothing.
    pub fn apply_bytes_at(&mut self, index: u64, bytes: &[u8]) -> Response {
        match Command::decode(bytes) {
            Ok(command) => self.apply_owned_at(index, command),
            Err(error) => Response::Error(KvError::Malformed(error.to_string())),
        }
    }

    /// [`KvStore::apply_bytes_at`] outside a log (tests, tools): a session cannot open.
    pub fn apply_bytes(&mut self, bytes: &[u8]) -> Response {
        self.apply_bytes_at(0, bytes)
    }

    /// Applies the committed command of the entry at `index`, exactly once per (client,
    /// sequence). An [`Operation::OpenSession`] opens session `index`.
    pub fn apply_at(&mut self, index: u64, command: &Command) -> Response {
        self.once(command.client, command.sequence, |store| store.execute(index, &command.operation))
    }

    /// [`KvStore::apply_at`] taking the command: a written value moves into the store
    /// instead of being copied (a 64 MiB value is then held once, not twice).
    pub fn apply_owned_at(&mut self, index: u64, command: Command) -> Response {
        self.once(command.client, command.sequence, |store| match command.operation {
            Operation::Set { key, value } => {
                match store.data.get_mut(&key) {
                    Some(slot) => *slot = value,
                    None => {
                        store.data.insert(key, value);
                    }
                }
                Response::Done
            }
            operation => store.execute(index, &operation),
        })
    }

    /// Runs `execute` unless the session has seen `sequence` (the recorded answer) or
    /// is gone (an error), and records its answer.
    fn once(&mut self, client: u64, sequence: u64, execute: impl FnOnce(&mut Self) -> Response) -> Response {
        match self.sessions.admit(client, sequence) {
            Admission::Duplicate(response) => response,
            Admission::Stale(error) => Response::Error(error),
            Admission::Apply => {
                let response = execute(self);
                self.sessions.record(client, sequence, &response);
                response
            }
        }
    }

    /// [`KvStore::apply_at`] outside a log (tests, tools): a session cannot open.
    pub fn apply(&mut self, command: &Command) -> Response {
        self.apply_at(0, command)
    }

    fn execute(&mut self, index: u64, operation: &Operation) -> Response {
        match operation {
            Operation::OpenSession if index == 0 => Response::Error(KvError::OutsideTheLog),
            Operation::OpenSession => {
                self.sessions.open(index);
                Response::SessionOpened { client: index }
            }
            Operation::Set { key, value } => {
                self.put(key, value);
                Response::Done
            }
            Operation::Delete { key } => Response::Deleted { existed: self.data.remove(key).is_some() },
            Operation::CompareAndSet { key, expected, new } => {
                let previous = self.data.get(key).cloned();
                let swapped = previous == *expected;
                if swapped {
                    match new {
                        Some(value) => self.put(key, value),
                        None => {
                            self.data.remove(key);
                        }
                    }
                }
                Response::Swapped { swapped, previous }
            }
            Operation::Read(query) => self.query(query),
            Operation::Clock { now_ms, policy } => {
                self.sessions.advance_clock(*now_ms, *policy);
                Response::Done
            }
        }
    }

    /// Stores `value` at `key`, reusing the key and the old value's memory when the key
    /// is there already (most writes overwrite a live key).
    fn put(&mut self, key: &Bytes, value: &Bytes) {
        match self.data.get_mut(key) {
            Some(slot) => slot.assign(value),
            None => {
                self.data.insert(key.clone(), value.clone());
            }
        }
    }

    /// Answers a read from the current state. Linearizable only if the caller made sure
    /// this replica has applied everything committed before the read began (ReadIndex).
    pub fn query(&self, query: &Query) -> Response {
        match query {
            Query::Get { key } => Response::Value(self.data.get(key).cloned()),
            Query::List { from, to, limit } => {
                let end = match to {
                    // An empty or inverted range lists nothing (BTreeMap::range would panic).
                    Some(to) if to <= from => return Response::Entries(Vec::new()),
                    Some(to) => Bound::Excluded(to.as_slice()),
                    None => Bound::Unbounded,
                };
                let take = if *limit == 0 { usize::MAX } else { *limit as usize };
                let entries = self
                    .data
                    .range::<[u8], _>((Bound::Included(from.as_slice()), end))
                    .take(take)
                    .map(|(key, value)| (key.clone(), value.clone()))
                    .collect();
                Response::Entries(entries)
            }
        }
    }

    /// The value of `key`.
    pub fn get(&self, key: &[u8]) -> Option<&[u8]> {
        self.data.get(key).map(Bytes::as_slice)
    }

    /// How many keys hold a value.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether no key holds a value.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The client sessions.
    pub fn sessions(&self) -> &Sessions {
        &self.sessions
    }

    /// The clock entry a leader whose log time is `now_ms` should propose under `policy`,
    /// if one would change anything (see [`Sessions::clock_due`]).
    pub fn clock_command(&self, now_ms: u64, policy: SessionPolicy) -> Option<Command> {
        self.sessions.clock_due(now_ms, policy).then_some(Command {
            client: 0,
            sequence: 0,
            operation: Operation::Clock { now_ms, policy },
        })
    }

    /// The whole state (data and sessions) as bytes; equal states give equal bytes.
    pub fn snapshot(&self) -> Vec<u8> {
        let mut bytes = Vec::new();
        self.snapshot_to(&mut bytes).expect("writing to a vector cannot fail");
        bytes
    }

    /// Writes the snapshot to `out` an item at a time (the bytes of [`KvStore::snapshot`]).
    pub fn snapshot_to(&self, out: &mut impl std::io::Write) -> std::io::Result<()> {
        out.write_all(&[SNAPSHOT_FORMAT])?;
        codec::encode_to(&self.sessions, out)?;
        codec::encode_to(&(self.data.len() as u64), out)?;
        for pair in &self.data {
            codec::encode_to(&pair, out)?;
        }
        Ok(())
    }

    /// The state a snapshot holds. Corrupt, truncated or foreign bytes are an error.
    pub fn restore(bytes: &[u8]) -> Result<KvStore, DecodeError> {
        KvStore::restore_from(&mut &bytes[..])
    }

    /// The state the snapshot `input` holds, read an item at a time: memory beyond the
    /// store itself stays within one item. Keys must come in strictly increasing order
    /// (the order they are written in), so a snapshot has one form for one state.
    pub fn restore_from(input: &mut impl std::io::Read) -> Result<KvStore, DecodeError> {
        let mut format = [0u8];
        if input.read(&mut format).map_err(|error| DecodeError::Malformed(error.to_string()))? == 0 {
            return Err(DecodeError::Malformed("an empty snapshot".to_string()));
        }
        let store = match format[0] {
            SNAPSHOT_FORMAT => {
                let sessions: Sessions = codec::decode_from(input)?;
                let count: u64 = codec::decode_from(input)?;
                let mut data = BTreeMap::new();
                let mut last: Option<Bytes> = None;
                for _ in 0..count {
                    let (key, value): (Bytes, Bytes) = codec::decode_from(input)?;
                    if last.as_ref().is_some_and(|last| *last >= key) {
                        return Err(DecodeError::Malformed("keys out of order".to_string()));
                    }
                    // A copy of one key, not of the store.
                    last = Some(key.clone());
                    data.insert(key, value);
                }
                KvStore { data, sessions }
            }
            SNAPSHOT_FORMAT_2 | SNAPSHOT_FORMAT_1 => {
                let mut rest = Vec::new();
                input.read_to_end(&mut rest).map_err(|error| DecodeError::Malformed(error.to_string()))?;
                return match format[0] {
                    SNAPSHOT_FORMAT_2 => codec::decode(&rest),
                    _ => crate::session::decode_format_1(&rest)
                        .map(|(data, sessions)| KvStore { data, sessions }),
                };
            }
            format => return Err(DecodeError::Malformed(format!("unknown snapshot format {format}"))),
        };
        let extra = std::io::copy(input, &mut std::io::sink())
            .map_err(|error| DecodeError::Malformed(error.to_string()))?;
        if extra > 0 {
            return Err(DecodeError::TrailingBytes { extra: extra as usize });
        }
        Ok(store)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store_of(pairs: &[(&str, &str)]) -> KvStore {
        let mut store = KvStore::default();
        for (key, value) in pairs {
            store.data.insert((*key).into(), (*value).into());
        }
        store
    }

    #[test]
    fn a_streamed_snapshot_restores_from_a_reader_and_older_formats_still_restore() {
        let store = store_of(&[("a", "1"), ("b", "2"), ("c", "3")]);
        let mut streamed = Vec::new();
        store.snapshot_to(&mut streamed).unwrap();
        assert_eq!(streamed, store.snapshot());
        assert_eq!(KvStore::restore_from(&mut &streamed[..]).unwrap(), store);
        // Format 2: the whole store as one value.
        let mut format_2 = vec![SNAPSHOT_FORMAT_2];
        format_2.extend_from_slice(&codec::encode(&store));
        assert_eq!(KvStore::restore(&format_2).unwrap(), store);
    }

    #[test]
    fn keys_out_of_order_or_repeated_are_refused() {
        let mut bytes = vec![SNAPSHOT_FORMAT];
        codec::encode_to(&Sessions::default(), &mut bytes).unwrap();
        codec::encode_to(&2u64, &mut bytes).unwrap();
        let pair = (Bytes::from("b"), Bytes::from("1"));
        codec::encode_to(&pair, &mut bytes).unwrap();
        let mut repeated = bytes.clone();
        codec::encode_to(&pair, &mut repeated).unwrap();
        codec::encode_to(&(Bytes::from("a"), Bytes::from("1")), &mut bytes).unwrap();
        for bad in [bytes, repeated] {
            assert_eq!(KvStore::restore(&bad), Err(DecodeError::Malformed("keys out of order".into())));
        }
    }
}
