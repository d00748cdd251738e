//! The `sim` command: run one seed, sweep many, or replay a saved failure.
//!
//! Exit codes (DESIGN.md): 0 every check held; 1 a safety violation (linearizability
//! included); 3 a liveness failure; 4 the linearizability search ran out of steps
//! (undecided, never a pass); 2 bad usage or a bad input file, with a message and
//! nothing written.

use clap::{Args, Parser, Subcommand};
use sim::repro::{self, ReproFile};
use sim::sweep::{SeedRange, Shard, SweepOptions};
use sim::{FaultPlan, FaultProfile, HostBug, ReadMode, RunOptions, RunReport, Verdict};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

const BAD_INPUT: u8 = 2;

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
}

#[derive(Args)]
struct ClusterArgs {
    /// Cluster size (1 to 15).
    #[arg(long, default_value_t = 5)]
    nodes: usize,
    /// Fault profile: none, light, heavy or swarm (each seed draws its own mix).
    #[arg(long, default_value = "heavy")]
    faults: FaultProfile,
    /// Length of the safety phase in base ticks of 10 virtual milliseconds.
    #[arg(long, default_value_t = sim::options::DEFAULT_TICKS)]
    ticks: u64,
    /// Simulated key-value clients, each with one operation in flight (0 to 1000).
    #[arg(long, default_value_t = sim::options::DEFAULT_CLIENTS)]
    clients: usize,
    /// How clients read: index (ReadIndex through the leader, linearizable) or local
    /// (any node answers from its own state: stale reads for the checker to catch).
    #[arg(long, default_value = "index")]
    reads: ReadMode,
    /// Run with a deliberately broken host to see the checkers fire: send-before-sync
    /// (safety) or no-ticks (liveness).
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
    /// Print one JSON object with the result instead of the text report.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    outputs: OutputFiles,
    /// Where a failing run writes its repro file.
    #[arg(long, value_name = "DIR", default_value = ".")]
    repro_dir: PathBuf,
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
    /// Where failing seeds write their repro files.
    #[arg(long, value_name = "DIR", default_value = ".")]
    repro_dir: PathBuf,
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
    verdict.exit_code() as u8
}

fn validated(options: RunOptions) -> Result<RunOptions, String> {
    options.validate()?;
    Ok(options)
}

fn create(path: &Option<PathBuf>, what: &str) -> Result<Option<std::io::BufWriter<std::fs::File>>, String> {
    path.as_ref()
        .map(|path| {
            std::fs::File::create(path)
                .map(std::io::BufWriter::new)
                .map_err(|error| format!("cannot create {what} file {}: {error}", path.display()))
        })
        .transpose()
}

/// Runs the plan, writing the trace and the history where asked. Both files are
/// created before the run, so a bad path fails fast.
fn execute(options: &RunOptions, plan: &FaultPlan, outputs: &OutputFiles) -> Result<RunReport, String> {
    let mut trace_output = create(&outputs.trace, "trace")?;
    let mut history_output = create(&outputs.history, "history")?;
    let writer = trace_output.as_mut().map(|writer| writer as &mut dyn Write);
    let (report, operations) = sim::run_with_history(options, plan, writer)
        .map_err(|error| format!("cannot write the trace: {error}"))?;
    if let Some(output) = history_output.as_mut() {
        sim::history::write_json_lines(&operations, output)
            .map_err(|error| format!("cannot write the history: {error}"))?;
    }
    Ok(report)
}

fn run(args: RunArgs) -> Result<u8, String> {
    let seed = match args.seed {
        Some(seed) => seed,
        None => {
            let seed = draw_seed();
            // First, so the seed survives whatever happens next.
            eprintln!("seed: {seed} (drawn; pass --seed {seed} to run it again)");
            seed
        }
    };
    let options = validated(args.cluster.options(seed))?;
    let plan = sim::draw_plan(&options);
    let mut header = String::new();
    header.push_str(&format!(
        "sim run: seed {seed}, {} nodes, faults {}, {} ticks ({} s virtual) + liveness phase, {} clients, {} reads\n",
        options.nodes,
        options.faults,
        options.ticks,
        options.ticks as f64 / 100.0,
        options.clients,
        options.reads.name()
    ));
    header.push_str(&plan.to_string());
    // With --json, stdout carries only the JSON object; the plan goes to stderr.
    if args.json {
        eprint!("{header}");
    } else {
        print!("{header}");
    }
    let report = execute(&options, &plan, &args.outputs)?;
    finish_run(&options, &plan, &report, args.json, &args.repro_dir)
}

fn finish_run(
    options: &RunOptions,
    plan: &FaultPlan,
    report: &RunReport,
    json: bool,
    repro_dir: &Path,
) -> Result<u8, String> {
    let repro_path =
        if report.verdict == Verdict::Pass {
            None
        } else {
            let file = ReproFile::new(options, plan, report);
            Some(file.save(repro_dir).map_err(|error| {
                format!("cannot write the repro file in {}: {error}", repro_dir.display())
            })?)
        };
    if json {
        println!("{}", serde_json::to_string(report).expect("reports serialize"));
    } else {
        print_report(options, report, repro_path.as_deref());
    }
    Ok(verdict_code(report.verdict))
}

fn print_report(options: &RunOptions, report: &RunReport, repro_path: Option<&Path>) {
    let summary = format!(
        "{} events, {:.3} s virtual, {} commits, {} elections, {} crashes, {} messages ({} dropped), trace {}, {:.1} ms wall",
        report.events,
        report.virtual_time_us as f64 / 1e6,
        report.commits,
        report.elections,
        report.crashes,
        report.messages_sent,
        report.messages_dropped,
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
    match &report.violation {
        None => {
            println!("result: pass: {summary}");
            println!("clients: {clients}");
        }
        Some(failure) => {
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
            println!(
                "{heading}: {} at {:.6} s virtual {place}",
                failure.violation.invariant,
                failure.time_us as f64 / 1e6,
            );
            println!("  {}", failure.violation.detail);
            println!("  run: {summary}");
            println!("  clients: {clients}");
            println!("reproduce: {}", options.command_line());
            if let Some(path) = repro_path {
                println!("repro file: {} (sim replay {})", path.display(), path.display());
            }
        }
    }
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
    let template = validated(args.cluster.options(0))?;
    let jobs = args.jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |jobs| jobs.get()));
    if jobs == 0 || jobs > 1024 {
        return Err(format!("--jobs must be between 1 and 1024, got {jobs}"));
    }
    let options = SweepOptions {
        template,
        seeds: args.seeds,
        shard: args.shard.unwrap_or_default(),
        jobs,
        keep_going: args.keep_going,
    };
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
    let mut failures_shown = 0;
    let summary = sim::sweep::sweep(&options, |result| {
        if let Some(bar) = &bar {
            bar.inc(1);
        }
        if args.json {
            println!("{}", serde_json::to_string(&result.report).expect("reports serialize"));
        } else if result.report.verdict != Verdict::Pass {
            failures_shown += 1;
            let print = || {
                println!("seed {} failed:", result.options.seed);
                print_report(&result.options, &result.report, None);
            };
            match &bar {
                Some(bar) => bar.suspend(print),
                None => print(),
            }
        }
    });
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let mut repro_paths = Vec::new();
    for failure in &summary.failures {
        let file = ReproFile::new(&failure.options, &failure.plan, &failure.report);
        let path =
            file.save(&args.repro_dir).map_err(|error| format!("cannot write a repro file: {error}"))?;
        repro_paths.push(path);
    }
    if args.json {
        let failing: Vec<u64> = summary.failures.iter().map(|failure| failure.options.seed).collect();
        let object = serde_json::json!({ "summary": {
            "seeds": summary.seeds,
            "passed": summary.passed,
            "failing_seeds": failing,
            "events": summary.events,
            "wall_time_ms": summary.wall_time.as_secs_f64() * 1e3,
            "seeds_per_second": summary.seeds_per_second(),
            "events_per_second": summary.events_per_second(),
            "exit_code": summary.exit_code(),
        }});
        println!("{object}");
    } else {
        println!(
            "sweep: {} seeds, {} passed, {} failed in {:.2} s: {:.1} seeds/s, {:.2} M events/s",
            summary.seeds,
            summary.passed,
            summary.failures.len(),
            summary.wall_time.as_secs_f64(),
            summary.seeds_per_second(),
            summary.events_per_second() / 1e6
        );
        for (failure, path) in summary.failures.iter().zip(&repro_paths) {
            println!(
                "  seed {}: {} ({}); sim replay {}",
                failure.options.seed,
                failure.report.verdict,
                failure.report.violation.as_ref().map_or("", |failure| failure.violation.invariant.as_str()),
                path.display()
            );
        }
        if !options.keep_going && !summary.failures.is_empty() {
            println!("stopped at the first failing seed; --keep-going runs the rest");
        }
    }
    debug_assert!(failures_shown <= summary.failures.len());
    Ok(summary.exit_code() as u8)
}

fn replay(args: ReplayArgs) -> Result<u8, String> {
    let file = repro::load(&args.file).map_err(|error| format!("{}: {error}", args.file.display()))?;
    let options = &file.options;
    if !args.json {
        println!("sim replay {}: {}", args.file.display(), file.reproduce);
        print!("{}", file.plan);
    }
    let report = execute(options, &file.plan, &args.outputs)?;
    let same_verdict = report.verdict == file.verdict
        && report.violation.as_ref().map(|failure| &failure.violation.invariant)
            == file.violation.as_ref().map(|failure| &failure.violation.invariant);
    let same_trace = report.trace_hash == file.trace_hash;
    if args.json {
        println!("{}", serde_json::to_string(&report).expect("reports serialize"));
    } else {
        print_report(options, &report, None);
        match (same_verdict, same_trace) {
            (true, true) => println!("replay: same verdict and same trace as recorded"),
            (true, false) => println!(
                "replay: same verdict, but the trace differs from the recorded one (was the core changed?)"
            ),
            (false, _) => {
                println!("replay: DIFFERENT verdict: recorded {}, now {}", file.verdict, report.verdict)
            }
        }
    }
    Ok(verdict_code(report.verdict))
}
