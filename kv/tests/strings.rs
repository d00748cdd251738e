//! The Redis commands on strings and keys, end to end through the protocol session
//! and the store, one test per family: each write goes through the log as one entry,
//! stamped with the leader's time, as a node would apply it. Replies are compared with
//! what Redis answers.

use kv::resp::{Answer, Request, RespSession, StatusKind};
use kv::KvStore;

/// A one-node world: a protocol session in front of a store, a log index and a clock.
struct World {
    store: KvStore,
    session: RespSession,
    index: u64,
    /// The leader's clock, stamped on each write.
    now_ms: u64,
}

impl World {
    fn new() -> World {
        World { store: KvStore::default(), session: RespSession::new(), index: 0, now_ms: 1_000_000 }
    }

    /// Sends one command (arguments split on spaces) and answers everything it asks.
    fn send(&mut self, command: &str) -> String {
        let arguments: Vec<&str> = command.split(' ').collect();
        let mut bytes = format!("*{}\r\n", arguments.len());
        for argument in arguments {
            bytes.push_str(&format!("${}\r\n{argument}\r\n", argument.len()));
        }
        self.session.receive(bytes.as_bytes());
        while let Some((id, request)) = self.session.next_request() {
            let answer = match request {
                Request::Write(command) => {
                    self.index += 1;
                    let mut entry = command.encode();
                    kv::stamp(&mut entry, self.now_ms);
                    Answer::Response(self.store.apply_bytes_at(self.index, &entry))
                }
                Request::Read { query, .. } => Answer::Response(self.store.query(&query)),
                Request::ReadMany { keys, .. } => {
                    Answer::Values(keys.iter().map(|key| self.store.get(key).map(kv::Bytes::from)).collect())
                }
                Request::Status(StatusKind::DbSize) => Answer::Count(self.store.len() as u64),
                other => panic!("not asked in these tests: {other:?}"),
            };
            self.session.answer(id, answer);
        }
        let output = String::from_utf8_lossy(self.session.output()).into_owned();
        self.session.output_sent();
        assert_eq!(self.store.used_bytes(), self.store.recount_used_bytes(), "after {command}");
        output
    }

    /// The leader's clock moves on; the store learns of it with the next entry.
    fn wait(&mut self, ms: u64) {
        self.now_ms += ms;
    }

    /// The leader's background clock entry, as the driver proposes it.
    fn housekeeping(&mut self) {
        if let Some(clock) = self.store.clock_command(self.now_ms, None) {
            self.index += 1;
            self.store.apply_bytes_at(self.index, &clock.encode());
        }
    }
}

fn check(world: &mut World, exchanges: &[(&str, &str)]) {
    for (command, expected) in exchanges {
        assert_eq!(world.send(command), *expected, "{command}");
    }
}

#[test]
fn counters_add_in_place_with_redis_errors() {
    let mut world = World::new();
    check(
        &mut world,
        &[
            ("INCR n", ":1\r\n"),
            ("INCRBY n 41", ":42\r\n"),
            ("DECR n", ":41\r\n"),
            ("DECRBY n -9", ":50\r\n"),
            ("GET n", "$2\r\n50\r\n"),
            ("SET s hello", "+OK\r\n"),
            ("INCR s", "-ERR value is not an integer or out of range\r\n"),
            ("SET big 9223372036854775807", "+OK\r\n"),
            ("INCR big", "-ERR increment or decrement would overflow\r\n"),
            ("SET padded 007", "+OK\r\n"),
            ("INCR padded", "-ERR value is not an integer or out of range\r\n"),
            ("INCRBYFLOAT f 10.5", "$4\r\n10.5\r\n"),
            ("INCRBYFLOAT f 0.1", "$4\r\n10.6\r\n"),
            ("INCRBYFLOAT f -5.6", "$1\r\n5\r\n"),
            ("INCRBYFLOAT s 1", "-ERR value is not a valid float\r\n"),
            ("INCRBYFLOAT f nope", "-ERR value is not a valid float\r\n"),
            ("INCRBY n x", "-ERR value is not an integer or out of range\r\n"),
            ("INCR", "-ERR wrong number of arguments for 'incr' command\r\n"),
        ],
    );
}

#[test]
fn strings_append_measure_and_splice() {
    let mut world = World::new();
    check(
        &mut world,
        &[
            ("APPEND k Hello", ":5\r\n"),
            ("APPEND k _World", ":11\r\n"),
            ("STRLEN k", ":11\r\n"),
            ("STRLEN none", ":0\r\n"),
            ("GETRANGE k 0 4", "$5\r\nHello\r\n"),
            ("GETRANGE k -5 -1", "$5\r\nWorld\r\n"),
            ("GETRANGE k 5 1", "$0\r\n\r\n"),
            ("GETRANGE k 0 100", "$11\r\nHello_World\r\n"),
            ("SETRANGE k 6 Redis", ":11\r\n"),
            ("GET k", "$11\r\nHello_Redis\r\n"),
            ("SETRANGE pad 3 x", ":4\r\n"),
            ("GET pad", "$4\r\n\0\0\0x\r\n"),
            ("SETRANGE k -1 x", "-ERR offset is out of range\r\n"),
            ("MSET a 1 b 2", "+OK\r\n"),
            ("MGET a b c", "*3\r\n$1\r\n1\r\n$1\r\n2\r\n$-1\r\n"),
            ("MSETNX b 3 c 4", ":0\r\n"),
            ("MSETNX c 4 d 5", ":1\r\n"),
            ("GETSET a 9", "$1\r\n1\r\n"),
            ("GETDEL a", "$1\r\n9\r\n"),
            ("GETDEL a", "$-1\r\n"),
            ("SETNX a 1", ":1\r\n"),
            ("SETNX a 2", ":0\r\n"),
            ("SET a 3 XX GET", "$1\r\n1\r\n"),
            ("SET fresh 1 XX", "$-1\r\n"),
            ("SET a 4 NX", "$-1\r\n"),
            ("MSET a", "-ERR wrong number of arguments for 'mset' command\r\n"),
        ],
    );
}

#[test]
fn keys_are_deleted_renamed_listed_and_scanned() {
    let mut world = World::new();
    check(
        &mut world,
        &[
            ("MSET user:1 a user:2 b user:3 c other x", "+OK\r\n"),
            ("EXISTS user:1 user:2 nope user:1", ":3\r\n"),
            ("TYPE user:1", "+string\r\n"),
            ("TYPE nope", "+none\r\n"),
            ("KEYS user:*", "*3\r\n$6\r\nuser:1\r\n$6\r\nuser:2\r\n$6\r\nuser:3\r\n"),
            ("KEYS user:[13]", "*2\r\n$6\r\nuser:1\r\n$6\r\nuser:3\r\n"),
            ("RENAME other user:4", "+OK\r\n"),
            ("RENAME nope x", "-ERR no such key\r\n"),
            ("RENAMENX user:4 user:1", ":0\r\n"),
            ("RENAMENX user:4 user:5", ":1\r\n"),
            ("DEL user:5 nope user:3", ":2\r\n"),
            ("UNLINK user:2", ":1\r\n"),
            ("DBSIZE", ":1\r\n"),
            ("FLUSHDB", "+OK\r\n"),
            ("DBSIZE", ":0\r\n"),
        ],
    );
    // SCAN pages through every key once, cursor by cursor, whatever COUNT.
    for key in 0..25 {
        world.send(&format!("SET key{key:02} v"));
    }
    let mut seen = Vec::new();
    let mut cursor = "0".to_string();
    for _ in 0..100 {
        let reply = world.send(&format!("SCAN {cursor} MATCH key* COUNT 7"));
        let lines: Vec<&str> = reply.split("\r\n").collect();
        cursor = lines[2].to_string();
        seen.extend(lines.iter().filter(|line| line.starts_with("key")).map(|line| line.to_string()));
        if cursor == "0" {
            break;
        }
    }
    assert_eq!(cursor, "0", "the scan ends");
    let expected: Vec<String> = (0..25).map(|key| format!("key{key:02}")).collect();
    assert_eq!(seen, expected);
    assert_eq!(world.send("SCAN 12345"), "-ERR invalid cursor\r\n");
    assert_eq!(world.send("SCAN 0 TYPE hash"), "*2\r\n$1\r\n0\r\n*0\r\n");
}

#[test]
fn times_to_live_run_on_the_log_clock() {
    let mut world = World::new();
    check(
        &mut world,
        &[
            ("SET k v EX 10", "+OK\r\n"),
            ("TTL k", ":10\r\n"),
            ("PTTL k", ":10000\r\n"),
            ("TTL none", ":-2\r\n"),
            ("SET forever v", "+OK\r\n"),
            ("TTL forever", ":-1\r\n"),
            ("EXPIRE forever 100 XX", ":0\r\n"),
            ("EXPIRE forever 100 NX", ":1\r\n"),
            ("EXPIRE forever 50 GT", ":0\r\n"),
            ("EXPIRE forever 50 LT", ":1\r\n"),
            ("PERSIST forever", ":1\r\n"),
            ("PERSIST forever", ":0\r\n"),
            ("SET k2 v PX 1500", "+OK\r\n"),
            ("SET k2 w KEEPTTL", "+OK\r\n"),
            ("PTTL k2", ":1500\r\n"),
            ("SET k2 w", "+OK\r\n"),
            ("PTTL k2", ":-1\r\n"),
        ],
    );
    // Reads see the time of the latest entry: time passes for them with the next one.
    world.wait(9_000);
    check(&mut world, &[("TTL k", ":10\r\n"), ("SET tick 1", "+OK\r\n"), ("TTL k", ":1\r\n")]);
    world.wait(1_000);
    world.housekeeping();
    check(&mut world, &[("GET k", "$-1\r\n"), ("EXISTS k", ":0\r\n"), ("TTL k", ":-2\r\n")]);
    assert_eq!(world.store.expired_keys(), 1, "the clock entry removed it");
    // An expiry in the past deletes at once; absolute times are log times.
    let now_s = world.now_ms / 1_000;
    let in_500_ms = world.now_ms + 500;
    check(
        &mut world,
        &[
            ("SETEX a 100 v", "+OK\r\n"),
            ("PSETEX b 100 v", "+OK\r\n"),
            ("EXPIRE a -1", ":1\r\n"),
            ("GET a", "$-1\r\n"),
            (&format!("EXPIREAT b {}", now_s + 60), ":1\r\n"),
            ("TTL b", ":60\r\n"),
            (&format!("PEXPIREAT b {in_500_ms}"), ":1\r\n"),
            ("PTTL b", ":500\r\n"),
            ("GETEX b PERSIST", "$1\r\nv\r\n"),
            ("TTL b", ":-1\r\n"),
            ("GETEX b EX 5", "$1\r\nv\r\n"),
            ("TTL b", ":5\r\n"),
            ("SET c v PX 1", "+OK\r\n"),
            ("SETEX c 0 v", "-ERR invalid expire time in 'setex' command\r\n"),
        ],
    );
    // INCR and APPEND keep a time to live; a write after the deadline starts afresh.
    check(&mut world, &[("SET n 1 PX 100", "+OK\r\n"), ("INCR n", ":2\r\n"), ("PTTL n", ":100\r\n")]);
    world.wait(100);
    check(&mut world, &[("INCR n", ":1\r\n"), ("PTTL n", ":-1\r\n")]);
    // A rename carries the time to live.
    check(&mut world, &[("SET r v EX 7", "+OK\r\n"), ("RENAME r s", "+OK\r\n"), ("TTL s", ":7\r\n")]);
}

#[test]
fn a_transaction_is_one_entry_and_each_command_gets_its_reply() {
    let mut world = World::new();
    check(
        &mut world,
        &[
            ("MULTI", "+OK\r\n"),
            ("SET a 1", "+QUEUED\r\n"),
            ("INCR a", "+QUEUED\r\n"),
            ("INCR text", "+QUEUED\r\n"),
            ("GET a", "+QUEUED\r\n"),
            ("PING", "+QUEUED\r\n"),
            ("MGET a nope", "+QUEUED\r\n"),
        ],
    );
    let before = world.index;
    assert_eq!(world.send("EXEC"), "*6\r\n+OK\r\n:2\r\n:1\r\n$1\r\n2\r\n+PONG\r\n*2\r\n$1\r\n2\r\n$-1\r\n",);
    assert_eq!(world.index, before + 1, "one log entry");
    check(
        &mut world,
        &[
            ("SET text abc", "+OK\r\n"),
            ("MULTI", "+OK\r\n"),
            ("INCR text", "+QUEUED\r\n"),
            ("SET text def", "+QUEUED\r\n"),
            // A runtime error does not stop the rest (no rollback, as in Redis).
            ("EXEC", "*2\r\n-ERR value is not an integer or out of range\r\n+OK\r\n"),
            ("GET text", "$3\r\ndef\r\n"),
            ("MULTI", "+OK\r\n"),
            ("MULTI", "-ERR MULTI calls can not be nested\r\n"),
            ("SET x 1", "+QUEUED\r\n"),
            ("INCRBY x", "-ERR wrong number of arguments for 'incrby' command\r\n"),
            ("EXEC", "-EXECABORT Transaction discarded because of previous errors.\r\n"),
            ("GET x", "$-1\r\n"),
            ("MULTI", "+OK\r\n"),
            ("SET x 1", "+QUEUED\r\n"),
            ("DISCARD", "+OK\r\n"),
            ("GET x", "$-1\r\n"),
            ("EXEC", "-ERR EXEC without MULTI\r\n"),
            ("DISCARD", "-ERR DISCARD without MULTI\r\n"),
            ("MULTI", "+OK\r\n"),
            ("EXEC", "*0\r\n"),
        ],
    );
}

#[test]
fn a_retried_session_write_applies_once() {
    let mut world = World::new();
    let session = world.send("KV.SESSION");
    let client = session.trim_start_matches(':').trim_end();
    let incr = format!("KV.EXEC {client} 1 INCRBY n 5");
    assert_eq!(world.send(&incr), ":5\r\n");
    assert_eq!(world.send(&incr), ":5\r\n", "the retry answers from the session");
    assert_eq!(world.send("GET n"), "$1\r\n5\r\n");
}

#[test]
fn a_password_gates_every_command_and_an_admin_password_gates_administration() {
    use kv::resp::access::Access;
    let access = Access { default_password: Some(b"data".to_vec()), admin_password: Some(b"root".to_vec()) };
    let mut world = World::new();
    world.session = RespSession::with_access(kv::resp::Limits::default(), access);
    check(
        &mut world,
        &[
            ("GET k", "-NOAUTH Authentication required.\r\n"),
            ("SET k v", "-NOAUTH Authentication required.\r\n"),
            ("PING", "-NOAUTH Authentication required.\r\n"),
            ("RAFT.TRANSFER 2", "-NOAUTH Authentication required.\r\n"),
            ("AUTH wrong", "-WRONGPASS invalid username-password pair or user is disabled.\r\n"),
            ("AUTH admin data", "-WRONGPASS invalid username-password pair or user is disabled.\r\n"),
            ("HELLO 3", "-NOPROTO unsupported protocol version: this server speaks RESP2\r\n"),
            ("AUTH data", "+OK\r\n"),
            ("SET k v", "+OK\r\n"),
            ("GET k", "$1\r\nv\r\n"),
            (
                "RAFT.TRANSFER 2",
                "-NOPERM User default has no permissions to run the 'raft.transfer' command\r\n",
            ),
            (
                "CONFIG SET maxclients 5",
                "-NOPERM User default has no permissions to run the 'config' command\r\n",
            ),
            ("RAFT.REMOVE 3", "-NOPERM User default has no permissions to run the 'raft.remove' command\r\n"),
        ],
    );
    // HELLO with AUTH authenticates and describes the server.
    let mut world = World::new();
    world.session = RespSession::with_access(
        kv::resp::Limits::default(),
        Access { default_password: Some(b"data".to_vec()), admin_password: Some(b"root".to_vec()) },
    );
    let hello = world.send("HELLO 2 AUTH admin root");
    assert!(hello.starts_with("*14\r\n$6\r\nserver\r\n$2\r\nkv\r\n"), "{hello}");
    assert_eq!(world.session.user(), Some(kv::resp::access::User::Admin));
    assert_eq!(
        world.send("AUTH default nope"),
        "-WRONGPASS invalid username-password pair or user is disabled.\r\n"
    );
    assert_eq!(world.session.user(), Some(kv::resp::access::User::Admin), "a failed AUTH keeps the user");
}

#[test]
fn past_maxmemory_writes_that_add_data_get_oom_and_the_rest_runs() {
    let mut world = World::new();
    check(&mut world, &[("SET a 1", "+OK\r\n"), ("SET b 2", "+OK\r\n")]);
    world.session.set_memory_full(true);
    let oom = "-OOM command not allowed when used memory > 'maxmemory'.\r\n";
    check(
        &mut world,
        &[
            ("SET c 3", oom),
            ("INCR n", oom),
            ("APPEND a x", oom),
            ("KV.EXEC 1 1 SET c 3", oom),
            ("GET a", "$1\r\n1\r\n"),
            ("EXPIRE a 100", ":1\r\n"),
            ("DEL a", ":1\r\n"),
            ("MULTI", "+OK\r\n"),
            ("SET c 3", oom),
            ("EXEC", "-EXECABORT Transaction discarded because of previous errors.\r\n"),
        ],
    );
    world.session.set_memory_full(false);
    check(&mut world, &[("SET c 3", "+OK\r\n")]);
}
