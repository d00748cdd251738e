//! Pipelining clients: connections that speak RESP to a node through the very protocol
//! session the server runs (`kv::resp::RespSession`), several commands at a time.
//!
//! Each connection sends a batch in one write: a write of a key and reads of the same
//! key around it (`GET k`, `SET k v`, `GET k`, ...). Every command is tried once, so a
//! write needs no exactly-once session (plain `SET`/`DEL`, as Redis clients send). The
//! node's side of the connection is a `RespSession`: it releases requests to the node's
//! driver in the order it allows, the driver's answers go back into it, and the reply
//! bytes it writes are what the connection parses, in order. Every command is tried
//! once: `MOVED` and `TRYAGAIN` are refusals (certainly not applied, or outcome unknown
//! for `TRYAGAIN outcome unknown`), and the connection moves to the node a `MOVED`
//! names before its next batch; a batch that gets no reply in time leaves its writes
//! indeterminate and its reads failed, and the connection starts over elsewhere.
//!
//! Their operations go into the run's history like every client's (a connection is a
//! client of its own, with ids from [`CONNECTION_CLIENTS`]), so the linearizability
//! checker judges them, and the connection-order checker
//! (`checkers::connection_order`) checks what linearizability cannot see in overlapping
//! operations: that a connection's commands took effect in the order it sent them.

use crate::event::Event;
use crate::event_queue::Micros;
use crate::history::{ClientOp, Outcome};
use crate::random::Random;
use crate::resp_link::{self, encode, node_of_address, parse_reply, Reply};
use crate::world::World;
use kv::resp::RespSession;
use kv::{Bytes, ClientId, Operation, Query, Response};
use raft_core::{NodeId, RequestId};
use raft_host::Answer;
use std::collections::VecDeque;

/// The client ids of pipelining connections in the history start here (the
/// connection-order checker tells them from ordinary clients by it).
pub(crate) const CONNECTION_CLIENTS: ClientId = 1_000_000;

/// Request ids of connections have this bit set; the connection's index, its link's
/// generation and the session's own request number sit below it.
const CONNECTION_REQUESTS: RequestId = 1 << 60;
const INDEX_SHIFT: u32 = 48;
const GENERATION_SHIFT: u32 = 24;
const LOW_BITS: u64 = (1 << GENERATION_SHIFT) - 1;

/// How much longer a connection waits before its next batch after a refusal.
const REFUSED_BACKOFF_MICROS: Micros = 50_000;

/// One command sent and not yet answered.
#[derive(Debug)]
struct Sent {
    history_index: usize,
    write: bool,
}

/// One pipelining connection.
#[derive(Debug)]
pub(crate) struct Connection {
    client: ClientId,
    /// Writes sent so far: numbers each written value, so every value is unique.
    writes: u64,
    /// The node the connection talks to (position); `None`: pick one.
    target: Option<usize>,
    /// The node's side of the link: the protocol session.
    session: RespSession,
    /// Bumped whenever the link is dropped, so answers for an old one are ignored.
    generation: u64,
    /// Reply bytes not parsed yet.
    replies: Vec<u8>,
    /// Commands of the current batch awaiting their reply, in the order sent.
    sent: VecDeque<Sent>,
    /// Where the next batch goes, if a reply named a leader.
    redirect: Option<usize>,
    /// When the current batch times out.
    deadline: Micros,
    /// Whether a command of the current batch was refused: the next batch waits longer.
    refused: bool,
}

/// Every pipelining connection of a run, and the randomness they draw from.
#[derive(Debug)]
pub(crate) struct Connections {
    list: Vec<Connection>,
    random: Random,
}

impl Connections {
    /// `count` connections, drawing from `random`.
    pub(crate) fn new(count: usize, random: Random) -> Connections {
        let list = (0..count as u64)
            .map(|index| Connection {
                client: CONNECTION_CLIENTS + index,
                writes: 0,
                target: None,
                session: RespSession::new(),
                generation: 0,
                replies: Vec::new(),
                sent: VecDeque::new(),
                redirect: None,
                deadline: 0,
                refused: false,
            })
            .collect();
        Connections { list, random }
    }

    /// How many there are.
    pub(crate) fn len(&self) -> usize {
        self.list.len()
    }
}

/// The connection, link generation and session request a request id belongs to.
pub(crate) fn connection_of(request: RequestId) -> Option<(usize, u64, u64)> {
    (request & CONNECTION_REQUESTS != 0 && request < 1 << 61).then(|| {
        let index = ((request ^ CONNECTION_REQUESTS) >> INDEX_SHIFT) as usize;
        let generation = (request >> GENERATION_SHIFT) & ((1 << (INDEX_SHIFT - GENERATION_SHIFT)) - 1);
        (index, generation, request & LOW_BITS)
    })
}

fn request_id(index: usize, generation: u64, session_request: u64) -> RequestId {
    let generation = generation & ((1 << (INDEX_SHIFT - GENERATION_SHIFT)) - 1);
    CONNECTION_REQUESTS
        | (index as u64) << INDEX_SHIFT
        | generation << GENERATION_SHIFT
        | (session_request & LOW_BITS)
}

impl Connections {
    /// Starts every connection's first batch after a think time.
    pub(crate) fn start(&mut self, world: &mut World<'_>) {
        for index in 0..self.list.len() {
            let gap = world.next_gap(world.plan.workload.think_micros);
            world.queue.schedule(gap, Event::ConnectionSend { connection: index });
        }
    }

    /// A connection sends its next batch (in the safety phase only).
    pub(crate) fn send(&mut self, world: &mut World<'_>, index: usize) {
        if !world.in_safety_phase() || !self.list[index].sent.is_empty() {
            return;
        }
        let nodes = world.cluster.hosts.len();
        let random = &mut self.random;
        let connection = &mut self.list[index];
        if let Some(target) = connection.redirect.take() {
            Self::drop_link(connection);
            connection.target = Some(target);
        }
        let target = *connection.target.get_or_insert_with(|| random.index(nodes));
        // The batch: maybe a read first, a session write, then one or two reads, all of
        // one key: what a write and its read-back look like, pipelined. Each connection
        // has keys of its own: what it checks is its own order, and the clients' keys
        // keep the histories the linearizability search was sized for. They sort before
        // every client key ("k…"), so no client's list (from a "k" key on) sees them.
        let keys = u64::from(world.plan.workload.keys.max(1));
        let key = Bytes(format!("c{index}-{}", random.below(keys)).into_bytes());
        let mut operations = Vec::new();
        if random.chance(300_000) {
            operations.push(Operation::Read(Query::Get { key: key.clone() }));
        }
        connection.writes += 1;
        let value = Bytes(format!("{}.{}", connection.client, connection.writes).into_bytes());
        operations.push(if random.chance(150_000) {
            Operation::Delete { key: key.clone() }
        } else {
            Operation::Set { key: key.clone(), value }
        });
        for _ in 0..1 + random.below(2) {
            operations.push(Operation::Read(Query::Get { key: key.clone() }));
        }
        let now = world.queue.now();
        let mut bytes = Vec::new();
        for operation in operations {
            match &operation {
                Operation::Set { key, value } => encode(&[b"SET", key, value], &mut bytes),
                Operation::Delete { key } => encode(&[b"DEL", key], &mut bytes),
                Operation::Read(Query::Get { key }) => encode(&[b"GET", key], &mut bytes),
                other => unreachable!("a batch holds no {other:?}"),
            }
            connection.sent.push_back(Sent {
                history_index: world.history.len(),
                write: !matches!(operation, Operation::Read(_)),
            });
            world.history.push(ClientOp {
                client: connection.client,
                operation,
                invoke_us: now,
                return_us: None,
                outcome: Outcome::Indeterminate,
            });
        }
        connection.deadline = now + world.plan.workload.request_timeout_micros;
        let generation = connection.generation;
        world.queue.schedule(connection.deadline, Event::ConnectionTimer { connection: index, generation });
        if !world.cluster.hosts[target].is_responsive() {
            // Nothing reaches a node that is down: the batch fails as a refused connection.
            self.finish_batch(world, index, |_| Outcome::Fail);
            return;
        }
        self.list[index].session.receive(&bytes);
        self.pump(world, index);
    }

    /// Hands the node what the session releases, and the connection what it writes.
    fn pump(&mut self, world: &mut World<'_>, index: usize) {
        loop {
            let connection = &mut self.list[index];
            let Some(target) = connection.target else { return };
            let Some((session_request, request)) = connection.session.next_request() else { break };
            let id = request_id(index, connection.generation, session_request);
            let request = resp_link::driver_request(request)
                .unwrap_or_else(|other| unreachable!("a batch asks for no {other:?}"));
            if !world.cluster.hosts[target].is_responsive() {
                // The node went down under the connection: its timer ends the batch.
                return;
            }
            world.cluster.submit(target, id, request, &mut world.queue);
        }
        let connection = &mut self.list[index];
        connection.replies.extend_from_slice(connection.session.output());
        connection.session.output_sent();
        self.read_replies(world, index);
    }

    /// The node answered a connection's request.
    pub(crate) fn on_answer(
        &mut self,
        world: &mut World<'_>,
        position: usize,
        request: RequestId,
        answer: Answer<Response>,
    ) {
        let Some((index, generation, session_request)) = connection_of(request) else { return };
        let Some(connection) = self.list.get_mut(index) else { return };
        let current = connection.generation & ((1 << (INDEX_SHIFT - GENERATION_SHIFT)) - 1);
        if generation != current || connection.target != Some(position) {
            return;
        }
        let answer = resp_link::session_answer(answer);
        connection.session.answer(session_request, answer);
        self.pump(world, index);
    }

    /// Parses the whole replies received, each ending the oldest command in flight.
    fn read_replies(&mut self, world: &mut World<'_>, index: usize) {
        let nodes = world.cluster.hosts.len();
        loop {
            let connection = &mut self.list[index];
            let parsed = match parse_reply(&connection.replies) {
                None => return,
                Some(parsed) => parsed,
            };
            let client = connection.client;
            let (reply, used) = match parsed {
                Ok(parsed) => parsed,
                Err(why) => {
                    return resp_link::protocol_broken(
                        world,
                        format!("connection {client}: the session wrote {why}"),
                    )
                }
            };
            connection.replies.drain(..used);
            let Some(sent) = connection.sent.pop_front() else {
                return resp_link::protocol_broken(
                    world,
                    format!("connection {client}: a reply to no command: {reply:?}"),
                );
            };
            let outcome = match (&reply, sent.write) {
                (Reply::Simple(ok), true) if ok == "OK" => Outcome::Ok(Response::Done),
                (Reply::Integer(existed), true) => Outcome::Ok(Response::Deleted { existed: *existed > 0 }),
                (Reply::Bulk(value), false) => Outcome::Ok(Response::Value(value.clone().map(Bytes))),
                (Reply::Error(error), _) if error.starts_with("TRYAGAIN outcome unknown") => {
                    Outcome::Indeterminate
                }
                (Reply::Error(error), _) => {
                    connection.refused = true;
                    tracing::debug!(client, %error, "refused");
                    match error.strip_prefix("MOVED 0 ").and_then(node_of_address) {
                        Some(node) if (1..=nodes as NodeId).contains(&node) => {
                            connection.redirect = Some(node as usize - 1);
                        }
                        // No leader known, or an error: try elsewhere next time.
                        _ => {
                            connection.redirect = None;
                            connection.target = None;
                        }
                    }
                    Outcome::Fail
                }
                (other, _) => {
                    return resp_link::protocol_broken(
                        world,
                        format!("connection {client}: a reply that fits no command: {other:?}"),
                    )
                }
            };
            let batch_over = connection.sent.is_empty();
            let now = world.queue.now();
            let record = &mut world.history[sent.history_index];
            record.return_us = (!matches!(outcome, Outcome::Indeterminate)).then_some(now);
            record.outcome = outcome;
            if batch_over {
                self.batch_done(world, index);
            }
        }
    }

    /// The batch is over: the next one after a think time, and after a pause if it
    /// was refused (a leader may be on its way), as a client library backs off.
    fn batch_done(&mut self, world: &mut World<'_>, index: usize) {
        let connection = &mut self.list[index];
        if connection.target.is_none() {
            Self::drop_link(connection);
        }
        let backoff = if std::mem::take(&mut connection.refused) { REFUSED_BACKOFF_MICROS } else { 0 };
        if world.in_safety_phase() {
            let gap = world.next_gap(world.plan.workload.think_micros) + backoff;
            world.queue.schedule_in(gap, Event::ConnectionSend { connection: index });
        }
    }

    /// A connection's timer: a batch still waiting at its deadline ends, its writes
    /// indeterminate and its reads failed, and the link is dropped.
    pub(crate) fn timer(&mut self, world: &mut World<'_>, index: usize, generation: u64) {
        let connection = &self.list[index];
        if connection.generation != generation || connection.sent.is_empty() {
            return;
        }
        self.finish_batch(
            world,
            index,
            |sent| if sent.write { Outcome::Indeterminate } else { Outcome::Fail },
        );
    }

    /// Ends every command of the batch with `outcome`, drops the link, and goes on.
    fn finish_batch(&mut self, world: &mut World<'_>, index: usize, outcome: impl Fn(&Sent) -> Outcome) {
        let now = world.queue.now();
        let connection = &mut self.list[index];
        for sent in connection.sent.drain(..) {
            let record = &mut world.history[sent.history_index];
            record.outcome = outcome(&sent);
            record.return_us = (!matches!(record.outcome, Outcome::Indeterminate)).then_some(now);
        }
        connection.target = None;
        connection.redirect = None;
        connection.refused = true;
        Self::drop_link(connection);
        self.batch_done(world, index);
    }

    /// A new link: a new session, and answers for the old one ignored.
    fn drop_link(connection: &mut Connection) {
        connection.session = RespSession::new();
        connection.generation += 1;
        connection.replies.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_name_connection_generation_and_session_request() {
        let id = request_id(3, 77, 12_345);
        assert_eq!(connection_of(id), Some((3, 77, 12_345)));
        assert_eq!(crate::clients::client_of(id), None, "not a client's");
        assert_eq!(connection_of(42), None);
    }
}
