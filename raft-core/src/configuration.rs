//! Who is in the cluster and what counts as a quorum (Raft thesis §4.1–§4.3).
//!
//! A [`Configuration`] names the **voters**, the **learners** (members that receive the
//! log and snapshots but never vote and never count toward a quorum) and, while a
//! joint change is under way, the voters of the configuration being left
//! (**outgoing**). A decision needs a majority of the voters and, when joint, a
//! majority of the outgoing voters too, so any quorum of the joint configuration
//! overlaps every quorum of the old one and of the new one.
//!
//! The quorum functions ([`Configuration::committed_index`],
//! [`Configuration::vote_result`], [`Configuration::has_quorum`]) are the only
//! majority arithmetic in the project: the core, the driver, snapshots and the
//! simulator's checkers all use them, and they are tested against brute force.

use crate::types::NodeId;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// A cluster configuration: voters, learners and, during a joint change, the outgoing
/// voters. Every list is sorted without duplicates. Shared: a clone is a reference
/// count, and the value is one pointer wide (it travels inside entries, snapshots and
/// messages, which are moved often).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Lists", into = "Lists")]
pub struct Configuration(Arc<Inner>);

#[derive(Debug, Default, PartialEq, Eq)]
struct Inner {
    lists: Lists,
    /// Every member once, sorted: voters, outgoing voters and learners merged (kept so
    /// the leader walks its peers without allocating).
    members: Vec<NodeId>,
}

/// What a configuration is made of, as it is encoded.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Lists {
    voters: Vec<NodeId>,
    outgoing: Vec<NodeId>,
    learners: Vec<NodeId>,
    /// Learners the leader promotes to voters once they have caught up.
    catching_up: Vec<NodeId>,
}

/// Why a list of members is not a configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigurationError {
    /// No voters: nobody could ever decide anything.
    NoVoters,
    /// A list is not sorted, or names a node twice.
    NotSorted(&'static str),
    /// A node is both a voter and a learner of the incoming configuration.
    VoterAndLearner(NodeId),
    /// A node marked for promotion once caught up is not a learner.
    PromotionOfNonLearner(NodeId),
}

impl std::fmt::Display for ConfigurationError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConfigurationError::NoVoters => write!(f, "a configuration needs at least one voter"),
            ConfigurationError::NotSorted(list) => write!(f, "the {list} are not sorted and distinct"),
            ConfigurationError::VoterAndLearner(node) => {
                write!(f, "node {node} is both a voter and a learner")
            }
            ConfigurationError::PromotionOfNonLearner(node) => {
                write!(f, "node {node} is to be promoted once caught up but is not a learner")
            }
        }
    }
}

impl std::error::Error for ConfigurationError {}

impl TryFrom<Lists> for Configuration {
    type Error = ConfigurationError;

    fn try_from(lists: Lists) -> Result<Configuration, ConfigurationError> {
        let sorted = |list: &[NodeId]| list.windows(2).all(|pair| pair[0] < pair[1]);
        if lists == Lists::default() {
            // The unset value (`Configuration::default()`): decodes as itself, and the
            // core refuses it wherever a configuration must decide (`is_valid`).
            return Ok(Configuration::default());
        }
        if lists.voters.is_empty() {
            return Err(ConfigurationError::NoVoters);
        }
        for (name, list) in [
            ("voters", &lists.voters),
            ("outgoing voters", &lists.outgoing),
            ("learners", &lists.learners),
            ("learners catching up", &lists.catching_up),
        ] {
            if !sorted(list) {
                return Err(ConfigurationError::NotSorted(name));
            }
        }
        // A learner may be an outgoing voter (a voter being demoted), never an incoming one.
        if let Some(&both) = lists.learners.iter().find(|learner| lists.voters.binary_search(learner).is_ok())
        {
            return Err(ConfigurationError::VoterAndLearner(both));
        }
        if let Some(&stray) =
            lists.catching_up.iter().find(|node| lists.learners.binary_search(node).is_err())
        {
            return Err(ConfigurationError::PromotionOfNonLearner(stray));
        }
        let mut members: Vec<NodeId> =
            lists.voters.iter().chain(&lists.outgoing).chain(&lists.learners).copied().collect();
        members.sort_unstable();
        members.dedup();
        Ok(Configuration(Arc::new(Inner { lists, members })))
    }
}

impl From<Configuration> for Lists {
    fn from(configuration: Configuration) -> Lists {
        configuration.0.lists.clone()
    }
}

/// The outcome of counting votes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VoteResult {
    /// A quorum granted: the election is won.
    Won,
    /// No quorum can grant any more: the election is lost.
    Lost,
    /// Not decided yet.
    Pending,
}

impl Configuration {
    /// A configuration of these voters and no learners (sorted here; duplicates
    /// rejected).
    pub fn voters(voters: impl IntoIterator<Item = NodeId>) -> Result<Configuration, ConfigurationError> {
        Configuration::new(voters, [])
    }

    /// A configuration of these voters and learners (each sorted here).
    pub fn new(
        voters: impl IntoIterator<Item = NodeId>,
        learners: impl IntoIterator<Item = NodeId>,
    ) -> Result<Configuration, ConfigurationError> {
        Configuration::with_catching_up(voters, learners, [])
    }

    /// A configuration of these voters and learners, of which the learners in
    /// `catching_up` are to be promoted to voters by the leader once they have caught up
    /// (each list sorted here).
    pub fn with_catching_up(
        voters: impl IntoIterator<Item = NodeId>,
        learners: impl IntoIterator<Item = NodeId>,
        catching_up: impl IntoIterator<Item = NodeId>,
    ) -> Result<Configuration, ConfigurationError> {
        let sorted = |ids: Vec<NodeId>| {
            let mut ids = ids;
            ids.sort_unstable();
            ids
        };
        let voters = sorted(voters.into_iter().collect());
        if voters.is_empty() {
            return Err(ConfigurationError::NoVoters);
        }
        Configuration::try_from(Lists {
            voters,
            outgoing: Vec::new(),
            learners: sorted(learners.into_iter().collect()),
            catching_up: sorted(catching_up.into_iter().collect()),
        })
    }

    /// The joint configuration that moves from `self` (which must not be joint) to
    /// `next`: decisions need a majority of both voter sets until it is left.
    pub fn joint_to(&self, next: &Configuration) -> Option<Configuration> {
        if self.is_joint() || next.is_joint() {
            return None;
        }
        Configuration::try_from(Lists {
            voters: next.0.lists.voters.clone(),
            outgoing: self.0.lists.voters.clone(),
            learners: next.0.lists.learners.clone(),
            catching_up: next.0.lists.catching_up.clone(),
        })
        .ok()
    }

    /// The configuration a joint one leads to: its incoming voters and learners.
    pub fn leave_joint(&self) -> Configuration {
        Configuration::try_from(Lists {
            voters: self.0.lists.voters.clone(),
            outgoing: Vec::new(),
            learners: self.0.lists.learners.clone(),
            catching_up: self.0.lists.catching_up.clone(),
        })
        .expect("the incoming half of a valid configuration is valid")
    }

    /// The voters (of the incoming configuration, when joint).
    pub fn incoming_voters(&self) -> &[NodeId] {
        &self.0.lists.voters
    }

    /// The voters of the configuration being left; empty unless joint.
    pub fn outgoing_voters(&self) -> &[NodeId] {
        &self.0.lists.outgoing
    }

    /// The learners.
    pub fn learners(&self) -> &[NodeId] {
        &self.0.lists.learners
    }

    /// The learners the leader promotes to voters once they have caught up.
    pub fn catching_up(&self) -> &[NodeId] {
        &self.0.lists.catching_up
    }

    /// Every member once, sorted: voters of either half and learners.
    pub fn members(&self) -> &[NodeId] {
        &self.0.members
    }

    /// Whether a joint change is under way.
    pub fn is_joint(&self) -> bool {
        !self.0.lists.outgoing.is_empty()
    }

    /// Whether the configuration can decide anything: it has voters. Only the empty
    /// `Default` value (an unset field) has none; the constructors never return it.
    pub fn is_valid(&self) -> bool {
        !self.0.lists.voters.is_empty()
    }

    /// Whether `node` votes (in either half of a joint configuration).
    pub fn is_voter(&self, node: NodeId) -> bool {
        self.0.lists.voters.binary_search(&node).is_ok() || self.0.lists.outgoing.binary_search(&node).is_ok()
    }

    /// Whether `node` is a learner and no voter.
    pub fn is_learner(&self, node: NodeId) -> bool {
        !self.is_voter(node) && self.0.lists.learners.binary_search(&node).is_ok()
    }

    /// Whether `node` is a member at all.
    pub fn contains(&self, node: NodeId) -> bool {
        self.0.members.binary_search(&node).is_ok()
    }

    /// Whether this is the configuration of one voter and nobody else to wait for.
    pub fn is_single_voter(&self, node: NodeId) -> bool {
        self.0.lists.voters == [node] && !self.is_joint()
    }

    /// The largest value a quorum has reached, given each voter's value (learners are
    /// never asked): for match indexes, the highest index a quorum holds (the commit
    /// index); for ticks, how recently a quorum was heard from.
    pub fn committed_index(&self, value: impl Fn(NodeId) -> u64) -> u64 {
        self.quorum_value_in(&mut Vec::with_capacity(self.0.members.len()), value)
    }

    /// [`Configuration::committed_index`] with scratch space the caller keeps, so the
    /// hot path does not allocate.
    pub(crate) fn quorum_value_in(&self, scratch: &mut Vec<u64>, value: impl Fn(NodeId) -> u64) -> u64 {
        let incoming = majority_value(&self.0.lists.voters, scratch, &value);
        if self.is_joint() {
            incoming.min(majority_value(&self.0.lists.outgoing, scratch, &value))
        } else {
            incoming
        }
    }

    /// The outcome of an election, given each voter's vote so far (`None`: not yet
    /// answered). Votes of non-voters are never asked for.
    pub fn vote_result(&self, vote: impl Fn(NodeId) -> Option<bool>) -> VoteResult {
        let incoming = majority_vote(&self.0.lists.voters, &vote);
        if !self.is_joint() {
            return incoming;
        }
        match (incoming, majority_vote(&self.0.lists.outgoing, &vote)) {
            (VoteResult::Lost, _) | (_, VoteResult::Lost) => VoteResult::Lost,
            (VoteResult::Won, VoteResult::Won) => VoteResult::Won,
            _ => VoteResult::Pending,
        }
    }

    /// Whether the nodes for which `member` holds form a quorum.
    pub fn has_quorum(&self, member: impl Fn(NodeId) -> bool) -> bool {
        self.vote_result(|node| Some(member(node))) == VoteResult::Won
    }
}

/// The largest value at least a majority of `voters` reach.
fn majority_value(voters: &[NodeId], scratch: &mut Vec<u64>, value: &impl Fn(NodeId) -> u64) -> u64 {
    scratch.clear();
    scratch.extend(voters.iter().map(|&voter| value(voter)));
    crate::quorum::quorum_value(scratch, voters.len() / 2 + 1)
}

fn majority_vote(voters: &[NodeId], vote: &impl Fn(NodeId) -> Option<bool>) -> VoteResult {
    let (granted, rejected) = voters.iter().fold((0, 0), |(yes, no), &voter| match vote(voter) {
        Some(true) => (yes + 1, no),
        Some(false) => (yes, no + 1),
        None => (yes, no),
    });
    crate::quorum::tally(granted, rejected, voters.len())
}

impl std::fmt::Display for Configuration {
    /// `voters [1, 2, 3]`, with `learners [..]` and `leaving [..]` when there are any.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "voters {:?}", self.0.lists.voters)?;
        if !self.0.lists.learners.is_empty() {
            write!(f, ", learners {:?}", self.0.lists.learners)?;
        }
        if !self.0.lists.catching_up.is_empty() {
            write!(f, " (to promote once caught up: {:?})", self.0.lists.catching_up)?;
        }
        if self.is_joint() {
            write!(f, ", leaving voters {:?}", self.0.lists.outgoing)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn lists(voters: &[NodeId], outgoing: &[NodeId], learners: &[NodeId]) -> Configuration {
        Configuration::try_from(Lists {
            voters: voters.to_vec(),
            outgoing: outgoing.to_vec(),
            learners: learners.to_vec(),
            catching_up: Vec::new(),
        })
        .unwrap()
    }

    /// The halves a decision needs a majority of, by the definition.
    fn halves(configuration: &Configuration) -> Vec<&[NodeId]> {
        let mut halves = vec![configuration.incoming_voters()];
        if configuration.is_joint() {
            halves.push(configuration.outgoing_voters());
        }
        halves
    }

    fn is_quorum_by_definition(configuration: &Configuration, set: &[NodeId]) -> bool {
        halves(configuration)
            .iter()
            .all(|half| 2 * half.iter().filter(|node| set.contains(node)).count() > half.len())
    }

    /// The reference commit index: the largest value v such that the members at or above
    /// v form a quorum by the definition.
    fn reference_value(configuration: &Configuration, values: &BTreeMap<NodeId, u64>) -> u64 {
        let mut candidates: Vec<u64> = values.values().copied().collect();
        candidates.push(0);
        candidates
            .into_iter()
            .filter(|&candidate| {
                let reached: Vec<NodeId> =
                    values.iter().filter(|(_, &value)| value >= candidate).map(|(&node, _)| node).collect();
                candidate == 0 || is_quorum_by_definition(configuration, &reached)
            })
            .max()
            .unwrap()
    }

    /// The reference election outcome: Won if every way the missing votes could go
    /// wins, Lost if none does, else Pending.
    fn reference_vote(configuration: &Configuration, votes: &BTreeMap<NodeId, Option<bool>>) -> VoteResult {
        let missing: Vec<NodeId> =
            votes.iter().filter(|(_, vote)| vote.is_none()).map(|(&node, _)| node).collect();
        let mut wins = 0;
        let ways = 1u32 << missing.len();
        for way in 0..ways {
            let granted: Vec<NodeId> = votes
                .iter()
                .filter(|(node, vote)| match vote {
                    Some(granted) => *granted,
                    None => way & (1 << missing.iter().position(|m| m == *node).unwrap()) != 0,
                })
                .map(|(&node, _)| node)
                .collect();
            if is_quorum_by_definition(configuration, &granted) {
                wins += 1;
            }
        }
        match wins {
            0 => VoteResult::Lost,
            n if n == ways => VoteResult::Won,
            _ => VoteResult::Pending,
        }
    }

    /// Configurations over nodes 1..=7: simple or joint, with learners.
    fn configurations() -> impl Strategy<Value = Configuration> {
        let subset = || proptest::collection::btree_set(1u64..=7, 0..=7);
        (subset(), subset(), subset(), any::<bool>()).prop_filter_map(
            "voters needed",
            |(voters, outgoing, learners, joint)| {
                let voters: Vec<NodeId> = voters.into_iter().collect();
                let outgoing: Vec<NodeId> = if joint { outgoing.into_iter().collect() } else { Vec::new() };
                let learners: Vec<NodeId> =
                    learners.into_iter().filter(|node| !voters.contains(node)).collect();
                Configuration::try_from(Lists { voters, outgoing, learners, catching_up: Vec::new() })
                    .ok()
                    .filter(Configuration::is_valid)
            },
        )
    }

    proptest! {
        #[test]
        fn committed_index_matches_the_definition(
            configuration in configurations(),
            values in proptest::collection::vec(0u64..6, 7),
        ) {
            let values: BTreeMap<NodeId, u64> =
                configuration.members().iter().map(|&node| (node, values[node as usize - 1])).collect();
            prop_assert_eq!(
                configuration.committed_index(|node| values[&node]),
                reference_value(&configuration, &values)
            );
        }

        #[test]
        fn vote_result_matches_every_completion(
            configuration in configurations(),
            votes in proptest::collection::vec(prop_oneof![Just(None), Just(Some(true)), Just(Some(false))], 7),
        ) {
            let votes: BTreeMap<NodeId, Option<bool>> =
                configuration.members().iter().map(|&node| (node, votes[node as usize - 1])).collect();
            // A learner's vote, whatever it says, never counts.
            let voters_only: BTreeMap<NodeId, Option<bool>> = votes
                .iter()
                .filter(|(node, _)| configuration.is_voter(**node))
                .map(|(&node, &vote)| (node, vote))
                .collect();
            prop_assert_eq!(
                configuration.vote_result(|node| votes[&node]),
                reference_vote(&configuration, &voters_only)
            );
        }

        #[test]
        fn encoding_round_trips(configuration in configurations()) {
            let codec = bincode::config::standard();
            let bytes = bincode::serde::encode_to_vec(&configuration, codec).unwrap();
            let (decoded, _): (Configuration, usize) = bincode::serde::decode_from_slice(&bytes, codec).unwrap();
            prop_assert_eq!(decoded.members(), configuration.members());
            prop_assert_eq!(decoded, configuration);
        }
    }

    #[test]
    fn a_joint_quorum_needs_a_majority_of_both_halves() {
        let joint = lists(&[3, 4, 5], &[1, 2, 3], &[]);
        assert!(!joint.has_quorum(|node| [1, 2, 3].contains(&node)), "the old majority alone");
        assert!(!joint.has_quorum(|node| [3, 4, 5].contains(&node)), "the new majority alone");
        assert!(joint.has_quorum(|node| [1, 3, 4].contains(&node)));
        let values = BTreeMap::from([(1, 9), (2, 9), (3, 5), (4, 2), (5, 2)]);
        assert_eq!(joint.committed_index(|node| values[&node]), 2, "the new half holds back the commit");
        assert_eq!(joint.vote_result(|node| Some([1, 2].contains(&node))), VoteResult::Lost);
    }

    #[test]
    fn learners_never_count() {
        let configuration = lists(&[1, 2, 3], &[], &[4, 5]);
        assert!(!configuration.has_quorum(|node| [1, 4, 5].contains(&node)));
        let values = BTreeMap::from([(1, 7), (2, 1), (3, 1), (4, 7), (5, 7)]);
        assert_eq!(configuration.committed_index(|node| values[&node]), 1);
        assert!(configuration.is_learner(4) && !configuration.is_voter(4) && configuration.contains(4));
        assert_eq!(configuration.members(), &[1, 2, 3, 4, 5]);
    }

    #[test]
    fn malformed_lists_are_refused() {
        let refuse = |voters: &[NodeId], outgoing: &[NodeId], learners: &[NodeId]| {
            Configuration::try_from(Lists {
                voters: voters.to_vec(),
                outgoing: outgoing.to_vec(),
                learners: learners.to_vec(),
                catching_up: Vec::new(),
            })
            .unwrap_err()
        };
        assert_eq!(refuse(&[], &[1], &[]), ConfigurationError::NoVoters);
        assert_eq!(Configuration::voters([]), Err(ConfigurationError::NoVoters));
        assert!(!Configuration::default().is_valid());
        assert_eq!(refuse(&[2, 1], &[], &[]), ConfigurationError::NotSorted("voters"));
        assert_eq!(refuse(&[1], &[3, 3], &[]), ConfigurationError::NotSorted("outgoing voters"));
        assert_eq!(refuse(&[1, 2], &[], &[2]), ConfigurationError::VoterAndLearner(2));
        // A voter being demoted is an outgoing voter and an incoming learner at once.
        assert!(Configuration::try_from(Lists {
            voters: vec![1, 2],
            outgoing: vec![1, 2, 3],
            learners: vec![3],
            catching_up: vec![3],
        })
        .is_ok());
        assert_eq!(
            Configuration::with_catching_up([1, 2], [3], [4]),
            Err(ConfigurationError::PromotionOfNonLearner(4)),
            "only a learner is promoted"
        );
        assert!(Configuration::voters([3, 1, 2]).is_ok_and(|c| c.incoming_voters() == [1, 2, 3]));
        assert!(Configuration::voters([1, 1]).is_err());
    }

    #[test]
    fn joint_changes_enter_and_leave() {
        let old = Configuration::voters([1, 2, 3]).unwrap();
        let next = Configuration::new([3, 4, 5], [1]).unwrap();
        let joint = old.joint_to(&next).unwrap();
        assert!(joint.is_joint());
        assert_eq!(joint.members(), &[1, 2, 3, 4, 5]);
        assert!(joint.is_voter(1) && !joint.is_learner(1), "an outgoing voter still votes");
        assert_eq!(joint.leave_joint(), next);
        assert_eq!(joint.joint_to(&next), None, "one joint change at a time");
        assert_eq!(joint.to_string(), "voters [3, 4, 5], learners [1], leaving voters [1, 2, 3]");
    }
}
