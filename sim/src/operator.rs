//! The operator of the safety phase: leadership transfers and membership changes sent
//! to whichever node it believes leads, at the plan's intervals. The key-value clients
//! are in [`crate::clients`], the liveness phase's probe in [`crate::liveness`].

use crate::event::Event;
use crate::event_queue::Micros;
use crate::trace::{TraceEvent, TraceRecord};
use crate::world::World;
use raft_core::{MembershipChange, NodeId, RequestId};
use raft_host::{Answer, Request};

/// The operator's own request ids count up from 1 (clients, connections and the
/// liveness probe have high bits of their own).
#[derive(Debug)]
pub(crate) struct Operator {
    next_request_id: RequestId,
    leader_guess: Option<usize>,
}

impl Operator {
    /// An operator with no idea yet where the leader is.
    pub(crate) fn new() -> Operator {
        Operator { next_request_id: 1, leader_guess: None }
    }

    fn next_request_id(&mut self) -> RequestId {
        let id = self.next_request_id;
        self.next_request_id += 1;
        id
    }

    /// The node a request goes to: the believed leader, else a random node.
    fn target(&mut self, world: &mut World<'_>) -> usize {
        match self.leader_guess {
            Some(position) => position,
            None => world.random.index(world.cluster.hosts.len()),
        }
    }

    /// A node's answer to any request tells the operator where the leader is: a node
    /// that applied a write or a change, or started a transfer, leads; a refusal or an
    /// unknown answer may name the leader.
    pub(crate) fn on_answer(&mut self, position: usize, answer: &Answer<kv::Response>, nodes: usize) {
        let hint = match answer {
            Answer::Applied { .. } | Answer::Done { .. } | Answer::Started => {
                self.leader_guess = Some(position);
                return;
            }
            Answer::Refused { leader_hint, .. } | Answer::Unknown { leader_hint } => *leader_hint,
            Answer::Read(_) => return,
        };
        self.leader_guess = hint.filter(|id| (1..=nodes as NodeId).contains(id)).map(|id| (id - 1) as usize);
    }

    /// Starts a client request that recurs every ~`mean_gap_micros` (as `event`): queues
    /// the next one and picks the node the clients believe leads. `None` once the safety
    /// phase is over: the liveness phase has its own client.
    fn next_request(
        &mut self,
        world: &mut World<'_>,
        event: Event,
        mean_gap_micros: Micros,
    ) -> Option<usize> {
        if !world.in_safety_phase() {
            return None;
        }
        let gap = world.next_gap(mean_gap_micros);
        world.queue.schedule_in(gap, event);
        Some(self.target(world))
    }

    pub(crate) fn transfer(&mut self, world: &mut World<'_>) {
        let interval = world.plan.workload.transfer_interval_micros;
        let Some(position) = self.next_request(world, Event::Transfer, interval) else {
            return;
        };
        let to = world.random.index(world.cluster.hosts.len()) as NodeId + 1;
        world.trace.record(TraceRecord {
            time_us: world.queue.now(),
            event: TraceEvent::Transfer,
            node: position as u64 + 1,
            peer: to,
            ..TraceRecord::default()
        });
        if world.cluster.hosts[position].is_responsive() {
            let id = self.next_request_id();
            world.cluster.submit(position, id, Request::TransferLeadership(to), &mut world.queue);
        }
    }

    pub(crate) fn change_membership(&mut self, world: &mut World<'_>) {
        let interval = world.plan.workload.membership_interval_micros;
        let Some(position) = self.next_request(world, Event::ChangeMembership, interval) else {
            return;
        };
        let nodes = world.cluster.hosts.len();
        let Some(node) = world.cluster.hosts[position].core() else {
            self.leader_guess = None;
            return;
        };
        // Remove a voter, or add a removed node back; never below a majority of the
        // cluster, so the churn stresses the protocol rather than starving it, and never
        // so far that nodes with damaged storage (down for good) could be half the voters.
        let voters = node.voters().to_vec();
        let outsiders: Vec<NodeId> = (1..=nodes as NodeId).filter(|id| !voters.contains(id)).collect();
        let fewest_voters = (nodes / 2 + 1).max(2 * world.cluster.damaged_nodes() + 1);
        let add = !outsiders.is_empty() && (voters.len() <= fewest_voters || world.random.chance(500_000));
        let change = if add {
            MembershipChange::AddVoter(outsiders[world.random.index(outsiders.len())])
        } else if voters.len() > fewest_voters {
            MembershipChange::RemoveNode(voters[world.random.index(voters.len())])
        } else {
            return;
        };
        let (added, subject) = match change {
            MembershipChange::AddVoter(id) => (1, id),
            MembershipChange::AddLearner(id) => (2, id),
            MembershipChange::RemoveNode(id) => (0, id),
        };
        let id = self.next_request_id();
        world.trace.record(TraceRecord {
            time_us: world.queue.now(),
            event: TraceEvent::ChangeMembership,
            node: position as u64 + 1,
            peer: subject,
            count: added,
            index: id,
            ..TraceRecord::default()
        });
        if world.cluster.hosts[position].is_responsive() {
            world.cluster.submit(
                position,
                id,
                Request::ChangeMembership { change, context: Vec::new() },
                &mut world.queue,
            );
        }
    }
}
