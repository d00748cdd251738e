//! What clients send and what the store answers.

use crate::bytes::Bytes;
use crate::codec::{self, DecodeError};
use serde::{Deserialize, Serialize};

/// Identifies a client session.
pub type ClientId = u64;

/// A client's write number: 1, 2, 3…, reused by retries. 0 means "no session": the
/// command is applied every time it appears in the log and nothing is remembered.
pub type Sequence = u64;

/// A command as it travels through the log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Command {
    /// The client that sent it.
    pub client: ClientId,
    /// The client's sequence number for it (see [`Sequence`]).
    pub sequence: Sequence,
    /// What to do.
    pub operation: Operation,
}

/// The first byte of a stamped command: a byte no command of the earlier, unstamped
/// format starts with (bincode's varint never starts with 255), so entries written
/// before commands carried a time still decode, as unstamped.
const STAMPED: u8 = 0xFF;

/// A stamped command's header: [`STAMPED`], then the log time as 8 bytes, little-endian.
const STAMP_BYTES: usize = 9;

impl Command {
    /// The command's bytes for a log entry, with room for the leader's time (0 until
    /// [`stamp`] writes it): `0xFF`, the time (8 bytes, little-endian), the command.
    pub fn encode(&self) -> Vec<u8> {
        let mut bytes = vec![0; STAMP_BYTES];
        bytes[0] = STAMPED;
        codec::encode_to(self, &mut bytes).expect("writing to a vector cannot fail");
        bytes
    }

    /// Decodes untrusted bytes; never panics (see [`crate::MAX_ENCODED_BYTES`]).
    pub fn decode(bytes: &[u8]) -> Result<Command, DecodeError> {
        Command::decode_stamped(bytes).map(|(command, _)| command)
    }

    /// Decodes untrusted bytes into the command and the log time its leader stamped on
    /// it (0: none; commands written before stamps existed decode with 0).
    pub fn decode_stamped(bytes: &[u8]) -> Result<(Command, u64), DecodeError> {
        match bytes {
            [STAMPED, rest @ ..] if rest.len() >= STAMP_BYTES - 1 => {
                let (time, body) = rest.split_at(STAMP_BYTES - 1);
                let time = u64::from_le_bytes(time.try_into().expect("eight bytes"));
                Ok((codec::decode(body)?, time))
            }
            [STAMPED, ..] => Err(DecodeError::Malformed("a stamped command cut short".to_string())),
            _ => Ok((codec::decode(bytes)?, 0)),
        }
    }
}

/// Writes the leader's log time `now_ms` into an encoded command (bytes that are not a
/// stamped command are left as they are: they will not decode anyway). The driver
/// calls it, through `StateMachine::stamp`, as the leader proposes the command, so the
/// time travels in the entry and every replica applies the same one.
pub fn stamp(bytes: &mut [u8], now_ms: u64) {
    if bytes.len() >= STAMP_BYTES && bytes[0] == STAMPED {
        bytes[1..STAMP_BYTES].copy_from_slice(&now_ms.to_le_bytes());
    }
}

/// An operation on the store.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Operation {
    /// Sets `key` to `value`. Answers [`Response::Done`].
    Set {
        /// The key.
        key: Bytes,
        /// Its new value.
        value: Bytes,
    },
    /// Removes `key`. Answers [`Response::Deleted`].
    Delete {
        /// The key.
        key: Bytes,
    },
    /// Sets `key` to `new` (or removes it if `new` is `None`) only if its value is
    /// `expected` (`None`: absent). Answers [`Response::Swapped`].
    CompareAndSet {
        /// The key.
        key: Bytes,
        /// The value the key must hold for the swap to happen.
        expected: Option<Bytes>,
        /// What the key holds after a swap; `None` removes it.
        new: Option<Bytes>,
    },
    /// A read ordered through the log (the slow, always-linearizable way to read).
    Read(Query),
    /// Opens a client session, named by the index of the entry that carries this (an id
    /// never handed out again). Answers [`Response::SessionOpened`].
    OpenSession,
    /// The leader's log time and session policy: expires idle sessions on every replica
    /// at once (see [`crate::session`]). Put in the log by the leader, never by a
    /// client. Answers [`Response::Done`].
    Clock {
        /// The leader's log time, in milliseconds.
        now_ms: u64,
        /// The session policy from now on.
        policy: crate::session::SessionPolicy,
    },
    // Variants are only ever added below: an entry's bytes name a variant by position.
    /// `SET` with its options (and `SETNX`, `SETEX`, `PSETEX`, `GETSET`). Answers
    /// [`Response::Stored`].
    SetWith {
        /// The key.
        key: Bytes,
        /// Its new value.
        value: Bytes,
        /// `NX`, `XX` or neither.
        condition: SetCondition,
        /// What becomes of the key's time to live.
        expiry: Expiry,
        /// `GET`: answer with the value the key held before.
        get: bool,
    },
    /// `MSET` (`only_if_none_exist: false`) or `MSETNX`: every pair in one step, time
    /// to live cleared. Answers [`Response::Stored`] (`applied`: whether they were set).
    SetMany {
        /// The keys and values, in order (a later pair for a key wins).
        pairs: Vec<(Bytes, Bytes)>,
        /// `MSETNX`: set none if any of the keys exists.
        only_if_none_exist: bool,
    },
    /// `DEL`/`UNLINK` of several keys. Answers [`Response::Integer`]: how many existed.
    DeleteMany {
        /// The keys.
        keys: Vec<Bytes>,
    },
    /// `INCR`, `DECR`, `INCRBY`, `DECRBY`: the value as a 64-bit integer plus `by`
    /// (absent counts as 0), time to live kept. Answers [`Response::Integer`].
    IncrementBy {
        /// The key.
        key: Bytes,
        /// What to add.
        by: i64,
    },
    /// `INCRBYFLOAT`: the value as a float plus `by` (its text, parsed on apply),
    /// time to live kept. Answers [`Response::Value`] with the new text.
    IncrementByFloat {
        /// The key.
        key: Bytes,
        /// The increment as the client wrote it.
        by: Bytes,
    },
    /// `APPEND`: answers [`Response::Integer`], the new length.
    Append {
        /// The key.
        key: Bytes,
        /// What to append.
        value: Bytes,
    },
    /// `SETRANGE`: overwrite from `offset`, padding with zero bytes. Answers
    /// [`Response::Integer`], the new length.
    SetRange {
        /// The key.
        key: Bytes,
        /// Where the bytes go.
        offset: u64,
        /// The bytes.
        value: Bytes,
    },
    /// `GETDEL`: answers [`Response::Value`] with the value removed.
    GetDelete {
        /// The key.
        key: Bytes,
    },
    /// `GETEX` with an option: answers [`Response::Value`] and changes the time to live.
    GetExpire {
        /// The key.
        key: Bytes,
        /// The new time to live.
        expiry: Expiry,
    },
    /// `EXPIRE`, `PEXPIRE`, `EXPIREAT`, `PEXPIREAT` (a deadline not in the future
    /// deletes the key) and `PERSIST` ([`Expiry::Clear`]). Answers [`Response::Integer`]:
    /// 1 if the time to live changed, 0 if not (no key, or the condition held back).
    Expire {
        /// The key.
        key: Bytes,
        /// The new time to live.
        expiry: Expiry,
        /// `NX`, `XX`, `GT`, `LT` or none.
        condition: ExpireCondition,
    },
    /// `RENAME` / `RENAMENX`: the value and its time to live move. Answers
    /// [`Response::Stored`] (`applied`: false if `only_if_absent` found `to`), or
    /// [`KvError::NoSuchKey`].
    Rename {
        /// The key to move.
        from: Bytes,
        /// Its new name.
        to: Bytes,
        /// `RENAMENX`: only if `to` is absent.
        only_if_absent: bool,
    },
    /// `FLUSHDB` / `FLUSHALL`: every key goes (sessions stay). Answers [`Response::Done`].
    FlushAll,
    /// `MULTI` ... `EXEC`: the operations applied in order in one entry, none of them a
    /// session or clock operation. Answers [`Response::Many`], one answer each.
    Transaction(Vec<Operation>),
}

impl Operation {
    /// `SET key value PX ttl_ms`: set, expiring `ttl_ms` after the entry's log time.
    pub fn set_with_ttl(key: Bytes, value: Bytes, ttl_ms: i64) -> Operation {
        Operation::SetWith {
            key,
            value,
            condition: SetCondition::Always,
            expiry: Expiry::In(ttl_ms),
            get: false,
        }
    }
}

/// `SET`'s condition.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SetCondition {
    /// Always.
    Always,
    /// `NX`: only if the key is absent.
    IfAbsent,
    /// `XX`: only if the key exists.
    IfPresent,
}

/// What a write does to a key's time to live. Times are log times in milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Expiry {
    /// `KEEPTTL`: as it was.
    Keep,
    /// No time to live (`SET` without options, `PERSIST`).
    Clear,
    /// Expires this long after the entry's log time (`EX`, `PX`, `EXPIRE`): 0 or less
    /// is already past.
    In(i64),
    /// Expires at this log time (`EXAT`, `PXAT`, `EXPIREAT`).
    At(i64),
}

/// `EXPIRE`'s condition (Redis 7).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExpireCondition {
    /// Always.
    Always,
    /// `NX`: only if the key has no time to live.
    IfNone,
    /// `XX`: only if it has one.
    IfSome,
    /// `GT`: only if the new deadline is later (no time to live counts as forever).
    IfLater,
    /// `LT`: only if the new deadline is earlier.
    IfEarlier,
}

/// A read of the store.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Query {
    /// The value of `key`. Answers [`Response::Value`].
    Get {
        /// The key.
        key: Bytes,
    },
    /// Keys in `[from, to)` (`to: None`: to the end) in key order, at most `limit` of
    /// them (0: no limit). Answers [`Response::Entries`].
    List {
        /// The first key that may be listed.
        from: Bytes,
        /// The first key past the range, if any.
        to: Option<Bytes>,
        /// The most entries to return; 0 for all.
        limit: u32,
    },
    // Variants are only ever added below (see `Operation`).
    /// The time to live of `key` in milliseconds (`TTL`, `PTTL`): -2 if absent, -1 if
    /// it has none. Answers [`Response::Integer`].
    TimeToLive {
        /// The key.
        key: Bytes,
    },
    /// Keys from `from` on, in order: `count` of them looked at (0: all), those matching
    /// `pattern` (Redis's glob) returned (`SCAN`, `KEYS`). Answers [`Response::Keys`].
    Keys {
        /// The first key that may be looked at.
        from: Bytes,
        /// How many live keys to look at; 0 for all.
        count: u32,
        /// The glob the keys must match; `None`: every key.
        pattern: Option<Bytes>,
    },
    /// The values of several keys at one instant (`MGET` inside a transaction).
    /// Answers [`Response::Values`].
    GetMany {
        /// The keys.
        keys: Vec<Bytes>,
    },
}

/// The store's answer to a command or query.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    /// A `Set` was applied.
    Done,
    /// A `Delete` was applied; whether the key existed.
    Deleted {
        /// Whether there was a value to remove.
        existed: bool,
    },
    /// A `CompareAndSet` was applied.
    Swapped {
        /// Whether the key held `expected` and now holds `new`.
        swapped: bool,
        /// The value before the operation.
        previous: Option<Bytes>,
    },
    /// A `Get`'s value (`None`: absent).
    Value(Option<Bytes>),
    /// A `List`'s entries, in key order.
    Entries(Vec<(Bytes, Bytes)>),
    /// An `OpenSession` was applied: the new session's client id.
    SessionOpened {
        /// The id to send the session's writes with.
        client: ClientId,
    },
    /// The command was not applied.
    Error(KvError),
    // Variants are only ever added below (see `Operation`).
    /// A number (`INCR`, `APPEND`, `DEL` of several keys, `EXPIRE`, `TTL`, ...).
    Integer(i64),
    /// A write with a condition or `GET`: whether it was done, and (asked for with
    /// `GET`) the value before.
    Stored {
        /// Whether the write happened.
        applied: bool,
        /// The value the key held before, when asked for.
        previous: Option<Bytes>,
    },
    /// Keys, and where the next page starts (`None`: no more).
    Keys {
        /// The keys found, in order.
        keys: Vec<Bytes>,
        /// The key to continue from.
        next: Option<Bytes>,
    },
    /// Several keys' values, in the order asked.
    Values(Vec<Option<Bytes>>),
    /// A transaction's answers, one per operation.
    Many(Vec<Response>),
}

/// Why a command was not applied.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KvError {
    /// The log entry does not hold a command (what the decoder said).
    Malformed(String),
    /// The client has already had a later command applied; this one is a late copy.
    StaleSequence {
        /// The client's last applied sequence number.
        last: Sequence,
    },
    /// The client has no session: it expired (unused for the idle timeout), was evicted
    /// (the table was full), or was never opened (`KV.SESSION` gives a client its id).
    SessionExpired {
        /// The client.
        client: ClientId,
    },
    /// An [`Operation::OpenSession`] applied without a log index to name the session by.
    OutsideTheLog,
    // Variants are only ever added below (see `Operation`).
    /// The value is not a 64-bit integer, or the result would not be one.
    NotAnInteger,
    /// The value is not a float.
    NotAFloat,
    /// `INCR` and the like would overflow a 64-bit integer.
    Overflow,
    /// `INCRBYFLOAT` would give NaN or an infinity.
    NotFinite,
    /// `RENAME` of a key that does not exist.
    NoSuchKey,
    /// The value would pass the largest the store keeps (`SETRANGE`, `APPEND`).
    TooLarge {
        /// The largest, in bytes.
        limit: u64,
    },
    /// A deadline out of range (`EXPIRE` with a huge number).
    InvalidExpireTime,
    /// An operation a transaction may not carry (a session, a clock, a transaction).
    NotInTransaction,
}

impl std::fmt::Display for KvError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KvError::Malformed(why) => write!(f, "not a key-value command: {why}"),
            KvError::StaleSequence { last } => {
                write!(f, "a later command of this client (sequence {last}) was already applied")
            }
            KvError::SessionExpired { client } => write!(
                f,
                "client {client} has no session (it expired, was evicted, or was never opened); open a new one with KV.SESSION"
            ),
            KvError::OutsideTheLog => write!(f, "a session opens only through the log"),
            // Redis's own texts, so clients that match on them keep working.
            KvError::NotAnInteger => write!(f, "value is not an integer or out of range"),
            KvError::NotAFloat => write!(f, "value is not a valid float"),
            KvError::Overflow => write!(f, "increment or decrement would overflow"),
            KvError::NotFinite => write!(f, "increment would produce NaN or Infinity"),
            KvError::NoSuchKey => write!(f, "no such key"),
            KvError::TooLarge { limit } => {
                write!(f, "string exceeds maximum allowed size ({limit} bytes)")
            }
            KvError::InvalidExpireTime => write!(f, "invalid expire time"),
            KvError::NotInTransaction => write!(f, "this operation cannot be part of a transaction"),
        }
    }
}

impl std::error::Error for KvError {}
