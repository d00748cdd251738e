//! Many seeds, in parallel, with results reported in seed order.
//!
//! Workers take seed positions from a shared counter, so every position below a
//! failing one has been taken before it; a sweep that stops at its first failure
//! waits for those and reports the lowest failing seed. The set of seeds reported
//! and their order never depend on `jobs` or thread timing.

use crate::control::RunControl;
use crate::faults::FaultPlan;
use crate::options::{RunOptions, RunReport, Verdict};
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Seeds `first..end` (half-open), as the command line writes them: `A..B`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeedRange {
    /// The first seed.
    pub first: u64,
    /// One past the last seed.
    pub end: u64,
}

impl FromStr for SeedRange {
    type Err = String;
    fn from_str(text: &str) -> Result<SeedRange, String> {
        let (first, end) = text
            .split_once("..")
            .ok_or_else(|| format!("expected a seed range like 0..1000, got {text:?}"))?;
        let parse = |part: &str| {
            part.trim()
                .parse::<u64>()
                .map_err(|_| format!("{part:?} is not a seed (a number from 0 to 2^64-1)"))
        };
        let range = SeedRange { first: parse(first)?, end: parse(end)? };
        if range.end <= range.first {
            return Err(format!("the seed range {text} is empty"));
        }
        Ok(range)
    }
}

/// Which part of a range this process runs: every `count`-th seed starting at `index`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    /// This shard, from 0.
    pub index: u64,
    /// How many shards share the range.
    pub count: u64,
}

impl Default for Shard {
    fn default() -> Shard {
        Shard { index: 0, count: 1 }
    }
}

impl FromStr for Shard {
    type Err = String;
    fn from_str(text: &str) -> Result<Shard, String> {
        let (index, count) =
            text.split_once('/').ok_or_else(|| format!("expected a shard like 0/4, got {text:?}"))?;
        let index: u64 = index.trim().parse().map_err(|_| format!("{index:?} is not a shard number"))?;
        let count: u64 = count.trim().parse().map_err(|_| format!("{count:?} is not a shard count"))?;
        if count == 0 || index >= count {
            return Err(format!("shard {text} must have 0 <= K < M"));
        }
        Ok(Shard { index, count })
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// A sweep: the options of every run but the seed, and which seeds.
#[derive(Clone, Debug)]
pub struct SweepOptions {
    /// Options shared by every run; the seed field is replaced per run.
    pub template: RunOptions,
    /// The seeds.
    pub seeds: SeedRange,
    /// This process's share of them.
    pub shard: Shard,
    /// Worker threads.
    pub jobs: usize,
    /// Run every seed even after a failure.
    pub keep_going: bool,
}

impl SweepOptions {
    /// Refuses a sweep with no seeds to run (a shard past the end of its range).
    pub fn validate(&self) -> Result<(), String> {
        self.template.validate()?;
        if self.seed_count() == 0 {
            return Err(format!(
                "shard {} of the seeds {}..{} holds no seeds: a shard K/M runs seed A+K, A+K+M, ..., so K must be below the range's length ({})",
                self.shard,
                self.seeds.first,
                self.seeds.end,
                self.seeds.end - self.seeds.first
            ));
        }
        Ok(())
    }

    /// How many seeds this shard runs.
    pub fn seed_count(&self) -> u64 {
        let span = self.seeds.end - self.seeds.first;
        span.saturating_sub(self.shard.index).div_ceil(self.shard.count)
    }

    /// The seed at `position` of this shard's sequence.
    fn seed_at(&self, position: u64) -> u64 {
        self.seeds.first + self.shard.index + position * self.shard.count
    }
}

/// One seed's outcome.
#[derive(Clone, Debug)]
pub struct SeedResult {
    /// The run's options.
    pub options: RunOptions,
    /// The plan it drew.
    pub plan: FaultPlan,
    /// What it found.
    pub report: RunReport,
}

/// What a sweep found.
#[derive(Clone, Debug, Default)]
pub struct SweepSummary {
    /// Seeds run and reported.
    pub seeds: u64,
    /// Seeds that passed.
    pub passed: u64,
    /// Events simulated over all reported seeds.
    pub events: u64,
    /// Committed membership changes over all reported seeds.
    pub membership: crate::checkers::MembershipStats,
    /// Snapshots installed in more than one chunk, over all reported seeds.
    pub chunked_installs: u64,
    /// Client sessions that expired under their clients, over all reported seeds.
    pub sessions_expired: u64,
    /// Keys whose time to live ran out, over all reported seeds (see `RunReport`).
    pub keys_expired: u64,
    /// Failing seeds, lowest first.
    pub failures: Vec<SeedResult>,
    /// Wall-clock time of the sweep.
    pub wall_time: Duration,
    /// Whether the sweep was stopped before it ran every seed it meant to.
    pub interrupted: bool,
}

impl SweepSummary {
    /// The exit code: 130 if interrupted (whatever it found: the sweep is not done),
    /// else that of the lowest failing seed, else 0.
    pub fn exit_code(&self) -> i32 {
        if self.interrupted {
            return Verdict::Interrupted.exit_code();
        }
        self.failures.first().map_or(0, |failure| failure.report.verdict.exit_code())
    }

    /// Seeds per second of wall time.
    pub fn seeds_per_second(&self) -> f64 {
        self.seeds as f64 / self.wall_time.as_secs_f64().max(1e-9)
    }

    /// Simulated events per second of wall time (all workers together).
    pub fn events_per_second(&self) -> f64 {
        self.events as f64 / self.wall_time.as_secs_f64().max(1e-9)
    }
}

/// Runs the sweep; `on_result` sees every reported seed, in seed order, as results come in.
pub fn sweep(options: &SweepOptions, on_result: impl FnMut(&SeedResult)) -> SweepSummary {
    sweep_until(options, &AtomicBool::new(false), on_result)
}

/// Runs the sweep like [`sweep`] until `stop` is set (Ctrl-C, say): then no new seed
/// starts, the seeds in flight are abandoned (they report nothing), every seed that
/// finished is reported in seed order, and the summary says it was interrupted.
pub fn sweep_until(
    options: &SweepOptions,
    stop: &AtomicBool,
    mut on_result: impl FnMut(&SeedResult),
) -> SweepSummary {
    let started = Instant::now();
    let count = options.seed_count();
    let next_position = AtomicU64::new(0);
    // The lowest failing position so far; workers take no position above it unless keep_going.
    let stop_after = AtomicU64::new(u64::MAX);
    let mut summary = SweepSummary::default();
    std::thread::scope(|scope| {
        // Bounded, so workers wait while the reporting thread (printing, writing repro
        // files) is behind: an interrupted sweep then has only a few results to flush.
        let (sender, receiver) = mpsc::sync_channel::<(u64, SeedResult)>(2 * options.jobs.max(1));
        for _ in 0..options.jobs.max(1) {
            let sender = sender.clone();
            let (next_position, stop_after) = (&next_position, &stop_after);
            scope.spawn(move || loop {
                let position = next_position.fetch_add(1, Ordering::Relaxed);
                let past_failure = !options.keep_going && position > stop_after.load(Ordering::Relaxed);
                if position >= count || past_failure || stop.load(Ordering::Relaxed) {
                    break;
                }
                let run_options = RunOptions { seed: options.seed_at(position), ..options.template.clone() };
                // A panic here is the simulator's own bug (core panics are verdicts):
                // name the seed before passing it on, so it can be reproduced.
                let control = RunControl { stop: Some(stop), progress: None };
                // (The control holds only a flag: nothing a panic could leave half-changed.)
                let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    let plan = crate::draw_plan(&run_options);
                    crate::run_controlled(&run_options, &plan, None, control)
                        .map(|(report, _)| (plan, report))
                }));
                let result = match outcome {
                    Ok(Ok((_, report))) if report.verdict == Verdict::Interrupted => break,
                    Ok(Ok((plan, report))) => SeedResult { options: run_options, plan, report },
                    Ok(Err(error)) => {
                        unreachable!("a run without a trace output cannot fail to write: {error}")
                    }
                    Err(panic) => {
                        eprintln!(
                            "the simulator panicked on seed {}; reproduce: {}",
                            run_options.seed,
                            run_options.command_line()
                        );
                        std::panic::resume_unwind(panic);
                    }
                };
                if result.report.verdict != Verdict::Pass {
                    stop_after.fetch_min(position, Ordering::Relaxed);
                }
                if sender.send((position, result)).is_err() {
                    break;
                }
            });
        }
        drop(sender);
        // Reorder: report position p only after every position below it.
        let mut waiting = BTreeMap::new();
        let mut next_to_report = 0;
        for (position, result) in receiver {
            waiting.insert(position, result);
            while let Some(result) = waiting.remove(&next_to_report) {
                if options.keep_going || next_to_report <= stop_after.load(Ordering::Relaxed) {
                    report(&mut summary, &mut on_result, result);
                }
                next_to_report += 1;
            }
        }
        // Positions past a failure were skipped; report what ran below the first failure.
        for (position, result) in waiting {
            if options.keep_going || position <= stop_after.load(Ordering::Relaxed) {
                report(&mut summary, &mut on_result, result);
            }
        }
    });
    summary.interrupted = stop.load(Ordering::Relaxed) && summary.seeds < count;
    summary.wall_time = started.elapsed();
    summary
}

fn report(summary: &mut SweepSummary, on_result: &mut impl FnMut(&SeedResult), result: SeedResult) {
    summary.seeds += 1;
    summary.events += result.report.events;
    summary.membership.add(&result.report.membership);
    summary.chunked_installs += result.report.chunked_installs;
    summary.sessions_expired += result.report.sessions_expired;
    summary.keys_expired += result.report.keys_expired;
    on_result(&result);
    if result.report.verdict == Verdict::Pass {
        summary.passed += 1;
    } else {
        summary.failures.push(result);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::faults::FaultProfile;

    #[test]
    fn ranges_and_shards_parse_and_refuse_nonsense() {
        assert_eq!("3..10".parse::<SeedRange>(), Ok(SeedRange { first: 3, end: 10 }));
        assert!("10..3".parse::<SeedRange>().unwrap_err().contains("empty"));
        assert!("ten..20".parse::<SeedRange>().is_err());
        assert!("7".parse::<SeedRange>().is_err());
        assert_eq!("1/4".parse::<Shard>(), Ok(Shard { index: 1, count: 4 }));
        assert!("4/4".parse::<Shard>().is_err());
        assert!("0/0".parse::<Shard>().is_err());
    }

    #[test]
    fn a_shard_with_no_seeds_is_refused() {
        let options = SweepOptions {
            template: RunOptions::new(0, 3, FaultProfile::None),
            seeds: SeedRange { first: 0, end: 3 },
            shard: Shard { index: 5, count: 10 },
            jobs: 1,
            keep_going: false,
        };
        assert!(options.validate().unwrap_err().contains("holds no seeds"));
        assert!(SweepOptions { shard: Shard { index: 2, count: 10 }, ..options }.validate().is_ok());
    }

    #[test]
    fn a_stopped_sweep_runs_nothing_more_and_says_so() {
        let mut template = RunOptions::new(0, 3, FaultProfile::Light);
        template.ticks = 100;
        let options = SweepOptions {
            template,
            seeds: SeedRange { first: 0, end: 50 },
            shard: Shard::default(),
            jobs: 2,
            keep_going: true,
        };
        let stop = AtomicBool::new(false);
        let mut seen = 0;
        let summary = sweep_until(&options, &stop, |_| {
            seen += 1;
            if seen == 3 {
                stop.store(true, Ordering::Relaxed);
            }
        });
        assert!(summary.interrupted);
        assert!(summary.seeds >= 3 && summary.seeds < 50, "{}", summary.seeds);
        assert_eq!(summary.exit_code(), 130);
    }

    #[test]
    fn shards_split_a_range_without_overlap_or_gaps() {
        let template = RunOptions::new(0, 3, FaultProfile::None);
        let seeds = SeedRange { first: 100, end: 111 };
        let mut all = Vec::new();
        for index in 0..3 {
            let options = SweepOptions {
                template: template.clone(),
                seeds,
                shard: Shard { index, count: 3 },
                jobs: 1,
                keep_going: true,
            };
            all.extend((0..options.seed_count()).map(|position| options.seed_at(position)));
        }
        all.sort_unstable();
        assert_eq!(all, (100..111).collect::<Vec<_>>());
    }

    #[test]
    fn results_arrive_in_seed_order_whatever_the_jobs() {
        let mut template = RunOptions::new(0, 3, FaultProfile::Light);
        template.ticks = 100;
        let seeds = SeedRange { first: 0, end: 8 };
        let mut orders = Vec::new();
        for jobs in [1, 3] {
            let options = SweepOptions {
                template: template.clone(),
                seeds,
                shard: Shard::default(),
                jobs,
                keep_going: false,
            };
            let mut order = Vec::new();
            let summary =
                sweep(&options, |result| order.push((result.options.seed, result.report.trace_hash.clone())));
            assert_eq!(summary.seeds, 8);
            assert_eq!(summary.exit_code(), 0);
            orders.push(order);
        }
        assert_eq!(orders[0], orders[1]);
        assert_eq!(orders[0].iter().map(|(seed, _)| *seed).collect::<Vec<_>>(), (0..8).collect::<Vec<_>>());
    }
}
