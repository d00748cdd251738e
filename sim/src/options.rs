//! What a run is asked to do, and what it found.

use crate::checkers::Violation;
use crate::event_queue::Micros;
use crate::faults::FaultProfile;
use crate::history::OperationStats;
use crate::network::NetworkStats;
use serde::{Deserialize, Serialize};
use std::fmt;

/// How long the healed cluster has to elect a leader and commit a proposal everywhere.
pub const LIVENESS_BOUND_MICROS: Micros = 20_000_000;

/// The most nodes a simulated cluster may have.
pub const MAX_NODES: usize = 15;
/// The longest safety phase, in base ticks: 10,000 virtual seconds (2.8 virtual hours).
/// Measured on a 2-core machine: a heavy 5-node run with 3 clients of this length takes
/// about 5 s and 200 MB; 15 nodes about 15 s. Memory grows with the run (the history and
/// the checkers keep every operation and commit), so longer soaks are more seeds, not
/// longer ones.
pub const MAX_TICKS: u64 = 1_000_000;
/// Events per node per base tick per (nodes + clients + 1) beyond which a run is a storm
/// (see [`RunOptions::event_bound`]).
pub const STORM_EVENTS_PER_SLOT: u64 = 32;
/// The default safety phase: 6,000 base ticks of 10 ms, one virtual minute.
pub const DEFAULT_TICKS: u64 = 6_000;

/// A deliberately broken host, to see the checkers catch it (a self-test of the testbed).
/// All but `Retransmit` break a rule of the production node driver (`raft-host`'s
/// `Misbehaviour`); `Retransmit` breaks the simulated transport.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HostBug {
    /// Sends, applies and answers without waiting for writes to be durable, so a crash
    /// can take back a vote or an acknowledged entry.
    SendBeforeSync,
    /// Never ticks any node, so no election ever starts: a liveness failure.
    NoTicks,
    /// Tells each node its log is durable as soon as it is written, before the sync: a
    /// leader counts entries a crash can still take toward a commit.
    ReportBeforeSync,
    /// The transport sends every message again each time it delivers it, forever (a
    /// retransmission loop with no acknowledgement). Safe for Raft, which tolerates
    /// duplicates, but the messages in flight pile up into a storm that the run's event
    /// bound ends as a liveness failure.
    Retransmit,
    /// Runs every core without PreVote and CheckQuorum (and so without the leader lease
    /// in which voters ignore campaigns): a leader cut off from a quorum stays in office,
    /// and a removed or rejoining node can depose a healthy leader. Safe, but the
    /// availability rules catch it.
    Unprotected,
}

impl HostBug {
    /// The name the command line uses.
    pub fn name(self) -> &'static str {
        match self {
            HostBug::SendBeforeSync => "send-before-sync",
            HostBug::NoTicks => "no-ticks",
            HostBug::ReportBeforeSync => "report-before-sync",
            HostBug::Retransmit => "retransmit",
            HostBug::Unprotected => "unprotected",
        }
    }
}

impl std::str::FromStr for HostBug {
    type Err = String;
    fn from_str(text: &str) -> Result<HostBug, String> {
        match text {
            "send-before-sync" => Ok(HostBug::SendBeforeSync),
            "no-ticks" => Ok(HostBug::NoTicks),
            "report-before-sync" => Ok(HostBug::ReportBeforeSync),
            "retransmit" => Ok(HostBug::Retransmit),
            "unprotected" => Ok(HostBug::Unprotected),
            other => Err(format!(
                "unknown host bug {other:?}: expected send-before-sync, no-ticks, report-before-sync, retransmit or unprotected"
            )),
        }
    }
}

/// The most simulated clients. Measured: with 100 clients a default-length heavy run on
/// 5 nodes takes 1 to 2 s and its history is decided on every seed tried (20 of 20);
/// swarm, which may put every client on one key, leaves 5 of 20 undecided (exit 4). At
/// 200 and more, heavy runs end undecided too: the linearizability search cannot untangle
/// that many concurrent operations per key within its budget.
pub const MAX_CLIENTS: usize = 100;
/// The most client-ticks (clients × ticks) a run may ask for: the work and memory of a
/// run grow with both. 100 clients for 60,000 ticks (10 virtual minutes) on 15 nodes
/// take about 20 s and 700 MB.
pub const MAX_CLIENT_TICKS: u64 = 6_000_000;
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
        let client_ticks = self.clients as u64 * self.ticks;
        if client_ticks > MAX_CLIENT_TICKS {
            return Err(format!(
                "--clients {} with --ticks {} is {client_ticks} client-ticks, more than the {MAX_CLIENT_TICKS} a run may take (its history and checkers grow with both); use fewer clients or a shorter run (at most {} ticks with {} clients)",
                self.clients,
                self.ticks,
                MAX_CLIENT_TICKS / self.clients as u64,
                self.clients
            ));
        }
        Ok(())
    }

    /// The most events the run may take before it counts as a storm: a liveness
    /// failure. Derived from the run's length (the safety phase and the liveness bound)
    /// and its size: a node's clock, its heartbeats to each peer and each client's
    /// traffic to it add events per tick. Measured over 8,000 seeds of every profile, 1
    /// to 15 nodes and 0 to 100 clients, a run takes at most 2.9 events per node per
    /// base tick (liveness phase included) per (nodes + clients + 1); the bound allows
    /// [`STORM_EVENTS_PER_SLOT`], eleven times that. A standard run (6,000 ticks, 5
    /// nodes, 3 clients) stops at 11.5 million events, a few seconds of a storm.
    pub fn event_bound(&self) -> u64 {
        let ticks = self.ticks + LIVENESS_BOUND_MICROS / crate::faults::BASE_TICK_MICROS;
        let slots = self.nodes as u64 * (self.nodes as u64 + self.clients as u64 + 1);
        STORM_EVENTS_PER_SLOT.saturating_mul(ticks).saturating_mul(slots)
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
    /// The run was stopped (Ctrl-C) before it reached a verdict.
    Interrupted,
}

impl Verdict {
    /// The process exit code for this verdict (ARCHITECTURE.md): 0 pass, 1 safety, 3
    /// liveness, 4 when the linearizability check could not decide (which must not read
    /// as a pass), 130 when the run was interrupted.
    pub fn exit_code(self) -> i32 {
        match self {
            Verdict::Pass => 0,
            Verdict::Safety => 1,
            Verdict::Liveness => 3,
            Verdict::Unknown => 4,
            // 128 + SIGINT, what a shell reports for a process stopped by Ctrl-C.
            Verdict::Interrupted => 130,
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
            Verdict::Interrupted => "interrupted",
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
    /// Entries per AppendEntries that carried any, on average: how well proposals made
    /// together were batched.
    #[serde(default)]
    pub entries_per_append: f64,
    /// Simulated clients.
    #[serde(default)]
    pub clients: usize,
    /// How they read.
    #[serde(default)]
    pub reads: ReadMode,
    /// What the clients did.
    #[serde(default)]
    pub operations: OperationStats,
    /// What the committed membership changes did.
    #[serde(default)]
    pub membership: crate::checkers::MembershipStats,
    /// Snapshots installed that arrived in more than one chunk.
    #[serde(default)]
    pub chunked_installs: u64,
    /// Clients told their session had expired (idle past the timeout, or evicted by
    /// the bound), who opened a new one.
    #[serde(default)]
    pub sessions_expired: u64,
    /// Keys whose time to live ran out, as the replica that counted most since its
    /// last start removed them.
    #[serde(default)]
    pub keys_expired: u64,
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
