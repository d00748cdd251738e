//! Carrying out the fault schedule: crashes and restarts, pauses, network cuts and
//! flapping links; and healing everything when the liveness phase starts. The nemesis
//! keeps no state of its own: the schedule is the plan's, what it breaks the world's.
//! It tells the availability rules when a member is lost.

use crate::availability::Availability;
use crate::checkers::LogView;
use crate::event::Event;
use crate::event_queue::Micros;
use crate::faults::{Fault, Partition, Target};
use crate::trace::{TraceEvent, TraceKind, TraceRecord};
use crate::world::World;
use raft_core::Role;

/// How long a node stopped by a storage failure stays down before it is restarted.
const DISK_FAILURE_RESTART_MICROS: Micros = 1_000_000;

fn resolve(world: &World<'_>, target: Target) -> usize {
    match target {
        Target::Node(position) => position,
        Target::Leader { fallback } => world
            .cluster
            .newest_leader
            .filter(|position| {
                world.cluster.hosts[*position].core().is_some_and(|node| node.role() == Role::Leader)
            })
            .unwrap_or(fallback),
    }
}

fn record_fault(world: &mut World<'_>, kind: TraceKind, position: usize) {
    let record =
        TraceRecord { time_us: world.queue.now(), event: TraceEvent::Fault, kind, ..TraceRecord::default() };
    world.trace.record(TraceRecord { node: position as u64 + 1, ..record });
}

/// Carries out fault `index` of the plan's schedule.
pub(crate) fn apply_fault(world: &mut World<'_>, availability: &mut Availability, index: usize) {
    let fault = world.plan.schedule[index].fault.clone();
    let now = world.queue.now();
    match fault {
        Fault::Crash { node, down_micros } => {
            let position = resolve(world, node);
            record_fault(world, TraceKind::CrashFault, position);
            if world.cluster.hosts[position].is_up() {
                crash(world, availability, position);
                let incarnation = world.cluster.hosts[position].incarnation;
                world.queue.schedule_in(down_micros, Event::Restart { node: position, incarnation });
            }
        }
        Fault::Pause { node, pause_micros } => {
            let position = resolve(world, node);
            record_fault(world, TraceKind::PauseFault, position);
            let host = &mut world.cluster.hosts[position];
            if host.is_up() && !host.paused {
                tracing::debug!(time_us = now, node = host.id, pause_micros, "pause");
                host.paused = true;
                let incarnation = host.incarnation;
                world.queue.schedule_in(pause_micros, Event::Resume { node: position, incarnation });
                availability.member_lost();
            }
        }
        Fault::Partition { partition, heal_after_micros } => {
            let nodes = world.cluster.hosts.len();
            let everyone_but =
                |side: &[usize]| (0..nodes).filter(|node| !side.contains(node)).collect::<Vec<_>>();
            let isolated = match partition {
                Partition::Isolate { node } => Some([resolve(world, node)]),
                _ => None,
            };
            let network = &mut world.cluster.network;
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
            world.trace.record(TraceRecord {
                time_us: now,
                event: TraceEvent::Fault,
                kind,
                index: generation,
                ..TraceRecord::default()
            });
            world.queue.schedule_in(heal_after_micros, Event::HealCut { generation });
        }
        Fault::Flap { a, b, period_micros, duration_micros } => {
            world.trace.record(TraceRecord {
                time_us: now,
                event: TraceEvent::Fault,
                kind: TraceKind::Flap,
                node: a as u64 + 1,
                peer: b as u64 + 1,
                ..TraceRecord::default()
            });
            world.cluster.network.flap(a, b, now, period_micros, now + duration_micros);
        }
    }
}

/// Crashes the node at `position`.
pub(crate) fn crash(world: &mut World<'_>, availability: &mut Availability, position: usize) {
    // A crash breaks any healthy majority; ticks may stop, so do not wait to notice.
    availability.member_lost();
    let in_flight = world.cluster.crash(position, world.queue.now());
    world.stop_ticks(position);
    let host = &world.cluster.hosts[position];
    let (id, durable_term) = (host.id, host.disk.durable().hard_state.term);
    tracing::debug!(time_us = world.queue.now(), node = id, in_flight, "crash");
    world.trace.record(TraceRecord {
        time_us: world.queue.now(),
        event: TraceEvent::Crash,
        node: id,
        term: durable_term,
        count: in_flight as u64,
        ..TraceRecord::default()
    });
}

/// Nodes that stopped because their storage failed: down like a crash, restarted a
/// second later, as a supervisor would.
pub(crate) fn after_disk_failures(world: &mut World<'_>, availability: &mut Availability) {
    for position in std::mem::take(&mut world.cluster.stopped) {
        availability.member_lost();
        world.stop_ticks(position);
        let host = &world.cluster.hosts[position];
        let (id, durable_term, incarnation) =
            (host.id, host.disk.durable().hard_state.term, host.incarnation);
        world.trace.record(TraceRecord {
            time_us: world.queue.now(),
            event: TraceEvent::Crash,
            node: id,
            term: durable_term,
            ..TraceRecord::default()
        });
        world.queue.schedule_in(DISK_FAILURE_RESTART_MICROS, Event::Restart { node: position, incarnation });
    }
}

/// Restarts the node at `position` from its disk.
pub(crate) fn restart(world: &mut World<'_>, position: usize) {
    world.cluster.restart(position, world.queue.now());
    if world.cluster.failed() {
        return;
    }
    let host = &world.cluster.hosts[position];
    let durable = host.disk.durable();
    let (id, term, snapshot_index) = (host.id, durable.hard_state.term, durable.snapshot_index());
    tracing::debug!(time_us = world.queue.now(), node = id, term, "restart");
    world.trace.record(TraceRecord {
        time_us: world.queue.now(),
        event: TraceEvent::Restart,
        node: id,
        term,
        index: snapshot_index,
        ..TraceRecord::default()
    });
    world.schedule_tick(position);
}

/// Resumes the paused node at `position`.
pub(crate) fn resume(world: &mut World<'_>, position: usize) {
    let id = world.cluster.hosts[position].id;
    let waiting = world.cluster.hosts[position].inbox.len();
    world.trace.record(TraceRecord {
        time_us: world.queue.now(),
        event: TraceEvent::Resume,
        node: id,
        count: waiting as u64,
        ..TraceRecord::default()
    });
    world.cluster.resume(position, &mut world.queue);
}

/// The safety phase is over: heal the network, restart and resume every node.
pub(crate) fn heal_all(world: &mut World<'_>) {
    tracing::debug!(time_us = world.queue.now(), "liveness phase");
    world.trace.record(TraceRecord {
        time_us: world.queue.now(),
        event: TraceEvent::HealAll,
        ..TraceRecord::default()
    });
    world.cluster.network.heal_all();
    for position in 0..world.cluster.hosts.len() {
        if world.cluster.failed() {
            return;
        }
        if !world.cluster.hosts[position].is_up() {
            restart(world, position);
        } else if world.cluster.hosts[position].paused {
            resume(world, position);
        }
    }
}
