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

/// The snapshot format's first byte, so a future layout can be told apart. Format 2
/// added session expiry (log time, the policy, each session's last use); format 1
/// snapshots still restore.
const SNAPSHOT_FORMAT: u8 = 2;
const SNAPSHOT_FORMAT_1: u8 = 1;

impl KvStore {
    /// Applies the bytes of the log entry at `index`. Bytes that are not a command
    /// answer [`KvError::Malformed`] and change nothing.
    pub fn apply_bytes_at(&mut self, index: u64, bytes: &[u8]) -> Response {
        match Command::decode(bytes) {
            Ok(command) => self.apply_at(index, &command),
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
        match self.sessions.admit(command.client, command.sequence) {
            Admission::Duplicate(response) => response,
            Admission::Stale(error) => Response::Error(error),
            Admission::Apply => {
                let response = self.execute(index, &command.operation);
                self.sessions.record(command.client, command.sequence, &response);
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
        let mut bytes = vec![SNAPSHOT_FORMAT];
        bytes.extend_from_slice(&codec::encode(self));
        bytes
    }

    /// The state a snapshot holds. Corrupt, truncated or foreign bytes are an error.
    pub fn restore(bytes: &[u8]) -> Result<KvStore, DecodeError> {
        match bytes.split_first() {
            Some((&SNAPSHOT_FORMAT, rest)) => codec::decode(rest),
            Some((&SNAPSHOT_FORMAT_1, rest)) => {
                let (data, sessions): (BTreeMap<Bytes, Bytes>, Sessions) =
                    crate::session::decode_format_1(rest)?;
                Ok(KvStore { data, sessions })
            }
            Some((format, _)) => Err(DecodeError::Malformed(format!("unknown snapshot format {format}"))),
            None => Err(DecodeError::Malformed("an empty snapshot".to_string())),
        }
    }
}
