//! One simulated server: the production node driver (`raft_host::Driver`) over a
//! simulated disk, with the process state the nemesis plays with (crashed, paused,
//! restarted with a new incarnation).

use super::disk::Disk;
use crate::event_queue::Micros;
use crate::state_machine::{CommandCache, Replica};
use raft_core::{Message, NodeId, RaftNode};
use raft_host::{Driver, DriverConfig, WriteId};
use std::cell::RefCell;
use std::rc::Rc;

/// One server of the simulated cluster.
#[derive(Debug)]
pub struct Host {
    /// The node's id (its position plus one).
    pub id: NodeId,
    config: DriverConfig,
    seed: u64,
    /// The running process; `None` while crashed.
    pub driver: Option<Driver<Replica>>,
    /// The disk, which outlives crashes.
    pub disk: Disk,
    /// Bumped on every crash so events meant for an earlier run of the process are dropped.
    pub incarnation: u64,
    /// A paused process handles nothing until it resumes.
    pub paused: bool,
    /// Messages that arrived while paused, handled on resume.
    pub inbox: Vec<Message>,
    /// The newest sync that completed while the process was paused: the driver hears of
    /// it when it resumes (the disk finished meanwhile; the process was not running).
    pub synced_while_paused: Option<WriteId>,
    /// This node's tick period (its clock rate).
    pub tick_micros: Micros,
}

impl Host {
    /// A server that has not started yet (call [`Host::start`]).
    pub fn new(config: DriverConfig, tick_micros: Micros, seed: u64) -> Host {
        Host {
            id: config.raft.id,
            config,
            seed,
            driver: None,
            disk: Disk::default(),
            incarnation: 0,
            paused: false,
            inbox: Vec::new(),
            synced_while_paused: None,
            tick_micros,
        }
    }

    /// The configuration the node starts with; a scripted scenario may change it
    /// before the first start (smaller messages, to split a replication step).
    pub fn config_mut(&mut self) -> &mut DriverConfig {
        &mut self.config
    }

    /// The longest election timeout this node draws, in its own ticks.
    pub fn config_election_timeout_max_ticks(&self) -> u64 {
        self.config.raft.election_timeout_max_ticks
    }

    /// The running node's core, if the process is up.
    pub fn core(&self) -> Option<&RaftNode> {
        self.driver.as_ref().map(Driver::node)
    }

    /// Whether the process is running (crashed nodes are not; paused ones are).
    pub fn is_up(&self) -> bool {
        self.driver.is_some()
    }

    /// Whether the node handles inputs now.
    pub fn is_responsive(&self) -> bool {
        self.driver.is_some() && !self.paused
    }

    /// Starts (or restarts) the process from what is durable, its state machine
    /// decoding commands through the run's shared cache. A driver that wrote a state it
    /// cannot restart from broke its contract; the error says how.
    pub fn start(&mut self, commands: Rc<RefCell<CommandCache>>) -> Result<(), String> {
        assert!(self.driver.is_none(), "node {} is already running", self.id);
        let image = self.disk.durable().clone();
        // Each run of the process gets its own election-timer seed, derived from the node's.
        let seed = self.seed ^ self.incarnation.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let config = self.config.clone();
        let built = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            Driver::start(config, image, seed, Replica::new(commands))
        }))
        .map_err(|payload| {
            format!(
                "node {} panicked while restarting: {}",
                self.id,
                crate::simulation::panic_message(payload.as_ref())
            )
        })?;
        let driver = built
            .map_err(|error| format!("node {} cannot restart from its durable state: {error}", self.id))?;
        self.driver = Some(driver);
        Ok(())
    }

    /// Kills the process: effects not yet performed and unsynced writes are lost (or
    /// torn, by `torn_write_ppm`). Returns how many unsynced writes survived.
    pub fn crash(&mut self, random: &mut crate::random::Random, torn_write_ppm: u32) -> usize {
        assert!(self.driver.is_some(), "node {} is already down", self.id);
        self.driver = None;
        self.incarnation += 1;
        self.paused = false;
        self.inbox.clear();
        self.synced_while_paused = None;
        self.disk.crash(random, torn_write_ppm)
    }
}
