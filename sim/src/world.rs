//! What every part of a run acts on: the virtual clock and its event queue, the
//! cluster (nodes, disks, network, checkers), the plan, the history of client
//! operations, the trace, the workload's random stream, and when each node ticks next.
//!
//! The parts of a run (the clients, the pipelining connections, the operator, the
//! nemesis, the liveness probe, the availability rules) each keep their own state and
//! are handed the world when an event concerns them; `simulation.rs` owns the world
//! and the parts and routes each event to its part. No part reaches another's state.

use crate::checkers::Violation;
use crate::cluster::Cluster;
use crate::event::Event;
use crate::event_queue::{EventQueue, Micros};
use crate::faults::{FaultPlan, BASE_TICK_MICROS};
use crate::history::ClientOp;
use crate::options::{RunOptions, Verdict};
use crate::random::{Purpose, Random};
use crate::trace::{Trace, TraceRecord};

/// See the module docs.
pub(crate) struct World<'t> {
    pub(crate) options: RunOptions,
    pub(crate) plan: FaultPlan,
    pub(crate) queue: EventQueue<Event>,
    /// The nodes, their disks, the network and the checkers.
    pub(crate) cluster: Cluster,
    /// Every client operation so far, in invocation order.
    pub(crate) history: Vec<ClientOp>,
    /// Client sessions that expired under a client (it got `SESSIONEXPIRED` and opened a new one).
    pub(crate) sessions_renewed: u64,
    pub(crate) trace: Trace<'t>,
    /// The workload's random stream: clients and the operator draw from it in turn.
    pub(crate) random: Random,
    /// When each node ticks next.
    pub(crate) ticks: Ticks,
    /// Whether the liveness phase has begun: clients and the operator start nothing new.
    pub(crate) liveness_phase: bool,
}

impl<'t> World<'t> {
    /// The world of a run of `options` under `plan`.
    pub(crate) fn new(options: &RunOptions, plan: &FaultPlan, trace: Trace<'t>) -> World<'t> {
        World {
            options: options.clone(),
            plan: plan.clone(),
            queue: EventQueue::default(),
            cluster: Cluster::new(options, plan),
            history: Vec::new(),
            sessions_renewed: 0,
            trace,
            random: Random::new(options.seed, Purpose::Workload),
            ticks: Ticks::new(options.nodes),
            liveness_phase: false,
        }
    }

    /// A gap before the next request of a kind whose mean gap is `mean_micros`.
    pub(crate) fn next_gap(&mut self, mean_micros: Micros) -> Micros {
        self.random.between(1, 2 * mean_micros)
    }

    /// Whether the safety phase is still on.
    pub(crate) fn in_safety_phase(&self) -> bool {
        !self.liveness_phase
    }

    /// When the safety phase ends.
    pub(crate) fn safety_phase_micros(&self) -> Micros {
        self.options.ticks * BASE_TICK_MICROS
    }

    /// Ends the run with `verdict`, keeping the first failure only.
    pub(crate) fn fail(&mut self, verdict: Verdict, violation: Violation) {
        self.cluster.fail(verdict, violation, self.queue.now());
    }

    /// Writes `record` to the trace, stamped with the time now.
    pub(crate) fn record(&mut self, record: TraceRecord) {
        self.trace.record(TraceRecord { time_us: self.queue.now(), ..record });
    }

    /// The node at `position` (just started or restarted) ticks one period from now.
    pub(crate) fn schedule_tick(&mut self, position: usize) {
        let period = self.cluster.hosts[position].tick_micros;
        self.ticks.set(position, Some(self.queue.now() + period));
    }

    /// The node at `position` went down: no more ticks until it restarts.
    pub(crate) fn stop_ticks(&mut self, position: usize) {
        self.ticks.set(position, None);
    }
}

/// When each node (by position) ticks next; `None` while it is down. Ticks are a third
/// of all events: kept out of the queue, they cost a scan of a few words.
#[derive(Debug)]
pub(crate) struct Ticks {
    next: Vec<Option<Micros>>,
    /// The earliest of `next` (the lowest position first at one instant), kept up to
    /// date as they change.
    earliest: Option<(Micros, usize)>,
}

impl Ticks {
    fn new(nodes: usize) -> Ticks {
        Ticks { next: vec![None; nodes], earliest: None }
    }

    /// The next tick due: when, and whose.
    pub(crate) fn earliest(&self) -> Option<(Micros, usize)> {
        self.earliest
    }

    fn set(&mut self, position: usize, at: Option<Micros>) {
        self.next[position] = at;
        let mut earliest: Option<(Micros, usize)> = None;
        for (position, next) in self.next.iter().enumerate() {
            if let Some(at) = *next {
                if earliest.is_none_or(|(earliest_at, _)| at < earliest_at) {
                    earliest = Some((at, position));
                }
            }
        }
        self.earliest = earliest;
    }
}
