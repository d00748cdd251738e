//! The operator of the safety phase (leadership transfers and membership changes sent
//! to whichever node it believes leads), and the liveness probe of the second phase.
//! The key-value clients are in [`crate::clients`].

use crate::cluster::{Answered, Host};
use crate::event_queue::Micros;
use crate::random::{Purpose, Random};
use crate::simulation::{Event, Simulation};
use crate::trace::{TraceEvent, TraceRecord};
use kv::{ClientId, Command, Operation};
use raft_core::{LogIndex, MembershipChange, NodeId, RequestId, Role, Term};
use raft_host::{Answer, Request};

/// The client id of the liveness probe's writes.
const PROBE_CLIENT: ClientId = u64::MAX;

/// Request ids at or above this are the liveness probe's; the operator counts up from 1.
const PROBE_REQUEST_IDS: RequestId = 1 << 62;

/// The workload's random stream (clients and operator draw from it) and the
/// operator's view of where the leader is.
#[derive(Debug)]
pub(crate) struct Workload {
    pub(crate) random: Random,
    next_request_id: RequestId,
    leader_guess: Option<usize>,
}

impl Workload {
    /// Clients for `seed`.
    pub(crate) fn new(seed: u64) -> Workload {
        Workload { random: Random::new(seed, Purpose::Workload), next_request_id: 1, leader_guess: None }
    }

    /// A gap before the next request of a kind whose mean gap is `mean_micros`.
    pub(crate) fn next_gap(&mut self, mean_micros: Micros) -> Micros {
        self.random.between(1, 2 * mean_micros)
    }

    fn next_request_id(&mut self) -> RequestId {
        let id = self.next_request_id;
        self.next_request_id += 1;
        id
    }

    /// The node a client sends to: the believed leader, else a random node.
    fn target(&mut self, nodes: usize) -> usize {
        match self.leader_guess {
            Some(position) => position,
            None => self.random.index(nodes),
        }
    }

    /// A node's answer to any request tells the operator where the leader is: a node
    /// that applied a write or a change, or started a transfer, leads; a refusal or an
    /// unknown answer may name the leader.
    fn on_answer(&mut self, position: usize, answer: &Answer<kv::Response>, nodes: usize) {
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
}

/// The liveness phase's client: it proposes a probe entry to the agreed leader and,
/// like any client, proposes again if no probe is committed within a timeout (a new
/// leader may have lost the entry; that is allowed, and only a retry can tell).
#[derive(Debug, Default)]
pub(crate) struct LivenessProbe {
    attempts: u64,
    /// When the latest probe was proposed.
    last_proposed_at: Option<Micros>,
    /// Where probes were committed (a leader applied one and answered).
    committed: Vec<LogIndex>,
}

/// How long the liveness client waits for a probe to commit before proposing another.
const PROBE_RETRY_MICROS: Micros = 1_000_000;

impl Simulation<'_> {
    /// Hands an answer to whoever asked: a client, the liveness probe or the operator.
    pub(crate) fn on_answer(&mut self, answered: Answered) {
        let Answered { node, request, answer } = answered;
        let nodes = self.cluster.hosts.len();
        self.workload.on_answer(node, &answer, nodes);
        if request >= PROBE_REQUEST_IDS {
            if let (Some(probe), Answer::Applied { index, .. }) = (self.liveness.as_mut(), &answer) {
                probe.committed.push(*index);
            }
        } else if crate::clients::client_of(request).is_some() {
            self.on_client_answer(node, request, answer);
        } else if crate::connections::connection_of(request).is_some() {
            self.on_connection_answer(node, request, answer);
        }
    }
}

impl Simulation<'_> {
    fn in_safety_phase(&self) -> bool {
        self.liveness.is_none()
    }

    /// Starts a client request that recurs every ~`mean_gap_micros` (as `event`): queues
    /// the next one and picks the node the clients believe leads. `None` once the safety
    /// phase is over: the liveness phase has its own client.
    fn next_request(&mut self, event: Event, mean_gap_micros: Micros) -> Option<usize> {
        if !self.in_safety_phase() {
            return None;
        }
        let gap = self.workload.next_gap(mean_gap_micros);
        self.queue.schedule_in(gap, event);
        Some(self.workload.target(self.cluster.hosts.len()))
    }

    pub(crate) fn transfer(&mut self) {
        let Some(position) = self.next_request(Event::Transfer, self.plan.workload.transfer_interval_micros)
        else {
            return;
        };
        let to = self.workload.random.index(self.cluster.hosts.len()) as NodeId + 1;
        self.trace.record(TraceRecord {
            time_us: self.queue.now(),
            event: TraceEvent::Transfer,
            node: position as u64 + 1,
            peer: to,
            ..TraceRecord::default()
        });
        if self.cluster.hosts[position].is_responsive() {
            let id = self.workload.next_request_id();
            self.cluster.submit(position, id, Request::TransferLeadership(to), &mut self.queue);
        }
    }

    pub(crate) fn change_membership(&mut self) {
        let interval = self.plan.workload.membership_interval_micros;
        let Some(position) = self.next_request(Event::ChangeMembership, interval) else {
            return;
        };
        let nodes = self.cluster.hosts.len();
        let Some(node) = self.cluster.hosts[position].core() else {
            self.workload.leader_guess = None;
            return;
        };
        // Remove a voter, or add a removed node back; never below a majority of the
        // cluster, so the churn stresses the protocol rather than starving it, and never
        // so far that nodes with damaged storage (down for good) could be half the voters.
        let voters = node.voters().to_vec();
        let outsiders: Vec<NodeId> = (1..=nodes as NodeId).filter(|id| !voters.contains(id)).collect();
        let fewest_voters = (nodes / 2 + 1).max(2 * self.cluster.damaged_nodes() + 1);
        let add =
            !outsiders.is_empty() && (voters.len() <= fewest_voters || self.workload.random.chance(500_000));
        let change = if add {
            MembershipChange::AddVoter(outsiders[self.workload.random.index(outsiders.len())])
        } else if voters.len() > fewest_voters {
            MembershipChange::RemoveVoter(voters[self.workload.random.index(voters.len())])
        } else {
            return;
        };
        let (added, subject) = match change {
            MembershipChange::AddVoter(id) => (1, id),
            MembershipChange::RemoveVoter(id) => (0, id),
        };
        let id = self.workload.next_request_id();
        self.trace.record(TraceRecord {
            time_us: self.queue.now(),
            event: TraceEvent::ChangeMembership,
            node: position as u64 + 1,
            peer: subject,
            count: added,
            index: id,
            ..TraceRecord::default()
        });
        if self.cluster.hosts[position].is_responsive() {
            self.cluster.submit(
                position,
                id,
                Request::ChangeMembership { change, context: Vec::new() },
                &mut self.queue,
            );
        }
    }

    /// The host of node `id`, if the cluster has one (a buggy core may name any id).
    fn host_of(&self, id: NodeId) -> Option<&Host> {
        usize::try_from(id)
            .ok()
            .and_then(|id| id.checked_sub(1))
            .and_then(|position| self.cluster.hosts.get(position))
    }

    /// The leader every voter (in the leader's configuration) follows, if there is one.
    /// Removed nodes keep running but are no longer replicated to; they do not count.
    fn agreed_leader(&self) -> Option<usize> {
        let (position, leader) = self
            .cluster
            .hosts
            .iter()
            .enumerate()
            .filter_map(|(position, host)| host.core().map(|node| (position, node)))
            .filter(|(_, node)| node.role() == Role::Leader)
            .max_by_key(|(_, node)| node.term())?;
        // A voter whose storage refused its damaged directory stays down: the rest must
        // carry on without it.
        let every_voter_agrees = leader.voters().iter().all(|&voter| {
            self.host_of(voter).is_some_and(|host| host.refused)
                || self
                    .host_of(voter)
                    .and_then(Host::core)
                    .is_some_and(|node| node.term() == leader.term() && node.leader() == Some(leader.id()))
        });
        every_voter_agrees.then_some(position)
    }

    /// The committed probe entry, and whether every voter of the agreed leader applied it.
    fn committed_probe(&self) -> Option<((LogIndex, Term), bool)> {
        let probe = self.liveness.as_ref()?;
        let index = *probe.committed.first()?;
        let term =
            self.cluster.checkers.state_machine_safety.term_at(index).expect("a committed probe was applied");
        let applied_everywhere = self.agreed_leader().is_some_and(|leader| {
            let voters = self.cluster.hosts[leader].core().expect("a leader runs").voters();
            voters.iter().all(|&voter| {
                self.host_of(voter).is_some_and(|host| host.refused)
                    || self
                        .host_of(voter)
                        .and_then(|host| host.driver.as_ref())
                        .is_some_and(|driver| driver.applied_index() >= index)
            })
        });
        Some(((index, term), applied_everywhere))
    }

    /// Checks whether the healed cluster has recovered; proposes a probe entry once
    /// there is a leader everyone agrees on, and again if none commits in time.
    pub(crate) fn probe_liveness(&mut self) {
        let now = self.queue.now();
        if let Some(((index, term), applied_everywhere)) = self.committed_probe() {
            // Every read asked during the safety phase must be answered or refused by
            // now, and every client operation in flight must have finished.
            let reads_done = self.cluster.checkers.read_freshness.oldest_pending().is_none();
            if applied_everywhere && reads_done && self.busy_clients().is_empty() {
                self.trace.record(TraceRecord {
                    time_us: now,
                    event: TraceEvent::Recovered,
                    index,
                    term,
                    ..TraceRecord::default()
                });
                // Recovered; the run ends after a quiet tail with no election in it.
                if self.availability.quiet.is_none() {
                    let leader = self.agreed_leader().expect("applied everywhere means an agreed leader");
                    self.begin_quiet(leader);
                }
            }
            return;
        }
        let probe = self.liveness.as_ref().expect("probing in the liveness phase");
        let recently_proposed = probe.last_proposed_at.is_some_and(|at| now < at + PROBE_RETRY_MICROS);
        if recently_proposed {
            return;
        }
        let Some(position) = self.agreed_leader() else {
            return;
        };
        let probe = self.liveness.as_mut().expect("checked");
        probe.attempts += 1;
        probe.last_proposed_at = Some(now);
        let id = PROBE_REQUEST_IDS + probe.attempts;
        // A sessionless write to a key no client uses and that sorts before every client
        // key ("k…"), so no client's list sees it: the probe stays out of the history.
        let command = Command {
            client: PROBE_CLIENT,
            sequence: 0,
            operation: Operation::Set {
                key: "_liveness-probe".into(),
                value: probe.attempts.to_string().into(),
            },
        }
        .encode();
        self.cluster.submit(position, id, Request::Write(command), &mut self.queue);
    }

    /// Why the cluster has not recovered yet, for the liveness failure report.
    pub(crate) fn liveness_pending(&self) -> String {
        let states: Vec<String> = self
            .cluster
            .hosts
            .iter()
            .map(|host| match host.driver.as_ref() {
                None if host.refused => {
                    format!("node {} down for good (its storage refused its damaged files)", host.id)
                }
                None => format!("node {} down", host.id),
                Some(driver) => {
                    let node = driver.node();
                    format!(
                        "node {} {:?} term {} leader {:?} commit {} applied {} last {}@{} voters {:?}",
                        host.id,
                        node.role(),
                        node.term(),
                        node.leader(),
                        node.commit_index(),
                        driver.applied_index(),
                        node.last_index(),
                        node.last_term(),
                        node.voters()
                    )
                }
            })
            .collect();
        let proposed = self.liveness.as_ref().map_or(0, |probe| probe.attempts);
        let stage = match (self.agreed_leader(), self.committed_probe()) {
            (None, _) => "no leader that every voter follows".to_string(),
            (Some(_), None) if proposed == 0 => "a leader, but no probe proposed yet".to_string(),
            (Some(_), None) => {
                format!("a leader, but none of the {proposed} probe proposal(s) was committed")
            }
            (Some(_), Some(((index, _), false))) => {
                format!("probe entry {index} committed but not applied by every voter")
            }
            (Some(_), Some((_, true))) => match self.cluster.checkers.read_freshness.oldest_pending() {
                Some(read) => format!(
                    "read {} asked of node {} at {:.6} s was neither answered nor refused",
                    read.id,
                    read.node,
                    read.asked_at_micros as f64 / 1e6
                ),
                None => match self.busy_clients().as_slice() {
                    [] => "recovered".to_string(),
                    busy => format!("client(s) {busy:?} still waiting for an answer"),
                },
            },
        };
        format!("{stage} ({})", states.join("; "))
    }
}
