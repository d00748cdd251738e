//! The run loop: one seed, a virtual clock, every node's host, the network, the
//! workload, the fault schedule and the checkers.
//!
//! A run has two phases. The safety phase lasts `--ticks` base ticks with the fault
//! plan in force; every action of every node is checked as it happens. Then the
//! liveness phase heals everything (cuts, loss, crashed and paused nodes) and the
//! cluster must, within [`LIVENESS_BOUND_MICROS`], agree on a leader and commit and
//! apply a new proposal on every node. The run stops at the first violation.

use crate::checkers::linearizability::{self, Linearizability};
use crate::checkers::{Checkers, StaleTerm, Violation};
use crate::clients::Client;
use crate::control::{Progress, RunControl, CONTROL_INTERVAL_EVENTS};
use crate::event_queue::{EventQueue, Micros};
use crate::faults::{FaultPlan, BASE_TICK_MICROS};
use crate::history::{ClientOp, OperationStats};
use crate::host::Host;
use crate::network::Network;
use crate::network::Route;
use crate::options::{Failure, HostBug, RunOptions, RunReport, Verdict};
use crate::random::{Purpose, Random};
use crate::state_machine::CommandCache;
use crate::trace::{Trace, TraceEvent, TraceKind, TraceRecord};
use crate::workload::{LivenessProbe, Workload};
use raft_core::{Action, Input, Message, MessageBody, NodeId, RequestId};
use std::io::Write;
use std::time::Instant;

/// How long the healed cluster has to elect a leader and commit a proposal everywhere.
pub const LIVENESS_BOUND_MICROS: Micros = 20_000_000;
/// How often the liveness phase checks whether the cluster has recovered.
const LIVENESS_PROBE_MICROS: Micros = 50_000;

/// Something due at a virtual time.
#[derive(Debug)]
pub(crate) enum Event {
    /// A node's clock ticks.
    Tick { node: usize, incarnation: u64 },
    /// A message arrives.
    Deliver { message: Message },
    /// A sync issued by a node's host completes.
    SyncDone { node: usize, incarnation: u64, through: u64 },
    /// The next scheduled fault fires.
    Fault { index: usize },
    /// A network cut heals.
    HealCut { generation: u64 },
    /// A crashed node restarts.
    Restart { node: usize, incarnation: u64 },
    /// A paused node resumes.
    Resume { node: usize, incarnation: u64 },
    /// A client invokes its next operation.
    ClientInvoke { client: usize },
    /// A client's timer: its current attempt may have timed out.
    ClientTimer { client: usize },
    /// A client retries after a refusal.
    ClientRetry { client: usize, attempt: RequestId },
    /// An operator asks for a leadership transfer.
    Transfer,
    /// An operator removes a voter or adds one back.
    ChangeMembership,
    /// The safety phase ends.
    StartLiveness,
    /// The liveness phase checks for recovery.
    LivenessProbe,
    /// The liveness bound is reached.
    LivenessDeadline,
}

/// A run in progress. Build with [`Simulation::new`], drive with [`Simulation::run`].
pub struct Simulation<'t> {
    /// Stop flag and progress callback from the caller.
    control: RunControl<'t>,
    /// The most events before the run counts as a storm (see [`RunOptions::event_bound`]).
    event_bound: u64,
    /// Messages delivered per (sender, receiver, kind), to name a storm's source.
    flows: Vec<u64>,
    pub(crate) options: RunOptions,
    pub(crate) plan: FaultPlan,
    pub(crate) queue: EventQueue<Event>,
    pub(crate) hosts: Vec<Host>,
    pub(crate) network: Network,
    pub(crate) storage_random: Random,
    pub(crate) workload: Workload,
    pub(crate) clients: Vec<Client>,
    /// Every client operation so far, in invocation order.
    pub(crate) history: Vec<ClientOp>,
    /// Decoded commands, shared by every node's state machine.
    pub(crate) commands: CommandCache,
    pub(crate) liveness: Option<LivenessProbe>,
    pub(crate) checkers: Checkers,
    pub(crate) trace: Trace<'t>,
    /// The node that most recently became leader.
    pub(crate) newest_leader: Option<usize>,
    /// Inputs a host gives its node after the current step (log compaction).
    pub(crate) follow_ups: Vec<(usize, Input)>,
    /// A reusable buffer for the actions of one step.
    actions: Vec<Action>,
    pub(crate) events: u64,
    pub(crate) crashes: u64,
    pub(crate) outcome: Option<(Verdict, Failure)>,
    pub(crate) recovered: bool,
}

impl<'t> Simulation<'t> {
    /// A run of `options` under `plan`, writing its trace to `trace_output` if given.
    /// The plan must fit the options (see [`crate::repro::check_plan`]).
    pub fn new(
        options: &RunOptions,
        plan: &FaultPlan,
        trace_output: Option<&'t mut dyn Write>,
    ) -> Simulation<'t> {
        let nodes = options.nodes;
        assert_eq!(plan.tick_micros.len(), nodes, "the plan is for another cluster size");
        let mut node_seeds = Random::new(options.seed, Purpose::NodeSeeds);
        let hosts = (0..nodes)
            .map(|position| {
                Host::new(position as NodeId + 1, nodes, plan.tick_micros[position], node_seeds.next_u64())
            })
            .collect();
        Simulation {
            control: RunControl::default(),
            event_bound: options.event_bound(),
            flows: vec![0; nodes * nodes * MESSAGE_KINDS],
            options: options.clone(),
            plan: plan.clone(),
            queue: EventQueue::default(),
            hosts,
            network: Network::new(options.seed, plan.network.clone(), nodes),
            storage_random: Random::new(options.seed, Purpose::Storage),
            workload: Workload::new(options.seed),
            clients: (1..=options.clients as u64).map(Client::new).collect(),
            history: Vec::new(),
            commands: CommandCache::default(),
            liveness: None,
            checkers: Checkers::default(),
            trace: Trace::new(trace_output),
            newest_leader: None,
            follow_ups: Vec::new(),
            actions: Vec::new(),
            events: 0,
            crashes: 0,
            outcome: None,
            recovered: false,
        }
    }

    /// Lets `control` stop the run and watch its progress.
    pub fn with_control(mut self, control: RunControl<'t>) -> Simulation<'t> {
        self.control = control;
        self
    }

    /// Runs to the end: a violation, a liveness failure, or recovery after the safety phase.
    pub fn run(self) -> std::io::Result<RunReport> {
        self.run_with_history().map(|(report, _)| report)
    }

    /// Runs to the end and returns the client history too (for `--history`).
    pub fn run_with_history(mut self) -> std::io::Result<(RunReport, Vec<ClientOp>)> {
        let started = Instant::now();
        self.schedule_start();
        while self.outcome.is_none() && !self.recovered {
            let Some((now, event)) = self.queue.pop() else {
                break;
            };
            self.events += 1;
            self.handle(now, event);
            if self.events % CONTROL_INTERVAL_EVENTS == 0 {
                self.look_at_control();
            }
            if self.events >= self.event_bound {
                self.storm();
            }
        }
        let linearizability = self.check_history();
        let (verdict, violation) = match self.outcome.take() {
            Some((verdict, failure)) => (verdict, Some(failure)),
            None => (Verdict::Pass, None),
        };
        let mut report = RunReport {
            seed: self.options.seed,
            nodes: self.options.nodes,
            faults: self.options.faults,
            ticks: self.options.ticks,
            verdict,
            violation,
            events: self.events,
            virtual_time_us: self.queue.now(),
            commits: self.checkers.state_machine_safety.applied_len(),
            elections: self.checkers.election_safety.elections(),
            crashes: self.crashes,
            messages_sent: 0,
            messages_dropped: 0,
            clients: self.options.clients,
            reads: self.options.reads,
            operations: OperationStats::of(&self.history),
            linearizability: linearizability.to_string(),
            trace_hash: String::new(),
            wall_time_ms: 0.0,
        };
        report.network(self.network.stats());
        report.trace_hash = format!("{:016x}", self.trace.finish()?);
        report.wall_time_ms = started.elapsed().as_secs_f64() * 1_000.0;
        Ok((report, self.history))
    }

    /// Stops the run if asked to, and reports progress.
    fn look_at_control(&mut self) {
        if self.control.stop_requested() {
            let detail = format!("stopped after {} events", self.events);
            self.fail(Verdict::Interrupted, Violation::new("interrupted", Vec::new(), detail));
        }
        if let Some(progress) = self.control.progress {
            progress(Progress {
                virtual_time_us: self.queue.now(),
                safety_phase_us: self.safety_phase_micros(),
                events: self.events,
            });
        }
    }

    /// The run took more events than a run of its length can need: something floods the
    /// network (or the queue). End it as a liveness failure naming the busiest flows.
    fn storm(&mut self) {
        let nodes = self.hosts.len();
        let mut flows: Vec<(u64, usize)> = self
            .flows
            .iter()
            .copied()
            .enumerate()
            .filter(|&(_, count)| count > 0)
            .map(|(slot, count)| (count, slot))
            .collect();
        flows.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        let deliveries: u64 = self.flows.iter().sum();
        let busiest: Vec<String> = flows
            .iter()
            .take(3)
            .map(|&(count, slot)| {
                let (link, kind) = (slot / MESSAGE_KINDS, slot % MESSAGE_KINDS);
                format!(
                    "{} from node {} to node {}: {count}",
                    MESSAGE_KIND_NAMES[kind],
                    link / nodes + 1,
                    link % nodes + 1
                )
            })
            .collect();
        let detail = format!(
            "event storm: {} events by {:.6} s virtual, past the bound for this run's length and size ({} × {} ticks with the liveness phase × {nodes} nodes × ({nodes} nodes + {} clients + 1) = {}); {deliveries} messages delivered, the most by {}",
            self.events,
            self.queue.now() as f64 / 1e6,
            crate::options::STORM_EVENTS_PER_SLOT,
            self.options.ticks + LIVENESS_BOUND_MICROS / BASE_TICK_MICROS,
            self.options.clients,
            self.event_bound,
            if busiest.is_empty() { "nobody".to_string() } else { busiest.join(", ") }
        );
        let everyone = (1..=nodes as NodeId).collect();
        self.fail(Verdict::Liveness, Violation::new("liveness", everyone, detail));
    }

    /// Checks the client history for linearizability once the run is over, unless a
    /// safety violation already ended it (its history stops mid-flight). Operations
    /// still in flight are indeterminate. A violation outranks a liveness failure; an
    /// undecided search makes the verdict unknown, never a pass. Says what it found.
    fn check_history(&mut self) -> &'static str {
        for client in 0..self.clients.len() {
            if self.clients[client].is_busy() {
                self.history_give_up(client);
            }
        }
        if matches!(self.outcome, Some((Verdict::Safety | Verdict::Interrupted, _))) {
            return "not checked";
        }
        if self.clients.is_empty() {
            return "no clients";
        }
        let result = linearizability::check(&self.history);
        let Some(violation) = result.violation() else {
            return "linearizable";
        };
        let (verdict, found) = match result {
            Linearizability::Unknown { .. } => (Verdict::Unknown, "unknown"),
            _ => (Verdict::Safety, "violated"),
        };
        let replaces = match &self.outcome {
            None => true,
            Some((Verdict::Liveness, _)) => verdict == Verdict::Safety,
            Some(_) => false,
        };
        if replaces {
            // A violation became visible when the last operation of its witness returned.
            let time_us = match &result {
                Linearizability::Violated { witness, .. } => {
                    witness.iter().filter_map(|op| op.return_us).max().unwrap_or(self.queue.now())
                }
                _ => self.queue.now(),
            };
            tracing::info!(time_us, %violation, "history check failed");
            self.outcome = Some((verdict, Failure { violation, time_us }));
        }
        found
    }

    fn schedule_start(&mut self) {
        for position in 0..self.hosts.len() {
            if let Err(detail) = self.hosts[position].start() {
                self.fail(Verdict::Safety, Violation::new("restart", vec![position as NodeId + 1], detail));
                return;
            }
            self.schedule_tick(position);
        }
        // Faults are queued one at a time, each when the one before it fires, to keep
        // the queue short (a shorter heap is a faster heap).
        if let Some(first) = self.plan.schedule.first() {
            self.queue.schedule(first.at_micros, Event::Fault { index: 0 });
        }
        let workload = &self.plan.workload;
        for (interval, event) in [
            (workload.transfer_interval_micros, Event::Transfer),
            (workload.membership_interval_micros, Event::ChangeMembership),
        ] {
            if interval > 0 {
                let delay = self.workload.next_gap(interval);
                self.queue.schedule(delay, event);
            }
        }
        self.start_clients();
        self.queue.schedule(self.safety_phase_micros(), Event::StartLiveness);
    }

    /// When the safety phase ends.
    pub(crate) fn safety_phase_micros(&self) -> Micros {
        self.options.ticks * BASE_TICK_MICROS
    }

    pub(crate) fn schedule_tick(&mut self, position: usize) {
        if self.options.host_bug == Some(HostBug::NoTicks) {
            return;
        }
        let host = &self.hosts[position];
        let event = Event::Tick { node: position, incarnation: host.incarnation };
        self.queue.schedule_in(host.tick_micros, event);
    }

    /// Ends the run with `verdict`, keeping the first failure only.
    pub(crate) fn fail(&mut self, verdict: Verdict, violation: Violation) {
        if self.outcome.is_none() {
            tracing::info!(time_us = self.queue.now(), %violation, "run failed");
            self.outcome = Some((verdict, Failure { violation, time_us: self.queue.now() }));
        }
    }

    /// Records a safety check's result.
    pub(crate) fn check(&mut self, result: Result<(), Violation>) {
        if let Err(violation) = result {
            self.fail(Verdict::Safety, violation);
        }
    }

    fn record(&mut self, record: TraceRecord) {
        self.trace.record(TraceRecord { time_us: self.queue.now(), ..record });
    }

    fn handle(&mut self, now: Micros, event: Event) {
        match event {
            Event::Tick { node, incarnation } => {
                self.record(TraceRecord {
                    event: TraceEvent::Tick,
                    node: node as u64 + 1,
                    ..TraceRecord::default()
                });
                if self.hosts[node].incarnation != incarnation || !self.hosts[node].is_up() {
                    return;
                }
                self.schedule_tick(node);
                if !self.hosts[node].paused {
                    self.step(node, Input::Tick);
                }
            }
            Event::Deliver { message } => {
                let (kind, index, count) = describe_message(&message.body);
                self.record(TraceRecord {
                    event: TraceEvent::Deliver,
                    node: message.to,
                    peer: message.from,
                    term: message.term,
                    kind,
                    index,
                    count,
                    ..TraceRecord::default()
                });
                let position = (message.to - 1) as usize;
                self.count_flow(&message);
                if self.options.host_bug == Some(HostBug::Retransmit) {
                    self.retransmit(&message);
                }
                let host = &mut self.hosts[position];
                if !host.is_up() {
                    return;
                }
                if host.paused {
                    host.inbox.push(message);
                    return;
                }
                self.step(position, Input::Message(message));
            }
            Event::SyncDone { node, incarnation, through } => {
                self.record(TraceRecord {
                    event: TraceEvent::Sync,
                    node: node as u64 + 1,
                    index: through,
                    ..TraceRecord::default()
                });
                if self.hosts[node].incarnation == incarnation {
                    self.sync_done(node, through);
                }
            }
            Event::Fault { index } => {
                if let Some(next) = self.plan.schedule.get(index + 1) {
                    // The plan may list faults out of order (a hand-edited repro file).
                    let at = next.at_micros.max(now);
                    self.queue.schedule(at, Event::Fault { index: index + 1 });
                }
                self.apply_fault(index);
            }
            Event::HealCut { generation } => {
                self.record(TraceRecord {
                    event: TraceEvent::Heal,
                    index: generation,
                    ..TraceRecord::default()
                });
                self.network.heal_cut(generation);
            }
            Event::Restart { node, incarnation } => {
                if self.hosts[node].incarnation == incarnation && !self.hosts[node].is_up() {
                    self.restart(node);
                }
            }
            Event::Resume { node, incarnation } => {
                if self.hosts[node].incarnation == incarnation && self.hosts[node].paused {
                    self.resume(node);
                }
            }
            Event::ClientInvoke { client } => self.client_invoke(client),
            Event::ClientTimer { client } => self.client_timer(client),
            Event::ClientRetry { client, attempt } => self.client_retry(client, attempt),
            Event::Transfer => self.transfer(),
            Event::ChangeMembership => self.change_membership(),
            Event::StartLiveness => self.start_liveness(),
            Event::LivenessProbe => {
                self.probe_liveness();
                if !self.recovered {
                    self.queue.schedule_in(LIVENESS_PROBE_MICROS, Event::LivenessProbe);
                }
            }
            Event::LivenessDeadline => {
                self.record(TraceRecord { event: TraceEvent::LivenessDeadline, ..TraceRecord::default() });
                let pending = self.liveness_pending();
                let nodes = (1..=self.hosts.len() as NodeId).collect();
                let detail = format!(
                    "the cluster did not recover within {} ms of healing: {pending}",
                    LIVENESS_BOUND_MICROS / 1_000
                );
                self.fail(Verdict::Liveness, Violation::new("liveness", nodes, detail));
            }
        }
        debug_assert!(self.queue.now() == now);
    }

    /// Counts a delivered message by sender, receiver and kind.
    fn count_flow(&mut self, message: &Message) {
        let nodes = self.hosts.len() as NodeId;
        if (1..=nodes).contains(&message.from) && (1..=nodes).contains(&message.to) {
            let link = (message.from - 1) * nodes + (message.to - 1);
            self.flows[link as usize * MESSAGE_KINDS + message_kind(&message.body)] += 1;
        }
    }

    /// `--host-bug retransmit`: the transport sends a delivered message once more.
    fn retransmit(&mut self, message: &Message) {
        let (from, to) = ((message.from - 1) as usize, (message.to - 1) as usize);
        if from >= self.hosts.len() {
            return;
        }
        let now = self.queue.now();
        if let Route::Deliver { delay, .. } = self.network.route(from, to, now) {
            self.queue.schedule_in(delay, Event::Deliver { message: message.clone() });
        }
    }

    /// Gives one input to a running node and handles what it asks for, then any
    /// follow-up inputs its host owes it.
    pub(crate) fn step(&mut self, position: usize, input: Input) {
        self.step_once(position, input);
        self.run_follow_ups();
    }

    /// Gives nodes the inputs their hosts owe them (log compaction after applies).
    pub(crate) fn run_follow_ups(&mut self) {
        while let Some((position, input)) = self.follow_ups.pop() {
            if self.outcome.is_none() && self.hosts[position].is_responsive() {
                self.step_once(position, input);
            }
        }
    }

    fn step_once(&mut self, position: usize, input: Input) {
        let mut actions = std::mem::take(&mut self.actions);
        let host = &mut self.hosts[position];
        let node = host.node.as_mut().expect("only running nodes are stepped");
        let term_before = node.term();
        let stale = match &input {
            Input::Message(message) if StaleTerm::is_stale(message, term_before) => Some(message.clone()),
            _ => None,
        };
        // A panic in the core (one of its own assertions) is a finding, not a crash of
        // the simulator: report it like any violation, with the seed to reproduce it.
        let stepped =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| node.step_into(input, &mut actions)));
        if let Err(payload) = stepped {
            let id = host.id;
            host.node = None;
            self.actions = Vec::new();
            let detail = format!("node {id} panicked: {}", panic_message(payload.as_ref()));
            self.fail(Verdict::Safety, Violation::new("core assertion", vec![id], detail));
            return;
        }
        let (id, commit) = (node.id(), node.commit_index());
        let result = self.checkers.monotonic.on_commit(id, commit);
        self.check(result);
        if let Some(message) = stale {
            let result = self.checkers.stale_term.on_stale_message(&message, term_before, &actions);
            self.check(result);
        }
        for action in actions.drain(..) {
            if self.outcome.is_some() {
                break;
            }
            self.on_action(position, action);
        }
        self.actions = actions;
        self.sync_if_needed(position);
    }
}

/// The text a panic carried.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        text.to_string()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "a panic without a message".to_string()
    }
}

/// How many kinds of message there are (see [`message_kind`]).
const MESSAGE_KINDS: usize = 10;

/// The names of the message kinds, by [`message_kind`].
const MESSAGE_KIND_NAMES: [&str; MESSAGE_KINDS] = [
    "PreVote",
    "PreVoteResponse",
    "RequestVote",
    "RequestVoteResponse",
    "AppendEntries",
    "AppendEntriesResponse",
    "Heartbeat",
    "HeartbeatResponse",
    "InstallSnapshot",
    "TimeoutNow",
];

/// A message's kind as an index into [`MESSAGE_KIND_NAMES`].
fn message_kind(body: &MessageBody) -> usize {
    match body {
        MessageBody::RequestVote { pre_vote: true, .. } => 0,
        MessageBody::RequestVoteResponse { pre_vote: true, .. } => 1,
        MessageBody::RequestVote { .. } => 2,
        MessageBody::RequestVoteResponse { .. } => 3,
        MessageBody::AppendEntries { .. } => 4,
        MessageBody::AppendEntriesResponse { .. } => 5,
        MessageBody::Heartbeat { .. } => 6,
        MessageBody::HeartbeatResponse { .. } => 7,
        MessageBody::InstallSnapshot { .. } => 8,
        MessageBody::TimeoutNow => 9,
    }
}

/// A message's kind, for reports.
pub(crate) fn describe_message_kind(body: &MessageBody) -> &'static str {
    MESSAGE_KIND_NAMES[message_kind(body)]
}

/// A message's kind, the index it is about and how many entries it carries, for the trace.
fn describe_message(body: &MessageBody) -> (TraceKind, u64, u64) {
    match body {
        MessageBody::RequestVote { pre_vote: true, last_log_index, .. } => {
            (TraceKind::PreVote, *last_log_index, 0)
        }
        MessageBody::RequestVote { last_log_index, .. } => (TraceKind::RequestVote, *last_log_index, 0),
        MessageBody::RequestVoteResponse { pre_vote, granted } => (
            if *pre_vote { TraceKind::PreVoteResponse } else { TraceKind::RequestVoteResponse },
            0,
            u64::from(*granted),
        ),
        MessageBody::AppendEntries { prev_log_index, entries, .. } => {
            (TraceKind::AppendEntries, *prev_log_index, entries.len() as u64)
        }
        MessageBody::AppendEntriesResponse { success, index, .. } => {
            (TraceKind::AppendEntriesResponse, *index, u64::from(*success))
        }
        MessageBody::Heartbeat { commit, .. } => (TraceKind::Heartbeat, *commit, 0),
        MessageBody::HeartbeatResponse { read_round, .. } => (TraceKind::HeartbeatResponse, *read_round, 0),
        MessageBody::InstallSnapshot { snapshot } => {
            (TraceKind::InstallSnapshot, snapshot.meta.last_included_index, 0)
        }
        MessageBody::TimeoutNow => (TraceKind::TimeoutNow, 0, 0),
    }
}
