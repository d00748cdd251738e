//! Carrying out the fault schedule: crashes and restarts, pauses, network cuts and
//! flapping links; and healing everything when the liveness phase starts.

use crate::checkers::LogView;
use crate::event_queue::Micros;
use crate::faults::{Fault, Partition, Target};
use crate::simulation::{Event, Simulation, LIVENESS_BOUND_MICROS};
use crate::trace::{TraceEvent, TraceKind, TraceRecord};
use crate::workload::LivenessProbe;
use raft_core::Role;

/// How long a node stopped by a storage failure stays down before it is restarted.
const DISK_FAILURE_RESTART_MICROS: Micros = 1_000_000;

impl Simulation<'_> {
    fn resolve(&self, target: Target) -> usize {
        match target {
            Target::Node(position) => position,
            Target::Leader { fallback } => self
                .cluster
                .newest_leader
                .filter(|position| {
                    self.cluster.hosts[*position].core().is_some_and(|node| node.role() == Role::Leader)
                })
                .unwrap_or(fallback),
        }
    }

    fn record_fault(&mut self, kind: TraceKind, position: usize) {
        let record = TraceRecord {
            time_us: self.queue.now(),
            event: TraceEvent::Fault,
            kind,
            ..TraceRecord::default()
        };
        self.trace.record(TraceRecord { node: position as u64 + 1, ..record });
    }

    pub(crate) fn apply_fault(&mut self, index: usize) {
        let fault = self.plan.schedule[index].fault.clone();
        let now = self.queue.now();
        match fault {
            Fault::Crash { node, down_micros } => {
                let position = self.resolve(node);
                self.record_fault(TraceKind::CrashFault, position);
                if self.cluster.hosts[position].is_up() {
                    self.crash(position);
                    let incarnation = self.cluster.hosts[position].incarnation;
                    self.queue.schedule_in(down_micros, Event::Restart { node: position, incarnation });
                }
            }
            Fault::Pause { node, pause_micros } => {
                let position = self.resolve(node);
                self.record_fault(TraceKind::PauseFault, position);
                let host = &mut self.cluster.hosts[position];
                if host.is_up() && !host.paused {
                    tracing::debug!(time_us = now, node = host.id, pause_micros, "pause");
                    host.paused = true;
                    let incarnation = host.incarnation;
                    self.queue.schedule_in(pause_micros, Event::Resume { node: position, incarnation });
                    self.availability.member_lost();
                }
            }
            Fault::Partition { partition, heal_after_micros } => {
                let nodes = self.cluster.hosts.len();
                let everyone_but =
                    |side: &[usize]| (0..nodes).filter(|node| !side.contains(node)).collect::<Vec<_>>();
                let isolated = match partition {
                    Partition::Isolate { node } => Some([self.resolve(node)]),
                    _ => None,
                };
                let network = &mut self.cluster.network;
                let (generation, kind) = match partition {
                    Partition::Isolate { .. } => {
                        let isolated = isolated.expect("resolved above");
                        (network.cut(&isolated, &everyone_but(&isolated), true), TraceKind::Isolate)
                    }
                    Partition::Split { side } => {
                        (network.cut(&side, &everyone_but(&side), true), TraceKind::Split)
                    }
                    Partition::OneWay { from, to } => (network.cut(&from, &to, false), TraceKind::OneWay),
                };
                tracing::debug!(time_us = now, ?kind, heal_after_micros, "partition");
                self.trace.record(TraceRecord {
                    time_us: now,
                    event: TraceEvent::Fault,
                    kind,
                    index: generation,
                    ..TraceRecord::default()
                });
                self.queue.schedule_in(heal_after_micros, Event::HealCut { generation });
            }
            Fault::Flap { a, b, period_micros, duration_micros } => {
                self.trace.record(TraceRecord {
                    time_us: now,
                    event: TraceEvent::Fault,
                    kind: TraceKind::Flap,
                    node: a as u64 + 1,
                    peer: b as u64 + 1,
                    ..TraceRecord::default()
                });
                self.cluster.network.flap(a, b, now, period_micros, now + duration_micros);
            }
        }
    }

    pub(crate) fn crash(&mut self, position: usize) {
        // A crash breaks any healthy majority; ticks may stop, so do not wait to notice.
        self.availability.member_lost();
        let in_flight = self.cluster.crash(position, self.queue.now());
        self.stop_ticks(position);
        let host = &self.cluster.hosts[position];
        let (id, durable_term) = (host.id, host.disk.durable().hard_state.term);
        tracing::debug!(time_us = self.queue.now(), node = id, in_flight, "crash");
        self.trace.record(TraceRecord {
            time_us: self.queue.now(),
            event: TraceEvent::Crash,
            node: id,
            term: durable_term,
            count: in_flight as u64,
            ..TraceRecord::default()
        });
    }

    /// Nodes that stopped because their storage failed: down like a crash, restarted a
    /// second later, as a supervisor would.
    pub(crate) fn after_disk_failures(&mut self) {
        for position in std::mem::take(&mut self.cluster.stopped) {
            self.availability.member_lost();
            self.stop_ticks(position);
            let host = &self.cluster.hosts[position];
            let (id, durable_term, incarnation) =
                (host.id, host.disk.durable().hard_state.term, host.incarnation);
            self.trace.record(TraceRecord {
                time_us: self.queue.now(),
                event: TraceEvent::Crash,
                node: id,
                term: durable_term,
                ..TraceRecord::default()
            });
            self.queue
                .schedule_in(DISK_FAILURE_RESTART_MICROS, Event::Restart { node: position, incarnation });
        }
    }

    pub(crate) fn restart(&mut self, position: usize) {
        self.cluster.restart(position, self.queue.now());
        if self.cluster.failed() {
            return;
        }
        let host = &self.cluster.hosts[position];
        let durable = host.disk.durable();
        let (id, term, snapshot_index) = (host.id, durable.hard_state.term, durable.snapshot_index());
        tracing::debug!(time_us = self.queue.now(), node = id, term, "restart");
        self.trace.record(TraceRecord {
            time_us: self.queue.now(),
            event: TraceEvent::Restart,
            node: id,
            term,
            index: snapshot_index,
            ..TraceRecord::default()
        });
        self.schedule_tick(position);
    }

    pub(crate) fn resume(&mut self, position: usize) {
        let id = self.cluster.hosts[position].id;
        let waiting = self.cluster.hosts[position].inbox.len();
        self.trace.record(TraceRecord {
            time_us: self.queue.now(),
            event: TraceEvent::Resume,
            node: id,
            count: waiting as u64,
            ..TraceRecord::default()
        });
        self.cluster.resume(position, &mut self.queue);
    }

    /// The safety phase is over: heal the network, restart and resume every node, and
    /// give the cluster [`LIVENESS_BOUND_MICROS`] to recover.
    pub(crate) fn start_liveness(&mut self) {
        tracing::debug!(time_us = self.queue.now(), "liveness phase");
        self.trace.record(TraceRecord {
            time_us: self.queue.now(),
            event: TraceEvent::HealAll,
            ..TraceRecord::default()
        });
        self.cluster.network.heal_all();
        for position in 0..self.cluster.hosts.len() {
            if self.cluster.failed() {
                return;
            }
            if !self.cluster.hosts[position].is_up() {
                self.restart(position);
            } else if self.cluster.hosts[position].paused {
                self.resume(position);
            }
        }
        self.liveness = Some(LivenessProbe::default());
        self.queue.schedule_in(0, Event::LivenessProbe);
        self.queue.schedule_in(LIVENESS_BOUND_MICROS, Event::LivenessDeadline);
    }
}
