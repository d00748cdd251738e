//! Linearizable reads without writing to the log (Raft thesis §6.4).
//!
//! ReadIndex: the leader records its commit index, then confirms it still leads by a
//! heartbeat round that a quorum acknowledges; the read may then be served once the
//! state machine has applied the recorded index. A new leader first commits its no-op
//! (§6.4 step 1), since until then its commit index may lag what earlier terms committed.
//!
//! Lease-based (optional, needs CheckQuorum): followers ignore vote requests for the
//! minimum election timeout after hearing from their leader (and after a restart), so
//! while a quorum acknowledged a heartbeat sent less than that long ago no other leader
//! can have been elected, and the leader answers at once. The lease is shorter than the
//! election timeout by one heartbeat interval, a margin for nodes whose clocks tick at
//! different rates; drift beyond that margin makes lease reads unsafe.

use crate::config::ReadMode;
use crate::io::{Action, RejectReason, Request, Role};
use crate::node::{PendingRead, RaftNode};
use crate::types::{NodeId, RequestId};

impl RaftNode {
    pub(crate) fn read_batch(&mut self, ids: &[RequestId], actions: &mut Vec<Action>) {
        let mut accepted = Vec::with_capacity(ids.len());
        for &id in ids {
            let waiting = self.pending_reads.len() + self.reads_awaiting_commit.len() + accepted.len();
            let refusal = if self.role != Role::Leader {
                Some(RejectReason::NotLeader)
            } else if waiting as u64 >= self.config.max_uncommitted_entries {
                Some(RejectReason::TooManyPendingReads)
            } else {
                None
            };
            match refusal {
                Some(reason) => {
                    let leader_hint = self.leader;
                    actions.push(Action::Rejected { request: Request::Read(id), reason, leader_hint });
                }
                None => accepted.push(id),
            }
        }
        if accepted.is_empty() {
            return;
        }
        if !self.committed_in_current_term() {
            self.reads_awaiting_commit.extend(accepted);
            return;
        }
        // One heartbeat round confirms the leadership every read of the batch needs.
        self.serve_reads(&accepted, actions);
    }

    fn committed_in_current_term(&self) -> bool {
        self.log.term_at(self.log.commit_index) == Some(self.term)
    }

    pub(crate) fn serve_reads_awaiting_commit(&mut self, actions: &mut Vec<Action>) {
        if self.reads_awaiting_commit.is_empty() {
            return;
        }
        let ids = std::mem::take(&mut self.reads_awaiting_commit);
        self.serve_reads(&ids, actions);
    }

    fn serve_reads(&mut self, ids: &[RequestId], actions: &mut Vec<Action>) {
        let read_index = self.log.commit_index;
        let lease_valid = self.config.read_mode == ReadMode::LeaseBased && self.lease_valid();
        if lease_valid || self.log.configuration().is_single_voter(self.config.id) {
            for &id in ids {
                actions.push(Action::ReadReady { id, read_index });
            }
            return;
        }
        self.read_round += 1;
        let round = self.read_round;
        self.pending_reads.extend(ids.iter().map(|&id| PendingRead { round, id, read_index }));
        self.broadcast_heartbeat(actions);
    }

    /// Whether a quorum acknowledged a heartbeat sent within the minimum election timeout.
    fn lease_valid(&mut self) -> bool {
        let lease_start = self.quorum_value_of(self.now_tick, |progress| progress.acked_leader_tick);
        let lease_ticks = self.config.election_timeout_min_ticks - self.config.heartbeat_interval_ticks;
        // A lease starting at tick 0 was never acknowledged by anyone.
        lease_start > 0 && self.now_tick - lease_start < lease_ticks
    }

    pub(crate) fn handle_heartbeat_response(
        &mut self,
        from: NodeId,
        read_round: u64,
        leader_tick: u64,
        actions: &mut Vec<Action>,
    ) {
        if read_round > self.read_round || leader_tick > self.now_tick {
            // Echoes of rounds or ticks we never sent.
            self.counters.ignored_malformed += 1;
            return;
        }
        let Some(progress) = self.answering_follower(from) else { return };
        progress.acked_read_round = progress.acked_read_round.max(read_round);
        progress.acked_leader_tick = progress.acked_leader_tick.max(leader_tick);
        self.confirm_reads(actions);
        self.resume_replication(from, actions);
    }

    fn confirm_reads(&mut self, actions: &mut Vec<Action>) {
        if self.pending_reads.is_empty() {
            return;
        }
        let confirmed_round = self.quorum_value_of(self.read_round, |progress| progress.acked_read_round);
        while let Some(read) = self.pending_reads.front() {
            if read.round > confirmed_round {
                break;
            }
            let read = self.pending_reads.pop_front().expect("front exists");
            actions.push(Action::ReadReady { id: read.id, read_index: read.read_index });
        }
    }
}
