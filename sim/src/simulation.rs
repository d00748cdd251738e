//! The run loop: it owns the world (`world.rs`: clock, queue, cluster, history, trace)
//! and the parts of a run (clients, connections, operator, nemesis, liveness probe,
//! availability rules), each with its own state, and routes every event to its part.
//!
//! A run has two phases. The safety phase lasts `--ticks` base ticks with the fault
//! plan in force; every observation is checked as it happens (by the cluster's
//! checkers). Then the liveness phase heals everything (cuts, loss, crashed and paused
//! nodes) and the cluster must, within [`LIVENESS_BOUND_MICROS`], agree on a leader,
//! commit and apply a new proposal on every node and finish every client operation.
//! The run stops at the first violation, or when it takes more events than its length
//! allows (a storm).

use crate::availability::Availability;
use crate::checkers::linearizability::{self, Linearizability};
use crate::checkers::{Invariant, Violation};
use crate::clients::Clients;
use crate::cluster::Answered;
use crate::connections::{Connections, CONNECTION_CLIENTS};
use crate::control::{Progress, RunControl, CONTROL_INTERVAL_EVENTS};
use crate::event_queue::Micros;
use crate::faults::{FaultPlan, BASE_TICK_MICROS};
use crate::history::{ClientOp, OperationStats};
use crate::liveness::{LivenessProbe, PROBE_REQUEST_IDS};
use crate::nemesis;
use crate::operator::Operator;
use crate::options::{RunOptions, RunReport, Verdict};
use crate::random::{Purpose, Random};
use crate::trace::{Trace, TraceEvent, TraceKind, TraceRecord};
use crate::world::World;
use raft_core::{MessageBody, NodeId};
use std::io::Write;
use std::time::Instant;

pub use crate::event::Event;
pub use crate::options::LIVENESS_BOUND_MICROS;
/// How often the liveness phase checks whether the cluster has recovered.
const LIVENESS_PROBE_MICROS: Micros = 50_000;

/// A run in progress. Build with [`Simulation::new`], drive with [`Simulation::run`].
///
/// It owns the world (clock, queue, cluster, history, trace) and the parts that act on
/// it, each with its own state, and routes every event to the part it concerns.
pub struct Simulation<'t> {
    world: World<'t>,
    clients: Clients,
    /// The pipelining connections.
    connections: Connections,
    operator: Operator,
    /// The liveness phase's probe, once the phase has begun.
    liveness: Option<LivenessProbe>,
    /// The availability rules.
    availability: Availability,
    /// Stop flag and progress callback from the caller.
    control: RunControl<'t>,
    /// The most events before the run counts as a storm (see [`RunOptions::event_bound`]).
    event_bound: u64,
    events: u64,
    recovered: bool,
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
            world: World::new(options, plan, Trace::new(trace_output)),
            clients: Clients::new(options.clients),
            connections: Connections::new(
                if options.clients == 0 { 0 } else { plan.workload.pipelined_connections as usize },
                Random::new(options.seed, Purpose::Connections),
            ),
            operator: Operator::new(),
            liveness: None,
            availability: Availability::default(),
            control: RunControl::default(),
            event_bound: options.event_bound(),
            events: 0,
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
        while !self.world.cluster.failed() && !self.recovered {
            // The earliest tick (the lowest position first at one instant) goes before
            // the queue's events of the same instant.
            match (self.world.ticks.earliest(), self.world.queue.next_time()) {
                (Some((at, position)), next) if next.is_none_or(|next| at <= next) => {
                    self.world.queue.advance_to(at);
                    self.events += 1;
                    self.tick(position);
                }
                _ => {
                    let Some((now, event)) = self.world.queue.pop() else {
                        break;
                    };
                    self.events += 1;
                    self.handle(now, event);
                }
            }
            self.answer_clients();
            if !self.world.cluster.stopped.is_empty() {
                nemesis::after_disk_failures(&mut self.world, &mut self.availability);
            }
            if self.events % CONTROL_INTERVAL_EVENTS == 0 {
                self.look_at_control();
            }
            if self.events >= self.event_bound {
                self.storm();
            }
        }
        let linearizability = self.check_history();
        let mut world = self.world;
        let (verdict, violation) = match world.cluster.failure.take() {
            Some((verdict, failure)) => (verdict, Some(failure)),
            None => (Verdict::Pass, None),
        };
        let checkers = &world.cluster.checkers;
        let options = &world.options;
        let mut report = RunReport {
            seed: options.seed,
            nodes: options.nodes,
            faults: options.faults,
            ticks: options.ticks,
            verdict,
            violation,
            events: self.events,
            virtual_time_us: world.queue.now(),
            commits: checkers.state_machine_safety.applied_len(),
            elections: checkers.election_safety.elections(),
            crashes: world.cluster.crashes,
            messages_sent: 0,
            messages_dropped: 0,
            entries_per_append: 0.0,
            clients: options.clients,
            reads: options.reads,
            operations: OperationStats::of(&world.history),
            membership: checkers.membership.stats,
            chunked_installs: world.cluster.chunked_installs,
            sessions_expired: world.sessions_renewed,
            keys_expired: world
                .cluster
                .hosts
                .iter()
                .filter_map(|host| host.driver.as_ref().map(|driver| driver.machine().kv.expired_keys()))
                .max()
                .unwrap_or(0),
            linearizability: linearizability.to_string(),
            trace_hash: String::new(),
            wall_time_ms: 0.0,
        };
        report.network(world.cluster.network.stats());
        let (appends, entries) = world.cluster.appends_with_entries;
        report.entries_per_append = if appends == 0 { 0.0 } else { entries as f64 / appends as f64 };
        report.trace_hash = format!("{:016x}", world.trace.finish()?);
        report.wall_time_ms = started.elapsed().as_secs_f64() * 1_000.0;
        Ok((report, world.history))
    }

    /// Stops the run if asked to, and reports progress.
    fn look_at_control(&mut self) {
        if self.control.stop_requested() {
            let detail = format!("stopped after {} events", self.events);
            self.world.fail(Verdict::Interrupted, Violation::new(Invariant::Interrupted, Vec::new(), detail));
        }
        if let Some(progress) = self.control.progress {
            progress(Progress {
                virtual_time_us: self.world.queue.now(),
                safety_phase_us: self.world.safety_phase_micros(),
                events: self.events,
            });
        }
    }

    /// The run took more events than a run of its length can need: something floods the
    /// network (or the queue). End it as a liveness failure naming the busiest flows.
    fn storm(&mut self) {
        let world = &mut self.world;
        let nodes = world.cluster.hosts.len();
        let (deliveries, busiest) = world.cluster.busiest_flows(3);
        let detail = format!(
            "event storm: {} events by {:.6} s virtual, past the bound for this run's length and size ({} × {} ticks with the liveness phase × {nodes} nodes × ({nodes} nodes + {} clients + 1) = {}); {deliveries} messages delivered, the most by {}",
            self.events,
            world.queue.now() as f64 / 1e6,
            crate::options::STORM_EVENTS_PER_SLOT,
            world.options.ticks + LIVENESS_BOUND_MICROS / BASE_TICK_MICROS,
            world.options.clients,
            self.event_bound,
            if busiest.is_empty() { "nobody".to_string() } else { busiest.join(", ") }
        );
        let everyone = (1..=nodes as NodeId).collect();
        world.fail(Verdict::Liveness, Violation::new(Invariant::Liveness, everyone, detail));
    }

    /// Checks the client history for linearizability once the run is over, unless a
    /// safety violation already ended it (its history stops mid-flight). Operations
    /// still in flight are indeterminate. A violation outranks a liveness failure; an
    /// undecided search makes the verdict unknown, never a pass. Says what it found.
    fn check_history(&mut self) -> &'static str {
        self.clients.give_up_all(&mut self.world);
        let world = &mut self.world;
        if matches!(world.cluster.failure, Some((Verdict::Safety | Verdict::Interrupted, _))) {
            return "not checked";
        }
        if self.clients.is_empty() {
            return "no clients";
        }
        if self.connections.len() > 0 {
            let is_connection = |client| client >= CONNECTION_CLIENTS;
            if let Err(violation) = crate::checkers::connection_order::check(&world.history, is_connection) {
                let replaces =
                    !matches!(world.cluster.failure, Some((Verdict::Safety | Verdict::Unknown, _)));
                if replaces {
                    world.cluster.failure = None;
                    world.fail(Verdict::Safety, violation);
                }
                return "not checked";
            }
        }
        // How early a key's time to live can run out: log time runs with the leader's
        // ticks, at most as fast as the fastest node's clock.
        let fastest = world.plan.tick_micros.iter().copied().min().unwrap_or(BASE_TICK_MICROS).max(1);
        let fast_ppm = BASE_TICK_MICROS.saturating_sub(fastest) * 1_000_000 / fastest;
        let time = linearizability::TimeModel::new(BASE_TICK_MICROS, fast_ppm);
        let result = linearizability::check_with_time(&world.history, time);
        let Some(violation) = result.violation() else {
            return "linearizable";
        };
        let (verdict, found) = match result {
            Linearizability::Unknown { .. } => (Verdict::Unknown, "unknown"),
            _ => (Verdict::Safety, "violated"),
        };
        let replaces = match &world.cluster.failure {
            None => true,
            Some((Verdict::Liveness, _)) => verdict == Verdict::Safety,
            Some(_) => false,
        };
        if replaces {
            // A violation became visible when the last operation of its witness returned.
            let time_us = match &result {
                Linearizability::Violated { witness, .. } => {
                    witness.iter().filter_map(|op| op.return_us).max().unwrap_or(world.queue.now())
                }
                _ => world.queue.now(),
            };
            tracing::info!(time_us, %violation, "history check failed");
            world.cluster.failure = Some((verdict, crate::options::Failure { violation, time_us }));
        }
        found
    }

    fn schedule_start(&mut self) {
        let world = &mut self.world;
        for position in 0..world.cluster.hosts.len() {
            world.cluster.start(position, world.queue.now());
            if world.cluster.failed() {
                return;
            }
            world.schedule_tick(position);
        }
        // Faults are queued one at a time, each when the one before it fires, to keep
        // the queue short (a shorter heap is a faster heap).
        if let Some(first) = world.plan.schedule.first() {
            world.queue.schedule(first.at_micros, Event::Fault { index: 0 });
        }
        for (interval, event) in [
            (world.plan.workload.transfer_interval_micros, Event::Transfer),
            (world.plan.workload.membership_interval_micros, Event::ChangeMembership),
        ] {
            if interval > 0 {
                let delay = world.next_gap(interval);
                world.queue.schedule(delay, event);
            }
        }
        self.clients.start(world);
        self.connections.start(world);
        let end = world.safety_phase_micros();
        world.queue.schedule(end, Event::StartLiveness);
    }

    /// The node at `position` ticks (if it is not paused) and the next tick is due a
    /// period later.
    fn tick(&mut self, position: usize) {
        let world = &mut self.world;
        world.record(TraceRecord {
            event: TraceEvent::Tick,
            node: position as u64 + 1,
            ..TraceRecord::default()
        });
        world.schedule_tick(position);
        world.cluster.tick(position, &mut world.queue);
        if self.availability.watch(world, position) {
            // The quiet tail was given up on: look for recovery again.
            world.queue.schedule_in(LIVENESS_PROBE_MICROS, Event::LivenessProbe);
        }
    }

    fn handle(&mut self, now: Micros, event: Event) {
        let world = &mut self.world;
        match event {
            Event::Deliver { message } => {
                if let (Some(quiet), MessageBody::TimeoutNow) = (&mut self.availability.quiet, &message.body)
                {
                    quiet.transfer_arrived = true;
                }
                let (kind, index, count) = describe_message(&message.body);
                world.record(TraceRecord {
                    event: TraceEvent::Deliver,
                    node: message.to,
                    peer: message.from,
                    term: message.term,
                    kind,
                    index,
                    count,
                    ..TraceRecord::default()
                });
                world.cluster.deliver(message, &mut world.queue);
            }
            Event::RequestRound { node, incarnation } => {
                world.cluster.request_round(node, incarnation, &mut world.queue)
            }
            Event::SyncDone { node, incarnation, through, group } => {
                world.record(TraceRecord {
                    event: TraceEvent::Sync,
                    node: node as u64 + 1,
                    index: through,
                    ..TraceRecord::default()
                });
                world.cluster.sync_done(node, incarnation, through, group, &mut world.queue);
            }
            Event::Fault { index } => {
                if let Some(next) = world.plan.schedule.get(index + 1) {
                    // The plan may list faults out of order (a hand-edited repro file).
                    let at = next.at_micros.max(now);
                    world.queue.schedule(at, Event::Fault { index: index + 1 });
                }
                nemesis::apply_fault(world, &mut self.availability, index);
            }
            Event::HealCut { generation } => {
                world.record(TraceRecord {
                    event: TraceEvent::Heal,
                    index: generation,
                    ..TraceRecord::default()
                });
                world.cluster.network.heal_cut(generation);
            }
            Event::Restart { node, incarnation } => {
                let host = &world.cluster.hosts[node];
                if host.incarnation == incarnation && !host.is_up() {
                    nemesis::restart(world, node);
                }
            }
            Event::Resume { node, incarnation } => {
                let host = &world.cluster.hosts[node];
                if host.incarnation == incarnation && host.paused {
                    nemesis::resume(world, node);
                }
            }
            Event::ConnectionSend { connection } => self.connections.send(world, connection),
            Event::ConnectionTimer { connection, generation } => {
                self.connections.timer(world, connection, generation)
            }
            Event::ClientInvoke { client } => self.clients.invoke(world, client),
            Event::ClientTimer { client } => self.clients.timer(world, client),
            Event::ClientRetry { client, attempt } => self.clients.retry(world, client, attempt),
            Event::Transfer => self.operator.transfer(world),
            Event::ChangeMembership => self.operator.change_membership(world),
            Event::StartLiveness => self.start_liveness(),
            Event::LivenessProbe => {
                let probe = self.liveness.as_mut().expect("probing in the liveness phase");
                let recovered = probe.probe(world, &self.clients.busy());
                if let Some(leader) = recovered.filter(|_| self.availability.quiet.is_none()) {
                    self.availability.begin_quiet(world, leader);
                }
                if !self.recovered && self.availability.quiet.is_none() {
                    world.queue.schedule_in(LIVENESS_PROBE_MICROS, Event::LivenessProbe);
                }
            }
            // Recovered in time: the quiet tail is under way.
            Event::LivenessDeadline if self.availability.quiet.is_some() => {}
            Event::LivenessDeadline => {
                world.record(TraceRecord { event: TraceEvent::LivenessDeadline, ..TraceRecord::default() });
                let probe = self.liveness.as_ref().expect("the deadline of the liveness phase");
                let pending = probe.pending(&world.cluster, &self.clients.busy());
                let nodes = (1..=world.cluster.hosts.len() as NodeId).collect();
                let detail = format!(
                    "the cluster did not recover within {} ms of healing: {pending}",
                    LIVENESS_BOUND_MICROS / 1_000
                );
                world.fail(Verdict::Liveness, Violation::new(Invariant::Liveness, nodes, detail));
            }
            Event::QuietEnd { began } => {
                if self.availability.quiet.as_ref().is_some_and(|quiet| quiet.began == began) {
                    self.recovered = true;
                }
            }
        }
        debug_assert!(self.world.queue.now() == now);
    }

    /// The safety phase is over: heal everything, and give the cluster
    /// [`LIVENESS_BOUND_MICROS`] to recover, with the probe as its only client.
    fn start_liveness(&mut self) {
        let world = &mut self.world;
        nemesis::heal_all(world);
        world.liveness_phase = true;
        self.liveness = Some(LivenessProbe::default());
        world.queue.schedule_in(0, Event::LivenessProbe);
        world.queue.schedule_in(LIVENESS_BOUND_MICROS, Event::LivenessDeadline);
    }

    /// Hands the answers the cluster collected to whoever asked: a client, a
    /// connection, the operator or the liveness probe.
    fn answer_clients(&mut self) {
        while !self.world.cluster.answers.is_empty() {
            let answers = std::mem::take(&mut self.world.cluster.answers);
            for answered in answers {
                if self.world.cluster.failed() {
                    return;
                }
                self.on_answer(answered);
            }
        }
    }

    /// Hands one answer to whoever asked. Every answer tells the operator where the
    /// leader may be.
    fn on_answer(&mut self, answered: Answered) {
        let Answered { node, request, answer } = answered;
        let world = &mut self.world;
        self.operator.on_answer(node, &answer, world.cluster.hosts.len());
        if request >= PROBE_REQUEST_IDS {
            if let Some(probe) = self.liveness.as_mut() {
                probe.on_answer(&answer);
            }
        } else if crate::clients::client_of(request).is_some() {
            self.clients.on_answer(world, node, request, answer);
        } else if crate::connections::connection_of(request).is_some() {
            self.connections.on_answer(world, node, request, answer);
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
        MessageBody::InstallSnapshot { meta, offset, .. } => {
            (TraceKind::InstallSnapshot, meta.last_included_index, *offset)
        }
        MessageBody::SnapshotChunkResponse { last_included_index, received_bytes } => {
            (TraceKind::SnapshotChunkResponse, *last_included_index, *received_bytes)
        }
        MessageBody::TimeoutNow => (TraceKind::TimeoutNow, 0, 0),
        MessageBody::Removed { committed_through } => (TraceKind::Removed, *committed_through, 0),
    }
}
