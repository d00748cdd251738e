//! The key-value clients of a run (`--clients N`).
//!
//! Each client is a closed loop: it thinks, invokes one operation, waits for its
//! answer, and thinks again. Operations are a seeded mix of reads (get, list) and
//! writes (set, delete, compare-and-set) over a small shared key space, skewed so a
//! few keys are contended. A client speaks RESP, as `kv client` and Redis libraries
//! do, through the protocol session the server runs (`kv::resp::RespSession`): each
//! attempt opens a link to the node it believes leads, sends its command's bytes
//! (`GET`, `KV.LIST`, or a write in its exactly-once session, `KV.EXEC client sequence
//! SET|DEL|KV.CAS|KV.CAD ...`, or `SET k v NX GET` for a compare-and-set of an absent
//! key; reads after `READONLY` with `--reads local`), and what goes into the history
//! is what the reply bytes said. A reply no command of its kind gets is a
//! client-protocol finding. It follows the node a `MOVED` names; on `TRYAGAIN` (no
//! leader known, or an outcome unknown because the node lost leadership with the
//! write in flight) and after a timeout it retries elsewhere; a retried write keeps
//! its sequence number, so the store's session applies it once. A client opens its
//! session (`KV.SESSION`, answered with the id) as part of its first write, and again
//! after `SESSIONEXPIRED` (seeds with short session timeouts or a bound below the
//! number of clients): the write that met it ends, failed, or indeterminate if an
//! earlier attempt may have applied. After
//! [`GIVE_UP_AFTER_TIMEOUTS`] timeouts in the safety phase it gives up: the operation is
//! indeterminate if any attempt may have reached a log, failed if every attempt was
//! refused. In the liveness phase clients start nothing new but never give up: every
//! operation in flight must finish.
//!
//! Every operation goes into the run's history with its invocation and return times
//! (virtual), which the linearizability checker reads at the end.
//!
//! Reads go through ReadIndex ([`ReadMode::Index`]) or, to show the checker catching
//! stale reads, straight to whatever node the client picked ([`ReadMode::Local`]).

use crate::event::Event;
use crate::event_queue::Micros;
use crate::history::{ClientOp, Outcome};
use crate::options::ReadMode;
use crate::resp_link::{self, encode, parse_reply, push_decimal, Refusal, Reply};
use crate::trace::{TraceEvent, TraceRecord};
use crate::world::World;
use kv::resp::RespSession;
use kv::{Bytes, ClientId, Command, Operation, Query, Response, Sequence};
use raft_core::{NodeId, RequestId};
use raft_host::{Answer, Request};
use std::collections::BTreeMap;

/// Timeouts after which a client gives up on an operation (in the safety phase).
pub(crate) const GIVE_UP_AFTER_TIMEOUTS: u32 = 4;

/// Request ids of client attempts have this bit set; the client's index sits above
/// [`ATTEMPT_BITS`] bits of attempt counter. (Operator requests count up from 1; the
/// liveness probe's ids start at 2^62.)
const CLIENT_REQUESTS: RequestId = 1 << 61;
const ATTEMPT_BITS: u32 = 40;

/// How long a client waits after a refusal before it tries the hinted node: a hint
/// can point back at a node that refuses again, and this keeps that loop in time.
const REFUSAL_BACKOFF_MICROS: Micros = 5_000;

/// One client's state.
#[derive(Debug)]
pub(crate) struct Client {
    /// The client's number in the history.
    id: ClientId,
    /// Its exactly-once session's id (from `KV.SESSION`), once open; `None` before its
    /// first write and after its session expired.
    session: Option<ClientId>,
    /// Writes so far: numbers each written value, so every value is unique.
    writes: u64,
    next_sequence: Sequence,
    leader_guess: Option<usize>,
    attempts: u64,
    pending: Option<Pending>,
    /// Whether a [`Event::ClientTimer`] of this client is queued. One timer per client,
    /// re-armed lazily, keeps the event queue short (no event per attempt to cancel).
    timer_armed: bool,
    /// The latest value this client saw or wrote for each key: what its compare-and-sets expect.
    known: BTreeMap<Bytes, Option<Bytes>>,
}

/// The operation a client is waiting on.
#[derive(Debug)]
struct Pending {
    history_index: usize,
    request: PendingRequest,
    /// The current attempt's request id and node.
    attempt: RequestId,
    target: usize,
    /// When the current attempt times out.
    deadline: Micros,
    timeouts: u32,
    /// Whether an earlier attempt of this write reached a node that did not refuse it.
    earlier_attempt_unrefused: bool,
    /// Whether the current attempt reached a node that has not refused it.
    current_attempt_unrefused: bool,
    /// The operation as RESP command bytes (encoded once, sent by each attempt).
    resp: Vec<u8>,
    /// The current attempt's link: the node's protocol session, and the session's
    /// number for the command.
    link: Option<(RespSession, u64)>,
    /// A write waiting for its client's session: the attempts send `KV.SESSION` until
    /// one is open, then the write (numbered in the new session) in `resp`.
    opening_session: bool,
}

#[derive(Debug)]
enum PendingRequest {
    Write(Command),
    Read(Query),
}

impl Client {
    /// Client number `id` (1-based).
    pub(crate) fn new(id: ClientId) -> Client {
        Client {
            id,
            session: None,
            writes: 0,
            next_sequence: 1,
            leader_guess: None,
            attempts: 0,
            pending: None,
            timer_armed: false,
            known: BTreeMap::new(),
        }
    }

    /// Whether the client has an operation in flight.
    pub(crate) fn is_busy(&self) -> bool {
        self.pending.is_some()
    }
}

/// The client index a request id belongs to, if it is a client's.
pub(crate) fn client_of(request: RequestId) -> Option<usize> {
    (request & CLIENT_REQUESTS != 0 && request < 1 << 62)
        .then_some(((request ^ CLIENT_REQUESTS) >> ATTEMPT_BITS) as usize)
}

fn key_name(index: u64) -> Bytes {
    let mut key = Vec::with_capacity(4);
    key.push(b'k');
    push_decimal(&mut key, index);
    Bytes(key)
}

/// Every ordinary client of a run.
#[derive(Debug)]
pub(crate) struct Clients {
    list: Vec<Client>,
}

impl Clients {
    /// `count` clients, with ids from 1.
    pub(crate) fn new(count: usize) -> Clients {
        Clients { list: (1..=count as u64).map(Client::new).collect() }
    }

    /// Whether the run has none.
    pub(crate) fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Starts every client's first operation after a think time.
    pub(crate) fn start(&mut self, world: &mut World<'_>) {
        for client in 0..self.list.len() {
            let gap = world.next_gap(world.plan.workload.think_micros);
            world.queue.schedule(gap, Event::ClientInvoke { client });
        }
    }

    /// A client invokes its next operation (in the safety phase only).
    pub(crate) fn invoke(&mut self, world: &mut World<'_>, client: usize) {
        if !world.in_safety_phase() || self.list[client].is_busy() {
            return;
        }
        let request = self.draw_request(world, client);
        let operation = match &request {
            PendingRequest::Write(command) => command.operation.clone(),
            PendingRequest::Read(query) => Operation::Read(query.clone()),
        };
        let now = world.queue.now();
        let history_index = world.history.len();
        world.history.push(ClientOp {
            client: self.list[client].id,
            operation,
            invoke_us: now,
            return_us: None,
            outcome: Outcome::Indeterminate,
        });
        let opening_session =
            matches!(request, PendingRequest::Write(_)) && self.list[client].session.is_none();
        let resp = if opening_session {
            let mut bytes = Vec::new();
            encode(&[b"KV.SESSION"], &mut bytes);
            bytes
        } else {
            resp_command(&request, world.options.reads)
        };
        self.list[client].pending = Some(Pending {
            opening_session,
            history_index,
            request,
            resp,
            link: None,
            attempt: 0,
            target: 0,
            deadline: 0,
            timeouts: 0,
            earlier_attempt_unrefused: false,
            current_attempt_unrefused: false,
        });
        self.attempt(world, client);
    }

    /// Draws the next operation of `client` from the plan's mix.
    fn draw_request(&mut self, world: &mut World<'_>, client: usize) -> PendingRequest {
        let workload = &world.plan.workload;
        let random = &mut world.random;
        // The lower of two uniform draws: low keys are contended more.
        let keys = u64::from(workload.keys.max(1));
        let key = key_name(random.below(keys).min(random.below(keys)));
        if random.chance(workload.read_ppm) {
            return PendingRequest::Read(if random.chance(200_000) {
                let from = key_name(random.below(keys));
                Query::List { from, to: None, limit: 0 }
            } else {
                Query::Get { key }
            });
        }
        let state = &mut self.list[client];
        state.writes += 1;
        let mut value = Vec::with_capacity(12);
        push_decimal(&mut value, state.id);
        value.push(b'.');
        push_decimal(&mut value, state.writes);
        let value = Bytes(value);
        let operation = match random.below(10) {
            // Only a plan with expiry draws for it: other seeds run as they did.
            0..=4 if workload.key_ttl_ppm > 0 && random.chance(workload.key_ttl_ppm) => {
                let ttl_ms = random.between(1, workload.key_ttl_max_ms.max(1)) as i64;
                Operation::set_with_ttl(key, value, ttl_ms)
            }
            0..=4 => Operation::Set { key, value },
            5..=7 => {
                let expected = state.known.get(&key).cloned().flatten();
                // Swapping absent for absent is no command a Redis client has: a
                // compare-and-set of an absent key always sets (`SET k v NX GET`).
                let new = (!random.chance(100_000) || expected.is_none()).then_some(value);
                Operation::CompareAndSet { key, expected, new }
            }
            _ => Operation::Delete { key },
        };
        // Numbered in the client's session now, or once one is open.
        let (session, sequence) = match state.session {
            Some(session) => {
                state.next_sequence += 1;
                (session, state.next_sequence - 1)
            }
            None => (0, 0),
        };
        PendingRequest::Write(Command { client: session, sequence, operation })
    }

    /// Sends the pending operation of `client` once more, to the node it believes leads.
    fn attempt(&mut self, world: &mut World<'_>, client: usize) {
        let nodes = world.cluster.hosts.len();
        let target = match self.list[client].leader_guess {
            Some(position) => position,
            None => world.random.index(nodes),
        };
        let state = &mut self.list[client];
        state.attempts += 1;
        let attempt =
            CLIENT_REQUESTS | (client as u64) << ATTEMPT_BITS | (state.attempts & ((1 << ATTEMPT_BITS) - 1));
        let responsive = world.cluster.hosts[target].is_responsive();
        let pending = state.pending.as_mut().expect("an attempt of a pending operation");
        pending.earlier_attempt_unrefused |= pending.current_attempt_unrefused;
        pending.current_attempt_unrefused = responsive;
        pending.attempt = attempt;
        pending.target = target;
        // A new link for each attempt, as a client library that reconnects: the
        // session releases the command (after answering `READONLY` itself, whose `+OK`
        // the client reads past) as the request the node's driver gets.
        let mut session = RespSession::new();
        session.receive(&pending.resp);
        let released = session.next_request();
        session.output_sent();
        let request = match released {
            Some((session_request, request)) => {
                pending.link = Some((session, session_request));
                match resp_link::driver_request(request) {
                    Ok(request) => request,
                    Err(other) => {
                        let detail = format!("client {}: the session released {other:?}", state.id);
                        return resp_link::protocol_broken(world, detail);
                    }
                }
            }
            None => {
                let detail = format!("client {}: the session released no request for its command", state.id);
                return resp_link::protocol_broken(world, detail);
            }
        };
        let now = world.queue.now();
        pending.deadline = now + world.plan.workload.request_timeout_micros;
        if !state.timer_armed {
            state.timer_armed = true;
            world.queue.schedule(pending.deadline, Event::ClientTimer { client });
        }
        let event = if matches!(request, Request::Write(_)) { TraceEvent::Propose } else { TraceEvent::Read };
        world.trace.record(TraceRecord {
            time_us: now,
            event,
            node: target as u64 + 1,
            peer: client as u64 + 1,
            index: attempt,
            ..TraceRecord::default()
        });
        if !responsive {
            self.list[client].leader_guess = None;
            return;
        }
        world.cluster.submit(target, attempt, request, &mut world.queue);
    }

    /// A client's timer fires: the current attempt times out if its deadline has come;
    /// otherwise the timer is re-armed for it.
    pub(crate) fn timer(&mut self, world: &mut World<'_>, client: usize) {
        let in_safety_phase = world.in_safety_phase();
        let now = world.queue.now();
        let state = &mut self.list[client];
        state.timer_armed = false;
        let Some(pending) = state.pending.as_mut() else {
            return;
        };
        if now < pending.deadline {
            state.timer_armed = true;
            world.queue.schedule(pending.deadline, Event::ClientTimer { client });
            return;
        }
        pending.timeouts += 1;
        state.leader_guess = None;
        if in_safety_phase && pending.timeouts >= GIVE_UP_AFTER_TIMEOUTS {
            let maybe_applied = !pending.opening_session
                && (pending.earlier_attempt_unrefused || pending.current_attempt_unrefused);
            let outcome = match pending.request {
                PendingRequest::Write(..) if !maybe_applied => Outcome::Fail,
                _ => Outcome::Indeterminate,
            };
            self.done(world, client, outcome, None);
            return;
        }
        self.attempt(world, client);
    }

    /// A client retries after a refusal (if that attempt is still the current one).
    pub(crate) fn retry(&mut self, world: &mut World<'_>, client: usize, attempt: RequestId) {
        if self.list[client].pending.as_ref().is_some_and(|pending| pending.attempt == attempt) {
            self.attempt(world, client);
        }
    }

    /// Node `position` answered client request `request`: the answer of the client's
    /// current attempt ends the operation or sends it elsewhere; a late answer to an
    /// earlier attempt (the client moved on) is ignored.
    pub(crate) fn on_answer(
        &mut self,
        world: &mut World<'_>,
        position: usize,
        request: RequestId,
        answer: Answer<Response>,
    ) {
        let Some(client) = client_of(request).filter(|&client| client < self.list.len()) else {
            return;
        };
        let current = self.list[client]
            .pending
            .as_ref()
            .is_some_and(|pending| pending.attempt == request && pending.target == position);
        if !current {
            return;
        }
        let pending = self.list[client].pending.as_mut().expect("checked");
        let Some((session, session_request)) = pending.link.as_mut() else { return };
        session.answer(*session_request, resp_link::session_answer(answer));
        let output = session.output();
        let parsed =
            parse_reply(output).map(|parsed| parsed.map(|(reply, used)| (reply, used == output.len())));
        let id = self.list[client].id;
        let reply = match parsed {
            Some(Ok((reply, true))) => reply,
            Some(Ok((reply, false))) => {
                return resp_link::protocol_broken(
                    world,
                    format!("client {id}: bytes after the reply {reply:?}"),
                )
            }
            Some(Err(why)) => {
                return resp_link::protocol_broken(world, format!("client {id}: the session wrote {why}"))
            }
            None => {
                return resp_link::protocol_broken(world, format!("client {id}: no whole reply to an answer"))
            }
        };
        let pending = self.list[client].pending.as_ref().expect("checked");
        if pending.opening_session && !matches!(reply, Reply::Error(_)) {
            return match reply {
                Reply::Integer(session) if session > 0 => self.session_opened(world, client, session as u64),
                reply => resp_link::protocol_broken(
                    world,
                    format!("client {id}: a reply KV.SESSION never gets: {reply:?}"),
                ),
            };
        }
        let asked = &pending.request;
        let response = match reply {
            Reply::Error(error) => {
                return match Refusal::of(&error) {
                    Refusal::NotPerformed(leader) => self.retries(world, client, request, leader, false),
                    Refusal::OutcomeUnknown => self.retries(world, client, request, None, true),
                    Refusal::SessionExpired => self.session_expired(world, client),
                };
            }
            reply => response_of(asked, reply),
        };
        match response {
            // A local read may come from any node; only a ReadIndex read proves a leader.
            Ok(response) => {
                let from_leader =
                    matches!(asked, PendingRequest::Write(_)) || world.options.reads == ReadMode::Index;
                self.answered(world, client, response, from_leader)
            }
            Err(reply) => {
                let detail = format!("client {id}: a reply its command never gets: {reply:?}");
                resp_link::protocol_broken(world, detail)
            }
        }
    }

    /// The client's current attempt `request` will not be answered with a result: it
    /// retries, at `leader_hint` if it names a node, after a short backoff. `maybe_applied`:
    /// the node cannot tell whether the write took effect (it lost leadership, say);
    /// otherwise it certainly did not.
    fn retries(
        &mut self,
        world: &mut World<'_>,
        client: usize,
        request: RequestId,
        leader_hint: Option<NodeId>,
        maybe_applied: bool,
    ) {
        let nodes = world.cluster.hosts.len() as NodeId;
        let state = &mut self.list[client];
        let pending = state.pending.as_mut().expect("a pending operation");
        if !maybe_applied {
            pending.current_attempt_unrefused = false;
        }
        state.leader_guess = leader_hint.filter(|id| (1..=nodes).contains(id)).map(|id| (id - 1) as usize);
        let backoff = world.random.between(1, REFUSAL_BACKOFF_MICROS);
        world.queue.schedule_in(backoff, Event::ClientRetry { client, attempt: request });
    }

    /// The client's session is gone (idle past the timeout, or evicted): the current
    /// attempt did nothing, an earlier one may have. The operation ends (failed, or
    /// indeterminate if an earlier attempt may have applied) and the client opens a new
    /// session, numbered from 1 again.
    fn session_expired(&mut self, world: &mut World<'_>, client: usize) {
        let state = &mut self.list[client];
        state.session = None;
        world.sessions_renewed += 1;
        let pending = state.pending.as_ref().expect("a pending operation");
        let outcome = match pending.request {
            PendingRequest::Write(..) if !pending.earlier_attempt_unrefused => Outcome::Fail,
            _ => Outcome::Indeterminate,
        };
        self.done(world, client, outcome, None);
    }

    /// `KV.SESSION` answered: the pending write goes out in the new session, numbered 1.
    /// Only the write's own attempts count toward whether it may have applied.
    fn session_opened(&mut self, world: &mut World<'_>, client: usize, session: ClientId) {
        let reads = world.options.reads;
        let state = &mut self.list[client];
        state.session = Some(session);
        state.next_sequence = 2;
        let pending = state.pending.as_mut().expect("a pending operation");
        if let PendingRequest::Write(command) = &mut pending.request {
            command.client = session;
            command.sequence = 1;
        }
        pending.opening_session = false;
        pending.resp = resp_command(&pending.request, reads);
        pending.earlier_attempt_unrefused = false;
        pending.current_attempt_unrefused = false;
        pending.timeouts = 0;
        state.leader_guess = Some(pending.target);
        self.attempt(world, client);
    }

    /// The client got its answer; `from_leader`: the node that answered leads (as far
    /// as the client can tell), so the client keeps sending there.
    fn answered(&mut self, world: &mut World<'_>, client: usize, response: Response, from_leader: bool) {
        let state = &mut self.list[client];
        let pending = state.pending.as_ref().expect("an answer to a pending operation");
        if from_leader {
            state.leader_guess = Some(pending.target);
        }
        // Remember what the key held, for the next compare-and-set.
        match (&pending.request, &response) {
            (PendingRequest::Read(Query::Get { key }), Response::Value(value)) => {
                state.known.insert(key.clone(), value.clone());
            }
            (PendingRequest::Write(Command { operation: Operation::Set { key, value }, .. }), _)
            | (PendingRequest::Write(Command { operation: Operation::SetWith { key, value, .. }, .. }), _) => {
                state.known.insert(key.clone(), Some(value.clone()));
            }
            (PendingRequest::Write(Command { operation: Operation::Delete { key }, .. }), _) => {
                state.known.insert(key.clone(), None);
            }
            (
                PendingRequest::Write(Command {
                    operation: Operation::CompareAndSet { key, new, .. }, ..
                }),
                Response::Swapped { swapped, previous },
            ) => {
                state.known.insert(key.clone(), if *swapped { new.clone() } else { previous.clone() });
            }
            _ => {}
        }
        let now = world.queue.now();
        self.done(world, client, Outcome::Ok(response), Some(now));
    }

    /// Closes the pending operation of `client` and schedules its next one.
    fn done(&mut self, world: &mut World<'_>, client: usize, outcome: Outcome, return_us: Option<Micros>) {
        let pending = self.list[client].pending.take().expect("a pending operation");
        let record = &mut world.history[pending.history_index];
        record.outcome = outcome;
        record.return_us = return_us;
        world.trace.record(TraceRecord {
            time_us: world.queue.now(),
            event: TraceEvent::Reply,
            node: pending.target as u64 + 1,
            peer: client as u64 + 1,
            index: pending.attempt,
            count: u64::from(return_us.is_some()),
            ..TraceRecord::default()
        });
        if world.in_safety_phase() {
            let gap = world.next_gap(world.plan.workload.think_micros);
            world.queue.schedule_in(gap, Event::ClientInvoke { client });
        }
    }

    /// The run is over: operations still waiting are indeterminate.
    pub(crate) fn give_up_all(&mut self, world: &mut World<'_>) {
        for client in &mut self.list {
            if let Some(pending) = client.pending.take() {
                let record = &mut world.history[pending.history_index];
                record.outcome = Outcome::Indeterminate;
                record.return_us = None;
            }
        }
    }

    /// Clients still waiting, for the liveness report.
    pub(crate) fn busy(&self) -> Vec<ClientId> {
        self.list.iter().filter(|client| client.is_busy()).map(|client| client.id).collect()
    }
}

/// The RESP bytes a client sends for `request`: reads as `GET` or `KV.LIST` (after
/// `READONLY` when reads are local), writes in the client's exactly-once session as
/// `KV.EXEC client sequence ...`.
fn resp_command(request: &PendingRequest, reads: ReadMode) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(64);
    match request {
        PendingRequest::Read(query) => {
            if reads == ReadMode::Local {
                encode(&[b"READONLY"], &mut bytes);
            }
            match query {
                Query::Get { key } => encode(&[b"GET", key], &mut bytes),
                Query::List { from, to, limit } => {
                    let to = to.as_ref().map_or(&b""[..], |to| &to[..]);
                    let mut limit_text = Vec::with_capacity(4);
                    push_decimal(&mut limit_text, *limit as u64);
                    encode(&[b"KV.LIST", from, to, &limit_text], &mut bytes)
                }
                other => unreachable!("clients draw no {other:?}"),
            }
        }
        PendingRequest::Write(command) => {
            let (mut client_text, mut sequence_text) = (Vec::with_capacity(8), Vec::with_capacity(8));
            push_decimal(&mut client_text, command.client);
            push_decimal(&mut sequence_text, command.sequence);
            let mut arguments: Vec<&[u8]> = vec![b"KV.EXEC", &client_text, &sequence_text];
            let mut ttl_text = Vec::with_capacity(8);
            match &command.operation {
                Operation::Set { key, value } => arguments.extend([&b"SET"[..], key, value]),
                Operation::SetWith { key, value, expiry: kv::Expiry::In(ttl_ms), .. } => {
                    push_decimal(&mut ttl_text, *ttl_ms as u64);
                    arguments.extend([&b"SET"[..], key, value, b"PX", &ttl_text])
                }
                Operation::Delete { key } => arguments.extend([&b"DEL"[..], key]),
                Operation::CompareAndSet { key, expected: Some(expected), new: Some(new) } => {
                    arguments.extend([&b"KV.CAS"[..], key, expected, new])
                }
                Operation::CompareAndSet { key, expected: Some(expected), new: None } => {
                    arguments.extend([&b"KV.CAD"[..], key, expected])
                }
                Operation::CompareAndSet { key, expected: None, new: Some(new) } => {
                    arguments.extend([&b"SET"[..], key, new, b"NX", b"GET"])
                }
                other => unreachable!("clients draw no {other:?}"),
            }
            encode(&arguments, &mut bytes);
        }
    }
    bytes
}

/// What a reply (not an error) says `request` returned, or the reply back if no reply
/// of that shape answers that command.
fn response_of(request: &PendingRequest, reply: Reply) -> Result<Response, Reply> {
    let bulk = |item: &Reply| match item {
        Reply::Bulk(value) => Some(value.clone().map(Bytes)),
        _ => None,
    };
    let response = match (request, &reply) {
        (PendingRequest::Read(Query::Get { .. }), Reply::Bulk(value)) => {
            Response::Value(value.clone().map(Bytes))
        }
        (PendingRequest::Read(Query::List { .. }), Reply::Array(items)) if items.len() % 2 == 0 => {
            let mut entries = Vec::with_capacity(items.len() / 2);
            for pair in items.chunks(2) {
                match (bulk(&pair[0]), bulk(&pair[1])) {
                    (Some(Some(key)), Some(Some(value))) => entries.push((key, value)),
                    _ => return Err(reply),
                }
            }
            Response::Entries(entries)
        }
        (PendingRequest::Write(command), reply) => match (&command.operation, reply) {
            (Operation::Set { .. }, Reply::Simple(ok)) if ok == "OK" => Response::Done,
            (Operation::SetWith { .. }, Reply::Simple(ok)) if ok == "OK" => {
                Response::Stored { applied: true, previous: None }
            }
            (Operation::Delete { .. }, Reply::Integer(count @ 0..=1)) => {
                Response::Deleted { existed: *count == 1 }
            }
            (Operation::CompareAndSet { expected: Some(_), .. }, Reply::Array(items)) => {
                match items.as_slice() {
                    [Reply::Integer(swapped @ 0..=1), previous] => match bulk(previous) {
                        Some(previous) => Response::Swapped { swapped: *swapped == 1, previous },
                        None => return Err(reply.clone()),
                    },
                    _ => return Err(reply.clone()),
                }
            }
            // `SET k v NX GET`: the value found (not set), or null (set).
            (Operation::CompareAndSet { expected: None, .. }, Reply::Bulk(previous)) => {
                Response::Swapped { swapped: previous.is_none(), previous: previous.clone().map(Bytes) }
            }
            _ => return Err(reply.clone()),
        },
        _ => return Err(reply),
    };
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kv::resp::Request as SessionRequest;

    #[test]
    fn keys_and_numbers_are_written_as_format_would() {
        for number in [0, 7, 10, 99, 12_345, u64::MAX] {
            let mut text = Vec::new();
            push_decimal(&mut text, number);
            assert_eq!(text, number.to_string().into_bytes());
        }
        assert_eq!(key_name(3), "k3");
    }

    fn write(operation: Operation) -> PendingRequest {
        PendingRequest::Write(Command { client: 4, sequence: 9, operation })
    }

    /// Runs `request`'s RESP bytes through a real session, answers its one request
    /// with `response`, and reads the reply back as the client does.
    fn round_trip(request: &PendingRequest, reads: ReadMode, response: Response) -> Result<Response, Reply> {
        let mut session = RespSession::new();
        session.receive(&resp_command(request, reads));
        let (id, released) = session.next_request().expect("the command is released");
        if let (PendingRequest::Read(_), SessionRequest::Read { local, .. }) = (request, &released) {
            assert_eq!(*local, reads == ReadMode::Local, "READONLY makes reads local");
        }
        session.output_sent();
        session.answer(id, kv::resp::Answer::Response(response));
        let (reply, used) = parse_reply(session.output()).expect("a whole reply").expect("well-formed");
        assert_eq!(used, session.output().len(), "one reply");
        response_of(request, reply)
    }

    #[test]
    fn every_operation_a_client_draws_goes_through_resp_and_back_unchanged() {
        let (k, v, w) = (Bytes::from("k"), Bytes::from("v"), Bytes::from("w"));
        let cases = [
            (PendingRequest::Read(Query::Get { key: k.clone() }), Response::Value(Some(v.clone()))),
            (PendingRequest::Read(Query::Get { key: k.clone() }), Response::Value(None)),
            (
                PendingRequest::Read(Query::List { from: k.clone(), to: None, limit: 0 }),
                Response::Entries(vec![(k.clone(), v.clone()), (w.clone(), v.clone())]),
            ),
            (write(Operation::Set { key: k.clone(), value: v.clone() }), Response::Done),
            (write(Operation::Delete { key: k.clone() }), Response::Deleted { existed: true }),
            (write(Operation::Delete { key: k.clone() }), Response::Deleted { existed: false }),
            (
                write(Operation::CompareAndSet {
                    key: k.clone(),
                    expected: Some(v.clone()),
                    new: Some(w.clone()),
                }),
                Response::Swapped { swapped: false, previous: Some(w.clone()) },
            ),
            (
                write(Operation::CompareAndSet { key: k.clone(), expected: Some(v.clone()), new: None }),
                Response::Swapped { swapped: true, previous: Some(v.clone()) },
            ),
            (
                write(Operation::CompareAndSet { key: k.clone(), expected: None, new: Some(w.clone()) }),
                Response::Swapped { swapped: true, previous: None },
            ),
            (
                write(Operation::CompareAndSet { key: k.clone(), expected: None, new: Some(w.clone()) }),
                Response::Swapped { swapped: false, previous: Some(v.clone()) },
            ),
        ];
        for (request, response) in cases {
            for reads in [ReadMode::Index, ReadMode::Local] {
                assert_eq!(
                    round_trip(&request, reads, response.clone()),
                    Ok(response.clone()),
                    "{request:?}"
                );
            }
        }
    }

    #[test]
    fn a_reply_of_the_wrong_shape_is_refused_not_guessed() {
        let get = PendingRequest::Read(Query::Get { key: "k".into() });
        assert!(response_of(&get, Reply::Integer(1)).is_err());
        let cas = write(Operation::CompareAndSet { key: "k".into(), expected: Some("v".into()), new: None });
        assert!(response_of(&cas, Reply::Bulk(None)).is_err(), "KV.CAD answers an array");
        assert!(response_of(&cas, Reply::Array(vec![Reply::Integer(2), Reply::Bulk(None)])).is_err());
        let delete = write(Operation::Delete { key: "k".into() });
        assert!(response_of(&delete, Reply::Integer(2)).is_err(), "one key deleted at most");
    }

    #[test]
    fn request_ids_name_their_client_and_nothing_else() {
        let id = CLIENT_REQUESTS | 7 << ATTEMPT_BITS | 12_345;
        assert_eq!(client_of(id), Some(7));
        assert_eq!(client_of(42), None, "operator requests count up from 1");
        assert_eq!(client_of((1 << 62) + 3), None, "the liveness probe's");
    }
}
