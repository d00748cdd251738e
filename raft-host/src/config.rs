//! How a driver is set up.

use raft_core::Config;

/// The driver's settings: the core's, and the host policies around it.
#[derive(Clone, Debug)]
pub struct DriverConfig {
    /// The core's configuration (this node's id, the bootstrap voters, timeouts, ...).
    pub raft: Config,
    /// Snapshot the state machine and compact the log once this many applied entries
    /// follow the last snapshot; 0 never compacts.
    pub compaction_threshold_entries: u64,
    /// A request still waiting after this many ticks is answered
    /// [`crate::Answer::Unknown`], so no client waits forever (a leader cut off without
    /// CheckQuorum may keep leading and never commit); 0 waits as long as it takes.
    pub request_timeout_ticks: u64,
    /// How much time one tick stands for, in milliseconds: the leader's log time
    /// advances by this much per tick (see [`crate::StateMachine::housekeeping`]).
    pub tick_millis: u64,
    /// Ask the state machine for a housekeeping command this often, on the leader;
    /// 0 never.
    pub housekeeping_interval_ticks: u64,
    /// Emit [`crate::Output::Event`]s for an observer (the simulator's checkers).
    pub observe: bool,
    /// Deliberately break one of the driver's rules, to see the checkers catch it.
    /// Never set outside tests of the testers.
    pub misbehaviour: Option<Misbehaviour>,
}

impl DriverConfig {
    /// The defaults around `raft`: compaction every 1,000 entries, requests answered
    /// within 20 maximum election timeouts, ticks of 10 ms, housekeeping every 100
    /// ticks, no observation, no misbehaviour.
    pub fn new(raft: Config) -> DriverConfig {
        let request_timeout_ticks = 20 * raft.election_timeout_max_ticks;
        DriverConfig {
            raft,
            compaction_threshold_entries: 1_000,
            request_timeout_ticks,
            tick_millis: 10,
            housekeeping_interval_ticks: 100,
            observe: false,
            misbehaviour: None,
        }
    }
}

/// A rule of the driver's broken on purpose (a self-test of the testbed): each makes a
/// correct core unsafe or unable to make progress, and the simulator must notice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Misbehaviour {
    /// Sends, applies and answers without waiting for the writes before them to be
    /// durable: a crash can take back a vote or an acknowledged entry.
    SendBeforeSync,
    /// Drops every tick: no election ever starts, nothing happens.
    IgnoreTicks,
    /// Tells the core its log is durable as soon as it is written, before any sync:
    /// a leader then counts entries toward a commit that a crash can still take.
    ReportBeforeSync,
}
