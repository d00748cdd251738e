//! Client and admin requests: proposals, leadership transfer, log compaction.

use crate::io::{Action, RejectReason, Request, Role};
use crate::membership::MembershipChange;
use crate::node::{RaftNode, Transfer};
use crate::types::{Entry, EntryPayload, LogIndex, NodeId, RequestId, Snapshot, SnapshotMeta};
use std::sync::Arc;

impl RaftNode {
    pub(crate) fn propose_batch(&mut self, proposals: Vec<(RequestId, Vec<u8>)>, actions: &mut Vec<Action>) {
        let mut entries = Vec::new();
        let mut answers = Vec::with_capacity(proposals.len());
        for (id, command) in proposals {
            let request = Request::Propose(id);
            let uncommitted = self.log.last_index() + entries.len() as u64 - self.log.commit_index;
            let refusal = if self.role != Role::Leader {
                Some(RejectReason::NotLeader)
            } else if self.transfer.is_some() {
                Some(RejectReason::TransferInProgress)
            } else if command.len() as u64 > self.config.max_command_bytes {
                Some(RejectReason::CommandTooLarge)
            } else if uncommitted >= self.config.max_uncommitted_entries {
                Some(RejectReason::TooManyUncommitted)
            } else {
                None
            };
            if let Some(reason) = refusal {
                answers.push(Action::Rejected { request, reason, leader_hint: self.leader });
                continue;
            }
            let index = self.log.last_index() + entries.len() as u64 + 1;
            entries.push(Entry { term: self.term, index, payload: EntryPayload::Command(command.into()) });
            answers.push(Action::ProposalAccepted { id, index, term: self.term });
        }
        if entries.is_empty() {
            actions.append(&mut answers);
            return;
        }
        self.append_entries_to_own_log(entries, actions);
        actions.append(&mut answers);
        // One round of appends for the whole batch: each follower gets the new entries
        // together, as its flow control and the message limits allow.
        self.broadcast_append(false, actions);
        self.maybe_commit(actions);
    }

    /// Appends a membership entry (Raft thesis §4.1, §4.3): the target configuration
    /// for a change of at most one voter, else the joint configuration leading to it
    /// (left by [`RaftNode::leave_joint_once_committed`]). It takes effect here at once:
    /// the leader replicates to a new member and counts the new voters from now on,
    /// before the entry commits.
    pub(crate) fn change_membership(
        &mut self,
        id: RequestId,
        change: MembershipChange,
        context: Arc<[u8]>,
        actions: &mut Vec<Action>,
    ) {
        let request = Request::ChangeMembership(id);
        let next = change.apply_to(self.log.configuration());
        let refusal = if let Some(reason) = self.membership_change_blocked() {
            Some(reason)
        } else if next.is_none() {
            Some(RejectReason::InvalidMembershipChange)
        } else if context.len() as u64 > self.config.max_command_bytes {
            Some(RejectReason::CommandTooLarge)
        } else {
            None
        };
        let Some(configuration) = next.filter(|_| refusal.is_none()) else {
            let reason = refusal.expect("refused");
            actions.push(Action::Rejected { request, reason, leader_hint: self.leader });
            return;
        };
        let index =
            self.append_to_own_log(EntryPayload::MembershipChange { configuration, context }, actions);
        self.sync_progress_with_members(index);
        actions.push(Action::ProposalAccepted { id, index, term: self.term });
        self.broadcast_append(false, actions);
        self.maybe_commit(actions);
    }

    /// Why no membership change may start now, if one may not. One change at a time,
    /// and only once this leader has committed in its term: otherwise a change from an
    /// earlier term may still be uncommitted somewhere and two changes could overlap
    /// (the single-server change bug, raft-dev 2015). A joint configuration counts as in
    /// flight until it is left.
    fn membership_change_blocked(&self) -> Option<RejectReason> {
        let committed_in_term = self.log.term_at(self.log.commit_index) == Some(self.term);
        let change_pending = self.log.configuration().is_joint()
            || self.log.latest_membership_change().is_some_and(|index| index > self.log.commit_index);
        if self.role != Role::Leader {
            Some(RejectReason::NotLeader)
        } else if self.transfer.is_some() {
            Some(RejectReason::TransferInProgress)
        } else if !committed_in_term || change_pending {
            Some(RejectReason::MembershipChangeInProgress)
        } else {
            None
        }
    }

    /// Promotes a learner marked for promotion (`MembershipChange::AddVoterWhenCaughtUp`)
    /// once it holds every committed entry, when a change may start: a single-voter
    /// change the leader asks of itself, like any other.
    pub(crate) fn promote_caught_up_learner(&mut self, actions: &mut Vec<Action>) {
        let configuration = self.log.configuration();
        if configuration.catching_up().is_empty() || self.membership_change_blocked().is_some() {
            return;
        }
        let commit = self.log.commit_index;
        let progress = &self.progress;
        let caught_up = configuration
            .catching_up()
            .iter()
            .copied()
            .find(|node| progress.get(node).is_some_and(|progress| progress.match_index >= commit));
        let Some(configuration) =
            caught_up.and_then(|node| MembershipChange::AddVoter(node).apply_to(configuration))
        else {
            return;
        };
        let payload = EntryPayload::MembershipChange { configuration, context: Arc::from(&[][..]) };
        let index = self.append_to_own_log(payload, actions);
        self.sync_progress_with_members(index);
        self.broadcast_append(false, actions);
    }

    pub(crate) fn transfer_leadership(&mut self, target: NodeId, actions: &mut Vec<Action>) {
        let request = Request::TransferLeadership;
        if self.role != Role::Leader {
            let leader_hint = self.leader;
            actions.push(Action::Rejected { request, reason: RejectReason::NotLeader, leader_hint });
            return;
        }
        if target == self.config.id {
            // Already the leader: nothing to do. A transfer elsewhere is cancelled.
            self.transfer = None;
            return;
        }
        if !self.progress.contains_key(&target) {
            let leader_hint = self.leader;
            actions.push(Action::Rejected { request, reason: RejectReason::UnknownPeer, leader_hint });
            return;
        }
        if !self.log.configuration().is_voter(target) {
            let leader_hint = self.leader;
            actions.push(Action::Rejected { request, reason: RejectReason::NotAVoter, leader_hint });
            return;
        }
        self.transfer = Some(Transfer { target, started_tick: self.now_tick });
        self.continue_transfer(target, actions);
        self.send_appends(target, true, actions);
    }

    /// Sends TimeoutNow once the transfer target holds the whole log (thesis §3.10).
    pub(crate) fn continue_transfer(&mut self, peer: NodeId, actions: &mut Vec<Action>) {
        let Some(transfer) = self.transfer else { return };
        if transfer.target != peer || self.progress[&peer].match_index != self.log.last_index() {
            return;
        }
        if !self.log.configuration().is_voter(peer) {
            // A change appended since the transfer began left the target out (or made
            // it a learner): it could never win, so the transfer ends here.
            self.transfer = None;
            return;
        }
        self.send_ahead(peer, crate::message::MessageBody::TimeoutNow, actions);
    }

    pub(crate) fn compact_log(&mut self, up_to: LogIndex, size_bytes: u64, actions: &mut Vec<Action>) {
        let current = self.log.snapshot_meta().last_included_index;
        if up_to <= current || up_to > self.log.applied_index {
            let leader_hint = self.leader;
            let reason = RejectReason::CompactionOutOfRange;
            actions.push(Action::Rejected { request: Request::CompactLog, reason, leader_hint });
            return;
        }
        let term = self.log.term_at(up_to).expect("applied entries are held");
        let meta = SnapshotMeta { last_included_index: up_to, last_included_term: term };
        let configuration = self.log.compact_to(meta);
        let snapshot = Snapshot { meta, configuration, size_bytes };
        self.snapshot = Some(snapshot.clone());
        actions.push(Action::PersistSnapshot { snapshot });
    }
}
