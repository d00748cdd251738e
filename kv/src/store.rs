//! The store: ordered data, keys' times to live and client sessions, applied one
//! command at a time.
//!
//! ## Time and expiry
//! The store never reads a clock. Its time is the log's: each command carries the time
//! its leader stamped on it (`kv::stamp`), and the leader's clock entries
//! ([`Operation::Clock`]) carry it too; applying either moves the store's time to it,
//! never back (a new leader with a slower clock cannot take time back). A key whose
//! deadline the store's time has reached is absent to every read and write at once,
//! on every replica alike, and the leader's clock entries remove such keys in the
//! background (at most [`SWEEP_PER_CLOCK`] each). Relative times to live (`EX`, `PX`,
//! `EXPIRE`) count from the entry's time; absolute ones (`EXAT`, `PXAT`, `EXPIREAT`)
//! are log times. The server stamps with the leader's wall clock (never going back),
//! so log time reads as Unix time there.

use crate::bytes::Bytes;
use crate::codec::{self, DecodeError};
use crate::command::{Command, ExpireCondition, Expiry, KvError, Operation, Query, Response, SetCondition};
use crate::glob;
use crate::session::{Admission, SessionPolicy, Sessions};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;

/// The most expired keys one clock entry removes; the next entry removes more.
pub const SWEEP_PER_CLOCK: usize = 10_000;

/// The longest value the store makes (`APPEND`, `SETRANGE`): a key and its value
/// must fit one snapshot item ([`crate::MAX_ENCODED_BYTES`]).
pub const MAX_VALUE_BYTES: u64 = 256 << 20;

/// The most keys one [`Query::Keys`] of every key (`count` 0) returns; past it the
/// answer says where it stopped (`KEYS` then refuses, pointing at `SCAN`).
pub const MAX_KEYS_ANSWERED: usize = 100_000;

/// The replicated key-value state: data in key order, deadlines, the log time and
/// every client's session. Two stores are equal when their replicated state is
/// (the expired-keys count is this replica's own).
#[derive(Clone, Debug, Default)]
pub struct KvStore {
    data: BTreeMap<Bytes, Bytes>,
    /// The deadline (log time, ms) of each key that has a time to live.
    deadlines: BTreeMap<Bytes, u64>,
    /// The same, in deadline order, for the sweep.
    by_deadline: BTreeSet<(u64, Bytes)>,
    /// The log time of the latest entry applied (milliseconds).
    now_ms: u64,
    sessions: Sessions,
    /// Keys removed because their time to live ran out, in all (not replicated state:
    /// a count for `INFO`, zero after a restore).
    expired_keys: u64,
    /// What the data costs, by [`KvStore::used_bytes`]'s measure, kept as it changes.
    used_bytes: u64,
}

/// What one key costs beyond its bytes: the map's node share, the two byte strings'
/// headers. An estimate, the same on every replica.
pub const KEY_OVERHEAD_BYTES: u64 = 64;

fn cost(key: &[u8], value: &[u8]) -> u64 {
    key.len() as u64 + value.len() as u64 + KEY_OVERHEAD_BYTES
}

impl PartialEq for KvStore {
    fn eq(&self, other: &KvStore) -> bool {
        (&self.data, &self.deadlines, self.now_ms, &self.sessions)
            == (&other.data, &other.deadlines, other.now_ms, &other.sessions)
    }
}

impl Eq for KvStore {}

/// The snapshot format's first byte, so a future layout can be told apart. Format 4 is
/// written and read an item at a time (the sessions, the log time, the number of keys,
/// then each key, its value and its deadline in key order), so neither side holds the
/// whole store's bytes and a store of any size restores. Format 3 (no deadlines), 2
/// (one value, session expiry) and 1 (before expiry) still restore.
const SNAPSHOT_FORMAT: u8 = 4;
const SNAPSHOT_FORMAT_3: u8 = 3;
const SNAPSHOT_FORMAT_2: u8 = 2;
const SNAPSHOT_FORMAT_1: u8 = 1;

/// The whole store of format 2, as one value.
#[derive(Deserialize)]
struct StoreV2 {
    data: BTreeMap<Bytes, Bytes>,
    sessions: Sessions,
}

/// Where a deadline stands against the store's time.
fn deadline_of(now_ms: u64, expiry: Expiry) -> Result<Option<Option<u64>>, KvError> {
    // Some(None): no time to live; Some(Some(t)): expires at t; None: keep as it is.
    Ok(match expiry {
        Expiry::Keep => None,
        Expiry::Clear => Some(None),
        Expiry::In(ms) => {
            let at = i128::from(now_ms) + i128::from(ms);
            Some(Some(u64::try_from(at.max(0)).map_err(|_| KvError::InvalidExpireTime)?))
        }
        Expiry::At(ms) => Some(Some(ms.max(0) as u64)),
    })
}

impl KvStore {
    /// Applies the bytes of the log entry at `index`. Bytes that are not a command
    /// answer [`KvError::Malformed`] and change nothing.
    pub fn apply_bytes_at(&mut self, index: u64, bytes: &[u8]) -> Response {
        match Command::decode_stamped(bytes) {
            Ok((command, time_ms)) => self.apply_owned_at_time(index, command, time_ms),
            Err(error) => Response::Error(KvError::Malformed(error.to_string())),
        }
    }

    /// [`KvStore::apply_bytes_at`] outside a log (tests, tools): a session cannot open.
    pub fn apply_bytes(&mut self, bytes: &[u8]) -> Response {
        self.apply_bytes_at(0, bytes)
    }

    /// Applies the committed command of the entry at `index`, exactly once per (client,
    /// sequence). An [`Operation::OpenSession`] opens session `index`. The store's time
    /// stays as it is (see [`KvStore::apply_at_time`]).
    pub fn apply_at(&mut self, index: u64, command: &Command) -> Response {
        self.apply_at_time(index, command, 0)
    }

    /// [`KvStore::apply_at`] for a command its leader stamped with log time `time_ms`:
    /// the store's time moves to it first (never back).
    pub fn apply_at_time(&mut self, index: u64, command: &Command, time_ms: u64) -> Response {
        self.now_ms = self.now_ms.max(time_ms);
        self.once(command.client, command.sequence, |store| store.execute(index, &command.operation))
    }

    /// [`KvStore::apply_at`] taking the command: a written value moves into the store
    /// instead of being copied (a 64 MiB value is then held once, not twice).
    pub fn apply_owned_at(&mut self, index: u64, command: Command) -> Response {
        self.apply_owned_at_time(index, command, 0)
    }

    /// [`KvStore::apply_at_time`] taking the command (see [`KvStore::apply_owned_at`]).
    pub fn apply_owned_at_time(&mut self, index: u64, command: Command, time_ms: u64) -> Response {
        self.now_ms = self.now_ms.max(time_ms);
        self.once(command.client, command.sequence, |store| match command.operation {
            Operation::Set { key, value } => {
                store.clear_deadline(&key);
                store.used_bytes += cost(&key, &value);
                match store.data.get_mut(&key) {
                    Some(slot) => {
                        let old = std::mem::replace(slot, value);
                        store.used_bytes -= cost(&key, &old);
                    }
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
            Operation::Clock { now_ms, policy } => {
                self.now_ms = self.now_ms.max(*now_ms);
                self.sessions.advance_clock(*now_ms, *policy);
                self.sweep(SWEEP_PER_CLOCK);
                Response::Done
            }
            Operation::Transaction(operations) => Response::Many(
                operations
                    .iter()
                    .map(|operation| match operation {
                        Operation::OpenSession | Operation::Clock { .. } | Operation::Transaction(_) => {
                            Response::Error(KvError::NotInTransaction)
                        }
                        operation => self.execute(index, operation),
                    })
                    .collect(),
            ),
            Operation::Read(query) => self.query(query),
            data => self.write(data),
        }
    }

    /// A write to the data, at the store's time.
    fn write(&mut self, operation: &Operation) -> Response {
        match operation {
            Operation::Set { key, value } => {
                self.clear_deadline(key);
                self.put(key, value);
                Response::Done
            }
            Operation::Delete { key } => Response::Deleted { existed: self.remove(key) },
            Operation::CompareAndSet { key, expected, new } => {
                let previous = self.live(key).cloned();
                let swapped = previous == *expected;
                if swapped {
                    match new {
                        Some(value) => {
                            self.clear_deadline(key);
                            self.put(key, value)
                        }
                        None => {
                            self.remove(key);
                        }
                    }
                }
                Response::Swapped { swapped, previous }
            }
            Operation::SetWith { key, value, condition, expiry, get } => {
                let deadline = match deadline_of(self.now_ms, *expiry) {
                    Ok(deadline) => deadline,
                    Err(error) => return Response::Error(error),
                };
                let current = self.live(key);
                let exists = current.is_some();
                let previous = if *get { current.cloned() } else { None };
                let applied = match condition {
                    SetCondition::Always => true,
                    SetCondition::IfAbsent => !exists,
                    SetCondition::IfPresent => exists,
                };
                if applied {
                    self.put(key, value);
                    if let Some(deadline) = deadline {
                        self.set_deadline(key, deadline);
                    }
                }
                Response::Stored { applied, previous }
            }
            Operation::SetMany { pairs, only_if_none_exist } => {
                let applied = !*only_if_none_exist || pairs.iter().all(|(key, _)| self.live(key).is_none());
                if applied {
                    for (key, value) in pairs {
                        self.clear_deadline(key);
                        self.put(key, value);
                    }
                }
                Response::Stored { applied, previous: None }
            }
            Operation::DeleteMany { keys } => {
                Response::Integer(keys.iter().filter(|key| self.remove(key)).count() as i64)
            }
            Operation::IncrementBy { key, by } => {
                let current = match self.live(key) {
                    None => 0,
                    Some(value) => match parse_integer(value) {
                        Some(number) => number,
                        None => return Response::Error(KvError::NotAnInteger),
                    },
                };
                match current.checked_add(*by) {
                    Some(number) => {
                        self.put(key, number.to_string().as_bytes());
                        Response::Integer(number)
                    }
                    None => Response::Error(KvError::Overflow),
                }
            }
            Operation::IncrementByFloat { key, by } => {
                let Some(by) = parse_float(by) else {
                    return Response::Error(KvError::NotAFloat);
                };
                let current = match self.live(key) {
                    None => 0.0,
                    Some(value) => match parse_float(value) {
                        Some(number) => number,
                        None => return Response::Error(KvError::NotAFloat),
                    },
                };
                let sum = current + by;
                if !sum.is_finite() {
                    return Response::Error(KvError::NotFinite);
                }
                let text = format_float(sum);
                self.put(key, text.as_bytes());
                Response::Value(Some(Bytes::from(text)))
            }
            Operation::Append { key, value } => {
                let length = self.live(key).map_or(0, |current| current.len()) + value.len();
                if length as u64 > MAX_VALUE_BYTES {
                    return Response::Error(KvError::TooLarge { limit: MAX_VALUE_BYTES });
                }
                match self.data.get_mut(key) {
                    Some(current) => current.0.extend_from_slice(value),
                    None => {
                        self.data.insert(key.clone(), value.clone());
                        self.used_bytes += KEY_OVERHEAD_BYTES + key.len() as u64;
                    }
                }
                self.used_bytes += value.len() as u64;
                Response::Integer(length as i64)
            }
            Operation::SetRange { key, offset, value } => {
                let current = self.live(key).map_or(0, |current| current.len()) as u64;
                if value.is_empty() {
                    return Response::Integer(current as i64);
                }
                let end = offset.saturating_add(value.len() as u64);
                if end > MAX_VALUE_BYTES {
                    return Response::Error(KvError::TooLarge { limit: MAX_VALUE_BYTES });
                }
                if !self.data.contains_key(key.as_slice()) {
                    self.used_bytes += KEY_OVERHEAD_BYTES + key.len() as u64;
                }
                let slot = self.data.entry(key.clone()).or_default();
                let before = slot.len() as u64;
                if before < end {
                    slot.0.resize(end as usize, 0);
                }
                slot.0[*offset as usize..end as usize].copy_from_slice(value);
                let after = slot.len() as u64;
                self.used_bytes += after - before;
                Response::Integer(after as i64)
            }
            Operation::GetDelete { key } => {
                let value = self.live(key).cloned();
                if value.is_some() {
                    self.remove(key);
                }
                Response::Value(value)
            }
            Operation::GetExpire { key, expiry } => {
                let deadline = match deadline_of(self.now_ms, *expiry) {
                    Ok(deadline) => deadline,
                    Err(error) => return Response::Error(error),
                };
                let value = self.live(key).cloned();
                if let (Some(_), Some(deadline)) = (&value, deadline) {
                    self.set_deadline(key, deadline);
                }
                Response::Value(value)
            }
            Operation::Expire { key, expiry, condition } => {
                if self.live(key).is_none() {
                    return Response::Integer(0);
                }
                let new = match deadline_of(self.now_ms, *expiry) {
                    Ok(Some(deadline)) => deadline,
                    Ok(None) => return Response::Integer(0),
                    Err(error) => return Response::Error(error),
                };
                let old = self.deadlines.get(key).copied();
                // No time to live counts as forever for GT and LT, as in Redis.
                let allowed = match condition {
                    ExpireCondition::Always => true,
                    ExpireCondition::IfNone => old.is_none(),
                    ExpireCondition::IfSome => old.is_some(),
                    ExpireCondition::IfLater => matches!((old, new), (Some(old), Some(new)) if new > old),
                    ExpireCondition::IfEarlier => match (old, new) {
                        (None, Some(_)) => true,
                        (Some(old), Some(new)) => new < old,
                        _ => false,
                    },
                };
                // PERSIST on a key without a time to live changes nothing.
                if !allowed || (new.is_none() && old.is_none()) {
                    return Response::Integer(0);
                }
                self.set_deadline(key, new);
                Response::Integer(1)
            }
            Operation::Rename { from, to, only_if_absent } => {
                if self.live(from).is_none() {
                    return Response::Error(KvError::NoSuchKey);
                }
                if *only_if_absent && self.live(to).is_some() {
                    return Response::Stored { applied: false, previous: None };
                }
                if from != to {
                    let value = self.data.remove(from).expect("live");
                    self.used_bytes -= cost(from, &value);
                    let deadline = self.take_deadline(from);
                    self.remove(to);
                    self.used_bytes += cost(to, &value);
                    self.data.insert(to.clone(), value);
                    if let Some(deadline) = deadline {
                        self.set_deadline(to, Some(deadline));
                    }
                }
                Response::Stored { applied: true, previous: None }
            }
            Operation::FlushAll => {
                self.data.clear();
                self.used_bytes = 0;
                self.deadlines.clear();
                self.by_deadline.clear();
                Response::Done
            }
            Operation::Read(_)
            | Operation::OpenSession
            | Operation::Clock { .. }
            | Operation::Transaction(_) => unreachable!("executed above"),
        }
    }

    /// The value of `key` if it holds one whose deadline has not come. A key found
    /// expired is removed here, on every replica at the same entry alike.
    fn live(&mut self, key: &[u8]) -> Option<&Bytes> {
        if self.deadlines.get(key).is_some_and(|&deadline| deadline <= self.now_ms) {
            self.remove(key);
            self.expired_keys += 1;
            return None;
        }
        self.data.get(key)
    }

    /// Whether `key` is live at the store's time, without changing anything (reads).
    fn is_live(&self, key: &[u8]) -> bool {
        self.deadlines.get(key).is_none_or(|&deadline| deadline > self.now_ms)
    }

    /// Removes `key` and its deadline; whether it held a live value.
    fn remove(&mut self, key: &[u8]) -> bool {
        let live = self.is_live(key);
        self.take_deadline(key);
        self.drop_value(key).is_some() && live
    }

    fn take_deadline(&mut self, key: &[u8]) -> Option<u64> {
        let deadline = self.deadlines.remove(key)?;
        self.by_deadline.remove(&(deadline, Bytes::from(key)));
        Some(deadline)
    }

    fn clear_deadline(&mut self, key: &[u8]) {
        if !self.deadlines.is_empty() {
            self.take_deadline(key);
        }
    }

    /// Gives a live `key` the deadline `deadline` (`None`: none); one already past
    /// removes it.
    fn set_deadline(&mut self, key: &Bytes, deadline: Option<u64>) {
        self.take_deadline(key);
        match deadline {
            Some(deadline) if deadline <= self.now_ms => {
                self.drop_value(key);
                self.expired_keys += 1;
            }
            Some(deadline) => {
                self.deadlines.insert(key.clone(), deadline);
                self.by_deadline.insert((deadline, key.clone()));
            }
            None => {}
        }
    }

    /// Removes up to `most` keys whose deadline has come, earliest first.
    fn sweep(&mut self, most: usize) {
        for _ in 0..most {
            let Some((deadline, _)) = self.by_deadline.first() else { break };
            if *deadline > self.now_ms {
                break;
            }
            let (_, key) = self.by_deadline.pop_first().expect("a first");
            self.deadlines.remove(&key);
            self.drop_value(&key);
            self.expired_keys += 1;
        }
    }

    /// Stores `value` at `key`, reusing the key and the old value's memory when the key
    /// is there already (most writes overwrite a live key). The deadline stays.
    fn put(&mut self, key: &Bytes, value: &[u8]) {
        match self.data.get_mut(key) {
            Some(slot) => {
                self.used_bytes = self.used_bytes + value.len() as u64 - slot.len() as u64;
                slot.assign(value)
            }
            None => {
                self.used_bytes += cost(key, value);
                self.data.insert(key.clone(), Bytes::from(value));
            }
        }
    }

    /// Removes `key`'s value (not its deadline), keeping the count of bytes used.
    fn drop_value(&mut self, key: &[u8]) -> Option<Bytes> {
        let value = self.data.remove(key)?;
        self.used_bytes -= cost(key, &value);
        Some(value)
    }

    /// Answers a read from the current state at the store's time. Linearizable only if
    /// the caller made sure this replica has applied everything committed before the
    /// read began (ReadIndex).
    pub fn query(&self, query: &Query) -> Response {
        match query {
            Query::Get { key } => Response::Value(self.get(key).map(Bytes::from)),
            Query::GetMany { keys } => {
                Response::Values(keys.iter().map(|key| self.get(key).map(Bytes::from)).collect())
            }
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
                    .filter(|(key, _)| self.is_live(key))
                    .take(take)
                    .map(|(key, value)| (key.clone(), value.clone()))
                    .collect();
                Response::Entries(entries)
            }
            Query::TimeToLive { key } => Response::Integer(match self.get(key) {
                None => -2,
                Some(_) => match self.deadlines.get(key.as_slice()) {
                    None => -1,
                    Some(deadline) => (deadline - self.now_ms) as i64,
                },
            }),
            Query::Keys { from, count, pattern } => {
                let looked_at = if *count == 0 { usize::MAX } else { *count as usize };
                let mut live = self
                    .data
                    .range::<[u8], _>((Bound::Included(from.as_slice()), Bound::Unbounded))
                    .map(|(key, _)| key)
                    .filter(|key| self.is_live(key));
                let mut keys = Vec::new();
                for key in live.by_ref().take(looked_at) {
                    if pattern.as_ref().is_none_or(|pattern| glob::matches(pattern, key)) {
                        keys.push(key.clone());
                        if *count == 0 && keys.len() > MAX_KEYS_ANSWERED {
                            break;
                        }
                    }
                }
                Response::Keys { keys, next: live.next().cloned() }
            }
        }
    }

    /// The value of `key`, if it holds one at the store's time.
    pub fn get(&self, key: &[u8]) -> Option<&[u8]> {
        self.data.get(key).filter(|_| self.is_live(key)).map(Bytes::as_slice)
    }

    /// How many keys hold a value (expired keys not yet removed included, as in Redis).
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether no key holds a value.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// What the data costs, estimated the same on every replica: each key's and value's
    /// bytes plus [`KEY_OVERHEAD_BYTES`]. What `--maxmemory` is held to.
    pub fn used_bytes(&self) -> u64 {
        self.used_bytes
    }

    /// [`KvStore::used_bytes`] counted afresh (tests hold the kept count to it).
    pub fn recount_used_bytes(&self) -> u64 {
        self.data.iter().map(|(key, value)| cost(key, value)).sum()
    }

    /// How many keys have a time to live.
    pub fn keys_with_deadline(&self) -> usize {
        self.deadlines.len()
    }

    /// Keys removed because their time to live ran out, since this store was made or
    /// restored.
    pub fn expired_keys(&self) -> u64 {
        self.expired_keys
    }

    /// The store's log time: the latest applied entry's, in milliseconds.
    pub fn log_time_ms(&self) -> u64 {
        self.now_ms
    }

    /// The client sessions.
    pub fn sessions(&self) -> &Sessions {
        &self.sessions
    }

    /// The clock entry a leader whose log time is `now_ms` should propose, if one would
    /// change anything: with a session `policy`, when sessions are due (see
    /// [`Sessions::clock_due`]); in any case when a key's deadline has come, so it
    /// leaves every replica. `None` for `policy` keeps the policy the log has.
    pub fn clock_command(&self, now_ms: u64, policy: Option<SessionPolicy>) -> Option<Command> {
        let sessions_due = policy.is_some_and(|policy| self.sessions.clock_due(now_ms, policy));
        let keys_due =
            now_ms > self.now_ms && self.by_deadline.first().is_some_and(|(deadline, _)| *deadline <= now_ms);
        (sessions_due || keys_due).then(|| Command {
            client: 0,
            sequence: 0,
            operation: Operation::Clock { now_ms, policy: policy.unwrap_or(self.sessions.policy()) },
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
        codec::encode_to(&self.now_ms, out)?;
        codec::encode_to(&(self.data.len() as u64), out)?;
        for (key, value) in &self.data {
            codec::encode_to(&(key, value, self.deadlines.get(key)), out)?;
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
            SNAPSHOT_FORMAT | SNAPSHOT_FORMAT_3 => {
                let mut store = KvStore { sessions: codec::decode_from(input)?, ..KvStore::default() };
                let with_deadlines = format[0] == SNAPSHOT_FORMAT;
                store.now_ms =
                    if with_deadlines { codec::decode_from(input)? } else { store.sessions.log_time_ms() };
                let count: u64 = codec::decode_from(input)?;
                let mut last: Option<Bytes> = None;
                for _ in 0..count {
                    let (key, value, deadline): (Bytes, Bytes, Option<u64>) = if with_deadlines {
                        codec::decode_from(input)?
                    } else {
                        let (key, value) = codec::decode_from(input)?;
                        (key, value, None)
                    };
                    if last.as_ref().is_some_and(|last| *last >= key) {
                        return Err(DecodeError::Malformed("keys out of order".to_string()));
                    }
                    // A copy of one key, not of the store.
                    last = Some(key.clone());
                    if let Some(deadline) = deadline {
                        store.deadlines.insert(key.clone(), deadline);
                        store.by_deadline.insert((deadline, key.clone()));
                    }
                    store.used_bytes += cost(&key, &value);
                    store.data.insert(key, value);
                }
                store
            }
            SNAPSHOT_FORMAT_2 | SNAPSHOT_FORMAT_1 => {
                let mut rest = Vec::new();
                input.read_to_end(&mut rest).map_err(|error| DecodeError::Malformed(error.to_string()))?;
                let (data, sessions) = match format[0] {
                    SNAPSHOT_FORMAT_2 => {
                        let store: StoreV2 = codec::decode(&rest)?;
                        (store.data, store.sessions)
                    }
                    _ => crate::session::decode_format_1(&rest)?,
                };
                let now_ms = sessions.log_time_ms();
                let mut store = KvStore { data, sessions, now_ms, ..KvStore::default() };
                store.used_bytes = store.recount_used_bytes();
                return Ok(store);
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

/// A value as Redis reads an integer: optional minus, digits, no spaces, no plus, no
/// leading zeros (but "0"), within 64 bits.
fn parse_integer(value: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(value).ok()?;
    let digits = text.strip_prefix('-').unwrap_or(text);
    if digits.is_empty()
        || !digits.bytes().all(|byte| byte.is_ascii_digit())
        || (digits.len() > 1 && digits.starts_with('0'))
        || text == "-0"
    {
        return None;
    }
    text.parse().ok()
}

/// A value as Redis reads a float: no spaces, not NaN.
fn parse_float(value: &[u8]) -> Option<f64> {
    let text = std::str::from_utf8(value).ok()?;
    if text.is_empty() || text.trim() != text {
        return None;
    }
    let number: f64 = match text.to_ascii_lowercase().as_str() {
        "inf" | "+inf" | "infinity" | "+infinity" => f64::INFINITY,
        "-inf" | "-infinity" => f64::NEG_INFINITY,
        _ => text.parse().ok()?,
    };
    (!number.is_nan()).then_some(number)
}

/// A float as `INCRBYFLOAT` writes it: the shortest text that reads back the same,
/// without an exponent and without a trailing ".0" (Redis writes 10.5, 3 and 0.1).
fn format_float(number: f64) -> String {
    let text = format!("{number}");
    match text.strip_suffix(".0") {
        Some(whole) => whole.to_string(),
        None if text == "-0" => "0".to_string(),
        None => text,
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
        format_2.extend_from_slice(&codec::encode(&(&store.data, &store.sessions)));
        assert_eq!(KvStore::restore(&format_2).unwrap(), store);
        // Format 3: items without deadlines.
        let mut format_3 = vec![SNAPSHOT_FORMAT_3];
        codec::encode_to(&store.sessions, &mut format_3).unwrap();
        codec::encode_to(&3u64, &mut format_3).unwrap();
        for pair in &store.data {
            codec::encode_to(&pair, &mut format_3).unwrap();
        }
        assert_eq!(KvStore::restore(&format_3).unwrap(), store);
    }

    #[test]
    fn keys_out_of_order_or_repeated_are_refused() {
        let mut bytes = vec![SNAPSHOT_FORMAT_3];
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
