//! The simulated cluster: each node's production driver over a simulated disk, the
//! network between them, and the checkers watching everything they do.
//!
//! The simulator (`simulation`) drives it through a handful of doors: a node ticks, a
//! message arrives, a sync completes, a client submits a request, the nemesis crashes,
//! restarts, pauses or resumes a node. Behind each door the cluster calls the node's
//! driver and carries out what it asks, in order: writes go to the disk, syncs are
//! scheduled with the disk's latency, sends enter the network, answers are collected
//! for the clients. Every fact on the way is fed to the checkers as an [`Observed`]
//! event; the first violation ends the run.

mod disk;
mod host;
#[cfg(test)]
mod tests;

pub use disk::Disk;
pub use host::{Host, StartError};

use crate::checkers::{Checkers, Invariant, Observed, StaleTerm, Violation};
use crate::event::Event;
use crate::event_queue::{EventQueue, Micros};
use crate::faults::{FaultPlan, StorageParams};
use crate::naming::{message_kind, panic_message, MESSAGE_KINDS, MESSAGE_KIND_NAMES};
use crate::network::{Network, Route};
use crate::options::{Failure, HostBug, RunOptions, Verdict};
use crate::random::{Purpose, Random};
use crate::state_machine::{CommandCache, Replica};
use kv::{Query, Response};
use raft_core::{Config, Message, NodeId, RequestId};
use raft_host::{Answer, Driver, DriverConfig, Misbehaviour, Output, Request, Write, WriteId};
use std::cell::RefCell;
use std::rc::Rc;

/// Election timeouts in [15, 30) ticks of about 10 ms and heartbeats every 3 ticks:
/// several round trips of the heavy profile's network fit in one timeout.
fn node_config(id: NodeId, nodes: usize) -> Config {
    let mut config = Config::new(id, (1..=nodes as NodeId).collect());
    config.election_timeout_min_ticks = 15;
    config.election_timeout_max_ticks = 30;
    config.heartbeat_interval_ticks = 3;
    config
}

/// The driver's misbehaviour a host bug asks for, if it is one of the driver's rules.
fn misbehaviour(bug: Option<HostBug>) -> Option<Misbehaviour> {
    match bug? {
        HostBug::SendBeforeSync => Some(Misbehaviour::SendBeforeSync),
        HostBug::NoTicks => Some(Misbehaviour::IgnoreTicks),
        HostBug::ReportBeforeSync => Some(Misbehaviour::ReportBeforeSync),
        HostBug::Retransmit | HostBug::Unprotected => None,
    }
}

/// A client's request answered by the node at `node` (position).
#[derive(Debug)]
pub struct Answered {
    /// The node that answered (position).
    pub node: usize,
    /// The request.
    pub request: RequestId,
    /// The answer.
    pub answer: Answer<Response>,
}

/// Every node, the network, and the checkers.
#[derive(Debug)]
pub struct Cluster {
    /// The servers, by position (node id minus one).
    pub hosts: Vec<Host>,
    /// The network between them.
    pub network: Network,
    /// Every checker of the run.
    pub checkers: Checkers,
    /// Answers to client requests, for the simulator to hand to its clients.
    pub answers: Vec<Answered>,
    /// The run's first failure, if any: the run ends there.
    pub failure: Option<(Verdict, Failure)>,
    /// The node that most recently became leader.
    pub newest_leader: Option<usize>,
    /// Crashes so far.
    pub crashes: u64,
    /// Nodes stopped by a storage failure since the simulator last looked: it stops
    /// their ticks and restarts them later.
    pub stopped: Vec<usize>,
    storage: StorageParams,
    /// AppendEntries sent that carried entries, and the entries they carried.
    pub appends_with_entries: (u64, u64),
    /// Snapshots installed that arrived in more than one chunk.
    pub chunked_installs: u64,
    /// How long a node gathers client requests before its driver gets them (0: at once).
    request_round_micros: Micros,
    storage_random: Random,
    /// When a sync fails and where a bit flips.
    damage_random: Random,
    host_bug: Option<HostBug>,
    /// Decoded commands, shared by every node's state machine.
    commands: Rc<RefCell<CommandCache>>,
    /// Messages delivered per (sender, receiver, kind), to name a storm's source.
    flows: Vec<u64>,
    /// A reusable buffer for one driver call's outputs.
    outputs: Vec<Output<Response>>,
    /// Set by a scripted scenario: messages are held here, in the order sent, instead
    /// of entering the network; the script delivers, drops or duplicates them.
    pub held: Option<std::collections::VecDeque<Message>>,
}

impl Cluster {
    /// The cluster of `options` under `plan`, not started yet.
    pub fn new(options: &RunOptions, plan: &FaultPlan) -> Cluster {
        let nodes = options.nodes;
        let mut node_seeds = Random::new(options.seed, Purpose::NodeSeeds);
        let hosts = (0..nodes)
            .map(|position| {
                let mut config = DriverConfig::new(node_config(position as NodeId + 1, nodes));
                config.compaction_threshold_entries = plan.workload.compaction_threshold_entries;
                if plan.workload.max_entries_per_append > 0 {
                    config.raft.max_entries_per_message = plan.workload.max_entries_per_append;
                }
                if plan.workload.snapshot_chunk_bytes > 0 {
                    config.raft.max_snapshot_chunk_bytes = plan.workload.snapshot_chunk_bytes;
                }
                // A node believes its ticks last the base tick; drift makes them differ,
                // so leaders' log times differ as real clocks do. Clock entries every
                // 100 ms of belief, so sessions of the shortest timeouts expire in a run.
                config.tick_millis = crate::faults::BASE_TICK_MICROS / 1_000;
                config.housekeeping_interval_ticks = 10;
                config.observe = true;
                config.misbehaviour = misbehaviour(options.host_bug);
                if options.host_bug == Some(HostBug::Unprotected) {
                    config.raft.pre_vote = false;
                    config.raft.check_quorum = false;
                }
                let mut host = Host::new(config, plan.tick_micros[position], node_seeds.next_u64());
                host.session_policy = kv::session::SessionPolicy {
                    idle_timeout_ms: plan.workload.session_idle_micros / 1_000,
                    max_sessions: plan.workload.max_sessions,
                };
                host
            })
            .collect();
        Cluster {
            hosts,
            network: Network::new(options.seed, plan.network.clone(), nodes),
            checkers: Checkers::default(),
            answers: Vec::new(),
            failure: None,
            newest_leader: None,
            crashes: 0,
            stopped: Vec::new(),
            storage: plan.storage.clone(),
            request_round_micros: plan.workload.request_round_micros,
            appends_with_entries: (0, 0),
            chunked_installs: 0,
            storage_random: Random::new(options.seed, Purpose::Storage),
            damage_random: Random::new(options.seed, Purpose::DiskDamage),
            host_bug: options.host_bug,
            commands: Rc::default(),
            flows: vec![0; nodes * nodes * MESSAGE_KINDS],
            outputs: Vec::new(),
            held: None,
        }
    }

    /// Whether the run has failed.
    pub fn failed(&self) -> bool {
        self.failure.is_some()
    }

    /// Ends the run with `verdict` at `now`, keeping the first failure only.
    pub fn fail(&mut self, verdict: Verdict, violation: Violation, now: Micros) {
        if self.failure.is_none() {
            tracing::info!(time_us = now, %violation, "run failed");
            self.failure = Some((verdict, Failure { violation, time_us: now }));
        }
    }

    /// Hands `event` to the checkers; a violation fails the run.
    pub fn observe(&mut self, event: Observed<'_>, now: Micros) {
        if let Err(violation) = self.checkers.observe(event, &self.hosts) {
            // Campaigns by removed nodes hurt availability, never safety.
            let verdict = match violation.invariant {
                Invariant::RemovedQuiet => Verdict::Liveness,
                _ => Verdict::Safety,
            };
            self.fail(verdict, violation, now);
        }
    }

    // ---- The doors ----

    /// Starts (or restarts) the node at `position` from its storage. A node whose
    /// storage refuses its damaged directory stays down (the others carry on); a
    /// refusal without damage, or a recovery that returns anything but what was
    /// durable, is a finding.
    pub fn start(&mut self, position: usize, now: Micros) {
        let host = &mut self.hosts[position];
        let detail = match host.start(Rc::clone(&self.commands)) {
            Ok(()) => return,
            Err(StartError::Refused(why)) if host.damage_injected > 0 => {
                tracing::debug!(time_us = now, node = host.id, %why, "recovery refused a damaged directory");
                return;
            }
            Err(StartError::Refused(why)) => format!("{why} (no damage was injected)"),
            Err(StartError::Broken(why)) => why,
        };
        let id = self.hosts[position].id;
        self.fail(Verdict::Safety, Violation::new(Invariant::Restart, vec![id], detail), now);
    }

    /// The node at `position` ticks (if it runs and is not paused).
    pub fn tick(&mut self, position: usize, queue: &mut EventQueue<Event>) {
        if self.hosts[position].is_responsive() {
            self.drive(position, queue, Driver::tick);
        }
    }

    /// A message arrives at its receiver: handled now, kept for later by a paused
    /// receiver, lost for a crashed one.
    pub fn deliver(&mut self, message: Message, queue: &mut EventQueue<Event>) {
        let Some(position) = self.position_of(message.to) else {
            return;
        };
        self.count_flow(&message);
        if self.host_bug == Some(HostBug::Retransmit) {
            self.retransmit(&message, queue);
        }
        let host = &mut self.hosts[position];
        if !host.is_up() {
            return;
        }
        if host.paused {
            host.inbox.push(message);
            return;
        }
        self.receive(position, message, queue);
    }

    /// A client's request reaches the node at `position` (which must be responsive).
    /// With request rounds, it waits for the end of the node's round and goes to the
    /// driver with the others of that round; otherwise at once.
    pub fn submit(
        &mut self,
        position: usize,
        request: RequestId,
        what: Request<Query>,
        queue: &mut EventQueue<Event>,
    ) {
        debug_assert!(self.hosts[position].is_responsive());
        if self.request_round_micros == 0 {
            self.hand_over(position, vec![(request, what)], queue);
            return;
        }
        let host = &mut self.hosts[position];
        host.requests.push((request, what));
        if !std::mem::replace(&mut host.round_queued, true) {
            let incarnation = host.incarnation;
            queue.schedule_in(self.request_round_micros, Event::RequestRound { node: position, incarnation });
        }
    }

    /// The round of client requests of the node at `position` ends: they go to its
    /// driver together (held while the process is paused; gone if it crashed).
    pub fn request_round(&mut self, position: usize, incarnation: u64, queue: &mut EventQueue<Event>) {
        let host = &mut self.hosts[position];
        if host.incarnation != incarnation || !host.is_up() {
            return;
        }
        host.round_queued = false;
        if host.paused {
            return;
        }
        let requests = std::mem::take(&mut host.requests);
        self.hand_over(position, requests, queue);
    }

    /// Hands `requests` to the driver of the node at `position` in one call, as an IO
    /// layer does with what arrived in one round: its writes are proposed together.
    fn hand_over(
        &mut self,
        position: usize,
        requests: Vec<(RequestId, Request<Query>)>,
        queue: &mut EventQueue<Event>,
    ) {
        if requests.is_empty() {
            return;
        }
        let node = self.hosts[position].id;
        for (request, what) in &requests {
            if matches!(what, Request::Read(_)) {
                self.observe(
                    Observed::ReadAsked { node, request: *request, at_micros: queue.now() },
                    queue.now(),
                );
            }
        }
        self.drive(position, queue, |driver| {
            for (request, what) in requests {
                driver.submit(request, what);
            }
        });
    }

    /// A sync of the node at `position` (run `incarnation`) completed through write
    /// `through`: the disk makes the writes durable; the driver hears of it now, or on
    /// resuming if the process is paused.
    pub fn sync_done(
        &mut self,
        position: usize,
        incarnation: u64,
        through: WriteId,
        group: u64,
        queue: &mut EventQueue<Event>,
    ) {
        let host = &mut self.hosts[position];
        if host.incarnation != incarnation || !host.is_up() {
            return;
        }
        host.fs.complete_syncs(group);
        let removed_entries = host.disk.sync_through(through);
        let node = host.id;
        self.observe(Observed::Synced { node, removed_entries }, queue.now());
        let host = &mut self.hosts[position];
        if host.paused {
            host.synced_while_paused = Some(through);
            return;
        }
        self.drive(position, queue, |driver| driver.durable(through));
    }

    /// The node at `position` crashes, and its machine with it. Returns how many of
    /// its writes were in flight (not yet durable): its restart tells which survived.
    pub fn crash(&mut self, position: usize, now: Micros) -> usize {
        self.crashes += 1;
        let torn_write_ppm = self.storage.torn_write_ppm;
        self.hosts[position].crash(&mut self.storage_random, torn_write_ppm);
        self.maybe_flip_a_bit(position, now);
        let node = self.hosts[position].id;
        self.observe(Observed::Crashed { node }, now);
        self.hosts[position].disk.in_flight_at_crash()
    }

    /// Nodes whose files took a flipped bit and have not recovered since, or whose
    /// storage refused them: they may stay down for good.
    pub fn damaged_nodes(&self) -> usize {
        self.hosts.iter().filter(|host| host.damage_injected > 0 || host.refused).count()
    }

    /// With the plan's chance, a bit of the crashed node's durable files flips (latent
    /// damage its next recovery meets). A refusing node stays down for good, and the
    /// others must carry on without it: so damage strikes only while every running node
    /// counts every node a voter and the damaged nodes stay a minority (membership
    /// churn then keeps every voter; see `operator`).
    fn maybe_flip_a_bit(&mut self, position: usize, now: Micros) {
        if !self.damage_random.chance(self.storage.bit_flip_ppm) {
            return;
        }
        let nodes = self.hosts.len();
        let full_membership = self.hosts.iter().all(|host| host.every_configuration_has_voters(nodes));
        let host = &self.hosts[position];
        let newly_damaged = usize::from(host.damage_injected == 0 && !host.refused);
        if !full_membership || (self.damaged_nodes() + newly_damaged) * 2 >= nodes {
            return;
        }
        let host = &mut self.hosts[position];
        let random = &mut self.damage_random;
        if let Some((path, offset)) = host.fs.flip_durable_bit(&mut |below| random.below(below)) {
            host.damage_injected += 1;
            tracing::debug!(time_us = now, node = host.id, path = %path.display(), offset, "bit flipped");
        }
    }

    /// The storage of the node at `position` failed a write or a sync: the node stops
    /// rather than go on promising durability it no longer has (retrying an fsync after
    /// a failure can silently lose data), as the server exits. Its machine is taken down
    /// with it: after an I/O error the page cache is not to be trusted. The simulator
    /// restarts it later, as a supervisor would.
    fn stop_on_disk_failure(&mut self, position: usize, error: std::io::Error, now: Micros) {
        let node = self.hosts[position].id;
        tracing::debug!(time_us = now, node, %error, "storage failed: the node stops");
        self.crash(position, now);
        self.stopped.push(position);
    }

    /// Syncs stop failing: the quiet tail calms the disks as it calms the network, so a
    /// node crashing on a failed sync (more likely since leaders write clock entries
    /// while sessions live) cannot take away the quorum the tail watches.
    pub fn calm_disks(&mut self) {
        self.storage.sync_failure_ppm = 0;
    }

    /// The crashed node at `position` restarts from its disk.
    pub fn restart(&mut self, position: usize, now: Micros) {
        self.start(position, now);
        // A node whose storage refused its damaged directory did not come back.
        if !self.failed() && self.hosts[position].is_up() {
            let node = self.hosts[position].id;
            self.observe(Observed::Restarted { node }, now);
        }
    }

    /// The paused node at `position` resumes: it hears of the syncs that completed and
    /// handles the messages that arrived meanwhile. Returns how many there were.
    pub fn resume(&mut self, position: usize, queue: &mut EventQueue<Event>) -> usize {
        let host = &mut self.hosts[position];
        host.paused = false;
        let inbox = std::mem::take(&mut host.inbox);
        let count = inbox.len();
        if let Some(through) = host.synced_while_paused.take() {
            self.drive(position, queue, |driver| driver.durable(through));
        }
        for message in inbox {
            if self.failed() || !self.hosts[position].is_responsive() {
                break;
            }
            self.receive(position, message, queue);
        }
        // Requests that arrived while paused, unless a round will take them.
        if !self.failed() && self.hosts[position].is_responsive() && !self.hosts[position].round_queued {
            let requests = std::mem::take(&mut self.hosts[position].requests);
            self.hand_over(position, requests, queue);
        }
        count
    }

    // ---- Behind the doors ----

    /// The position of node `id`, if the cluster has one (a buggy core may name any id).
    pub(crate) fn position_of(&self, id: NodeId) -> Option<usize> {
        usize::try_from(id).ok()?.checked_sub(1).filter(|&position| position < self.hosts.len())
    }

    fn receive(&mut self, position: usize, message: Message, queue: &mut EventQueue<Event>) {
        let core = self.hosts[position].core().expect("a running node");
        let term_before = core.term();
        if matches!(message.body, raft_core::MessageBody::RequestVote { .. }) {
            let (last_term, last_index) = (core.last_term(), core.last_index());
            let node = self.hosts[position].id;
            let event = Observed::VoteRequestReceived {
                node,
                message: &message,
                term: term_before,
                last_term,
                last_index,
            };
            self.observe(event, queue.now());
        }
        if let raft_core::MessageBody::Removed { committed_through } = message.body {
            let node = self.hosts[position].id;
            self.observe(Observed::RemovalNoticeReceived { node, committed_through }, queue.now());
        }
        let stale = StaleTerm::is_stale(&message, term_before).then(|| message.clone());
        self.drive(position, queue, |driver| driver.receive(message));
        if let Some(message) = stale {
            let Some(driver) = self.hosts[position].driver.as_ref() else {
                return;
            };
            let (node, did) = (self.hosts[position].id, driver.last_input_did());
            self.observe(
                Observed::StaleMessageHandled { node, message: &message, term_before, did },
                queue.now(),
            );
        }
    }

    /// Calls the driver of the node at `position` and carries out what it asks. A
    /// panic in the core (one of its own assertions) is a finding, not a crash of the
    /// simulator: the node is dead and the run fails with the seed to reproduce it.
    fn drive(
        &mut self,
        position: usize,
        queue: &mut EventQueue<Event>,
        call: impl FnOnce(&mut Driver<Replica, raft_storage::SnapshotFiles<raft_storage::MemFs>>),
    ) {
        if self.failed() {
            return;
        }
        let host = &mut self.hosts[position];
        let driver = host.driver.as_mut().expect("only running nodes are driven");
        let stepped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| call(driver)));
        if let Err(payload) = stepped {
            let id = host.id;
            host.driver = None;
            let detail = format!("node {id} panicked: {}", panic_message(payload.as_ref()));
            self.fail(
                Verdict::Safety,
                Violation::new(Invariant::CoreAssertion, vec![id], detail),
                queue.now(),
            );
            return;
        }
        let mut outputs = std::mem::take(&mut self.outputs);
        driver.take_outputs(&mut outputs);
        // The core's log changes only in steps that write; only those are compared.
        let mut wrote = false;
        if !outputs.is_empty() {
            for output in outputs.drain(..) {
                // A node whose storage failed has stopped: the rest of its outputs die with it.
                if self.failed() || !self.hosts[position].is_up() {
                    break;
                }
                wrote |= matches!(output, Output::Write { .. });
                self.carry_out(position, output, queue);
            }
        }
        self.outputs = outputs;
        if wrote && !self.failed() {
            self.observe(Observed::StepWrote { node: self.hosts[position].id }, queue.now());
        }
    }

    /// One output of the driver at `position`, as its IO layer would carry it out.
    /// (Inlined into its one caller: an output is 88 bytes, not worth a copy per call.)
    #[inline(always)]
    fn carry_out(&mut self, position: usize, output: Output<Response>, queue: &mut EventQueue<Event>) {
        let now = queue.now();
        let node = self.hosts[position].id;
        match output {
            Output::Write { id, write } => {
                match &write {
                    Write::HardState(hard_state) => {
                        self.observe(Observed::HardStateWritten { node, hard_state: *hard_state }, now);
                    }
                    Write::Entries(entries) => {
                        let written = self.hosts[position].disk.written();
                        let previous_term = entries
                            .first()
                            .and_then(|first| first.index.checked_sub(1))
                            .and_then(|previous| raft_host::durable_image::term_at(written, previous));
                        self.observe(Observed::EntriesWritten { node, previous_term, entries }, now);
                    }
                    _ => {}
                }
                let host = &mut self.hosts[position];
                let Some(storage) = host.storage.as_mut() else { return };
                let stored = storage.write(&write);
                if let Err(error) = host.disk.write(id, write) {
                    self.fail(
                        Verdict::Safety,
                        Violation::new(Invariant::HostContract, vec![node], error.0),
                        now,
                    );
                } else if let Err(error) = stored {
                    self.stop_on_disk_failure(position, error, now);
                }
            }
            Output::Sync { through } => {
                let host = &mut self.hosts[position];
                let Some(storage) = host.storage.as_mut() else { return };
                if self.damage_random.chance(self.storage.sync_failure_ppm) {
                    host.fs.fail_next_sync();
                }
                if let Err(error) = storage.sync() {
                    return self.stop_on_disk_failure(position, error, now);
                }
                let group = host.fs.seal_syncs();
                let latency =
                    self.storage_random.between(self.storage.sync_min_micros, self.storage.sync_max_micros);
                let incarnation = host.incarnation;
                queue.schedule_in(latency, Event::SyncDone { node: position, incarnation, through, group });
            }
            Output::Send(message) => {
                self.observe(Observed::Sent { message: &message }, now);
                self.route(position, message, queue);
            }
            Output::Answer { request, answer } => {
                if matches!(answer, Answer::Refused { .. } | Answer::Unknown { .. }) {
                    self.observe(Observed::ReadDropped { node, request }, now);
                }
                self.answers.push(Answered { node: position, request, answer });
            }
            Output::Failed(reason) => {
                self.fail(Verdict::Safety, Violation::new(Invariant::HostContract, vec![node], reason), now);
            }
            Output::Event(event) => self.observe_event(position, event, now),
        }
    }

    fn observe_event(&mut self, position: usize, event: raft_host::Event, now: Micros) {
        let node = self.hosts[position].id;
        match event {
            raft_host::Event::CommitChanged { commit } => {
                self.observe(Observed::CommitChanged { node, commit }, now)
            }
            raft_host::Event::RoleChanged { role, term } => {
                if role == raft_core::Role::Leader {
                    self.newest_leader = Some(position);
                }
                self.observe(Observed::RoleChanged { node, role, term }, now);
            }
            raft_host::Event::Committed { index, term, configuration, leader_term } => {
                let configuration = &configuration;
                self.observe(Observed::Committed { node, index, term, configuration, leader_term }, now);
            }
            raft_host::Event::Applied { entry, decision, answer } => {
                self.observe(Observed::Applied { node, entry: &entry, decision: &decision, answer }, now);
            }
            raft_host::Event::SnapshotInstalled { snapshot, data } => {
                let chunk = self.hosts[position].config().raft.max_snapshot_chunk_bytes;
                if snapshot.size_bytes > chunk {
                    self.chunked_installs += 1;
                }
                self.observe(Observed::SnapshotInstalled { node, snapshot: &snapshot, data: &data }, now);
            }
            raft_host::Event::ReadServed { request, read_index, applied_index } => {
                self.observe(Observed::ReadServed { node, request, read_index, applied_index }, now);
            }
        }
    }

    /// Hands a message to the network, which may drop, delay or duplicate it.
    fn route(&mut self, from: usize, message: Message, queue: &mut EventQueue<Event>) {
        let Some(to) = self.position_of(message.to) else {
            return;
        };
        if let raft_core::MessageBody::AppendEntries { entries, .. } = &message.body {
            if !entries.is_empty() {
                self.appends_with_entries.0 += 1;
                self.appends_with_entries.1 += entries.len() as u64;
            }
        }
        if let Some(held) = &mut self.held {
            held.push_back(message);
            return;
        }
        if let Route::Deliver { delay, duplicate_delay } = self.network.route(from, to, queue.now()) {
            if let Some(duplicate_delay) = duplicate_delay {
                queue.schedule_in(duplicate_delay, Event::Deliver { message: message.clone() });
            }
            queue.schedule_in(delay, Event::Deliver { message });
        }
    }

    /// `--host-bug retransmit`: the transport sends a delivered message once more.
    fn retransmit(&mut self, message: &Message, queue: &mut EventQueue<Event>) {
        let (Some(from), Some(to)) = (self.position_of(message.from), self.position_of(message.to)) else {
            return;
        };
        if let Route::Deliver { delay, .. } = self.network.route(from, to, queue.now()) {
            queue.schedule_in(delay, Event::Deliver { message: message.clone() });
        }
    }

    /// Counts a delivered message by sender, receiver and kind.
    fn count_flow(&mut self, message: &Message) {
        if let (Some(from), Some(to)) = (self.position_of(message.from), self.position_of(message.to)) {
            let link = from * self.hosts.len() + to;
            self.flows[link * MESSAGE_KINDS + message_kind(&message.body)] += 1;
        }
    }

    /// The busiest message flows so far, for a storm's report: how many messages were
    /// delivered in all, and the top `count` as "Kind from node A to node B: N".
    pub fn busiest_flows(&self, count: usize) -> (u64, Vec<String>) {
        let nodes = self.hosts.len();
        let mut flows: Vec<(u64, usize)> = self
            .flows
            .iter()
            .copied()
            .enumerate()
            .filter(|&(_, n)| n > 0)
            .map(|(slot, n)| (n, slot))
            .collect();
        flows.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        let busiest = flows
            .iter()
            .take(count)
            .map(|&(n, slot)| {
                let (link, kind) = (slot / MESSAGE_KINDS, slot % MESSAGE_KINDS);
                format!(
                    "{} from node {} to node {}: {n}",
                    MESSAGE_KIND_NAMES[kind],
                    link / nodes + 1,
                    link % nodes + 1
                )
            })
            .collect();
        (self.flows.iter().sum(), busiest)
    }
}
