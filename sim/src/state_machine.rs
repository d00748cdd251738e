//! Each simulated node's replicated state machine: the key-value store the clients
//! use ([`Replica`]), next to a running fingerprint of the applied prefix
//! ([`DigestStateMachine`]) that the checkers compare between nodes and snapshots.

use crate::checkers::{extend_prefix_digest, EMPTY_PREFIX_DIGEST};
use kv::{ClientId, Command, KvStore, Response, Sequence};
use raft_core::{Entry, EntryPayload, LogIndex, Term};
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;

/// Recently decoded commands, shared by every replica of a run. The simulated network
/// shares an entry's bytes (an `Arc`) between the leader's log, every message and every
/// node's `Apply`, so the same allocation at the same (index, term) means the same
/// bytes: each command is decoded once rather than once per node. A different
/// allocation is decoded afresh, so the cache never changes what a node applies.
#[derive(Debug, Default)]
pub struct CommandCache {
    by_position: BTreeMap<(LogIndex, Term), CachedCommand>,
}

/// An entry's bytes and what they decoded to (`None`: not a command).
type CachedCommand = (Arc<[u8]>, Option<Rc<Command>>);

/// How many entries the cache keeps: every node of a cluster applies an entry within a
/// few thousand entries of the first, except one catching up after a long outage.
const COMMAND_CACHE_ENTRIES: usize = 4_096;

impl CommandCache {
    /// The command in `entry`'s `bytes`, `None` if they are not one.
    pub fn decode(&mut self, entry: &Entry, bytes: &Arc<[u8]>) -> Option<Rc<Command>> {
        let position = (entry.index, entry.term);
        if let Some((cached, command)) = self.by_position.get(&position) {
            if Arc::ptr_eq(cached, bytes) {
                return command.clone();
            }
        }
        let command = Command::decode(bytes).ok().map(Rc::new);
        if self.by_position.len() >= COMMAND_CACHE_ENTRIES {
            self.by_position.pop_first();
        }
        self.by_position.insert(position, (Arc::clone(bytes), command.clone()));
        command
    }
}

/// A node's state machine: the key-value store and the fingerprint of what built it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Replica {
    /// The fingerprint of the applied prefix.
    pub digest: DigestStateMachine,
    /// The store.
    pub kv: KvStore,
}

/// A client command a replica applied, and its answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppliedCommand {
    /// Whose command.
    pub client: ClientId,
    /// The client's sequence number for it.
    pub sequence: Sequence,
    /// What the store answered.
    pub response: Response,
}

impl Replica {
    /// Applies the next committed entry; a client command gives its answer. Entries
    /// that are not key-value commands change only the fingerprint.
    pub fn apply(&mut self, entry: &Entry, commands: &mut CommandCache) -> Option<AppliedCommand> {
        self.digest.apply(entry);
        let EntryPayload::Command(bytes) = &entry.payload else {
            return None;
        };
        let command = commands.decode(entry, bytes)?;
        let response = self.kv.apply(&command);
        Some(AppliedCommand { client: command.client, sequence: command.sequence, response })
    }

    /// The index of the last applied entry.
    pub fn applied_index(&self) -> LogIndex {
        self.digest.applied_index()
    }

    /// The state as snapshot bytes: the fingerprint, then the store's snapshot.
    pub fn to_snapshot(&self) -> Vec<u8> {
        let mut bytes = self.digest.to_snapshot();
        bytes.extend_from_slice(&self.kv.snapshot());
        bytes
    }

    /// The state a snapshot holds; `None` if the bytes are not a snapshot of a replica.
    pub fn from_snapshot(bytes: &[u8]) -> Option<Replica> {
        if bytes.len() < SNAPSHOT_BYTES {
            return None;
        }
        let (digest, kv) = bytes.split_at(SNAPSHOT_BYTES);
        Some(Replica { digest: DigestStateMachine::from_snapshot(digest)?, kv: KvStore::restore(kv).ok()? })
    }
}

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

    #[test]
    fn replicas_apply_commands_and_snapshot_store_and_fingerprint() {
        let mut replica = Replica::default();
        let command =
            Command { client: 3, sequence: 1, operation: kv::Operation::Delete { key: "k".into() } };
        let entry =
            |index, bytes: Vec<u8>| Entry { term: 1, index, payload: EntryPayload::Command(bytes.into()) };
        let mut commands = CommandCache::default();
        let applied = replica.apply(&entry(1, command.encode()), &mut commands).expect("a command");
        assert_eq!((applied.client, applied.sequence), (3, 1));
        assert_eq!(applied.response, Response::Deleted { existed: false });
        assert_eq!(replica.apply(&entry(2, b"not a command".to_vec()), &mut commands), None);
        assert_eq!(replica.applied_index(), 2);
        assert_eq!(Replica::from_snapshot(&replica.to_snapshot()), Some(replica.clone()));
        assert_eq!(Replica::from_snapshot(&replica.to_snapshot()[..20]), None);
    }

    #[test]
    fn the_cache_decodes_shared_bytes_once_and_never_trusts_other_bytes() {
        let mut commands = CommandCache::default();
        let command =
            Command { client: 1, sequence: 1, operation: kv::Operation::Delete { key: "k".into() } };
        let shared: Arc<[u8]> = command.encode().into();
        let entry = Entry { term: 2, index: 7, payload: EntryPayload::Command(Arc::clone(&shared)) };
        let first = commands.decode(&entry, &shared).expect("a command");
        let again = commands.decode(&entry, &Arc::clone(&shared)).expect("a command");
        assert!(Rc::ptr_eq(&first, &again), "the same allocation is decoded once");
        // Other bytes at the same position (a buggy leader) are decoded, not taken from the cache.
        let other = Command { sequence: 2, ..command };
        let other_bytes: Arc<[u8]> = other.encode().into();
        assert_eq!(*commands.decode(&entry, &other_bytes).expect("a command"), other);
        let garbage: Arc<[u8]> = b"junk".as_slice().into();
        assert_eq!(commands.decode(&entry, &garbage), None);
        assert_eq!(commands.decode(&entry, &garbage), None);
    }

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
