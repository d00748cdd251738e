//! The store: ordered data plus client sessions, applied one command at a time.

use crate::bytes::Bytes;
use crate::codec::{self, DecodeError};
use crate::command::{Command, KvError, Operation, Query, Response};
use crate::session::{Admission, Sessions};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::ops::Bound;

/// The replicated key-value state: data in key order and every client's session.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvStore {
    data: BTreeMap<Bytes, Bytes>,
    sessions: Sessions,
}

/// The snapshot format's first byte, so a future layout can be told apart.
const SNAPSHOT_FORMAT: u8 = 1;

impl KvStore {
    /// Applies a log entry's bytes. Bytes that are not a command answer
    /// [`KvError::Malformed`] and change nothing.
    pub fn apply_bytes(&mut self, bytes: &[u8]) -> Response {
        match Command::decode(bytes) {
            Ok(command) => self.apply(&command),
            Err(error) => Response::Error(KvError::Malformed(error.to_string())),
        }
    }

    /// Applies a committed command exactly once per (client, sequence).
    pub fn apply(&mut self, command: &Command) -> Response {
        match self.sessions.admit(command.client, command.sequence) {
            Admission::Duplicate(response) => response,
            Admission::Stale(error) => Response::Error(error),
            Admission::Apply => {
                let response = self.execute(&command.operation);
                self.sessions.record(command.client, command.sequence, &response);
                response
            }
        }
    }

    fn execute(&mut self, operation: &Operation) -> Response {
        match operation {
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
            Some((format, _)) => Err(DecodeError::Malformed(format!("unknown snapshot format {format}"))),
            None => Err(DecodeError::Malformed("an empty snapshot".to_string())),
        }
    }
}
