//! What a run is asked to do, and what it found.

use crate::checkers::Violation;
use crate::event_queue::Micros;
use crate::faults::FaultProfile;
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
    /// A deliberately broken host, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_bug: Option<HostBug>,
}

impl RunOptions {
    /// Options with the defaults of `sim run`.
    pub fn new(seed: u64, nodes: usize, faults: FaultProfile) -> RunOptions {
        RunOptions { seed, nodes, faults, ticks: DEFAULT_TICKS, host_bug: None }
    }

    /// Refuses options no run can honour, naming the offending one.
    pub fn validate(&self) -> Result<(), String> {
        if self.nodes == 0 || self.nodes > MAX_NODES {
            return Err(format!("--nodes must be between 1 and {MAX_NODES}, got {}", self.nodes));
        }
        if self.ticks == 0 || self.ticks > MAX_TICKS {
            return Err(format!("--ticks must be between 1 and {MAX_TICKS}, got {}", self.ticks));
        }
        Ok(())
    }

    /// The command line that runs these options again.
    pub fn command_line(&self) -> String {
        let mut line = format!(
            "cargo run --release -p sim -- run --seed {} --nodes {} --faults {} --ticks {}",
            self.seed, self.nodes, self.faults, self.ticks
        );
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
}

impl Verdict {
    /// The process exit code for this verdict (DESIGN.md: 0, 1 safety, 3 liveness).
    pub fn exit_code(self) -> i32 {
        match self {
            Verdict::Pass => 0,
            Verdict::Safety => 1,
            Verdict::Liveness => 3,
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Verdict::Pass => "pass",
            Verdict::Safety => "safety violation",
            Verdict::Liveness => "liveness failure",
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
