//! Repro files: a failing run, saved so it can be replayed anywhere.
//!
//! A repro file is JSON, self-describing (`format`, `version`), and holds everything a
//! run depends on: the options (seed included) and the full fault plan. Replaying runs
//! the saved plan rather than drawing it again, so a future `sim shrink` can edit the
//! schedule and the file still means what it says.

use crate::faults::{Fault, FaultPlan, Partition, Target};
use crate::options::{Failure, RunOptions, RunReport, Verdict};
use crate::random::PARTS_PER_MILLION;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::{Path, PathBuf};

/// The `format` field of every repro file.
pub const REPRO_FORMAT: &str = "raft-sim-repro";
/// The version this build writes and reads. Version 3: the nodes run the production
/// node driver (`raft-host`), so a seed's run differs from version 2's.
pub const REPRO_VERSION: u64 = 3;

/// A saved run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReproFile {
    /// Always [`REPRO_FORMAT`].
    pub format: String,
    /// Always [`REPRO_VERSION`] for files this build writes.
    pub version: u64,
    /// The command line that reproduces the run by drawing the plan from the seed.
    pub reproduce: String,
    /// The run's options, seed included.
    pub options: RunOptions,
    /// The fault plan the run used.
    pub plan: FaultPlan,
    /// The verdict the run reached.
    pub verdict: Verdict,
    /// What broke.
    pub violation: Option<Failure>,
    /// The run's trace hash; a faithful replay has the same.
    pub trace_hash: String,
    /// What the run is remembered for (a regression corpus entry says what bug it found).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl ReproFile {
    /// The repro file of a finished run.
    pub fn new(options: &RunOptions, plan: &FaultPlan, report: &RunReport) -> ReproFile {
        ReproFile {
            format: REPRO_FORMAT.to_string(),
            version: REPRO_VERSION,
            reproduce: options.command_line(),
            options: options.clone(),
            plan: plan.clone(),
            verdict: report.verdict,
            violation: report.violation.clone(),
            trace_hash: report.trace_hash.clone(),
            note: None,
        }
    }

    /// Where [`ReproFile::save`] puts the repro file of `seed` in `directory`.
    pub fn path_in(directory: &Path, seed: u64) -> PathBuf {
        directory.join(format!("sim-repro-{seed}.json"))
    }

    /// Writes the file as `sim-repro-<seed>.json` in `directory` (created if need be),
    /// all at once: an existing file is replaced only by a complete one. Returns its
    /// path, or what went wrong.
    pub fn save(&self, directory: &Path) -> Result<PathBuf, String> {
        std::fs::create_dir_all(directory)
            .map_err(|error| format!("cannot create the repro directory {}: {error}", directory.display()))?;
        self.save_as(&ReproFile::path_in(directory, self.options.seed))
    }

    /// Writes the file at `path`, all at once. Returns its path, or what went wrong.
    pub fn save_as(&self, path: &Path) -> Result<PathBuf, String> {
        let text = serde_json::to_string_pretty(self).expect("repro files serialize") + "\n";
        crate::output::write_atomically(path, text.as_bytes(), "repro")
    }
}

/// Why a repro file cannot be replayed.
#[derive(Debug)]
pub enum ReproError {
    /// The file could not be read.
    Unreadable(std::io::Error),
    /// The file is not JSON, or is truncated.
    NotJson(serde_json::Error),
    /// The file is JSON but not a repro file.
    WrongFormat(String),
    /// The file was written by another version of the format.
    WrongVersion(u64),
    /// The file has the right version but its contents do not fit together.
    Invalid(String),
}

impl fmt::Display for ReproError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReproError::Unreadable(error) => write!(f, "cannot read the repro file: {error}"),
            ReproError::NotJson(error) => {
                write!(f, "the repro file is not valid JSON (corrupt or truncated?): {error}")
            }
            ReproError::WrongFormat(found) => {
                write!(f, "not a repro file: expected format {REPRO_FORMAT:?}, found {found}")
            }
            ReproError::WrongVersion(version) => write!(
                f,
                "the repro file has format version {version}; this build of sim reads version {REPRO_VERSION}"
            ),
            ReproError::Invalid(reason) => write!(f, "the repro file is not valid: {reason}"),
        }
    }
}

impl std::error::Error for ReproError {}

/// Reads and checks a repro file.
pub fn load(path: &Path) -> Result<ReproFile, ReproError> {
    let text = std::fs::read_to_string(path).map_err(ReproError::Unreadable)?;
    parse(&text)
}

/// Parses and checks the text of a repro file.
pub fn parse(text: &str) -> Result<ReproFile, ReproError> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(ReproError::NotJson)?;
    // Format and version first, so a file from another version gets a clear message
    // instead of a complaint about some field that moved.
    match value.get("format") {
        Some(serde_json::Value::String(format)) if format == REPRO_FORMAT => {}
        Some(other) => return Err(ReproError::WrongFormat(other.to_string())),
        None => return Err(ReproError::WrongFormat("no format field".to_string())),
    }
    match value.get("version").and_then(serde_json::Value::as_u64) {
        Some(REPRO_VERSION) => {}
        Some(version) => return Err(ReproError::WrongVersion(version)),
        None => return Err(ReproError::Invalid("the version field is missing or not a number".to_string())),
    }
    let file: ReproFile =
        serde_json::from_value(value).map_err(|error| ReproError::Invalid(error.to_string()))?;
    file.options.validate().map_err(ReproError::Invalid)?;
    check_plan(&file.options, &file.plan).map_err(ReproError::Invalid)?;
    Ok(file)
}

/// The longest delay, latency or gap a plan may ask for: one virtual day, far beyond any
/// useful run and far from overflowing the clock.
const MAX_PLAN_MICROS: u64 = 86_400_000_000;

/// Checks that `plan` fits `options` and that every number is in range, so a hand-edited
/// or corrupt plan gets an error rather than a panic in the middle of a run.
pub fn check_plan(options: &RunOptions, plan: &FaultPlan) -> Result<(), String> {
    let nodes = options.nodes;
    if plan.tick_micros.len() != nodes {
        return Err(format!(
            "the plan has clocks for {} nodes, the options say {nodes}",
            plan.tick_micros.len()
        ));
    }
    let in_range = |name: &str, value: u64, low: u64, high: u64| {
        if (low..=high).contains(&value) {
            Ok(())
        } else {
            Err(format!("{name} is {value}, outside {low}..={high}"))
        }
    };
    for tick in &plan.tick_micros {
        in_range("a tick period", *tick, 1, MAX_PLAN_MICROS)?;
    }
    let network = &plan.network;
    in_range("delay_min_micros", network.delay_min_micros, 0, MAX_PLAN_MICROS)?;
    in_range("delay_jitter_micros", network.delay_jitter_micros, 0, MAX_PLAN_MICROS)?;
    in_range("delay_tail_micros", network.delay_tail_micros, 0, MAX_PLAN_MICROS)?;
    in_range("duplicate_late_micros", network.duplicate_late_micros, 0, MAX_PLAN_MICROS)?;
    let ppm = u64::from(PARTS_PER_MILLION);
    for (name, value) in [
        ("delay_tail_ppm", network.delay_tail_ppm),
        ("loss_ppm", network.loss_ppm),
        ("duplicate_ppm", network.duplicate_ppm),
        ("torn_write_ppm", plan.storage.torn_write_ppm),
        ("bit_flip_ppm", plan.storage.bit_flip_ppm),
        ("sync_failure_ppm", plan.storage.sync_failure_ppm),
    ] {
        in_range(name, u64::from(value), 0, ppm)?;
    }
    in_range("sync_max_micros", plan.storage.sync_max_micros, 0, MAX_PLAN_MICROS)?;
    in_range("sync_min_micros", plan.storage.sync_min_micros, 0, plan.storage.sync_max_micros)?;
    let workload = &plan.workload;
    in_range("think_micros", workload.think_micros, 1, MAX_PLAN_MICROS)?;
    in_range("read_ppm", u64::from(workload.read_ppm), 0, 1_000_000)?;
    in_range("keys", u64::from(workload.keys), 1, 1_000_000)?;
    in_range("request_timeout_micros", workload.request_timeout_micros, 1_000, MAX_PLAN_MICROS)?;
    in_range("transfer_interval_micros", workload.transfer_interval_micros, 0, MAX_PLAN_MICROS)?;
    in_range("membership_interval_micros", workload.membership_interval_micros, 0, MAX_PLAN_MICROS)?;
    // A round longer than a request's timeout would only time every request out.
    in_range("request_round_micros", workload.request_round_micros, 0, workload.request_timeout_micros)?;
    in_range("compaction_threshold_entries", workload.compaction_threshold_entries, 1, u64::MAX / 2)?;
    in_range(
        "max_entries_per_append",
        workload.max_entries_per_append,
        0,
        raft_core::MAX_ENTRIES_PER_MESSAGE_LIMIT,
    )?;
    let node = |position: usize| {
        if position < nodes {
            Ok(())
        } else {
            Err(format!("the schedule names node position {position} in a cluster of {nodes}"))
        }
    };
    let target = |target: Target| match target {
        Target::Node(position) | Target::Leader { fallback: position } => node(position),
    };
    let side = |side: &[usize]| {
        side.iter().try_for_each(|position| node(*position))?;
        if side.is_empty() || side.len() >= nodes {
            return Err("a partition side must hold some nodes but not all".to_string());
        }
        Ok(())
    };
    for scheduled in &plan.schedule {
        in_range("a fault's time", scheduled.at_micros, 0, MAX_PLAN_MICROS * 1_000)?;
        match &scheduled.fault {
            Fault::Crash { node, down_micros } => {
                target(*node)?;
                in_range("down_micros", *down_micros, 0, MAX_PLAN_MICROS)?;
            }
            Fault::Pause { node, pause_micros } => {
                target(*node)?;
                in_range("pause_micros", *pause_micros, 0, MAX_PLAN_MICROS)?;
            }
            Fault::Partition { partition, heal_after_micros } => {
                in_range("heal_after_micros", *heal_after_micros, 0, MAX_PLAN_MICROS)?;
                match partition {
                    Partition::Isolate { node } => target(*node)?,
                    Partition::Split { side: nodes_on_side } => side(nodes_on_side)?,
                    Partition::OneWay { from, to } => {
                        side(from)?;
                        side(to)?;
                    }
                }
            }
            Fault::Flap { a, b, period_micros, duration_micros } => {
                node(*a)?;
                node(*b)?;
                if a == b {
                    return Err("a flapping link needs two different nodes".to_string());
                }
                in_range("period_micros", *period_micros, 1, MAX_PLAN_MICROS)?;
                in_range("duration_micros", *duration_micros, 0, MAX_PLAN_MICROS)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::faults::FaultProfile;

    fn sample() -> ReproFile {
        let mut options = RunOptions::new(11, 3, FaultProfile::Heavy);
        options.ticks = 200;
        let (plan, report) = crate::run_seed(&options, None).unwrap();
        ReproFile::new(&options, &plan, &report)
    }

    #[test]
    fn a_repro_file_round_trips() {
        let file = sample();
        let text = serde_json::to_string_pretty(&file).unwrap();
        assert_eq!(parse(&text).unwrap(), file);
        assert!(text.contains("\"format\": \"raft-sim-repro\""));
        assert!(file.reproduce.contains("--seed 11 --nodes 3 --faults heavy --ticks 200 --clients 3"));
    }

    #[test]
    fn truncated_corrupt_and_foreign_files_are_refused_with_reasons() {
        let text = serde_json::to_string_pretty(&sample()).unwrap();
        assert!(matches!(parse(&text[..text.len() / 2]), Err(ReproError::NotJson(_))));
        assert!(matches!(parse("{\"format\":\"something else\"}"), Err(ReproError::WrongFormat(_))));
        assert!(matches!(parse("[1, 2]"), Err(ReproError::WrongFormat(_))));
        let older = text.replace("\"version\": 3", "\"version\": 2");
        let error = parse(&older).unwrap_err();
        assert!(matches!(error, ReproError::WrongVersion(2)));
        assert!(error.to_string().contains("reads version 3"));
        let missing_plan = text.replace("\"plan\"", "\"plan_renamed\"");
        assert!(matches!(parse(&missing_plan), Err(ReproError::Invalid(_))));
    }

    #[test]
    fn plans_that_do_not_fit_their_options_are_refused() {
        let file = sample();
        let mut plan = file.plan.clone();
        plan.tick_micros.push(10_000);
        assert!(check_plan(&file.options, &plan).unwrap_err().contains("clocks for 4 nodes"));
        let mut plan = file.plan.clone();
        plan.schedule.push(crate::faults::ScheduledFault {
            at_micros: 5,
            fault: Fault::Crash { node: Target::Node(7), down_micros: 1 },
        });
        assert!(check_plan(&file.options, &plan).unwrap_err().contains("position 7"));
        let mut plan = file.plan.clone();
        plan.network.loss_ppm = 2_000_000;
        assert!(check_plan(&file.options, &plan).unwrap_err().contains("loss_ppm"));
        let mut plan = file.plan;
        plan.tick_micros[0] = 0;
        assert!(check_plan(&file.options, &plan).is_err());
    }
}
