//! Single-server membership changes (Raft thesis §4.1, with the fix of the 2015 bug):
//! a leader appends a configuration entry only once it has committed an entry of its
//! own term, and only while no earlier configuration entry in its log is uncommitted.
//!
//! Breaking either lets two configurations that share no majority both decide: a
//! leader elected under the old configuration changes it while a change of the
//! previous term is still uncommitted on a minority, and a later election under that
//! other change overwrites what the first decided. That takes a leader change, two
//! changes and an election in a narrow window; this checks the rule where it is
//! applied, at the moment a leader writes its own configuration entry.

use super::{Check, Invariant, Violation};
use raft_core::{Entry, EntryPayload, LogIndex, NodeId, RaftNode, Role};

/// Checks each configuration entry a leader appends.
#[derive(Debug, Default)]
pub struct MembershipRule;

impl MembershipRule {
    /// `node` wrote `entries` with its core now as `core`.
    pub fn on_entries_written(&self, node: NodeId, entries: &[Entry], core: &RaftNode) -> Check {
        if core.role() != Role::Leader {
            return Ok(());
        }
        let term = core.term();
        for entry in entries {
            if entry.term != term || !matches!(entry.payload, EntryPayload::MembershipChange { .. }) {
                continue;
            }
            self.on_change_appended(node, term, entry.index, core.commit_index(), |index| {
                core.term_at(index).map(|entry_term| (entry_term, is_change(core, index)))
            })?;
        }
        Ok(())
    }

    /// Leader `node` of `term` appended a configuration entry at `index` with its commit
    /// index at `commit`; `log(i)` gives the term at `i` and whether it is a change.
    fn on_change_appended(
        &self,
        node: NodeId,
        term: u64,
        index: LogIndex,
        commit: LogIndex,
        log: impl Fn(LogIndex) -> Option<(u64, bool)>,
    ) -> Check {
        let committed_term = log(commit).map(|(entry_term, _)| entry_term);
        if committed_term != Some(term) {
            return Err(Violation::new(
                Invariant::MembershipRule,
                vec![node],
                format!(
                    "leader {node} of term {term} appended a configuration change at {index} with its commit index at {commit}, an entry of term {}: a leader may change the configuration only after it has committed an entry of its own term",
                    committed_term.map_or("?".to_string(), |entry_term| entry_term.to_string())
                ),
            ));
        }
        if let Some(pending) = (commit + 1..index).find(|&at| log(at).is_some_and(|(_, change)| change)) {
            return Err(Violation::new(
                Invariant::MembershipRule,
                vec![node],
                format!(
                    "leader {node} of term {term} appended a configuration change at {index} while the change at {pending} was uncommitted (commit index {commit}): one change at a time"
                ),
            ));
        }
        Ok(())
    }
}

fn is_change(core: &RaftNode, index: LogIndex) -> bool {
    core.entry(index).is_some_and(|entry| matches!(entry.payload, EntryPayload::MembershipChange { .. }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A log of (term, is a change) by index, 1-based.
    fn log(entries: &[(u64, bool)]) -> impl Fn(LogIndex) -> Option<(u64, bool)> + '_ {
        move |index| if index == 0 { Some((0, false)) } else { entries.get(index as usize - 1).copied() }
    }

    #[test]
    fn a_change_after_a_commit_of_the_leaders_term_passes() {
        let entries = [(1, false), (2, false), (2, true)];
        MembershipRule.on_change_appended(1, 2, 3, 2, log(&entries)).unwrap();
    }

    #[test]
    fn a_change_before_the_leaders_first_commit_fires() {
        // Leader of term 2 has committed only through entry 1, of term 1.
        let entries = [(1, false), (2, false), (2, true)];
        let violation = MembershipRule.on_change_appended(1, 2, 3, 1, log(&entries)).unwrap_err();
        assert_eq!(violation.invariant, "membership change rule");
        assert!(violation.to_string().contains("only after it has committed an entry of its own term"));
    }

    #[test]
    fn a_second_change_while_one_is_uncommitted_fires() {
        let entries = [(1, false), (2, false), (2, true), (2, false), (2, true)];
        let violation = MembershipRule.on_change_appended(1, 2, 5, 2, log(&entries)).unwrap_err();
        assert!(violation.to_string().contains("while the change at 3 was uncommitted"), "{violation}");
    }
}
