//! What a host does with each action of its node: writes go to the disk at once and
//! are checked; effects that leave the node wait for the disk (the ordering contract)
//! and are then performed: messages enter the network, entries are applied, reads
//! and requests are answered.

use crate::checkers::{LogView, Violation};
use crate::host::{CommitDecision, Held};
use crate::network::Route;
use crate::options::{HostBug, Verdict};
use crate::simulation::{Event, Simulation};
use crate::state_machine::Replica;
use crate::storage::{self, Write};
use raft_core::{Action, Input, NodeId, Request, Role};

impl Simulation<'_> {
    /// Handles one action of the node at `position`, in the order the core emitted it.
    pub(crate) fn on_action(&mut self, position: usize, action: Action) {
        let id = self.hosts[position].id;
        match action {
            Action::RoleChanged { role, term, .. } => {
                let result = self.checkers.monotonic.on_term(id, term);
                self.check(result);
                if role == Role::Leader {
                    tracing::debug!(time_us = self.queue.now(), node = id, term, "leader elected");
                    self.newest_leader = Some(position);
                    let result = self.checkers.election_safety.on_leader(id, term);
                    self.check(result);
                    let node = self.hosts[position].node.as_ref().expect("a running node changed role");
                    let result = self.checkers.leader_completeness.on_leader(id, term, node as &dyn LogView);
                    self.check(result);
                }
            }
            Action::PersistHardState(hard_state) => {
                let result = self.checkers.monotonic.on_term(id, hard_state.term);
                self.check(result);
                self.write(position, Write::HardState(hard_state));
            }
            Action::TruncateLog { from } => self.write(position, Write::Truncate { from }),
            Action::PersistEntries { entries } => {
                let Some(first) = entries.first() else {
                    return;
                };
                let written = self.hosts[position].storage.written();
                let previous_term =
                    first.index.checked_sub(1).and_then(|previous| storage::term_at(written, previous));
                if let Some(previous_term) = previous_term {
                    let result = self.checkers.log_matching.on_entries_written(id, previous_term, &entries);
                    self.check(result);
                }
                // A missing predecessor is a gap, which the write itself reports.
                self.write(position, Write::Entries(entries));
            }
            Action::PersistSnapshot { snapshot } => self.write(position, Write::Compact(snapshot)),
            Action::InstallSnapshot { snapshot } => {
                self.write(position, Write::Install(snapshot.clone()));
                // The state machine is replaced in order with the applies around it.
                self.hold_or_perform(position, Action::InstallSnapshot { snapshot });
            }
            Action::Send(_)
            | Action::SendAhead(_)
            | Action::Apply { .. }
            | Action::ReadReady { .. }
            | Action::ProposalAccepted { .. }
            | Action::Rejected { .. } => self.hold_or_perform(position, action),
        }
    }

    fn write(&mut self, position: usize, write: Write) {
        let id = self.hosts[position].id;
        if let Err(violation) = self.hosts[position].storage.write(write) {
            self.fail(Verdict::Safety, Violation::new("host contract", vec![id], violation.0));
        }
    }

    fn hold_or_perform(&mut self, position: usize, action: Action) {
        let host = &mut self.hosts[position];
        // Only an apply needs to remember how its commit was decided; sends skip the work.
        let decision = matches!(action, Action::Apply { .. }).then(|| host.commit_decision());
        let must_wait = host.paused || !host.held.is_empty() || host.storage.has_unsynced();
        if must_wait && self.options.host_bug != Some(HostBug::SendBeforeSync) {
            let needs_durable = host.storage.issued();
            host.held.push_back(Held { needs_durable, action, decision });
        } else {
            self.perform(position, action, decision);
        }
    }

    /// Issues a sync if the node has writes that are not durable and none is under way.
    pub(crate) fn sync_if_needed(&mut self, position: usize) {
        let host = &mut self.hosts[position];
        if host.sync_in_flight || !host.storage.has_unsynced() || !host.is_up() {
            return;
        }
        host.sync_in_flight = true;
        let storage = &self.plan.storage;
        let latency = self.storage_random.between(storage.sync_min_micros, storage.sync_max_micros);
        let event =
            Event::SyncDone { node: position, incarnation: host.incarnation, through: host.storage.issued() };
        self.queue.schedule_in(latency, event);
    }

    /// A sync completed: writes up to `through` are durable.
    pub(crate) fn sync_done(&mut self, position: usize, through: u64) {
        let host = &mut self.hosts[position];
        host.sync_in_flight = false;
        let removed_entries = host.storage.sync_through(through);
        let (id, durable_term) = (host.id, host.storage.durable().hard_state.term);
        let result = self.checkers.monotonic.on_durable_term(id, durable_term);
        self.check(result);
        // Appends only add coverage; re-count holders only when entries were removed.
        if removed_entries {
            self.check_committed_durable();
        }
        if !self.hosts[position].paused {
            self.release_held(position);
            self.report_persisted(position);
        }
        self.sync_if_needed(position);
    }

    /// Tells the node how far its log is durable: the last entry of the durable log.
    pub(crate) fn report_persisted(&mut self, position: usize) {
        let host = &self.hosts[position];
        if self.outcome.is_some() || !host.is_responsive() {
            return;
        }
        let durable = host.storage.durable();
        let index = durable.snapshot_index() + durable.entries.len() as u64;
        let term = durable.term_at(index).unwrap_or(0);
        self.step(position, Input::LogPersisted { index, term });
    }

    /// Performs the held effects whose writes are now durable, in order.
    pub(crate) fn release_held(&mut self, position: usize) {
        loop {
            let host = &mut self.hosts[position];
            let ready =
                host.held.front().is_some_and(|held| held.needs_durable <= host.storage.durable_through());
            if !ready || self.outcome.is_some() {
                break;
            }
            let held = host.held.pop_front().expect("front exists");
            self.perform(position, held.action, held.decision);
        }
        // Compaction requested by applies just released.
        self.run_follow_ups();
    }

    pub(crate) fn check_committed_durable(&mut self) {
        let logs = self.hosts.iter().map(|host| (host.id, host.storage.durable() as &dyn LogView));
        let result = self.checkers.committed_durable.check(logs);
        self.check(result);
    }

    /// Performs an effect that leaves the node; an `Apply` comes with how its commit was decided.
    fn perform(&mut self, position: usize, action: Action, decision: Option<CommitDecision>) {
        let id = self.hosts[position].id;
        match action {
            Action::Send(message) | Action::SendAhead(message) => {
                let result = self.checkers.durable_vote.on_sent(&message);
                self.check(result);
                let result =
                    self.checkers.durable_promises.on_send(&message, self.hosts[position].storage.durable());
                self.check(result);
                let to = message.to;
                if to == 0 || to > self.hosts.len() as NodeId {
                    return;
                }
                let now = self.queue.now();
                if let Route::Deliver { delay, duplicate_delay } =
                    self.network.route(position, (to - 1) as usize, now)
                {
                    if let Some(duplicate_delay) = duplicate_delay {
                        self.queue.schedule_in(duplicate_delay, Event::Deliver { message: message.clone() });
                    }
                    self.queue.schedule_in(delay, Event::Deliver { message });
                }
            }
            Action::Apply { entries } => {
                let decision = decision.expect("an apply carries its commit decision");
                for entry in &entries {
                    let result = self.checkers.monotonic.on_applied(id, entry.index);
                    self.check(result);
                    match self.checkers.state_machine_safety.on_applied(id, entry) {
                        Ok(Some(committed)) => {
                            // A leader applying first committed the entry in its own term;
                            // anyone else learned of it, so only a bound is known: the
                            // newest term that had a leader.
                            let highest = self.checkers.election_safety.highest_leader_term().unwrap_or(0);
                            let committed_by_term = decision.leader_term.unwrap_or(highest);
                            let leaders = self.hosts.iter().filter_map(|host| {
                                let node = host.node.as_ref().filter(|node| node.role() == Role::Leader)?;
                                Some((host.id, node.term(), node as &dyn LogView))
                            });
                            let result = self.checkers.leader_completeness.on_committed(
                                committed.index,
                                committed.term,
                                committed_by_term,
                                leaders,
                            );
                            self.check(result);
                            self.checkers.committed_durable.on_committed(committed, &decision.voters);
                            self.check_committed_durable();
                        }
                        Ok(None) => {}
                        Err(violation) => self.fail(Verdict::Safety, violation),
                    }
                    if self.outcome.is_some() {
                        return;
                    }
                    if let Some(applied) = self.hosts[position].state_machine.apply(entry, &mut self.commands)
                    {
                        self.client_command_applied(position, applied);
                    }
                }
                self.compact_if_due(position);
            }
            Action::ReadReady { id: read, read_index } => {
                let applied_here = self.hosts[position].state_machine.applied_index();
                let result = self.checkers.read_freshness.on_read_ready(id, read, read_index, applied_here);
                self.check(result);
                self.client_read_ready(position, read);
            }
            Action::ProposalAccepted { id: request, index, term } => {
                self.workload.on_accepted(position);
                if let Some(liveness) = self.liveness.as_mut() {
                    liveness.on_accepted(request, index, term);
                }
            }
            Action::Rejected { request, leader_hint, .. } => {
                self.workload.on_rejected(leader_hint, self.hosts.len());
                match request {
                    Request::Read(read) => {
                        self.checkers.read_freshness.on_read_dropped(id, read);
                        self.client_refused(position, read, leader_hint);
                    }
                    Request::Propose(proposal) => self.client_refused(position, proposal, leader_hint),
                    _ => {}
                }
            }
            Action::InstallSnapshot { snapshot } => {
                let index = snapshot.meta.last_included_index;
                let Some(machine) = Replica::from_snapshot(&snapshot.data) else {
                    let detail =
                        format!("node {id} was asked to install a snapshot its state machine cannot read");
                    self.fail(Verdict::Safety, Violation::new("host contract", vec![id], detail));
                    return;
                };
                if machine.applied_index() != index {
                    let detail = format!(
                        "node {id} installed a snapshot labelled index {index} holding state up to {}",
                        machine.applied_index()
                    );
                    self.fail(Verdict::Safety, Violation::new("state machine safety", vec![id], detail));
                    return;
                }
                let result = self.checkers.monotonic.on_snapshot_installed(id, index);
                self.check(result);
                let result =
                    self.checkers.state_machine_safety.on_restored(id, index, machine.digest.prefix_digest());
                self.check(result);
                self.hosts[position].state_machine = machine;
            }
            Action::RoleChanged { .. }
            | Action::PersistHardState(_)
            | Action::TruncateLog { .. }
            | Action::PersistEntries { .. }
            | Action::PersistSnapshot { .. } => unreachable!("writes and role changes are never held"),
        }
    }

    /// Snapshots the state machine once enough applied entries follow the last snapshot.
    fn compact_if_due(&mut self, position: usize) {
        let host = &self.hosts[position];
        let Some(node) = host.node.as_ref() else {
            return;
        };
        let applied = host.state_machine.applied_index();
        let snapshot_index = node.snapshot_meta().last_included_index;
        if applied >= snapshot_index + self.plan.workload.compaction_threshold_entries {
            let input = Input::CompactLog { up_to: applied, data: host.state_machine.to_snapshot() };
            self.follow_ups.push((position, input));
        }
    }
}
