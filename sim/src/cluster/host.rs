//! One simulated server: the production node driver (`raft_host::Driver`) over the
//! production storage engine (`raft_storage::Storage`) on a file system in memory that
//! crashes as a real one does, with the process state the nemesis plays with
//! (crashed, paused, restarted with a new incarnation). Beside the real storage, the
//! model [`Disk`] says what must be durable: recovery is held to it at every restart.

use super::disk::Disk;
use crate::event_queue::Micros;
use crate::random::Random;
use crate::state_machine::{CommandCache, Replica};
use kv::Query;
use raft_core::{DurableState, Message, NodeId, RaftNode, RequestId};
use raft_host::{Driver, DriverConfig, Request, Write, WriteId};
use raft_storage::{MemFs, SnapshotFiles, Storage, StorageOptions};
use std::cell::RefCell;
use std::path::PathBuf;
use std::rc::Rc;

/// WAL segments in the simulator: small, so every run rotates and checkpoints often.
pub(super) const SEGMENT_BYTES: u64 = 4 << 10;

/// Why a node could not start.
#[derive(Debug)]
pub enum StartError {
    /// The storage refused its data directory: damage it was right to refuse if some
    /// was injected, a finding if not.
    Refused(String),
    /// A finding: recovery returned something other than what was durable, or the
    /// driver could not start from it.
    Broken(String),
}

/// One server of the simulated cluster.
#[derive(Debug)]
pub struct Host {
    /// The node's id (its position plus one).
    pub id: NodeId,
    config: DriverConfig,
    seed: u64,
    /// The session policy its state machine's clock entries carry when it leads.
    pub session_policy: kv::session::SessionPolicy,
    /// The running process; `None` while crashed.
    pub driver: Option<Driver<Replica, SnapshotFiles<MemFs>>>,
    /// The model of the disk, which outlives crashes: what must be durable.
    pub disk: Disk,
    /// The node's file system, which outlives crashes.
    pub fs: MemFs,
    /// The storage engine of the running process; `None` while down.
    pub storage: Option<Storage<MemFs>>,
    /// Bits flipped in this node's durable files since it last started.
    pub damage_injected: u64,
    /// Whether the storage refused the node's data directory: it stays down.
    pub refused: bool,
    /// Bumped on every crash so events meant for an earlier run of the process are dropped.
    pub incarnation: u64,
    /// A paused process handles nothing until it resumes.
    pub paused: bool,
    /// Messages that arrived while paused, handled on resume.
    pub inbox: Vec<Message>,
    /// Client requests of the round under way (or that arrived while paused), handed
    /// to the driver together.
    pub requests: Vec<(RequestId, Request<Query>)>,
    /// Whether the end of a request round is queued.
    pub round_queued: bool,
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
            session_policy: kv::session::SessionPolicy::default(),
            driver: None,
            disk: Disk::default(),
            fs: MemFs::new(),
            storage: None,
            damage_injected: 0,
            refused: false,
            incarnation: 0,
            paused: false,
            inbox: Vec::new(),
            requests: Vec::new(),
            round_queued: false,
            synced_while_paused: None,
            tick_micros,
        }
    }

    /// The driver configuration the node runs with.
    pub fn config(&self) -> &DriverConfig {
        &self.config
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

    /// Where the node keeps its files.
    pub fn data_dir(&self) -> PathBuf {
        PathBuf::from(format!("/node-{}", self.id))
    }

    /// Opens the node's storage: recovery reads what the file system kept. Opening is
    /// synchronous, as on a real server: its syncs complete before it returns.
    fn open_storage(&mut self) -> Result<DurableState, String> {
        let options = StorageOptions { segment_bytes: SEGMENT_BYTES };
        let opened = Storage::open(self.fs.clone(), &self.data_dir(), self.id, options);
        self.fs.complete_syncs(self.fs.seal_syncs());
        let (storage, recovered, _) = opened.map_err(|error| error.to_string())?;
        self.storage = Some(storage);
        Ok(recovered)
    }

    /// Starts (or restarts) the process from what its storage recovers, its state
    /// machine decoding commands through the run's shared cache. Recovery must return
    /// what was durable (plus a prefix of what was in flight at a crash); a driver that
    /// wrote a state it cannot restart from broke its contract. The error says how.
    pub fn start(&mut self, commands: Rc<RefCell<CommandCache>>) -> Result<(), StartError> {
        assert!(self.driver.is_none(), "node {} is already running", self.id);
        let recovered = self.open_storage().map_err(|why| {
            self.refused = true;
            StartError::Refused(format!("node {}: {why}", self.id))
        })?;
        self.disk.accept_recovered(&recovered).map_err(|why| {
            let damage = match self.damage_injected {
                0 => String::new(),
                flips => format!(" ({flips} bits flipped in its files, and recovery did not refuse them)"),
            };
            StartError::Broken(format!("node {}: {why}{damage}", self.id))
        })?;
        let image = recovered;
        // Each run of the process gets its own election-timer seed, derived from the node's.
        let seed = self.seed ^ self.incarnation.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let config = self.config.clone();
        let snapshots = SnapshotFiles::new(self.fs.clone(), &self.data_dir());
        let built = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            Driver::start(config, image, seed, Replica::new(commands, self.session_policy), snapshots)
        }))
        .map_err(|payload| {
            StartError::Broken(format!(
                "node {} panicked while restarting: {}",
                self.id,
                crate::naming::panic_message(payload.as_ref())
            ))
        })?;
        let driver = built.map_err(|error| match error {
            // The snapshot's bytes are checked as the machine restores from them: a
            // damaged file is refused here, as recovery refuses a damaged log (a
            // finding unless damage was injected).
            raft_host::StartError::StateMachine(why) => {
                self.refused = true;
                StartError::Refused(format!("node {}: {why}", self.id))
            }
            error => {
                StartError::Broken(format!("node {} cannot restart from its durable state: {error}", self.id))
            }
        })?;
        // Damage counts until the whole start is through: the snapshot's bytes are
        // checked by the restore, after recovery.
        self.damage_injected = 0;
        self.driver = Some(driver);
        Ok(())
    }

    /// Whether every configuration this node holds or may recover (its running core's,
    /// or, while down, every membership entry and snapshot on its disk, the writes in
    /// flight at its crash included) has `voters` voters.
    pub fn every_configuration_has_voters(&self, voters: usize) -> bool {
        if let Some(core) = self.core() {
            return core.voters().len() == voters;
        }
        let durable = self.disk.durable();
        let snapshot_ok = durable
            .snapshot
            .as_ref()
            .is_none_or(|snapshot| snapshot.configuration.incoming_voters().len() == voters);
        let entry_ok = |entry: &raft_core::Entry| match &entry.payload {
            raft_core::EntryPayload::MembershipChange { configuration, .. } => {
                configuration.incoming_voters().len() == voters
            }
            _ => true,
        };
        let lost_ok = self.disk.lost_writes().iter().all(|write| match write {
            Write::Entries(entries) => entries.iter().all(entry_ok),
            Write::Install(snapshot) | Write::Compact(snapshot) => {
                snapshot.configuration.incoming_voters().len() == voters
            }
            Write::HardState(_) | Write::Truncate { .. } => true,
        });
        snapshot_ok && durable.entries.iter().all(entry_ok) && lost_ok
    }

    /// Replaces the node's disk with `state`, all durable (a scripted scenario's setup):
    /// written through the real storage on a new file system. Only while the node is down.
    pub fn restore_disk(&mut self, state: DurableState) -> Result<(), String> {
        assert!(self.driver.is_none(), "node {} is running", self.id);
        self.fs = MemFs::new();
        self.open_storage()?;
        let storage = self.storage.as_mut().expect("just opened");
        let mut writes = vec![Write::HardState(state.hard_state)];
        writes.extend(state.snapshot.clone().map(Write::Install));
        writes.push(Write::Entries(state.entries.clone()));
        for write in
            writes.iter().filter(|write| !matches!(write, Write::Entries(entries) if entries.is_empty()))
        {
            storage.write(write).map_err(|error| error.to_string())?;
        }
        storage.sync().map_err(|error| error.to_string())?;
        self.fs.complete_syncs(self.fs.seal_syncs());
        self.storage = None;
        self.disk.restore(state);
        Ok(())
    }

    /// Kills the process and the machine under it: effects not yet performed are lost,
    /// and the file system keeps what a power loss would (unsynced bytes lost, or torn
    /// at any byte with probability `torn_write_ppm`).
    pub fn crash(&mut self, random: &mut Random, torn_write_ppm: u32) {
        assert!(self.driver.is_some(), "node {} is already down", self.id);
        self.driver = None;
        self.storage = None;
        self.incarnation += 1;
        self.paused = false;
        self.inbox.clear();
        // Requests the process had not handled die with it; their clients time out.
        self.requests.clear();
        self.round_queued = false;
        self.synced_while_paused = None;
        let torn = random.chance(torn_write_ppm);
        self.fs.crash(&mut |below| random.below(below), torn);
        self.disk.crash();
    }
}
