//! `sim shrink FILE`: a failing repro turned into a smaller one that fails the same
//! way, its size before and after, and the smaller run as a short timeline.

use crate::stdout::{out, outln};
use sim::repro::{self, ReproFile};
use sim::shrink::{shrink, ShrinkError, Size};
use std::path::{Path, PathBuf};

/// Where the shrunk file goes when `--out` is not given: beside the original.
pub(crate) fn default_output(input: &Path) -> PathBuf {
    let stem = input.file_stem().map_or("sim-repro".into(), |stem| stem.to_string_lossy().into_owned());
    input.with_file_name(format!("{stem}.shrunk.json"))
}

fn seconds(micros: u64) -> String {
    format!("{:.3} s", micros as f64 / 1e6)
}

fn size_table(before: &Size, after: &Size) -> String {
    let row = |name: &str, before: String, after: String| format!("  {name:<22} {before:>14} -> {after}\n");
    let mut text = String::new();
    text.push_str(&row("nodes", before.nodes.to_string(), after.nodes.to_string()));
    text.push_str(&row("clients", before.clients.to_string(), after.clients.to_string()));
    text.push_str(&row("scheduled faults", before.faults.to_string(), after.faults.to_string()));
    text.push_str(&row(
        "safety phase",
        seconds(before.ticks * sim::faults::BASE_TICK_MICROS),
        seconds(after.ticks * sim::faults::BASE_TICK_MICROS),
    ));
    text.push_str(&row("client operations", before.operations.to_string(), after.operations.to_string()));
    text.push_str(&row("events", before.events.to_string(), after.events.to_string()));
    text.push_str(&row("virtual time", seconds(before.virtual_time_us), seconds(after.virtual_time_us)));
    text
}

/// The run's trace, reduced to what a person reads first: faults, crashes, restarts,
/// heals, operator requests, the phases; ticks, deliveries and client traffic counted.
fn timeline(file: &ReproFile) -> Result<String, String> {
    let mut trace = Vec::new();
    let report = sim::run(&file.options, &file.plan, Some(&mut trace)).map_err(|error| error.to_string())?;
    let mut text = String::new();
    let mut quiet = (0u64, 0u64, 0u64);
    for line in String::from_utf8_lossy(&trace).lines() {
        let Ok(record) = serde_json::from_str::<serde_json::Value>(line) else { continue };
        let event = record["event"].as_str().unwrap_or_default();
        let node = record["node"].as_u64().unwrap_or(0);
        let time = record["time_us"].as_u64().unwrap_or(0);
        let what = match event {
            "tick" => {
                quiet.0 += 1;
                continue;
            }
            "deliver" | "sync" => {
                quiet.1 += 1;
                continue;
            }
            "propose" | "read" | "reply" => {
                quiet.2 += 1;
                continue;
            }
            "fault" => "a scheduled fault fires".to_string(),
            "crash" => format!("node {node} crashes ({} unsynced writes survive)", record["count"]),
            "restart" => format!("node {node} restarts"),
            "resume" => format!("node {node} resumes"),
            "heal" => "the network heals".to_string(),
            "transfer" => format!("leadership transfer to node {}", record["peer"]),
            "change-membership" if record["count"] == 0 => format!("remove voter {}", record["peer"]),
            "change-membership" => format!("add voter {}", record["peer"]),
            "heal-all" => "liveness phase: everything healed".to_string(),
            "liveness-deadline" => "the liveness bound is reached".to_string(),
            "recovered" => "the cluster recovered".to_string(),
            other => other.to_string(),
        };
        text.push_str(&format!("  {:>12}  {what}\n", seconds(time)));
    }
    if let Some(failure) = &report.violation {
        text.push_str(&format!("  {:>12}  {}\n", seconds(failure.time_us), failure.violation));
    }
    text.push_str(&format!(
        "  (besides: {} ticks, {} deliveries and syncs, {} client requests and answers, {} elections, {} entries committed)\n",
        quiet.0, quiet.1, quiet.2, report.elections, report.commits
    ));
    Ok(text)
}

/// Runs `sim shrink`; the exit code is 0 once the smaller file is written, 5 if the
/// file does not fail the way it records (errors, exit 2, for the rest).
pub(crate) fn run(input: &Path, output: Option<&Path>, max_runs: u64) -> Result<u8, String> {
    let file = repro::load(input).map_err(|error| format!("{}: {error}", input.display()))?;
    let output = output.map_or_else(|| default_output(input), Path::to_path_buf);
    if output == input {
        return Err("--out names the input file; the shrunk run goes to a new file".to_string());
    }
    // Checked before the search: a bad path fails fast.
    drop(sim::output::OutputFile::create(&output, "repro")?);
    outln!("sim shrink {}: {}", input.display(), file.reproduce);
    let mut step_printer = |step: &str, size: &Size| {
        outln!(
            "  {step}: {} nodes, {} clients, {} faults, {} ops, {} events",
            size.nodes,
            size.clients,
            size.faults,
            size.operations,
            size.events
        );
    };
    let shrunk = match shrink(&file, max_runs, &mut step_printer) {
        Ok(shrunk) => shrunk,
        Err(error @ ShrinkError::NothingToShrink) => return Err(format!("{}: {error}", input.display())),
        Err(error @ ShrinkError::DoesNotReproduce(_)) => {
            // As `sim replay` would say: the file no longer fails the way it records.
            eprintln!("error: {}: {error}", input.display());
            return Ok(crate::REPLAY_DIFFERS);
        }
        Err(error) => return Err(error.to_string()),
    };
    let path = shrunk.file.save_as(&output)?;
    outln!("shrunk in {} runs, still {}:", shrunk.runs, describe_verdict(&shrunk.file));
    out!("{}", size_table(&shrunk.before, &shrunk.after));
    outln!("timeline of the shrunk run:");
    out!("{}", timeline(&shrunk.file)?);
    outln!("shrunk repro: {} (sim replay {})", path.display(), path.display());
    Ok(0)
}

fn describe_verdict(file: &ReproFile) -> String {
    match &file.violation {
        Some(failure) => format!("{} ({})", file.verdict, failure.violation.invariant),
        None => file.verdict.to_string(),
    }
}
