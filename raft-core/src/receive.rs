//! Message intake: sender and shape checks, then the term rules of Raft paper §5.1,
//! then dispatch to the handler for the message kind.

use crate::io::{Action, Role};
use crate::message::{Message, MessageBody};
use crate::node::RaftNode;
use crate::validate::malformed_reason;

impl RaftNode {
    pub(crate) fn receive(&mut self, message: Message, actions: &mut Vec<Action>) {
        // Requests are processed whoever sends them, without consulting the membership
        // (Raft thesis §4.1): a lagging node may not yet hold the entry that made the
        // sender a voter, and ignoring a leader or a candidate it needs could stall the
        // cluster. Answers count only from nodes we track (the vote and replication
        // handlers check), and misaddressed messages are dropped here.
        if message.to != self.config.id || message.from == self.config.id {
            self.counters.ignored_unknown_peer += 1;
            return;
        }
        if malformed_reason(&message).is_some() {
            self.counters.ignored_malformed += 1;
            return;
        }
        match message.body {
            // A committed fact, true in any term: handled before the term rules.
            MessageBody::Removed { committed_through } => {
                self.handle_removed(committed_through);
                return;
            }
            MessageBody::RequestVote { .. } => self.tell_if_removed(message.from, actions),
            _ => {}
        }
        if message.term > self.term {
            if !self.adopt_higher_term(&message, actions) {
                return;
            }
        } else if message.term < self.term {
            self.answer_stale_term(&message, actions);
            return;
        }
        self.dispatch(message, actions);
    }

    /// Applies the rule "a higher term makes any node a follower in that term", with the
    /// exceptions pre-vote and CheckQuorum need. Returns false if the message is ignored.
    fn adopt_higher_term(&mut self, message: &Message, actions: &mut Vec<Action>) -> bool {
        match message.body {
            MessageBody::RequestVote { pre_vote, leadership_transfer, .. } => {
                if !leadership_transfer && self.in_leader_lease() {
                    // Raft thesis §4.2.3: a node that heard from a leader within the
                    // minimum election timeout does not help depose it.
                    self.counters.ignored_vote_in_lease += 1;
                    return false;
                }
                if !pre_vote {
                    // Adopt the term but keep the election timer running: it restarts only
                    // if we grant the vote (Raft paper Figure 2). Otherwise candidates with
                    // stale logs, each bumping the term, could keep the one node that can
                    // win from ever timing out (found by the chaos soak, seed 10482).
                    let (elapsed, timeout) = (self.election_elapsed_ticks, self.election_timeout_ticks);
                    let was_follower = self.role == Role::Follower;
                    self.become_follower(message.term, None, actions);
                    if was_follower {
                        self.election_elapsed_ticks = elapsed;
                        self.election_timeout_ticks = timeout;
                    }
                }
                // A pre-vote request is answered without adopting its (hypothetical) term.
                true
            }
            // A granted pre-vote comes back in the term we would campaign in.
            MessageBody::RequestVoteResponse { pre_vote: true, granted: true } => true,
            MessageBody::AppendEntries { .. }
            | MessageBody::Heartbeat { .. }
            | MessageBody::InstallSnapshot { .. } => {
                self.become_follower(message.term, Some(message.from), actions);
                true
            }
            _ => {
                self.become_follower(message.term, None, actions);
                true
            }
        }
    }

    /// A message from an older term is ignored, but a stale leader or pre-candidate is
    /// told our term so it steps down; otherwise, with pre-vote, a leader isolated and
    /// then healed could go on believing it leads.
    fn answer_stale_term(&mut self, message: &Message, actions: &mut Vec<Action>) {
        self.counters.ignored_stale_term += 1;
        match message.body {
            MessageBody::AppendEntries { .. }
            | MessageBody::Heartbeat { .. }
            | MessageBody::InstallSnapshot { .. } => {
                let body = MessageBody::HeartbeatResponse { read_round: 0, leader_tick: 0 };
                self.send(message.from, body, actions);
            }
            MessageBody::RequestVote { pre_vote: true, .. } => {
                let body = MessageBody::RequestVoteResponse { pre_vote: true, granted: false };
                self.send(message.from, body, actions);
            }
            _ => {}
        }
    }

    fn dispatch(&mut self, message: Message, actions: &mut Vec<Action>) {
        let from = message.from;
        let term = message.term;
        match message.body {
            MessageBody::Removed { .. } => unreachable!("handled before the term rules"),
            MessageBody::RequestVote { pre_vote, last_log_index, last_log_term, .. } => {
                self.handle_vote_request(from, term, pre_vote, last_log_index, last_log_term, actions)
            }
            MessageBody::RequestVoteResponse { pre_vote, granted } => {
                self.handle_vote_response(from, term, pre_vote, granted, actions)
            }
            MessageBody::AppendEntries { prev_log_index, prev_log_term, entries, leader_commit } => {
                if self.accept_leader(from, actions) {
                    self.handle_append(from, prev_log_index, prev_log_term, entries, leader_commit, actions);
                }
            }
            MessageBody::Heartbeat { commit, read_round, leader_tick } => {
                if self.accept_leader(from, actions) {
                    self.handle_heartbeat(from, commit, read_round, leader_tick, actions);
                }
            }
            MessageBody::InstallSnapshot { meta, configuration, total_bytes, offset, chunk } => {
                if self.accept_leader(from, actions) {
                    let chunk =
                        crate::snapshot_transfer::Chunk { meta, configuration, total_bytes, offset, chunk };
                    self.handle_snapshot_chunk(from, chunk, actions);
                }
            }
            MessageBody::SnapshotChunkResponse { last_included_index, received_bytes } => {
                if self.role == Role::Leader {
                    self.handle_snapshot_chunk_response(from, last_included_index, received_bytes, actions);
                } else {
                    self.counters.ignored_stale_response += 1;
                }
            }
            MessageBody::TimeoutNow => {
                if self.accept_leader(from, actions) {
                    self.handle_timeout_now(actions);
                }
            }
            MessageBody::AppendEntriesResponse { success, index, reject_hint_index, reject_hint_term } => {
                if self.role == Role::Leader {
                    self.handle_append_response(
                        from,
                        success,
                        index,
                        reject_hint_index,
                        reject_hint_term,
                        actions,
                    );
                } else {
                    self.counters.ignored_stale_response += 1;
                }
            }
            MessageBody::HeartbeatResponse { read_round, leader_tick } => {
                if self.role == Role::Leader {
                    self.handle_heartbeat_response(from, read_round, leader_tick, actions);
                } else {
                    self.counters.ignored_stale_response += 1;
                }
            }
        }
    }

    /// A leader told us the configuration committed through `committed_through` leaves
    /// us out. Believed unless our log holds a change beyond that index (one that may
    /// add us back).
    fn handle_removed(&mut self, committed_through: crate::types::LogIndex) {
        if self.configuration_index() > committed_through || self.removed_by >= Some(committed_through) {
            return;
        }
        // Nothing else changes now (the notice may carry an old term, and old terms
        // change no role): a campaign under way is given up at its next timeout.
        self.removed_by = Some(committed_through);
    }

    /// A leader asked for votes by a node outside its committed configuration tells it
    /// it was removed, so a server taken out while it was unreachable stops campaigning
    /// once it can hear us (thesis §4.2.3).
    fn tell_if_removed(&mut self, candidate: crate::types::NodeId, actions: &mut Vec<Action>) {
        if self.role != Role::Leader || self.log.configuration().contains(candidate) {
            return;
        }
        if self.log.latest_membership_change().is_some_and(|index| index > self.log.commit_index) {
            return;
        }
        let committed_through = self.log.commit_index;
        self.send_ahead(candidate, MessageBody::Removed { committed_through }, actions);
    }

    /// A leader's message in our term: candidates concede (Raft paper §5.2), followers
    /// note the leader. Returns false if we lead this term ourselves, which only a
    /// peer breaking election safety could cause.
    fn accept_leader(&mut self, from: crate::types::NodeId, actions: &mut Vec<Action>) -> bool {
        let other_leader_known = self.leader.is_some_and(|leader| leader != from);
        if self.role == Role::Leader || (self.role == Role::Follower && other_leader_known) {
            self.counters.protocol_violations += 1;
            return false;
        }
        if self.role != Role::Follower || self.leader != Some(from) {
            self.become_follower(self.term, Some(from), actions);
        }
        self.election_elapsed_ticks = 0;
        self.last_leader_contact_tick = Some(self.now_tick);
        true
    }
}
