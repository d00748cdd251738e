//! Static configuration of one node, validated before the node is built.

use crate::configuration::{Configuration, ConfigurationError};
use crate::types::NodeId;
use std::fmt;

/// How the leader serves linearizable reads (Raft thesis §6.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadMode {
    /// The leader confirms it is still leader with a heartbeat round to a quorum
    /// before it answers. Safe under any clock behaviour.
    ReadIndex,
    /// The leader answers at once while a quorum has heard from it within the
    /// minimum election timeout. Requires `check_quorum`; safe only if clocks
    /// drift less than the gap between the lease and the election timeout.
    LeaseBased,
}

/// The configuration of one node. Build it with [`Config::new`], adjust the fields,
/// and let [`crate::RaftNode::new`] validate it.
#[derive(Clone, Debug)]
pub struct Config {
    /// This node's id; must appear in `voters` or `learners`.
    pub id: NodeId,
    /// The bootstrap voter set; order does not matter. Membership entries in the log
    /// (and snapshots) override it: see [`crate::RaftNode::configuration`].
    pub voters: Vec<NodeId>,
    /// The bootstrap learners (empty by default): a node started to join as a learner
    /// lists the voters and itself here.
    pub learners: Vec<NodeId>,
    /// The lower bound (inclusive) of the randomized election timeout, in ticks.
    pub election_timeout_min_ticks: u64,
    /// The upper bound (exclusive) of the randomized election timeout, in ticks.
    pub election_timeout_max_ticks: u64,
    /// How often a leader sends heartbeats, in ticks. Must be below the minimum election timeout.
    pub heartbeat_interval_ticks: u64,
    /// Run a pre-election round before bumping the term (Raft thesis §9.6), so a
    /// node rejoining after a partition cannot disrupt a healthy leader.
    pub pre_vote: bool,
    /// A leader that has not heard from a quorum within an election timeout steps down,
    /// and followers that recently heard from a leader ignore vote requests.
    pub check_quorum: bool,
    /// How reads are confirmed.
    pub read_mode: ReadMode,
    /// The most entries one AppendEntries message carries.
    pub max_entries_per_message: u64,
    /// The most entry bytes one AppendEntries message carries (at least one entry is always sent).
    pub max_bytes_per_message: u64,
    /// The most unacknowledged AppendEntries messages in flight to one follower.
    pub max_inflight_appends: u64,
    /// Proposals beyond this many uncommitted entries are rejected, bounding leader memory.
    /// The same bound applies to reads waiting for confirmation.
    pub max_uncommitted_entries: u64,
    /// The largest command a proposal may carry, in bytes.
    pub max_command_bytes: u64,
    /// The most snapshot bytes one `InstallSnapshot` message carries: a snapshot of any
    /// size travels in chunks of this size, one acknowledged before the next leaves.
    pub max_snapshot_chunk_bytes: u64,
}

/// The largest snapshot chunk a config may ask for: well inside the message limit.
pub const MAX_SNAPSHOT_CHUNK_LIMIT: u64 = 16 << 20;

/// The largest command a config may allow: a message carrying one (and the batch it
/// tops) stays well inside a 32-bit frame length and the 1 GiB decode ceiling.
pub const MAX_COMMAND_BYTES_LIMIT: u64 = 512 << 20;

/// Room for an AppendEntries message's own fields and the entries' headers on top of
/// their payload bytes.
const MESSAGE_OVERHEAD_BYTES: u64 = 1 << 20;

/// The hard ceiling on entries in one decoded message, whatever the config says.
/// Anything above it is treated as hostile input.
pub const MAX_ENTRIES_PER_MESSAGE_LIMIT: u64 = 1 << 16;

impl Config {
    /// A configuration with the defaults used by the simulator: 10-tick heartbeats,
    /// election timeouts in [100, 200) ticks, PreVote and CheckQuorum on.
    pub fn new(id: NodeId, voters: Vec<NodeId>) -> Config {
        Config {
            id,
            voters,
            learners: Vec::new(),
            election_timeout_min_ticks: 100,
            election_timeout_max_ticks: 200,
            heartbeat_interval_ticks: 10,
            pre_vote: true,
            check_quorum: true,
            read_mode: ReadMode::ReadIndex,
            max_entries_per_message: 64,
            max_bytes_per_message: 1 << 20,
            max_inflight_appends: 16,
            max_uncommitted_entries: 4096,
            max_command_bytes: 1 << 20,
            max_snapshot_chunk_bytes: 1 << 20,
        }
    }

    /// The largest message a node with this config sends, and so the limit its peers'
    /// decoders must accept (`decode_message_within`). Derived, never below
    /// [`crate::MAX_ENCODED_MESSAGE_BYTES`]: an AppendEntries fills up to
    /// `max_bytes_per_message` and its last entry may be a command of up to
    /// `max_command_bytes`; a snapshot chunk is at most 16 MiB. Every node of a cluster
    /// should share the command limit, or a larger command would be refused by a peer.
    pub fn max_message_bytes(&self) -> usize {
        let entries = self.max_bytes_per_message.saturating_add(self.max_command_bytes);
        let largest = entries.max(MAX_SNAPSHOT_CHUNK_LIMIT).saturating_add(MESSAGE_OVERHEAD_BYTES);
        (crate::MAX_ENCODED_MESSAGE_BYTES as u64).max(largest) as usize
    }

    /// The configuration a node starts from before its log or a snapshot says otherwise.
    pub fn bootstrap_configuration(&self) -> Result<Configuration, ConfigurationError> {
        Configuration::new(self.voters.iter().copied(), self.learners.iter().copied())
    }

    /// Checks that the configuration can work; the error names the offending field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let fail = |field: &'static str, reason: &'static str| Err(ConfigError { field, reason });
        // The lists are sorted by `Configuration::new`, so "not sorted" means a duplicate.
        match self.bootstrap_configuration() {
            Err(ConfigurationError::NoVoters) => return fail("voters", "must list at least one voter"),
            Err(ConfigurationError::NotSorted("voters")) => {
                return fail("voters", "must not list a node twice")
            }
            Err(ConfigurationError::NotSorted(_)) => return fail("learners", "must not list a node twice"),
            Err(ConfigurationError::VoterAndLearner(_)) => return fail("learners", "must not list a voter"),
            Err(ConfigurationError::PromotionOfNonLearner(_)) => unreachable!("a Config promotes nobody"),
            Ok(_) => {}
        }
        if !self.voters.contains(&self.id) && !self.learners.contains(&self.id) {
            return fail("id", "must be one of the voters or learners");
        }
        if self.heartbeat_interval_ticks == 0 {
            return fail("heartbeat_interval_ticks", "must be at least 1");
        }
        if self.election_timeout_min_ticks <= self.heartbeat_interval_ticks {
            return fail("election_timeout_min_ticks", "must be greater than heartbeat_interval_ticks");
        }
        if self.election_timeout_max_ticks <= self.election_timeout_min_ticks {
            return fail("election_timeout_max_ticks", "must be greater than election_timeout_min_ticks");
        }
        if self.max_snapshot_chunk_bytes == 0 || self.max_snapshot_chunk_bytes > MAX_SNAPSHOT_CHUNK_LIMIT {
            return fail("max_snapshot_chunk_bytes", "must be between 1 and 16 MiB");
        }
        if self.max_entries_per_message == 0 {
            return fail("max_entries_per_message", "must be at least 1");
        }
        if self.max_entries_per_message > MAX_ENTRIES_PER_MESSAGE_LIMIT {
            return fail("max_entries_per_message", "must be at most 65536");
        }
        if self.max_bytes_per_message == 0 {
            return fail("max_bytes_per_message", "must be at least 1");
        }
        if self.max_inflight_appends == 0 {
            return fail("max_inflight_appends", "must be at least 1");
        }
        if self.max_uncommitted_entries == 0 {
            return fail("max_uncommitted_entries", "must be at least 1");
        }
        if self.max_command_bytes == 0 || self.max_command_bytes > MAX_COMMAND_BYTES_LIMIT {
            return fail("max_command_bytes", "must be between 1 and 512 MiB");
        }
        if self.max_bytes_per_message > MAX_COMMAND_BYTES_LIMIT {
            return fail("max_bytes_per_message", "must be at most 512 MiB");
        }
        if self.read_mode == ReadMode::LeaseBased && !self.check_quorum {
            return fail("read_mode", "LeaseBased reads require check_quorum");
        }
        Ok(())
    }
}

/// A configuration that cannot work, naming the field at fault.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// The name of the offending `Config` field.
    pub field: &'static str,
    /// Why the value is refused.
    pub reason: &'static str,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid config: `{}` {}", self.field, self.reason)
    }
}

impl std::error::Error for ConfigError {}
