//! The table of commands the server knows: what `COMMAND`, `COMMAND COUNT`, `COMMAND
//! LIST`, `COMMAND INFO` and `COMMAND DOCS` answer, in Redis's formats, and what `kv
//! client` consults to tell a read from a write.
//!
//! Arity and key positions follow Redis: the arity counts the command's name, and a
//! negative arity `-n` means "at least n". A test checks that every name here parses
//! and that the parser knows no command missing from here.

use super::Reply;

/// One command, as `COMMAND INFO` and `COMMAND DOCS` describe it.
#[derive(Clone, Copy, Debug)]
pub struct CommandSpec {
    /// The name, in capitals.
    pub name: &'static str,
    /// Arguments counting the name; `-n`: at least `n`.
    pub arity: i64,
    /// Redis's flags: `readonly`, `write`, `admin`, `fast`, ...
    pub flags: &'static [&'static str],
    /// The first key's position, 0 for none.
    pub first_key: i64,
    /// The last key's position (-1: the last argument).
    pub last_key: i64,
    /// The step between keys.
    pub key_step: i64,
    /// Redis's group: `string`, `generic`, `connection`, `server`, `cluster`,
    /// `transactions`.
    pub group: &'static str,
    /// One line on what it does.
    pub summary: &'static str,
}

const fn spec(
    name: &'static str,
    arity: i64,
    flags: &'static [&'static str],
    keys: (i64, i64, i64),
    group: &'static str,
    summary: &'static str,
) -> CommandSpec {
    CommandSpec { name, arity, flags, first_key: keys.0, last_key: keys.1, key_step: keys.2, group, summary }
}

const NO_KEYS: (i64, i64, i64) = (0, 0, 0);
const ONE_KEY: (i64, i64, i64) = (1, 1, 1);
const ALL_KEYS: (i64, i64, i64) = (1, -1, 1);
const READ: &[&str] = &["readonly", "fast"];
const WRITE: &[&str] = &["write", "denyoom"];
/// Writes that only remove data or change a time to live: allowed past `maxmemory`.
const FREEING: &[&str] = &["write", "fast"];
const ADMIN: &[&str] = &["admin", "noscript"];
const LOCAL: &[&str] = &["fast", "stale", "loading"];

/// Every command the server answers, in alphabetical order.
pub const COMMANDS: &[CommandSpec] = &[
    spec("APPEND", 3, WRITE, ONE_KEY, "string", "Append to a value; the new length"),
    spec(
        "AUTH",
        -2,
        &["noscript", "loading", "stale", "fast", "no-auth"],
        NO_KEYS,
        "connection",
        "AUTH [user] password: authenticate the connection (default, or admin)",
    ),
    spec(
        "CLIENT",
        -2,
        LOCAL,
        NO_KEYS,
        "connection",
        "Connection probes (GETNAME, ID, SETNAME, ...), answered harmlessly",
    ),
    spec(
        "COMMAND",
        -1,
        LOCAL,
        NO_KEYS,
        "server",
        "Describe the commands: COUNT, LIST, INFO [name ...], DOCS [name ...]",
    ),
    spec(
        "CONFIG",
        -2,
        &["admin", "stale", "loading"],
        NO_KEYS,
        "server",
        "CONFIG GET pattern: the settings clients ask about",
    ),
    spec("DBSIZE", 1, READ, NO_KEYS, "server", "The number of keys (as this node has applied them)"),
    spec("DECR", 2, WRITE, ONE_KEY, "string", "Decrement an integer value by one"),
    spec("DECRBY", 3, WRITE, ONE_KEY, "string", "Decrement an integer value"),
    spec("DEL", -2, FREEING, ALL_KEYS, "generic", "Delete keys; the number that existed"),
    spec("DISCARD", 1, LOCAL, NO_KEYS, "transactions", "Drop the commands queued since MULTI"),
    spec("ECHO", 2, LOCAL, NO_KEYS, "connection", "Return the given string"),
    spec(
        "EXEC",
        1,
        &["noscript", "loading", "stale"],
        NO_KEYS,
        "transactions",
        "Apply the queued commands as one log entry",
    ),
    spec("EXISTS", -2, READ, ALL_KEYS, "generic", "How many of the keys hold a value"),
    spec("EXPIRE", -3, FREEING, ONE_KEY, "generic", "Set a time to live in seconds [NX|XX|GT|LT]"),
    spec("EXPIREAT", -3, FREEING, ONE_KEY, "generic", "Set an expiry time, Unix seconds on the log clock"),
    spec("FLUSHALL", -1, FREEING, NO_KEYS, "server", "Remove every key"),
    spec("FLUSHDB", -1, FREEING, NO_KEYS, "server", "Remove every key (one database)"),
    spec("GET", 2, READ, ONE_KEY, "string", "Read a key (linearizable; local after READONLY)"),
    spec("GETDEL", 2, FREEING, ONE_KEY, "string", "Read a key and delete it"),
    spec(
        "GETEX",
        -2,
        WRITE,
        ONE_KEY,
        "string",
        "Read a key and set its time to live [EX|PX|EXAT|PXAT|PERSIST]",
    ),
    spec("GETRANGE", 4, READ, ONE_KEY, "string", "Part of a value"),
    spec("GETSET", 3, WRITE, ONE_KEY, "string", "Set a key; its old value"),
    spec(
        "HELLO",
        -1,
        LOCAL,
        NO_KEYS,
        "connection",
        "HELLO [2 [AUTH user password]]: RESP2 only; authenticates too",
    ),
    spec("INCR", 2, WRITE, ONE_KEY, "string", "Increment an integer value by one"),
    spec("INCRBY", 3, WRITE, ONE_KEY, "string", "Increment an integer value"),
    spec("INCRBYFLOAT", 3, WRITE, ONE_KEY, "string", "Increment a float value"),
    spec(
        "INFO",
        -1,
        &["stale", "loading"],
        NO_KEYS,
        "server",
        "Server, clients, Raft and keyspace information",
    ),
    spec("KEYS", 2, &["readonly"], NO_KEYS, "generic", "Keys matching a glob (at most 100000; SCAN pages)"),
    spec(
        "KV.CAD",
        3,
        FREEING,
        ONE_KEY,
        "string",
        "Delete a key if it holds the expected value: [1 or 0, previous]",
    ),
    spec(
        "KV.CAS",
        4,
        WRITE,
        ONE_KEY,
        "string",
        "Set a key if it holds the expected value: [1 or 0, previous]",
    ),
    spec(
        "KV.EXEC",
        -5,
        WRITE,
        (4, 4, 1),
        "string",
        "KV.EXEC client sequence <SET|DEL|KV.CAS|KV.CAD ...>: a write applied exactly once",
    ),
    spec(
        "KV.LIST",
        -1,
        &["readonly"],
        NO_KEYS,
        "generic",
        "KV.LIST [from [to [limit]]]: keys and values in order",
    ),
    spec(
        "KV.SESSION",
        1,
        WRITE,
        NO_KEYS,
        "connection",
        "Open an exactly-once session: the client id for KV.EXEC",
    ),
    spec("MGET", -2, READ, ALL_KEYS, "string", "Read several keys at one instant"),
    spec("MSET", -3, WRITE, (1, -1, 2), "string", "Set several keys at once"),
    spec("MSETNX", -3, WRITE, (1, -1, 2), "string", "Set several keys if none exists"),
    spec("MULTI", 1, LOCAL, NO_KEYS, "transactions", "Queue commands until EXEC"),
    spec("PERSIST", 2, FREEING, ONE_KEY, "generic", "Remove a time to live"),
    spec("PEXPIRE", -3, FREEING, ONE_KEY, "generic", "Set a time to live in milliseconds [NX|XX|GT|LT]"),
    spec(
        "PEXPIREAT",
        -3,
        FREEING,
        ONE_KEY,
        "generic",
        "Set an expiry time, Unix milliseconds on the log clock",
    ),
    spec("PING", -1, LOCAL, NO_KEYS, "connection", "PONG, or the given string"),
    spec("PSETEX", 4, WRITE, ONE_KEY, "string", "Set a key with a time to live in milliseconds"),
    spec("PTTL", 2, READ, ONE_KEY, "generic", "Time to live in milliseconds (-1 none, -2 no key)"),
    spec("QUIT", -1, LOCAL, NO_KEYS, "connection", "Close the connection"),
    spec(
        "RAFT.ADD",
        -3,
        ADMIN,
        NO_KEYS,
        "cluster",
        "RAFT.ADD id host:port [VOTER]: add a learner promoted once caught up (or a voter now)",
    ),
    spec(
        "RAFT.INFO",
        1,
        LOCAL,
        NO_KEYS,
        "cluster",
        "This node's Raft state: role, term, leader, log, members",
    ),
    spec(
        "RAFT.MEMBERS",
        -2,
        ADMIN,
        NO_KEYS,
        "cluster",
        "RAFT.MEMBERS id[=host:port]... [LEARNERS id[=host:port]...]: set the members in one change",
    ),
    spec("RAFT.PROMOTE", 2, ADMIN, NO_KEYS, "cluster", "RAFT.PROMOTE id: make a learner a voter"),
    spec("RAFT.REMOVE", 2, ADMIN, NO_KEYS, "cluster", "RAFT.REMOVE id: remove a voter or a learner"),
    spec("RAFT.TRANSFER", 2, ADMIN, NO_KEYS, "cluster", "RAFT.TRANSFER id: hand leadership to a node"),
    spec(
        "READONLY",
        1,
        LOCAL,
        NO_KEYS,
        "cluster",
        "This connection's reads are served by any node at once, possibly stale",
    ),
    spec("READWRITE", 1, LOCAL, NO_KEYS, "cluster", "This connection's reads are linearizable again"),
    spec("RENAME", 3, WRITE, (1, 2, 1), "generic", "Rename a key (its time to live moves with it)"),
    spec("RENAMENX", 3, WRITE, (1, 2, 1), "generic", "Rename a key if the new name is free"),
    spec(
        "SCAN",
        -2,
        &["readonly"],
        NO_KEYS,
        "generic",
        "Page through keys: cursor [MATCH p] [COUNT n] (cursors are per connection)",
    ),
    spec("SELECT", 2, LOCAL, NO_KEYS, "connection", "SELECT 0: the only database"),
    spec(
        "SET",
        -3,
        WRITE,
        ONE_KEY,
        "string",
        "SET key value [NX|XX] [GET] [EX|PX|EXAT|PXAT|KEEPTTL]: write a key",
    ),
    spec("SETEX", 4, WRITE, ONE_KEY, "string", "Set a key with a time to live in seconds"),
    spec("SETNX", 3, WRITE, ONE_KEY, "string", "Set a key if absent: 1 or 0"),
    spec("SETRANGE", 4, WRITE, ONE_KEY, "string", "Overwrite part of a value; the new length"),
    spec("STRLEN", 2, READ, ONE_KEY, "string", "The length of a value"),
    spec("SUBSTR", 4, READ, ONE_KEY, "string", "Part of a value (GETRANGE)"),
    spec("TTL", 2, READ, ONE_KEY, "generic", "Time to live in seconds (-1 none, -2 no key)"),
    spec("TYPE", 2, READ, ONE_KEY, "generic", "string, or none"),
    spec("UNLINK", -2, FREEING, ALL_KEYS, "generic", "Delete keys (DEL)"),
];

/// The command named `name` (any case), if the server knows it.
pub fn lookup(name: &[u8]) -> Option<&'static CommandSpec> {
    COMMANDS.iter().find(|spec| spec.name.as_bytes().eq_ignore_ascii_case(name))
}

/// What a `COMMAND` subcommand asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CommandQuery {
    /// `COMMAND`: every command's information.
    All,
    /// `COMMAND COUNT`.
    Count,
    /// `COMMAND LIST`: the names.
    List,
    /// `COMMAND INFO name ...` (none: all).
    Info(Vec<Vec<u8>>),
    /// `COMMAND DOCS name ...` (none: all).
    Docs(Vec<Vec<u8>>),
}

impl CommandQuery {
    /// Parses `COMMAND`'s arguments; the error is the reply.
    pub fn parse(arguments: &[&[u8]]) -> Result<CommandQuery, String> {
        let Some((sub, names)) = arguments.split_first() else {
            return Ok(CommandQuery::All);
        };
        let sub = sub.to_ascii_uppercase();
        match (sub.as_slice(), names.is_empty()) {
            (b"COUNT", true) => Ok(CommandQuery::Count),
            (b"LIST", true) => Ok(CommandQuery::List),
            (b"INFO", _) => Ok(CommandQuery::Info(names.iter().map(|name| name.to_vec()).collect())),
            (b"DOCS", _) => Ok(CommandQuery::Docs(names.iter().map(|name| name.to_vec()).collect())),
            _ => Err(format!(
                "ERR unknown subcommand or wrong number of arguments for '{}'. Try COMMAND COUNT, LIST, INFO or DOCS.",
                String::from_utf8_lossy(arguments[0])
            )),
        }
    }

    /// Writes the reply.
    pub fn reply(&self, reply: &mut Reply) {
        let named = |names: &[Vec<u8>]| -> Vec<Option<&'static CommandSpec>> {
            if names.is_empty() {
                COMMANDS.iter().map(Some).collect()
            } else {
                names.iter().map(|name| lookup(name)).collect()
            }
        };
        match self {
            CommandQuery::Count => reply.integer(COMMANDS.len() as i64),
            CommandQuery::List => {
                reply.array(COMMANDS.len());
                for spec in COMMANDS {
                    reply.bulk(Some(spec.name.to_ascii_lowercase().as_bytes()));
                }
            }
            CommandQuery::All => info_array(&named(&[]), reply),
            CommandQuery::Info(names) => info_array(&named(names), reply),
            CommandQuery::Docs(names) => {
                // A flat map: name, then its documentation as a flat map; unknown names are left out.
                let known: Vec<&CommandSpec> = named(names).into_iter().flatten().collect();
                reply.array(known.len() * 2);
                for spec in known {
                    reply.bulk(Some(spec.name.to_ascii_lowercase().as_bytes()));
                    reply.array(6);
                    for (field, value) in
                        [("summary", spec.summary), ("since", "1.0.0"), ("group", spec.group)]
                    {
                        reply.bulk(Some(field.as_bytes()));
                        reply.bulk(Some(value.as_bytes()));
                    }
                }
            }
        }
    }
}

/// `COMMAND` / `COMMAND INFO`: Redis 7's ten fields per command, null for an unknown one.
fn info_array(specs: &[Option<&CommandSpec>], reply: &mut Reply) {
    reply.array(specs.len());
    for spec in specs {
        let Some(spec) = spec else {
            reply.null_array();
            continue;
        };
        reply.array(10);
        reply.bulk(Some(spec.name.to_ascii_lowercase().as_bytes()));
        reply.integer(spec.arity);
        reply.array(spec.flags.len());
        for flag in spec.flags {
            reply.simple(flag);
        }
        reply.integer(spec.first_key);
        reply.integer(spec.last_key);
        reply.integer(spec.key_step);
        // ACL categories, tips, key specifications, subcommands: none described here.
        for _ in 0..4 {
            reply.array(0);
        }
    }
}

/// Whether `name` only reads (a read that gets no answer changed nothing).
pub fn is_read_only(name: &[u8]) -> bool {
    lookup(name).is_some_and(|spec| !spec.flags.iter().any(|flag| matches!(*flag, "write" | "admin")))
}
