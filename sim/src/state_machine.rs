//! Each simulated node's replicated state machine: the key-value store the clients
//! use ([`Replica`]), next to a running fingerprint of the applied prefix
//! ([`DigestStateMachine`]) that the checkers compare between nodes and snapshots. The
//! node's driver applies committed entries to it, answers reads from it and snapshots
//! it, as the server's driver does with a plain `kv::KvStore`.

use crate::checkers::{extend_prefix_digest, EMPTY_PREFIX_DIGEST};
use kv::session::SessionPolicy;
use kv::{Command, KvError, KvStore, Query, Response};
use raft_core::{Entry, EntryPayload, LogIndex, Term};
use raft_host::StateMachine;
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

/// Recently decoded commands, shared by every replica of a run. The simulated network
/// shares an entry's bytes (an `Arc`) between the leader's log, every message and every
/// node's `Apply`, so the same allocation at the same (index, term) means the same
/// bytes: each command is decoded once rather than once per node. A different
/// allocation is decoded afresh, so the cache never changes what a node applies.
/// The cache is a ring of slots by index: an entry replaces whatever sat at its index
/// modulo the ring's size.
#[derive(Debug, Default)]
pub struct CommandCache {
    slots: Vec<Option<CachedCommand>>,
}

/// An entry's position and bytes, and what they decoded to (`None`: not a command).
type CachedCommand = (LogIndex, Term, Arc<[u8]>, Option<Rc<(Command, u64)>>);

/// How many entries the cache keeps: every node of a cluster applies an entry within a
/// few thousand entries of the first, except one catching up after a long outage.
const COMMAND_CACHE_ENTRIES: usize = 4_096;

impl CommandCache {
    /// The command in `entry`'s `bytes` and the log time stamped on it, `None` if they
    /// are not one.
    pub fn decode(&mut self, entry: &Entry, bytes: &Arc<[u8]>) -> Option<Rc<(Command, u64)>> {
        if self.slots.is_empty() {
            self.slots.resize(COMMAND_CACHE_ENTRIES, None);
        }
        let slot = &mut self.slots[(entry.index % COMMAND_CACHE_ENTRIES as u64) as usize];
        if let Some((index, term, cached, command)) = slot {
            if (*index, *term) == (entry.index, entry.term) && Arc::ptr_eq(cached, bytes) {
                return command.clone();
            }
        }
        let command = Command::decode_stamped(bytes).ok().map(Rc::new);
        *slot = Some((entry.index, entry.term, Arc::clone(bytes), command.clone()));
        command
    }
}

/// A node's state machine: the key-value store and the fingerprint of what built it,
/// replicated by the node's driver. It shares the run's [`CommandCache`] with the other
/// replicas (the simulator is one thread per run).
#[derive(Clone, Debug, Default)]
pub struct Replica {
    /// The fingerprint of the applied prefix.
    pub digest: DigestStateMachine,
    /// The store.
    pub kv: KvStore,
    commands: Rc<RefCell<CommandCache>>,
    /// The session policy this node's clock entries carry when it leads (the run's).
    session_policy: SessionPolicy,
}

impl PartialEq for Replica {
    fn eq(&self, other: &Replica) -> bool {
        self.digest == other.digest && self.kv == other.kv
    }
}

impl Eq for Replica {}

impl Replica {
    /// An empty replica that decodes commands through `commands`.
    pub fn new(commands: Rc<RefCell<CommandCache>>, session_policy: SessionPolicy) -> Replica {
        Replica { digest: DigestStateMachine::default(), kv: KvStore::default(), commands, session_policy }
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

    /// The fingerprint and the store a snapshot holds; `None` if the bytes are not a
    /// snapshot of a replica.
    pub fn parse_snapshot(bytes: &[u8]) -> Option<(DigestStateMachine, KvStore)> {
        if bytes.len() < SNAPSHOT_BYTES {
            return None;
        }
        let (digest, kv) = bytes.split_at(SNAPSHOT_BYTES);
        Some((DigestStateMachine::from_snapshot(digest)?, KvStore::restore(kv).ok()?))
    }
}

impl StateMachine for Replica {
    type Query = Query;
    type Response = Response;

    fn apply(&mut self, index: LogIndex, command: &[u8]) -> Response {
        self.kv.apply_bytes_at(index, command)
    }

    fn query(&self, query: &Query) -> Response {
        self.kv.query(query)
    }

    fn snapshot(&self) -> Vec<u8> {
        self.to_snapshot()
    }

    /// The answer's words, fingerprinted: replicas that agree answer alike.
    fn answer_fingerprint(&self, response: &Response) -> u64 {
        let mut fingerprint = crate::random::Fingerprint::default();
        fingerprint.bytes(format!("{response:?}").as_bytes());
        fingerprint.finish()
    }

    fn log_time_ms(&self) -> u64 {
        self.kv.log_time_ms()
    }

    fn stamp(&self, command: &mut [u8], now_ms: u64) {
        kv::stamp(command, now_ms)
    }

    /// The leader's clock entries remove expired keys and, with a session policy,
    /// expire sessions (`kv::session`).
    fn housekeeping(&self, now_ms: u64) -> Option<Vec<u8>> {
        let policy = (self.session_policy != SessionPolicy::default()).then_some(self.session_policy);
        self.kv.clock_command(now_ms, policy).map(|command| command.encode())
    }

    fn restore(&mut self, snapshot: &[u8]) -> Result<(), String> {
        let (digest, kv) = Replica::parse_snapshot(snapshot).ok_or("not a snapshot of a replica")?;
        self.digest = digest;
        self.kv = kv;
        Ok(())
    }

    /// Every entry extends the fingerprint; a command, decoded once for all replicas,
    /// goes to the store.
    fn apply_entry(&mut self, entry: &Entry) -> Option<Response> {
        self.digest.apply(entry);
        let EntryPayload::Command(bytes) = &entry.payload else {
            return None;
        };
        let command = self.commands.borrow_mut().decode(entry, bytes);
        Some(match command {
            Some(command) => self.kv.apply_at_time(entry.index, &command.0, command.1),
            None => Response::Error(KvError::Malformed("the entry is not a command".to_string())),
        })
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
        let entry =
            |index, bytes: Vec<u8>| Entry { term: 1, index, payload: EntryPayload::Command(bytes.into()) };
        let open = Command { client: 0, sequence: 0, operation: kv::Operation::OpenSession };
        let response = replica.apply_entry(&entry(1, open.encode()));
        assert_eq!(
            response,
            Some(Response::SessionOpened { client: 1 }),
            "the session is named by its entry"
        );
        let command =
            Command { client: 1, sequence: 1, operation: kv::Operation::Delete { key: "k".into() } };
        let response = replica.apply_entry(&entry(2, command.encode()));
        assert_eq!(response, Some(Response::Deleted { existed: false }));
        let junk = replica.apply_entry(&entry(3, b"not a command".to_vec()));
        assert!(matches!(junk, Some(Response::Error(KvError::Malformed(_)))));
        assert_eq!(replica.applied_index(), 3);
        let mut restored = Replica::default();
        restored.restore(&replica.to_snapshot()).unwrap();
        assert_eq!(restored, replica);
        assert!(restored.restore(&replica.to_snapshot()[..20]).is_err());
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
        assert_eq!(*commands.decode(&entry, &other_bytes).expect("a command"), (other, 0));
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
