//! A removed server, once told, stops campaigning (Raft thesis §4.2.3): a node that
//! received a notice that the configuration committed through some index leaves it out
//! (`MessageBody::Removed`) never starts a campaign again while its log holds no
//! configuration newer than that index. (Its memory of the notice ends with a crash; a
//! restarted node is told again when it next asks for votes.)
//!
//! Campaigns by removed nodes break no safety rule: with PreVote and CheckQuorum the
//! members ignore them. This checks the rule where it applies, at each campaign.

use super::{Check, Invariant, Violation};
use raft_core::{LogIndex, NodeId, Term};
use std::collections::BTreeMap;

/// The removal notices each running node has received.
#[derive(Debug, Default)]
pub struct RemovedQuiet {
    told: BTreeMap<NodeId, LogIndex>,
}

impl RemovedQuiet {
    /// `node` received a notice that the configuration committed through
    /// `committed_through` leaves it out.
    pub fn on_notice(&mut self, node: NodeId, committed_through: LogIndex) {
        let told = self.told.entry(node).or_default();
        *told = (*told).max(committed_through);
    }

    /// `node` crashed: it forgets the notices.
    pub fn on_crash(&mut self, node: NodeId) {
        self.told.remove(&node);
    }

    /// `node` started a campaign for `term`, its configuration set by the entry at
    /// `configuration_index` (or its snapshot).
    pub fn on_campaign(&self, node: NodeId, term: Term, configuration_index: LogIndex) -> Check {
        match self.told.get(&node) {
            Some(&told) if configuration_index <= told => Err(Violation::new(
                Invariant::RemovedQuiet,
                vec![node],
                format!(
                    "node {node} campaigned (toward term {term}) after it was told the configuration committed through {told} leaves it out, with no newer configuration in its log (its configuration is from index {configuration_index})"
                ),
            )),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_campaign_after_the_notice_fires_unless_a_newer_configuration_came_or_the_node_crashed() {
        let mut checker = RemovedQuiet::default();
        checker.on_campaign(3, 2, 4).unwrap();
        checker.on_notice(3, 7);
        let violation = checker.on_campaign(3, 2, 4).unwrap_err();
        assert_eq!(violation.invariant, "removed nodes stay quiet");
        assert!(violation.to_string().contains("committed through 7"), "{violation}");
        checker.on_campaign(3, 2, 8).unwrap();
        checker.on_crash(3);
        checker.on_campaign(3, 2, 4).unwrap();
    }
}
