//! Membership changes (Raft thesis §4.1–§4.3, with the fix of the 2015 bug), checked
//! where they are made, at the moment a leader writes its own configuration entry:
//!
//! - only once the leader has committed an entry of its own term, and only while no
//!   earlier configuration entry in its log is uncommitted (one change in flight);
//! - each step is safe: at most one voter differs from the configuration before, or the
//!   step enters a joint configuration whose outgoing half is exactly the voters before;
//! - a joint configuration is left only to its own incoming half.
//!
//! Breaking any of these lets two configurations that share no majority both decide.
//! The damage shows downstream only when an election happens in the narrow window
//! where both can act; this sees the rule broken on the spot.

use super::{Check, Invariant, Violation};
use raft_core::{Configuration, Entry, EntryPayload, LogIndex, NodeId, RaftNode, Role, Term};

/// Checks each configuration entry a leader appends.
#[derive(Debug, Default)]
pub struct MembershipRule;

/// What the leader's log says around a configuration entry it appended.
struct Appended<'a> {
    node: NodeId,
    term: Term,
    index: LogIndex,
    commit: LogIndex,
    /// The term of the entry at the commit index.
    committed_term: Option<Term>,
    /// An uncommitted configuration entry before this one, if any.
    pending: Option<LogIndex>,
    before: &'a Configuration,
    after: &'a Configuration,
}

impl MembershipRule {
    /// `node` wrote `entries` with its core now as `core`.
    pub fn on_entries_written(&self, node: NodeId, entries: &[Entry], core: &RaftNode) -> Check {
        if core.role() != Role::Leader {
            return Ok(());
        }
        let term = core.term();
        let commit = core.commit_index();
        for entry in entries {
            let EntryPayload::MembershipChange { configuration, .. } = &entry.payload else { continue };
            if entry.term != term {
                continue;
            }
            let index = entry.index;
            let pending = (commit + 1..index).find(|&at| {
                core.entry(at)
                    .is_some_and(|entry| matches!(entry.payload, EntryPayload::MembershipChange { .. }))
            });
            check(Appended {
                node,
                term,
                index,
                commit,
                committed_term: core.term_at(commit),
                pending,
                before: core.configuration_at(index - 1),
                after: configuration,
            })?;
        }
        Ok(())
    }
}

fn check(appended: Appended<'_>) -> Check {
    let Appended { node, term, index, commit, committed_term, pending, before, after } = appended;
    let fail = |detail: String| Err(Violation::new(Invariant::MembershipRule, vec![node], detail));
    let what = format!("leader {node} of term {term} appended the configuration {after} at {index}");
    if committed_term != Some(term) {
        let committed = committed_term.map_or("?".to_string(), |entry_term| entry_term.to_string());
        return fail(format!(
            "{what} with its commit index at {commit}, an entry of term {committed}: a leader may change the configuration only after it has committed an entry of its own term"
        ));
    }
    if let Some(pending) = pending {
        return fail(format!(
            "{what} while the change at {pending} was uncommitted (commit index {commit}): one change at a time"
        ));
    }
    if before.is_joint() {
        if *after != before.leave_joint() {
            return fail(format!(
                "{what} after the joint {before}: a joint configuration is left only to its incoming half"
            ));
        }
        return Ok(());
    }
    if after.is_joint() {
        if after.outgoing_voters() != before.incoming_voters() {
            return fail(format!(
                "{what} after {before}: a joint configuration's outgoing half must be the voters it leaves"
            ));
        }
        return Ok(());
    }
    let differing = before.incoming_voters().iter().filter(|voter| !after.is_voter(**voter)).count()
        + after.incoming_voters().iter().filter(|voter| !before.is_voter(**voter)).count();
    if differing > 1 {
        return fail(format!(
            "{what} after {before}: {differing} voters differ, and without a joint configuration two majorities need not overlap"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn voters(ids: &[NodeId]) -> Configuration {
        Configuration::voters(ids.iter().copied()).unwrap()
    }

    fn appended<'a>(before: &'a Configuration, after: &'a Configuration) -> Appended<'a> {
        Appended {
            node: 1,
            term: 2,
            index: 3,
            commit: 2,
            committed_term: Some(2),
            pending: None,
            before,
            after,
        }
    }

    fn fires(appended: Appended<'_>, words: &str) {
        let violation = check(appended).unwrap_err();
        assert_eq!(violation.invariant, "membership change rule");
        assert!(violation.to_string().contains(words), "{violation}");
    }

    #[test]
    fn safe_steps_pass() {
        let (three, four) = (voters(&[1, 2, 3]), voters(&[1, 2, 3, 4]));
        check(appended(&three, &four)).unwrap();
        let with_learners = Configuration::new([1, 2], [3, 4, 5]).unwrap();
        check(appended(&three, &with_learners)).unwrap();
        let joint = three.joint_to(&voters(&[1, 4, 5])).unwrap();
        check(appended(&three, &joint)).unwrap();
        check(appended(&joint, &voters(&[1, 4, 5]))).unwrap();
    }

    #[test]
    fn a_change_before_the_leaders_first_commit_fires() {
        let (three, four) = (voters(&[1, 2, 3]), voters(&[1, 2, 3, 4]));
        let early = Appended { commit: 1, committed_term: Some(1), ..appended(&three, &four) };
        fires(early, "only after it has committed an entry of its own term");
    }

    #[test]
    fn a_second_change_while_one_is_uncommitted_fires() {
        let (three, four) = (voters(&[1, 2, 3]), voters(&[1, 2, 3, 4]));
        fires(
            Appended { pending: Some(3), index: 5, ..appended(&three, &four) },
            "while the change at 3 was uncommitted",
        );
    }

    #[test]
    fn two_voters_at_once_without_a_joint_configuration_fires() {
        let (three, other) = (voters(&[1, 2, 3]), voters(&[1, 4, 5]));
        fires(appended(&three, &other), "4 voters differ");
        // A voter demoted to learner and another added: two voters differ too.
        fires(appended(&three, &Configuration::new([1, 2, 4], [3]).unwrap()), "2 voters differ");
    }

    #[test]
    fn a_joint_configuration_that_does_not_start_from_the_voters_fires() {
        let three = voters(&[1, 2, 3]);
        let joint = voters(&[1, 2]).joint_to(&voters(&[4, 5, 6])).unwrap();
        fires(appended(&three, &joint), "outgoing half must be the voters it leaves");
    }

    #[test]
    fn leaving_a_joint_configuration_anywhere_but_its_target_fires() {
        let joint = voters(&[1, 2, 3]).joint_to(&voters(&[1, 4, 5])).unwrap();
        fires(appended(&joint, &voters(&[1, 2, 3])), "left only to its incoming half");
        let nested = voters(&[1, 4, 5]).joint_to(&voters(&[6, 7, 8])).unwrap();
        fires(appended(&joint, &nested), "left only to its incoming half");
    }
}
