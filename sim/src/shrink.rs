//! Shrinking a failing run: a smaller run that fails the same way.
//!
//! A run is its options and its fault plan; the shrinker edits both and keeps an edit
//! when the edited run still ends in the same verdict with the same invariant broken.
//! The edits, tried in rounds until none helps:
//!
//! 1. end the safety phase just after the violation (and try halving it), and move the
//!    faults earlier (half their times, half the phase);
//! 2. drop scheduled faults, by delta debugging over the schedule (halves, quarters,
//!    ... single faults);
//! 3. fewer clients (none, one, half, one fewer);
//! 4. fewer nodes (1, 3, 5, ... below the original), faults on the removed nodes dropped;
//! 5. a plainer environment, one knob at a time: no loss, no duplicates, no long delays,
//!    no jitter, no torn writes, no clock skew, no leadership transfers, no membership
//!    changes, no compaction;
//! 6. fewer operations (clients think four times longer).
//!
//! Every edited run is a run of the same seed under an edited plan, so it draws its
//! network and workload choices afresh: the smaller run is a different schedule that
//! breaks the same rule, which is what a person debugging wants to read. The result is
//! an ordinary repro file that `sim replay` runs.

use crate::checkers::Invariant;
use crate::faults::{Fault, FaultPlan, Partition, ScheduledFault, Target, BASE_TICK_MICROS};
use crate::options::{RunOptions, RunReport, Verdict};
use crate::repro::{check_plan, ReproFile};

/// How much a run holds, for the before-and-after report.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Size {
    /// Cluster size.
    pub nodes: usize,
    /// Simulated clients.
    pub clients: usize,
    /// Scheduled faults.
    pub faults: usize,
    /// Length of the safety phase in base ticks.
    pub ticks: u64,
    /// Events simulated.
    pub events: u64,
    /// Client operations invoked.
    pub operations: u64,
    /// Virtual time at the end, in microseconds.
    pub virtual_time_us: u64,
}

impl Size {
    fn of(options: &RunOptions, plan: &FaultPlan, report: &RunReport) -> Size {
        Size {
            nodes: options.nodes,
            clients: options.clients,
            faults: plan.schedule.len(),
            ticks: options.ticks,
            events: report.events,
            operations: report.operations.invoked,
            virtual_time_us: report.virtual_time_us,
        }
    }
}

/// A shrunk run.
#[derive(Clone, Debug)]
pub struct Shrunk {
    /// The smaller run's repro file.
    pub file: ReproFile,
    /// The original's size (as replayed).
    pub before: Size,
    /// The smaller run's size.
    pub after: Size,
    /// Runs tried.
    pub runs: u64,
}

/// Why a file cannot be shrunk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ShrinkError {
    /// The file records a pass: there is nothing to keep failing.
    NothingToShrink,
    /// Replayed, it does not fail the way it records (the simulator or core changed).
    DoesNotReproduce(String),
    /// A run could not be carried out.
    Run(String),
}

impl std::fmt::Display for ShrinkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ShrinkError::NothingToShrink => {
                write!(f, "the file records a pass: there is no failure to shrink")
            }
            ShrinkError::DoesNotReproduce(what) => write!(f, "the file does not reproduce: {what}"),
            ShrinkError::Run(why) => write!(f, "a run failed: {why}"),
        }
    }
}

struct Search<'p> {
    verdict: Verdict,
    invariant: Option<Invariant>,
    runs: u64,
    max_runs: u64,
    best: (RunOptions, FaultPlan, RunReport),
    progress: &'p mut dyn FnMut(&str, &Size),
}

fn invariant_of(report: &RunReport) -> Option<Invariant> {
    report.violation.as_ref().map(|failure| failure.violation.invariant)
}

impl Search<'_> {
    fn out_of_runs(&self) -> bool {
        self.runs >= self.max_runs
    }

    /// Runs the candidate; keeps it as the best if it fails the same way.
    fn try_candidate(&mut self, options: RunOptions, plan: FaultPlan, step: &str) -> bool {
        self.try_candidate_if(options, plan, step, |_, _| true)
    }

    /// [`Search::try_candidate`], keeping the candidate only if `better(best, candidate)`
    /// also holds for the two reports.
    fn try_candidate_if(
        &mut self,
        options: RunOptions,
        plan: FaultPlan,
        step: &str,
        better: impl Fn(&RunReport, &RunReport) -> bool,
    ) -> bool {
        if self.out_of_runs() || options.validate().is_err() || check_plan(&options, &plan).is_err() {
            return false;
        }
        self.runs += 1;
        let Ok(report) = crate::run(&options, &plan, None) else { return false };
        if report.verdict != self.verdict
            || invariant_of(&report) != self.invariant
            || !better(&self.best.2, &report)
        {
            return false;
        }
        (self.progress)(step, &Size::of(&options, &plan, &report));
        self.best = (options, plan, report);
        true
    }

    fn options(&self) -> RunOptions {
        self.best.0.clone()
    }

    fn plan(&self) -> FaultPlan {
        self.best.1.clone()
    }

    /// 1. The safety phase ends just after the violation, or at half its length.
    fn shorten(&mut self) -> bool {
        let mut progressed = false;
        let failure_ticks = self
            .best
            .2
            .violation
            .as_ref()
            .map(|failure| failure.time_us / BASE_TICK_MICROS + 1)
            .unwrap_or(u64::MAX);
        let mut lengths = vec![failure_ticks];
        let mut half = self.best.0.ticks / 2;
        while half >= 1 && lengths.len() < 12 {
            lengths.push(half);
            half /= 2;
        }
        for ticks in lengths {
            if ticks >= self.best.0.ticks {
                continue;
            }
            let mut options = self.options();
            options.ticks = ticks;
            let mut plan = self.plan();
            plan.schedule.retain(|scheduled| scheduled.at_micros < ticks * BASE_TICK_MICROS);
            if self.try_candidate(options, plan, "a shorter safety phase") {
                progressed = true;
            }
        }
        progressed
    }

    /// 1b. Everything earlier: the faults at half their times, the safety phase half
    /// as long (the violation often needs the faults' order, not their dates).
    fn earlier(&mut self) -> bool {
        let mut progressed = false;
        while !self.best.1.schedule.is_empty() && self.best.0.ticks > 1 {
            let mut options = self.options();
            options.ticks = options.ticks.div_ceil(2);
            let mut plan = self.plan();
            plan.schedule.iter_mut().for_each(|scheduled| scheduled.at_micros /= 2);
            if !self.try_candidate(options, plan, "faults earlier") {
                break;
            }
            progressed = true;
        }
        progressed
    }

    /// 2. Delta debugging over the scheduled faults.
    fn drop_faults(&mut self) -> bool {
        let mut progressed = false;
        let mut chunks = 2;
        while !self.best.1.schedule.is_empty() && !self.out_of_runs() {
            let length = self.best.1.schedule.len();
            let chunk = length.div_ceil(chunks);
            let mut removed_any = false;
            let mut start = 0;
            while start < self.best.1.schedule.len() {
                let mut plan = self.plan();
                let end = (start + chunk).min(plan.schedule.len());
                plan.schedule.drain(start..end);
                if self.try_candidate(self.options(), plan, "fewer faults") {
                    removed_any = true;
                    progressed = true;
                } else {
                    start = end;
                }
            }
            if !removed_any {
                if chunk == 1 {
                    break;
                }
                chunks = (chunks * 2).min(self.best.1.schedule.len().max(1));
            }
        }
        progressed
    }

    /// 3. Fewer clients.
    fn fewer_clients(&mut self) -> bool {
        let clients = self.best.0.clients;
        let mut counts = vec![0, 1, clients / 2, clients.saturating_sub(1)];
        counts.sort_unstable();
        counts.dedup();
        for count in counts.into_iter().filter(|&count| count < clients) {
            let mut options = self.options();
            options.clients = count;
            if self.try_candidate(options, self.plan(), "fewer clients") {
                return true;
            }
        }
        false
    }

    /// 4. Fewer nodes.
    fn fewer_nodes(&mut self) -> bool {
        let nodes = self.best.0.nodes;
        for count in (1..nodes).step_by(2) {
            let mut options = self.options();
            options.nodes = count;
            if self.try_candidate(options, without_nodes_from(&self.best.1, count), "fewer nodes") {
                return true;
            }
        }
        false
    }

    /// 5. A plainer environment, one knob at a time.
    fn plainer(&mut self) -> bool {
        type Edit = fn(&mut FaultPlan);
        let edits: [(&str, Edit); 12] = [
            ("no message loss", |plan| plan.network.loss_ppm = 0),
            ("no duplicates", |plan| plan.network.duplicate_ppm = 0),
            ("no long delays", |plan| plan.network.delay_tail_ppm = 0),
            ("no jitter", |plan| plan.network.delay_jitter_micros = 0),
            ("no torn writes", |plan| plan.storage.torn_write_ppm = 0),
            ("no flipped bits", |plan| plan.storage.bit_flip_ppm = 0),
            ("no failed syncs", |plan| plan.storage.sync_failure_ppm = 0),
            ("instant syncs", |plan| {
                plan.storage.sync_min_micros = 0;
                plan.storage.sync_max_micros = 0;
            }),
            ("no clock skew", |plan| plan.tick_micros.iter_mut().for_each(|tick| *tick = BASE_TICK_MICROS)),
            ("no leadership transfers", |plan| plan.workload.transfer_interval_micros = 0),
            ("no membership changes", |plan| plan.workload.membership_interval_micros = 0),
            ("no compaction", |plan| plan.workload.compaction_threshold_entries = 1 << 40),
        ];
        let mut progressed = false;
        for (step, edit) in edits {
            let mut plan = self.plan();
            edit(&mut plan);
            if plan != self.best.1 && self.try_candidate(self.options(), plan, step) {
                progressed = true;
            }
        }
        progressed
    }

    /// 6. Fewer operations: clients think longer between them; kept only if the run
    ///    really has fewer.
    fn fewer_operations(&mut self) -> bool {
        if self.best.0.clients == 0 || self.best.2.operations.invoked == 0 {
            return false;
        }
        let mut plan = self.plan();
        plan.workload.think_micros = plan.workload.think_micros.saturating_mul(4);
        self.try_candidate_if(self.options(), plan, "fewer client operations", |best, candidate| {
            candidate.operations.invoked < best.operations.invoked
        })
    }
}

/// The plan for the first `nodes` nodes of `plan`'s cluster: faults that name a
/// removed node are dropped, leader targets fall back to node 0, cuts keep their
/// remaining nodes (and are dropped if a side empties).
pub fn without_nodes_from(plan: &FaultPlan, nodes: usize) -> FaultPlan {
    let mut smaller = plan.clone();
    smaller.tick_micros.truncate(nodes);
    let keep_target = |target: Target| match target {
        Target::Node(position) => (position < nodes).then_some(target),
        Target::Leader { fallback } => {
            Some(Target::Leader { fallback: if fallback < nodes { fallback } else { 0 } })
        }
    };
    let keep_side = |side: &[usize]| -> Option<Vec<usize>> {
        let kept: Vec<usize> = side.iter().copied().filter(|&position| position < nodes).collect();
        (!kept.is_empty() && kept.len() < nodes).then_some(kept)
    };
    smaller.schedule = plan
        .schedule
        .iter()
        .filter_map(|scheduled| {
            let fault = match &scheduled.fault {
                Fault::Crash { node, down_micros } => {
                    Fault::Crash { node: keep_target(*node)?, down_micros: *down_micros }
                }
                Fault::Pause { node, pause_micros } => {
                    Fault::Pause { node: keep_target(*node)?, pause_micros: *pause_micros }
                }
                Fault::Partition { partition, heal_after_micros } => {
                    let partition = match partition {
                        Partition::Isolate { node } => Partition::Isolate { node: keep_target(*node)? },
                        Partition::Split { side } => Partition::Split { side: keep_side(side)? },
                        Partition::OneWay { from, to } => {
                            Partition::OneWay { from: keep_side(from)?, to: keep_side(to)? }
                        }
                    };
                    Fault::Partition { partition, heal_after_micros: *heal_after_micros }
                }
                Fault::Flap { a, b, .. } if *a >= nodes || *b >= nodes => return None,
                flap @ Fault::Flap { .. } => flap.clone(),
            };
            Some(ScheduledFault { at_micros: scheduled.at_micros, fault })
        })
        .collect();
    smaller
}

/// Shrinks the failing run `file` records, trying at most `max_runs` runs;
/// `progress` hears of every step that kept the failure, with the size reached.
pub fn shrink(
    file: &ReproFile,
    max_runs: u64,
    progress: &mut dyn FnMut(&str, &Size),
) -> Result<Shrunk, ShrinkError> {
    if file.verdict == Verdict::Pass {
        return Err(ShrinkError::NothingToShrink);
    }
    let report =
        crate::run(&file.options, &file.plan, None).map_err(|error| ShrinkError::Run(error.to_string()))?;
    let recorded_invariant = file.violation.as_ref().map(|failure| failure.violation.invariant);
    if report.verdict != file.verdict || invariant_of(&report) != recorded_invariant {
        return Err(ShrinkError::DoesNotReproduce(format!(
            "recorded {} ({}), replayed {} ({})",
            file.verdict,
            recorded_invariant.map_or("no invariant".to_string(), |invariant| invariant.to_string()),
            report.verdict,
            invariant_of(&report).map_or("no invariant".to_string(), |invariant| invariant.to_string()),
        )));
    }
    let before = Size::of(&file.options, &file.plan, &report);
    let mut search = Search {
        verdict: file.verdict,
        invariant: recorded_invariant,
        runs: 1,
        max_runs,
        best: (file.options.clone(), file.plan.clone(), report),
        progress,
    };
    for _round in 0..4 {
        let mut progressed = search.shorten();
        progressed |= search.drop_faults();
        progressed |= search.fewer_clients();
        progressed |= search.fewer_nodes();
        while search.fewer_operations() {
            progressed = true;
        }
        progressed |= search.plainer();
        progressed |= search.earlier();
        progressed |= search.shorten();
        if !progressed || search.out_of_runs() {
            break;
        }
    }
    let (options, plan, report) = search.best;
    let after = Size::of(&options, &plan, &report);
    let mut shrunk = ReproFile::new(&options, &plan, &report);
    shrunk.note = file.note.clone();
    Ok(Shrunk { file: shrunk, before, after, runs: search.runs })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{FaultProfile, HostBug};

    #[test]
    fn removing_nodes_drops_the_faults_that_name_them() {
        let plan = FaultPlan::draw(3, FaultProfile::Heavy, 5, 60 * 1_000_000);
        let smaller = without_nodes_from(&plan, 3);
        assert_eq!(smaller.tick_micros.len(), 3);
        let options = RunOptions { nodes: 3, ..RunOptions::new(3, 3, FaultProfile::Heavy) };
        check_plan(&options, &smaller).unwrap();
        assert!(smaller.schedule.len() <= plan.schedule.len());
    }

    #[test]
    fn a_broken_host_run_shrinks_to_a_smaller_one_that_fails_the_same_way() {
        let mut options = RunOptions::new(1, 5, FaultProfile::Heavy);
        options.host_bug = Some(HostBug::SendBeforeSync);
        let plan = crate::draw_plan(&options);
        let report = crate::run(&options, &plan, None).unwrap();
        assert_eq!(report.verdict, Verdict::Safety);
        let file = ReproFile::new(&options, &plan, &report);
        let mut steps = Vec::new();
        let shrunk = shrink(&file, 300, &mut |step, _| steps.push(step.to_string())).unwrap();
        assert!(!steps.is_empty());
        assert_eq!(shrunk.file.verdict, Verdict::Safety);
        assert_eq!(
            shrunk.file.violation.as_ref().map(|failure| failure.violation.invariant),
            file.violation.as_ref().map(|failure| failure.violation.invariant)
        );
        assert!(shrunk.after.events < shrunk.before.events, "{:?} -> {:?}", shrunk.before, shrunk.after);
        assert!(shrunk.after.faults <= shrunk.before.faults);
        // The shrunk file replays to the same verdict.
        let replay = crate::run(&shrunk.file.options, &shrunk.file.plan, None).unwrap();
        assert_eq!((replay.verdict, replay.trace_hash), (Verdict::Safety, shrunk.file.trace_hash.clone()));
    }

    #[test]
    fn a_passing_file_has_nothing_to_shrink() {
        let options = RunOptions::new(1, 3, FaultProfile::Light);
        let plan = crate::draw_plan(&options);
        let report = crate::run(&options, &plan, None).unwrap();
        let file = ReproFile::new(&options, &plan, &report);
        assert_eq!(shrink(&file, 10, &mut |_, _| {}).unwrap_err(), ShrinkError::NothingToShrink);
    }
}
