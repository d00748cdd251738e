//! What a run is asked to do, and what it found.

use crate::checkers::Violation;
use crate::event_queue::Micros;
use crate::faults::FaultProfile;
use crate::history::OperationStats;
use crate::network::NetworkStats;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The most nodes a simulated cluster may have.
pub const MAX_NODES: usize = 15;
/// The longest safety phase, in base ticks (about 11.5 virtual days).
pub const MAX_TICKS: u64 = 100_000_000;
/// The default safety phase: 6,000 base ticks of 10 ms, one virtual minute.
pub const DEFAULT_TICKS: u64 = 6_000;

/// A deliberately broken host, to see the checkers catch it (a self-test of the testbed).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HostBug {
    /// Sends, applies and answers without waiting for writes to be durable, so a crash
    /// can take back a vote or an acknowledged entry.
    SendBeforeSync,
    /// Never ticks any node, so no election ever starts: a liveness failure.
    NoTicks,
}

impl HostBug {
    /// The name the command line uses.
    pub fn name(self) -> &'static str {
        match self {
            HostBug::SendBeforeSync => "send-before-sync",
            HostBug::NoTicks => "no-ticks",
        }
    }
}

impl std::str::FromStr for HostBug {
    type Err = String;
    fn from_str(text: &str) -> Result<HostBug, String> {
        match text {
            "send-before-sync" => Ok(HostBug::SendBeforeSync),
            "no-ticks" => Ok(HostBug::NoTicks),
            other => Err(format!("unknown host bug {other:?}: expected send-before-sync or no-ticks")),
        }
    }
}

/// The most simulated clients.
pub const MAX_CLIENTS: usize = 1_000;
/// The default number of simulated clients.
pub const DEFAULT_CLIENTS: usize = 3;

fn default_clients() -> usize {
    DEFAULT_CLIENTS
}

/// How clients read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReadMode {
    /// Through the leader with ReadIndex (Raft thesis §6.4): linearizable.
    #[default]
    Index,
    /// Any node answers from its own state at once, leader or not, confirmed or not:
    /// deliberately stale under partitions, so the linearizability checker has
    /// something to catch.
    Local,
}

impl ReadMode {
    /// The name the command line uses.
    pub fn name(self) -> &'static str {
        match self {
            ReadMode::Index => "index",
            ReadMode::Local => "local",
        }
    }
}

impl std::str::FromStr for ReadMode {
    type Err = String;
    fn from_str(text: &str) -> Result<ReadMode, String> {
        match text {
            "index" => Ok(ReadMode::Index),
            "local" => Ok(ReadMode::Local),
            other => Err(format!("unknown read mode {other:?}: expected index or local")),
        }
    }
}

/// Everything that, with the seed, decides a run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunOptions {
    /// The seed every random choice derives from.
    pub seed: u64,
    /// Cluster size.
    pub nodes: usize,
    /// The fault profile the plan is drawn from.
    pub faults: FaultProfile,
    /// Length of the safety phase in base ticks of 10 virtual milliseconds.
    pub ticks: u64,
    /// Simulated key-value clients, each with one operation in flight at a time.
    #[serde(default = "default_clients")]
    pub clients: usize,
    /// How the clients read.
    #[serde(default)]
    pub reads: ReadMode,
    /// A deliberately broken host, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_bug: Option<HostBug>,
}

impl RunOptions {
    /// Options with the defaults of `sim run`.
    pub fn new(seed: u64, nodes: usize, faults: FaultProfile) -> RunOptions {
        RunOptions {
            seed,
            nodes,
            faults,
            ticks: DEFAULT_TICKS,
            clients: DEFAULT_CLIENTS,
            reads: ReadMode::Index,
            host_bug: None,
        }
    }

    /// Refuses options no run can honour, naming the offending one.
    pub fn validate(&self) -> Result<(), String> {
        if self.nodes == 0 || self.nodes > MAX_NODES {
            return Err(format!("--nodes must be between 1 and {MAX_NODES}, got {}", self.nodes));
        }
        if self.ticks == 0 || self.ticks > MAX_TICKS {
            return Err(format!("--ticks must be between 1 and {MAX_TICKS}, got {}", self.ticks));
        }
        if self.clients > MAX_CLIENTS {
            return Err(format!("--clients must be at most {MAX_CLIENTS}, got {}", self.clients));
        }
        Ok(())
    }

    /// The command line that runs these options again.
    pub fn command_line(&self) -> String {
        let mut line = format!(
            "cargo run --release -p sim -- run --seed {} --nodes {} --faults {} --ticks {} --clients {}",
            self.seed, self.nodes, self.faults, self.ticks, self.clients
        );
        if self.reads != ReadMode::Index {
            line.push_str(&format!(" --reads {}", self.reads.name()));
        }
        if let Some(bug) = self.host_bug {
            line.push_str(&format!(" --host-bug {}", bug.name()));
        }
        line
    }
}

/// How a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Every check held and the cluster recovered.
    Pass,
    /// A safety invariant broke.
    Safety,
    /// The cluster did not recover within the liveness bound.
    Liveness,
    /// The linearizability search ran out of steps: neither pass nor fail.
    Unknown,
}

impl Verdict {
    /// The process exit code for this verdict (DESIGN.md: 0, 1 safety, 3 liveness; and
    /// 4 when the linearizability check could not decide, which must not read as a pass).
    pub fn exit_code(self) -> i32 {
        match self {
            Verdict::Pass => 0,
            Verdict::Safety => 1,
            Verdict::Liveness => 3,
            Verdict::Unknown => 4,
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Verdict::Pass => "pass",
            Verdict::Safety => "safety violation",
            Verdict::Liveness => "liveness failure",
            Verdict::Unknown => "unknown (linearizability undecided)",
        })
    }
}

/// A broken invariant and when it broke.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// The invariant and the nodes involved.
    #[serde(flatten)]
    pub violation: Violation,
    /// Virtual time of the event that broke it.
    pub time_us: Micros,
}

/// What a run found, and what it cost.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunReport {
    /// The seed.
    pub seed: u64,
    /// Cluster size.
    pub nodes: usize,
    /// The fault profile.
    pub faults: FaultProfile,
    /// Length of the safety phase in base ticks.
    pub ticks: u64,
    /// How the run ended.
    pub verdict: Verdict,
    /// What broke, if anything.
    pub violation: Option<Failure>,
    /// Events simulated.
    pub events: u64,
    /// Virtual time at the end of the run.
    pub virtual_time_us: Micros,
    /// Entries committed (applied by some node).
    pub commits: u64,
    /// Terms that had a leader.
    pub elections: u64,
    /// Crashes.
    pub crashes: u64,
    /// Messages handed to the network.
    pub messages_sent: u64,
    /// Messages dropped by cuts or lost.
    pub messages_dropped: u64,
    /// Simulated clients.
    #[serde(default)]
    pub clients: usize,
    /// How they read.
    #[serde(default)]
    pub reads: ReadMode,
    /// What the clients did.
    #[serde(default)]
    pub operations: OperationStats,
    /// The linearizability verdict: "linearizable", "violated", "unknown", or "not
    /// checked" (the run failed before its end, or had no clients).
    #[serde(default)]
    pub linearizability: String,
    /// The trace hash: equal for equal runs.
    pub trace_hash: String,
    /// Wall-clock time of the run in milliseconds (the only field that varies between equal runs).
    pub wall_time_ms: f64,
}

impl RunReport {
    pub(crate) fn network(&mut self, stats: NetworkStats) {
        self.messages_sent = stats.sent;
        self.messages_dropped = stats.cut + stats.lost;
    }
}
