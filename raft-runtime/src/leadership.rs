//! One log line at info for each change an operator looks for: this node campaigning,
//! winning or losing an election, stepping down, or following a new leader.
//! Pre-votes that go nowhere (a node cut off from the others) stay quiet: they change
//! neither the term nor the leader.

use raft_core::{NodeId, Role, Term};

/// What the node loop compares after each round (and what [`crate::Status`] shows).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Leadership {
    pub(crate) role: Role,
    pub(crate) term: Term,
    pub(crate) leader: Option<NodeId>,
}

impl Leadership {
    /// Where `node` stands now.
    pub(crate) fn of(node: &raft_core::RaftNode) -> Leadership {
        Leadership { role: node.role(), term: node.term(), leader: node.leader() }
    }

    /// The line to log for the change from `self` to `now`, if it is one an operator
    /// looks for.
    pub(crate) fn change(&self, now: &Leadership) -> Option<String> {
        let following = |leadership: &Leadership| match leadership.leader {
            Some(leader) => format!("following node {leader}"),
            None => "no leader known yet".to_string(),
        };
        let term = now.term;
        match (self.role, now.role) {
            (Role::Leader, Role::Leader) if self.term == term => None,
            (_, Role::Leader) => Some(format!("won the election for term {term}: this node leads")),
            (Role::Leader, _) => {
                Some(format!("stepped down as leader (now term {term}); {}", following(now)))
            }
            (_, Role::Candidate) if self.role != Role::Candidate || self.term != term => {
                Some(format!("campaigning for term {term}"))
            }
            (Role::Candidate, Role::Follower) => {
                Some(format!("lost the election for term {}; term {term}, {}", self.term, following(now)))
            }
            _ if now.leader != self.leader && now.leader.is_some() => {
                Some(format!("term {term}: {}", following(now)))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(role: Role, term: Term, leader: Option<NodeId>) -> Leadership {
        Leadership { role, term, leader }
    }

    #[test]
    fn elections_won_and_lost_and_new_leaders_are_one_line_each() {
        let follower = at(Role::Follower, 1, Some(1));
        let campaigning = at(Role::Candidate, 2, None);
        assert_eq!(follower.change(&campaigning).as_deref(), Some("campaigning for term 2"));
        assert_eq!(campaigning.change(&campaigning), None);
        assert_eq!(
            campaigning.change(&at(Role::Leader, 2, Some(2))).as_deref(),
            Some("won the election for term 2: this node leads")
        );
        assert_eq!(
            campaigning.change(&at(Role::Follower, 3, Some(3))).as_deref(),
            Some("lost the election for term 2; term 3, following node 3")
        );
        assert_eq!(
            at(Role::Leader, 2, Some(2)).change(&at(Role::Follower, 4, None)).as_deref(),
            Some("stepped down as leader (now term 4); no leader known yet")
        );
        assert_eq!(
            follower.change(&at(Role::Follower, 5, Some(4))).as_deref(),
            Some("term 5: following node 4")
        );
        // A pre-vote that goes nowhere, or a leader forgotten: nothing new to say.
        assert_eq!(follower.change(&at(Role::PreCandidate, 1, None)), None);
        assert_eq!(at(Role::PreCandidate, 1, None).change(&at(Role::PreCandidate, 1, None)), None);
    }
}
