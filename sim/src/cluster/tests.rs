//! The checks the cluster makes itself, fed a broken node on purpose.

use super::Cluster;
use crate::event::Event;
use crate::event_queue::EventQueue;
use crate::faults::{FaultPlan, FaultProfile, BASE_TICK_MICROS};
use crate::options::RunOptions;
use raft_core::Role;

/// A one-node cluster whose node has elected itself and written its no-op.
fn lone_leader() -> (Cluster, EventQueue<Event>) {
    let options = RunOptions::new(1, 1, FaultProfile::None);
    let plan = FaultPlan::draw(1, FaultProfile::None, 1, BASE_TICK_MICROS);
    let mut cluster = Cluster::new(&options, &plan);
    let mut queue = EventQueue::default();
    cluster.start(0, 0);
    for _ in 0..100 {
        queue.advance_to(queue.now() + BASE_TICK_MICROS);
        cluster.tick(0, &mut queue);
        while let Some((_, event)) = queue.pop() {
            if let Event::SyncDone { node, incarnation, through, group } = event {
                cluster.sync_done(node, incarnation, through, group, &mut queue);
            }
        }
    }
    assert_eq!(cluster.hosts[0].core().map(|core| core.role()), Some(Role::Leader));
    assert!(cluster.hosts[0].core().is_some_and(|core| core.last_index() >= 1));
    (cluster, queue)
}

#[test]
fn a_log_that_matches_its_writes_passes() {
    let (cluster, _) = lone_leader();
    assert!(cluster.failure.is_none(), "{:?}", cluster.failure);
}

#[test]
fn a_core_whose_log_is_not_what_it_wrote_fires_at_its_next_write() {
    let (mut cluster, mut queue) = lone_leader();
    // The disk gains an entry behind the node's back: its image now ends one past the
    // core's log.
    let mut state = cluster.hosts[0].disk.written().clone();
    let last = state.entries.last().expect("the no-op").clone();
    state.entries.push(raft_core::Entry { index: last.index + 1, ..last });
    cluster.hosts[0].disk.restore(state);
    // A higher term arrives: the node steps down and writes its new hard state, a step
    // that writes, after which its log and the image are compared.
    let body = raft_core::MessageBody::Heartbeat { commit: 0, read_round: 0, leader_tick: 0 };
    cluster.deliver(raft_core::Message { from: 2, to: 1, term: 9, body }, &mut queue);
    let (_, failure) = cluster.failure.as_ref().expect("the check fires");
    assert_eq!(failure.violation.invariant, "log image");
    assert!(
        failure.violation.to_string().contains("but its writes describe one through 2@"),
        "{}",
        failure.violation
    );
}
