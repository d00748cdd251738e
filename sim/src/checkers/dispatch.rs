//! The one place where observations reach the checkers: each [`Observed`] event goes
//! to the checkers its invariant concerns, with a view of the cluster (every node's
//! disk and core) as it is at that moment.

use super::{Check, Checkers, CommittedEntry, Invariant, LogView, Observed, Violation};
use crate::cluster::Host;
use crate::state_machine::Replica;
use raft_core::{NodeId, Role};
use raft_host::CommitDecision;

/// The host of node `id`, if the cluster has one (a buggy core may name any id).
fn host(hosts: &[Host], id: NodeId) -> Option<&Host> {
    usize::try_from(id).ok().and_then(|id| id.checked_sub(1)).and_then(|position| hosts.get(position))
}

impl Checkers {
    /// Checks `event` against every invariant it concerns.
    pub(crate) fn observe(&mut self, event: Observed<'_>, hosts: &[Host]) -> Check {
        match event {
            Observed::CommitChanged { node, commit } => self.monotonic.on_commit(node, commit),
            Observed::StaleMessageHandled { message, term_before, did, .. } => {
                self.stale_term.on_stale_message(message, term_before, did)
            }
            Observed::VoteRequestReceived { message, term, last_term, last_index, .. } => {
                self.vote_rule.on_request_received(message, term, last_term, last_index);
                Ok(())
            }
            Observed::StepWrote { node } => {
                let host = host(hosts, node).expect("a node of the cluster wrote");
                match host.core() {
                    Some(core) => super::log_image::check(node, core, host.disk.written()),
                    None => Ok(()),
                }
            }
            Observed::RemovalNoticeReceived { node, committed_through } => {
                self.removed_quiet.on_notice(node, committed_through);
                Ok(())
            }
            Observed::RoleChanged { node, role, term } => {
                self.monotonic.on_term(node, term)?;
                if role == Role::PreCandidate || role == Role::Candidate {
                    let core = host(hosts, node).and_then(Host::core).expect("a running node changed role");
                    self.removed_quiet.on_campaign(node, term, core.configuration_index())?;
                }
                if role != Role::Leader {
                    return Ok(());
                }
                tracing::debug!(node, term, "leader elected");
                self.election_safety.on_leader(node, term)?;
                let log = host(hosts, node).and_then(Host::core).expect("a running node changed role");
                self.election_quorum.on_leader(node, term, log.configuration())?;
                self.leader_completeness.on_leader(node, term, log as &dyn LogView)
            }
            Observed::HardStateWritten { node, hard_state } => self.monotonic.on_term(node, hard_state.term),
            Observed::EntriesWritten { node, previous_term, entries } => {
                if let Some(core) = host(hosts, node).and_then(Host::core) {
                    self.membership_rule.on_entries_written(node, entries, core)?;
                }
                match previous_term {
                    Some(previous_term) => self.log_matching.on_entries_written(node, previous_term, entries),
                    // A gap, which the disk refuses as a broken host contract.
                    None => Ok(()),
                }
            }
            Observed::Sent { message } => {
                self.durable_vote.on_sent(message)?;
                self.vote_rule.on_sent(message)?;
                self.election_quorum.on_sent(message);
                let sender = host(hosts, message.from).expect("a node of the cluster sent it");
                self.durable_promises.on_send(message, sender.disk.durable())
            }
            Observed::Committed { node, index, term, configuration, leader_term } => {
                self.commit_rule.on_committed(node, index, term, leader_term)?;
                // The moment of the decision: the leader counted itself only as far as
                // its log was reported durable, and each follower only for what it had
                // acknowledged, durably. From now on a majority must hold it.
                self.committed_durable.on_committed(CommittedEntry { index, term }, configuration);
                if self.commit_terms.back().is_none_or(|&(newest, _)| index > newest) {
                    self.commit_terms.push_back((index, leader_term));
                }
                self.check_committed_durable(hosts)
            }
            Observed::Applied { node, entry, decision, answer } => {
                self.on_applied(node, entry, decision, answer, hosts)
            }
            Observed::SnapshotInstalled { node, snapshot, data } => {
                let index = snapshot.meta.last_included_index;
                let Some((digest, _)) = Replica::parse_snapshot(data) else {
                    let detail = format!("node {node} installed a snapshot its state machine cannot read");
                    return Err(Violation::new(Invariant::HostContract, vec![node], detail));
                };
                if digest.applied_index() != index {
                    let detail = format!(
                        "node {node} installed a snapshot labelled index {index} holding state up to {}",
                        digest.applied_index()
                    );
                    return Err(Violation::new(Invariant::StateMachineSafety, vec![node], detail));
                }
                self.monotonic.on_snapshot_installed(node, index)?;
                self.state_machine_safety.on_restored(node, index, digest.prefix_digest())
            }
            Observed::ReadAsked { node, request, at_micros } => {
                let applied_anywhere = self.state_machine_safety.applied_len();
                self.read_freshness.on_read_asked(node, request, applied_anywhere, at_micros);
                Ok(())
            }
            Observed::ReadServed { node, request, read_index, applied_index } => {
                self.read_freshness.on_read_ready(node, request, read_index, applied_index)
            }
            Observed::ReadDropped { node, request } => {
                self.read_freshness.on_read_dropped(node, request);
                Ok(())
            }
            Observed::Synced { node, removed_entries } => {
                let durable_term =
                    host(hosts, node).expect("a node of the cluster").disk.durable().hard_state.term;
                self.monotonic.on_durable_term(node, durable_term)?;
                // Appends only add coverage; re-count holders only when entries were removed.
                if removed_entries {
                    self.check_committed_durable(hosts)?;
                }
                Ok(())
            }
            Observed::Crashed { node } => {
                self.read_freshness.on_crash(node);
                self.removed_quiet.on_crash(node);
                let durable_term =
                    host(hosts, node).expect("a node of the cluster").disk.durable().hard_state.term;
                self.monotonic.on_durable_term(node, durable_term)?;
                self.log_matching.on_crash(node, durable_term);
                self.check_committed_durable(hosts)
            }
            Observed::Restarted { node } => {
                let restarted = host(hosts, node).expect("a node of the cluster");
                let durable = restarted.disk.durable();
                let hard_state = durable.hard_state;
                let snapshot_index = durable.snapshot_index();
                let driver = restarted.driver.as_ref().expect("it restarted");
                let restored_digest = driver.machine().digest.prefix_digest();
                self.durable_vote.on_restart(node, hard_state)?;
                self.monotonic.on_restart(node, hard_state.term, snapshot_index)?;
                self.state_machine_safety.on_restored(node, snapshot_index, restored_digest)
            }
        }
    }

    fn on_applied(
        &mut self,
        node: NodeId,
        entry: &raft_core::Entry,
        decision: &CommitDecision,
        answer: u64,
        hosts: &[Host],
    ) -> Check {
        self.monotonic.on_applied(node, entry.index)?;
        let Some(committed) = self.state_machine_safety.on_applied(node, entry, answer)? else {
            return Ok(());
        };
        if let raft_core::EntryPayload::MembershipChange { configuration, .. } = &entry.payload {
            self.membership.on_committed(configuration);
        }
        // The first leader decision that covered this entry says in which term it was
        // committed (entries are first applied in index order, so older decisions are
        // done with). Without one (a leader that stepped down in the step it committed),
        // a leader applying first committed it in its own term; anyone else learned of
        // it, so only a bound is known: the newest term that had a leader.
        while self.commit_terms.front().is_some_and(|&(decided, _)| decided < committed.index) {
            self.commit_terms.pop_front();
        }
        let highest = self.election_safety.highest_leader_term().unwrap_or(0);
        let committed_by_term = match self.commit_terms.front() {
            Some(&(_, leader_term)) => leader_term,
            None => decision.leader_term.unwrap_or(highest),
        };
        let leaders = hosts.iter().filter_map(|host| {
            let core = host.core().filter(|core| core.role() == Role::Leader)?;
            Some((host.id, core.term(), core as &dyn LogView))
        });
        self.leader_completeness.on_committed(committed.index, committed.term, committed_by_term, leaders)?;
        // A follower may apply before the leader does (the leader's heartbeats carry the
        // commit ahead of its own apply); the leader's decision registered the voters.
        if decision.leader_term.is_some() {
            self.committed_durable.on_committed(committed, &decision.configuration);
        }
        self.check_committed_durable(hosts)
    }

    fn check_committed_durable(&self, hosts: &[Host]) -> Check {
        let logs = hosts.iter().map(|host| (host.id, host.disk.durable() as &dyn LogView));
        self.committed_durable.check(logs)
    }
}
