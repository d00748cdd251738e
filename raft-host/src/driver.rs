//! The node driver: one Raft node, its state machine, its waiting clients and its
//! compaction policy, turning the core's actions into writes, syncs, sends and answers
//! in the order the ordering contract demands.

use crate::config::{DriverConfig, Misbehaviour};
use crate::gate::{Effect, Gate};
use crate::io::{ActionKinds, Answer, CommitDecision, Event, Output, Request, Write, WriteId};
use crate::snapshots::{ByteSink, MemorySnapshots, SnapshotStore};
use crate::state_machine::StateMachine;
use crate::waiters::{Kind, Waiters};
use raft_core::{
    decode_message, Action, Configuration, DecodeError, DurableState, Input, LogIndex, Message, MessageBody,
    NodeId, RaftNode, RejectReason, RequestId, RestoreError, Role, Term,
};
use std::fmt;
use std::sync::Arc;

/// Why a driver could not start from a durable image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StartError {
    /// The core refused the configuration or the durable state.
    Core(RestoreError),
    /// The state machine cannot read the durable snapshot.
    StateMachine(String),
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Core(error) => write!(f, "{error}"),
            StartError::StateMachine(reason) => {
                write!(f, "the state machine cannot read the durable snapshot: {reason}")
            }
        }
    }
}

impl std::error::Error for StartError {}

/// What the driver ignored, by reason.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DriverCounters {
    /// Peer frames that did not decode into a message (dropped).
    pub bad_frames: u64,
    /// Housekeeping commands proposed (see [`crate::StateMachine::housekeeping`]).
    pub housekeeping_proposals: u64,
}

/// The request id of the driver's own housekeeping proposals: reserved, never answered.
/// A caller's requests use any other id.
pub const HOUSEKEEPING_REQUEST: RequestId = u64::MAX;

/// One node, driven. See the crate docs for the order of calls and the IO layer's duties.
///
/// - Build: [`Driver::start`] from the durable image the IO layer read back.
/// - Inputs: [`Driver::tick`], [`Driver::receive`] (or [`Driver::receive_bytes`]),
///   [`Driver::submit`], [`Driver::durable`].
/// - Outputs: [`Driver::take_outputs`] after each input, performed in order.
/// - Getters: [`Driver::node`], [`Driver::machine`], [`Driver::applied_index`], ...
#[derive(Debug)]
pub struct Driver<M: StateMachine, S = MemorySnapshots> {
    config: DriverConfig,
    node: RaftNode,
    machine: M,
    /// The bytes of this node's snapshots (the core only names them).
    snapshots: S,
    /// The last entry the state machine has applied (or its snapshot covers).
    applied_index: LogIndex,
    gate: Gate,
    waiters: Waiters<M::Query>,
    /// Membership changes whose joint entry applied, with that entry's index and the
    /// tick: answered once the configuration it leads to applies (the leader appends it
    /// by itself), so a change of several members is answered when it is complete. A
    /// node that never sees the final entry (removed by it) answers at the request
    /// timeout: the joint entry committed, so the change completes without it.
    joint_waiters: Vec<(RequestId, LogIndex, u64)>,
    outputs: Vec<Output<M::Response>>,
    /// Answers decided while handling a step, emitted after it.
    answers: Vec<(RequestId, Answer<M::Response>)>,
    /// Writes and reads submitted since the last step, stepped together before the
    /// next other input or when outputs are taken: a run of writes as one proposal
    /// batch (one append per follower, one `PersistEntries`), a run of reads as one
    /// read batch (one heartbeat round).
    queued: Vec<Queued>,
    /// Reused buffers: one step's actions, effects released together.
    actions: Vec<Action>,
    ready: Vec<Effect>,
    /// Ticks this driver has seen: the clock of request timeouts.
    now_tick: u64,
    /// While leading: the log time it started from (the machine's when it was elected)
    /// and the tick it was elected at. Its log time is that plus the ticks since.
    leader_clock: Option<(u64, u64)>,
    /// The host's wall clock (milliseconds), if it gives one: the leader's log time is
    /// never behind it, so on a server log time reads as Unix time.
    wall_clock_ms: u64,
    /// The voter set shared by commit decisions, refreshed when it changes (observed only).
    configuration: Arc<Configuration>,
    /// What the first step of the latest input asked for, and how many steps it took
    /// (the input's own, then follow-ups: a persistence report, a compaction).
    first_step_did: ActionKinds,
    steps_this_call: u32,
    /// A transfer the core refused in the current step: the answer to give.
    refused_transfer: Option<(RejectReason, Option<NodeId>)>,
    /// Whether entries were applied since the last look at the compaction policy.
    applied_since_compaction_check: bool,
    /// Set once the node cannot go on; every input is then ignored.
    failed: bool,
    counters: DriverCounters,
}

impl<M: StateMachine, S: SnapshotStore> Driver<M, S> {
    /// A node restarted from `image`, exactly what its storage made durable, with the
    /// seed of its election-timer RNG and an empty state machine, which is restored from
    /// the image's snapshot if it has one.
    pub fn start(
        config: DriverConfig,
        image: DurableState,
        seed: u64,
        mut machine: M,
        mut snapshots: S,
    ) -> Result<Driver<M, S>, StartError> {
        let applied_index = match &image.snapshot {
            Some(snapshot) => {
                let mut source = snapshots.open(snapshot.meta).map_err(StartError::StateMachine)?;
                machine.restore_from(&mut *source).map_err(StartError::StateMachine)?;
                snapshot.meta.last_included_index
            }
            None => 0,
        };
        let node = RaftNode::new(config.raft.clone(), image, seed).map_err(StartError::Core)?;
        Ok(Driver {
            config,
            node,
            machine,
            snapshots,
            applied_index,
            gate: Gate::default(),
            waiters: Waiters::default(),
            joint_waiters: Vec::new(),
            outputs: Vec::new(),
            queued: Vec::new(),
            answers: Vec::new(),
            actions: Vec::new(),
            ready: Vec::new(),
            now_tick: 0,
            leader_clock: None,
            wall_clock_ms: 0,
            configuration: Arc::new(Configuration::default()),
            first_step_did: ActionKinds::default(),
            steps_this_call: 0,
            refused_transfer: None,
            applied_since_compaction_check: true,
            failed: false,
            counters: DriverCounters::default(),
        })
    }

    // ---- Inputs ----

    /// One tick of the node's clock.
    pub fn tick(&mut self) {
        self.begin();
        if self.failed || self.config.misbehaviour == Some(Misbehaviour::IgnoreTicks) {
            return;
        }
        self.now_tick += 1;
        let leader = self.node.leader();
        self.waiters.expire(self.now_tick, self.config.request_timeout_ticks, leader, &mut self.answers);
        let (now, timeout) = (self.now_tick, self.config.request_timeout_ticks);
        let answers = &mut self.answers;
        self.joint_waiters.retain(|&(request, index, since)| {
            let waiting = now - since < timeout;
            if !waiting {
                answers.push((request, Answer::Done { index }));
            }
            waiting
        });
        self.step(Input::Tick);
        self.housekeep_if_due();
        self.finish();
    }

    /// The host's wall clock, in milliseconds (a server gives its system time with
    /// each tick; the simulator gives none, and log time then counts ticks). Only a
    /// leader uses it, as a floor under its log time.
    pub fn set_wall_clock_ms(&mut self, now_ms: u64) {
        self.wall_clock_ms = now_ms;
    }

    /// The leader's log time: the machine's log time when it was elected plus its
    /// whole ticks since, never behind what it has applied or the host's wall clock.
    /// So log time runs no faster than the fastest leader's ticks, however often
    /// leadership changes (the simulator's linearizability checker relies on it to
    /// bound how early a key can expire). `None` while not leading.
    fn leader_now_ms(&self) -> Option<u64> {
        let (base_ms, since_tick) = self.leader_clock?;
        // Whole ticks since the election: the first tick after it may come at once, so
        // counting it would let every leader change gain up to a tick on real time.
        let ticks = (self.now_tick - since_tick).saturating_sub(1);
        let elapsed_ms = ticks.saturating_mul(self.config.tick_millis);
        let now_ms =
            base_ms.saturating_add(elapsed_ms).max(self.machine.log_time_ms()).max(self.wall_clock_ms);
        Some(now_ms)
    }

    /// On the leader, every housekeeping interval: proposes the state machine's
    /// housekeeping command, if it has one, with no client waiting for it.
    fn housekeep_if_due(&mut self) {
        let interval = self.config.housekeeping_interval_ticks;
        let Some((_, since_tick)) = self.leader_clock else { return };
        if interval == 0 || self.failed || (self.now_tick - since_tick) % interval != 0 {
            return;
        }
        let now_ms = self.leader_now_ms().expect("leading");
        if let Some(command) = self.machine.housekeeping(now_ms) {
            self.counters.housekeeping_proposals += 1;
            self.step(Input::Propose { id: HOUSEKEEPING_REQUEST, command });
        }
    }

    /// A message from a peer.
    pub fn receive(&mut self, message: Message) {
        self.begin();
        if self.failed {
            return;
        }
        self.step(Input::Message(message));
        self.finish();
    }

    /// A frame from a peer: decoded with the core's bounded decoder; one that does not
    /// decode is counted and dropped (the error says why, for the IO layer's log).
    pub fn receive_bytes(&mut self, frame: &[u8]) -> Result<(), DecodeError> {
        match decode_message(frame) {
            Ok(message) => {
                self.receive(message);
                Ok(())
            }
            Err(error) => {
                self.counters.bad_frames += 1;
                Err(error)
            }
        }
    }

    /// A client's request, with an id the caller chose, unique among its requests in
    /// flight and other than [`HOUSEKEEPING_REQUEST`]. Every request is answered exactly
    /// once ([`Output::Answer`]).
    pub fn submit(&mut self, request: RequestId, what: Request<M::Query>) {
        // Writes and reads are queued, not stepped: those submitted together are
        // stepped together.
        let what = match what {
            Request::Write(mut command) => {
                // The leader stamps its log time on the command (see StateMachine::stamp).
                if let Some(now_ms) = self.leader_now_ms() {
                    self.machine.stamp(&mut command, now_ms);
                }
                if !self.failed {
                    self.waiters.submit(request, Kind::Write);
                    self.queued.push(Queued::Write(request, command));
                }
                return;
            }
            Request::Read(query) => {
                if !self.failed {
                    self.waiters.submit_read(request, query, self.now_tick);
                    self.queued.push(Queued::Read(request));
                }
                return;
            }
            other => other,
        };
        self.begin();
        if self.failed {
            return;
        }
        match what {
            Request::Write(_) | Request::Read(_) => unreachable!("queued above, never stepped here"),
            Request::LocalRead(query) => {
                let response = self.machine.query(&query);
                self.answers.push((request, Answer::Read(response)));
            }
            Request::ChangeMembership { change, context } => {
                self.waiters.submit(request, Kind::Membership);
                self.step(Input::ChangeMembership { id: request, change, context: context.into() });
            }
            Request::TransferLeadership(to) => {
                self.step(Input::TransferLeadership { to });
                // The core refuses a transfer in the step that asked for it, or starts it.
                let refused = self.refused_transfer.take();
                let answer = match refused {
                    Some((reason, leader_hint)) => Answer::Refused { reason, leader_hint },
                    None => Answer::Started,
                };
                self.answers.push((request, answer));
            }
        }
        self.finish();
    }

    /// The IO layer made every write through `through` durable: effects waiting for
    /// them happen, and the core learns how far its log is durable.
    pub fn durable(&mut self, through: WriteId) {
        self.begin();
        if self.failed {
            return;
        }
        let log_end = self.gate.made_durable(through);
        if self.config.misbehaviour != Some(Misbehaviour::SendBeforeSync) {
            let mut ready = std::mem::take(&mut self.ready);
            self.gate.release(&mut ready);
            coalesce_acknowledgements(&mut ready);
            for effect in ready.drain(..) {
                self.perform(effect);
            }
            self.ready = ready;
        }
        // Only a leader counts its own durable log, and only above its commit index, so
        // only then does it hear of it: a follower that wins an election writes its
        // no-op at once, and the report of that write covers everything before it.
        let counts = |&(index, _): &(LogIndex, Term)| {
            self.node.role() == Role::Leader && index > self.node.commit_index()
        };
        if let Some((index, term)) = log_end.filter(counts) {
            self.step(Input::LogPersisted { index, term });
        }
        self.finish();
    }

    /// Appends the outputs produced so far to `into`, in order, leaving none behind.
    /// (Into an empty buffer this swaps the two, copying nothing: a host that reuses
    /// one buffer pays nothing per output.)
    pub fn take_outputs(&mut self, into: &mut Vec<Output<M::Response>>) {
        self.step_queued();
        if into.is_empty() {
            std::mem::swap(into, &mut self.outputs);
        } else {
            into.append(&mut self.outputs);
        }
    }

    // ---- Getters ----

    /// The core.
    pub fn node(&self) -> &RaftNode {
        &self.node
    }

    /// The state machine, as of the last apply performed.
    pub fn machine(&self) -> &M {
        &self.machine
    }

    /// The store of this node's snapshot bytes.
    pub fn snapshots(&self) -> &S {
        &self.snapshots
    }

    /// The last entry the state machine applied (or its snapshot covers).
    pub fn applied_index(&self) -> LogIndex {
        self.applied_index
    }

    /// The last write issued; every write through [`Driver::durable_through`] is durable.
    pub fn issued(&self) -> WriteId {
        self.gate.issued()
    }

    /// Every write through this one is durable.
    pub fn durable_through(&self) -> WriteId {
        self.gate.durable()
    }

    /// How many effects wait for the disk.
    pub fn held_effects(&self) -> usize {
        self.gate.held()
    }

    /// How many requests wait for their answer.
    pub fn pending_requests(&self) -> usize {
        self.waiters.len()
    }

    /// The kinds of action the core asked for in the first step of the latest input
    /// (for an observer checking what an input made the core do; only with `observe`).
    pub fn last_input_did(&self) -> ActionKinds {
        self.first_step_did
    }

    /// What the driver ignored.
    pub fn counters(&self) -> DriverCounters {
        self.counters
    }

    /// Whether the node has failed ([`Output::Failed`]) and ignores every input.
    pub fn has_failed(&self) -> bool {
        self.failed
    }

    /// The configuration the driver was started with.
    pub fn config(&self) -> &DriverConfig {
        &self.config
    }

    // ---- Steps ----

    /// Gives the core one input and handles what it asks for.
    fn step(&mut self, input: Input) {
        let mut actions = std::mem::take(&mut self.actions);
        actions.clear();
        let commit_before = self.node.commit_index();
        self.node.step_into(input, &mut actions);
        if self.steps_this_call == 0 && self.config.observe {
            actions.iter().for_each(|action| self.first_step_did.insert(action));
        }
        self.steps_this_call += 1;
        let (term, commit) = (self.node.term(), self.node.commit_index());
        if self.config.observe && commit != commit_before {
            self.outputs.push(Output::Event(Event::CommitChanged { commit }));
            if commit > commit_before && self.node.role() == Role::Leader {
                let decision = self.commit_decision();
                let entry_term = self.node.term_at(commit).unwrap_or(0);
                self.outputs.push(Output::Event(Event::Committed {
                    index: commit,
                    term: entry_term,
                    configuration: decision.configuration,
                    leader_term: term,
                }));
            }
        }
        let reports_early = self.config.misbehaviour == Some(Misbehaviour::ReportBeforeSync);
        let wrote_log = reports_early
            && actions
                .iter()
                .any(|action| matches!(action, Action::PersistEntries { .. } | Action::TruncateLog { .. }));
        // (Most ticks ask for nothing: skip the drain then, it is not free.)
        if !actions.is_empty() {
            for action in actions.drain(..) {
                if self.failed {
                    break;
                }
                self.handle(action);
            }
        }
        self.actions = actions;
        if wrote_log {
            let (index, term) = (self.node.last_index(), self.node.last_term());
            self.step(Input::LogPersisted { index, term });
        }
    }

    /// One action of the core, in the order it asked.
    fn handle(&mut self, action: Action) {
        match action {
            Action::PersistHardState(hard_state) => self.write(Write::HardState(hard_state), true, None),
            Action::TruncateLog { from } => {
                let end = from - 1;
                let end_term = self.node.term_at(end).unwrap_or(0);
                self.write(Write::Truncate { from }, false, Some((end, end_term)));
            }
            Action::PersistEntries { entries } => {
                let end = entries.last().map(|entry| (entry.index, entry.term));
                self.write(Write::Entries(entries), false, end);
            }
            Action::PersistSnapshot { snapshot } => {
                let end = (self.node.last_index(), self.node.last_term());
                let meta = snapshot.meta;
                self.write(Write::Compact(snapshot), false, Some(end));
                self.admit(Effect::RetireSnapshots(meta), false);
            }
            Action::StoreSnapshotChunk { meta, offset, bytes } => {
                if let Err(reason) = self.snapshots.receive(meta, offset, &bytes) {
                    self.fail(format!("cannot keep a chunk of the snapshot at {meta:?}: {reason}"));
                }
            }
            Action::SendSnapshotChunk { mut message, length } => {
                if let MessageBody::InstallSnapshot { meta, offset, chunk, .. } = &mut message.body {
                    chunk.resize(length as usize, 0);
                    let mut filled = 0;
                    while filled < chunk.len() {
                        match self.snapshots.read_at(*meta, *offset + filled as u64, &mut chunk[filled..]) {
                            Ok(0) => break,
                            Ok(read) => filled += read,
                            Err(reason) => {
                                let meta = *meta;
                                self.fail(format!("cannot read the snapshot at {meta:?} to send: {reason}"));
                                return;
                            }
                        }
                    }
                    if filled < chunk.len() {
                        let meta = *meta;
                        self.fail(format!("the snapshot at {meta:?} is shorter than the core says"));
                        return;
                    }
                }
                self.admit(Effect::Send(message), true);
            }
            Action::InstallSnapshot { snapshot } => {
                if let Err(reason) = self.snapshots.received(snapshot.meta, snapshot.size_bytes) {
                    let index = snapshot.meta.last_included_index;
                    self.fail(format!("the snapshot at {index} from the leader is not whole: {reason}"));
                    return;
                }
                let end = (self.node.last_index(), self.node.last_term());
                let meta = snapshot.meta;
                self.write(Write::Install(snapshot.clone()), false, Some(end));
                self.admit(Effect::Install(snapshot), false);
                // After the restore, which may still read an older snapshot's file.
                self.admit(Effect::RetireSnapshots(meta), false);
            }
            Action::Send(message) => self.admit(Effect::Send(message), false),
            Action::SendAhead(message) => self.admit(Effect::Send(message), true),
            Action::Apply { entries } => {
                let decision = self.config.observe.then(|| self.commit_decision());
                self.admit(Effect::Apply(entries, decision), false);
            }
            Action::ReadReady { id, read_index } => self.admit(Effect::ReadReady { id, read_index }, false),
            Action::ProposalAccepted { id, index, term } => {
                self.waiters.accepted(id, index, term, self.now_tick, &mut self.answers);
            }
            Action::Rejected { request, reason, leader_hint } => self.refused(request, reason, leader_hint),
            Action::RoleChanged { role, term, leader } => {
                if self.config.observe {
                    self.outputs.push(Output::Event(Event::RoleChanged { role, term }));
                }
                if role != Role::Leader {
                    self.waiters.leadership_lost(leader, &mut self.answers);
                    self.leader_clock = None;
                } else if self.leader_clock.is_none() {
                    self.leader_clock = Some((self.machine.log_time_ms(), self.now_tick));
                }
            }
        }
    }

    fn write(&mut self, write: Write, hard_state: bool, log_end: Option<(LogIndex, Term)>) {
        let id = self.gate.issue(hard_state, log_end);
        self.outputs.push(Output::Write { id, write });
    }

    fn admit(&mut self, effect: Effect, ahead: bool) {
        // The misbehaviour breaks the promises effects make, not the disk's own
        // housekeeping: old snapshot files go only once the newer one is durable.
        let misbehaving = self.config.misbehaviour == Some(Misbehaviour::SendBeforeSync)
            && !matches!(effect, Effect::RetireSnapshots(_));
        if self.gate.may_pass(ahead) || misbehaving {
            self.perform(effect);
        } else {
            self.gate.hold(effect, ahead);
        }
    }

    fn refused(&mut self, request: raft_core::Request, reason: RejectReason, leader_hint: Option<NodeId>) {
        let answer = Answer::Refused { reason, leader_hint };
        match request {
            raft_core::Request::Propose(id) | raft_core::Request::ChangeMembership(id) => {
                if self.waiters.refused_write(id) {
                    self.answers.push((id, answer));
                }
            }
            raft_core::Request::Read(id) => {
                if self.waiters.refused_read(id) {
                    self.answers.push((id, answer));
                }
            }
            raft_core::Request::TransferLeadership => self.refused_transfer = Some((reason, leader_hint)),
            // The driver's own compaction, refused when the core compacted meanwhile.
            raft_core::Request::CompactLog => {}
        }
    }

    /// What the node knows now about committing: its configuration (shared, refreshed
    /// only when it changes, which is rare) and its term if it leads.
    fn commit_decision(&mut self) -> CommitDecision {
        if *self.configuration != *self.node.configuration() {
            self.configuration = Arc::new(self.node.configuration().clone());
        }
        let leader_term = (self.node.role() == Role::Leader).then(|| self.node.term());
        CommitDecision { configuration: Arc::clone(&self.configuration), leader_term }
    }

    // ---- Effects ----

    /// Carries out an effect whose writes are durable.
    fn perform(&mut self, effect: Effect) {
        match effect {
            Effect::Send(message) => self.outputs.push(Output::Send(message)),
            Effect::Apply(entries, decision) => {
                for entry in entries {
                    self.apply(entry, decision.as_ref());
                }
            }
            Effect::ReadReady { id, read_index } => {
                let Some(query) = self.waiters.confirmed_read(id) else {
                    // Answered already (it waited too long); the core's answer is late.
                    return;
                };
                let response = self.machine.query(&query);
                if self.config.observe {
                    let applied_index = self.applied_index;
                    self.outputs.push(Output::Event(Event::ReadServed {
                        request: id,
                        read_index,
                        applied_index,
                    }));
                }
                self.answers.push((id, Answer::Read(response)));
            }
            Effect::RetireSnapshots(meta) => self.snapshots.retire_older_than(meta),
            Effect::Install(snapshot) => match self
                .snapshots
                .open(snapshot.meta)
                .and_then(|mut source| self.machine.restore_from(&mut *source))
            {
                Ok(()) => {
                    self.applied_index = self.applied_index.max(snapshot.meta.last_included_index);
                    self.applied_since_compaction_check = true;
                    self.waiters.covered_by_snapshot(snapshot.meta.last_included_index, &mut self.answers);
                    if !snapshot.configuration.is_joint() {
                        let index = snapshot.meta.last_included_index;
                        let done = self
                            .joint_waiters
                            .drain(..)
                            .map(|(request, ..)| (request, Answer::Done { index }));
                        self.answers.extend(done);
                    }
                    if self.config.observe {
                        let data = self.snapshots.open(snapshot.meta).and_then(|mut source| {
                            let mut data = Vec::new();
                            crate::snapshots::read_to_end(&mut *source, &mut data).map(|()| data)
                        });
                        let data = data.unwrap_or_default();
                        self.outputs.push(Output::Event(Event::SnapshotInstalled { snapshot, data }));
                    }
                }
                Err(reason) => {
                    let index = snapshot.meta.last_included_index;
                    self.fail(format!("cannot install the snapshot at {index}: {reason}"));
                }
            },
        }
    }

    fn apply(&mut self, entry: raft_core::Entry, decision: Option<&CommitDecision>) {
        let response = self.machine.apply_entry(&entry);
        let answer = match (&response, decision) {
            (Some(response), Some(_)) => self.machine.answer_fingerprint(response),
            _ => 0,
        };
        self.applied_index = entry.index;
        self.applied_since_compaction_check = true;
        let joint = match &entry.payload {
            raft_core::EntryPayload::MembershipChange { configuration, .. } => Some(configuration.is_joint()),
            _ => None,
        };
        if joint == Some(false) {
            let index = entry.index;
            self.answers
                .extend(self.joint_waiters.drain(..).map(|(request, ..)| (request, Answer::Done { index })));
        }
        if let Some((request, kind, same_entry)) = self.waiters.applied(entry.index, entry.term) {
            let answer = match (kind, same_entry, response) {
                (Kind::Write, true, Some(response)) => Answer::Applied { index: entry.index, response },
                (Kind::Membership, true, _) if joint == Some(true) => {
                    self.joint_waiters.push((request, entry.index, self.now_tick));
                    return self.observe_applied(entry, decision, answer);
                }
                (Kind::Membership, true, _) => Answer::Done { index: entry.index },
                // Another entry took its place: a newer leader overwrote it.
                _ => Answer::Unknown { leader_hint: self.node.leader() },
            };
            self.answers.push((request, answer));
        }
        self.observe_applied(entry, decision, answer);
    }

    fn observe_applied(&mut self, entry: raft_core::Entry, decision: Option<&CommitDecision>, answer: u64) {
        if let Some(decision) = decision {
            self.outputs.push(Output::Event(Event::Applied { entry, decision: decision.clone(), answer }));
        }
    }

    /// Starts an input: nothing stepped yet.
    fn begin(&mut self) {
        self.step_queued();
        self.steps_this_call = 0;
        self.first_step_did = ActionKinds::default();
    }

    /// Steps the writes and reads queued since the last step, in the order submitted:
    /// each run of writes as one proposal batch (one append per follower, one
    /// `PersistEntries`), each run of reads as one read batch (one heartbeat round),
    /// every request answered as if alone.
    fn step_queued(&mut self) {
        if self.queued.is_empty() {
            return;
        }
        let queued = std::mem::take(&mut self.queued);
        self.steps_this_call = 0;
        self.first_step_did = ActionKinds::default();
        let mut queued = queued.into_iter().peekable();
        while let Some(first) = queued.next() {
            if self.failed {
                return;
            }
            let input = match first {
                Queued::Write(id, command) => {
                    let mut proposals = vec![(id, command)];
                    while let Some(Queued::Write(id, command)) =
                        queued.next_if(|next| matches!(next, Queued::Write(..)))
                    {
                        proposals.push((id, command));
                    }
                    match proposals.len() {
                        1 => {
                            let (id, command) = proposals.pop().expect("one");
                            Input::Propose { id, command }
                        }
                        _ => Input::ProposeBatch { proposals },
                    }
                }
                Queued::Read(id) => {
                    let mut ids = vec![id];
                    while let Some(Queued::Read(id)) = queued.next_if(|next| matches!(next, Queued::Read(_)))
                    {
                        ids.push(id);
                    }
                    match ids.as_slice() {
                        [id] => Input::Read { id: *id },
                        _ => Input::ReadBatch { ids },
                    }
                }
            };
            self.step(input);
        }
        self.finish();
    }

    /// Ends an input: answers decided, compaction if due, and a sync if writes wait.
    fn finish(&mut self) {
        self.compact_if_due();
        if !self.answers.is_empty() {
            for (request, answer) in self.answers.drain(..) {
                self.outputs.push(Output::Answer { request, answer });
            }
        }
        if let Some(through) = self.gate.sync_to_request() {
            self.outputs.push(Output::Sync { through });
        }
    }

    /// Snapshots the state machine once enough applied entries follow the last snapshot.
    fn compact_if_due(&mut self) {
        if !std::mem::take(&mut self.applied_since_compaction_check) {
            return;
        }
        let threshold = self.config.compaction_threshold_entries;
        let snapshot_index = self.node.snapshot_meta().last_included_index;
        if self.failed || threshold == 0 || self.applied_index < snapshot_index.saturating_add(threshold) {
            return;
        }
        let up_to = self.applied_index;
        let Some(term) = self.node.term_at(up_to) else { return };
        let meta = raft_core::SnapshotMeta { last_included_index: up_to, last_included_term: term };
        let written = self.snapshots.create(meta).and_then(|()| {
            self.machine.snapshot_to(&mut StoreSink(&mut self.snapshots))?;
            self.snapshots.finish()
        });
        match written {
            Ok(size_bytes) => self.step(Input::CompactLog { up_to, size_bytes }),
            Err(reason) => self.fail(format!("cannot write the snapshot at {up_to}: {reason}")),
        }
    }

    /// The node cannot go on: say so, and ignore every later input.
    fn fail(&mut self, reason: String) {
        if !self.failed {
            self.failed = true;
            self.outputs.push(Output::Failed(format!("node {}: {reason}", self.node.id())));
        }
    }
}

/// The state machine's writes, into the snapshot being created.
struct StoreSink<'a, S>(&'a mut S);

impl<S: SnapshotStore> ByteSink for StoreSink<'_, S> {
    fn write(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.0.write(bytes)
    }
}

/// A write or read waiting to be stepped with the others of its round.
#[derive(Debug)]
enum Queued {
    Write(RequestId, Vec<u8>),
    Read(RequestId),
}

/// Drops each successful append acknowledgement that a later one among `ready` (to the
/// same leader, in the same term, for as far or further) makes redundant: one sync
/// releases the acknowledgements of every append it covered, and the leader needs only
/// the last (its progress frees every inflight append at or below the acknowledged
/// index). A later acknowledgement for less (a stale duplicate append) drops nothing.
fn coalesce_acknowledgements(ready: &mut Vec<Effect>) {
    let acknowledgement = |effect: &Effect| match effect {
        Effect::Send(Message {
            from,
            to,
            term,
            body: MessageBody::AppendEntriesResponse { success: true, index, .. },
        }) => Some((*from, *to, *term, *index)),
        _ => None,
    };
    if ready.iter().filter(|effect| acknowledgement(effect).is_some()).count() < 2 {
        return;
    }
    // From the back: the furthest acknowledgement seen later, per (from, to, term).
    let mut later: Vec<((NodeId, NodeId, Term), LogIndex)> = Vec::new();
    let mut keep = vec![true; ready.len()];
    for (position, effect) in ready.iter().enumerate().rev() {
        let Some((from, to, term, index)) = acknowledgement(effect) else { continue };
        match later.iter_mut().find(|(key, _)| *key == (from, to, term)) {
            Some((_, furthest)) if *furthest >= index => keep[position] = false,
            Some((_, furthest)) => *furthest = index,
            None => later.push(((from, to, term), index)),
        }
    }
    let mut keep = keep.into_iter();
    ready.retain(|_| keep.next().unwrap_or(true));
}
