//! The `sim` command: run one seed, sweep many, or replay a saved failure.
//!
//! Exit codes (ARCHITECTURE.md): 0 every check held; 1 a safety violation
//! (linearizability included); 3 a liveness failure; 4 the linearizability search ran
//! out of steps (undecided, never a pass); 5 a replay reached another verdict than the
//! one its file records (or `sim shrink` finds it no longer fails that way); 130
//! interrupted (Ctrl-C); 2 bad usage or a bad input file, with a message and nothing
//! written. `sim shrink` exits 0 once it has written the smaller repro file.

mod interrupt;
mod report;
mod scenario;
mod shrink;
mod stdout;

use crate::stdout::{out_now, outln};
use clap::{Args, Parser, Subcommand};
use report::{print_report, save_repro, ReproOutcome};
use sim::control::{Progress, RunControl};
use sim::output::{check_distinct, OutputFile};
use sim::repro::{self, ReproFile};
use sim::sweep::{SeedRange, Shard, SweepOptions};
use sim::{FaultPlan, FaultProfile, HostBug, ReadMode, RunOptions, RunReport, Verdict};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const BAD_INPUT: u8 = 2;
/// `sim replay` reached a different verdict than the file records.
pub(crate) const REPLAY_DIFFERS: u8 = 5;
/// How many failing seeds a sweep's summary lists one by one.
const FAILURES_LISTED: usize = 20;

#[derive(Parser)]
#[command(name = "sim", version, about = "Deterministic simulation of a raft-core cluster under faults")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run one seed and check every invariant.
    Run(RunArgs),
    /// Run a range of seeds in parallel; stop at the first failure unless --keep-going.
    Sweep(SweepArgs),
    /// Re-run a saved failing run from its repro file and compare the verdict.
    Replay(ReplayArgs),
    /// Turn a failing repro file into a smaller run that fails the same way.
    Shrink(ShrinkArgs),
    /// Scripted scenarios: `list` them, or `run NAME` (or `run all`).
    #[command(subcommand)]
    Scenario(ScenarioCommand),
}

#[derive(Subcommand)]
enum ScenarioCommand {
    /// Name every scenario.
    List,
    /// Run a scenario (or `all`) and compare its output with its transcript.
    Run {
        /// The scenario's name, or `all`.
        name: String,
        /// Write the actual output into the transcript (then review the diff).
        #[arg(long, conflicts_with = "seed")]
        rewrite: bool,
        /// Run the script perturbed by this seed, as `sim sweep --scenario` does, and
        /// print the whole run (exit 1 if a checker fires).
        #[arg(long)]
        seed: Option<u64>,
    },
}

#[derive(Args)]
struct ClusterArgs {
    /// Cluster size (1 to 15).
    #[arg(long, default_value_t = 5)]
    nodes: usize,
    /// Fault profile: none, light, heavy or swarm (each seed draws its own mix).
    #[arg(long, default_value = "heavy")]
    faults: FaultProfile,
    /// Length of the safety phase in base ticks of 10 virtual milliseconds (at most 1,000,000).
    #[arg(long, default_value_t = sim::options::DEFAULT_TICKS)]
    ticks: u64,
    /// Simulated key-value clients, each with one operation in flight (0 to 100).
    #[arg(long, default_value_t = sim::options::DEFAULT_CLIENTS)]
    clients: usize,
    /// How clients read: index (ReadIndex through the leader, linearizable) or local
    /// (any node answers from its own state: stale reads for the checker to catch).
    #[arg(long, default_value = "index")]
    reads: ReadMode,
    /// Run with a deliberately broken host to see the checkers fire: send-before-sync or
    /// report-before-sync (safety), no-ticks (availability), retransmit (a message
    /// storm) or unprotected (no PreVote, no CheckQuorum: check quorum, unprovoked
    /// elections).
    #[arg(long, hide_short_help = true)]
    host_bug: Option<HostBug>,
}

impl ClusterArgs {
    fn options(&self, seed: u64) -> RunOptions {
        RunOptions {
            seed,
            nodes: self.nodes,
            faults: self.faults,
            ticks: self.ticks,
            clients: self.clients,
            reads: self.reads,
            host_bug: self.host_bug,
        }
    }
}

/// Files a single run (`run`, `replay`) can write besides its report.
#[derive(Args)]
struct OutputFiles {
    /// Write every simulated event to FILE as JSON lines.
    #[arg(long, value_name = "FILE")]
    trace: Option<PathBuf>,
    /// Write the client history to FILE as JSON lines, one operation per line.
    #[arg(long, value_name = "FILE")]
    history: Option<PathBuf>,
}

#[derive(Args)]
struct RunArgs {
    /// The seed; drawn at random (and printed first) if not given.
    #[arg(long)]
    seed: Option<u64>,
    #[command(flatten)]
    cluster: ClusterArgs,
    /// Print one JSON object with the result (and the plan) instead of the text report.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    outputs: OutputFiles,
    /// Where a failing run writes its repro file.
    #[arg(long, value_name = "DIR", default_value = ".")]
    repro_dir: PathBuf,
    /// Write the run's repro file to FILE whatever its verdict (a passing run too): how
    /// a seed becomes a regression corpus entry (`tests/regressions/NAME.json`).
    #[arg(long, value_name = "FILE")]
    record: Option<PathBuf>,
    /// With --record: what the run is remembered for (the bug it found), kept in the file.
    #[arg(long, value_name = "TEXT", requires = "record")]
    note: Option<String>,
}

#[derive(Args)]
struct SweepArgs {
    /// Seeds to run, half-open: A..B runs A, A+1, ..., B-1.
    #[arg(long)]
    seeds: SeedRange,
    #[command(flatten)]
    cluster: ClusterArgs,
    /// Worker threads (default: the machine's cores).
    #[arg(long)]
    jobs: Option<usize>,
    /// Run only every M-th seed of the range, starting at the K-th (0-based): K/M.
    #[arg(long, value_name = "K/M")]
    shard: Option<Shard>,
    /// Run every seed even after a failure, then report them all.
    #[arg(long)]
    keep_going: bool,
    /// Print one JSON object per seed, then one summary object.
    #[arg(long)]
    json: bool,
    /// Where failing seeds write their repro files (each as soon as it is found).
    #[arg(long, value_name = "DIR", default_value = ".")]
    repro_dir: PathBuf,
    /// Instead of random runs, run this scripted scenario once per seed with seeded
    /// perturbations (lost and late messages, timer jitter, crashes); the scenario
    /// builds its own cluster, so the cluster flags do not apply.
    #[arg(long, value_name = "NAME")]
    scenario: Option<String>,
}

#[derive(Args)]
struct ReplayArgs {
    /// A repro file written by a failing run.
    file: PathBuf,
    /// Print one JSON object with the result instead of the text report.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    outputs: OutputFiles,
}

#[derive(Args)]
struct ShrinkArgs {
    /// A repro file written by a failing run.
    file: PathBuf,
    /// Where to write the smaller repro file (default: FILE with .shrunk.json).
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// The most runs the search may try.
    #[arg(long, default_value_t = 400, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    max_runs: u64,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // clap prints the message; usage errors exit 2, --help and --version 0.
        Err(error) => error.exit(),
    };
    init_logging();
    let code = match cli.command {
        Command::Run(args) => run(args),
        Command::Sweep(args) => sweep(args),
        Command::Replay(args) => replay(args),
        Command::Shrink(args) => shrink::run(&args.file, args.out.as_deref(), args.max_runs),
        Command::Scenario(ScenarioCommand::List) => scenario::list(),
        Command::Scenario(ScenarioCommand::Run { name, rewrite, seed: None }) => {
            scenario::run(&name, rewrite)
        }
        Command::Scenario(ScenarioCommand::Run { name, seed: Some(seed), .. }) => {
            scenario::run_perturbed(&name, seed)
        }
    };
    match code {
        Ok(code) => ExitCode::from(code),
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(BAD_INPUT)
        }
    }
}

/// Logs go to stderr through `tracing`, filtered by RUST_LOG; without RUST_LOG, nothing is logged.
fn init_logging() {
    if std::env::var_os("RUST_LOG").is_some() {
        let filter = tracing_subscriber::EnvFilter::from_default_env();
        // Wall-clock timestamps mean nothing in a simulation; events carry `time_us`, the virtual time.
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_ansi(std::io::stderr().is_terminal())
            .without_time()
            .init();
    }
}

fn verdict_code(verdict: Verdict) -> u8 {
    u8::try_from(verdict.exit_code()).expect("exit codes fit a byte")
}

/// The output files of one run, started before it: their paths are checked (no two
/// the same, none the repro file) and created under temporary names, so a bad path
/// fails before anything runs and leaves every existing file as it was.
struct RunOutputs {
    trace: Option<OutputFile>,
    history: Option<OutputFile>,
}

impl RunOutputs {
    fn prepare(outputs: &OutputFiles, repro_path: Option<&Path>) -> Result<RunOutputs, String> {
        let mut named: Vec<(&str, &Path)> = Vec::new();
        if let Some(path) = &outputs.trace {
            named.push(("--trace", path));
        }
        if let Some(path) = &outputs.history {
            named.push(("--history", path));
        }
        if let Some(path) = repro_path {
            named.push(("the repro file", path));
        }
        check_distinct(&named)?;
        let trace = outputs.trace.as_deref().map(|path| OutputFile::create(path, "trace")).transpose()?;
        let history =
            outputs.history.as_deref().map(|path| OutputFile::create(path, "history")).transpose()?;
        Ok(RunOutputs { trace, history })
    }
}

/// Runs the plan, writing the trace and the history where asked; both are renamed into
/// place only once complete (for an interrupted run, with what it did so far, whole
/// lines only). `show_progress`: a progress bar on stderr for a run that takes a while.
fn execute(
    options: &RunOptions,
    plan: &FaultPlan,
    mut outputs: RunOutputs,
    stop: &AtomicBool,
    show_progress: bool,
) -> Result<RunReport, String> {
    let started = Instant::now();
    let bar: OnceLock<indicatif::ProgressBar> = OnceLock::new();
    let progress = |progress: Progress| {
        // Only for runs that last: a bar that flashes for 50 ms helps nobody.
        if started.elapsed() < Duration::from_secs(1) {
            return;
        }
        let bar = bar.get_or_init(|| {
            let bar = indicatif::ProgressBar::new(progress.safety_phase_us / 1_000_000);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{bar:40} {pos}/{len} virtual s of the safety phase, {msg}",
                )
                .expect("a valid template"),
            );
            bar
        });
        bar.set_position((progress.virtual_time_us / 1_000_000).min(bar.length().unwrap_or(0)));
        bar.set_message(format!("{} events", progress.events));
    };
    let control = RunControl { stop: Some(stop), progress: show_progress.then_some(&progress) };
    let writer = outputs.trace.as_mut().map(|file| file.writer() as &mut dyn Write);
    let result = sim::run_controlled(options, plan, writer, control);
    if let Some(bar) = bar.get() {
        bar.finish_and_clear();
    }
    let (report, operations) = result.map_err(|error| format!("cannot write the trace: {error}"))?;
    if let Some(file) = outputs.history.as_mut() {
        sim::history::write_json_lines(&operations, file.writer())
            .map_err(|error| format!("cannot write the history: {error}"))?;
    }
    for file in [outputs.trace, outputs.history].into_iter().flatten() {
        file.commit()?;
    }
    Ok(report)
}

/// The report as a JSON object, with the plan for `sim run` (everything the run drew).
fn report_json(report: &RunReport, plan: Option<&FaultPlan>) -> serde_json::Value {
    let mut value = serde_json::to_value(report).expect("reports serialize");
    if let Some(plan) = plan {
        value["plan"] = serde_json::to_value(plan).expect("plans serialize");
    }
    value
}

fn run(args: RunArgs) -> Result<u8, String> {
    // Bad options are refused before a seed is drawn and printed for nothing.
    args.cluster.options(0).validate()?;
    let seed = match args.seed {
        Some(seed) => seed,
        None => {
            let seed = draw_seed();
            // First, so the seed survives whatever happens next.
            eprintln!("seed: {seed} (drawn; pass --seed {seed} to run it again)");
            seed
        }
    };
    let options = args.cluster.options(seed);
    options.validate()?;
    let repro_path = args.record.clone().unwrap_or_else(|| ReproFile::path_in(&args.repro_dir, seed));
    let outputs = RunOutputs::prepare(&args.outputs, Some(&repro_path))?;
    if let Some(record) = &args.record {
        // Checked before the run, like the other outputs: a bad path fails fast.
        OutputFile::create(record, "repro")?;
    }
    if args.note.as_deref().is_some_and(|note| note.trim().is_empty()) {
        return Err("--note must say what the run is remembered for".to_string());
    }
    let plan = sim::draw_plan(&options);
    let mut header = format!(
        "sim run: seed {seed}, {} nodes, faults {}, {} ticks ({} s virtual) + liveness phase, {} clients, {} reads\n",
        options.nodes,
        options.faults,
        options.ticks,
        options.ticks as f64 / 100.0,
        options.clients,
        options.reads.name()
    );
    header.push_str(&plan.summary());
    // With --json, stdout carries only the JSON object; the plan goes to stderr.
    if args.json {
        eprint!("{header}");
    } else {
        out_now!("{header}");
    }
    let stop = interrupt::install();
    let show_progress = !args.json && std::io::stderr().is_terminal();
    let report = execute(&options, &plan, outputs, &stop, show_progress)?;
    let mut file = ReproFile::new(&options, &plan, &report);
    file.note = args.note.clone();
    let repro = match &args.record {
        Some(path) if report.verdict != Verdict::Interrupted => Some(
            file.save_as(path)
                .inspect_err(|error| eprintln!("warning: the repro file was not written: {error}")),
        ),
        Some(_) => None,
        None => (report.verdict != Verdict::Pass && report.verdict != Verdict::Interrupted)
            .then(|| save_repro(&file, &args.repro_dir)),
    };
    if args.json {
        outln!("{}", report_json(&report, Some(&plan)));
    } else {
        print_report(&options, &report, repro.as_ref());
    }
    Ok(verdict_code(report.verdict))
}

fn draw_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    // A fresh random key per process; the seed it yields is printed, so the run is still reproducible.
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |time| time.as_nanos()),
    );
    hasher.finish()
}

fn sweep(args: SweepArgs) -> Result<u8, String> {
    if let Some(name) = &args.scenario {
        return scenario::sweep(name, args.seeds, args.keep_going);
    }
    let jobs = args.jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |jobs| jobs.get()));
    if jobs == 0 || jobs > 1024 {
        return Err(format!("--jobs must be between 1 and 1024, got {jobs}"));
    }
    let options = SweepOptions {
        template: args.cluster.options(0),
        seeds: args.seeds,
        shard: args.shard.unwrap_or_default(),
        jobs,
        keep_going: args.keep_going,
    };
    options.validate()?;
    let count = options.seed_count();
    let show_bar = !args.json && std::io::stderr().is_terminal();
    let bar = show_bar.then(|| {
        let bar = indicatif::ProgressBar::new(count);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40} {pos}/{len} seeds, {elapsed} elapsed, eta {eta}",
            )
            .expect("a valid template"),
        );
        bar
    });
    if !args.json {
        eprintln!(
            "sim sweep: {count} seeds of {}..{} (shard {}), {} nodes, faults {}, {} ticks, {} clients, {} reads, {jobs} jobs",
            options.seeds.first,
            options.seeds.end,
            options.shard,
            options.template.nodes,
            options.template.faults,
            options.template.ticks,
            options.template.clients,
            options.template.reads.name()
        );
    }
    let stop = interrupt::install();
    // Each failure's repro file is written as soon as the failure is reported, so an
    // interrupted or crashed sweep keeps every one found so far.
    let mut repro_files: Vec<(u64, ReproOutcome)> = Vec::new();
    let summary = sim::sweep::sweep_until(&options, &stop, |result| {
        if let Some(bar) = &bar {
            bar.inc(1);
        }
        if result.report.verdict == Verdict::Pass {
            if args.json {
                outln!("{}", report_json(&result.report, None));
            }
            return;
        }
        let mut show = || {
            let repro =
                save_repro(&ReproFile::new(&result.options, &result.plan, &result.report), &args.repro_dir);
            if args.json {
                outln!("{}", report_json(&result.report, None));
            } else {
                outln!("seed {} failed:", result.options.seed);
                print_report(&result.options, &result.report, Some(&repro));
            }
            repro_files.push((result.options.seed, repro));
        };
        match &bar {
            Some(bar) => bar.suspend(show),
            None => show(),
        }
    });
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    if args.json {
        let failing: Vec<u64> = summary.failures.iter().map(|failure| failure.options.seed).collect();
        let object = serde_json::json!({ "summary": {
            "seeds": summary.seeds,
            "passed": summary.passed,
            "failing_seeds": failing,
            "interrupted": summary.interrupted,
            "events": summary.events,
            "wall_time_ms": summary.wall_time.as_secs_f64() * 1e3,
            "seeds_per_second": summary.seeds_per_second(),
            "events_per_second": summary.events_per_second(),
            "membership": summary.membership,
            "chunked_installs": summary.chunked_installs,
            "sessions_expired": summary.sessions_expired,
            "keys_expired": summary.keys_expired,
            "exit_code": summary.exit_code(),
        }});
        outln!("{object}");
    } else {
        let interrupted = if summary.interrupted {
            format!(" (interrupted after {} seeds of {count})", summary.seeds)
        } else {
            String::new()
        };
        outln!(
            "sweep: {} seeds, {} passed, {} failed in {:.2} s: {:.1} seeds/s, {:.2} M events/s{interrupted}",
            summary.seeds,
            summary.passed,
            summary.failures.len(),
            summary.wall_time.as_secs_f64(),
            summary.seeds_per_second(),
            summary.events_per_second() / 1e6
        );
        outln!(
            "  membership: {}; {} snapshots installed in several chunks; {} client sessions expired; {} keys expired",
            report::membership_line(&summary.membership),
            summary.chunked_installs,
            summary.sessions_expired,
            summary.keys_expired
        );
        for (failure, (_, repro)) in summary.failures.iter().zip(&repro_files).take(FAILURES_LISTED) {
            let invariant =
                failure.report.violation.as_ref().map_or("", |failure| failure.violation.invariant.name());
            let replay = match repro {
                Ok(path) => format!("sim replay {}", path.display()),
                Err(_) => "repro file not written".to_string(),
            };
            outln!("  seed {}: {} ({invariant}); {replay}", failure.options.seed, failure.report.verdict);
        }
        if summary.failures.len() > FAILURES_LISTED {
            outln!(
                "  ... and {} more failing seeds (their repro files are in {})",
                summary.failures.len() - FAILURES_LISTED,
                args.repro_dir.display()
            );
        }
        if !options.keep_going && !summary.failures.is_empty() {
            outln!("stopped at the first failing seed; --keep-going runs the rest");
        }
    }
    Ok(u8::try_from(summary.exit_code()).expect("exit codes fit a byte"))
}

fn replay(args: ReplayArgs) -> Result<u8, String> {
    let file = repro::load(&args.file).map_err(|error| format!("{}: {error}", args.file.display()))?;
    let outputs = RunOutputs::prepare(&args.outputs, Some(&args.file))?;
    let options = &file.options;
    if !args.json {
        outln!("sim replay {}: {}", args.file.display(), file.reproduce);
        if let Some(note) = &file.note {
            outln!("note: {note}");
        }
        out_now!("{}", file.plan.summary());
    }
    let stop = interrupt::install();
    let show_progress = !args.json && std::io::stderr().is_terminal();
    let report = execute(options, &file.plan, outputs, &stop, show_progress)?;
    if report.verdict == Verdict::Interrupted {
        if !args.json {
            print_report(options, &report, None);
        } else {
            outln!("{}", report_json(&report, None));
        }
        return Ok(verdict_code(report.verdict));
    }
    let invariant = |failure: Option<&sim::Failure>| failure.map(|failure| failure.violation.invariant);
    let same_verdict = report.verdict == file.verdict
        && invariant(report.violation.as_ref()) == invariant(file.violation.as_ref());
    let same_trace = report.trace_hash == file.trace_hash;
    if args.json {
        let mut value = report_json(&report, None);
        value["replay"] = serde_json::json!({
            "recorded_verdict": file.verdict,
            "recorded_invariant": invariant(file.violation.as_ref()),
            "same_verdict": same_verdict,
            "same_trace": same_trace,
        });
        outln!("{value}");
    } else {
        print_report(options, &report, None);
        let recorded = |verdict: Verdict, failure: Option<&sim::Failure>| match invariant(failure) {
            Some(invariant) => format!("{verdict} ({invariant})"),
            None => verdict.to_string(),
        };
        match (same_verdict, same_trace) {
            (true, true) => outln!("replay: same verdict and same trace as recorded"),
            (true, false) => outln!(
                "replay: same verdict, but the trace differs from the recorded one (was the core changed?)"
            ),
            (false, _) => outln!(
                "replay: DIFFERENT verdict: recorded {}, now {} (exit {REPLAY_DIFFERS})",
                recorded(file.verdict, file.violation.as_ref()),
                recorded(report.verdict, report.violation.as_ref())
            ),
        }
    }
    Ok(if same_verdict { verdict_code(report.verdict) } else { REPLAY_DIFFERS })
}
