//! The operator of the safety phase: leadership transfers and membership changes sent
//! to whichever node it believes leads, at the plan's intervals. The key-value clients
//! are in [`crate::clients`], the liveness phase's probe in [`crate::liveness`].

use crate::event::Event;
use crate::event_queue::Micros;
use crate::trace::{TraceEvent, TraceRecord};
use crate::world::World;
use raft_core::{Configuration, MembershipChange, NodeId, RequestId};
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
        let configuration = node.configuration().clone();
        // Never below a majority of the cluster, so the churn stresses the protocol
        // rather than starving it, and never so few voters that nodes with damaged
        // storage (down for good) could be half of them.
        let fewest_voters = (nodes / 2 + 1).max(2 * world.cluster.damaged_nodes() + 1);
        let Some(change) = pick_change(&configuration, nodes, fewest_voters, &mut world.random) else {
            return;
        };
        // The trace names the change: `count` its kind, `peer` the node (or, for a
        // change of several members, the new voters as a bit set).
        let (kind, subject) = match &change {
            MembershipChange::RemoveNode(id) => (0, *id),
            MembershipChange::AddVoter(id) => (1, *id),
            MembershipChange::AddLearner(id) => (2, *id),
            MembershipChange::AddVoterWhenCaughtUp(id) => (4, *id),
            MembershipChange::SetMembers { voters, .. } => (3, voters.iter().map(|voter| 1 << voter).sum()),
        };
        let id = self.next_request_id();
        world.trace.record(TraceRecord {
            time_us: world.queue.now(),
            event: TraceEvent::ChangeMembership,
            node: position as u64 + 1,
            peer: subject,
            count: kind,
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

/// A change the operator asks for, given the configuration the node it asks holds: a
/// learner added, added to be promoted once caught up, or promoted, a voter added, demoted or removed one at a time, or, one
/// time in three, any new split of the nodes into voters and learners at once (a joint
/// change). `None` when nothing fits (a joint change under way, or no room to shrink).
fn pick_change(
    configuration: &Configuration,
    nodes: usize,
    fewest_voters: usize,
    random: &mut crate::random::Random,
) -> Option<MembershipChange> {
    if configuration.is_joint() {
        return None;
    }
    let everyone: Vec<NodeId> = (1..=nodes as NodeId).collect();
    let voters = configuration.incoming_voters();
    let learners = configuration.learners();
    let outsiders: Vec<NodeId> = everyone.iter().copied().filter(|id| !configuration.contains(*id)).collect();
    let pick = |list: &[NodeId], random: &mut crate::random::Random| list[random.index(list.len())];
    if random.chance(333_333) {
        let mut shuffled = everyone.clone();
        for at in (1..shuffled.len()).rev() {
            shuffled.swap(at, random.index(at + 1));
        }
        let fewest_voters = fewest_voters.min(nodes);
        let count = fewest_voters + random.index(nodes - fewest_voters + 1);
        let (new_voters, rest) = shuffled.split_at(count);
        let new_learners = rest.iter().copied().filter(|_| random.chance(500_000)).collect();
        return Some(MembershipChange::SetMembers { voters: new_voters.to_vec(), learners: new_learners });
    }
    if !learners.is_empty() && random.chance(500_000) {
        return Some(MembershipChange::AddVoter(pick(learners, random)));
    }
    if !outsiders.is_empty() && (voters.len() <= fewest_voters || random.chance(500_000)) {
        let outsider = pick(&outsiders, random);
        return Some(match random.index(3) {
            0 => MembershipChange::AddLearner(outsider),
            1 => MembershipChange::AddVoterWhenCaughtUp(outsider),
            _ => MembershipChange::AddVoter(outsider),
        });
    }
    if voters.len() > fewest_voters {
        let voter = pick(voters, random);
        return Some(if random.chance(300_000) {
            MembershipChange::AddLearner(voter)
        } else {
            MembershipChange::RemoveNode(voter)
        });
    }
    if !learners.is_empty() {
        return Some(MembershipChange::RemoveNode(pick(learners, random)));
    }
    None
}
