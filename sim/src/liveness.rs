//! The liveness phase's rule and its client. Once everything is healed, the cluster
//! must, within `LIVENESS_BOUND_MICROS`, agree on a leader every voter follows, commit
//! and apply a probe entry on every voter, answer or refuse every read asked in the
//! safety phase, and finish every client operation. The probe is the one client of the
//! phase: it proposes an entry to the agreed leader, and again if none commits in time.
//!
//! This is a checker of progress, like the availability rules: it reads what the
//! safety checkers know (the term of the committed probe, reads still unanswered).

use crate::cluster::{Cluster, Host};
use crate::event_queue::Micros;
use crate::trace::{TraceEvent, TraceRecord};
use crate::world::World;
use kv::{ClientId, Command, Operation};
use raft_core::{LogIndex, NodeId, RequestId, Role, Term};
use raft_host::{Answer, Request};

/// The client id of the liveness probe's writes.
const PROBE_CLIENT: ClientId = u64::MAX;

/// Request ids at or above this are the liveness probe's; the operator counts up from 1.
pub(crate) const PROBE_REQUEST_IDS: RequestId = 1 << 62;

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

/// The host of node `id`, if the cluster has one (a buggy core may name any id).
fn host_of(cluster: &Cluster, id: NodeId) -> Option<&Host> {
    usize::try_from(id).ok().and_then(|id| id.checked_sub(1)).and_then(|position| cluster.hosts.get(position))
}

/// The leader every voter (in the leader's configuration) follows, if there is one.
/// Removed nodes keep running but are no longer replicated to; they do not count.
pub(crate) fn agreed_leader(cluster: &Cluster) -> Option<usize> {
    let (position, leader) = cluster
        .hosts
        .iter()
        .enumerate()
        .filter_map(|(position, host)| host.core().map(|node| (position, node)))
        .filter(|(_, node)| node.role() == Role::Leader)
        .max_by_key(|(_, node)| node.term())?;
    // A voter whose storage refused its damaged directory stays down: the rest must
    // carry on without it.
    let every_voter_agrees = leader.voters().iter().all(|&voter| {
        host_of(cluster, voter).is_some_and(|host| host.refused)
            || host_of(cluster, voter)
                .and_then(Host::core)
                .is_some_and(|node| node.term() == leader.term() && node.leader() == Some(leader.id()))
    });
    every_voter_agrees.then_some(position)
}

impl LivenessProbe {
    /// A node answered one of the probe's writes.
    pub(crate) fn on_answer(&mut self, answer: &Answer<kv::Response>) {
        if let Answer::Applied { index, .. } = answer {
            self.committed.push(*index);
        }
    }

    /// The committed probe entry, and whether every voter of the agreed leader applied it.
    fn committed_probe(&self, cluster: &Cluster) -> Option<((LogIndex, Term), bool)> {
        let index = *self.committed.first()?;
        let term =
            cluster.checkers.state_machine_safety.term_at(index).expect("a committed probe was applied");
        let applied_everywhere = agreed_leader(cluster).is_some_and(|leader| {
            let voters = cluster.hosts[leader].core().expect("a leader runs").voters();
            voters.iter().all(|&voter| {
                host_of(cluster, voter).is_some_and(|host| host.refused)
                    || host_of(cluster, voter)
                        .and_then(|host| host.driver.as_ref())
                        .is_some_and(|driver| driver.applied_index() >= index)
            })
        });
        Some(((index, term), applied_everywhere))
    }

    /// Checks whether the healed cluster has recovered; proposes a probe entry once
    /// there is a leader everyone agrees on, and again if none commits in time. The
    /// agreed leader once recovered (every client of `busy` done), for the quiet tail.
    pub(crate) fn probe(&mut self, world: &mut World<'_>, busy: &[ClientId]) -> Option<usize> {
        let now = world.queue.now();
        if let Some(((index, term), applied_everywhere)) = self.committed_probe(&world.cluster) {
            // Every read asked during the safety phase must be answered or refused by
            // now, and every client operation in flight must have finished.
            let reads_done = world.cluster.checkers.read_freshness.oldest_pending().is_none();
            // A leader outside its own configuration (its removal, asked for in the
            // safety phase, is still to commit) steps down by design once it does: not
            // a settled cluster to watch for a quiet tail yet.
            let leader = agreed_leader(&world.cluster);
            let leader_stays = leader.is_some_and(|position| {
                world.cluster.hosts[position].core().is_some_and(|core| core.voters().contains(&core.id()))
            });
            if applied_everywhere && reads_done && busy.is_empty() && leader_stays {
                world.trace.record(TraceRecord {
                    time_us: now,
                    event: TraceEvent::Recovered,
                    index,
                    term,
                    ..TraceRecord::default()
                });
                // Recovered; the run ends after a quiet tail with no election in it.
                return leader;
            }
            return None;
        }
        let recently_proposed = self.last_proposed_at.is_some_and(|at| now < at + PROBE_RETRY_MICROS);
        if recently_proposed {
            return None;
        }
        let position = agreed_leader(&world.cluster)?;
        self.attempts += 1;
        self.last_proposed_at = Some(now);
        let id = PROBE_REQUEST_IDS + self.attempts;
        // A sessionless write to a key no client uses and that sorts before every client
        // key ("k…"), so no client's list sees it: the probe stays out of the history.
        let command = Command {
            client: PROBE_CLIENT,
            sequence: 0,
            operation: Operation::Set {
                key: "_liveness-probe".into(),
                value: self.attempts.to_string().into(),
            },
        }
        .encode();
        world.cluster.submit(position, id, Request::Write(command), &mut world.queue);
        None
    }

    /// Why the cluster has not recovered yet, for the liveness failure report.
    pub(crate) fn pending(&self, cluster: &Cluster, busy: &[ClientId]) -> String {
        let states: Vec<String> = cluster
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
        let proposed = self.attempts;
        let stage = match (agreed_leader(cluster), self.committed_probe(cluster)) {
            (None, _) => "no leader that every voter follows".to_string(),
            (Some(_), None) if proposed == 0 => "a leader, but no probe proposed yet".to_string(),
            (Some(_), None) => {
                format!("a leader, but none of the {proposed} probe proposal(s) was committed")
            }
            (Some(_), Some(((index, _), false))) => {
                format!("probe entry {index} committed but not applied by every voter")
            }
            (Some(_), Some((_, true))) => match cluster.checkers.read_freshness.oldest_pending() {
                Some(read) => format!(
                    "read {} asked of node {} at {:.6} s was neither answered nor refused",
                    read.id,
                    read.node,
                    read.asked_at_micros as f64 / 1e6
                ),
                None => match busy {
                    [] => "recovered".to_string(),
                    busy => format!("client(s) {busy:?} still waiting for an answer"),
                },
            },
        };
        format!("{stage} ({})", states.join("; "))
    }
}
