//! One simulated server: a `RaftNode`, its disk, its state machine, and the queue of
//! effects waiting for the disk.
//!
//! The host keeps the core's ordering contract: writes are issued as the core emits
//! them, and every effect that leaves the node (a send, an apply, a read answer, an
//! accepted or rejected request) waits until every write issued before it is durable.
//! The run loop (`simulation`) decides what the effects do; the host only keeps order.

use crate::event_queue::Micros;
use crate::state_machine::Replica;
use crate::storage::Storage;
use raft_core::{Action, Config, Message, NodeId, RaftNode, RestoreError, Role, Term};
use std::collections::VecDeque;
use std::sync::Arc;

/// Election timeouts in [15, 30) ticks of about 10 ms and heartbeats every 3 ticks:
/// several round trips of the heavy profile's network fit in one timeout.
fn node_config(id: NodeId, nodes: usize) -> Config {
    let mut config = Config::new(id, (1..=nodes as NodeId).collect());
    config.election_timeout_min_ticks = 15;
    config.election_timeout_max_ticks = 30;
    config.heartbeat_interval_ticks = 3;
    config
}

/// An effect waiting for the disk: it may happen once writes up to `needs_durable` are durable.
#[derive(Debug)]
pub struct Held {
    /// The sequence number of the last write issued before the effect.
    pub needs_durable: u64,
    /// The effect.
    pub action: Action,
    /// For an `Apply`: how the node decided the commit.
    pub decision: Option<CommitDecision>,
}

/// What a node knew when it emitted an `Apply`: the checkers judge the commit by it.
#[derive(Clone, Debug)]
pub struct CommitDecision {
    /// The voters whose quorum decided the commit (the node's configuration then).
    pub voters: Arc<[NodeId]>,
    /// The node's term if it was leader then: the term the entries were committed in.
    pub leader_term: Option<Term>,
}

/// One server of the simulated cluster.
#[derive(Debug)]
pub struct Host {
    /// The node's id (its position plus one).
    pub id: NodeId,
    config: Config,
    seed: u64,
    /// The running node; `None` while crashed.
    pub node: Option<RaftNode>,
    /// The disk, which outlives crashes.
    pub storage: Storage,
    /// The in-memory state machine, rebuilt from the snapshot on restart.
    pub state_machine: Replica,
    /// Bumped on every crash so events meant for an earlier run of the process are dropped.
    pub incarnation: u64,
    /// Effects waiting for the disk, in the order the core emitted them.
    pub held: VecDeque<Held>,
    /// Whether a sync is under way.
    pub sync_in_flight: bool,
    /// A paused process handles nothing until it resumes.
    pub paused: bool,
    /// Messages that arrived while paused, handled on resume.
    pub inbox: Vec<Message>,
    /// This node's tick period (its clock rate).
    pub tick_micros: Micros,
    /// The node's voter set as of its latest step, shared with the effects it emitted.
    voters: Arc<[NodeId]>,
}

impl Host {
    /// A server that has not started yet (call [`Host::start`]).
    pub fn new(id: NodeId, nodes: usize, tick_micros: Micros, seed: u64) -> Host {
        Host {
            id,
            config: node_config(id, nodes),
            seed,
            node: None,
            storage: Storage::default(),
            state_machine: Replica::default(),
            incarnation: 0,
            held: VecDeque::new(),
            sync_in_flight: false,
            paused: false,
            inbox: Vec::new(),
            tick_micros,
            voters: Arc::from(Vec::new()),
        }
    }

    /// What the running node knows now about committing: its voters (shared, refreshed
    /// only when they change, which is rare) and its term if it leads.
    pub fn commit_decision(&mut self) -> CommitDecision {
        if let Some(node) = self.node.as_ref() {
            if *self.voters != *node.voters() {
                self.voters = Arc::from(node.voters());
            }
        }
        let leader_term = self.node.as_ref().filter(|node| node.role() == Role::Leader).map(RaftNode::term);
        CommitDecision { voters: Arc::clone(&self.voters), leader_term }
    }

    /// Whether the process is running (crashed nodes are not; paused ones are).
    pub fn is_up(&self) -> bool {
        self.node.is_some()
    }

    /// Whether the node handles inputs now.
    pub fn is_responsive(&self) -> bool {
        self.node.is_some() && !self.paused
    }

    /// Starts (or restarts) the process from what is durable. A core that wrote a state
    /// it cannot restart from broke its contract; the error says how.
    pub fn start(&mut self) -> Result<(), String> {
        assert!(self.node.is_none(), "node {} is already running", self.id);
        let durable = self.storage.durable().clone();
        let snapshot_data = durable.snapshot.as_ref().map(|snapshot| snapshot.data.clone());
        // Each run of the process gets its own election-timer seed, derived from the node's.
        let seed = self.seed ^ self.incarnation.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let built = std::panic::catch_unwind(|| RaftNode::new(self.config.clone(), durable, seed)).map_err(
            |payload| {
                format!(
                    "node {} panicked while restarting: {}",
                    self.id,
                    crate::simulation::panic_message(payload.as_ref())
                )
            },
        )?;
        let node = built.map_err(|error: RestoreError| {
            format!("node {} cannot restart from its durable state: {error}", self.id)
        })?;
        self.state_machine = match snapshot_data {
            Some(bytes) => Replica::from_snapshot(&bytes)
                .ok_or_else(|| format!("node {} holds a snapshot its state machine cannot read", self.id))?,
            None => Replica::default(),
        };
        self.node = Some(node);
        Ok(())
    }

    /// Kills the process: effects not yet performed and unsynced writes are lost (or
    /// torn, by `torn_write_ppm`). Returns how many unsynced writes survived.
    pub fn crash(&mut self, random: &mut crate::random::Random, torn_write_ppm: u32) -> usize {
        assert!(self.node.is_some(), "node {} is already down", self.id);
        self.node = None;
        self.incarnation += 1;
        self.held.clear();
        self.sync_in_flight = false;
        self.paused = false;
        self.inbox.clear();
        self.storage.crash(random, torn_write_ppm)
    }
}
