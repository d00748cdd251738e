//! Seeds that once failed, each named after what it found. They must keep passing
//! (or, for a checker test, keep firing) whatever else changes.

use sim::{run_seed, FaultProfile, RunOptions, Verdict};

fn assert_passes(seed: u64, nodes: usize, faults: FaultProfile) {
    let options = RunOptions::new(seed, nodes, faults);
    let (_, report) = run_seed(&options, None).unwrap();
    assert_eq!(
        report.verdict,
        Verdict::Pass,
        "{:?}\nreproduce: {}",
        report.violation,
        options.command_line()
    );
}

/// The durable-promises checker held a term-8 acknowledgement to entries its sender
/// (a follower resumed from a pause) had already truncated for the term-9 leader in
/// the same sync. The core was right; the checker now holds an acknowledgement to its
/// entries only while the sender is still in its term.
#[test]
fn heavy_seed_955_old_term_acknowledgement_after_truncation() {
    assert_passes(955, 5, FaultProfile::Heavy);
}

/// The liveness probe's entry was accepted by a leader that then lost it to a new
/// leader with a shorter log (allowed), and the probe waited for it forever: a false
/// liveness failure. The probe now retries like a client.
#[test]
fn swarm_seed_503_and_heavy_seed_10220_probe_entry_lost_to_a_new_leader() {
    assert_passes(503, 5, FaultProfile::Swarm);
    assert_passes(10220, 3, FaultProfile::Heavy);
}
