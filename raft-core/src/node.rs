//! The node: its state, the single entry point `step`, role transitions and the clock.
//!
//! Protocol handling is split by concern into `election`, `replication`, `reads` and
//! `requests`; they are all `impl RaftNode` blocks over the state defined here.

use crate::config::Config;
use crate::configuration::Configuration;
use crate::io::{Action, Counters, DurableState, Input, RejectReason, Request, RestoreError, Role};
use crate::log::RaftLog;
use crate::message::{Message, MessageBody};
use crate::progress::Progress;
use crate::types::{HardState, LogIndex, NodeId, RequestId, Snapshot, SnapshotMeta, Term};
use crate::validate::MAX_TERM_OR_INDEX;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::{BTreeMap, VecDeque};

/// A read waiting for a quorum to confirm the leader's read round.
#[derive(Debug)]
pub(crate) struct PendingRead {
    pub(crate) round: u64,
    pub(crate) id: RequestId,
    pub(crate) read_index: LogIndex,
}

/// A leadership transfer under way.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Transfer {
    pub(crate) target: NodeId,
    pub(crate) started_tick: u64,
}

/// One Raft node as a pure state machine.
///
/// - Build: [`RaftNode::new`] from a [`Config`], the [`DurableState`] the host kept, and a seed.
/// - Input: [`RaftNode::step`] (or [`RaftNode::step_into`]) with one [`Input`] at a time.
/// - Output: the returned [`Action`]s, which the host performs in order.
/// - Getters: [`RaftNode::role`], [`RaftNode::term`], [`RaftNode::leader`],
///   [`RaftNode::commit_index`], [`RaftNode::last_index`], [`RaftNode::counters`], ...
#[derive(Debug)]
pub struct RaftNode {
    pub(crate) config: Config,
    pub(crate) rng: ChaCha8Rng,

    // Durable state (Raft paper Figure 2), mirrored by the host's storage.
    pub(crate) term: Term,
    pub(crate) voted_for: Option<NodeId>,
    pub(crate) log: RaftLog,
    pub(crate) snapshot: Option<Snapshot>,
    /// The hard state last emitted for persisting; a difference means a persist is due.
    pub(crate) persisted_hard_state: HardState,

    pub(crate) role: Role,
    pub(crate) leader: Option<NodeId>,

    /// Ticks since this node was built: the node's private clock.
    pub(crate) now_tick: u64,
    pub(crate) election_elapsed_ticks: u64,
    pub(crate) election_timeout_ticks: u64,
    pub(crate) heartbeat_elapsed_ticks: u64,
    /// When this node last heard from the leader of its term (CheckQuorum's vote lease).
    pub(crate) last_leader_contact_tick: Option<u64>,
    /// Built from a durable state with a term above 0: it may have promised a lease.
    pub(crate) restarted_with_history: bool,

    /// Pre-vote or vote answers in the current campaign.
    pub(crate) votes: BTreeMap<NodeId, bool>,
    /// A leader told us the configuration committed at this index leaves us out
    /// (`MessageBody::Removed`): we stop campaigning until our log holds a later change.
    pub(crate) removed_by: Option<LogIndex>,
    /// The snapshot this follower is receiving in chunks, if any.
    pub(crate) incoming_snapshot: Option<crate::snapshot_transfer::IncomingSnapshot>,

    // Leader state, reset on every election.
    pub(crate) progress: BTreeMap<NodeId, Progress>,
    pub(crate) read_round: u64,
    pub(crate) pending_reads: VecDeque<PendingRead>,
    pub(crate) reads_awaiting_commit: Vec<RequestId>,
    pub(crate) transfer: Option<Transfer>,
    /// Scratch space for quorum computations, so commits do not allocate.
    pub(crate) quorum_scratch: Vec<u64>,

    pub(crate) counters: Counters,
}

impl RaftNode {
    /// Builds a node from its configuration, the state its host kept durable, and the
    /// seed of its private random number generator (used only for election timeouts).
    pub fn new(config: Config, durable: DurableState, seed: u64) -> Result<RaftNode, RestoreError> {
        config.validate()?;
        let DurableState { hard_state, snapshot, entries } = durable;
        let meta = snapshot.as_ref().map_or(SnapshotMeta::default(), |snapshot| snapshot.meta);
        let last_index = meta.last_included_index.saturating_add(entries.len() as u64);
        if hard_state.term > MAX_TERM_OR_INDEX || last_index > MAX_TERM_OR_INDEX {
            return Err(RestoreError::OutOfRange);
        }
        if meta.last_included_term > hard_state.term {
            return Err(RestoreError::InconsistentTerms { index: meta.last_included_index });
        }
        let mut previous_term = meta.last_included_term;
        for (offset, entry) in entries.iter().enumerate() {
            let expected = meta.last_included_index + 1 + offset as u64;
            if entry.index != expected {
                return Err(RestoreError::NonContiguousLog { expected, found: entry.index });
            }
            if entry.term < previous_term || entry.term > hard_state.term {
                return Err(RestoreError::InconsistentTerms { index: entry.index });
            }
            previous_term = entry.term;
            if let crate::types::EntryPayload::MembershipChange { configuration, .. } = &entry.payload {
                if !configuration.is_valid() {
                    return Err(RestoreError::InvalidVoterSet { index: entry.index });
                }
            }
        }
        // The configuration at the start of the log: the snapshot's, or the bootstrap one.
        let base_configuration = match &snapshot {
            Some(snapshot) if snapshot.configuration.is_valid() => snapshot.configuration.clone(),
            Some(_) => return Err(RestoreError::InvalidVoterSet { index: meta.last_included_index }),
            None => config.bootstrap_configuration().expect("validated above"),
        };
        let member_count = config.voters.len() + config.learners.len();
        let mut node = RaftNode {
            rng: ChaCha8Rng::seed_from_u64(seed),
            term: hard_state.term,
            voted_for: hard_state.voted_for,
            log: RaftLog::restore(meta, base_configuration, entries),
            snapshot,
            persisted_hard_state: hard_state,
            role: Role::Follower,
            leader: None,
            now_tick: 0,
            election_elapsed_ticks: 0,
            election_timeout_ticks: 0,
            heartbeat_elapsed_ticks: 0,
            last_leader_contact_tick: None,
            restarted_with_history: hard_state.term > 0,
            votes: BTreeMap::new(),
            removed_by: None,
            incoming_snapshot: None,
            progress: BTreeMap::new(),
            read_round: 0,
            pending_reads: VecDeque::new(),
            reads_awaiting_commit: Vec::new(),
            transfer: None,
            quorum_scratch: Vec::with_capacity(member_count),
            counters: Counters::default(),
            config,
        };
        node.reset_election_timer();
        Ok(node)
    }

    /// Feeds one input and returns the actions the host must perform, in order.
    pub fn step(&mut self, input: Input) -> Vec<Action> {
        let mut actions = Vec::new();
        self.step_into(input, &mut actions);
        actions
    }

    /// Like [`RaftNode::step`], but appends the actions to a caller-owned buffer so a
    /// host can reuse one allocation across steps.
    pub fn step_into(&mut self, input: Input, actions: &mut Vec<Action>) {
        match input {
            Input::Tick => self.tick(actions),
            Input::Message(message) => self.receive(message, actions),
            Input::Propose { id, command } => self.propose_batch(vec![(id, command)], actions),
            Input::ProposeBatch { proposals } => self.propose_batch(proposals, actions),
            Input::Read { id } => self.read_batch(&[id], actions),
            Input::ReadBatch { ids } => self.read_batch(&ids, actions),
            Input::ChangeMembership { id, change, context } => {
                self.change_membership(id, change, context, actions)
            }
            Input::TransferLeadership { to } => self.transfer_leadership(to, actions),
            Input::CompactLog { up_to, size_bytes } => self.compact_log(up_to, size_bytes, actions),
            Input::LogPersisted { index, term } => self.log_persisted(index, term, actions),
        }
        self.flush_hard_state(actions);
        self.assert_invariants();
    }

    // ---- Getters ----

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.config.id
    }
    /// The current role.
    pub fn role(&self) -> Role {
        self.role
    }
    /// The current term.
    pub fn term(&self) -> Term {
        self.term
    }
    /// The vote cast in the current term.
    pub fn voted_for(&self) -> Option<NodeId> {
        self.voted_for
    }
    /// The leader of the current term, if known.
    pub fn leader(&self) -> Option<NodeId> {
        self.leader
    }
    /// The highest index known to be committed.
    pub fn commit_index(&self) -> LogIndex {
        self.log.commit_index
    }
    /// The highest index handed to the host in an `Apply` (or covered by a snapshot).
    pub fn applied_index(&self) -> LogIndex {
        self.log.applied_index
    }
    /// The log is durable through this index, as far as the host reported.
    pub fn persisted_index(&self) -> LogIndex {
        self.log.persisted_index
    }
    /// The index of the last entry in the log.
    pub fn last_index(&self) -> LogIndex {
        self.log.last_index()
    }
    /// The term of the last entry in the log.
    pub fn last_term(&self) -> Term {
        self.log.last_term()
    }
    /// The term of the entry at `index`, if the log holds it (or the snapshot ends there).
    pub fn term_at(&self, index: LogIndex) -> Option<Term> {
        self.log.term_at(index)
    }
    /// The entry at `index`, if the log still holds it.
    pub fn entry(&self, index: LogIndex) -> Option<&crate::types::Entry> {
        self.log.entry(index)
    }
    /// Where the current snapshot ends (0, 0 without one).
    pub fn snapshot_meta(&self) -> SnapshotMeta {
        self.log.snapshot_meta()
    }
    /// The configuration in force on this node: set by the newest membership entry in
    /// its log (committed or not), else by its snapshot, else by `Config::voters` and
    /// `Config::learners`.
    pub fn configuration(&self) -> &Configuration {
        self.log.configuration()
    }
    /// The index of the entry that set the configuration in force (committed or not),
    /// or where the log starts if no membership entry is left in it.
    pub fn configuration_index(&self) -> LogIndex {
        self.log.latest_membership_change().unwrap_or(self.log.snapshot_meta().last_included_index)
    }
    /// The configuration in force at `index` (the entry there included), for an index
    /// the log or its snapshot covers: what a snapshot ending there must carry.
    pub fn configuration_at(&self, index: LogIndex) -> &Configuration {
        self.log.configuration_at(index)
    }
    /// The voters in force on this node (the incoming ones during a joint change); see
    /// [`RaftNode::configuration`].
    pub fn voters(&self) -> &[NodeId] {
        self.log.configuration().incoming_voters()
    }
    /// On a leader, the highest index known to match `peer`'s log (its own last index
    /// for itself); `None` on a follower or for a node it does not replicate to.
    pub fn match_index(&self, peer: NodeId) -> Option<LogIndex> {
        if self.role != Role::Leader {
            return None;
        }
        if peer == self.config.id {
            return Some(self.log.last_index());
        }
        self.progress.get(&peer).map(|progress| progress.match_index)
    }
    /// The configuration the node was built with.
    pub fn config(&self) -> &Config {
        &self.config
    }
    /// How many inputs were ignored, by reason.
    pub fn counters(&self) -> Counters {
        self.counters
    }
    /// The node's private tick count.
    pub fn now_tick(&self) -> u64 {
        self.now_tick
    }

    // ---- Clock ----

    fn tick(&mut self, actions: &mut Vec<Action>) {
        self.now_tick += 1;
        if self.role == Role::Leader {
            self.tick_leader(actions);
        } else {
            self.election_elapsed_ticks += 1;
            if self.election_elapsed_ticks >= self.election_timeout_ticks {
                if self.may_campaign() {
                    self.start_election(actions);
                } else {
                    if self.role != Role::Follower {
                        // A campaign that may not go on (told we were removed) ends.
                        self.become_follower(self.term, None, actions);
                    }
                    self.reset_election_timer();
                }
            }
        }
    }

    fn tick_leader(&mut self, actions: &mut Vec<Action>) {
        if self.config.check_quorum && !self.quorum_heard_recently() {
            // Raft thesis §6.2: a leader cut off from a quorum steps down so that clients
            // go looking for the leader the majority elected.
            self.become_follower(self.term, None, actions);
            return;
        }
        if let Some(transfer) = self.transfer {
            if self.now_tick - transfer.started_tick >= self.config.election_timeout_min_ticks {
                self.transfer = None;
            }
        }
        self.heartbeat_elapsed_ticks += 1;
        if self.heartbeat_elapsed_ticks >= self.config.heartbeat_interval_ticks {
            self.heartbeat_elapsed_ticks = 0;
            self.broadcast_heartbeat(actions);
        }
    }

    /// Whether a quorum (this leader included) was heard from within the minimum election timeout.
    fn quorum_heard_recently(&mut self) -> bool {
        let heard = self.quorum_value_of(self.now_tick, |progress| progress.last_heard_tick);
        self.now_tick - heard < self.config.election_timeout_min_ticks
    }

    /// The largest value a quorum of the current configuration has reached, given this
    /// node's own value and each follower's. This node counts only while it is a voter
    /// (a leader removing itself manages a cluster it is no longer part of, thesis
    /// §4.2.2); learners never count.
    pub(crate) fn quorum_value_of(&mut self, own: u64, of_follower: impl Fn(&Progress) -> u64) -> u64 {
        let (me, progress) = (self.config.id, &self.progress);
        self.log.configuration().quorum_value_in(&mut self.quorum_scratch, |voter| {
            if voter == me {
                own
            } else {
                progress.get(&voter).map_or(0, &of_follower)
            }
        })
    }

    /// Voters campaign. So does a node whose removal or demotion to learner is not yet
    /// committed as far as it knows, if it voted before that change: the entry may never
    /// commit, and this node may hold the longest log, the only one that can win (it then
    /// leads until the change commits, thesis §4.2.2). A node whose removal committed, one
    /// never added, and a learner that never voted stay quiet.
    pub(crate) fn may_campaign(&self) -> bool {
        let latest_change = self.log.latest_membership_change();
        if self.removed_by.is_some_and(|removed| self.configuration_index() <= removed) {
            return false;
        }
        if self.is_voter() {
            return true;
        }
        match latest_change {
            Some(index) if index > self.log.commit_index => {
                self.log.configuration_at(index - 1).is_voter(self.config.id)
            }
            _ => false,
        }
    }

    /// Whether this node is a voter in the membership its log defines.
    pub(crate) fn is_voter(&self) -> bool {
        self.log.configuration().is_voter(self.config.id)
    }

    /// The progress of a follower that just answered us, marked as heard from now, or
    /// `None` (counted) if we do not replicate to it (removed, or never a voter).
    pub(crate) fn answering_follower(&mut self, from: NodeId) -> Option<&mut Progress> {
        let now_tick = self.now_tick;
        match self.progress.get_mut(&from) {
            Some(progress) => {
                progress.last_heard_tick = now_tick;
                Some(progress)
            }
            None => {
                self.counters.ignored_unknown_peer += 1;
                None
            }
        }
    }

    /// Keeps the leader's progress map in step with the members (voters and learners
    /// alike receive the log): a new member starts probing from `next_index` (the entry
    /// that made it a member, so that entry goes out at once), a removed one is forgotten.
    pub(crate) fn sync_progress_with_members(&mut self, next_index: LogIndex) {
        let now_tick = self.now_tick;
        let me = self.config.id;
        let configuration = self.log.configuration();
        self.progress.retain(|peer, _| configuration.contains(*peer));
        for &member in configuration.members().iter().filter(|&&member| member != me) {
            self.progress.entry(member).or_insert_with(|| Progress::new(next_index, now_tick));
        }
    }

    pub(crate) fn reset_election_timer(&mut self) {
        let span = self.config.election_timeout_max_ticks - self.config.election_timeout_min_ticks;
        self.election_elapsed_ticks = 0;
        self.election_timeout_ticks = self.config.election_timeout_min_ticks + self.rng.next_u64() % span;
    }

    /// Whether this node heard from a live leader recently enough that, with
    /// CheckQuorum, it must not help depose it (Raft thesis §4.2.3).
    pub(crate) fn in_leader_lease(&self) -> bool {
        if !self.config.check_quorum {
            return false;
        }
        if self.role == Role::Leader {
            return true;
        }
        let lease_ticks = self.config.election_timeout_min_ticks;
        if self.restarted_with_history && self.now_tick < lease_ticks {
            // We may have been following a leader just before a crash and cannot know
            // for how much longer it counts on us; honour the lease we might have given.
            return true;
        }
        self.leader.is_some()
            && self.last_leader_contact_tick.is_some_and(|heard| self.now_tick - heard < lease_ticks)
    }

    // ---- Role transitions ----

    /// Adopts `term` (if newer) and follows `leader` (if known). Raft paper §5.1: any
    /// node that sees a higher term steps down. Callers only call it for a real change
    /// (a newer term, another role, or another leader), which is announced.
    pub(crate) fn become_follower(&mut self, term: Term, leader: Option<NodeId>, actions: &mut Vec<Action>) {
        assert!(term >= self.term, "terms never go backwards");
        let changed = term > self.term || self.role != Role::Follower || self.leader != leader;
        assert!(changed, "become_follower without a change");
        if term > self.term {
            self.term = term;
            self.voted_for = None;
        }
        if self.role == Role::Leader {
            self.abandon_leadership(actions);
        }
        self.role = Role::Follower;
        self.leader = leader;
        self.votes.clear();
        if leader.is_some() {
            self.last_leader_contact_tick = Some(self.now_tick);
        }
        self.reset_election_timer();
        self.announce_role(actions);
    }

    /// Fails every request that only a leader could finish.
    fn abandon_leadership(&mut self, actions: &mut Vec<Action>) {
        self.progress.clear();
        self.transfer = None;
        let pending = std::mem::take(&mut self.pending_reads);
        let awaiting = std::mem::take(&mut self.reads_awaiting_commit);
        for id in pending.into_iter().map(|read| read.id).chain(awaiting) {
            actions.push(Action::Rejected {
                request: Request::Read(id),
                reason: RejectReason::LeadershipLost,
                leader_hint: None,
            });
        }
    }

    pub(crate) fn become_leader(&mut self, actions: &mut Vec<Action>) {
        assert_eq!(self.role, Role::Candidate);
        assert_eq!(self.voted_for, Some(self.id()));
        self.role = Role::Leader;
        self.leader = Some(self.id());
        self.votes.clear();
        self.heartbeat_elapsed_ticks = 0;
        self.read_round = 0;
        self.progress.clear();
        self.sync_progress_with_members(self.log.last_index() + 1);
        self.announce_role(actions);
        // Raft paper §8: a no-op entry lets the new leader commit, and so learn, what
        // earlier terms committed; reads wait for it (thesis §6.4).
        self.append_to_own_log(crate::types::EntryPayload::Noop, actions);
        self.broadcast_append(true, actions);
        self.maybe_commit(actions);
    }

    fn announce_role(&self, actions: &mut Vec<Action>) {
        actions.push(Action::RoleChanged { role: self.role, term: self.term, leader: self.leader });
    }

    // ---- Output helpers that enforce the ordering contract ----

    /// Emits `PersistHardState` if term or vote changed since the last one. Called
    /// before any send or entry persist so that what they promise is durable first.
    pub(crate) fn flush_hard_state(&mut self, actions: &mut Vec<Action>) {
        let current = HardState { term: self.term, voted_for: self.voted_for };
        if current != self.persisted_hard_state {
            self.persisted_hard_state = current;
            actions.push(Action::PersistHardState(current));
        }
    }

    pub(crate) fn send(&mut self, to: NodeId, body: MessageBody, actions: &mut Vec<Action>) {
        self.flush_hard_state(actions);
        actions.push(Action::Send(Message { from: self.config.id, to, term: self.term, body }));
    }

    /// Sends a leader's message that promises nothing about this node's log: it may
    /// leave before the entry writes before it are durable (`Action::SendAhead`).
    pub(crate) fn send_ahead(&mut self, to: NodeId, body: MessageBody, actions: &mut Vec<Action>) {
        debug_assert_eq!(self.role, Role::Leader);
        self.flush_hard_state(actions);
        actions.push(Action::SendAhead(Message { from: self.config.id, to, term: self.term, body }));
    }

    /// Sends with an explicit term (pre-vote traffic travels in a term not yet adopted).
    pub(crate) fn send_with_term(
        &mut self,
        to: NodeId,
        term: Term,
        body: MessageBody,
        actions: &mut Vec<Action>,
    ) {
        self.flush_hard_state(actions);
        actions.push(Action::Send(Message { from: self.config.id, to, term, body }));
    }

    /// Advances the commit index and hands newly committed entries to the host.
    pub(crate) fn commit_to(&mut self, index: LogIndex, actions: &mut Vec<Action>) {
        if index <= self.log.commit_index {
            return;
        }
        assert!(index <= self.log.last_index(), "commit {index} beyond log end {}", self.log.last_index());
        self.log.commit_index = index;
        let entries = self.log.entries_between(self.log.applied_index + 1, index).to_vec();
        self.log.applied_index = index;
        actions.push(Action::Apply { entries });
    }

    /// The member at `position` in the current configuration's member list (voters and
    /// learners), or `None` for this node itself. Indexing (rather than iterating) lets
    /// callers send while they walk the peers, without collecting them into a fresh
    /// allocation on every broadcast.
    pub(crate) fn peer_at(&self, position: usize) -> Option<NodeId> {
        let member = *self.log.configuration().members().get(position)?;
        (member != self.config.id).then_some(member)
    }

    /// How many members there are now; bounds loops over `peer_at`.
    pub(crate) fn member_count(&self) -> usize {
        self.log.configuration().members().len()
    }

    fn assert_invariants(&self) {
        assert!(self.log.commit_index <= self.log.last_index());
        assert!(self.log.persisted_index <= self.log.last_index(), "persisted beyond the log");
        assert_eq!(self.log.applied_index, self.log.commit_index, "committed entries are applied at once");
        assert!(self.log.last_term() <= self.term, "log term above current term");
        assert_eq!(self.persisted_hard_state, HardState { term: self.term, voted_for: self.voted_for });
        match self.role {
            Role::Leader => {
                assert_eq!(self.leader, Some(self.config.id));
                assert_eq!(self.voted_for, Some(self.config.id));
            }
            Role::Candidate => assert_eq!(self.voted_for, Some(self.config.id)),
            Role::Follower | Role::PreCandidate => assert!(self.progress.is_empty()),
        }
    }
}
