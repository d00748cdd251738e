//! What a leader knows about each follower's log, and the flow control it applies.
//!
//! A follower is in one of three states (as in etcd raft's `tracker`):
//! - `Probe`: the leader does not know where the logs agree; it sends one append at a
//!   time and waits for the answer (or the next heartbeat response) before the next.
//! - `Replicate`: the logs agree up to `match_index`; appends are pipelined, at most
//!   `max_inflight_appends` unacknowledged at once.
//! - `Snapshot`: the entries the follower needs are compacted; a snapshot is on its way.

use crate::types::LogIndex;
use std::collections::VecDeque;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ReplicationState {
    Probe,
    Replicate,
    Snapshot { pending_index: LogIndex, sent_tick: u64 },
}

#[derive(Debug)]
pub(crate) struct Progress {
    /// The highest index known to match the leader's log. Never moves backwards.
    pub(crate) match_index: LogIndex,
    /// The next index to send.
    pub(crate) next_index: LogIndex,
    pub(crate) state: ReplicationState,
    /// In `Probe`: an append is outstanding, so no other is sent until an answer.
    pub(crate) probe_sent: bool,
    /// In `Replicate`: the last index of each unacknowledged append, oldest first.
    pub(crate) inflight: VecDeque<LogIndex>,
    /// The leader's tick count when it last heard from this follower in its term.
    pub(crate) last_heard_tick: u64,
    /// The newest read round this follower has acknowledged in the leader's term.
    pub(crate) acked_read_round: u64,
    /// The send tick of the newest heartbeat this follower acknowledged (read leases).
    pub(crate) acked_leader_tick: u64,
}

impl Progress {
    pub(crate) fn new(next_index: LogIndex, now_tick: u64) -> Progress {
        Progress {
            match_index: 0,
            next_index,
            state: ReplicationState::Probe,
            probe_sent: false,
            inflight: VecDeque::new(),
            last_heard_tick: now_tick,
            acked_read_round: 0,
            acked_leader_tick: 0,
        }
    }

    /// Whether a new append must wait.
    pub(crate) fn is_paused(&self, max_inflight: u64) -> bool {
        match self.state {
            ReplicationState::Probe => self.probe_sent,
            ReplicationState::Replicate => self.inflight.len() as u64 >= max_inflight,
            ReplicationState::Snapshot { .. } => true,
        }
    }

    pub(crate) fn become_probe(&mut self) {
        // Leaving Snapshot, resume just after the snapshot; otherwise after the match.
        self.next_index = match self.state {
            ReplicationState::Snapshot { pending_index, .. } => pending_index.max(self.match_index) + 1,
            _ => self.match_index + 1,
        };
        self.state = ReplicationState::Probe;
        self.probe_sent = false;
        self.inflight.clear();
    }

    pub(crate) fn become_replicate(&mut self) {
        self.state = ReplicationState::Replicate;
        self.next_index = self.match_index + 1;
        self.probe_sent = false;
        self.inflight.clear();
    }

    pub(crate) fn become_snapshot(&mut self, pending_index: LogIndex, sent_tick: u64) {
        self.state = ReplicationState::Snapshot { pending_index, sent_tick };
        self.probe_sent = false;
        self.inflight.clear();
    }

    /// Records that an append ending at `last_index` was sent.
    pub(crate) fn sent_append(&mut self, last_index: LogIndex, carried_entries: bool) {
        match self.state {
            ReplicationState::Replicate if carried_entries => {
                self.next_index = last_index + 1;
                self.inflight.push_back(last_index);
            }
            ReplicationState::Probe => self.probe_sent = true,
            _ => {}
        }
    }

    /// Records an acknowledgement that the follower matches up to `index`.
    /// Returns false for a stale acknowledgement that teaches nothing new.
    pub(crate) fn acknowledge(&mut self, index: LogIndex) -> bool {
        let advanced = index > self.match_index;
        if advanced {
            self.match_index = index;
            self.probe_sent = false;
        }
        self.next_index = self.next_index.max(index + 1);
        while self.inflight.front().is_some_and(|&sent| sent <= index) {
            self.inflight.pop_front();
        }
        advanced
    }

    /// Handles a rejection of the append whose `prev_log_index` was `rejected`, moving
    /// `next_index` back towards `probe_hint + 1`. Returns false if the rejection is
    /// stale (answers an append this progress has already moved past).
    pub(crate) fn back_off(&mut self, rejected: LogIndex, probe_hint: LogIndex) -> bool {
        match self.state {
            ReplicationState::Replicate => {
                if rejected <= self.match_index {
                    return false;
                }
                self.become_probe();
                true
            }
            ReplicationState::Probe => {
                if self.next_index == 0 || rejected != self.next_index - 1 {
                    return false;
                }
                self.next_index = rejected.min(probe_hint + 1).max(self.match_index + 1);
                self.probe_sent = false;
                true
            }
            ReplicationState::Snapshot { .. } => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acknowledgements_never_move_match_backwards() {
        let mut progress = Progress::new(6, 0);
        assert!(progress.acknowledge(5));
        assert!(!progress.acknowledge(3), "a stale ack is not progress");
        assert_eq!(progress.match_index, 5);
        assert_eq!(progress.next_index, 6);
    }

    #[test]
    fn stale_rejection_in_probe_is_ignored() {
        let mut progress = Progress::new(10, 0);
        assert!(!progress.back_off(4, 0), "answers an older probe than the outstanding one");
        assert_eq!(progress.next_index, 10);
        assert!(progress.back_off(9, 6));
        assert_eq!(progress.next_index, 7);
    }

    #[test]
    fn backing_off_never_goes_below_the_match() {
        let mut progress = Progress::new(1, 0);
        progress.acknowledge(5);
        progress.next_index = 9;
        assert!(progress.back_off(8, 2), "a hint below the match is clamped");
        assert_eq!(progress.next_index, 6);
    }

    #[test]
    fn a_duplicate_ack_is_not_progress_and_an_ack_moves_next_past_it() {
        let mut progress = Progress::new(3, 0);
        assert!(progress.acknowledge(7));
        assert_eq!(progress.next_index, 8);
        assert!(!progress.acknowledge(7), "the same ack again teaches nothing");
    }

    #[test]
    fn empty_appends_do_not_use_the_window() {
        let mut progress = Progress::new(1, 0);
        progress.become_replicate();
        progress.sent_append(0, false);
        assert!(progress.inflight.is_empty());
        assert_eq!(progress.next_index, 1);
    }

    #[test]
    fn leaving_snapshot_state_resumes_after_the_snapshot() {
        let mut progress = Progress::new(1, 0);
        progress.become_snapshot(40, 0);
        assert!(progress.is_paused(8));
        progress.become_probe();
        assert_eq!(progress.next_index, 41);
    }

    #[test]
    fn rejection_in_replicate_below_match_is_stale() {
        let mut progress = Progress::new(1, 0);
        progress.acknowledge(5);
        progress.become_replicate();
        progress.sent_append(8, true);
        assert!(!progress.back_off(5, 0));
        assert_eq!(progress.state, ReplicationState::Replicate);
        assert!(progress.back_off(8, 5));
        assert_eq!(progress.state, ReplicationState::Probe);
        assert_eq!(progress.next_index, 6);
    }

    #[test]
    fn inflight_window_pauses_and_frees_on_ack() {
        let mut progress = Progress::new(1, 0);
        progress.become_replicate();
        progress.sent_append(3, true);
        progress.sent_append(6, true);
        assert!(progress.is_paused(2));
        progress.acknowledge(3);
        assert!(!progress.is_paused(2));
        assert_eq!(progress.next_index, 7);
    }
}
