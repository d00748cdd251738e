//! Monotonic progress, per node: within one run of a process its term and commit
//! index never decrease and its applied index advances one entry at a time (or jumps
//! forward to an installed snapshot); across restarts its durable term never decreases.

use super::{Check, Invariant, Violation};
use raft_core::{LogIndex, NodeId, Term};

#[derive(Clone, Copy, Debug, Default)]
struct NodeProgress {
    term: Term,
    commit: LogIndex,
    applied: LogIndex,
    durable_term: Term,
}

/// Each node's term, commit index, applied index and durable term so far.
#[derive(Debug, Default)]
pub struct Monotonic {
    /// Indexed by node id: ids are small, and this is consulted after every step.
    nodes: Vec<NodeProgress>,
}

impl Monotonic {
    fn node(&mut self, node: NodeId) -> &mut NodeProgress {
        let position = usize::try_from(node).expect("node ids fit in memory");
        if position >= self.nodes.len() {
            self.nodes.resize(position + 1, NodeProgress::default());
        }
        &mut self.nodes[position]
    }

    /// The node's current term is `term`.
    pub fn on_term(&mut self, node: NodeId, term: Term) -> Check {
        let progress = self.node(node);
        if term < progress.term {
            return Err(Violation::new(
                Invariant::MonotonicTerm,
                vec![node],
                format!("node {node} went back from term {} to {term} without restarting", progress.term),
            ));
        }
        progress.term = term;
        Ok(())
    }

    /// The node's commit index is `commit`.
    pub fn on_commit(&mut self, node: NodeId, commit: LogIndex) -> Check {
        let progress = self.node(node);
        if commit < progress.commit {
            return Err(Violation::new(
                Invariant::MonotonicCommitIndex,
                vec![node],
                format!(
                    "node {node} went back from commit index {} to {commit} without restarting",
                    progress.commit
                ),
            ));
        }
        progress.commit = commit;
        Ok(())
    }

    /// The node applied the entry at `index`.
    pub fn on_applied(&mut self, node: NodeId, index: LogIndex) -> Check {
        let progress = self.node(node);
        if index != progress.applied + 1 {
            return Err(Violation::new(
                Invariant::MonotonicAppliedIndex,
                vec![node],
                format!("node {node} applied entry {index} right after entry {}", progress.applied),
            ));
        }
        progress.applied = index;
        Ok(())
    }

    /// The node replaced its state machine with a snapshot at `index`.
    pub fn on_snapshot_installed(&mut self, node: NodeId, index: LogIndex) -> Check {
        let progress = self.node(node);
        if index < progress.applied {
            return Err(Violation::new(
                Invariant::MonotonicAppliedIndex,
                vec![node],
                format!(
                    "node {node} installed a snapshot at {index}, behind its applied index {}",
                    progress.applied
                ),
            ));
        }
        progress.applied = index;
        progress.commit = progress.commit.max(index);
        Ok(())
    }

    /// The node's durable term is now `term` (after a sync or a crash).
    pub fn on_durable_term(&mut self, node: NodeId, term: Term) -> Check {
        let progress = self.node(node);
        if term < progress.durable_term {
            return Err(Violation::new(
                Invariant::MonotonicDurableTerm,
                vec![node],
                format!("node {node}'s durable term went back from {} to {term}", progress.durable_term),
            ));
        }
        progress.durable_term = term;
        Ok(())
    }

    /// The node restarted from a durable term `term` and a snapshot at `snapshot_index`:
    /// its in-memory counters start again from there.
    pub fn on_restart(&mut self, node: NodeId, term: Term, snapshot_index: LogIndex) -> Check {
        self.on_durable_term(node, term)?;
        let progress = self.node(node);
        progress.term = term;
        progress.commit = snapshot_index;
        progress.applied = snapshot_index;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_term_going_back_fires_unless_the_node_restarted() {
        let mut checker = Monotonic::default();
        checker.on_term(1, 5).unwrap();
        assert_eq!(checker.on_term(1, 4).unwrap_err().invariant, "monotonic term");
        checker.on_restart(1, 3, 0).unwrap();
        checker.on_term(1, 3).unwrap();
    }

    #[test]
    fn a_durable_term_going_back_fires_even_across_restarts() {
        let mut checker = Monotonic::default();
        checker.on_durable_term(1, 5).unwrap();
        assert!(checker.on_restart(1, 4, 0).is_err());
    }

    #[test]
    fn a_commit_index_going_back_fires() {
        let mut checker = Monotonic::default();
        checker.on_commit(2, 7).unwrap();
        assert_eq!(checker.on_commit(2, 6).unwrap_err().invariant, "monotonic commit index");
    }

    #[test]
    fn applied_entries_must_be_consecutive() {
        let mut checker = Monotonic::default();
        checker.on_applied(1, 1).unwrap();
        assert!(checker.on_applied(1, 3).is_err(), "a skipped entry");
        assert!(checker.on_applied(1, 1).is_err(), "an entry applied twice");
        checker.on_snapshot_installed(1, 10).unwrap();
        checker.on_applied(1, 11).unwrap();
        assert!(checker.on_snapshot_installed(1, 5).is_err(), "a snapshot behind the state machine");
    }
}
