//! The CI seed sweep: heavy and swarm faults on 3, 5 and 7 nodes, every invariant
//! checked after every action, then the liveness phase. One test per profile and
//! cluster size, so `cargo test` shows the sweep moving and names the slice that fails;
//! each failure prints the command that reproduces it.
//!
//! `SIM_SWEEP_SEEDS=N` runs N seeds per profile (a third on each size) instead of the CI
//! default, for soaks: `SIM_SWEEP_SEEDS=20000 cargo test --release -p raft-sim-tests --test sweeps`.

use sim::sweep::{sweep, SeedRange, Shard, SweepOptions};
use sim::{FaultProfile, RunOptions};

const CI_SEEDS_PER_PROFILE: u64 = 1_500;

fn seeds_per_size() -> u64 {
    let per_profile = std::env::var("SIM_SWEEP_SEEDS")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(CI_SEEDS_PER_PROFILE);
    per_profile.div_ceil(3)
}

/// Sweeps the slice of `faults` seeds for a cluster of `nodes`: each size has seeds of
/// its own (3 nodes the first third, 5 the second, 7 the last).
fn sweep_slice(faults: FaultProfile, nodes: usize) {
    let per_size = seeds_per_size();
    let slot = match nodes {
        3 => 0,
        5 => 1,
        _ => 2,
    };
    let first = slot * per_size;
    let options = SweepOptions {
        template: RunOptions::new(0, nodes, faults),
        seeds: SeedRange { first, end: first + per_size },
        shard: Shard::default(),
        jobs: std::thread::available_parallelism().map_or(1, |jobs| jobs.get()),
        keep_going: true,
    };
    let summary = sweep(&options, |_| {});
    let failures: Vec<String> = summary
        .failures
        .iter()
        .map(|failure| {
            let report = &failure.report;
            let what =
                report.violation.as_ref().map_or(String::new(), |failure| failure.violation.to_string());
            format!("{}: {what}\n    reproduce: {}", report.verdict, failure.options.command_line())
        })
        .collect();
    assert_eq!(summary.seeds, per_size);
    // A sweep that never made a joint change or promoted a learner has not tested them.
    let membership = summary.membership;
    assert!(
        membership.joint_changes > 0 && membership.promotions > 0 && membership.removals > 0,
        "{faults} seeds on {nodes} nodes exercised too little membership: {membership:?}"
    );
    assert!(summary.chunked_installs > 0, "{faults} seeds on {nodes} nodes sent no snapshot in chunks");
    assert!(summary.sessions_expired > 0, "{faults} seeds on {nodes} nodes expired no client session");
    assert!(summary.keys_expired > 0, "{faults} seeds on {nodes} nodes had no key's time to live run out");
    assert!(
        failures.is_empty(),
        "{} of {per_size} {faults} seeds on {nodes} nodes failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn heavy_3_nodes_keep_every_invariant_and_recover() {
    sweep_slice(FaultProfile::Heavy, 3);
}

#[test]
fn heavy_5_nodes_keep_every_invariant_and_recover() {
    sweep_slice(FaultProfile::Heavy, 5);
}

#[test]
fn heavy_7_nodes_keep_every_invariant_and_recover() {
    sweep_slice(FaultProfile::Heavy, 7);
}

#[test]
fn swarm_3_nodes_keep_every_invariant_and_recover() {
    sweep_slice(FaultProfile::Swarm, 3);
}

#[test]
fn swarm_5_nodes_keep_every_invariant_and_recover() {
    sweep_slice(FaultProfile::Swarm, 5);
}

#[test]
fn swarm_7_nodes_keep_every_invariant_and_recover() {
    sweep_slice(FaultProfile::Swarm, 7);
}
