//! Scripted scenarios: a transcript drives a cluster message by message, and what each
//! command prints is compared with what the transcript expects.
//!
//! A transcript (`script`) is a list of commands, each followed by `----` and its
//! expected output, in the style of etcd raft's datadriven tests. The first command
//! builds the cluster; the rest drive it (`world` lists them): tick nodes or let one
//! campaign; deliver, drop or duplicate held messages, or `stabilize` to deliver until
//! none are left; cut and heal links; crash, restart, pause and resume nodes; propose,
//! read, change membership, transfer leadership; print `status`. Every checker of the
//! simulator watches the run, and a violation is printed where it happens, so a
//! transcript that expects none fails when a rule breaks.
//!
//! `run_perturbed` runs a transcript in the neighbourhood of its schedule: with a seed,
//! some delivered messages are lost or arrive late, timers jitter and nodes crash and
//! restart; only the checkers judge such a run (`sim sweep --scenario NAME`).
//!
//! A changed behaviour shows as a diff between the expected and the actual output;
//! rewriting the transcript with the actual output (`sim scenario run NAME --rewrite`,
//! or `SIM_SCENARIO_REWRITE=1 cargo test`) and reviewing the diff is how a scenario is
//! written and kept up to date.

pub mod describe;
pub mod script;
mod world;

pub use world::{Perturbation, World};

/// A command whose output differs from the transcript's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mismatch {
    /// The command's line in the transcript.
    pub line: usize,
    /// The command.
    pub command: String,
    /// What the transcript expects.
    pub expected: Vec<String>,
    /// What it printed.
    pub actual: Vec<String>,
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "line {}: {}", self.line, self.command)?;
        for line in &self.expected {
            if !self.actual.contains(line) {
                writeln!(f, "  - {line}")?;
            }
        }
        for line in &self.actual {
            if !self.expected.contains(line) {
                writeln!(f, "  + {line}")?;
            }
        }
        Ok(())
    }
}

/// What running a transcript found.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The commands whose output differs.
    pub mismatches: Vec<Mismatch>,
    /// The transcript with the actual outputs, for `--rewrite`.
    pub rewritten: String,
    /// The first violation a checker found, if any.
    pub violation: Option<String>,
    /// Commands run.
    pub commands: usize,
}

impl Outcome {
    /// Whether every output matched and no checker fired.
    pub fn passed(&self) -> bool {
        self.mismatches.is_empty() && self.violation.is_none()
    }
}

/// Runs a transcript. Fails only if the text is not a transcript or does not start by
/// building the cluster.
pub fn run(text: &str) -> Result<Outcome, String> {
    run_with(text, None)
}

/// Runs a transcript with seeded perturbations (lost and late messages, timer jitter,
/// crashes): a neighbour of its schedule. Outputs are expected to differ; what counts
/// is `Outcome::violation`. The same seed makes the same run.
pub fn run_perturbed(text: &str, perturbation: Perturbation) -> Result<Outcome, String> {
    run_with(text, Some(perturbation))
}

fn run_with(text: &str, perturbation: Option<Perturbation>) -> Result<Outcome, String> {
    let script = script::parse(text)?;
    let Some(first) = script.blocks.first() else {
        return Err("an empty scenario".to_string());
    };
    let Some(arguments) = first.command.strip_prefix("cluster") else {
        return Err(format!("line {}: a scenario starts with `cluster nodes=N`", first.line));
    };
    let mut world = World::new(arguments.trim(), perturbation)?;
    let mut outputs = vec![vec![world.describe()]];
    for block in &script.blocks[1..] {
        outputs.push(world.run(&block.command));
    }
    let mismatches = script
        .blocks
        .iter()
        .zip(&outputs)
        .filter(|(block, output)| &block.expected != *output)
        .map(|(block, output)| Mismatch {
            line: block.line,
            command: block.command.clone(),
            expected: block.expected.clone(),
            actual: output.clone(),
        })
        .collect();
    Ok(Outcome {
        mismatches,
        rewritten: script::render(&script, &outputs),
        violation: world.violation(),
        commands: script.blocks.len(),
    })
}
