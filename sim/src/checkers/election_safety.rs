//! Election safety (Raft paper Figure 3): at most one leader per term, over the whole
//! history, restarts included.

use super::{Check, Invariant, Violation};
use raft_core::{NodeId, Term};
use std::collections::BTreeMap;

/// Remembers the leader of every term.
#[derive(Debug, Default)]
pub struct ElectionSafety {
    leaders: BTreeMap<Term, NodeId>,
}

impl ElectionSafety {
    /// `node` became leader of `term`.
    pub fn on_leader(&mut self, node: NodeId, term: Term) -> Check {
        match self.leaders.insert(term, node) {
            Some(earlier) if earlier != node => Err(Violation::new(
                Invariant::ElectionSafety,
                vec![earlier, node],
                format!("nodes {earlier} and {node} both became leader of term {term}"),
            )),
            _ => Ok(()),
        }
    }

    /// How many terms had a leader.
    pub fn elections(&self) -> u64 {
        self.leaders.len() as u64
    }

    /// The highest term that had a leader, if any.
    pub fn highest_leader_term(&self) -> Option<Term> {
        self.leaders.keys().next_back().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_leaders_in_one_term_fire() {
        let mut checker = ElectionSafety::default();
        checker.on_leader(1, 3).unwrap();
        checker.on_leader(2, 4).unwrap();
        let violation = checker.on_leader(2, 3).unwrap_err();
        assert_eq!(violation.invariant, "election safety");
        assert_eq!(violation.nodes, vec![1, 2]);
    }

    #[test]
    fn the_same_leader_reported_again_is_fine() {
        let mut checker = ElectionSafety::default();
        checker.on_leader(1, 3).unwrap();
        checker.on_leader(1, 3).unwrap();
        assert_eq!(checker.elections(), 1);
        assert_eq!(checker.highest_leader_term(), Some(3));
    }
}
