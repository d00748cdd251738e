//! One client connection, sans-IO: RESP bytes in, requests out, answers in, RESP bytes
//! out, in request order.
//!
//! The server's connection task and the simulator's clients drive the same
//! [`RespSession`]; neither decides anything about the protocol. A host calls, in any
//! order and as often as it likes:
//!
//! - [`RespSession::receive`] with the bytes the client sent (and
//!   [`RespSession::end_of_input`] once it has closed its side);
//! - [`RespSession::next_request`] until it returns `None`, submitting each request to
//!   its node and remembering the id;
//! - [`RespSession::answer`] with each request's answer, in any order;
//! - [`RespSession::output`] for the bytes to send, then [`RespSession::output_sent`];
//! - [`RespSession::is_finished`]: close the connection once it says so.
//!
//! **Order.** Replies leave in the order the commands came, whatever order the answers
//! arrive in. Commands also *take effect* in that order, as Redis promises for a
//! pipeline: a request is released only while every request in flight before it is of
//! the same class. Reads may run together and writes may run together (a leader appends
//! writes in the order they arrive, so a later write never commits without the earlier
//! ones), but a read waits for the writes before it to be answered, and a write for the
//! reads before it. Without that, a pipelined `SET k v` then `GET k` can read the state
//! from before the write (the read is served at the commit index it found, and the write
//! was not committed yet), and a `GET` before a `SET` can see the later write.
//!
//! **Bounds.** At most [`MAX_PIPELINED_COMMANDS`] commands wait for their replies; past
//! that the session parses no further ([`RespSession::wants_input`] is false) until
//! replies drain. The parser bounds each command (`parser`).

use super::access::{self, Access, User};
use super::commands::{self, ClientCommand, MembershipCommand, ReplyShape, WriteCommand};
use super::parser::{self, Parsed};
use super::Reply;
use crate::{Bytes, Command, Operation, Query, Response};
use raft_core::{NodeId, RejectReason};
use std::collections::VecDeque;

/// Commands parsed and not yet replied to, at most. Past it the session reads no more.
pub const MAX_PIPELINED_COMMANDS: usize = 512;

/// `SCAN` cursors one connection keeps; an older one answers "invalid cursor".
pub const MAX_SCAN_CURSORS: usize = 64;

/// The most commands one `MULTI` may queue (each waits in memory until `EXEC`).
pub const MAX_QUEUED_COMMANDS: usize = 10_000;

/// Commands queued by `MULTI`.
#[derive(Debug, Default)]
struct Transaction {
    operations: Vec<Operation>,
    replies: Vec<(Shape, Option<Vec<u8>>)>,
    refused: bool,
}

/// A session's own number for one request it hands out.
pub type SessionRequestId = u64;

/// What a command asks of the node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// A write through the log (client 0, sequence 0: no exactly-once session).
    Write(Command),
    /// A read of one key or a range: linearizable, or from the node's own state at once
    /// (`local`, after `READONLY`).
    Read {
        /// What to read.
        query: Query,
        /// Served by the node it reaches, at once, possibly stale.
        local: bool,
    },
    /// Several keys at one instant (`MGET`, `EXISTS`).
    ReadMany {
        /// The keys.
        keys: Vec<Bytes>,
        /// As for [`Request::Read`].
        local: bool,
    },
    /// The node's state, for `INFO`, `RAFT.INFO` and `DBSIZE`.
    Status(StatusKind),
    /// `RAFT.TRANSFER id`.
    Transfer(NodeId),
    /// `RAFT.ADD`, `RAFT.PROMOTE`, `RAFT.REMOVE`, `RAFT.MEMBERS`.
    Membership(MembershipCommand),
    /// The server's settings as they are now (`CONFIG GET`): answered [`Answer::Settings`].
    Settings,
    /// Change a setting (`CONFIG SET`): answered [`Answer::Done`].
    ChangeSetting(super::config::Setting),
}

/// Which status a [`Request::Status`] asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusKind {
    /// `INFO`: a text of these sections.
    Info(super::info::InfoSections),
    /// `RAFT.INFO`: a text.
    RaftInfo,
    /// `DBSIZE`: a count.
    DbSize,
}

/// What became of a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// The store answered: a write applied, or a read served.
    Response(Response),
    /// The values of a [`Request::ReadMany`], in its keys' order.
    Values(Vec<Option<Bytes>>),
    /// The text of `INFO` or `RAFT.INFO`.
    Text(String),
    /// The count of `DBSIZE`.
    Count(u64),
    /// The server's settings, for `CONFIG GET`.
    Settings(super::config::Settings),
    /// An administrative request started or took effect.
    Done,
    /// Not done, for certain: where to go instead, if a leader is known.
    Refused {
        /// Why.
        reason: RejectReason,
        /// The leader's address (`host:port`), if known.
        leader_address: Option<String>,
    },
    /// Leadership changed with the write in flight: it may or may not be applied.
    Unknown {
        /// The new leader's address, if known.
        leader_address: Option<String>,
    },
    /// The node cannot answer (it is shutting down): this text, as an `ERR`.
    Unavailable(String),
}

/// Reads and writes, which [`RespSession`] never lets overtake each other.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class {
    Read,
    Write,
}

/// How a command's answers become its reply.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Shape {
    /// A string or key command (`INCR`, `TTL`, ...).
    Data(ReplyShape),
    /// `SCAN`: the cursor to continue from (this connection's), then the keys.
    Scan,
    /// `EXEC`: each queued command's reply in an array, in order (`None`: the command
    /// took no operation, its reply is known).
    Exec(Vec<(Shape, Option<Vec<u8>>)>),
    /// `SET` (`+OK`), `SET ... NX` (`+OK` or null), `SET ... NX GET` (the value found,
    /// or null).
    Set { only_if_absent: bool, return_previous: bool },
    /// `DEL`: how many existed.
    Delete,
    /// `KV.CAS` / `KV.CAD`: `[1 or 0, previous]`.
    CompareAndSet,
    /// `GET`.
    Get,
    /// `MGET` (`count: false`) or `EXISTS` (`count: true`).
    Many { count: bool },
    /// `KV.LIST`: key, value, key, value...
    List,
    /// `+OK` once done or started.
    Done,
    /// `INFO`, `RAFT.INFO`: bulk text; `DBSIZE`: an integer.
    Status,
    /// `CONFIG GET`: the matching names and values.
    Config,
    /// `KV.SESSION`: the new session's client id.
    Session,
    /// A reply known without asking the node (`PING` inside `MULTI`).
    Fixed(&'static [u8]),
}

/// One command waiting for its reply.
#[derive(Debug)]
struct Slot {
    /// Its reply, once known.
    reply: Option<Vec<u8>>,
    /// For a command that went to the node: its first request, how to reply, and the
    /// answers so far (one per request).
    first_request: SessionRequestId,
    shape: Shape,
    answers: Vec<Option<Answer>>,
    /// `CONFIG GET`'s pattern.
    pattern: Option<Bytes>,
}

/// One client connection's protocol state (see the module docs).
#[derive(Debug, Default)]
pub struct RespSession {
    /// Commands received so far (a refused one too), for `INFO`'s count.
    commands_received: u64,
    /// The bounds its commands must keep.
    limits: parser::Limits,
    /// The passwords, and who this connection is (`None`: not authenticated yet).
    access: Access,
    user: Option<User>,
    /// Whether the store is past `maxmemory`: writes that add data are refused (`-OOM`).
    memory_full: bool,
    /// What remains of a command refused for a value past the limit, skipped as it
    /// arrives.
    skipping: Option<parser::Skip>,
    input: Vec<u8>,
    /// Where the arguments of the command being parsed lie in `input` (kept, so
    /// parsing allocates nothing per command once warm).
    spans: Vec<(usize, usize)>,
    no_more_input: bool,
    /// After `QUIT` or a protocol error: nothing more is parsed; the connection closes
    /// once every reply before it is sent.
    closing: bool,
    /// Inside `MULTI`: the commands queued so far (each an operation, or none with its
    /// reply known), and whether one was refused (`EXEC` then discards them all).
    transaction: Option<Transaction>,
    /// `SCAN` cursors this connection was given: each number stands for the key to
    /// continue from. Cursors are this connection's (Redis's are not tied to one); the
    /// oldest are forgotten past [`MAX_SCAN_CURSORS`].
    scan_cursors: VecDeque<(u64, Bytes)>,
    next_scan_cursor: u64,
    protocol_error: bool,
    read_only: bool,
    slots: VecDeque<Slot>,
    /// Requests parsed but held back until the requests in flight are of their class.
    held: VecDeque<(SessionRequestId, Request, Class)>,
    in_flight: usize,
    in_flight_class: Option<Class>,
    next_request: SessionRequestId,
    output: Vec<u8>,
}

impl RespSession {
    /// A new connection's session.
    pub fn new() -> RespSession {
        RespSession::with_limits(parser::Limits::default())
    }

    /// A new connection's session whose commands must keep `limits`, open to all.
    pub fn with_limits(limits: parser::Limits) -> RespSession {
        RespSession::with_access(limits, Access::default())
    }

    /// A new connection's session whose commands must keep `limits`, and whose client
    /// must authenticate as `access` says (`kv::resp::access`).
    pub fn with_access(limits: parser::Limits, access: Access) -> RespSession {
        let user = access.initial_user();
        RespSession { next_request: 1, limits, access, user, ..RespSession::default() }
    }

    /// Whether the store is past `maxmemory` (the host says, as its measure changes):
    /// while it is, commands that add data (Redis's `denyoom` ones) are answered
    /// `-OOM`; reads, deletes and expiry still run, so a client can make room.
    pub fn set_memory_full(&mut self, full: bool) {
        self.memory_full = full;
    }

    /// Who the connection is: `None` until it authenticates (when it must).
    pub fn user(&self) -> Option<User> {
        self.user
    }

    /// Bytes the client sent.
    pub fn receive(&mut self, bytes: &[u8]) {
        if self.no_more_input || self.closing {
            return;
        }
        self.input.extend_from_slice(bytes);
        self.parse_available();
    }

    /// The client closed its side: every whole command it sent is still answered
    /// (those past the pipeline's bound as replies drain); a partial one is dropped.
    pub fn end_of_input(&mut self) {
        self.no_more_input = true;
        self.parse_available();
    }

    /// Whether the host should read more from the client: false once the session is
    /// closing or holds its most commands waiting for replies.
    pub fn wants_input(&self) -> bool {
        !self.no_more_input && !self.closing && self.slots.len() < MAX_PIPELINED_COMMANDS
    }

    /// The next request to submit, if the order allows one now.
    pub fn next_request(&mut self) -> Option<(SessionRequestId, Request)> {
        let &(_, _, class) = self.held.front()?;
        if self.in_flight > 0 && self.in_flight_class != Some(class) {
            return None;
        }
        let (id, request, class) = self.held.pop_front().expect("a held request");
        self.in_flight += 1;
        self.in_flight_class = Some(class);
        Some((id, request))
    }

    /// The answer to request `id` (an id this session handed out and has not had an
    /// answer for; anything else is ignored).
    pub fn answer(&mut self, id: SessionRequestId, answer: Answer) {
        let Some(slot) = self.slots.iter_mut().find(|slot| {
            slot.reply.is_none()
                && id >= slot.first_request
                && id < slot.first_request + slot.answers.len() as u64
        }) else {
            return;
        };
        let place = &mut slot.answers[(id - slot.first_request) as usize];
        if place.is_some() {
            return;
        }
        *place = Some(answer);
        self.in_flight -= 1;
        if self.in_flight == 0 {
            self.in_flight_class = None;
        }
        if slot.answers.iter().all(Option::is_some) {
            let mut reply = Reply::default();
            if let (Shape::Scan, [Some(Answer::Response(Response::Keys { keys, next }))]) =
                (&slot.shape, slot.answers.as_slice())
            {
                let cursor = match next {
                    None => 0,
                    Some(next) => {
                        let cursor = self.next_scan_cursor.max(1);
                        self.next_scan_cursor = cursor + 1;
                        if self.scan_cursors.len() == MAX_SCAN_CURSORS {
                            self.scan_cursors.pop_front();
                        }
                        self.scan_cursors.push_back((cursor, next.clone()));
                        cursor
                    }
                };
                reply.array(2);
                reply.bulk(Some(cursor.to_string().as_bytes()));
                reply.array(keys.len());
                for key in keys {
                    reply.bulk(Some(key));
                }
            } else {
                render(&slot.shape, &slot.answers, slot.pattern.as_deref(), &mut reply);
            }
            slot.reply = Some(reply.bytes);
        }
        self.flush_replies();
        self.parse_available();
    }

    /// The bytes to send to the client, in order.
    pub fn output(&self) -> &[u8] {
        &self.output
    }

    /// The host sent all of [`RespSession::output`].
    pub fn output_sent(&mut self) {
        self.output.clear();
    }

    /// Whether the connection is done: it quit, broke the protocol or closed its side,
    /// and every reply it is owed has been handed out (send what
    /// [`RespSession::output`] still holds, then close).
    pub fn is_finished(&self) -> bool {
        (self.closing || self.no_more_input) && self.slots.is_empty() && self.input.is_empty()
    }

    /// Whether the client broke the protocol (the session then closes).
    pub fn broke_protocol(&self) -> bool {
        self.protocol_error
    }

    /// Commands received so far on this connection.
    pub fn commands_received(&self) -> u64 {
        self.commands_received
    }

    /// Commands waiting for their replies.
    pub fn commands_waiting(&self) -> usize {
        self.slots.len()
    }

    fn parse_available(&mut self) {
        let mut consumed = 0;
        let mut spans = std::mem::take(&mut self.spans);
        let input = std::mem::take(&mut self.input);
        while !self.closing && self.slots.len() < MAX_PIPELINED_COMMANDS {
            let buffer = &input[consumed..];
            if let Some(skip) = self.skipping.as_mut() {
                // The rest of a refused command: dropped as it comes, never kept.
                if skip.body_left > 0 {
                    let dropped = skip.body_left.min(buffer.len());
                    skip.body_left -= dropped;
                    consumed += dropped;
                    if skip.body_left > 0 {
                        break;
                    }
                    continue;
                }
                if skip.bulks_left == 0 {
                    self.skipping = None;
                    continue;
                }
                match parser::bulk_header(buffer) {
                    Ok(Some((length, header))) => {
                        consumed += header;
                        *skip = parser::Skip { body_left: length + 2, bulks_left: skip.bulks_left - 1 };
                        continue;
                    }
                    Ok(None) => break,
                    Err(error) => {
                        self.skipping = None;
                        self.protocol_error = true;
                        self.closing = true;
                        self.ready(|reply| reply.error(&format!("ERR {error}")));
                        continue;
                    }
                }
            }
            match parser::parse_spans(buffer, &mut spans, &self.limits) {
                Parsed::Command(inline, used) => {
                    consumed += used;
                    if !inline.is_empty() {
                        let arguments: Vec<&[u8]> = inline.iter().map(Vec::as_slice).collect();
                        self.start(&arguments);
                    } else if !spans.is_empty() {
                        // Most commands have a handful of arguments: slices on the stack.
                        let mut stack: [&[u8]; 8] = [&[]; 8];
                        let heap: Vec<&[u8]>;
                        let arguments: &[&[u8]] = if spans.len() <= stack.len() {
                            for (slot, &(start, end)) in stack.iter_mut().zip(&spans) {
                                *slot = &buffer[start..end];
                            }
                            &stack[..spans.len()]
                        } else {
                            heap = spans.iter().map(|&(start, end)| &buffer[start..end]).collect();
                            &heap
                        };
                        self.start(arguments);
                    }
                }
                Parsed::Incomplete => break,
                Parsed::TooBig { reply: text, used, skip } => {
                    consumed += used;
                    self.skipping = Some(skip);
                    self.ready(|reply| reply.error(&text));
                }
                Parsed::Error(error) => {
                    self.protocol_error = true;
                    self.closing = true;
                    self.ready(|reply| reply.error(&format!("ERR {error}")));
                }
            }
        }
        self.input = input;
        self.spans = spans;
        self.input.drain(..consumed);
        let partial_left = self.no_more_input
            && self.slots.len() < MAX_PIPELINED_COMMANDS
            && (self.skipping.is_some()
                || matches!(parser::parse_with(&self.input, &self.limits), Parsed::Incomplete));
        if self.closing || partial_left {
            self.input.clear();
        }
        self.flush_replies();
    }

    /// A command whose reply is known at once.
    fn ready(&mut self, write: impl FnOnce(&mut Reply)) {
        let mut reply = Reply::default();
        write(&mut reply);
        self.slots.push_back(Slot {
            reply: Some(reply.bytes),
            first_request: 0,
            shape: Shape::Done,
            answers: Vec::new(),
            pattern: None,
        });
    }

    /// A command that goes to the node as `requests`, replied to as `shape`.
    fn submit(&mut self, shape: Shape, requests: Vec<Request>) {
        let first_request = self.next_request;
        let answers = vec![None; requests.len()];
        for request in requests {
            let class = match request {
                Request::Read { .. } | Request::ReadMany { .. } | Request::Status(_) | Request::Settings => {
                    Class::Read
                }
                Request::Write(_)
                | Request::Transfer(_)
                | Request::Membership(_)
                | Request::ChangeSetting(_) => Class::Write,
            };
            self.held.push_back((self.next_request, request, class));
            self.next_request += 1;
        }
        self.slots.push_back(Slot { reply: None, first_request, shape, answers, pattern: None });
    }

    fn start(&mut self, arguments: &[&[u8]]) {
        self.commands_received += 1;
        let command = match commands::parse(arguments) {
            Ok(command) => command,
            Err(error) => {
                if let Some(transaction) = self.transaction.as_mut() {
                    transaction.refused = true;
                }
                return self.ready(|reply| reply.error(&error));
            }
        };
        // Who may run it: AUTH and HELLO authenticate, QUIT is always allowed.
        match command {
            ClientCommand::Auth { user, password } => {
                return match self.access.authenticate(user.as_deref(), &password) {
                    Ok(user) => {
                        self.user = Some(user);
                        self.ready(|reply| reply.simple("OK"))
                    }
                    Err(error) => self.ready(|reply| reply.error(&error)),
                };
            }
            ClientCommand::Hello { protocol, auth } => return self.hello(protocol, auth),
            ClientCommand::Quit => {}
            _ if self.user.is_none() => return self.ready(|reply| reply.error(access::NOAUTH)),
            ClientCommand::Transfer(_) | ClientCommand::Membership(_) | ClientCommand::ConfigSet(_)
                if !self.access.may_administer(self.user.expect("authenticated")) =>
            {
                let name = String::from_utf8_lossy(arguments[0]).to_ascii_lowercase();
                return self.ready(|reply| {
                    reply
                        .error(&format!("NOPERM User default has no permissions to run the '{name}' command"))
                });
            }
            _ => {}
        }
        if self.memory_full && adds_data(arguments) {
            if let Some(transaction) = self.transaction.as_mut() {
                transaction.refused = true;
            }
            return self
                .ready(|reply| reply.error("OOM command not allowed when used memory > 'maxmemory'."));
        }
        if self.transaction.is_some() {
            return self.queue(command);
        }
        let local = self.read_only;
        match command {
            ClientCommand::Ping(None) => self.ready(|reply| reply.simple("PONG")),
            ClientCommand::Ping(Some(text)) | ClientCommand::Echo(text) => {
                self.ready(|reply| reply.bulk(Some(&text)))
            }
            ClientCommand::Quit => {
                self.closing = true;
                self.ready(|reply| reply.simple("OK"))
            }
            ClientCommand::Ok => self.ready(|reply| reply.simple("OK")),
            ClientCommand::Command(query) => self.ready(|reply| query.reply(reply)),
            ClientCommand::Integer(number) => self.ready(|reply| reply.integer(number)),
            ClientCommand::Null => self.ready(|reply| reply.bulk(None)),
            ClientCommand::Hello { .. } | ClientCommand::Auth { .. } => unreachable!("answered above"),
            ClientCommand::ConfigGet(pattern) => {
                self.submit(Shape::Config, vec![Request::Settings]);
                if let Some(slot) = self.slots.back_mut() {
                    slot.pattern = Some(pattern);
                }
            }
            ClientCommand::ConfigSet(setting) => {
                self.submit(Shape::Done, vec![Request::ChangeSetting(setting)])
            }
            ClientCommand::ReadOnly(flag) => {
                self.read_only = flag;
                self.ready(|reply| reply.simple("OK"))
            }
            ClientCommand::Info(sections) => {
                self.submit(Shape::Status, vec![Request::Status(StatusKind::Info(sections))])
            }
            ClientCommand::RaftInfo => {
                self.submit(Shape::Status, vec![Request::Status(StatusKind::RaftInfo)])
            }
            ClientCommand::DbSize => self.submit(Shape::Status, vec![Request::Status(StatusKind::DbSize)]),
            ClientCommand::Get(key) => {
                self.submit(Shape::Get, vec![Request::Read { query: Query::Get { key }, local }])
            }
            ClientCommand::MultiGet(keys) => {
                self.submit(Shape::Many { count: false }, vec![Request::ReadMany { keys, local }])
            }
            ClientCommand::Exists(keys) => {
                self.submit(Shape::Many { count: true }, vec![Request::ReadMany { keys, local }])
            }
            ClientCommand::List { from, to, limit } => self
                .submit(Shape::List, vec![Request::Read { query: Query::List { from, to, limit }, local }]),
            // Without a session (client 0): applied each time it reaches the log, as Redis does.
            ClientCommand::Write(writes) => self.writes(writes, 0, 0),
            ClientCommand::OpenSession => {
                let open = Command { client: 0, sequence: 0, operation: Operation::OpenSession };
                self.submit(Shape::Session, vec![Request::Write(open)])
            }
            ClientCommand::SessionWrite { client, sequence, write } => {
                self.writes(vec![write], client, sequence)
            }
            ClientCommand::Transfer(id) => self.submit(Shape::Done, vec![Request::Transfer(id)]),
            ClientCommand::Membership(change) => self.submit(Shape::Done, vec![Request::Membership(change)]),
            ClientCommand::Data { operation, reply } => {
                let write = Command { client: 0, sequence: 0, operation };
                self.submit(Shape::Data(reply), vec![Request::Write(write)])
            }
            ClientCommand::SessionData { client, sequence, operation, reply } => {
                let write = Command { client, sequence, operation };
                self.submit(Shape::Data(reply), vec![Request::Write(write)])
            }
            ClientCommand::Query { query, reply } => {
                self.submit(Shape::Data(reply), vec![Request::Read { query, local }])
            }
            ClientCommand::Scan { cursor, pattern, count, only_strings } => {
                let from = match cursor {
                    0 => Bytes::default(),
                    cursor => match self.scan_cursors.iter().find(|(known, _)| *known == cursor) {
                        Some((_, from)) => from.clone(),
                        None => return self.ready(|reply| reply.error("ERR invalid cursor")),
                    },
                };
                // Every key is a string: TYPE of another type finds none, at once.
                if !only_strings {
                    return self.ready(|reply| reply.bytes.extend_from_slice(b"*2\r\n$1\r\n0\r\n*0\r\n"));
                }
                let query = Query::Keys { from, count, pattern };
                self.submit(Shape::Scan, vec![Request::Read { query, local }])
            }
            ClientCommand::Multi => {
                self.transaction = Some(Transaction::default());
                self.ready(|reply| reply.simple("OK"))
            }
            ClientCommand::Exec => self.ready(|reply| reply.error("ERR EXEC without MULTI")),
            ClientCommand::Discard => self.ready(|reply| reply.error("ERR DISCARD without MULTI")),
        }
    }

    /// `HELLO [protover] [AUTH user password]`: RESP2 only; authenticates as `AUTH`
    /// does, then answers the server's description (a flat array, as RESP2 has no maps).
    fn hello(&mut self, protocol: Option<i64>, auth: Option<(Bytes, Bytes)>) {
        if protocol.is_some_and(|version| version != 2) {
            return self.ready(|reply| {
                reply.error("NOPROTO unsupported protocol version: this server speaks RESP2")
            });
        }
        if let Some((user, password)) = auth {
            match self.access.authenticate(Some(&user), &password) {
                Ok(user) => self.user = Some(user),
                Err(error) => return self.ready(|reply| reply.error(&error)),
            }
        }
        if self.user.is_none() {
            return self.ready(|reply| {
                reply.error("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time")
            });
        }
        self.ready(|reply| {
            reply.array(14);
            for (field, value) in [("server", "kv"), ("version", "7.0.0")] {
                reply.bulk(Some(field.as_bytes()));
                reply.bulk(Some(value.as_bytes()));
            }
            reply.bulk(Some(b"proto"));
            reply.integer(2);
            reply.bulk(Some(b"id"));
            reply.integer(1);
            for (field, value) in [("mode", "standalone"), ("role", "master")] {
                reply.bulk(Some(field.as_bytes()));
                reply.bulk(Some(value.as_bytes()));
            }
            reply.bulk(Some(b"modules"));
            reply.array(0);
        })
    }

    /// A command inside `MULTI`: queued (`+QUEUED`), or `EXEC`/`DISCARD`. `EXEC` puts
    /// every queued operation in one log entry, so the transaction applies whole and
    /// alone on every replica; its reply is each command's reply, in order.
    fn queue(&mut self, command: ClientCommand) {
        let transaction = self.transaction.as_mut().expect("inside MULTI");
        let queued: Option<(Option<Operation>, Shape)> = match command {
            ClientCommand::Exec => {
                let transaction = self.transaction.take().expect("inside MULTI");
                if transaction.refused {
                    return self.ready(|reply| {
                        reply.error("EXECABORT Transaction discarded because of previous errors.")
                    });
                }
                if transaction.operations.is_empty() {
                    let mut bytes = Reply::default();
                    bytes.array(transaction.replies.len());
                    for (_, known) in &transaction.replies {
                        bytes.bytes.extend_from_slice(known.as_deref().unwrap_or_default());
                    }
                    return self.ready(|reply| reply.bytes = bytes.bytes);
                }
                let write = Command {
                    client: 0,
                    sequence: 0,
                    operation: Operation::Transaction(transaction.operations),
                };
                return self.submit(Shape::Exec(transaction.replies), vec![Request::Write(write)]);
            }
            ClientCommand::Discard => {
                self.transaction = None;
                return self.ready(|reply| reply.simple("OK"));
            }
            ClientCommand::Multi => {
                return self.ready(|reply| reply.error("ERR MULTI calls can not be nested"));
            }
            ClientCommand::Quit => {
                self.transaction = None;
                self.closing = true;
                return self.ready(|reply| reply.simple("OK"));
            }
            _ if transaction.replies.len() >= MAX_QUEUED_COMMANDS => None,
            ClientCommand::Ping(None) => Some((None, Shape::Fixed(b"+PONG\r\n"))),
            ClientCommand::Data { operation, reply } => Some((Some(operation), Shape::Data(reply))),
            ClientCommand::Query { query, reply } => Some((Some(Operation::Read(query)), Shape::Data(reply))),
            ClientCommand::Get(key) => Some((Some(Operation::Read(Query::Get { key })), Shape::Get)),
            ClientCommand::MultiGet(keys) => {
                Some((Some(Operation::Read(Query::GetMany { keys })), Shape::Data(ReplyShape::Values)))
            }
            ClientCommand::Exists(keys) => {
                Some((Some(Operation::Read(Query::GetMany { keys })), Shape::Data(ReplyShape::Count)))
            }
            ClientCommand::List { from, to, limit } => {
                Some((Some(Operation::Read(Query::List { from, to, limit })), Shape::List))
            }
            ClientCommand::Write(writes) if writes.len() == 1 => {
                let shape = write_shape(&writes);
                Some((Some(writes[0].operation()), shape))
            }
            _ => None,
        };
        let transaction = self.transaction.as_mut().expect("inside MULTI");
        match queued {
            Some((operation, shape)) => {
                let known = match (&operation, &shape) {
                    (None, Shape::Fixed(bytes)) => Some(bytes.to_vec()),
                    _ => None,
                };
                transaction.operations.extend(operation);
                transaction.replies.push((shape, known));
                self.ready(|reply| reply.simple("QUEUED"))
            }
            None => {
                transaction.refused = true;
                let full = transaction.replies.len() >= MAX_QUEUED_COMMANDS;
                self.ready(|reply| {
                    reply.error(if full {
                        "ERR too many commands in one transaction (at most 10000)"
                    } else {
                        "ERR this command cannot be used inside MULTI (data commands on strings and keys can)"
                    })
                })
            }
        }
    }

    fn writes(&mut self, writes: Vec<WriteCommand>, client: u64, sequence: u64) {
        let shape = write_shape(&writes);
        let requests = writes
            .iter()
            .map(|write| Request::Write(Command { client, sequence, operation: write.operation() }))
            .collect();
        self.submit(shape, requests);
    }

    /// Moves the replies at the front, in order, into the output.
    fn flush_replies(&mut self) {
        while let Some(reply) = self.slots.front_mut().and_then(|slot| slot.reply.take()) {
            self.output.extend_from_slice(&reply);
            self.slots.pop_front();
        }
    }
}

/// Whether a command may add data (Redis's `denyoom` flag; for `KV.EXEC`, its write's).
fn adds_data(arguments: &[&[u8]]) -> bool {
    let name = match arguments {
        [name, _, _, inner, ..] if name.eq_ignore_ascii_case(b"KV.EXEC") => inner,
        [name, ..] => name,
        [] => return false,
    };
    super::table::lookup(name).is_some_and(|spec| spec.flags.contains(&"denyoom"))
}

/// How the replies of `writes` (SET, DEL, KV.CAS, KV.CAD) are shaped.
fn write_shape(writes: &[WriteCommand]) -> Shape {
    match writes {
        [WriteCommand::Set { only_if_absent, return_previous, .. }] => {
            Shape::Set { only_if_absent: *only_if_absent, return_previous: *return_previous }
        }
        [WriteCommand::CompareAndSet { .. }] => Shape::CompareAndSet,
        _ => Shape::Delete,
    }
}

/// A string or key command's reply from the store's answer.
fn render_data(shape: ReplyShape, response: &Response, reply: &mut Reply) {
    match (shape, response) {
        (ReplyShape::Ok, Response::Done | Response::Stored { applied: true, .. }) => reply.simple("OK"),
        (ReplyShape::OkOrNull, Response::Stored { applied, .. }) => {
            if *applied {
                reply.simple("OK")
            } else {
                reply.bulk(None)
            }
        }
        (ReplyShape::Previous, Response::Stored { previous, .. }) => reply.bulk(previous.as_deref()),
        (ReplyShape::Bulk, Response::Value(value)) => reply.bulk(value.as_deref()),
        (ReplyShape::Integer, Response::Integer(number)) => reply.integer(*number),
        (ReplyShape::AppliedInteger, Response::Stored { applied, .. }) => reply.integer(i64::from(*applied)),
        (ReplyShape::Length, Response::Value(value)) => {
            reply.integer(value.as_ref().map_or(0, |value| value.len()) as i64)
        }
        (ReplyShape::Range { start, end }, Response::Value(value)) => {
            let value = value.as_deref().unwrap_or_default();
            reply.bulk(Some(byte_range(value, start, end)))
        }
        (ReplyShape::Type, Response::Value(value)) => {
            reply.simple(if value.is_some() { "string" } else { "none" })
        }
        (ReplyShape::Seconds, Response::Integer(ms)) => {
            reply.integer(if *ms < 0 { *ms } else { (*ms + 500) / 1_000 })
        }
        (ReplyShape::Keys, Response::Keys { keys, next }) => {
            if next.is_some() && keys.len() > crate::MAX_KEYS_ANSWERED {
                return reply.error(&format!(
                    "ERR KEYS matched more than {} keys; use SCAN to page through them",
                    crate::MAX_KEYS_ANSWERED
                ));
            }
            reply.array(keys.len());
            for key in keys {
                reply.bulk(Some(key));
            }
        }
        (ReplyShape::Values, Response::Values(values)) => {
            reply.array(values.len());
            for value in values {
                reply.bulk(value.as_deref());
            }
        }
        (ReplyShape::Count, Response::Values(values)) => {
            reply.integer(values.iter().filter(|value| value.is_some()).count() as i64)
        }
        (_, Response::Error(error)) => refusal(&Answer::Response(Response::Error(error.clone())), reply),
        (_, other) => reply.error(&format!("ERR unexpected answer {other:?}")),
    }
}

/// `GETRANGE`'s part of `value`: `start` to `end` inclusive, negatives counting from
/// the end, clamped; empty when the range is.
fn byte_range(value: &[u8], start: i64, end: i64) -> &[u8] {
    let length = value.len() as i64;
    if length == 0 {
        return &[];
    }
    let from_end = |index: i64| if index < 0 { (length + index).max(0) } else { index };
    let (start, end) = (from_end(start), from_end(end).min(length - 1));
    if start > end || start >= length {
        return &[];
    }
    &value[start as usize..=end as usize]
}

/// A command's reply from its answers (all present): the first answer that is not a
/// success decides it.
fn render(shape: &Shape, answers: &[Option<Answer>], pattern: Option<&[u8]>, reply: &mut Reply) {
    let answers: Vec<&Answer> = answers.iter().map(|answer| answer.as_ref().expect("every answer")).collect();
    if let Some(failure) = answers.iter().find(|answer| !is_success(answer)) {
        return refusal(failure, reply);
    }
    match (shape, answers.as_slice()) {
        (Shape::Data(shape), [Answer::Response(response)]) => render_data(*shape, response, reply),
        (Shape::Exec(replies), [Answer::Response(Response::Many(responses))]) => {
            reply.array(replies.len());
            let mut responses = responses.iter();
            for (shape, known) in replies {
                match known {
                    Some(bytes) => reply.bytes.extend_from_slice(bytes),
                    None => match responses.next() {
                        Some(response) => {
                            render(shape, &[Some(Answer::Response(response.clone()))], None, reply)
                        }
                        None => reply.error("ERR the transaction answered fewer commands than it queued"),
                    },
                }
            }
        }
        (Shape::Set { .. }, [Answer::Response(Response::Done)]) => reply.simple("OK"),
        (
            Shape::Set { only_if_absent: true, return_previous: true },
            [Answer::Response(Response::Swapped { previous, .. })],
        ) => reply.bulk(previous.as_deref()),
        (Shape::Set { only_if_absent: true, .. }, [Answer::Response(Response::Swapped { swapped, .. })]) => {
            if *swapped {
                reply.simple("OK")
            } else {
                reply.bulk(None)
            }
        }
        (Shape::Delete, answers) => {
            let existed = answers
                .iter()
                .filter(|answer| matches!(answer, Answer::Response(Response::Deleted { existed: true })))
                .count();
            match answers.iter().find(|answer| !matches!(answer, Answer::Response(Response::Deleted { .. })))
            {
                Some(other) => unexpected(other, reply),
                None => reply.integer(existed as i64),
            }
        }
        (Shape::CompareAndSet, [Answer::Response(Response::Swapped { swapped, previous })]) => {
            reply.array(2);
            reply.integer(i64::from(*swapped));
            reply.bulk(previous.as_deref());
        }
        (Shape::Get, [Answer::Response(Response::Value(value))]) => reply.bulk(value.as_deref()),
        (Shape::Many { count: true }, [Answer::Values(values)]) => {
            reply.integer(values.iter().filter(|value| value.is_some()).count() as i64)
        }
        (Shape::Many { count: false }, [Answer::Values(values)]) => {
            reply.array(values.len());
            for value in values {
                reply.bulk(value.as_deref());
            }
        }
        (Shape::List, [Answer::Response(Response::Entries(entries))]) => {
            reply.array(entries.len() * 2);
            for (key, value) in entries {
                reply.bulk(Some(key));
                reply.bulk(Some(value));
            }
        }
        (Shape::Done, [Answer::Done]) => reply.simple("OK"),
        (Shape::Config, [Answer::Settings(settings)]) => {
            super::config::render_get(pattern.unwrap_or(b"*"), settings, reply)
        }
        (Shape::Session, [Answer::Response(Response::SessionOpened { client })]) => {
            reply.integer(*client as i64)
        }
        (Shape::Status, [Answer::Text(text)]) => reply.bulk(Some(text.as_bytes())),
        (Shape::Status, [Answer::Count(count)]) => reply.integer(*count as i64),
        (_, [answer, ..]) => unexpected(answer, reply),
        (_, []) => reply.error("ERR a command without requests"),
    }
}

fn is_success(answer: &Answer) -> bool {
    !matches!(
        answer,
        Answer::Refused { .. }
            | Answer::Unknown { .. }
            | Answer::Unavailable(_)
            | Answer::Response(Response::Error(_))
    )
}

fn unexpected(answer: &Answer, reply: &mut Reply) {
    reply.error(&format!("ERR unexpected answer {answer:?}"));
}

/// The reply to a request that was not done: where to go instead (`MOVED 0
/// host:port`, the Redis Cluster redirect), or why not.
fn refusal(answer: &Answer, reply: &mut Reply) {
    let redirect = |leader: &Option<String>, reply: &mut Reply, fallback: &str| match leader {
        Some(address) => reply.error(&format!("MOVED 0 {address}")),
        None => reply.error(fallback),
    };
    match answer {
        // A code of its own, so a client can tell it must open a new session.
        Answer::Response(Response::Error(error @ crate::KvError::SessionExpired { .. })) => {
            reply.error(&format!("SESSIONEXPIRED {error}"))
        }
        Answer::Response(Response::Error(error)) => reply.error(&format!("ERR {error}")),
        Answer::Refused { reason: RejectReason::NotLeader, leader_address } => {
            redirect(leader_address, reply, "TRYAGAIN no leader is known yet; retry shortly")
        }
        Answer::Refused { reason: RejectReason::LeadershipLost, leader_address } => {
            redirect(leader_address, reply, "TRYAGAIN leadership changed; retry")
        }
        Answer::Refused {
            reason:
                reason @ (RejectReason::TransferInProgress
                | RejectReason::TooManyUncommitted
                | RejectReason::TooManyPendingReads
                | RejectReason::MembershipChangeInProgress),
            ..
        } => reply.error(&format!("TRYAGAIN {reason}")),
        Answer::Refused { reason, .. } => reply.error(&format!("ERR {reason}")),
        Answer::Unknown { .. } => reply.error(
            "TRYAGAIN outcome unknown: leadership changed or the write waited too long; it may or may not be applied (a KV.EXEC retry with the same sequence applies once)",
        ),
        Answer::Unavailable(why) => reply.error(&format!("ERR {why}")),
        other => unexpected(other, reply),
    }
}
