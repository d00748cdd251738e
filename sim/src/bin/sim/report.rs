//! The text reports of `sim run`, `sim replay` and `sim sweep`.

use crate::stdout::outln;
use sim::{RunOptions, RunReport, Verdict};
use std::path::Path;

/// Where a failing run's repro file went: written, or why not.
pub(crate) type ReproOutcome = Result<std::path::PathBuf, String>;

/// Prints one run's result: a pass in two lines; a failure with what broke, where, the
/// line that reproduces it and its repro file.
pub(crate) fn print_report(options: &RunOptions, report: &RunReport, repro: Option<&ReproOutcome>) {
    let summary = format!(
        "{} events, {:.3} s virtual, {} commits, {} elections, {} crashes, {} messages ({} dropped, {:.2} entries per append), trace {}, {:.1} ms wall",
        report.events,
        report.virtual_time_us as f64 / 1e6,
        report.commits,
        report.elections,
        report.crashes,
        report.messages_sent,
        report.messages_dropped,
        report.entries_per_append,
        report.trace_hash,
        report.wall_time_ms
    );
    let operations = &report.operations;
    let clients = format!(
        "{} operations ({} ok, {} failed, {} indeterminate), latency p50 {:.1} ms p99 {:.1} ms, history {}",
        operations.invoked,
        operations.ok,
        operations.failed,
        operations.indeterminate,
        operations.latency_p50_us as f64 / 1e3,
        operations.latency_p99_us as f64 / 1e3,
        report.linearizability
    );
    let Some(failure) = &report.violation else {
        outln!("result: pass: {summary}");
        outln!("clients: {clients}");
        outln!(
            "membership: {}; {} snapshots installed in several chunks; {} client sessions expired; {} keys expired",
            membership_line(&report.membership),
            report.chunked_installs,
            report.sessions_expired,
            report.keys_expired
        );
        outln!(
            "checks held: safety (every Raft rule, after every step), availability (healthy majorities commit, CheckQuorum, no unprovoked elections), recovery once healed, and the client history: {}",
            report.linearizability
        );
        return;
    };
    if report.verdict == Verdict::Interrupted {
        outln!(
            "INTERRUPTED at {:.6} s virtual: no verdict ({})",
            failure.time_us as f64 / 1e6,
            failure.violation.detail
        );
        outln!("  run so far: {summary}");
        outln!("run it again: {}", options.command_line());
        return;
    }
    let heading = match report.verdict {
        Verdict::Liveness => "LIVENESS FAILURE",
        Verdict::Unknown => "UNDECIDED",
        _ => "SAFETY VIOLATION",
    };
    let nodes: Vec<String> = failure.violation.nodes.iter().map(|node| node.to_string()).collect();
    // The history checks judge what clients saw, not a node.
    let place = if nodes.is_empty() {
        "in the client history".to_string()
    } else {
        format!("on node(s) {}", nodes.join(", "))
    };
    outln!(
        "{heading}: {} at {:.6} s virtual {place}",
        failure.violation.invariant,
        failure.time_us as f64 / 1e6
    );
    outln!("  {}", failure.violation.detail);
    outln!("  run: {summary}");
    outln!("  clients: {clients}");
    outln!("reproduce: {}", options.command_line());
    match repro {
        Some(Ok(path)) => outln!("repro file: {} (sim replay {})", path.display(), path.display()),
        // The warning went to stderr when the write failed; say it here too, in place.
        Some(Err(_)) => outln!("repro file: not written (see the warning above)"),
        None => {}
    }
}

/// Writes the repro file of a failing run, warning on stderr if it cannot: the verdict,
/// not the file, decides the exit code.
pub(crate) fn save_repro(file: &sim::repro::ReproFile, directory: &Path) -> ReproOutcome {
    file.save(directory).inspect_err(|error| eprintln!("warning: the repro file was not written: {error}"))
}

/// The committed membership changes of a run or a sweep, in one line.
pub(crate) fn membership_line(stats: &sim::checkers::MembershipStats) -> String {
    format!(
        "{} changes committed ({} joint, {} learners promoted, {} members removed)",
        stats.changes, stats.joint_changes, stats.promotions, stats.removals
    )
}
