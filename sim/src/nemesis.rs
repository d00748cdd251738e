//! Carrying out the fault schedule: crashes and restarts, pauses, network cuts and
//! flapping links; and healing everything when the liveness phase starts.

use crate::checkers::{LogView, Violation};
use crate::faults::{Fault, Partition, Target};
use crate::options::Verdict;
use crate::simulation::{Event, Simulation, LIVENESS_BOUND_MICROS};
use crate::trace::{TraceEvent, TraceKind, TraceRecord};
use crate::workload::LivenessProbe;
use raft_core::{Input, Role};

impl Simulation<'_> {
    fn resolve(&self, target: Target) -> usize {
        match target {
            Target::Node(position) => position,
            Target::Leader { fallback } => self
                .newest_leader
                .filter(|position| {
                    self.hosts[*position].node.as_ref().is_some_and(|node| node.role() == Role::Leader)
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
                if self.hosts[position].is_up() {
                    self.crash(position);
                    let incarnation = self.hosts[position].incarnation;
                    self.queue.schedule_in(down_micros, Event::Restart { node: position, incarnation });
                }
            }
            Fault::Pause { node, pause_micros } => {
                let position = self.resolve(node);
                self.record_fault(TraceKind::PauseFault, position);
                let host = &mut self.hosts[position];
                if host.is_up() && !host.paused {
                    tracing::debug!(time_us = now, node = host.id, pause_micros, "pause");
                    host.paused = true;
                    let incarnation = host.incarnation;
                    self.queue.schedule_in(pause_micros, Event::Resume { node: position, incarnation });
                }
            }
            Fault::Partition { partition, heal_after_micros } => {
                let nodes = self.hosts.len();
                let everyone_but =
                    |side: &[usize]| (0..nodes).filter(|node| !side.contains(node)).collect::<Vec<_>>();
                let (generation, kind) = match partition {
                    Partition::Isolate { node } => {
                        let isolated = [self.resolve(node)];
                        (self.network.cut(&isolated, &everyone_but(&isolated), true), TraceKind::Isolate)
                    }
                    Partition::Split { side } => {
                        (self.network.cut(&side, &everyone_but(&side), true), TraceKind::Split)
                    }
                    Partition::OneWay { from, to } => {
                        (self.network.cut(&from, &to, false), TraceKind::OneWay)
                    }
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
                self.network.flap(a, b, now, period_micros, now + duration_micros);
            }
        }
    }

    pub(crate) fn crash(&mut self, position: usize) {
        self.crashes += 1;
        let torn_write_ppm = self.plan.storage.torn_write_ppm;
        let host = &mut self.hosts[position];
        let survivors = host.crash(&mut self.storage_random, torn_write_ppm);
        let (id, durable_term) = (host.id, host.storage.durable().hard_state.term);
        tracing::debug!(time_us = self.queue.now(), node = id, survivors, "crash");
        self.trace.record(TraceRecord {
            time_us: self.queue.now(),
            event: TraceEvent::Crash,
            node: id,
            term: durable_term,
            count: survivors as u64,
            ..TraceRecord::default()
        });
        self.checkers.read_freshness.on_crash(id);
        let result = self.checkers.monotonic.on_durable_term(id, durable_term);
        self.check(result);
        self.check_committed_durable();
    }

    pub(crate) fn restart(&mut self, position: usize) {
        let host = &mut self.hosts[position];
        let id = host.id;
        if let Err(detail) = host.start() {
            self.fail(Verdict::Safety, Violation::new("restart", vec![id], detail));
            return;
        }
        let hard_state = host.storage.durable().hard_state;
        let snapshot_index = host.storage.durable().snapshot_index();
        let restored_digest = host.state_machine.digest.prefix_digest();
        tracing::debug!(time_us = self.queue.now(), node = id, term = hard_state.term, "restart");
        self.trace.record(TraceRecord {
            time_us: self.queue.now(),
            event: TraceEvent::Restart,
            node: id,
            term: hard_state.term,
            index: snapshot_index,
            ..TraceRecord::default()
        });
        let result = self.checkers.durable_vote.on_restart(id, hard_state);
        self.check(result);
        let result = self.checkers.monotonic.on_restart(id, hard_state.term, snapshot_index);
        self.check(result);
        let result = self.checkers.state_machine_safety.on_restored(id, snapshot_index, restored_digest);
        self.check(result);
        self.schedule_tick(position);
    }

    pub(crate) fn resume(&mut self, position: usize) {
        let host = &mut self.hosts[position];
        host.paused = false;
        let inbox = std::mem::take(&mut host.inbox);
        self.trace.record(TraceRecord {
            time_us: self.queue.now(),
            event: TraceEvent::Resume,
            node: host.id,
            count: inbox.len() as u64,
            ..TraceRecord::default()
        });
        self.release_held(position);
        self.report_persisted(position);
        for message in inbox {
            if self.outcome.is_some() || !self.hosts[position].is_responsive() {
                break;
            }
            self.step(position, Input::Message(message));
        }
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
        self.network.heal_all();
        for position in 0..self.hosts.len() {
            if self.outcome.is_some() {
                return;
            }
            if !self.hosts[position].is_up() {
                self.restart(position);
            } else if self.hosts[position].paused {
                self.resume(position);
            }
        }
        self.liveness = Some(LivenessProbe::default());
        self.queue.schedule_in(0, Event::LivenessProbe);
        self.queue.schedule_in(LIVENESS_BOUND_MICROS, Event::LivenessDeadline);
    }
}
