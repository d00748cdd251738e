//! The simulator: one seed, a virtual clock and its event queue, the cluster it drives,
//! the fault schedule, the clients and operator, and the two phases of a run.
//!
//! A run has two phases. The safety phase lasts `--ticks` base ticks with the fault
//! plan in force; every observation is checked as it happens (by the cluster's
//! checkers). Then the liveness phase heals everything (cuts, loss, crashed and paused
//! nodes) and the cluster must, within [`LIVENESS_BOUND_MICROS`], agree on a leader,
//! commit and apply a new proposal on every node and finish every client operation.
//! The run stops at the first violation, or when it takes more events than its length
//! allows (a storm).

use crate::checkers::linearizability::{self, Linearizability};
use crate::checkers::{Invariant, Violation};
use crate::clients::Client;
use crate::cluster::Cluster;
use crate::connections::{Connections, CONNECTION_CLIENTS};
use crate::control::{Progress, RunControl, CONTROL_INTERVAL_EVENTS};
use crate::event_queue::{EventQueue, Micros};
use crate::faults::{FaultPlan, BASE_TICK_MICROS};
use crate::history::{ClientOp, OperationStats};
use crate::options::{RunOptions, RunReport, Verdict};
use crate::random::{Purpose, Random};
use crate::trace::{Trace, TraceEvent, TraceKind, TraceRecord};
use crate::workload::{LivenessProbe, Workload};
use raft_core::{MessageBody, NodeId};
use std::io::Write;
use std::time::Instant;

pub use crate::event::Event;
pub use crate::options::LIVENESS_BOUND_MICROS;
/// How often the liveness phase checks whether the cluster has recovered.
const LIVENESS_PROBE_MICROS: Micros = 50_000;

/// A run in progress. Build with [`Simulation::new`], drive with [`Simulation::run`].
pub struct Simulation<'t> {
    pub(crate) options: RunOptions,
    pub(crate) plan: FaultPlan,
    pub(crate) queue: EventQueue<Event>,
    /// The nodes, their disks, the network and the checkers.
    pub(crate) cluster: Cluster,
    pub(crate) workload: Workload,
    pub(crate) clients: Vec<Client>,
    /// The pipelining connections.
    pub(crate) connections: Connections,
    /// Every client operation so far, in invocation order.
    pub(crate) history: Vec<ClientOp>,
    pub(crate) liveness: Option<LivenessProbe>,
    pub(crate) trace: Trace<'t>,
    /// When each node (by position) ticks next; `None` while it is down. Ticks are a
    /// third of all events: kept out of the queue, they cost a scan of a few words.
    next_ticks: Vec<Option<Micros>>,
    /// The earliest of `next_ticks` (the lowest position first at one instant), kept
    /// up to date as they change.
    earliest_tick: Option<(Micros, usize)>,
    /// Stop flag and progress callback from the caller.
    control: RunControl<'t>,
    /// The most events before the run counts as a storm (see [`RunOptions::event_bound`]).
    event_bound: u64,
    pub(crate) events: u64,
    pub(crate) recovered: bool,
    /// The availability rules' memory.
    pub(crate) availability: crate::availability::Availability,
}

impl<'t> Simulation<'t> {
    /// A run of `options` under `plan`, writing its trace to `trace_output` if given.
    /// The plan must fit the options (see [`crate::repro::check_plan`]).
    pub fn new(
        options: &RunOptions,
        plan: &FaultPlan,
        trace_output: Option<&'t mut dyn Write>,
    ) -> Simulation<'t> {
        assert_eq!(plan.tick_micros.len(), options.nodes, "the plan is for another cluster size");
        Simulation {
            options: options.clone(),
            plan: plan.clone(),
            queue: EventQueue::default(),
            cluster: Cluster::new(options, plan),
            workload: Workload::new(options.seed),
            clients: (1..=options.clients as u64).map(Client::new).collect(),
            connections: Connections::new(
                if options.clients == 0 { 0 } else { plan.workload.pipelined_connections as usize },
                Random::new(options.seed, Purpose::Connections),
            ),
            history: Vec::new(),
            liveness: None,
            trace: Trace::new(trace_output),
            next_ticks: vec![None; options.nodes],
            earliest_tick: None,
            control: RunControl::default(),
            event_bound: options.event_bound(),
            events: 0,
            recovered: false,
            availability: Default::default(),
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
        while !self.cluster.failed() && !self.recovered {
            // The earliest tick (the lowest position first at one instant) goes before
            // the queue's events of the same instant.
            match (self.earliest_tick, self.queue.next_time()) {
                (Some((at, position)), next) if next.is_none_or(|next| at <= next) => {
                    self.queue.advance_to(at);
                    self.events += 1;
                    self.tick(position);
                }
                _ => {
                    let Some((now, event)) = self.queue.pop() else {
                        break;
                    };
                    self.events += 1;
                    self.handle(now, event);
                }
            }
            self.answer_clients();
            if !self.cluster.stopped.is_empty() {
                self.after_disk_failures();
            }
            if self.events % CONTROL_INTERVAL_EVENTS == 0 {
                self.look_at_control();
            }
            if self.events >= self.event_bound {
                self.storm();
            }
        }
        let linearizability = self.check_history();
        let (verdict, violation) = match self.cluster.failure.take() {
            Some((verdict, failure)) => (verdict, Some(failure)),
            None => (Verdict::Pass, None),
        };
        let checkers = &self.cluster.checkers;
        let mut report = RunReport {
            seed: self.options.seed,
            nodes: self.options.nodes,
            faults: self.options.faults,
            ticks: self.options.ticks,
            verdict,
            violation,
            events: self.events,
            virtual_time_us: self.queue.now(),
            commits: checkers.state_machine_safety.applied_len(),
            elections: checkers.election_safety.elections(),
            crashes: self.cluster.crashes,
            messages_sent: 0,
            messages_dropped: 0,
            clients: self.options.clients,
            reads: self.options.reads,
            operations: OperationStats::of(&self.history),
            linearizability: linearizability.to_string(),
            trace_hash: String::new(),
            wall_time_ms: 0.0,
        };
        report.network(self.cluster.network.stats());
        report.trace_hash = format!("{:016x}", self.trace.finish()?);
        report.wall_time_ms = started.elapsed().as_secs_f64() * 1_000.0;
        Ok((report, self.history))
    }

    /// Stops the run if asked to, and reports progress.
    fn look_at_control(&mut self) {
        if self.control.stop_requested() {
            let detail = format!("stopped after {} events", self.events);
            self.fail(Verdict::Interrupted, Violation::new(Invariant::Interrupted, Vec::new(), detail));
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
        let nodes = self.cluster.hosts.len();
        let (deliveries, busiest) = self.cluster.busiest_flows(3);
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
        self.fail(Verdict::Liveness, Violation::new(Invariant::Liveness, everyone, detail));
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
        if matches!(self.cluster.failure, Some((Verdict::Safety | Verdict::Interrupted, _))) {
            return "not checked";
        }
        if self.clients.is_empty() {
            return "no clients";
        }
        if self.connections.len() > 0 {
            let is_connection = |client| client >= CONNECTION_CLIENTS;
            if let Err(violation) = crate::checkers::connection_order::check(&self.history, is_connection) {
                let replaces = !matches!(self.cluster.failure, Some((Verdict::Safety | Verdict::Unknown, _)));
                if replaces {
                    self.cluster.failure = None;
                    self.fail(Verdict::Safety, violation);
                }
                return "not checked";
            }
        }
        let result = linearizability::check(&self.history);
        let Some(violation) = result.violation() else {
            return "linearizable";
        };
        let (verdict, found) = match result {
            Linearizability::Unknown { .. } => (Verdict::Unknown, "unknown"),
            _ => (Verdict::Safety, "violated"),
        };
        let replaces = match &self.cluster.failure {
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
            self.cluster.failure = Some((verdict, crate::options::Failure { violation, time_us }));
        }
        found
    }

    fn schedule_start(&mut self) {
        for position in 0..self.cluster.hosts.len() {
            self.cluster.start(position, self.queue.now());
            if self.cluster.failed() {
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
        self.start_connections();
        self.queue.schedule(self.safety_phase_micros(), Event::StartLiveness);
    }

    /// When the safety phase ends.
    pub(crate) fn safety_phase_micros(&self) -> Micros {
        self.options.ticks * BASE_TICK_MICROS
    }

    /// The node at `position` (just started or restarted) ticks one period from now.
    pub(crate) fn schedule_tick(&mut self, position: usize) {
        let period = self.cluster.hosts[position].tick_micros;
        self.next_ticks[position] = Some(self.queue.now() + period);
        self.find_earliest_tick();
    }

    /// The node at `position` crashed: no more ticks until it restarts.
    pub(crate) fn stop_ticks(&mut self, position: usize) {
        self.next_ticks[position] = None;
        self.find_earliest_tick();
    }

    fn find_earliest_tick(&mut self) {
        let mut earliest: Option<(Micros, usize)> = None;
        for (position, next) in self.next_ticks.iter().enumerate() {
            if let Some(at) = *next {
                if earliest.is_none_or(|(earliest_at, _)| at < earliest_at) {
                    earliest = Some((at, position));
                }
            }
        }
        self.earliest_tick = earliest;
    }

    /// The node at `position` ticks (if it is not paused) and the next tick is due a
    /// period later.
    fn tick(&mut self, position: usize) {
        self.record(TraceRecord {
            event: TraceEvent::Tick,
            node: position as u64 + 1,
            ..TraceRecord::default()
        });
        self.schedule_tick(position);
        self.cluster.tick(position, &mut self.queue);
        self.watch_availability(position);
    }

    /// Ends the run with `verdict`, keeping the first failure only.
    pub(crate) fn fail(&mut self, verdict: Verdict, violation: Violation) {
        self.cluster.fail(verdict, violation, self.queue.now());
    }

    fn record(&mut self, record: TraceRecord) {
        self.trace.record(TraceRecord { time_us: self.queue.now(), ..record });
    }

    fn handle(&mut self, now: Micros, event: Event) {
        match event {
            Event::Deliver { message } => {
                if let (Some(quiet), MessageBody::TimeoutNow) = (&mut self.availability.quiet, &message.body)
                {
                    quiet.transfer_arrived = true;
                }
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
                self.cluster.deliver(message, &mut self.queue);
            }
            Event::SyncDone { node, incarnation, through, group } => {
                self.record(TraceRecord {
                    event: TraceEvent::Sync,
                    node: node as u64 + 1,
                    index: through,
                    ..TraceRecord::default()
                });
                self.cluster.sync_done(node, incarnation, through, group, &mut self.queue);
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
                self.cluster.network.heal_cut(generation);
            }
            Event::Restart { node, incarnation } => {
                let host = &self.cluster.hosts[node];
                if host.incarnation == incarnation && !host.is_up() {
                    self.restart(node);
                }
            }
            Event::Resume { node, incarnation } => {
                let host = &self.cluster.hosts[node];
                if host.incarnation == incarnation && host.paused {
                    self.resume(node);
                }
            }
            Event::ConnectionSend { connection } => self.connection_send(connection),
            Event::ConnectionTimer { connection, generation } => {
                self.connection_timer(connection, generation)
            }
            Event::ClientInvoke { client } => self.client_invoke(client),
            Event::ClientTimer { client } => self.client_timer(client),
            Event::ClientRetry { client, attempt } => self.client_retry(client, attempt),
            Event::Transfer => self.transfer(),
            Event::ChangeMembership => self.change_membership(),
            Event::StartLiveness => self.start_liveness(),
            Event::LivenessProbe => {
                self.probe_liveness();
                if !self.recovered && self.availability.quiet.is_none() {
                    self.queue.schedule_in(LIVENESS_PROBE_MICROS, Event::LivenessProbe);
                }
            }
            // Recovered in time: the quiet tail is under way.
            Event::LivenessDeadline if self.availability.quiet.is_some() => {}
            Event::LivenessDeadline => {
                self.record(TraceRecord { event: TraceEvent::LivenessDeadline, ..TraceRecord::default() });
                let pending = self.liveness_pending();
                let nodes = (1..=self.cluster.hosts.len() as NodeId).collect();
                let detail = format!(
                    "the cluster did not recover within {} ms of healing: {pending}",
                    LIVENESS_BOUND_MICROS / 1_000
                );
                self.fail(Verdict::Liveness, Violation::new(Invariant::Liveness, nodes, detail));
            }
            Event::QuietEnd => self.recovered = true,
        }
        debug_assert!(self.queue.now() == now);
    }

    /// Hands the answers the cluster collected to whoever asked: a client, the
    /// operator or the liveness probe.
    fn answer_clients(&mut self) {
        while !self.cluster.answers.is_empty() {
            let answers = std::mem::take(&mut self.cluster.answers);
            for answered in answers {
                if self.cluster.failed() {
                    return;
                }
                self.on_answer(answered);
            }
        }
    }
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
