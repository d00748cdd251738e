//! Every scripted scenario of `sim-scenarios` runs and prints what its transcript says,
//! with no checker firing. `SIM_SCENARIO_REWRITE=1 cargo test --test scenarios` writes
//! the actual outputs back into the transcripts, to be reviewed as a diff.

use sim::scenario::{run, run_perturbed, Perturbation};
use sim_scenarios::{load, names, source_directory};

#[test]
fn every_scenario_prints_its_transcript_and_breaks_no_rule() {
    let rewrite = std::env::var_os("SIM_SCENARIO_REWRITE").is_some();
    let mut failures = Vec::new();
    let names = names();
    assert!(names.len() >= 23, "expected the full set of scenarios, found {}", names.len());
    for name in &names {
        let text = load(name).expect("a listed scenario loads");
        let outcome = run(&text).unwrap_or_else(|error| panic!("scenario {name}: {error}"));
        if rewrite && outcome.rewritten != text {
            std::fs::write(source_directory().join(format!("{name}.txt")), &outcome.rewritten)
                .expect("rewrite");
            continue;
        }
        if let Some(violation) = &outcome.violation {
            failures.push(format!("{name}: violation: {violation}"));
        }
        for mismatch in &outcome.mismatches {
            failures.push(format!("{name}: {mismatch}"));
        }
    }
    assert!(failures.is_empty(), "scenarios failed:\n{}", failures.join("\n"));
}

#[test]
fn a_transcript_that_expects_something_else_fails_with_a_diff() {
    let text = load("basic-agreement").expect("basic-agreement exists");
    let changed = text.replacen("applied at index", "applied at index 99 or", 1);
    assert_ne!(changed, text, "the scenario answers a proposal");
    let outcome = run(&changed).expect("still a transcript");
    assert!(!outcome.passed());
    assert_eq!(outcome.mismatches.len(), 1, "{:?}", outcome.mismatches);
    let shown = outcome.mismatches[0].to_string();
    assert!(shown.contains("- request") && shown.contains("+ request"), "{shown}");
}

#[test]
fn perturbed_runs_of_a_scenario_are_reproducible_and_depart_from_its_script() {
    let text = load("figure-8").expect("figure-8 exists");
    let mut departed = 0;
    for seed in 0..20 {
        let first = run_perturbed(&text, Perturbation::around(seed)).expect("runs");
        let second = run_perturbed(&text, Perturbation::around(seed)).expect("runs");
        assert_eq!(first.rewritten, second.rewritten, "seed {seed} is not reproducible");
        assert_eq!(first.violation, None, "seed {seed}: the correct core breaks a rule");
        if !first.mismatches.is_empty() {
            departed += 1;
        }
    }
    assert!(departed >= 10, "only {departed} of 20 perturbed runs departed from the script");
}

#[test]
fn bad_commands_are_errors_in_the_output_not_panics() {
    let text = "cluster nodes=3\n----\n\nfrobnicate\n----\n\ncrash 7\n----\n\nrun ticks=x\n----\n\nrun loss=200%\n----\n\nappend from=1 to=2\n----\n\npropose leader k v\n----\n";
    let outcome = run(text).expect("a transcript");
    let printed: Vec<&str> =
        outcome.mismatches.iter().flat_map(|mismatch| mismatch.actual.iter().map(String::as_str)).collect();
    assert_eq!(
        printed[1..],
        [
            "error: unknown command \"frobnicate\"",
            "error: node 7 is not in this 3-node cluster",
            "error: ticks=x: not a number",
            "error: loss=200%: more than 100%",
            "error: node 1 is not a leader",
            "error: no node is leader",
        ]
    );
    assert!(run("campaign 1\n----\n").is_err(), "a scenario must start by building its cluster");
    assert!(run("cluster nodes=3\nno separator\n").is_err());
}
