//! The key-value clients of a run (`--clients N`).
//!
//! Each client is a closed loop: it thinks, invokes one operation, waits for its
//! answer, and thinks again. Operations are a seeded mix of reads (get, list) and
//! writes (set, delete, compare-and-set) over a small shared key space, skewed so a
//! few keys are contended. A client submits to the node it believes leads (a request to
//! that node's driver, answered by it); it follows the leader hint of a refusal or of
//! an unknown outcome (the node lost leadership with the write in flight), and after a
//! timeout retries elsewhere; a retried write keeps its sequence number, so the store's
//! session applies it once. After
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
use crate::trace::{TraceEvent, TraceRecord};
use crate::world::World;
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
    id: ClientId,
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
}

#[derive(Debug)]
enum PendingRequest {
    /// A write, and its bytes for the log (encoded once, copied to each attempt).
    Write(Command, Vec<u8>),
    Read(Query),
}

impl Client {
    /// Client number `id` (1-based).
    pub(crate) fn new(id: ClientId) -> Client {
        Client {
            id,
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

/// Appends `number` in decimal: what `format!` would write, without its machinery
/// (two strings per client operation add up over millions of seeds).
fn push_decimal(text: &mut Vec<u8>, mut number: u64) {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (number % 10) as u8;
        number /= 10;
        if number == 0 {
            break;
        }
    }
    text.extend_from_slice(&digits[start..]);
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
            PendingRequest::Write(command, _) => command.operation.clone(),
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
        self.list[client].pending = Some(Pending {
            history_index,
            request,
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
        let sequence = state.next_sequence;
        state.next_sequence += 1;
        let mut value = Vec::with_capacity(12);
        push_decimal(&mut value, state.id);
        value.push(b'.');
        push_decimal(&mut value, sequence);
        let value = Bytes(value);
        let operation = match random.below(10) {
            0..=4 => Operation::Set { key, value },
            5..=7 => {
                let expected = state.known.get(&key).cloned().flatten();
                let new = (!random.chance(100_000)).then_some(value);
                Operation::CompareAndSet { key, expected, new }
            }
            _ => Operation::Delete { key },
        };
        let command = Command { client: state.id, sequence, operation };
        let bytes = command.encode();
        PendingRequest::Write(command, bytes)
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
        let request = match &pending.request {
            PendingRequest::Write(_, bytes) => Request::Write(bytes.clone()),
            PendingRequest::Read(query) => match world.options.reads {
                ReadMode::Index => Request::Read(query.clone()),
                ReadMode::Local => Request::LocalRead(query.clone()),
            },
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
            let maybe_applied = pending.earlier_attempt_unrefused || pending.current_attempt_unrefused;
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
        match answer {
            Answer::Applied { response, .. } => self.answered(world, client, response, true),
            // A local read may come from any node; only a ReadIndex read proves a leader.
            Answer::Read(response) => {
                self.answered(world, client, response, world.options.reads == ReadMode::Index)
            }
            Answer::Refused { leader_hint, .. } => self.retries(world, client, request, leader_hint, false),
            Answer::Unknown { leader_hint } => self.retries(world, client, request, leader_hint, true),
            // Answers to operator requests never carry a client's id.
            Answer::Done { .. } | Answer::Started => {}
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
            (PendingRequest::Write(Command { operation: Operation::Set { key, value }, .. }, _), _) => {
                state.known.insert(key.clone(), Some(value.clone()));
            }
            (PendingRequest::Write(Command { operation: Operation::Delete { key }, .. }, _), _) => {
                state.known.insert(key.clone(), None);
            }
            (
                PendingRequest::Write(
                    Command { operation: Operation::CompareAndSet { key, new, .. }, .. },
                    _,
                ),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_numbers_are_written_as_format_would() {
        for number in [0, 7, 10, 99, 12_345, u64::MAX] {
            let mut text = Vec::new();
            push_decimal(&mut text, number);
            assert_eq!(text, number.to_string().into_bytes());
        }
        assert_eq!(key_name(3), "k3");
    }

    #[test]
    fn request_ids_name_their_client_and_nothing_else() {
        let id = CLIENT_REQUESTS | 7 << ATTEMPT_BITS | 12_345;
        assert_eq!(client_of(id), Some(7));
        assert_eq!(client_of(42), None, "operator requests count up from 1");
        assert_eq!(client_of((1 << 62) + 3), None, "the liveness probe's");
    }
}
