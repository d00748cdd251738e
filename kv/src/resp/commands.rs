//! The commands clients send, parsed from RESP arguments into what they mean.
//!
//! | Command | Meaning | Reply |
//! |---|---|---|
//! | `GET key` | read a key (linearizable; local after `READONLY`) | bulk or null |
//! | `MGET key [key ...]` | read keys at one instant | array |
//! | `EXISTS key [key ...]` | how many of the keys hold a value | integer |
//! | `SET key value [NX [GET]]` | write; `NX`: only if absent (its other options: `strings.rs`) | `+OK` (null if `NX` found a value); with `GET`: the value found, null if none (and set) |
//! | `DEL key [key ...]` | remove keys (several in one entry) | integer: how many existed |
//! | `KV.CAS key expected new` | set `new` if the key holds `expected` | `[1 or 0, previous value]` |
//! | `KV.CAD key expected` | delete if the key holds `expected` | `[1 or 0, previous value]` |
//! | `KV.LIST [from [to [limit]]]` | keys in `[from, to)` in order (`""` = unbounded end) | flat array key, value, ... |
//! | `KV.SESSION` | open an exactly-once session (through the log) | integer: the client id for `KV.EXEC` |
//! | `KV.EXEC client sequence <write> ...` | a write in the session `client` (from `KV.SESSION`), numbered 1, 2, 3…: a retry with the same sequence applies once | as the write; `-SESSIONEXPIRED` once the session is gone |
//! | `RAFT.INFO` | this node's Raft state | bulk text |
//! | `RAFT.TRANSFER id` | hand leadership to node `id` | `+OK` once started |
//! | `RAFT.ADD id host:port [VOTER]` | add a learner the leader promotes once it has caught up (`VOTER`: a voter at once); the address goes through the log in the same entry | `+OK` once in force |
//! | `RAFT.PROMOTE id` | make a learner a voter now | `+OK` once in force |
//! | `RAFT.REMOVE id` | remove a voter or a learner | `+OK` once in force |
//! | `RAFT.MEMBERS id[=host:port]... [LEARNERS id[=host:port]...]` | make the members exactly these, in one change (joint consensus when several voters change); new nodes name their address | `+OK` once the final configuration is in force |
//! | `READONLY` / `READWRITE` | this connection's reads may be stale and served anywhere / are linearizable | `+OK` |
//! | `PING [text]`, `ECHO text`, `QUIT`, `SELECT 0`, `INFO`, `DBSIZE` | as in Redis | |
//! | `COMMAND [COUNT \| LIST \| INFO name... \| DOCS name...]` | the command table (`command_table.rs`) | as in Redis |
//! | `CONFIG GET pattern` / `CONFIG SET name value` | the settings by Redis's names; `maxclients` and `timeout` can be set | pairs / `+OK` |
//! | `CLIENT ...` | the probes redis-cli and redis-benchmark send | harmless answers |
//! | `AUTH [user] password`, `HELLO [2 [AUTH user password]]` | authenticate (`access.rs`) | `+OK`, the server's description; `-WRONGPASS` |
//! | `MULTI`, `EXEC`, `DISCARD` | a transaction: one log entry (`session.rs`) | `+QUEUED`, then every reply |
//! | `INCR`, `APPEND`, `SET ... EX`, `EXPIRE`, `TTL`, `KEYS`, `SCAN`, `RENAME`, ... | the Redis commands on strings and keys (`strings.rs`) | as in Redis |

use super::table::CommandQuery;
use crate::Bytes;
use raft_core::NodeId;

/// A write a session may carry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WriteCommand {
    /// `SET key value`, or with `NX` only if absent.
    Set {
        /// The key.
        key: Bytes,
        /// The value.
        value: Bytes,
        /// Only if the key is absent.
        only_if_absent: bool,
        /// `GET` (with `NX` only): reply with the value found, null if there was none
        /// (and the value was set), as Redis 7 does.
        return_previous: bool,
    },
    /// `DEL key`.
    Delete(Bytes),
    /// `KV.CAS` / `KV.CAD`: `new: None` deletes.
    CompareAndSet {
        /// The key.
        key: Bytes,
        /// The value it must hold.
        expected: Bytes,
        /// Its value after a swap; `None` removes it.
        new: Option<Bytes>,
    },
}

/// What a client asked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientCommand {
    /// `PING [text]`.
    Ping(Option<Bytes>),
    /// `ECHO text`.
    Echo(Bytes),
    /// `QUIT`.
    Quit,
    /// A probe answered `+OK` (`SELECT 0`, `CLIENT SETNAME`, ...).
    Ok,
    /// `COMMAND [COUNT | LIST | INFO names | DOCS names]`.
    Command(CommandQuery),
    /// `CLIENT ID` and the like: an integer.
    Integer(i64),
    /// `CLIENT GETNAME`: a null bulk string.
    Null,
    /// `CONFIG GET pattern`.
    ConfigGet(Bytes),
    /// `CONFIG SET name value`, read.
    ConfigSet(super::config::Setting),
    /// `HELLO [protover [AUTH user password] [SETNAME name]]`: RESP2 only.
    Hello {
        /// The protocol version asked for, if any.
        protocol: Option<i64>,
        /// `AUTH user password`.
        auth: Option<(Bytes, Bytes)>,
    },
    /// `AUTH [user] password`.
    Auth {
        /// The user (`None`: the default user).
        user: Option<Bytes>,
        /// The password.
        password: Bytes,
    },
    /// `INFO [section ...]`.
    Info(super::info::InfoSections),
    /// `DBSIZE`.
    DbSize,
    /// `READONLY` (`true`) or `READWRITE`.
    ReadOnly(bool),
    /// `GET key`.
    Get(Bytes),
    /// `MGET keys...`.
    MultiGet(Vec<Bytes>),
    /// `EXISTS keys...`.
    Exists(Vec<Bytes>),
    /// `KV.LIST from to limit` (`to: None`: to the end; `limit` 0: all).
    List {
        /// The first key that may be listed.
        from: Bytes,
        /// The first key past the range.
        to: Option<Bytes>,
        /// The most pairs; 0 for all.
        limit: u32,
    },
    /// A write without a session (each key of a `DEL` on its own).
    Write(Vec<WriteCommand>),
    /// `KV.SESSION`: open a session.
    OpenSession,
    /// `KV.EXEC client sequence <write>`.
    SessionWrite {
        /// The session's client id.
        client: u64,
        /// Its sequence number for this write (a retry reuses it).
        sequence: u64,
        /// The write.
        write: WriteCommand,
    },
    /// `RAFT.INFO`.
    RaftInfo,
    /// `RAFT.TRANSFER id`.
    Transfer(NodeId),
    /// `RAFT.ADD`, `RAFT.PROMOTE`, `RAFT.REMOVE`, `RAFT.MEMBERS`.
    Membership(MembershipCommand),
    /// A write on strings and keys (`INCR`, `SET ... EX`, `MSET`, `RENAME`, ...): one
    /// log entry.
    Data {
        /// What the store does.
        operation: crate::Operation,
        /// How its answer becomes the reply.
        reply: ReplyShape,
    },
    /// A read on strings and keys (`STRLEN`, `TTL`, `KEYS`, ...).
    Query {
        /// What the store answers.
        query: crate::Query,
        /// How its answer becomes the reply.
        reply: ReplyShape,
    },
    /// `SCAN cursor [MATCH pattern] [COUNT n] [TYPE t]`.
    Scan {
        /// 0 to start, else a cursor this connection was given.
        cursor: u64,
        /// The glob keys must match.
        pattern: Option<Bytes>,
        /// How many keys to look at.
        count: u32,
        /// `TYPE string` or none (every key is a string); `false`: another type, none.
        only_strings: bool,
    },
    /// `MULTI`.
    Multi,
    /// `EXEC`.
    Exec,
    /// `DISCARD`.
    Discard,
    /// `KV.EXEC client sequence <write>` for a write of [`ClientCommand::Data`].
    SessionData {
        /// The session's client id.
        client: u64,
        /// Its sequence number for this write.
        sequence: u64,
        /// The write.
        operation: crate::Operation,
        /// How its answer becomes the reply.
        reply: ReplyShape,
    },
}

/// How the store's answer to a string or key command becomes its RESP reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplyShape {
    /// `+OK` (a write done; `RENAME`).
    Ok,
    /// `+OK` if done, null if a condition held it back (`SET ... NX|XX`).
    OkOrNull,
    /// The value before, or null (`SET ... GET`, `GETSET`).
    Previous,
    /// A bulk string or null (`GETDEL`, `GETEX`, `INCRBYFLOAT`).
    Bulk,
    /// An integer (`INCR`, `APPEND`, `DEL`, `EXPIRE`, `PTTL`, ...).
    Integer,
    /// 1 if done, 0 if a condition held it back (`SETNX`, `MSETNX`, `RENAMENX`).
    AppliedInteger,
    /// The value's length (`STRLEN`).
    Length,
    /// Part of the value, Redis's inclusive range with negatives from the end
    /// (`GETRANGE`).
    Range {
        /// The first byte.
        start: i64,
        /// The last byte.
        end: i64,
    },
    /// `+string` or `+none` (`TYPE`).
    Type,
    /// Milliseconds to live as whole seconds, rounded (`TTL`); -1 and -2 as they are.
    Seconds,
    /// The keys (`KEYS`); an error if there were too many.
    Keys,
    /// Values in order (`MGET` in a transaction).
    Values,
    /// How many of the values are there (`EXISTS` in a transaction).
    Count,
}

/// A membership change a client asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MembershipCommand {
    /// `RAFT.ADD id host:port [VOTER]`: a learner the leader promotes once it has caught
    /// up, or with `VOTER` a voter at once.
    Add {
        /// The new node.
        node: NodeId,
        /// Where it listens for its peers.
        address: String,
        /// A voter at once, not a learner first.
        voter: bool,
    },
    /// `RAFT.PROMOTE id`: a learner made a voter now.
    Promote(NodeId),
    /// `RAFT.REMOVE id`: a voter or a learner removed.
    Remove(NodeId),
    /// `RAFT.MEMBERS ...`: the voters and learners exactly these.
    Set {
        /// The voters after the change.
        voters: Vec<NodeId>,
        /// The learners after the change.
        learners: Vec<NodeId>,
        /// Addresses given for nodes (`id=host:port`), new ones at least.
        addresses: Vec<(NodeId, String)>,
    },
}

/// `id` or `id=host:port`, as `RAFT.MEMBERS` names a member.
fn member(argument: &[u8]) -> Result<(NodeId, Option<String>), String> {
    let text = std::str::from_utf8(argument).map_err(|_| "ERR a member is not text".to_string())?;
    let (id, address) = match text.split_once('=') {
        Some((id, address)) => {
            super::check_address(address).map_err(|why| format!("ERR {why}"))?;
            (id, Some(address.to_string()))
        }
        None => (text, None),
    };
    let id = id.parse().map_err(|_| format!("ERR member {text:?} is not a node id or id=host:port"))?;
    Ok((id, address))
}

fn parse_members(rest: &[&[u8]]) -> Result<MembershipCommand, String> {
    let (mut voters, mut learners, mut addresses) = (Vec::new(), Vec::new(), Vec::new());
    let mut in_learners = false;
    for argument in rest {
        if argument.eq_ignore_ascii_case(b"LEARNERS") {
            if in_learners {
                return Err("ERR syntax error: LEARNERS given twice".into());
            }
            in_learners = true;
            continue;
        }
        let (node, address) = member(argument)?;
        if voters.contains(&node) || learners.contains(&node) {
            return Err(format!("ERR node {node} is named twice"));
        }
        if let Some(address) = address {
            addresses.push((node, address));
        }
        if in_learners {
            learners.push(node);
        } else {
            voters.push(node);
        }
    }
    if voters.is_empty() {
        return Err("ERR RAFT.MEMBERS needs at least one voter".into());
    }
    Ok(MembershipCommand::Set { voters, learners, addresses })
}

fn wrong_arity(name: &str) -> String {
    format!("ERR wrong number of arguments for '{}' command", name.to_ascii_lowercase())
}

fn integer<T: std::str::FromStr>(argument: &[u8], what: &str) -> Result<T, String> {
    std::str::from_utf8(argument)
        .ok()
        .and_then(|text| text.parse().ok())
        .ok_or_else(|| format!("ERR {what} is not an integer or out of range"))
}

fn bytes(argument: &[u8]) -> Bytes {
    Bytes::from(argument)
}

/// Parses a command; the error is the reply to send (`ERR ...`).
pub fn parse(arguments: &[&[u8]]) -> Result<ClientCommand, String> {
    let Some((name, rest)) = arguments.split_first() else {
        return Err("ERR empty command".into());
    };
    // Command names are short: upper-cased on the stack, no allocation per command.
    let mut upper = [0u8; 24];
    let name_owned;
    let name: &str = match std::str::from_utf8(name) {
        Ok(text) if text.len() <= upper.len() => {
            upper[..text.len()].copy_from_slice(text.as_bytes());
            upper[..text.len()].make_ascii_uppercase();
            std::str::from_utf8(&upper[..text.len()]).expect("ASCII case changes keep UTF-8")
        }
        _ => {
            name_owned = String::from_utf8_lossy(name).to_ascii_uppercase();
            &name_owned
        }
    };
    let arity = |allowed: std::ops::RangeInclusive<usize>| {
        if allowed.contains(&rest.len()) {
            Ok(())
        } else {
            Err(wrong_arity(name))
        }
    };
    let command = match name {
        "PING" => {
            arity(0..=1)?;
            ClientCommand::Ping(rest.first().map(|text| bytes(text)))
        }
        "ECHO" => {
            arity(1..=1)?;
            ClientCommand::Echo(bytes(rest[0]))
        }
        "QUIT" => ClientCommand::Quit,
        "SELECT" => {
            arity(1..=1)?;
            if rest[0] != b"0" {
                return Err("ERR DB index is out of range (this server has one database, 0)".into());
            }
            ClientCommand::Ok
        }
        "COMMAND" => ClientCommand::Command(CommandQuery::parse(rest)?),
        "CLIENT" => match rest.first().map(|sub| sub.to_ascii_uppercase()) {
            Some(sub) if sub == b"GETNAME" => ClientCommand::Null,
            Some(sub) if sub == b"ID" => ClientCommand::Integer(1),
            Some(_) => ClientCommand::Ok,
            None => return Err(wrong_arity(name)),
        },
        "CONFIG" => match rest {
            [sub, pattern] if sub.eq_ignore_ascii_case(b"GET") => ClientCommand::ConfigGet(bytes(pattern)),
            [sub, name, value] if sub.eq_ignore_ascii_case(b"SET") => {
                ClientCommand::ConfigSet(super::config::parse_set(name, value)?)
            }
            [sub] if sub.eq_ignore_ascii_case(b"RESETSTAT") => ClientCommand::Ok,
            _ => return Err("ERR CONFIG supports GET pattern, SET name value and RESETSTAT".into()),
        },
        "HELLO" => {
            let protocol = match rest.first() {
                Some(version) => Some(
                    integer(version, "protocol version")
                        .map_err(|_| "ERR Protocol version is not an integer or out of range".to_string())?,
                ),
                None => None,
            };
            let mut auth = None;
            let mut options = rest.iter().skip(1);
            while let Some(option) = options.next() {
                if option.eq_ignore_ascii_case(b"AUTH") {
                    let (Some(user), Some(password)) = (options.next(), options.next()) else {
                        return Err("ERR Syntax error in HELLO option 'auth'".into());
                    };
                    auth = Some((bytes(user), bytes(password)));
                } else if option.eq_ignore_ascii_case(b"SETNAME") {
                    options.next().ok_or("ERR Syntax error in HELLO option 'setname'")?;
                } else {
                    return Err(format!(
                        "ERR Syntax error in HELLO option '{}'",
                        String::from_utf8_lossy(option)
                    ));
                }
            }
            ClientCommand::Hello { protocol, auth }
        }
        "AUTH" => match rest {
            [password] => ClientCommand::Auth { user: None, password: bytes(password) },
            [user, password] => ClientCommand::Auth { user: Some(bytes(user)), password: bytes(password) },
            _ => return Err(wrong_arity(name)),
        },
        "INFO" => ClientCommand::Info(super::info::InfoSections::parse(rest)),
        "DBSIZE" => {
            arity(0..=0)?;
            ClientCommand::DbSize
        }
        "READONLY" => ClientCommand::ReadOnly(true),
        "READWRITE" => ClientCommand::ReadOnly(false),
        "GET" => {
            arity(1..=1)?;
            ClientCommand::Get(bytes(rest[0]))
        }
        "MGET" => {
            arity(1..=usize::MAX)?;
            ClientCommand::MultiGet(rest.iter().map(|key| bytes(key)).collect())
        }
        "EXISTS" => {
            arity(1..=usize::MAX)?;
            ClientCommand::Exists(rest.iter().map(|key| bytes(key)).collect())
        }
        "KV.LIST" => {
            arity(0..=3)?;
            let from = rest.first().map(|from| bytes(from)).unwrap_or_default();
            let to = rest.get(1).filter(|to| !to.is_empty()).map(|to| bytes(to));
            let limit = match rest.get(2) {
                Some(limit) => integer(limit, "limit")?,
                None => 0,
            };
            ClientCommand::List { from, to, limit }
        }
        // The forms of SET and DEL a compare-and-set or a delete covers, and the
        // compare-and-set commands; the other forms of SET and DEL are below.
        "SET" | "DEL" | "KV.CAS" | "KV.CAD" if is_basic_write(name, rest) => {
            ClientCommand::Write(vec![write(name, rest)?])
        }
        "MULTI" => {
            arity(0..=0)?;
            ClientCommand::Multi
        }
        "EXEC" => {
            arity(0..=0)?;
            ClientCommand::Exec
        }
        "DISCARD" => {
            arity(0..=0)?;
            ClientCommand::Discard
        }
        "KV.SESSION" => {
            arity(0..=0)?;
            ClientCommand::OpenSession
        }
        "KV.EXEC" => {
            let [client, sequence, written @ ..] = rest else {
                return Err(wrong_arity(name));
            };
            if written.is_empty() {
                return Err(wrong_arity(name));
            }
            let client = integer(client, "client id")?;
            let sequence = integer(sequence, "sequence")?;
            if sequence == 0 {
                return Err("ERR a session's sequence numbers start at 1".into());
            }
            let carried = || {
                format!(
                    "ERR KV.EXEC carries a write (SET, DEL, INCR, KV.CAS, ...), not '{}'",
                    String::from_utf8_lossy(written[0]).to_ascii_uppercase()
                )
            };
            let parsed = match parse(written) {
                Err(error) if error.starts_with("ERR unknown command") => return Err(carried()),
                other => other?,
            };
            match parsed {
                ClientCommand::Write(mut writes) if writes.len() == 1 => {
                    ClientCommand::SessionWrite { client, sequence, write: writes.remove(0) }
                }
                ClientCommand::Data { operation, reply } => {
                    ClientCommand::SessionData { client, sequence, operation, reply }
                }
                _ => return Err(carried()),
            }
        }
        "RAFT.INFO" => ClientCommand::RaftInfo,
        "RAFT.TRANSFER" => {
            arity(1..=1)?;
            ClientCommand::Transfer(integer(rest[0], "node id")?)
        }
        "RAFT.ADD" => {
            arity(2..=3)?;
            let address =
                String::from_utf8(rest[1].to_vec()).map_err(|_| "ERR the address is not text".to_string())?;
            super::check_address(&address).map_err(|why| format!("ERR {why}"))?;
            let voter = match rest.get(2) {
                None => false,
                Some(word) if word.eq_ignore_ascii_case(b"VOTER") => true,
                Some(_) => return Err("ERR syntax error: RAFT.ADD id host:port [VOTER]".into()),
            };
            let node = integer(rest[0], "node id")?;
            ClientCommand::Membership(MembershipCommand::Add { node, address, voter })
        }
        "RAFT.PROMOTE" => {
            arity(1..=1)?;
            ClientCommand::Membership(MembershipCommand::Promote(integer(rest[0], "node id")?))
        }
        "RAFT.REMOVE" => {
            arity(1..=1)?;
            ClientCommand::Membership(MembershipCommand::Remove(integer(rest[0], "node id")?))
        }
        "RAFT.MEMBERS" => {
            arity(1..=usize::MAX)?;
            ClientCommand::Membership(parse_members(rest)?)
        }
        _ => {
            if let Some(parsed) = super::strings::parse(name, rest) {
                return parsed;
            }
            let preview: Vec<String> = rest
                .iter()
                .take(3)
                .map(|argument| format!("'{}'", String::from_utf8_lossy(argument)))
                .collect();
            return Err(format!(
                "ERR unknown command '{}', with args beginning with: {}",
                String::from_utf8_lossy(arguments[0]),
                preview.join(" ")
            ));
        }
    };
    Ok(command)
}

/// Whether a `SET` or `DEL` is of the forms a plain write or a compare-and-set covers:
/// `SET key value`, `SET key value NX`, `SET key value NX GET` (either order), `DEL key`.
fn is_basic_write(name: &str, rest: &[&[u8]]) -> bool {
    let word = |argument: &[u8], text: &str| argument.eq_ignore_ascii_case(text.as_bytes());
    match (name, rest) {
        ("SET", [_, _]) | ("DEL", [_]) => true,
        ("SET", [_, _, option]) => word(option, "NX"),
        ("SET", [_, _, first, second]) => {
            (word(first, "NX") && word(second, "GET")) || (word(first, "GET") && word(second, "NX"))
        }
        ("SET" | "DEL", _) => false,
        _ => true,
    }
}

/// Parses the arguments of a single-key write named `name`.
fn write(name: &str, rest: &[&[u8]]) -> Result<WriteCommand, String> {
    match (name, rest) {
        ("SET", [key, value]) => Ok(WriteCommand::Set {
            key: bytes(key),
            value: bytes(value),
            only_if_absent: false,
            return_previous: false,
        }),
        ("SET", [key, value, option]) if option.eq_ignore_ascii_case(b"NX") => Ok(WriteCommand::Set {
            key: bytes(key),
            value: bytes(value),
            only_if_absent: true,
            return_previous: false,
        }),
        ("SET", [key, value, first, second])
            if [first, second].iter().any(|option| option.eq_ignore_ascii_case(b"NX"))
                && [first, second].iter().any(|option| option.eq_ignore_ascii_case(b"GET")) =>
        {
            Ok(WriteCommand::Set {
                key: bytes(key),
                value: bytes(value),
                only_if_absent: true,
                return_previous: true,
            })
        }
        ("DEL", [key]) => Ok(WriteCommand::Delete(bytes(key))),
        ("KV.CAS", [key, expected, new]) => Ok(WriteCommand::CompareAndSet {
            key: bytes(key),
            expected: bytes(expected),
            new: Some(bytes(new)),
        }),
        ("KV.CAD", [key, expected]) => {
            Ok(WriteCommand::CompareAndSet { key: bytes(key), expected: bytes(expected), new: None })
        }
        _ => Err(wrong_arity(name)),
    }
}

impl WriteCommand {
    /// The store operation.
    pub fn operation(&self) -> crate::Operation {
        match self {
            WriteCommand::Set { key, value, only_if_absent: false, .. } => {
                crate::Operation::Set { key: key.clone(), value: value.clone() }
            }
            WriteCommand::Set { key, value, only_if_absent: true, .. } => {
                crate::Operation::CompareAndSet { key: key.clone(), expected: None, new: Some(value.clone()) }
            }
            WriteCommand::Delete(key) => crate::Operation::Delete { key: key.clone() },
            WriteCommand::CompareAndSet { key, expected, new } => crate::Operation::CompareAndSet {
                key: key.clone(),
                expected: Some(expected.clone()),
                new: new.clone(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(text: &str) -> Vec<&[u8]> {
        text.split(' ').map(str::as_bytes).collect()
    }

    #[test]
    fn commands_parse_case_insensitively_with_their_arguments() {
        assert_eq!(parse(&args("get k")), Ok(ClientCommand::Get("k".into())));
        assert_eq!(
            parse(&args("SET k v NX")),
            Ok(ClientCommand::Write(vec![WriteCommand::Set {
                key: "k".into(),
                value: "v".into(),
                only_if_absent: true,
                return_previous: false
            }]))
        );
        assert_eq!(
            parse(&args("set k v get nx")),
            Ok(ClientCommand::Write(vec![WriteCommand::Set {
                key: "k".into(),
                value: "v".into(),
                only_if_absent: true,
                return_previous: true
            }]))
        );
        assert_eq!(
            parse(&args("del a b")),
            Ok(ClientCommand::Data {
                operation: crate::Operation::DeleteMany { keys: vec!["a".into(), "b".into()] },
                reply: ReplyShape::Integer
            })
        );
        assert_eq!(parse(&args("del a")), Ok(ClientCommand::Write(vec![WriteCommand::Delete("a".into())])));
        assert_eq!(
            parse(&args("KV.EXEC 7 4 INCR n")),
            Ok(ClientCommand::SessionData {
                client: 7,
                sequence: 4,
                operation: crate::Operation::IncrementBy { key: "n".into(), by: 1 },
                reply: ReplyShape::Integer
            })
        );
        assert_eq!(
            parse(&args("KV.EXEC 7 3 kv.cas k old new")),
            Ok(ClientCommand::SessionWrite {
                client: 7,
                sequence: 3,
                write: WriteCommand::CompareAndSet {
                    key: "k".into(),
                    expected: "old".into(),
                    new: Some("new".into())
                }
            })
        );
        assert_eq!(
            parse(&args("KV.LIST a")),
            Ok(ClientCommand::List { from: "a".into(), to: None, limit: 0 })
        );
        assert_eq!(
            parse(&args("RAFT.ADD 4 127.0.0.1:9004")),
            Ok(ClientCommand::Membership(MembershipCommand::Add {
                node: 4,
                address: "127.0.0.1:9004".into(),
                voter: false
            }))
        );
        assert_eq!(
            parse(&args("RAFT.ADD 4 127.0.0.1:9004 voter")),
            Ok(ClientCommand::Membership(MembershipCommand::Add {
                node: 4,
                address: "127.0.0.1:9004".into(),
                voter: true
            }))
        );
        assert_eq!(
            parse(&args("RAFT.MEMBERS 1 2 4=127.0.0.1:9004 LEARNERS 3")),
            Ok(ClientCommand::Membership(MembershipCommand::Set {
                voters: vec![1, 2, 4],
                learners: vec![3],
                addresses: vec![(4, "127.0.0.1:9004".into())]
            }))
        );
    }

    #[test]
    fn bad_commands_get_redis_style_errors() {
        assert_eq!(parse(&args("GET")), Err("ERR wrong number of arguments for 'get' command".into()));
        assert!(parse(&args("BOGUS now"))
            .unwrap_err()
            .starts_with("ERR unknown command 'BOGUS', with args beginning with: 'now'"));
        assert!(parse(&args("SET k v EX 10 NX NX")).unwrap_err().contains("syntax error"));
        assert!(parse(&args("KV.EXEC x 1 SET k v")).unwrap_err().contains("client id is not an integer"));
        assert!(parse(&args("KV.EXEC 1 0 SET k v")).unwrap_err().contains("start at 1"));
        assert!(parse(&args("KV.EXEC 1 1 GET k")).unwrap_err().contains("not 'GET'"));
        assert!(parse(&args("KV.EXEC 1 1 NOPE k")).unwrap_err().contains("not 'NOPE'"));
        assert!(parse(&args("RAFT.ADD 4 nowhere")).is_err());
        assert!(parse(&args("RAFT.ADD 4 127.0.0.1:9004 LEARNER")).unwrap_err().contains("syntax error"));
        assert!(parse(&args("RAFT.MEMBERS LEARNERS 3")).unwrap_err().contains("at least one voter"));
        assert!(parse(&args("RAFT.MEMBERS 1 2 LEARNERS 2")).unwrap_err().contains("named twice"));
        assert!(parse(&args("RAFT.MEMBERS 1 x=127.0.0.1:1")).unwrap_err().contains("not a node id"));
        assert!(parse(&args("RAFT.MEMBERS 1 4=nowhere")).unwrap_err().contains("host:port"));
        assert!(parse(&args("SELECT 3")).unwrap_err().contains("out of range"));
        assert_eq!(parse(&[]), Err("ERR empty command".into()));
    }

    #[test]
    fn every_command_in_the_table_parses_and_command_count_is_its_size() {
        use super::super::table::{CommandQuery, COMMANDS};
        for spec in COMMANDS {
            let mut arguments: Vec<&[u8]> = vec![spec.name.as_bytes()];
            arguments.resize(spec.arity.unsigned_abs() as usize, b"1");
            if let Err(error) = parse(&arguments) {
                assert!(!error.contains("unknown command"), "{}: {error}", spec.name);
            }
        }
        assert_eq!(parse(&args("command count")), Ok(ClientCommand::Command(CommandQuery::Count)));
        let mut reply = super::super::Reply::default();
        CommandQuery::Count.reply(&mut reply);
        assert_eq!(reply.bytes, format!(":{}\r\n", COMMANDS.len()).into_bytes());
        assert!(parse(&args("command nonsense")).unwrap_err().contains("unknown subcommand"));
    }

    #[test]
    fn command_info_and_docs_describe_known_commands_in_redis_formats() {
        use super::super::table::CommandQuery;
        let reply = |query: CommandQuery| {
            let mut reply = super::super::Reply::default();
            query.reply(&mut reply);
            String::from_utf8(reply.bytes).unwrap()
        };
        assert_eq!(
            reply(CommandQuery::Info(vec![b"get".to_vec(), b"nope".to_vec()])),
            "*2\r\n*10\r\n$3\r\nget\r\n:2\r\n*2\r\n+readonly\r\n+fast\r\n:1\r\n:1\r\n:1\r\n*0\r\n*0\r\n*0\r\n*0\r\n*-1\r\n"
        );
        let docs = reply(CommandQuery::Docs(vec![b"SET".to_vec()]));
        assert!(docs.starts_with("*2\r\n$3\r\nset\r\n*6\r\n$7\r\nsummary\r\n"), "{docs}");
        assert!(docs.contains("$5\r\ngroup\r\n$6\r\nstring\r\n"), "{docs}");
        assert!(super::super::table::is_read_only(b"mget"));
        assert!(!super::super::table::is_read_only(b"kv.exec"));
        assert!(!super::super::table::is_read_only(b"RAFT.ADD"));
    }
}
