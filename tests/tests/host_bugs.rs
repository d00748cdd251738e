//! The testbed tested: each rule of the production node driver (`raft-host`), broken on
//! purpose (`--host-bug`), is caught by an ordinary sweep, by the checker whose
//! invariant the broken rule protects.

use sim::sweep::{sweep, SeedRange, Shard, SweepOptions, SweepSummary};
use sim::{FaultProfile, HostBug, RunOptions, Verdict};

/// Sweeps seeds `0..seeds` with `bug`, stopping at the first failure unless `keep_going`.
fn sweep_with(
    bug: HostBug,
    nodes: usize,
    faults: FaultProfile,
    seeds: u64,
    keep_going: bool,
) -> SweepSummary {
    let mut template = RunOptions::new(0, nodes, faults);
    template.host_bug = Some(bug);
    let options = SweepOptions {
        template,
        seeds: SeedRange { first: 0, end: seeds },
        shard: Shard::default(),
        jobs: std::thread::available_parallelism().map_or(1, |jobs| jobs.get()),
        keep_going,
    };
    sweep(&options, |_| {})
}

/// The first failing seed of `0..seeds` with `bug`, its verdict and its invariant.
fn first_failure(
    bug: HostBug,
    nodes: usize,
    faults: FaultProfile,
    seeds: u64,
) -> Option<(u64, Verdict, String)> {
    let summary = sweep_with(bug, nodes, faults, seeds, false);
    let failure = summary.failures.first()?;
    let invariant =
        failure.report.violation.as_ref().map_or(String::new(), |f| f.violation.invariant.to_string());
    Some((failure.options.seed, failure.report.verdict, invariant))
}

fn assert_caught(bug: HostBug, seeds: u64, verdict: Verdict, invariant: &str) {
    for (nodes, faults) in [(3, FaultProfile::Heavy), (5, FaultProfile::Swarm)] {
        let found = first_failure(bug, nodes, faults, seeds);
        let (seed, found_verdict, found_invariant) = found.unwrap_or_else(|| {
            panic!("{} went unnoticed by {seeds} {faults} seeds on {nodes} nodes", bug.name())
        });
        assert_eq!(
            (found_verdict, found_invariant.as_str()),
            (verdict, invariant),
            "seed {seed}, {faults}, {nodes} nodes"
        );
    }
}

#[test]
fn a_driver_that_sends_before_its_writes_are_durable_is_caught() {
    assert_caught(HostBug::SendBeforeSync, 20, Verdict::Safety, "durable promises");
}

#[test]
fn a_driver_that_ignores_ticks_is_caught() {
    assert_caught(HostBug::NoTicks, 5, Verdict::Liveness, "liveness");
}

/// A leader that counts toward a commit entries its own disk does not hold yet: the
/// commit is then on fewer durable copies than a majority until the sync lands.
#[test]
fn a_leader_counting_entries_it_has_not_persisted_is_caught() {
    assert_caught(HostBug::ReportBeforeSync, 200, Verdict::Safety, "committed is durable");
}

/// The invariants of every failure among seeds `0..seeds` with `bug`.
fn invariants_found(bug: HostBug, nodes: usize, faults: FaultProfile, seeds: u64) -> Vec<String> {
    let summary = sweep_with(bug, nodes, faults, seeds, true);
    let mut found: Vec<String> = summary
        .failures
        .iter()
        .filter_map(|failure| failure.report.violation.as_ref().map(|f| f.violation.invariant.to_string()))
        .collect();
    found.sort();
    found.dedup();
    found
}

/// A cluster that never elects anyone while a majority is healthy fails the
/// availability rule in the safety phase, before the liveness phase gives up on it.
/// (Light faults leave a majority healthy for long stretches; under heavy and swarm
/// faults the windows are cut short and the liveness phase reports it instead.)
#[test]
fn a_healthy_majority_that_never_commits_breaks_the_availability_rule() {
    let found = invariants_found(HostBug::NoTicks, 3, FaultProfile::Light, 5);
    assert!(found.contains(&"availability".to_string()), "found {found:?}");
}

/// Without CheckQuorum a leader cut off from a quorum stays in office (check quorum);
/// without PreVote and the leader lease a rejoining node deposes a healthy leader in
/// the quiet tail (unprovoked election). Neither breaks a safety rule. (Removed nodes,
/// which once did most of the deposing, are now told and stay quiet, and a transfer
/// no longer reaches a learner, so the second takes more seeds: most runs stop at the
/// check quorum finding first. The first is heavy seed 163 on 7 nodes; 200 seeds leave
/// room for the draws to move.)
#[test]
fn a_core_without_prevote_and_check_quorum_breaks_the_availability_rules() {
    let mut found = invariants_found(HostBug::Unprotected, 3, FaultProfile::Heavy, 10);
    found.extend(invariants_found(HostBug::Unprotected, 7, FaultProfile::Heavy, 200));
    for rule in ["check quorum", "unprovoked election"] {
        assert!(found.contains(&rule.to_string()), "{rule} never fired: found {found:?}");
    }
    assert!(
        found.iter().all(|invariant| ["check quorum", "unprovoked election", "availability", "liveness"]
            .contains(&invariant.as_str())),
        "an unprotected core broke a safety rule: {found:?}"
    );
}
