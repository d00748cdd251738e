//! A small deterministic in-memory cluster for the protocol tests.
//!
//! Messages wait in one FIFO queue and are delivered by a bounded loop; links can be
//! cut per direction, nodes crashed and restarted from what they persisted (persists
//! are durable at once here). No wall clock, no threads, no unseeded randomness.

use crate::{Action, Config, DurableState, Entry, Input, Message, RaftNode, Role, Snapshot};
use crate::{LogIndex, NodeId, Term};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// Whether an action changes the log on disk (what a persistence report covers).
fn writes_the_log(action: &Action) -> bool {
    matches!(
        action,
        Action::TruncateLog { .. }
            | Action::PersistEntries { .. }
            | Action::PersistSnapshot { .. }
            | Action::InstallSnapshot { .. }
    )
}

/// How many messages one `deliver_all` may deliver before we call it a livelock.
const DELIVERY_BOUND: usize = 100_000;

pub(crate) struct Cluster {
    pub(crate) nodes: BTreeMap<NodeId, RaftNode>,
    pub(crate) configs: BTreeMap<NodeId, Config>,
    pub(crate) storage: BTreeMap<NodeId, DurableState>,
    /// The state machine of each node: the entries applied, in order.
    pub(crate) applied: BTreeMap<NodeId, Vec<Entry>>,
    /// Non-message actions each node emitted, for assertions (rejections, reads, ...).
    pub(crate) events: BTreeMap<NodeId, Vec<Action>>,
    pub(crate) queue: VecDeque<Message>,
    pub(crate) cut_links: BTreeSet<(NodeId, NodeId)>,
    pub(crate) crashed: BTreeSet<NodeId>,
    /// Every (term, leader) ever observed, to check election safety as we go.
    pub(crate) leaders_by_term: BTreeMap<Term, NodeId>,
    /// Every entry any node ever applied, by index: all later applies must agree
    /// (state machine safety), and every new leader must hold them (leader completeness).
    pub(crate) committed: BTreeMap<LogIndex, Entry>,
    /// The term in which each committed entry was committed: the term of the node that
    /// applied it first, which is always the leader that committed it (followers learn
    /// of a commit only from that leader's later messages).
    pub(crate) commit_terms: BTreeMap<LogIndex, Term>,
    /// When set, every action of every node is folded into this FNV-1a digest, so two
    /// runs can be compared for determinism.
    pub(crate) action_digest: Option<u64>,
    /// Every vote granted, as (voter, term) -> candidate, across restarts: a node
    /// that votes twice in one term (say, after forgetting its vote) is caught here.
    pub(crate) votes_granted: BTreeMap<(NodeId, Term), NodeId>,
    /// Each node's snapshot bytes, durable (the host's, as the core only names them).
    snapshot_bytes: BTreeMap<NodeId, (crate::SnapshotMeta, Vec<u8>)>,
    /// Bytes a node's `compact` wrote, until its `PersistSnapshot` names them.
    compacting: BTreeMap<NodeId, Vec<u8>>,
    /// The chunks of a leader's snapshot a node holds so far (lost in a crash).
    incoming_bytes: BTreeMap<NodeId, Vec<u8>>,
    restarts: u64,
}

impl Cluster {
    pub(crate) fn new(size: u64) -> Cluster {
        Cluster::with_config(size, |_| {})
    }

    pub(crate) fn with_config(size: u64, configure: impl Fn(&mut Config)) -> Cluster {
        let ids: Vec<NodeId> = (1..=size).collect();
        let logs = ids.iter().map(|&id| (id, DurableState::default())).collect();
        Cluster::with_durable_state(logs, configure)
    }

    /// A cluster whose nodes restart from the given durable states.
    pub(crate) fn with_durable_state(
        durable: BTreeMap<NodeId, DurableState>,
        configure: impl Fn(&mut Config),
    ) -> Cluster {
        let ids: Vec<NodeId> = durable.keys().copied().collect();
        let mut cluster = Cluster {
            nodes: BTreeMap::new(),
            configs: BTreeMap::new(),
            storage: durable,
            applied: BTreeMap::new(),
            events: BTreeMap::new(),
            queue: VecDeque::new(),
            cut_links: BTreeSet::new(),
            crashed: BTreeSet::new(),
            leaders_by_term: BTreeMap::new(),
            committed: BTreeMap::new(),
            commit_terms: BTreeMap::new(),
            action_digest: None,
            votes_granted: BTreeMap::new(),
            snapshot_bytes: BTreeMap::new(),
            compacting: BTreeMap::new(),
            incoming_bytes: BTreeMap::new(),
            restarts: 0,
        };
        for &id in &ids {
            let mut config = Config::new(id, ids.clone());
            configure(&mut config);
            cluster.configs.insert(id, config);
            cluster.start(id);
        }
        cluster
    }

    fn start(&mut self, id: NodeId) {
        let durable = self.storage[&id].clone();
        let seed = id * 1_000 + self.restarts;
        self.restarts += 1;
        let node = RaftNode::new(self.configs[&id].clone(), durable.clone(), seed).expect("valid node");
        self.incoming_bytes.remove(&id);
        let state_machine = match &durable.snapshot {
            Some(snapshot) => {
                let (meta, bytes) = &self.snapshot_bytes[&id];
                assert_eq!(*meta, snapshot.meta, "node {id}'s snapshot bytes are the durable snapshot's");
                decode_state_machine(bytes)
            }
            None => Vec::new(),
        };
        self.applied.insert(id, state_machine);
        self.nodes.insert(id, node);
    }

    /// Starts a new, empty node that believes `voters` (which must include it) are the
    /// cluster: how a host brings up a server it is about to add.
    pub(crate) fn add_node(&mut self, id: NodeId, voters: Vec<NodeId>) {
        assert!(!self.nodes.contains_key(&id));
        let template = self.configs.values().next().expect("a node exists").clone();
        let config = Config { id, voters, ..template };
        self.configs.insert(id, config);
        self.storage.insert(id, DurableState::default());
        self.start(id);
    }

    /// Starts a new, empty node that joins as a learner of `voters`.
    pub(crate) fn add_learner_node(&mut self, id: NodeId, voters: Vec<NodeId>) {
        assert!(!self.nodes.contains_key(&id));
        let template = self.configs.values().next().expect("a node exists").clone();
        let config = Config { id, voters, learners: vec![id], ..template };
        self.configs.insert(id, config);
        self.storage.insert(id, DurableState::default());
        self.start(id);
    }

    /// Snapshots node `id` at `up_to` with `data` as its bytes, as a host does: the
    /// bytes are kept first, then the core is told their size.
    pub(crate) fn compact(&mut self, id: NodeId, up_to: LogIndex, data: Vec<u8>) -> Vec<Action> {
        let size_bytes = data.len() as u64;
        self.compacting.insert(id, data);
        self.step(id, Input::CompactLog { up_to, size_bytes })
    }

    pub(crate) fn node(&self, id: NodeId) -> &RaftNode {
        &self.nodes[&id]
    }

    pub(crate) fn node_mut(&mut self, id: NodeId) -> &mut RaftNode {
        self.nodes.get_mut(&id).expect("node exists")
    }

    /// Steps one node and performs its actions as a host would; returns them. Writes
    /// are durable at once here, so when the step wrote the log the host reports it
    /// persisted right away (a host that syncs after every step), and the actions that
    /// report causes (a leader's commit) are returned too.
    pub(crate) fn step(&mut self, id: NodeId, input: Input) -> Vec<Action> {
        assert!(!self.crashed.contains(&id), "stepping crashed node {id}");
        let mut actions = self.step_and_perform(id, input);
        if actions.iter().any(writes_the_log) {
            let node = self.node(id);
            let report = Input::LogPersisted { index: node.last_index(), term: node.last_term() };
            actions.extend(self.step_and_perform(id, report));
        }
        actions
    }

    fn step_and_perform(&mut self, id: NodeId, input: Input) -> Vec<Action> {
        let actions = self.node_mut(id).step(input);
        if let Some(digest) = self.action_digest.as_mut() {
            for byte in format!("{id}{actions:?}").bytes() {
                *digest = (*digest ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3);
            }
        }
        for action in &actions {
            self.perform(id, action);
        }
        actions
    }

    fn perform(&mut self, id: NodeId, action: &Action) {
        let storage = self.storage.get_mut(&id).expect("storage exists");
        match action {
            Action::PersistHardState(hard_state) => storage.hard_state = *hard_state,
            Action::TruncateLog { from } => storage.entries.retain(|entry| entry.index < *from),
            Action::PersistEntries { entries } => {
                let expected = storage.entries.last().map_or_else(
                    || storage.snapshot.as_ref().map_or(0, |snapshot| snapshot.meta.last_included_index),
                    |entry| entry.index,
                ) + 1;
                assert_eq!(entries[0].index, expected, "node {id} persisted a gap");
                storage.entries.extend(entries.iter().cloned());
            }
            Action::PersistSnapshot { snapshot } => {
                let index = snapshot.meta.last_included_index;
                storage.entries.retain(|entry| entry.index > index);
                storage.snapshot = Some(snapshot.clone());
                let bytes = self.compacting.remove(&id).expect("compact wrote the bytes first");
                assert_eq!(bytes.len() as u64, snapshot.size_bytes);
                self.snapshot_bytes.insert(id, (snapshot.meta, bytes));
            }
            Action::StoreSnapshotChunk { meta, offset, bytes } => {
                let incoming = self.incoming_bytes.entry(id).or_default();
                if *offset == 0 {
                    incoming.clear();
                }
                assert_eq!(
                    *offset,
                    incoming.len() as u64,
                    "node {id} was handed a chunk past a gap ({meta:?})"
                );
                incoming.extend_from_slice(bytes);
            }
            Action::SendSnapshotChunk { message, length } => {
                let mut message = message.clone();
                let crate::MessageBody::InstallSnapshot { meta, offset, chunk, .. } = &mut message.body
                else {
                    panic!("node {id} asked to fill a message that is not a snapshot chunk: {message:?}");
                };
                let (held, bytes) = &self.snapshot_bytes[&id];
                assert_eq!(held, meta, "node {id} sends a snapshot it does not hold");
                *chunk = bytes[*offset as usize..(*offset + length) as usize].to_vec();
                assert_promise_is_durable(id, storage, &message);
                let link = (message.from, message.to);
                if !self.cut_links.contains(&link) {
                    self.queue.push_back(message);
                }
            }
            Action::InstallSnapshot { snapshot } => {
                let meta = snapshot.meta;
                let keeps_suffix = storage.entries.iter().any(|entry| {
                    entry.index == meta.last_included_index && entry.term == meta.last_included_term
                });
                if keeps_suffix {
                    storage.entries.retain(|entry| entry.index > meta.last_included_index);
                } else {
                    storage.entries.clear();
                }
                storage.snapshot = Some(snapshot.clone());
                let bytes = self.incoming_bytes.remove(&id).unwrap_or_default();
                assert_eq!(
                    bytes.len() as u64,
                    snapshot.size_bytes,
                    "node {id} installs a snapshot it lacks bytes of"
                );
                self.applied.insert(id, decode_state_machine(&bytes));
                self.snapshot_bytes.insert(id, (meta, bytes));
            }
            Action::Send(message) | Action::SendAhead(message) => {
                assert_promise_is_durable(id, storage, message);
                if let crate::MessageBody::RequestVoteResponse { pre_vote: false, granted: true } =
                    message.body
                {
                    let first = *self.votes_granted.entry((id, message.term)).or_insert(message.to);
                    assert_eq!(first, message.to, "node {id} voted twice in term {}", message.term);
                }
                let link = (message.from, message.to);
                if !self.cut_links.contains(&link) {
                    self.queue.push_back(message.clone());
                }
            }
            Action::Apply { entries } => {
                let applier_term = self.nodes[&id].term();
                let state_machine = self.applied.get_mut(&id).expect("state machine exists");
                for entry in entries {
                    let expected = state_machine.last().map_or(entry.index, |last| last.index + 1);
                    assert_eq!(entry.index, expected, "node {id} applied out of order");
                    state_machine.push(entry.clone());
                    let first = self.committed.entry(entry.index).or_insert_with(|| entry.clone());
                    assert_eq!(first, entry, "state machine safety: node {id} applied a different entry");
                    self.commit_terms.entry(entry.index).or_insert(applier_term);
                }
                self.events.entry(id).or_default().push(action.clone());
            }
            Action::RoleChanged { role: Role::Leader, term, .. } => {
                let previous = self.leaders_by_term.insert(*term, id);
                assert!(
                    previous.is_none() || previous == Some(id),
                    "election safety: {previous:?} and {id} both led term {term}"
                );
                // Raft paper §5.4: entries committed in earlier terms are in every later
                // leader's log. A leader of an earlier term can still be elected late (its
                // vote grants were delayed in the network); it owes nothing to later terms.
                let node = &self.nodes[&id];
                let compacted = node.snapshot_meta().last_included_index;
                for (index, entry) in self.committed.range(compacted + 1..) {
                    if self.commit_terms[index] >= *term {
                        continue;
                    }
                    assert_eq!(
                        node.term_at(*index),
                        Some(entry.term),
                        "leader completeness: new leader {id} of term {term} lacks committed entry {index}"
                    );
                }
                self.events.entry(id).or_default().push(action.clone());
            }
            other => self.events.entry(id).or_default().push(other.clone()),
        }
    }

    /// Delivers queued messages (and what they cause) until none are left.
    pub(crate) fn deliver_all(&mut self) -> usize {
        let mut delivered = 0;
        while let Some(message) = self.queue.pop_front() {
            delivered += 1;
            assert!(delivered < DELIVERY_BOUND, "message storm: livelock?");
            if self.crashed.contains(&message.to) || self.cut_links.contains(&(message.from, message.to)) {
                continue;
            }
            self.step(message.to, Input::Message(message));
        }
        delivered
    }

    /// Delivers the queued message at `position` (out of order, to model reordering).
    pub(crate) fn deliver_one(&mut self, position: usize) {
        let Some(message) = self.queue.remove(position) else { return };
        if self.crashed.contains(&message.to) || self.cut_links.contains(&(message.from, message.to)) {
            return;
        }
        self.step(message.to, Input::Message(message));
    }

    /// Ticks every live node once per round, delivering messages after each round.
    pub(crate) fn tick_all(&mut self, rounds: u64) {
        for _ in 0..rounds {
            let live: Vec<NodeId> = self.live_nodes();
            for id in live {
                self.step(id, Input::Tick);
            }
            self.deliver_all();
        }
    }

    /// Makes `id` leader of the next term by handing it the votes of `voters` directly,
    /// with `id` cut off so that its no-op (and anything after) stays undelivered until
    /// the test heals the network. PreVote must be off.
    pub(crate) fn elect_isolated(&mut self, id: NodeId, voters: &[NodeId]) {
        assert!(!self.configs[&id].pre_vote, "elect_isolated needs pre_vote off");
        self.isolate(id);
        self.campaign(id);
        let term = self.node(id).term();
        for &voter in voters {
            let vote = Message {
                from: voter,
                to: id,
                term,
                body: crate::MessageBody::RequestVoteResponse { pre_vote: false, granted: true },
            };
            self.step(id, Input::Message(vote));
        }
        assert_eq!(self.node(id).role(), Role::Leader, "votes from {voters:?} elect node {id}");
    }

    /// Ticks one node until its election timer fires, then delivers everything.
    pub(crate) fn campaign(&mut self, id: NodeId) {
        let node = self.node_mut(id);
        node.election_elapsed_ticks = node.election_timeout_ticks.saturating_sub(1);
        self.step(id, Input::Tick);
        self.deliver_all();
    }

    pub(crate) fn live_nodes(&self) -> Vec<NodeId> {
        self.nodes.keys().copied().filter(|id| !self.crashed.contains(id)).collect()
    }

    /// The node that leads the highest term among live nodes, if any.
    pub(crate) fn leader(&self) -> Option<NodeId> {
        self.live_nodes()
            .into_iter()
            .filter(|&id| self.node(id).role() == Role::Leader)
            .max_by_key(|&id| self.node(id).term())
    }

    pub(crate) fn isolate(&mut self, id: NodeId) {
        let others: Vec<NodeId> = self.nodes.keys().copied().filter(|&other| other != id).collect();
        for other in others {
            self.cut_links.insert((id, other));
            self.cut_links.insert((other, id));
        }
    }

    /// Splits the cluster: no messages cross between `group` and the rest.
    pub(crate) fn partition(&mut self, group: &[NodeId]) {
        let all: Vec<NodeId> = self.nodes.keys().copied().collect();
        for &inside in group {
            for &outside in all.iter().filter(|id| !group.contains(id)) {
                self.cut_links.insert((inside, outside));
                self.cut_links.insert((outside, inside));
            }
        }
    }

    pub(crate) fn heal(&mut self) {
        self.cut_links.clear();
    }

    pub(crate) fn crash(&mut self, id: NodeId) {
        self.crashed.insert(id);
        self.queue.retain(|message| message.to != id);
    }

    pub(crate) fn restart(&mut self, id: NodeId) {
        self.crashed.remove(&id);
        self.start(id);
    }

    pub(crate) fn propose(&mut self, id: NodeId, command: &[u8]) -> Vec<Action> {
        let request_id = self.node(id).last_index() + 1_000;
        let actions = self.step(id, Input::Propose { id: request_id, command: command.to_vec() });
        self.deliver_all();
        actions
    }

    /// The events (non-send actions) of node `id`, removed from the record.
    pub(crate) fn take_events(&mut self, id: NodeId) -> Vec<Action> {
        self.events.remove(&id).unwrap_or_default()
    }

    pub(crate) fn log_terms(&self, id: NodeId) -> Vec<Term> {
        let node = self.node(id);
        (node.snapshot_meta().last_included_index + 1..=node.last_index())
            .map(|index| node.term_at(index).expect("held"))
            .collect()
    }

    pub(crate) fn applied_indexes(&self, id: NodeId) -> Vec<(LogIndex, Term)> {
        self.applied[&id].iter().map(|entry| (entry.index, entry.term)).collect()
    }

    /// State machine safety over the live nodes: applied sequences are prefixes of one another.
    pub(crate) fn assert_state_machines_agree(&self) {
        let live = self.live_nodes();
        for pair in live.windows(2) {
            let (left, right) = (&self.applied[&pair[0]], &self.applied[&pair[1]]);
            let shared = left.len().min(right.len());
            let left_start = left.first().map_or(0, |entry| entry.index);
            let right_start = right.first().map_or(0, |entry| entry.index);
            if left_start == right_start {
                assert_eq!(left[..shared], right[..shared], "nodes {pair:?} applied different entries");
            }
        }
    }
}

/// The ordering contract, checked at the moment a message leaves: what it promises is
/// already in durable storage (persists are performed, in order, before it). A vote
/// grant promises the vote; any message of a real term promises that term; an append
/// acknowledgement promises the entries it covers.
fn assert_promise_is_durable(id: NodeId, storage: &DurableState, message: &Message) {
    use crate::MessageBody;
    let hard_state = storage.hard_state;
    let pre_vote_traffic = matches!(
        message.body,
        MessageBody::RequestVote { pre_vote: true, .. }
            | MessageBody::RequestVoteResponse { pre_vote: true, .. }
    );
    if !pre_vote_traffic {
        assert_eq!(hard_state.term, message.term, "node {id} sent {message:?} before persisting its term");
    }
    if let MessageBody::RequestVoteResponse { pre_vote: false, granted: true } = message.body {
        assert_eq!(hard_state.voted_for, Some(message.to), "node {id} granted a vote before persisting it");
    }
    if let MessageBody::RequestVote { pre_vote: false, .. } = message.body {
        assert_eq!(hard_state.voted_for, Some(id), "node {id} campaigned before persisting its own vote");
    }
    if let MessageBody::AppendEntriesResponse { success: true, index, .. } = message.body {
        let snapshot_index =
            storage.snapshot.as_ref().map_or(0, |snapshot| snapshot.meta.last_included_index);
        let durable_last = storage.entries.last().map_or(snapshot_index, |entry| entry.index);
        assert!(
            durable_last >= index,
            "node {id} acknowledged index {index} with only {durable_last} durable"
        );
    }
}

/// Test snapshots carry the applied entries themselves.
pub(crate) fn encode_state_machine(entries: &[Entry]) -> Vec<u8> {
    bincode::serde::encode_to_vec(entries, bincode::config::standard()).expect("encodes")
}

/// Snapshots from the hostile-peer tests carry arbitrary bytes; those restore an empty
/// state machine (a real host would refuse them; the core's behaviour is what is tested).
fn decode_state_machine(bytes: &[u8]) -> Vec<Entry> {
    bincode::serde::decode_from_slice(bytes, bincode::config::standard())
        .map(|(entries, _)| entries)
        .unwrap_or_default()
}

/// Builds a log from a list of terms, one entry per term, indexes from 1.
pub(crate) fn log_from_terms(terms: &[Term]) -> Vec<Entry> {
    terms
        .iter()
        .enumerate()
        .map(|(offset, &term)| Entry {
            term,
            index: offset as u64 + 1,
            payload: crate::EntryPayload::Command(vec![offset as u8].into()),
        })
        .collect()
}

/// A durable state with the given log and term (vote unset).
pub(crate) fn durable(term: Term, log_terms: &[Term]) -> DurableState {
    DurableState {
        hard_state: crate::HardState { term, voted_for: None },
        snapshot: None::<Snapshot>,
        entries: log_from_terms(log_terms),
    }
}
