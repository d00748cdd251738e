//! Majority arithmetic over one set of voters, kept apart so it can be checked against
//! a brute-force reference on random inputs. [`crate::Configuration`] combines it for
//! joint configurations; nothing else counts majorities.

/// The largest value that at least `quorum` of `values` are at or above: for match
/// indexes, the highest index a majority holds; for ticks, how recently a majority was heard.
pub(crate) fn quorum_value(values: &mut [u64], quorum: usize) -> u64 {
    assert!(quorum >= 1 && quorum <= values.len(), "quorum {quorum} of {} values", values.len());
    values.sort_unstable_by(|a, b| b.cmp(a));
    values[quorum - 1]
}

pub(crate) use crate::configuration::VoteResult;

pub(crate) fn tally(granted: usize, rejected: usize, voters: usize) -> VoteResult {
    let quorum = voters / 2 + 1;
    if granted >= quorum {
        VoteResult::Won
    } else if rejected > voters - quorum {
        VoteResult::Lost
    } else {
        VoteResult::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The dumb reference: the largest candidate value that at least `quorum` values reach.
    fn reference(values: &[u64], quorum: usize) -> u64 {
        values
            .iter()
            .copied()
            .filter(|&candidate| values.iter().filter(|&&value| value >= candidate).count() >= quorum)
            .max()
            .unwrap()
    }

    proptest! {
        #[test]
        fn quorum_value_matches_reference(values in proptest::collection::vec(0u64..20, 1..8)) {
            let quorum = values.len() / 2 + 1;
            let mut scratch = values.clone();
            prop_assert_eq!(quorum_value(&mut scratch, quorum), reference(&values, quorum));
        }
    }

    #[test]
    fn tally_decides_only_when_the_outcome_is_certain() {
        assert_eq!(tally(3, 0, 5), VoteResult::Won);
        assert_eq!(tally(2, 2, 5), VoteResult::Pending);
        assert_eq!(tally(2, 3, 5), VoteResult::Lost);
        assert_eq!(tally(1, 0, 1), VoteResult::Won);
        assert_eq!(tally(1, 1, 2), VoteResult::Lost);
        assert_eq!(tally(1, 0, 2), VoteResult::Pending);
    }
}
