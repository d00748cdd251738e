//! Log replication (Raft paper §5.3), the commit rule (§5.4.2) and snapshot transfer (§7).
//!
//! Leader side: `broadcast_append`, `send_append`, `handle_append_response`, `maybe_commit`.
//! Follower side: `handle_append`, `handle_heartbeat`, `handle_install_snapshot`.

use crate::io::Action;
use crate::message::MessageBody;
use crate::node::RaftNode;
use crate::progress::ReplicationState;
use crate::types::{Entry, EntryPayload, LogIndex, NodeId, Snapshot, Term};
use std::sync::Arc;

impl RaftNode {
    // ---- Leader side ----

    /// Appends a new entry of the current term to the leader's own log.
    pub(crate) fn append_to_own_log(&mut self, payload: EntryPayload, actions: &mut Vec<Action>) -> LogIndex {
        let entry = Entry { term: self.term, index: self.log.last_index() + 1, payload };
        let index = entry.index;
        self.append_entries_to_own_log(vec![entry], actions);
        index
    }

    /// Appends `entries` (of this term, following the last entry) to the leader's own
    /// log, persisted by one write.
    pub(crate) fn append_entries_to_own_log(&mut self, entries: Vec<Entry>, actions: &mut Vec<Action>) {
        debug_assert!(entries.first().is_some_and(|first| first.index == self.log.last_index() + 1));
        self.flush_hard_state(actions);
        self.log.append(&entries);
        actions.push(Action::PersistEntries { entries });
    }

    /// Sends new entries to every follower that can take them; with `allow_empty`,
    /// also an empty append to followers with nothing new (to probe or assert leadership).
    pub(crate) fn broadcast_append(&mut self, allow_empty: bool, actions: &mut Vec<Action>) {
        for position in 0..self.member_count() {
            if let Some(peer) = self.peer_at(position) {
                self.send_appends(peer, allow_empty, actions);
            }
        }
    }

    /// Sends as many appends as flow control allows (one in Probe, a window in Replicate).
    pub(crate) fn send_appends(&mut self, peer: NodeId, allow_empty: bool, actions: &mut Vec<Action>) {
        // Bounded: each send either pauses the progress or advances next_index.
        let bound = self.config.max_inflight_appends + 1;
        let mut allow_empty = allow_empty;
        for _ in 0..bound {
            if !self.send_append(peer, allow_empty, actions) {
                break;
            }
            allow_empty = false;
        }
    }

    /// Sends one append (or a snapshot) to `peer`. Returns whether anything was sent
    /// that leaves the peer able to take more.
    fn send_append(&mut self, peer: NodeId, allow_empty: bool, actions: &mut Vec<Action>) -> bool {
        let max_inflight = self.config.max_inflight_appends;
        let Some(progress) = self.progress.get(&peer) else { return false };
        if progress.is_paused(max_inflight) {
            return false;
        }
        let prev_log_index = progress.next_index - 1;
        let Some(prev_log_term) = self.log.term_at(prev_log_index) else {
            self.send_snapshot(peer, actions);
            return false;
        };
        let entries = self.log.entries_for_message(
            prev_log_index + 1,
            self.config.max_entries_per_message,
            self.config.max_bytes_per_message,
        );
        if entries.is_empty() && !allow_empty {
            return false;
        }
        let entries = entries.to_vec();
        let last_sent = prev_log_index + entries.len() as u64;
        let carried_entries = !entries.is_empty();
        let body = MessageBody::AppendEntries {
            prev_log_index,
            prev_log_term,
            entries,
            leader_commit: self.log.commit_index,
        };
        let progress = self.progress.get_mut(&peer).expect("checked above");
        progress.sent_append(last_sent, carried_entries);
        self.send_ahead(peer, body, actions);
        carried_entries
    }

    pub(crate) fn send_snapshot(&mut self, peer: NodeId, actions: &mut Vec<Action>) {
        // A leader only lacks the term of an entry it compacted, so it has a snapshot.
        let index =
            self.snapshot.as_ref().expect("compacted log implies a snapshot").meta.last_included_index;
        let now_tick = self.now_tick;
        let progress = self.progress.get_mut(&peer).expect("peer has progress");
        progress.become_snapshot(index, now_tick);
        // From the start: a follower that holds part of it already says so, and the
        // transfer resumes there.
        self.send_snapshot_chunk(peer, 0, actions);
    }

    /// Called when a follower answers a heartbeat: it is reachable, so if it still lacks
    /// entries, appends to it may have been lost. Retry: in Probe, send the next probe;
    /// in Replicate, send an append at the optimistic position (outside the window if
    /// the window is full), which the follower rejects if there is a gap (and the
    /// progress falls back to Probe) or accepts (and the acknowledgement frees the
    /// window); in Snapshot, after
    /// an election timeout without an answer, probe again, which resends the snapshot
    /// only if the follower still needs it. (etcd raft does the same on MsgHeartbeatResp.)
    pub(crate) fn resume_replication(&mut self, peer: NodeId, actions: &mut Vec<Action>) {
        let now_tick = self.now_tick;
        let last_index = self.log.last_index();
        let election_timeout_min = self.config.election_timeout_min_ticks;
        let Some(progress) = self.progress.get_mut(&peer) else { return };
        match progress.state {
            ReplicationState::Snapshot { sent_tick, .. } => {
                if now_tick - sent_tick < election_timeout_min {
                    return;
                }
                progress.become_probe();
            }
            ReplicationState::Probe => progress.probe_sent = false,
            ReplicationState::Replicate => {
                if progress.match_index == last_index {
                    return;
                }
                if progress.is_paused(self.config.max_inflight_appends) {
                    let prev_log_index = progress.next_index - 1;
                    self.send_gap_probe(peer, prev_log_index, actions);
                    return;
                }
            }
        }
        // Empty if there is nothing new: it then serves as the probe.
        self.send_appends(peer, true, actions);
    }

    /// An empty append at `prev_log_index` that does not count against the window.
    fn send_gap_probe(&mut self, peer: NodeId, prev_log_index: LogIndex, actions: &mut Vec<Action>) {
        let Some(prev_log_term) = self.log.term_at(prev_log_index) else {
            self.send_snapshot(peer, actions);
            return;
        };
        let leader_commit = self.log.commit_index;
        let body =
            MessageBody::AppendEntries { prev_log_index, prev_log_term, entries: Vec::new(), leader_commit };
        self.send_ahead(peer, body, actions);
    }

    pub(crate) fn broadcast_heartbeat(&mut self, actions: &mut Vec<Action>) {
        for position in 0..self.member_count() {
            let Some(peer) = self.peer_at(position) else { continue };
            let match_index = self.progress[&peer].match_index;
            let body = MessageBody::Heartbeat {
                // A follower may only commit what it is known to hold (§5.3).
                commit: self.log.commit_index.min(match_index),
                read_round: self.read_round,
                leader_tick: self.now_tick,
            };
            self.send_ahead(peer, body, actions);
        }
    }

    pub(crate) fn handle_append_response(
        &mut self,
        from: NodeId,
        success: bool,
        index: LogIndex,
        reject_hint_index: LogIndex,
        reject_hint_term: Term,
        actions: &mut Vec<Action>,
    ) {
        if index > self.log.last_index() {
            // No follower can hold, or have been sent, entries beyond our log.
            self.counters.ignored_malformed += 1;
            return;
        }
        let Some(progress) = self.answering_follower(from) else { return };
        if success {
            if !progress.acknowledge(index) {
                self.counters.ignored_stale_response += 1;
                // A duplicate ack still frees the window; keep replicating.
                self.send_appends(from, false, actions);
                return;
            }
            match progress.state {
                ReplicationState::Probe => progress.become_replicate(),
                ReplicationState::Snapshot { pending_index, .. } if progress.match_index >= pending_index => {
                    progress.become_replicate();
                }
                _ => {}
            }
            self.maybe_commit(actions);
            self.promote_caught_up_learner(actions);
            self.continue_transfer(from, actions);
            self.send_appends(from, false, actions);
        } else {
            // Fast backtracking: jump to where the follower's hint says our logs may agree.
            let probe_hint = if reject_hint_term > 0 {
                self.log.last_index_with_term_at_most(reject_hint_index, reject_hint_term)
            } else {
                reject_hint_index
            };
            let progress = self.progress.get_mut(&from).expect("present");
            if progress.back_off(index, probe_hint) {
                self.send_appends(from, true, actions);
            } else {
                self.counters.ignored_stale_response += 1;
            }
        }
    }

    /// Commits the highest index a quorum holds, if it is from the current term
    /// (Raft paper §5.4.2: entries of older terms commit only indirectly; Figure 8).
    /// The leader counts its own log only as far as the host reported it durable: its
    /// appends may leave before its own write is (Raft thesis §10.2.1).
    pub(crate) fn maybe_commit(&mut self, actions: &mut Vec<Action>) {
        let quorum_index = self.quorum_value_of(self.log.persisted_index, |progress| progress.match_index);
        if quorum_index <= self.log.commit_index || self.log.term_at(quorum_index) != Some(self.term) {
            return;
        }
        let first_commit_of_term = self.log.term_at(self.log.commit_index) != Some(self.term);
        let previous_commit = self.log.commit_index;
        self.commit_to(quorum_index, actions);
        self.tell_removed_members(previous_commit, actions);
        if !self.is_voter() {
            // Our own removal committed (thesis §4.2.2): hand over to the remaining voters.
            self.become_follower(self.term, None, actions);
            return;
        }
        self.leave_joint_once_committed(actions);
        self.promote_caught_up_learner(actions);
        if first_commit_of_term {
            self.serve_reads_awaiting_commit(actions);
        }
    }

    /// Once a joint configuration commits, the leader appends the configuration it leads
    /// to (Raft thesis §4.3): the new voters alone decide from then on. A new leader that
    /// finds a committed joint configuration does the same at its first commit.
    pub(crate) fn leave_joint_once_committed(&mut self, actions: &mut Vec<Action>) {
        let configuration = self.log.configuration();
        let committed =
            self.log.latest_membership_change().is_none_or(|index| index <= self.log.commit_index);
        if !configuration.is_joint() || !committed {
            return;
        }
        let configuration = configuration.leave_joint();
        let payload = EntryPayload::MembershipChange { configuration, context: Arc::from(&[][..]) };
        let index = self.append_to_own_log(payload, actions);
        self.sync_progress_with_members(index);
        self.broadcast_append(false, actions);
    }

    /// Tells the members a change that just committed left out that they are no longer
    /// members, so they stop campaigning (the leader stopped replicating to them when it
    /// appended the change, so most never see it).
    fn tell_removed_members(&mut self, previous_commit: LogIndex, actions: &mut Vec<Action>) {
        let Some(index) = self.log.latest_membership_change() else { return };
        if index <= previous_commit || index > self.log.commit_index {
            return;
        }
        let (before, after) =
            (self.log.configuration_at(index - 1).clone(), self.log.configuration().clone());
        let committed_through = self.log.commit_index;
        for &member in before.members().iter().filter(|&&member| !after.contains(member)) {
            if member != self.config.id {
                self.send_ahead(member, MessageBody::Removed { committed_through }, actions);
            }
        }
    }

    // ---- Follower side ----

    pub(crate) fn handle_append(
        &mut self,
        leader: NodeId,
        prev_log_index: LogIndex,
        prev_log_term: Term,
        mut entries: Vec<Entry>,
        leader_commit: LogIndex,
        actions: &mut Vec<Action>,
    ) {
        let commit_index = self.log.commit_index;
        let (prev_log_index, prev_log_term) = if prev_log_index < commit_index {
            // Everything up to our commit index is committed and so identical in every
            // later leader's log (§5.4): skip that part. A leader that contradicts it is
            // broken or hostile (Leader Completeness); its message is refused.
            let skip = ((commit_index - prev_log_index) as usize).min(entries.len());
            let compacted = self.log.snapshot_meta().last_included_index;
            let contradicts_committed = entries[..skip]
                .iter()
                .any(|entry| entry.index > compacted && self.log.term_at(entry.index) != Some(entry.term));
            if contradicts_committed {
                self.counters.protocol_violations += 1;
                return;
            }
            if skip == entries.len() {
                self.respond_append(leader, true, commit_index, 0, 0, actions);
                return;
            }
            let commit_term = self.log.term_at(commit_index).expect("commit index is held");
            entries.drain(..skip);
            (commit_index, commit_term)
        } else {
            (prev_log_index, prev_log_term)
        };

        if self.log.term_at(prev_log_index) != Some(prev_log_term) {
            // The consistency check failed (§5.3). Hint where our logs may agree.
            let hint_index = self.log.last_index_with_term_at_most(prev_log_index, prev_log_term);
            let hint_term = self.log.term_at(hint_index).unwrap_or(0);
            self.respond_append(leader, false, prev_log_index, hint_index, hint_term, actions);
            return;
        }

        // Truncate only on a real conflict: a stale or duplicated append whose entries
        // we already hold must not cut off entries that came after it (§5.3).
        let last_verified = prev_log_index + entries.len() as u64;
        if let Some(position) = self.log.first_new_or_conflicting(&entries) {
            let first_new = entries[position].index;
            if first_new <= self.log.last_index() {
                // Past the committed prefix by construction; `truncate_from` asserts it.
                self.log.truncate_from(first_new);
                actions.push(Action::TruncateLog { from: first_new });
            }
            // The message's own vector goes to the host; the log keeps a copy (payloads
            // are shared, so this copies only entry headers).
            let new_entries = if position == 0 { entries } else { entries.split_off(position) };
            self.flush_hard_state(actions);
            self.log.append(&new_entries);
            actions.push(Action::PersistEntries { entries: new_entries });
        }

        // Commit no further than the last entry this message verified: entries beyond
        // it may be stale leftovers of an older leader.
        self.commit_to(leader_commit.min(last_verified), actions);
        self.respond_append(leader, true, last_verified, 0, 0, actions);
    }

    pub(crate) fn respond_append(
        &mut self,
        leader: NodeId,
        success: bool,
        index: LogIndex,
        reject_hint_index: LogIndex,
        reject_hint_term: Term,
        actions: &mut Vec<Action>,
    ) {
        let body = MessageBody::AppendEntriesResponse { success, index, reject_hint_index, reject_hint_term };
        self.send(leader, body, actions);
    }

    pub(crate) fn handle_heartbeat(
        &mut self,
        leader: NodeId,
        commit: LogIndex,
        read_round: u64,
        leader_tick: u64,
        actions: &mut Vec<Action>,
    ) {
        // The leader caps `commit` at what it knows we hold; the log-end cap guards
        // against a leader whose view of us is ahead of our storage.
        self.commit_to(commit.min(self.log.last_index()), actions);
        self.send(leader, MessageBody::HeartbeatResponse { read_round, leader_tick }, actions);
    }

    pub(crate) fn install_snapshot(&mut self, leader: NodeId, snapshot: Snapshot, actions: &mut Vec<Action>) {
        let meta = snapshot.meta;
        if meta.last_included_index <= self.log.commit_index {
            // Already have everything it covers; say how far we are.
            let commit_index = self.log.commit_index;
            self.respond_append(leader, true, commit_index, 0, 0, actions);
            return;
        }
        self.flush_hard_state(actions);
        self.log.install_snapshot(meta, snapshot.configuration.clone());
        self.snapshot = Some(snapshot.clone());
        actions.push(Action::InstallSnapshot { snapshot });
        self.respond_append(leader, true, meta.last_included_index, 0, 0, actions);
    }
}
