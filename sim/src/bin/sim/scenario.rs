//! `sim scenario list`, `sim scenario run NAME [--rewrite | --seed S]`, and
//! `sim sweep --scenario NAME --seeds A..B`.

use crate::stdout::{out, outln};
use sim::scenario::Perturbation;
use sim::sweep::SeedRange;
use sim_scenarios::{load, names, source_directory};

/// Prints every scenario's name and the first line of its description.
pub(crate) fn list() -> Result<u8, String> {
    for name in names() {
        let text = load(&name).unwrap_or_default();
        let about = text
            .lines()
            .find(|line| line.starts_with('#'))
            .map_or("", |line| line.trim_start_matches('#').trim());
        outln!("{name:<40} {about}");
    }
    Ok(0)
}

/// Runs one scenario (or all with `all`); exit 1 if an output differs or a checker fired.
pub(crate) fn run(name: &str, rewrite: bool) -> Result<u8, String> {
    let chosen: Vec<String> = if name == "all" { names() } else { vec![name.to_string()] };
    let mut failed = 0;
    for name in &chosen {
        let text =
            load(name).ok_or_else(|| format!("no scenario {name:?} (sim scenario list names them)"))?;
        let outcome = sim::scenario::run(&text).map_err(|error| format!("scenario {name}: {error}"))?;
        if rewrite && outcome.rewritten != text {
            let path = source_directory().join(format!("{name}.txt"));
            std::fs::write(&path, &outcome.rewritten)
                .map_err(|error| format!("{}: {error}", path.display()))?;
            outln!("{name}: rewritten ({})", path.display());
        }
        match (&outcome.violation, outcome.mismatches.is_empty() || rewrite) {
            (None, true) => outln!("{name}: ok ({} commands)", outcome.commands),
            (violation, _) => {
                failed += 1;
                outln!("{name}: FAILED");
                if let Some(violation) = violation {
                    outln!("  violation: {violation}");
                }
                if !rewrite {
                    for mismatch in &outcome.mismatches {
                        out!("{mismatch}");
                    }
                }
            }
        }
    }
    Ok(if failed == 0 { 0 } else { 1 })
}

fn load_named(name: &str) -> Result<String, String> {
    load(name).ok_or_else(|| format!("no scenario {name:?} (sim scenario list names them)"))
}

/// Runs `name` perturbed by `seed` and prints the whole run; exit 1 if a checker fired.
pub(crate) fn run_perturbed(name: &str, seed: u64) -> Result<u8, String> {
    let text = load_named(name)?;
    let outcome = sim::scenario::run_perturbed(&text, Perturbation::around(seed))
        .map_err(|error| format!("scenario {name}: {error}"))?;
    out!("{}", outcome.rewritten);
    match &outcome.violation {
        None => {
            outln!("# {name} perturbed by seed {seed}: no checker fired ({} commands)", outcome.commands);
            Ok(0)
        }
        Some(violation) => {
            outln!("# {name} perturbed by seed {seed}: VIOLATION: {violation}");
            Ok(1)
        }
    }
}

/// Runs `name` once per seed of `seeds`, each perturbed by its seed; exit 1 at the
/// first violation (or after all of them, with `keep_going`).
pub(crate) fn sweep(name: &str, seeds: SeedRange, keep_going: bool) -> Result<u8, String> {
    let text = load_named(name)?;
    if seeds.end <= seeds.first {
        return Err(format!("the seed range {}..{} is empty", seeds.first, seeds.end));
    }
    eprintln!(
        "sim sweep: scenario {name}, {} perturbed runs (seeds {}..{})",
        seeds.end - seeds.first,
        seeds.first,
        seeds.end
    );
    let started = std::time::Instant::now();
    let (mut ran, mut failed) = (0u64, 0u64);
    for seed in seeds.first..seeds.end {
        let outcome = sim::scenario::run_perturbed(&text, Perturbation::around(seed))
            .map_err(|error| format!("scenario {name}: {error}"))?;
        ran += 1;
        if let Some(violation) = &outcome.violation {
            failed += 1;
            outln!("seed {seed}: VIOLATION: {violation}");
            outln!("  see it: sim scenario run {name} --seed {seed}");
            if !keep_going {
                break;
            }
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    outln!(
        "{ran} runs of {name}: {} passed, {failed} failed ({:.0} runs/s)",
        ran - failed,
        ran as f64 / seconds.max(1e-9)
    );
    Ok(if failed == 0 { 0 } else { 1 })
}
