//! Determinism is the product: the same seed and options give the same run, byte for
//! byte, whatever the number of worker threads.

use sim::sweep::{sweep, SeedRange, Shard, SweepOptions};
use sim::{run_seed, FaultProfile, RunOptions};

fn traced_run(options: &RunOptions) -> (String, Vec<u8>) {
    let mut trace = Vec::new();
    let (_, report) = run_seed(options, Some(&mut trace)).expect("writing to memory cannot fail");
    (report.trace_hash, trace)
}

#[test]
fn the_same_seed_twice_gives_byte_identical_traces() {
    for faults in [FaultProfile::Heavy, FaultProfile::Swarm] {
        let options = RunOptions { ticks: 2_000, ..RunOptions::new(42, 5, faults) };
        let (first_hash, first_trace) = traced_run(&options);
        let (second_hash, second_trace) = traced_run(&options);
        assert_eq!(first_hash, second_hash);
        assert!(first_trace == second_trace, "traces of seed 42 ({faults}) differ");
        assert!(first_trace.len() > 100_000, "the trace records the run");
        // And the hash is of the run, not a constant.
        let (other_hash, _) = traced_run(&RunOptions { seed: 43, ..options });
        assert_ne!(first_hash, other_hash);
    }
}

#[test]
fn tracing_to_a_file_does_not_change_the_run() {
    let options = RunOptions { ticks: 1_000, ..RunOptions::new(7, 3, FaultProfile::Heavy) };
    let (traced_hash, _) = traced_run(&options);
    let (_, untraced) = run_seed(&options, None).unwrap();
    assert_eq!(traced_hash, untraced.trace_hash);
}

#[test]
fn a_sweep_reports_the_same_runs_with_one_job_or_two() {
    let mut per_jobs = Vec::new();
    for jobs in [1, 2] {
        let options = SweepOptions {
            template: RunOptions { ticks: 1_000, ..RunOptions::new(0, 5, FaultProfile::Swarm) },
            seeds: SeedRange { first: 1_000, end: 1_040 },
            shard: Shard::default(),
            jobs,
            keep_going: true,
        };
        let mut hashes = Vec::new();
        sweep(&options, |result| hashes.push((result.options.seed, result.report.trace_hash.clone())));
        per_jobs.push(hashes);
    }
    assert_eq!(per_jobs[0].len(), 40);
    assert_eq!(per_jobs[0], per_jobs[1]);
}
