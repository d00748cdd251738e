//! The CI seed sweep: heavy and swarm faults on 3, 5 and 7 nodes, every invariant
//! checked after every action, then the liveness phase. Any failure prints the
//! command that reproduces it.
//!
//! `SIM_SWEEP_SEEDS=N` runs N seeds per profile instead of the CI default, for soaks:
//! `SIM_SWEEP_SEEDS=20000 cargo test --release -p raft-sim-tests --test sweeps`.

use sim::sweep::{sweep, SeedRange, Shard, SweepOptions};
use sim::{FaultProfile, RunOptions};

const CI_SEEDS_PER_PROFILE: u64 = 1_500;

fn seeds_per_profile() -> u64 {
    std::env::var("SIM_SWEEP_SEEDS").ok().and_then(|text| text.parse().ok()).unwrap_or(CI_SEEDS_PER_PROFILE)
}

/// Sweeps a third of the seeds on each cluster size, each size on its own seeds.
fn sweep_profile(faults: FaultProfile) {
    let per_size = seeds_per_profile().div_ceil(3);
    let mut failures = Vec::new();
    let mut seeds_run = 0;
    for (slot, nodes) in [3, 5, 7].into_iter().enumerate() {
        let first = slot as u64 * per_size;
        let options = SweepOptions {
            template: RunOptions::new(0, nodes, faults),
            seeds: SeedRange { first, end: first + per_size },
            shard: Shard::default(),
            jobs: std::thread::available_parallelism().map_or(1, |jobs| jobs.get()),
            keep_going: true,
        };
        let summary = sweep(&options, |_| {});
        seeds_run += summary.seeds;
        for failure in summary.failures {
            let report = &failure.report;
            let what =
                report.violation.as_ref().map_or(String::new(), |failure| failure.violation.to_string());
            failures.push(format!(
                "{}: {what}\n    reproduce: {}",
                report.verdict,
                failure.options.command_line()
            ));
        }
    }
    assert_eq!(seeds_run, 3 * per_size);
    assert!(
        failures.is_empty(),
        "{} of {seeds_run} {faults} seeds failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn heavy_fault_seeds_keep_every_invariant_and_recover() {
    sweep_profile(FaultProfile::Heavy);
}

#[test]
fn swarm_seeds_keep_every_invariant_and_recover() {
    sweep_profile(FaultProfile::Swarm);
}
