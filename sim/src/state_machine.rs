//! The simulated replicated state machine: it folds every applied entry into a
//! running fingerprint of the applied prefix. That is all the checkers need to compare
//! nodes and snapshots; the key-value store replaces it when clients arrive.

use crate::checkers::{extend_prefix_digest, EMPTY_PREFIX_DIGEST};
use raft_core::{Entry, LogIndex};

/// The fingerprint of everything applied so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DigestStateMachine {
    applied_index: LogIndex,
    prefix_digest: u64,
}

impl Default for DigestStateMachine {
    fn default() -> Self {
        DigestStateMachine { applied_index: 0, prefix_digest: EMPTY_PREFIX_DIGEST }
    }
}

const SNAPSHOT_BYTES: usize = 16;

impl DigestStateMachine {
    /// Applies the next entry.
    pub fn apply(&mut self, entry: &Entry) {
        self.applied_index = entry.index;
        self.prefix_digest = extend_prefix_digest(self.prefix_digest, entry);
    }

    /// The index of the last applied entry.
    pub fn applied_index(&self) -> LogIndex {
        self.applied_index
    }

    /// The fingerprint of the applied prefix.
    pub fn prefix_digest(&self) -> u64 {
        self.prefix_digest
    }

    /// The state as snapshot bytes.
    pub fn to_snapshot(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(SNAPSHOT_BYTES);
        bytes.extend_from_slice(&self.applied_index.to_le_bytes());
        bytes.extend_from_slice(&self.prefix_digest.to_le_bytes());
        bytes
    }

    /// The state a snapshot holds; `None` if the bytes are not a snapshot of this machine.
    pub fn from_snapshot(bytes: &[u8]) -> Option<DigestStateMachine> {
        if bytes.len() != SNAPSHOT_BYTES {
            return None;
        }
        let (index, digest) = bytes.split_at(8);
        Some(DigestStateMachine {
            applied_index: u64::from_le_bytes(index.try_into().ok()?),
            prefix_digest: u64::from_le_bytes(digest.try_into().ok()?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft_core::EntryPayload;

    #[test]
    fn snapshots_round_trip_and_refuse_other_bytes() {
        let mut machine = DigestStateMachine::default();
        machine.apply(&Entry { term: 1, index: 1, payload: EntryPayload::Command(b"x".as_slice().into()) });
        assert_eq!(DigestStateMachine::from_snapshot(&machine.to_snapshot()), Some(machine));
        assert_eq!(DigestStateMachine::from_snapshot(b"short"), None);
    }

    #[test]
    fn different_histories_have_different_fingerprints() {
        let mut one = DigestStateMachine::default();
        let mut other = DigestStateMachine::default();
        one.apply(&Entry { term: 1, index: 1, payload: EntryPayload::Noop });
        other.apply(&Entry { term: 2, index: 1, payload: EntryPayload::Noop });
        assert_ne!(one.prefix_digest(), other.prefix_digest());
    }
}
